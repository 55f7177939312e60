"""What the world's feed servers share: an HTTP server on 127.0.0.1 answering one feed API's
recorded series at the simulated time, with faults injected by zone.

e2e.world.prices.PriceServer (ENTSO-E and JSON prices) and e2e.world.carbon.CarbonServer (Electricity
Maps, WattTime, GB Carbon Intensity) say only which zone a request is about and what it is answered;
the serving, the fault injection (an error answer or a stall, by zone or "*") and the counting are here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import parse_qs, urlsplit

from .httpserver import QuietHandler, WorldHTTPServer


class FeedFaultMode(StrEnum):
    OK = "ok"
    ERROR = "error"
    """Answer HTTP 500."""
    STALL = "stall"
    """Hold the request for `stall_seconds` (real) before answering: client timeouts fire."""


@dataclass(frozen=True)
class FeedFault:
    mode: FeedFaultMode = FeedFaultMode.OK
    stall_seconds: float = 30.0
    """Real seconds a stalled request is held."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    content_type: str


class SeriesServer:
    """A feed API over HTTP on 127.0.0.1, reading simulated time from `now`; subclasses route requests."""

    def __init__(self, name: str, now: Callable[[], datetime], port: int = 0, host: str = "127.0.0.1") -> None:
        self.now = now
        self.host = host
        self.faults: dict[str, FeedFault] = {}
        """Zone name (or "*") -> fault."""
        self.requests_served = 0
        self._lock = threading.Lock()
        self._stall_release = threading.Event()
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                fault = server.fault_for(server.zone_of(parts.path, query))
                if fault.mode is FeedFaultMode.STALL:
                    server._stall_release.wait(fault.stall_seconds)
                if fault.mode is FeedFaultMode.ERROR:
                    self._send(Answer(500, "Internal Server Error (simulated fault)\n", "text/plain"))
                    return
                self._send(server.answer(parts.path, query, headers))

            def _send(self, answer: Answer) -> None:
                body = answer.body.encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", answer.content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a stall fault outlived its timeout)
                with server._lock:
                    server.requests_served += 1

        self._server = WorldHTTPServer((host, port), Handler, name)
        self.port = self._server.port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._stall_release.set()
        self._server.stop()

    @property
    def known_zones(self) -> list[str]:
        """The zones a fault may name."""
        raise NotImplementedError

    def zone_of(self, path: str, query: dict[str, str]) -> str | None:
        """The zone a request is about (its faults apply), if any."""
        raise NotImplementedError

    def answer(self, path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        raise NotImplementedError

    def fault_for(self, zone: str | None) -> FeedFault:
        with self._lock:
            return self.faults.get(zone or "", self.faults.get("*", FeedFault()))

    def set_fault(self, zone: str, fault: FeedFault) -> None:
        if zone != "*" and zone not in self.known_zones:
            raise ValueError(f"fault zone: {zone!r} is not one of {self.known_zones} or '*'")
        with self._lock:
            if fault.mode is FeedFaultMode.OK:
                self.faults.pop(zone, None)
            else:
                self.faults[zone] = fault
            if not any(f.mode is FeedFaultMode.STALL for f in self.faults.values()):
                self._stall_release.set()
                self._stall_release = threading.Event()
