"""What a decision claims to save, and what it reads as: the steps of a make-before-break move paced by
maxConcurrentMoves, each a move measured against the placement it leaves (not the one with its surge replica
running); and a plan that leaves demand unserved, which claims no saving."""

from __future__ import annotations

from tests.service.harness import ServiceHarness, deployment_body


def test_each_step_of_a_paced_move_is_a_move_and_its_savings_add_up_to_the_moves() -> None:
    # Found in review: after the first step every step of the move read ScaleDown ("removes replicas, less
    # demand") saving 2.34 USD/h each, measured against the 11 replicas running mid-move (the surge counted).
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 40.0, "eu-fr": 90.0})
    world.add(deployment_body(rps=30.0))
    for _ in range(3):
        world.cycle()
    assert world.replicas() == {"eu-de": 10, "eu-fr": 0}
    world.prices.update({"eu-de": 400.0, "eu-fr": 10.0})
    decisions = {}
    first_step = None  # status.cost of the first step's placement (9 + 1), at the new prices
    for _ in range(40):
        world.cycle()
        first_step = first_step or world.status()["cost"]["usdPerHour"]
        decision = world.status()["lastDecision"]
        decisions[decision["time"]] = decision
        if world.replicas() == {"eu-de": 0, "eu-fr": 10}:
            break
    assert world.replicas() == {"eu-de": 0, "eu-fr": 10}
    moves = [d for d in decisions.values() if d["reason"] != "NoChange"]
    assert len(moves) == 10
    assert {d["reason"] for d in moves} == {"CheaperPlacement"}, [d["reason"] for d in moves]
    events = {e.reason for e in world.hub.events}
    assert "ScaleDown" not in events
    # Each step saves what moving one replica saves (its start amortised over the payback window): together no
    # more than what the whole move saves at these prices, 10 replicas' difference, 10/9 of the first step's.
    saved = [d["estimatedSavingUsdPerHour"] for d in moves]
    assert max(saved) - min(saved) < 1e-3, saved
    assert first_step is not None
    whole_move = (first_step - world.status()["cost"]["usdPerHour"]) * 10 / 9
    assert 0 < sum(saved) <= whole_move + 0.01, (saved, whole_move)


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
