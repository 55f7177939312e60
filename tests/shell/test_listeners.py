"""The operator's /healthz and /metrics answer on IPv4 and IPv6 (review: both were bound to 0.0.0.0 only,
so an IPv6 single-stack cluster's kubelet probes and Prometheus scrapes were refused)."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.request

import prometheus_client
import pytest

from gridshift.shell import listeners

LOOPBACKS = ("127.0.0.1", "[::1]")


def _free_port() -> int:
    with socket.socket(socket.AF_INET6 if socket.has_ipv6 else socket.AF_INET) as probe:
        probe.bind(("", 0))
        return int(probe.getsockname()[1])


def _get(host: str, port: int, path: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as answer:
        return answer.status, answer.read()


requires_ipv6 = pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 in this kernel")


@requires_ipv6
def test_metrics_answer_on_ipv4_and_ipv6() -> None:
    registry = prometheus_client.CollectorRegistry()
    prometheus_client.Gauge("gridshift_listener_test", "A gauge.", registry=registry).set(1)
    port = _free_port()
    server = listeners.serve_metrics(port, registry)
    try:
        for host in LOOPBACKS:
            status, body = _get(host, port, "/metrics")
            assert status == 200 and b"gridshift_listener_test 1.0" in body, host
    finally:
        server.shutdown()
        server.server_close()


@requires_ipv6
def test_health_answers_on_ipv4_and_ipv6() -> None:
    async def scenario() -> list[tuple[int, bytes]]:
        port = _free_port()
        runner = await listeners.serve_health(port, lambda: {"cycles": 0})
        try:
            return [await asyncio.to_thread(_get, host, port, "/healthz") for host in LOOPBACKS]
        finally:
            await runner.cleanup()

    for status, body in asyncio.run(scenario()):
        assert status == 200 and json.loads(body) == {"planCycle": {"cycles": 0}}
