"""Replicas stranded in a cluster that cannot be reached: what Ready says when they are all the deployment has,
and what they cost while the plan keeps them (Frozen, or nothing reachable replaces them)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.service.harness import ServiceHarness, deployment_body


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
