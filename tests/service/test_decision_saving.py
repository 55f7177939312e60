"""What a decision claims to save: a plan that leaves demand unserved claims no saving."""

from __future__ import annotations

from tests.service.harness import ServiceHarness, deployment_body


def test_an_infeasible_plan_claims_no_saving() -> None:
    # Found in review: maxReplicas lowered below what the demand needs read Infeasible with an
    # estimatedSavingUsdPerHour of 8.1: the replicas it stops leave demand unserved, which saves nothing.
    world = ServiceHarness(["eu-de"])
    body = deployment_body(rps=30.0)
    world.add(body)
    for _ in range(3):
        world.cycle()
    assert world.status()["readyReplicas"] == 10
    body["spec"]["capacity"]["maxReplicas"] = 6
    body["metadata"]["generation"] = 2
    world.cycle()
    decision = world.status()["lastDecision"]
    assert decision["reason"] == "Infeasible"
    assert "estimatedSavingUsdPerHour" not in decision
    assert "saves" not in world.cycle().plan.deployments[0].explanation.summary
