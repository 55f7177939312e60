"""Finding 8 of issue 15, on the real control planes: a price feed that drips its answer never holds a cycle.

A RegionalCluster's httpJson feed points at a local server that sends one byte a second. Before,
the cycle read the feed synchronously with a per-read timeout, and one such endpoint held it for 81 s.
Now the feed refreshes in the background under a total deadline: every cycle returns in seconds and
the deployment is placed in the other regions meanwhile.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest

from tests.e2e.operator_env import regional_cluster
from tests.security.harness import SecureWorld, inference_deployment, unique

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]


@pytest.fixture
def drip() -> Iterator[str]:
    stop = threading.Event()

    class Drip(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                while not stop.is_set():
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(1.0)
            except OSError:
                pass  # the client gave up: what it should do

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Drip)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/prices"
    finally:
        stop.set()
        server.shutdown()


def test_a_dripping_feed_never_holds_the_cycle(world: SecureWorld, drip: str) -> None:
    body = regional_cluster("dripping", 1.0)
    body["spec"]["kubeconfigSecretRef"]["name"] = "kubeconfig-eu-de"  # a reachable cluster, its feed dripping
    # Its own namespace there: two RegionalClusters writing the same Deployment would undo each other.
    namespace = unique("gs-dripping")
    world.planes.kubectl("eu-de", "create", "namespace", namespace)
    body["spec"]["workloadNamespace"] = namespace
    body["spec"]["priceFeed"] = {"type": "httpJson", "currency": "USD", "refreshSeconds": 30, "httpJson": {"url": drip}}
    world.regional_cluster(body)
    name = unique("undelayed")
    world.deploy(inference_deployment(name, rps=4.0))
    service = world.service()
    slowest = 0.0
    for _ in range(6):
        started = time.monotonic()
        world.cycle(service)
        slowest = max(slowest, time.monotonic() - started)
    assert slowest < 8.0, f"a cycle took {slowest:.1f} s with a dripping feed"
    owner = f"ml/{name}"
    placed = sum(world.owned_replicas("ml", name).values()) + sum(
        int(d["spec"].get("replicas") or 0)
        for d in world.member_deployments("eu-de", namespace)
        if (d["metadata"].get("annotations") or {}).get("gridshift.dev/owner") == owner
    )
    assert placed > 0
    cluster = next(c for c in world.bodies("regionalclusters") if c["metadata"]["name"] == "dripping")
    stale = next(c for c in cluster["status"]["conditions"] if c["type"] == "PriceFeedStale")
    assert stale["status"] == "True"
    world.planes.kubectl("eu-de", "delete", "namespace", namespace, "--wait=false", check=False)
