"""An apiserver stand-in on 127.0.0.1 that answers reads and drips every write's answer a byte at a time.

Shared by the write-window tests of the member adapter (tests/actuation/test_member_write_window.py) and of the
hub client (tests/hub/test_hub_write_window.py), through the `dripping_apiserver` fixture (tests/conftest.py).
Each dripped byte arrives well within any per-read timeout, so only a total deadline ends a write: what the
write window must do, whatever the server does.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any


class DrippingApiserver(http.server.ThreadingHTTPServer):
    daemon_threads = True
    answers: dict[str, Any]
    """Bodies of GETs answered at once, by path (discovery)."""
    objects: dict[str, Any]
    """Bodies of GETs answered after `read_seconds`, by path (the objects a write reads first); other paths 404."""
    read_seconds = 0.0
    """How long a GET of one of `objects` takes to answer (whole, at once)."""
    writes: list[tuple[str, str]]
    """(method, path) of every write request received, in order: a write not sent is not here."""
    stop: threading.Event
    """Set: every dripped answer ends (and reads wait no longer)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # kept alive, as an apiserver does
    server: DrippingApiserver

    def log_message(self, *args: Any) -> None:
        pass

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path in self.server.answers:
            self._json(200, self.server.answers[path])
            return
        self.server.stop.wait(self.server.read_seconds)
        if path not in self.server.objects:
            self._json(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404})
            return
        self._json(200, self.server.objects[path])

    def _drip(self) -> None:
        """The write's answer a byte at a time, for as long as the client keeps its socket open."""
        self.server.writes.append((self.command, self.path.split("?")[0]))
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            while not self.server.stop.wait(0.1):
                self.wfile.write(b" ")
                self.wfile.flush()
        except OSError:
            pass  # the client gave up: its socket is shut

    do_PATCH = _drip
    do_DELETE = _drip
    do_POST = _drip
    do_PUT = _drip


def serve() -> Iterator[DrippingApiserver]:
    """The fixture's body: a server on a free port, stopped (its drips ended) after the test."""
    server = DrippingApiserver(("127.0.0.1", 0), _Handler)
    server.answers, server.objects, server.writes, server.stop = {}, {}, [], threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.stop.set()
    server.shutdown()
    server.server_close()


def ended(call: Callable[[], Any], bound: float) -> tuple[BaseException | None, float]:
    """What `call` raised (None if nothing) and after how many seconds; fails the test if it has not ended within
    `bound` (a dripped call that never ends must not hang the test with it)."""
    outcome: list[BaseException | None] = []
    started = time.monotonic()

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(bound)
    assert outcome, f"the call had not ended after {bound:g} s"
    return outcome[0], time.monotonic() - started
