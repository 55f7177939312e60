"""The restricted master (gridshift.planner.master, issue 13): its plan keeps every hard constraint
(bounds, inventory, Frozen placements, maxConcurrentMoves), keeps minRegions where the plan it
starts from does, is offered by the search like any other plan, and is the same on every run."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

import gridshift.planner.master as master_module
import gridshift.planner.search as search_module
from gridshift.planner import PlannerSettings
from gridshift.planner.firstfill import first_fill
from gridshift.planner.greedy import solve_greedy
from gridshift.planner.master import restricted_master
from gridshift.planner.pricing import PoolPrices, pool_prices
from gridshift.planner.problem import Problem, build_problem
from gridshift.planner.search import SearchResult, _Deadline, revalidated_current, search, violations
from gridshift.planner.solution import Solution, moves, objective
from gridshift.planner.synthetic import random_snapshot
from gridshift.profiles_catalog import default_performance_models
from tests.planner.test_plan_budget import FakeClock

SETTINGS = PlannerSettings()


def _problem(seed: int, occupancy: float, deployments: int) -> Problem:
    world = random_snapshot(
        default_performance_models(), deployments=deployments, clusters=4, gpu_types=2, seed=seed, occupancy=occupancy
    )
    return build_problem(world, SETTINGS)


def _regions(problem: Problem, solution: Solution) -> list[int]:
    return [
        len({o.region for o, n in zip(d.options, c, strict=True) if n > 0})
        for d, c in zip(problem.deployments, solution.counts, strict=True)
    ]


@pytest.mark.parametrize(
    ("seed", "occupancy", "deployments"), [(1, 0.6, 60), (5, 0.5, 60), (2, 0.9, 120), (3, 0.9, 120), (4, 1.0, 120)]
)
def test_the_masters_plan_keeps_bounds_inventory_move_limits_and_min_regions(
    seed: int, occupancy: float, deployments: int
) -> None:
    problem = _problem(seed, occupancy, deployments)
    prices = pool_prices(problem, SETTINGS)
    current = revalidated_current(problem)
    filled = first_fill(problem, SETTINGS, current, pool_prices=prices.per_gpu)
    greedy = solve_greedy(problem, SETTINGS, pool_prices=prices.per_gpu, exact=True)
    assert greedy is not None
    plans = [p for p in (current, filled, greedy) if not violations(problem, p)]
    found = restricted_master(problem, SETTINGS, plans[-1], plans, prices.per_gpu, _Deadline(None, 30.0))
    assert found.solution is not None, found.summary
    assert violations(problem, found.solution) == []
    for deployment, counts in zip(problem.deployments, found.solution.counts, strict=True):
        assert deployment.frozen or min(moves(deployment, counts)) <= deployment.max_moves
    if occupancy > 0.6:
        return
    # With GPUs to spare, minRegions (a penalty, not a constraint) is kept wherever the plan it starts
    # from keeps it.
    before, after = _regions(problem, plans[-1]), _regions(problem, found.solution)
    for deployment in problem.movable:
        if deployment.min_regions >= 2 and before[deployment.index] >= deployment.min_regions:
            assert after[deployment.index] >= deployment.min_regions, deployment.deployment.id
    # The same on every run (HiGHS on one thread, a fixed seed, well within its time limits here; where
    # penalties dominate, the MILP may stop at its time limit instead, as the neighbourhoods' do).
    assert "time limit" not in found.summary
    again = restricted_master(problem, SETTINGS, plans[-1], plans, prices.per_gpu, _Deadline(None, 30.0))
    assert again == found


def _searched(occupancy: float) -> tuple[Problem, SearchResult]:
    """120 deployments on 4 clusters x 2 GPU types, searched where the whole problem is too large for HiGHS
    (milp_max_variables 0): the master's condition on size always holds."""
    settings = replace(SETTINGS, milp_max_variables=0, neighbourhood_passes=1)
    world = random_snapshot(
        default_performance_models(), deployments=120, clusters=4, gpu_types=2, seed=2, occupancy=occupancy
    )
    problem = build_problem(world, settings)
    return problem, search(problem, settings, budget=30.0)


def test_the_search_offers_the_masters_plan() -> None:
    problem, first = _searched(0.5)
    assert any(step.startswith("restricted master (") for step in first.steps), first.steps
    assert violations(problem, first.solution) == []


def test_the_search_leaves_penalties_a_plan_could_avoid_to_the_neighbourhoods() -> None:
    _, result = _searched(0.9)
    assert not any(step.startswith("restricted master (") for step in result.steps), result.steps


@pytest.mark.parametrize(("seed", "occupancy", "deployments"), [(2, 0.9, 120)])
def test_short_of_time_the_master_starts_its_milp_from_the_incumbent(
    seed: int, occupancy: float, deployments: int
) -> None:
    """Under master._FULL_SECONDS left (a 2 s budget at 1,000 deployments) the short form runs: its MILP
    frees every deployment the LP moved off the incumbent, so the incumbent is a feasible start and the
    plan is never worse than it however soon HiGHS is stopped. Before, the master needed 1 s after the
    sweep and never ran at 2 s (docs/planner.md, "Eighth round")."""
    problem = _problem(seed, occupancy, deployments)
    prices = pool_prices(problem, SETTINGS)
    current = revalidated_current(problem)
    greedy = solve_greedy(problem, SETTINGS, pool_prices=prices.per_gpu, exact=True)
    assert greedy is not None
    plans = [p for p in (current, greedy) if not violations(problem, p)]
    # A clock that never moves: 2 s stay left throughout (below _FULL_SECONDS, well within HiGHS's limits).
    found = restricted_master(problem, SETTINGS, plans[-1], plans, prices.per_gpu, _Deadline(lambda: 0.0, 2.0))
    assert found.solution is not None, found.summary
    assert "from the incumbent" in found.summary
    assert violations(problem, found.solution) == []
    assert objective(problem, found.solution, SETTINGS) <= objective(problem, plans[-1], SETTINGS) + 1e-6


def test_short_of_time_the_master_runs_between_the_sweeps_first_pass_and_its_others() -> None:
    """Under search._MASTER_FIRST_SECONDS left after the greedies (here 1.4 s on a clock that never moves),
    the sweep makes one pass, then the restricted master, then the sweep's other passes: each `_sweep` call
    records one step, so the master's step stands between two sweep steps. With more time the master comes
    after the whole sweep (one sweep step before it)."""
    settings = replace(SETTINGS, milp_max_variables=0, neighbourhood_passes=1)
    world = random_snapshot(
        default_performance_models(), deployments=120, clusters=4, gpu_types=2, seed=2, occupancy=0.5
    )
    problem = build_problem(world, settings)
    result = search(problem, settings, clock=FakeClock(), budget=1.4)
    kinds = [
        "master" if step.startswith("restricted master (") else "sweep" if step.startswith("sweep") else "other"
        for step in result.steps
    ]
    ordered = [kind for kind in kinds if kind != "other"]
    assert ordered[:3] == ["sweep", "master", "sweep"], result.steps
    assert violations(problem, result.solution) == []


def test_the_pricing_lp_gets_its_floor_where_its_share_is_too_short(monkeypatch: pytest.MonkeyPatch) -> None:
    """With 1.6 s left the LP's 25% share is 0.4 s; the floor (search._PRICING_FLOOR_*) gives it
    min(0.6, 40%) = 0.6 s. An LP that takes 0.5 s on the search's clock is then priced; held to its share,
    it would be interrupted and the plan would be the greedy's without prices."""
    clock = FakeClock()
    real = search_module.pool_prices

    def half_a_second_lp(*args: Any, **kwargs: Any) -> PoolPrices:
        clock.now += 0.5  # the LP's run, on the search's clock
        stop = kwargs.get("stop")
        if stop is not None and stop():
            # What HiGHS returns when its interrupt callback stops the LP (pricing.pool_prices).
            return PoolPrices({}, None)
        return real(*args, **kwargs)

    monkeypatch.setattr(search_module, "pool_prices", half_a_second_lp)
    settings = replace(SETTINGS, exact_search=False)
    problem = _problem(2, 0.5, 60)
    result = search(problem, settings, clock=clock, budget=1.6)
    assert not any("not found within the time limit" in step for step in result.steps), result.steps
    assert any(step.startswith("exact fills at LP pool prices") for step in result.steps), result.steps


def test_when_its_milp_is_stopped_at_once_the_short_master_still_returns_the_incumbent_or_better(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The short form's MILP starts from the incumbent (`_run(..., start)`, with every deployment the LP moved
    freed): however soon HiGHS is stopped, it holds a plan at least as good as the incumbent. Here the MILP's
    time limit is 0, so its stopper fires at HiGHS's first interrupt callback; without the start HiGHS would
    stop with no plan and the master would return none."""
    monkeypatch.setattr(master_module, "_MILP_SECONDS", 0.0)
    problem = _problem(3, 0.7, 200)
    prices = pool_prices(problem, SETTINGS)
    current = revalidated_current(problem)
    greedy = solve_greedy(problem, SETTINGS, pool_prices=prices.per_gpu, exact=True)
    assert greedy is not None
    plans = [p for p in (current, greedy) if not violations(problem, p)]
    found = restricted_master(problem, SETTINGS, plans[-1], plans, prices.per_gpu, _Deadline(FakeClock(), 2.0))
    assert "from the incumbent" in found.summary
    assert "stopped by its time limit" in found.summary, found.summary
    assert found.solution is not None, found.summary
    assert violations(problem, found.solution) == []
    assert objective(problem, found.solution, SETTINGS) <= objective(problem, plans[-1], SETTINGS) + 1e-6
