"""Finding 5 of issue 15: a Secret is read only for the purpose its owner labelled it for.

On the real hub: a RegionalCluster whose price feed names the member kubeconfig Secret as its token,
with an endpoint of the writer's choice, gets the feed refused; the endpoint never receives the
kubeconfig. A kubeconfig Secret without the member-kubeconfig label is not used either.
"""

from __future__ import annotations

import pytest

from tests.e2e.operator_env import regional_cluster
from tests.security.harness import NAMESPACE, SecureWorld, kubeconfig_text, unique, with_token
from tests.signals.conftest import LocalServer, Reply

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]


def test_a_feed_cannot_use_a_member_kubeconfig_as_its_token(world: SecureWorld, local_server: LocalServer) -> None:
    local_server.answer(Reply(status=500))
    url = f"{local_server.url}/api"
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
    received = [r.path + str(r.params) + str(r.headers) for r in local_server.requests]
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
