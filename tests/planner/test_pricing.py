"""Pool shadow prices from the compact LP relaxation, and the greedy filled at those prices."""

from __future__ import annotations

import pytest

from gridshift.planner import PlannerSettings, make_plan
from gridshift.planner.greedy import solve_greedy
from gridshift.planner.milp import solve_milp
from gridshift.planner.pricing import pool_prices
from gridshift.planner.problem import build_problem
from gridshift.planner.search import violations
from gridshift.planner.solution import objective
from gridshift.planner.synthetic import random_snapshot
from tests.planner.planner_world import A100_MODEL, H100, H100_MODEL, cluster, deployment, flat_prices, snapshot

SETTINGS = PlannerSettings()


def _contended_world() -> object:
    # Two deployments of about 3 replicas each want the cheap pool, which holds 4 GPUs; the dear one
    # has room to spare.
    return snapshot(
        [deployment("a", 30.0, max_replicas=8), deployment("b", 30.0, max_replicas=8)],
        [cluster("cheap", gpus={H100: 4}), cluster("dear", gpus={H100: 32})],
        {"cheap": flat_prices(0.01), "dear": flat_prices(0.60)},
    )


def test_a_contended_pool_has_a_price_and_a_pool_with_room_has_none() -> None:
    problem = build_problem(_contended_world(), SETTINGS)  # type: ignore[arg-type]
    needed = sum(d.coverage_target / d.strongest_unit for d in problem.deployments)
    assert needed > 4, "the cheap pool must be too small for both"
    prices = pool_prices(problem, SETTINGS)
    cheap, dear = prices.per_gpu[("cheap", H100)], prices.per_gpu[("dear", H100)]
    assert dear == 0.0
    # One more GPU in the cheap pool saves what a new replica there costs less than in the dear one
    # (nothing runs yet: every replica is a start).
    by_cluster = {o.cluster: o.hourly_usd + o.start_per_hour_usd for o in problem.deployments[0].options}
    assert cheap == pytest.approx(by_cluster["dear"] - by_cluster["cheap"], rel=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_the_lp_bound_is_below_the_optimum_and_the_priced_greedy_is_valid(seed: int) -> None:
    world = random_snapshot(
        [H100_MODEL, A100_MODEL], deployments=16, clusters=4, gpu_types=2, seed=seed, occupancy=0.85
    )
    problem = build_problem(world, SETTINGS)
    prices = pool_prices(problem, SETTINGS)
    exact = solve_milp(problem, SETTINGS)
    assert prices.bound is not None and exact is not None
    optimum = objective(problem, exact, SETTINGS)
    assert prices.bound <= optimum + 1e-6 * max(1.0, abs(optimum))
    priced = solve_greedy(problem, SETTINGS, pool_prices=prices.per_gpu)
    assert priced is not None and violations(problem, priced) == []
    assert objective(problem, priced, SETTINGS) >= optimum - 1e-6 * max(1.0, abs(optimum))


def test_the_search_runs_the_priced_greedy_and_keeps_the_better_plan() -> None:
    world = random_snapshot([H100_MODEL, A100_MODEL], deployments=40, clusters=4, gpu_types=2, seed=3, occupancy=0.9)
    plan = make_plan(world, PlannerSettings(exact_search=False))
    steps = [s for s in plan.search_steps if s.startswith("exact fills at LP pool prices")]
    assert len(steps) == 1, plan.search_steps
    # The heuristic fills (priced, then plain) run only while the incumbent pays penalties.
    penalised = plan.objective_usd_per_hour > sum(d.cost.usd_per_hour for d in plan.deployments) * 10
    heuristic = [s for s in plan.search_steps if s.startswith(("greedy at LP pool prices", "greedy:"))]
    assert penalised or not heuristic, plan.search_steps
