"""The world's control server: JSON over HTTP on 127.0.0.1, for tests, the demo and people.

    GET  /clock                      {"sim_time": ISO 8601 UTC, "speed": sim s per real s}
    POST /clock                      {"speed": 720}
    GET  /status                     clock, replicas, loads, routing, faults, endpoints
    GET  /endpoints                  URLs of the price server, ENTSO-E endpoint and exporters
    POST /load                       {"deployment": "<ns>.<name>", "trace": "conv"|"code", "ratePerSecond": 12}
    GET  /faults
    POST /faults/feed                {"zone": "FR"|"*", "mode": "error"|"stall"|"ok", "stallSeconds": 30}
    POST /faults/exporter            {"cluster": "eu-de", "down": true}
    POST /faults/apiserver           {"cluster": "eu-de", "down": true}
    POST /faults/readiness           {"cluster": "eu-de", "namespace": "ns", "pod": "p", "delaySimSeconds": 600}

Bad input answers 400 with {"error": "..."} naming the field. Once the simulation has died, every
route answers 500 naming its error: a world serving frozen counters must not look healthy.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, Protocol

from .clock import WorldClock
from .fleet import LoadSpec
from .httpserver import QuietHandler, WorldHTTPServer
from .trace import TraceName


class Controllable(Protocol):
    """What the control server drives: the World (world.World), named here so control.py needs no import of it."""

    clock: WorldClock
    failure: str | None
    """Why the simulation stopped, None while it runs."""

    def status(self) -> dict[str, Any]: ...

    def endpoints(self) -> dict[str, Any]: ...

    def faults(self) -> dict[str, Any]: ...

    def set_speed(self, speed: float) -> None: ...

    def set_load(self, deployment: str, load: LoadSpec) -> None: ...

    def set_feed_fault(self, zone: str, mode: str, stall_seconds: float = 30.0) -> None: ...

    def set_exporter_down(self, cluster: str, down: bool) -> None: ...

    def set_apiserver_down(self, cluster: str, down: bool) -> None: ...

    def delay_readiness(self, cluster: str, namespace: str, pod: str, sim_seconds: float) -> None: ...


class BadRequest(ValueError):
    pass


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    if name not in body:
        if default is ...:
            raise BadRequest(f"{name}: required")
        return default
    value = body[name]
    if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise BadRequest(f"{name}: expected {getattr(kind, '__name__', kind)}, got a boolean")
    if not isinstance(value, kind):
        raise BadRequest(f"{name}: expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    return value


def _number(body: dict[str, Any], name: str, default: Any = ..., *, minimum: float | None = None) -> float:
    """A finite JSON number (Python's json reads Infinity and NaN, which no field here means)."""
    value = float(_field(body, name, (int, float), default))
    if not math.isfinite(value):
        raise BadRequest(f"{name}: must be a finite number, got {value}")
    if minimum is not None and value < minimum:
        raise BadRequest(f"{name}: must be >= {minimum:g}, got {value}")
    return value


class ControlServer:
    def __init__(self, world: Controllable, port: int = 0, host: str = "127.0.0.1") -> None:
        self.world = world
        self.host = host
        routes: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {
            ("GET", "/clock"): lambda _: world.clock.read().as_json(),
            ("POST", "/clock"): self._set_clock,
            ("GET", "/status"): lambda _: world.status(),
            ("GET", "/endpoints"): lambda _: world.endpoints(),
            ("POST", "/load"): self._set_load,
            ("GET", "/faults"): lambda _: world.faults(),
            ("POST", "/faults/feed"): self._feed_fault,
            ("POST", "/faults/exporter"): self._exporter_fault,
            ("POST", "/faults/apiserver"): self._apiserver_fault,
            ("POST", "/faults/readiness"): self._readiness_fault,
        }

        class Handler(QuietHandler):
            def _handle(self, method: str) -> None:
                path = self.path.split("?", 1)[0].rstrip("/") or "/"
                route = routes.get((method, path))
                if route is None:
                    known = sorted(f"{m} {p}" for m, p in routes)
                    self._reply(404, {"error": f"no route {method} {path}", "routes": known})
                    return
                failure = world.failure
                if failure is not None:
                    self._reply(500, {"error": f"world simulation stopped: {failure}"})
                    return
                try:
                    body: dict[str, Any] = {}
                    if method == "POST":
                        length = int(self.headers.get("Content-Length") or 0)
                        parsed = json.loads(self.rfile.read(length) or b"{}")
                        if not isinstance(parsed, dict):
                            raise BadRequest("body: expected a JSON object")
                        body = parsed
                    self._reply(200, route(body))
                except (BadRequest, ValueError, json.JSONDecodeError) as error:
                    self._reply(400, {"error": str(error)})
                except Exception as error:  # a failing fault action (e.g. kwokctl) is the caller's news
                    self._reply(500, {"error": f"{type(error).__name__}: {error}"})

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def _reply(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = WorldHTTPServer((host, port), Handler, "world-control")
        self.port = self._server.port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def _set_clock(self, body: dict[str, Any]) -> Any:
        speed = _number(body, "speed")
        self.world.set_speed(speed)
        return self.world.clock.read().as_json()

    def _set_load(self, body: dict[str, Any]) -> Any:
        deployment = _field(body, "deployment", str)
        trace = _field(body, "trace", str, TraceName.CONVERSATION.value)
        if trace not in {t.value for t in TraceName}:
            raise BadRequest(f"trace: {trace!r} is not one of {[t.value for t in TraceName]}")
        rate = _number(body, "ratePerSecond", minimum=0)
        self.world.set_load(deployment, LoadSpec(TraceName(trace), rate))
        return {"deployment": deployment, "trace": trace, "ratePerSecond": rate}

    def _feed_fault(self, body: dict[str, Any]) -> Any:
        zone = _field(body, "zone", str)
        mode = _field(body, "mode", str)
        if mode not in ("ok", "error", "stall"):
            raise BadRequest(f"mode: {mode!r} is not one of ok, error, stall")
        stall = _number(body, "stallSeconds", 30.0)
        self.world.set_feed_fault(zone, mode, stall)
        return self.world.faults()

    def _exporter_fault(self, body: dict[str, Any]) -> Any:
        self.world.set_exporter_down(_field(body, "cluster", str), _field(body, "down", bool))
        return self.world.faults()

    def _apiserver_fault(self, body: dict[str, Any]) -> Any:
        self.world.set_apiserver_down(_field(body, "cluster", str), _field(body, "down", bool))
        return self.world.faults()

    def _readiness_fault(self, body: dict[str, Any]) -> Any:
        self.world.delay_readiness(
            _field(body, "cluster", str),
            _field(body, "namespace", str),
            _field(body, "pod", str),
            _number(body, "delaySimSeconds"),
        )
        return self.world.faults()
