"""An Infeasible decision's stored explanation (status.lastDecision.explanation) opens with the reason Ready gives,
also when that reason changes while the decision (target, mode, Infeasible) stays, or when it was stored before
explanations opened with it: the stored decision is otherwise kept, and no Event says it again (found in review)."""

from __future__ import annotations

from typing import Any

from gridshift.hub.client import ObjectRef
from tests.service.harness import ServiceHarness, deployment_body


def _ready(status: dict[str, Any]) -> str:
    message: str = next(c for c in status["conditions"] if c["type"] == "Ready")["message"]
    return message


def _infeasible_for_max_replicas() -> tuple[ServiceHarness, dict[str, Any]]:
    # One region, maxReplicas 2 far below the demand: Infeasible, both replicas placed.
    world = ServiceHarness(["eu-de"])
    body = deployment_body(rps=30.0, capacity={"minReplicas": 1, "maxReplicas": 2})
    world.add(body)
    for _ in range(3):
        world.cycle()
    assert world.status()["lastDecision"]["reason"] == "Infeasible", world.status()["lastDecision"]
    return world, body


def test_the_explanation_follows_a_changed_infeasible_reason_without_a_new_decision() -> None:
    world, body = _infeasible_for_max_replicas()
    first = world.status()["lastDecision"]
    events = list(world.hub.events)
    # minRegions 2 with one region: a second reason, the same placement (the same decision).
    body["spec"]["capacity"] = {"minReplicas": 1, "maxReplicas": 2, "minRegions": 2}
    body["metadata"]["generation"] = 2
    for _ in range(2):
        world.cycle()
    status = world.status()
    decision = status["lastDecision"]
    assert "minRegions 2" in _ready(status), _ready(status)
    opening = decision["explanation"].split("\n")[0]
    assert opening and _ready(status).startswith(opening), (opening, _ready(status))
    assert "minRegions 2" in opening, decision
    assert {k: v for k, v in decision.items() if k != "explanation"} == {
        k: v for k, v in first.items() if k != "explanation"
    }
    assert world.hub.events == events  # the decision is the same: said once


def test_an_explanation_stored_empty_before_the_upgrade_is_filled_in() -> None:
    world, _ = _infeasible_for_max_replicas()
    stored = world.status()["lastDecision"]
    # As an operator before explanations opened with the reason wrote it.
    stored["explanation"] = ""
    world.hub.statuses[ObjectRef("InferenceDeployment", "ml", "chat", "uid-chat")]["lastDecision"]["explanation"] = ""
    events = list(world.hub.events)
    world.cycle()
    status = world.status()
    assert status["lastDecision"]["explanation"].split("\n")[0] and _ready(status).startswith(
        status["lastDecision"]["explanation"].split("\n")[0]
    ), status["lastDecision"]
    assert status["lastDecision"]["time"] == stored["time"]
    assert world.hub.events == events
    # Once said, it holds: the next cycle writes nothing.
    report = world.cycle()
    assert report.status_writes == 0, report
