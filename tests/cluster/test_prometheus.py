"""The Prometheus fixture scrapes arbitrary targets (later: simulated vLLM / DCGM exporters)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from .helpers import wait_for

pytestmark = pytest.mark.cluster


class _Exporter(http.server.BaseHTTPRequestHandler):
    value = 0.0

    def do_GET(self) -> None:
        body = (
            "# HELP vllm:num_requests_running Requests running.\n"
            "# TYPE vllm:num_requests_running gauge\n"
            f'vllm:num_requests_running{{model_name="m"}} {type(self).value}\n'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def exporter() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def test_prometheus_scrapes_targets(prometheus_factory: Any, exporter: str) -> None:
    _Exporter.value = 7
    prom = prometheus_factory({"vllm": [exporter]}, scrape_interval="1s")
    assert prom.url.startswith("http://127.0.0.1:")

    def sample() -> float | None:
        res = prom.query('vllm:num_requests_running{job="vllm"}')["result"]
        return float(res[0]["value"][1]) if res else None

    assert wait_for(sample, 30, "first scrape") == 7.0

    # retarget at runtime (config rewrite + /-/reload)
    prom.set_targets({"other": [exporter]})
    wait_for(lambda: prom.query('up{job="other"}')["result"], 30, "scrape of the new job")
