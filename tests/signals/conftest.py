"""Helpers for signal tests: a real HTTP server on 127.0.0.1 answering what each test scripts."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "signals"
ENTSOE_FIXTURES = FIXTURES / "entsoe"


@dataclass(frozen=True)
class Request:
    """What the server received."""

    path: str
    params: dict[str, str]
    headers: dict[str, str]


@dataclass
class Reply:
    """What the server answers: a body, or a misbehaviour (delay before the body, truncation)."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    """Sleep after the headers and before the body: a slow server."""
    truncate_to: int | None = None
    """Announce the full Content-Length but send only this many bytes, then close."""


Responder = Callable[[Request], Reply]


class LocalServer:
    """An HTTP server on a free port of 127.0.0.1; `respond` decides each answer."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.respond: Responder = lambda request: Reply(status=404, body=b"no responder")
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                return

            def do_GET(self) -> None:
                # A body (POST, PATCH) is read, so the next request on a kept-alive connection parses.
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = urlsplit(self.path)
                request = Request(
                    path=parts.path,
                    params={k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                )
                server.requests.append(request)
                reply = server.respond(request)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.truncate_to is not None:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.flush()
                if reply.delay_seconds:
                    time.sleep(reply.delay_seconds)
                try:
                    self.wfile.write(reply.body if reply.truncate_to is None else reply.body[: reply.truncate_to])
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                if reply.truncate_to is not None:
                    self.close_connection = True

            do_POST = do_GET
            do_PATCH = do_GET

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    def answer(self, reply: Reply) -> None:
        """Answer every request with `reply`."""
        self.respond = lambda request: reply

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    server = LocalServer()
    yield server
    server.close()


class RecordingSleep:
    """Stands in for time.sleep: records waits, never waits."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def recording_sleep() -> RecordingSleep:
    return RecordingSleep()


class DripServer:
    """An HTTP server on 127.0.0.1 that answers slowly but steadily: one byte every `interval` seconds.

    Each byte arrives well within any per-read timeout, so only a total deadline ends the exchange.
    `drip_headers` drips the status line and headers too (not just the body). `hangups` records, per
    connection, the seconds from accept to the client closing its end.
    """

    def __init__(
        self,
        body: bytes,
        *,
        interval: float = 1.0,
        drip_headers: bool = False,
        fast_first: int = 0,
        content_type: str = "application/xml",
    ) -> None:
        self.body = body
        self.interval = interval
        self.drip_headers = drip_headers
        self.fast_first = fast_first
        """The first `fast_first` connections are answered at once, whole: a healthy upstream that then degrades."""
        self.content_type = content_type
        self.hangups: list[float] = []
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._closed = threading.Event()
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            fast = self.connections <= self.fast_first
            threading.Thread(target=self._serve, args=(connection, fast), daemon=True).start()

    def _serve(self, connection: socket.socket, fast: bool) -> None:
        accepted = time.monotonic()
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: {self.content_type}\r\n"
            f"Content-Length: {len(self.body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        with connection:
            connection.recv(65536)  # the request
            if fast:
                connection.sendall(head + self.body)
                return
            if not self.drip_headers:
                connection.sendall(head)
            payload = (head if self.drip_headers else b"") + self.body
            try:
                for byte in payload:
                    # Between bytes, watch for the client's end closing (readable with nothing to read).
                    readable, _, _ = select.select([connection], [], [], self.interval)
                    if self._closed.is_set() or (readable and not connection.recv(1)):
                        break
                    connection.sendall(bytes([byte]))
                else:
                    connection.recv(1)  # all sent: wait for the client to close its end
            except OSError:
                pass
            if not self._closed.is_set():
                self.hangups.append(time.monotonic() - accepted)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
