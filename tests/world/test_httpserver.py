"""The world's HTTP servers stay quiet when a client hangs up, and still report real handler errors."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from e2e.world.httpserver import WorldHTTPServer


def _serve(error: Exception) -> WorldHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            raise error

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = WorldHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize(
    ("error", "reported"),
    [(BrokenPipeError(32, "Broken pipe"), False), (ConnectionResetError(104, "reset"), False), (KeyError("x"), True)],
)
def test_only_real_errors_are_printed(error: Exception, reported: bool, capfd: pytest.CaptureFixture[str]) -> None:
    server = _serve(error)
    try:
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(f"http://127.0.0.1:{server.server_address[1]}/", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert ("Traceback" in capfd.readouterr().err) is reported
