"""Replicas stranded in a cluster that cannot be reached: what Ready says when they are all the deployment has,
and what they cost while the plan keeps them (Frozen, or nothing reachable replaces them)."""

from __future__ import annotations

from typing import Any

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
