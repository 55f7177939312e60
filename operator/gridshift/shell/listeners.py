"""The operator's two HTTP listeners, /healthz on probePort and /metrics on metricsPort, on every
address family the pod has.

Found in review: both listened on 0.0.0.0 only (kopf's `--liveness=http://0.0.0.0:...` and
prometheus_client's default address), so in an IPv6 single-stack cluster the kubelet's probes and
Prometheus' scrapes of the pod's IPv6 address were refused, and the pod was restarted forever. kopf's
liveness endpoint cannot serve both families: it binds the one host of its URL through asyncio, which sets
IPV6_V6ONLY on '::' (`--liveness=http://[::]:8080/healthz` refuses 127.0.0.1). So /healthz is served
here, in kopf's event loop as kopf's was: it stops answering when that loop does.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIServer

import aiohttp.web
import prometheus_client

log = logging.getLogger(__name__)

IPV4_ANY = "0.0.0.0"
IPV6_ANY = "::"
HEALTH_PATH = "/healthz"


async def serve_health(port: int, health: Callable[[], dict[str, Any]]) -> aiohttp.web.AppRunner:
    """Serve `{"planCycle": health()}` at GET /healthz on every address (stop with `runner.cleanup()`).

    No host makes asyncio bind '::' and 0.0.0.0 as two sockets, and skip a family the kernel lacks; a
    kernel whose IPv6 refuses the bind gets 0.0.0.0 alone."""

    async def get_health(_: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.json_response({"planCycle": health()})

    app = aiohttp.web.Application()
    app.add_routes([aiohttp.web.get(HEALTH_PATH, get_health)])
    runner = aiohttp.web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await aiohttp.web.TCPSite(runner, None, port).start()
    except OSError as error:
        log.warning("health endpoint: binding every address failed (%s); listening on %s only", error, IPV4_ANY)
        await aiohttp.web.TCPSite(runner, IPV4_ANY, port).start()
    return runner


def serve_metrics(port: int, registry: prometheus_client.CollectorRegistry) -> WSGIServer:
    """/metrics on '::', which Linux also opens to IPv4 (net.ipv6.bindv6only is 0 unless changed), in a
    thread of prometheus_client's; on 0.0.0.0 where the kernel has no IPv6. Returns the server (to shut down)."""
    if socket.has_ipv6:
        try:
            return prometheus_client.start_http_server(port, addr=IPV6_ANY, registry=registry)[0]
        except OSError as error:
            log.warning("metrics endpoint: binding %s failed (%s); listening on %s", IPV6_ANY, error, IPV4_ANY)
    return prometheus_client.start_http_server(port, addr=IPV4_ANY, registry=registry)[0]
