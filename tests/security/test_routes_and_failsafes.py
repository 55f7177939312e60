"""Findings 10 and 11 of issue 15, on the real control planes.

10. HTTPRoute weights are written only on routes labelled gridshift.dev/managed-route=true, and with
    the resourceVersion they were read at: another HTTPRoute in the namespace is never rewritten.
11. The fail-safes at the service level: Prometheus unreachable means demand unknown, never zero
    (replicas are not scaled below what runs), and says so in MetricsStale; a stale price feed says
    so in PriceFeedStale and moves nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gridshift.hub.client import KubeHub, RouteConflict
from tests.e2e.test_operator import HTTPROUTE_CRD
from tests.security.harness import SecureWorld, inference_deployment, unique

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]


def route(name: str, managed: bool) -> dict[str, Any]:
    labels = {"gridshift.dev/managed-route": "true"} if managed else {}
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": "ml", "labels": labels},
        "spec": {"rules": [{"backendRefs": [{"name": r, "port": 8000, "weight": 1} for r in ("eu-de", "eu-fr")]}]},
    }


def weights(world: SecureWorld, name: str) -> dict[str, int]:
    got = json.loads(world.fleet.hub("get", "httproute", "-n", "ml", name, "-o", "json"))
    return {r["name"]: r["weight"] for r in got["spec"]["rules"][0]["backendRefs"]}


def test_only_managed_routes_are_written_and_never_over_a_concurrent_edit(world: SecureWorld) -> None:
    world.fleet.apply_hub(HTTPROUTE_CRD)
    world.fleet.hub("wait", "--for=condition=Established", "crd/httproutes.gateway.networking.k8s.io", "--timeout=60s")
    foreign, managed = unique("foreign-route"), unique("managed-route")
    world.fleet.apply_hub(route(foreign, managed=False), route(managed, managed=True))
    world.created += [("httproute", "-n", "ml", foreign), ("httproute", "-n", "ml", managed)]
    victim = world.deploy(inference_deployment(unique("routed"), rps=4.0, routing={"httpRouteName": foreign}))
    owner = world.deploy(inference_deployment(unique("owner"), rps=4.0, routing={"httpRouteName": managed}))
    service = world.service()

    world.cycles_until(service, lambda: weights(world, managed) != {"eu-de": 1, "eu-fr": 1}, "the managed route set")
    world.cycles_until(
        service,
        lambda: any(victim["metadata"]["name"] in e and "not labelled" in e for e in world.report.errors),
        "the unmanaged route reported, once the victim's routing is known",
    )
    assert weights(world, foreign) == {"eu-de": 1, "eu-fr": 1}, "an unmanaged HTTPRoute was rewritten"
    assert sum(weights(world, managed).values()) == 100
    assert owner["metadata"]["name"]

    # A write with a stale resourceVersion is refused by the API server, not applied over the other edit.
    from kubernetes import config

    hub = KubeHub(config.new_client_from_config(str(world.planes.kubeconfigs[world.planes.hub])))
    stale = json.loads(world.fleet.hub("get", "httproute", "-n", "ml", managed, "-o", "json"))
    world.fleet.hub("label", "httproute", "-n", "ml", managed, "edited-by=someone-else")
    original_get = hub._custom.get_namespaced_custom_object
    hub._custom.get_namespaced_custom_object = lambda *a, **k: stale  # type: ignore[method-assign]
    with pytest.raises(RouteConflict):
        hub.set_route_weights("ml", managed, {"eu-de": 37, "eu-fr": 63}, {"eu-de", "eu-fr"})
    hub._custom.get_namespaced_custom_object = original_get  # type: ignore[method-assign]


def test_prometheus_down_never_scales_below_what_runs_and_says_so(world: SecureWorld) -> None:
    name = unique("blind")
    world.deploy(inference_deployment(name, rps=30.0, capacity={"minReplicas": 1, "maxReplicas": 12}))
    service = world.service(prometheus_url="http://127.0.0.1:9/")  # nothing listens there
    placed = world.cycles_until(
        service, lambda: sum(world.owned_replicas("ml", name).values()) or None, "placement at the static demand"
    )
    # Demand is now read from Prometheus, which is unreachable: unknown, not zero.
    prometheus = {"source": "Prometheus", "meanPromptTokens": 1000, "meanOutputTokens": 200}
    patch = json.dumps({"spec": {"demand": prometheus}})
    world.fleet.hub("patch", "idep", "-n", "ml", name, "--type=merge", "-p", patch)
    for _ in range(4):
        world.cycle(service)
    assert sum(world.owned_replicas("ml", name).values()) >= placed
    stale = next(c for c in world.status("ml", name)["conditions"] if c["type"] == "MetricsStale")
    assert stale["status"] == "True" and "never scaling below" in stale["message"]


def test_a_stale_price_feed_is_flagged_and_moves_nothing(world: SecureWorld) -> None:
    name = unique("steady")
    world.deploy(inference_deployment(name, rps=4.0))
    service = world.service()
    world.cycles_until(service, lambda: sum(world.owned_replicas("ml", name).values()) > 0, "placement")
    before = world.owned_replicas("ml", name)
    home = next(r for r, n in before.items() if n > 0)
    original = json.loads(world.fleet.hub("get", "regionalcluster", home, "-o", "json"))["spec"]["priceFeed"]
    # The home region's feed loses its endpoint (stale from its first read); every other region turns cheaper.
    dead = {
        "type": "httpJson",
        "static": None,
        "refreshSeconds": 10,
        "staleAfterSeconds": 60,
        "httpJson": {"url": "http://127.0.0.1:9/prices"},
    }
    world.fleet.hub("patch", "regionalcluster", home, "--type=merge", "-p", json.dumps({"spec": {"priceFeed": dead}}))
    try:
        for other in (r for r in world.planes.regions if r != home):
            world.fleet.set_price(other, 1.0)

        def flagged() -> bool:
            conditions = world.status("ml", name).get("conditions", [])
            return any(c["type"] == "PriceFeedStale" and c["status"] == "True" for c in conditions)

        world.cycles_until(service, flagged, "PriceFeedStale on the deployment")
        for _ in range(3):
            world.cycle(service)
        assert world.owned_replicas("ml", name) == before
    finally:
        restore = {**original, "httpJson": None}
        world.fleet.hub(
            "patch", "regionalcluster", home, "--type=merge", "-p", json.dumps({"spec": {"priceFeed": restore}})
        )
        for region, price in (("eu-de", 40.0), ("eu-fr", 90.0), ("us-tx", 60.0)):
            world.fleet.set_price(region, price)
