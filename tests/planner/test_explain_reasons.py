"""Decision reasons and "not moved" details say what the plan does, read off its own figures (found in review).

A move off a placement short of the demand is SLOAtRisk whatever the size of the objective's shortfall
penalty (a small deployment short by under a tenth scored below bound_violation_penalty_usd, and its move
to capacity five times dearer read CheaperPlacement, ScaleDown or LowerCarbon); a move made for minRegions
is PlacementRules and names the rule (it read SLOAtRisk with the SLO met); LowerCarbon needs the carbon
terms to fall and CheaperPlacement the money spent; a "not moved to X" detail compares the whole cover at X.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from gridshift.planner import PlannerSettings, make_plan
from gridshift.planner import snapshot as S
from gridshift.planner.capacity import replica_capacity
from gridshift.planner.plan import _pure_move_reason, _without_penalties
from gridshift.planner.problem import DeploymentProblem, build_problem
from tests.planner.planner_world import (
    A100,
    A100_MODEL,
    H100,
    NOW,
    cluster,
    deployment,
    flat_prices,
    snapshot,
)

SETTINGS = PlannerSettings()


def _a100_tokens_per_s() -> float:
    """One A100 replica's output tokens/s within the test SLO (1000/250 tokens, TPOT 50 ms, TTFT 2 s)."""
    return replica_capacity(
        A100_MODEL, mean_prompt_tokens=1000, mean_output_tokens=250, tpot_slo_ms=50, ttft_slo_ms=2000, settings=SETTINGS
    ).output_tokens_per_second


def _rps(replicas: int, share: float) -> float:
    """Requests/s whose need (headroom 1.2 included) is `share` of `replicas` A100 replicas' capacity."""
    return replicas * _a100_tokens_per_s() * share / 250 / 1.2


def _carbon(g_per_kwh: float) -> S.CarbonHorizon:
    return S.CarbonHorizon(
        tuple(S.CarbonIntensity(NOW + timedelta(hours=h), NOW + timedelta(hours=h + 1), g_per_kwh) for h in range(24))
    )


def _short_world(replicas: int, share: float, carbon_price: float = 0.0) -> S.Snapshot:
    """`replicas` A100 at 1 USD/h run where the demand needs `share` of their capacity; H100 at 5 USD/h is
    free elsewhere, and maxReplicas keeps the deployment at `replicas`. With a carbon price the H100 grid is
    14 times dirtier."""
    d = deployment(
        "chat",
        _rps(replicas, share),
        gpu_types=[A100, H100],
        max_replicas=replicas,
        placements=[("a", A100, replicas)],
    )
    if carbon_price:
        d = replace(d, requirements=replace(d.requirements, carbon_price_usd_per_tonne=carbon_price))
    world = snapshot(
        [d],
        [cluster("a", gpus={A100: replicas}, gpu_hour=1.0), cluster("b", gpus={H100: 8}, gpu_hour=5.0)],
        {"a": flat_prices(0.1), "b": flat_prices(0.1)},
    )
    if carbon_price:
        world = replace(world, carbon={"a": _carbon(50.0), "b": _carbon(700.0)})
    return world


@pytest.mark.parametrize(
    ("replicas", "carbon_price", "was"),
    [(1, 0.0, "CheaperPlacement"), (2, 0.0, "ScaleDown"), (1, 100.0, "LowerCarbon")],
)
def test_a_move_off_a_placement_short_of_demand_is_slo_at_risk(replicas: int, carbon_price: float, was: str) -> None:
    plan = make_plan(_short_world(replicas, 1.05, carbon_price)).for_deployment("ns/chat")
    moved = {(t.cluster, t.gpu_type): (t.replicas, t.current_desired) for t in plan.targets}
    # The figures that make each old reason false: five times dearer, capacity up, emissions up.
    assert moved[("a", A100)] == (0, replicas) and moved[("b", H100)] == (1, 0), moved
    assert plan.cost.usd_per_hour > replicas * 1.0 + 1.0
    assert plan.explanation.reason == "SLOAtRisk", (was, plan.explanation.summary)
    assert "the running placement does not cover what the demand needs within the SLO" in plan.explanation.details


def test_a_move_made_for_min_regions_is_placement_rules_and_names_the_rule() -> None:
    d = deployment("chat", 2.0, min_replicas=2, min_regions=2, placements=[("a", H100, 2)])
    world = snapshot(
        [d],
        [cluster("a", gpu_hour=4.0), cluster("b", gpu_hour=6.0)],
        {"a": flat_prices(0.1), "b": flat_prices(0.1)},
    )
    plan = make_plan(world).for_deployment("ns/chat")
    assert {t.cluster: t.replicas for t in plan.targets} == {"a": 1, "b": 1}
    assert plan.explanation.reason == "PlacementRules", plan.explanation.summary
    assert "the running placement breaks minRegions 2 (1 region(s) running)" in plan.explanation.details


def _covered_move(carbon_price: float) -> tuple[list[int], list[int], DeploymentProblem]:
    """The world of _short_world with the demand covered, and the counts of a move from A100 to H100."""
    (problem,) = build_problem(_short_world(1, 0.5, carbon_price), SETTINGS).deployments
    current = list(problem.columns.current)
    moved = [1 if (o.cluster, o.gpu_type) == ("b", H100) else 0 for o in problem.options]
    return moved, current, problem


def test_a_dearer_dirtier_move_is_neither_cheaper_placement_nor_lower_carbon() -> None:
    # Found in review: with a carbon price, any pure move not cheaper read LowerCarbon, emissions 25 times up.
    moved, current, problem = _covered_move(100.0)
    reason = _pure_move_reason([(problem, moved, current)], {}, _without_penalties(SETTINGS))
    assert reason not in ("LowerCarbon", "CheaperPlacement"), reason
    back = _pure_move_reason([(problem, current, moved)], {}, _without_penalties(SETTINGS))
    assert back == "CheaperPlacement"


def test_not_moved_compares_the_whole_cover_there_not_one_replica() -> None:
    # 1 H100 at 5 USD/h covers the demand; 6 A100 at 0.7 USD/h would: a start each, not paid back in 0.5 h.
    d = deployment("chat", 7.33, gpu_types=[H100, A100], payback_hours=0.5, placements=[("a", H100, 1)])
    world = snapshot(
        [d],
        [cluster("a", gpus={H100: 8}, gpu_hour=5.0), cluster("b", gpus={A100: 16}, gpu_hour=0.7)],
        {"a": flat_prices(0.1), "b": flat_prices(0.1)},
    )
    plan = make_plan(world).for_deployment("ns/chat")
    assert plan.explanation.reason == "NoChange"
    (note,) = [d for d in plan.explanation.details if d.startswith(f"not moved to b/{A100}")]
    assert "per replica" not in note, note
    assert "covering the demand there (6 replica(s)) would save 0.689" in note, note
    assert "its 6 start(s) cost" in note and "not paid back within 0.5 h" in note, note


def test_not_moved_weighs_the_alternative_against_the_dearest_option_and_the_plans_own_cost() -> None:
    # Found in review: the plan runs 2 H100 at 2.0 USD/h (all of a's GPUs) and 1 A100 at 2.6 USD/h; c/H100 at
    # 2.5 USD/h is cheaper than the A100 per unit of capacity and per replica, and the note set its whole
    # cover against the H100 alone ("against 6.1423 USD/h on a/H100", 3 H100 where a has 2), a comparison
    # that decided nothing: it names the A100 it was weighed against, and the plan's own cost.
    d = deployment("chat", 18.0, gpu_types=[H100, A100], payback_hours=0.5, placements=[("a", H100, 2), ("b", A100, 1)])
    world = snapshot(
        [d],
        [
            cluster("a", gpus={H100: 2}, gpu_hour=2.0),
            cluster("b", gpus={A100: 8}, gpu_hour=2.6),
            cluster("c", gpus={H100: 16}, gpu_hour=2.5),
        ],
        {name: flat_prices(0.1) for name in "abc"},
    )
    plan = make_plan(world).for_deployment("ns/chat")
    assert plan.explanation.reason == "NoChange"
    assert {(t.cluster, t.gpu_type): t.replicas for t in plan.targets} == {("a", H100): 2, ("b", A100): 1}
    (note,) = [d for d in plan.explanation.details if d.startswith(f"not moved to c/{H100}")]
    assert f"per replica than b/{A100}" in note, note
    assert f"on a/{H100}" not in note, note
    cover = plan.explanation.alternative_usd_per_hour
    assert cover is not None and cover > plan.cost.usd_per_hour
    assert f"takes 3 replica(s) at {cover:.4f} USD/h against {plan.cost.usd_per_hour:.4f} USD/h" in note, note


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_alternatives_shortlist_covers_are_the_cover_of_each_option_alone(seed: int) -> None:
    """_candidates works out each unused option's cover inline (it reads every unused option of the fleet):
    the arithmetic must stay _cover_replicas's (unit capacity, coverage target, minReplicas), or the
    alternative a plan explains would be priced at another replica count than the planner's own."""
    from gridshift.planner.plan import _candidates, _cover_replicas
    from gridshift.planner.synthetic import random_snapshot
    from gridshift.profiles_catalog import default_performance_models

    snap = random_snapshot(default_performance_models(), deployments=40, clusters=6, gpu_types=3, seed=seed)
    problem = build_problem(snap, SETTINGS)
    checked = 0
    for d in problem.deployments:
        # The running placement, and one replica on the first option: both leave options unused.
        for counts in ([o.current for o in d.options], [1] + [0] * (len(d.options) - 1)):
            shortlist, _, covers = _candidates(problem, d, counts)
            assert sorted(covers) == shortlist
            for j, cover in covers.items():
                assert cover == _cover_replicas(d, d.options[j]), (d.id, j)
                checked += 1
    assert checked > 100
