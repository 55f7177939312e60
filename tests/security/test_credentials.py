"""Finding 5 of issue 15: a Secret is read only for the purpose its owner labelled it for.

On the real hub: a RegionalCluster whose price feed names the member kubeconfig Secret as its token,
with an endpoint of the writer's choice, gets the feed refused; the endpoint never receives the
kubeconfig. A kubeconfig Secret without the member-kubeconfig label is not used either.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from tests.e2e.operator_env import regional_cluster
from tests.security.harness import NAMESPACE, SecureWorld, kubeconfig_text, unique, with_token

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    """An HTTP endpoint that records every request line and body it receives."""
    received: list[str] = []

    class Record(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.append(self.path + str(dict(self.headers)))
            self.send_response(500)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Record)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api", received
    finally:
        server.shutdown()


def test_a_feed_cannot_use_a_member_kubeconfig_as_its_token(
    world: SecureWorld, listener: tuple[str, list[str]]
) -> None:
    url, received = listener
    token = unique("member-token")
    world.secret(
        "kubeconfig-exfil",
        {"kubeconfig": with_token(kubeconfig_text(world.planes, "eu-de"), token)},
        "member-kubeconfig",
    )
    body = regional_cluster("exfil", 50.0)
    body["spec"]["kubeconfigSecretRef"]["name"] = "kubeconfig-exfil"
    body["spec"]["priceFeed"] = {
        "type": "entsoe",
        "currency": "EUR",
        "fxToUsd": 1.0,
        "entsoe": {
            "areaEic": "10Y1001A1001A82H",
            "endpoint": url,
            "tokenSecretRef": {"name": "kubeconfig-exfil", "namespace": NAMESPACE, "key": "kubeconfig"},
        },
    }
    world.regional_cluster(body)
    service = world.service()
    for _ in range(3):
        world.cycle(service)
    cluster = next(c for c in world.bodies("regionalclusters") if c["metadata"]["name"] == "exfil")
    stale = next(c for c in cluster["status"]["conditions"] if c["type"] == "PriceFeedStale")
    assert stale["status"] == "True" and "price-feed-token" in stale["message"]
    assert not [r for r in received if token in r or "kubeconfig" in r.lower()], received
    assert token not in str(cluster)


def test_an_unlabelled_kubeconfig_secret_is_not_used(world: SecureWorld) -> None:
    world.secret("kubeconfig-unlabelled", {"kubeconfig": kubeconfig_text(world.planes, "eu-fr")}, None)
    body = regional_cluster("unlabelled", 50.0)
    body["spec"]["kubeconfigSecretRef"]["name"] = "kubeconfig-unlabelled"
    world.regional_cluster(body)
    world.cycle(world.service())
    cluster = next(c for c in world.bodies("regionalclusters") if c["metadata"]["name"] == "unlabelled")
    reachable = next(c for c in cluster["status"]["conditions"] if c["type"] == "Reachable")
    assert reachable["status"] == "False"
    assert "gridshift.dev/secret-purpose=member-kubeconfig" in reachable["message"]
