"""kopf's hub session: credentials as kopf finds them, and never more sockets than configured."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import kopf
import kubernetes.client
import kubernetes.config.kube_config
import pytest
import yaml
from aiohttp import web

from gridshift.shell.connections import bounded_session, login


async def _peak_connections(max_connections: int, requests: int) -> tuple[int, int]:
    """Serve `requests` concurrent GETs through a bounded session; return (peak sockets, answers)."""
    open_now = peak = 0

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(0.05)
        return web.json_response({"kind": "Status"})

    app = web.Application()
    app.router.add_get("/", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A TCP proxy in front of the app counts the client's open sockets.
        nonlocal open_now, peak
        open_now += 1
        peak = max(peak, open_now)
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer), return_exceptions=True)
        open_now -= 1

    proxy = await asyncio.start_server(count, "127.0.0.1", 0)
    proxy_port = proxy.sockets[0].getsockname()[1]
    info = kopf.ConnectionInfo(server=f"http://127.0.0.1:{proxy_port}", token="t0ken", scheme="Bearer")
    context = bounded_session(info, max_connections)
    try:
        answers = await asyncio.gather(*(context.aiohttp_session.get(info.server) for _ in range(requests)))
        statuses = [a.status for a in answers]
        for a in answers:
            a.release()
    finally:
        await context.aiohttp_session.close()
        proxy.close()
        await runner.cleanup()
    return peak, statuses.count(200)


def test_concurrent_requests_share_at_most_the_configured_sockets() -> None:
    peak, ok = asyncio.run(_peak_connections(max_connections=4, requests=40))
    assert ok == 40
    assert 1 <= peak <= 4


def test_an_unbounded_pool_would_open_a_socket_per_request() -> None:
    # The measurement above can see a burst: with the bound raised, the peak follows the requests.
    peak, ok = asyncio.run(_peak_connections(max_connections=1000, requests=40))
    assert ok == 40
    assert peak > 4


def _made_in_a_loop(make: Callable[[], kopf.AiohttpSession]) -> tuple[kopf.AiohttpSession, int]:
    """A session is made inside a running loop (as kopf does); returns it, closed, and its pool limit."""

    async def run() -> tuple[kopf.AiohttpSession, int]:
        context = make()
        assert context.aiohttp_session.connector is not None
        limit = context.aiohttp_session.connector.limit
        await context.aiohttp_session.close()
        return context, limit

    return asyncio.run(run())


def test_session_keeps_endpoint_and_credentials() -> None:
    info = kopf.ConnectionInfo(
        server="https://hub.example:6443", token="t0ken", scheme="Bearer", default_namespace="gridshift-system"
    )
    context, limit = _made_in_a_loop(lambda: bounded_session(info, 7))
    assert limit == 7
    assert context.server == "https://hub.example:6443"
    assert context.default_namespace == "gridshift-system"
    assert context.aiohttp_session.headers["Authorization"] == "Bearer t0ken"


def test_login_reads_the_kubeconfig_like_kopf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "hub", "cluster": {"server": "http://127.0.0.1:6443"}}],
        "users": [{"name": "op", "user": {"token": "s3cret"}}],
        "contexts": [{"name": "hub", "context": {"cluster": "hub", "user": "op", "namespace": "gridshift-system"}}],
        "current-context": "hub",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    # The client library reads $KUBECONFIG once, at import; the operator's process sets it before.
    monkeypatch.setattr(kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    # Loading a kubeconfig sets the library's default configuration: restore it for other tests.
    monkeypatch.setattr(kubernetes.client.Configuration, "_default", kubernetes.client.Configuration._default)

    context, limit = _made_in_a_loop(
        lambda: login(5, logger=logging.getLogger("test"), settings=kopf.OperatorSettings())
    )
    assert limit == 5
    assert context.server == "http://127.0.0.1:6443"
    assert context.aiohttp_session.headers["Authorization"] == "Bearer s3cret"
