"""Replicas stranded in a cluster that cannot be reached: what Ready says when they are all the deployment has,
what they cost while the plan keeps them (Frozen, or nothing reachable replaces them), and whether they count as
desired (also on a GPU type dropped from spec.gpuTypes while the cluster was away)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.service.harness import H100, ServiceHarness, deployment_body, example_profile
from tests.service.test_metrics import samples
from tests.service.test_status import settled


def _ready(world: ServiceHarness) -> dict[str, Any]:
    return next(c for c in world.status()["conditions"] if c["type"] == "Ready")


def test_the_only_cluster_lost_is_named_as_the_cause_not_min_regions() -> None:
    # Found in review: "Infeasible: no eligible cluster and GPU type: minRegions 1 cannot be met: only 0 eligible
    # region(s) can run it", a rule the user never set, where the cause was the one cluster being unreachable.
    world = ServiceHarness(["eu-de"])
    world.add(deployment_body(rps=30.0))
    for _ in range(3):
        world.cycle()
    world.members["eu-de"].reachable = False
    world.cycle()
    ready = _ready(world)
    assert (ready["status"], ready["reason"]) == ("False", "Infeasible")
    assert "minRegions" not in ready["message"]
    assert ready["message"].startswith("no eligible cluster and GPU type: eu-de unreachable"), ready["message"]


def _predicted_cost(world: ServiceHarness) -> dict[str, float]:
    found = {}
    for family in world.service.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "gridshift_deployment_predicted_cost_usd_per_hour":
                found[sample.labels["region"]] = sample.value
    return found


def test_replicas_frozen_in_a_lost_cluster_keep_their_cost() -> None:
    # Found in review: Frozen with eu-de unreachable priced its 10 replicas there at 0: the predicted cost metric
    # for eu-de went while desired_replicas stayed, and after any spec edit status.cost read 0.0 USD/h.
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 40.0, "eu-fr": 90.0})
    body = deployment_body(rps=30.0)
    world.add(body)
    for _ in range(3):
        world.cycle()
    body["spec"]["migration"]["mode"] = "Frozen"
    body["metadata"]["generation"] = 2
    world.cycle()
    reachable_cost = world.status()["cost"]["usdPerHour"]
    reachable_metric = _predicted_cost(world)
    assert reachable_cost > 0 and set(reachable_metric) == {"eu-de"}
    world.members["eu-de"].reachable = False
    world.cycle()
    assert _predicted_cost(world) == reachable_metric
    body["spec"]["slo"]["ttftP95Ms"] = 600
    body["metadata"]["generation"] = 3
    world.cycle()
    status = world.status()
    assert status["desiredReplicas"] == 10
    assert status["cost"]["usdPerHour"] == reachable_cost
    assert status["cost"]["time"] == world.now.isoformat().replace("+00:00", "Z")  # refreshed, not kept
    assert _predicted_cost(world) == reachable_metric


def test_replicas_of_the_only_cluster_lost_keep_their_cost() -> None:
    # Found in review: Auto with its only cluster unreachable kept its 10 replicas there (nothing replaces them)
    # and read status.cost 0.0 USD/h, the $/Mtok blank, no predicted cost metric.
    world = ServiceHarness(["eu-de"])
    world.add(deployment_body(rps=30.0))
    for _ in range(3):
        world.cycle()
    before = world.status()["cost"]["usdPerHour"]
    world.members["eu-de"].reachable = False
    world.cycle()
    cost = world.status()["cost"]
    assert cost["usdPerHour"] == pytest.approx(before, rel=0.01)
    assert cost["usdPerMillionTokens"] > 0
    assert _predicted_cost(world)["eu-de"] == pytest.approx(before, rel=0.01)


def test_replicas_of_the_only_cluster_lost_keep_their_cost_per_token_when_planned_by_class() -> None:
    # Found in review: planned by request class, the same case read status.cost 26.3 USD/h without
    # usdPerMillionTokens and joulesPerToken: the groups' costs were added up over their reachable capacity, 0.
    world = ServiceHarness(["eu-de"])
    body = deployment_body(rps=30.0)
    body["spec"]["demand"]["requestClasses"] = [
        {"name": "short", "promptTokens": 300, "outputTokens": 150, "share": 0.5},
        {"name": "long", "promptTokens": 2000, "outputTokens": 300, "share": 0.5},
    ]
    world.add(body)
    for _ in range(3):
        world.cycle()
    before = world.status()["cost"]
    assert world.cycle().plan.deployments[0].class_routing  # planned by class
    world.members["eu-de"].reachable = False
    world.cycle()
    cost = world.status()["cost"]
    assert cost["usdPerHour"] == pytest.approx(before["usdPerHour"], rel=0.01)
    assert cost["usdPerMillionTokens"] == pytest.approx(before["usdPerMillionTokens"], rel=0.01)
    assert cost["joulesPerToken"] == pytest.approx(before["joulesPerToken"], rel=0.01)


A100 = "NVIDIA-A100-SXM4-80GB"


def _desired_by_region(world: ServiceHarness) -> dict[str, float]:
    return {
        dict(k)["region"]: v for k, v in samples(world.service.metrics, "gridshift_deployment_desired_replicas").items()
    }


def _lost_then_gpu_type_dropped(world: ServiceHarness, body: dict[str, Any], mode: str, dropped: bool) -> None:
    """The deployment placed in eu-de (on H100), set to `mode`, eu-de lost, then (`dropped`) H100 taken out of
    spec.gpuTypes (A100 left) while eu-de is away: the hub cannot stop its replicas there."""
    world.add(body)
    settled(world, 2)
    body["spec"]["migration"]["mode"] = mode
    body["metadata"]["generation"] = 2
    settled(world, 2)
    world.members["eu-de"].reachable = False
    if dropped:
        body["spec"]["replica"]["gpuTypes"] = [A100]
        body["metadata"]["generation"] = 3


@pytest.mark.parametrize("mode", ["Auto", "Advisory"])
def test_replicas_on_a_gpu_type_dropped_while_their_only_cluster_is_lost_stay_desired_and_decide_nothing(
    mode: str,
) -> None:
    # Found in review: nothing reachable replaces them, so they run on (the cost counts them, unpriced), yet no target
    # named them: desiredReplicas 0, no region, "0/0 replicas Ready", where eu-de reachable read 10 (its replicas
    # then strays the plan keeps outside it). Listed as unreachable targets instead (a431c88, reverted), the decision
    # flipped between "eu-de/H100 x10" and "nothing" with each change of eu-de's reachability, an Event each time.
    world = ServiceHarness(["eu-de"])
    _lost_then_gpu_type_dropped(world, deployment_body(rps=30.0), mode, dropped=True)
    status = settled(world, 2)
    decided, events = status["lastDecision"], len([e for e in world.hub.events if e.reason != "RoutingGrace"])
    assert decided["target"] == "nothing"  # the plan wants none of them, as when eu-de answers
    for reachable in (True, False, True, False):
        world.members["eu-de"].reachable = reachable
        status = settled(world, 2)
        assert (status["desiredReplicas"], status["regions"]) == (10, "eu-de"), (reachable, status)
        assert f"{10 if reachable else 0}/10 replicas Ready" in _ready(world)["message"], _ready(world)
        assert _desired_by_region(world) == {"eu-de": 10.0}
        assert status["lastDecision"] == decided  # reachability alone is no new decision ...
    assert len([e for e in world.hub.events if e.reason != "RoutingGrace"]) == events  # ... and no Event
    assert status["cost"]["unpricedReplicas"] == 10


@pytest.mark.parametrize("dropped", [False, True], ids=["H100 accepted", "H100 dropped"])
@pytest.mark.parametrize("mode", ["Auto", "Advisory"])
def test_a_lost_clusters_replicas_count_desired_alike_whether_their_gpu_type_is_accepted_or_dropped(
    mode: str, dropped: bool
) -> None:
    # eu-fr (A100) can replace them. Auto does (eu-fr/A100 x10: the stranded ones are not desired, as before the
    # fix; the replicas it places are the same either way); Advisory acts on nothing, so those in eu-de stay desired.
    # Before: Advisory with H100 dropped read desiredReplicas 0 and no region while its 10 replicas ran on.
    h100 = example_profile()
    world = ServiceHarness(
        ["eu-de", "eu-fr"], prices={"eu-de": 20.0, "eu-fr": 90.0}, profiles=[h100, replace(h100, gpu_type=A100)]
    )
    world.members["eu-fr"].gpus = {A100: 16}
    world.cluster_bodies["eu-fr"]["spec"]["offerings"] = [
        {"gpuType": A100, "hourlyCost": {"amount": 2.0, "currency": "USD"}}
    ]
    body = deployment_body(rps=30.0, replica={"gpuTypes": [H100, A100]})
    _lost_then_gpu_type_dropped(world, body, mode, dropped)
    status = settled(world, 3)
    assert status["lastDecision"]["target"] == f"eu-fr/{A100} x10"
    placed = "eu-fr" if mode == "Auto" else "eu-de"
    assert (status["desiredReplicas"], status["regions"]) == (10, placed), status
    assert _desired_by_region(world) == {placed: 10.0}
    assert world.replicas()["eu-fr"] == (10 if mode == "Auto" else 0)
