"""The world's HTTP servers stay quiet when a client hangs up, and still report real handler errors."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from e2e.world.httpserver import QuietHandler, WorldHTTPServer


def _serve(error: Exception) -> WorldHTTPServer:
    class Handler(QuietHandler):
        def do_GET(self) -> None:
            raise error

    server = WorldHTTPServer(("127.0.0.1", 0), Handler, "test-server")
    server.start()
    return server


@pytest.mark.parametrize(
    ("error", "reported"),
    [(BrokenPipeError(32, "Broken pipe"), False), (ConnectionResetError(104, "reset"), False), (KeyError("x"), True)],
)
def test_only_real_errors_are_printed(error: Exception, reported: bool, capfd: pytest.CaptureFixture[str]) -> None:
    server = _serve(error)
    try:
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=5)
    finally:
        server.stop()
    assert ("Traceback" in capfd.readouterr().err) is reported


def test_a_server_never_started_stops_at_once() -> None:
    server = WorldHTTPServer(("127.0.0.1", 0), QuietHandler, "never-started")
    server.stop()  # shutdown() alone would wait forever for a serve_forever that never ran
