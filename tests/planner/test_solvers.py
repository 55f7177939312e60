"""The two solvers behind one signature: the greedy fallback against the MILP, and the size switch."""

from __future__ import annotations

import pytest

from gridshift.planner import PlannerSettings, make_plan
from gridshift.planner.greedy import solve_greedy
from gridshift.planner.milp import solve_milp
from gridshift.planner.problem import build_problem
from gridshift.planner.solution import Solver, objective
from gridshift.planner.synthetic import random_snapshot
from tests.planner.planner_world import A100_MODEL, H100_MODEL

SETTINGS = PlannerSettings()
# Objectives at or above this include a penalty: some demand, minReplicas or minRegions unmet.
PENALTY = SETTINGS.bound_violation_penalty_usd


@pytest.mark.parametrize("seed", range(12))
def test_greedy_is_feasible_and_close_to_the_milp_on_small_snapshots(seed: int) -> None:
    world = random_snapshot([H100_MODEL, A100_MODEL], deployments=12, clusters=4, gpu_types=3, seed=seed)
    problem = build_problem(world, SETTINGS)
    exact = solve_milp(problem, SETTINGS)
    assert exact is not None
    milp_cost = objective(problem, exact, SETTINGS)
    greedy_cost = objective(problem, solve_greedy(problem, SETTINGS), SETTINGS)
    assert milp_cost < PENALTY, "the snapshot should be feasible"
    assert greedy_cost < PENALTY, "greedy left demand or bounds unmet where the MILP did not"
    assert greedy_cost >= milp_cost - 1e-6 * abs(milp_cost)
    # Measured over seeds 0-19: mean 1.7% above the MILP, worst 5.7%.
    assert greedy_cost <= milp_cost * 1.10 + 1e-6


def test_greedy_stays_close_to_the_milp_under_contention() -> None:
    gaps = []
    for seed in range(4):
        world = random_snapshot([H100_MODEL, A100_MODEL], deployments=30, clusters=6, gpu_types=3, seed=seed)
        problem = build_problem(world, SETTINGS)
        exact = solve_milp(problem, SETTINGS)
        assert exact is not None
        milp_cost = objective(problem, exact, SETTINGS)
        gaps.append(objective(problem, solve_greedy(problem, SETTINGS), SETTINGS) / milp_cost - 1)
    # Measured: mean 4.1%, worst 5.9% over seeds 0-4.
    assert sum(gaps) / len(gaps) <= 0.07, gaps
    assert max(gaps) <= 0.10, gaps


def test_the_solver_is_chosen_by_problem_size() -> None:
    world = random_snapshot([H100_MODEL], deployments=6, clusters=3, gpu_types=1, seed=1)
    size = build_problem(world, SETTINGS).variable_count
    assert make_plan(world, PlannerSettings(milp_max_variables=size)).solver == Solver.MILP
    assert make_plan(world, PlannerSettings(milp_max_variables=size - 1)).solver == Solver.LP_GREEDY
    only_greedy = PlannerSettings(milp_max_variables=size - 1, lp_max_variables=size - 1)
    assert make_plan(world, only_greedy).solver == Solver.GREEDY


@pytest.mark.parametrize("seed", range(6))
def test_the_lp_start_is_feasible_and_close_to_the_milp(seed: int) -> None:
    from gridshift.planner.milp import solve_lp_floor

    world = random_snapshot([H100_MODEL, A100_MODEL], deployments=12, clusters=4, gpu_types=3, seed=seed)
    problem = build_problem(world, SETTINGS)
    exact = solve_milp(problem, SETTINGS)
    start = solve_lp_floor(problem, SETTINGS)
    assert exact is not None and start is not None
    milp_cost = objective(problem, exact, SETTINGS)
    seeded = objective(problem, solve_greedy(problem, SETTINGS, start), SETTINGS)
    assert seeded < PENALTY
    assert milp_cost - 1e-6 * abs(milp_cost) <= seeded <= milp_cost * 1.10 + 1e-6


@pytest.mark.parametrize("seed", range(3))
def test_move_delta_equals_the_objective_difference(seed: int) -> None:
    from gridshift.planner.solution import deployment_objective, move_delta, moves

    world = random_snapshot([H100_MODEL, A100_MODEL], deployments=6, clusters=3, gpu_types=2, seed=seed)
    problem = build_problem(world, SETTINGS)
    solution = solve_greedy(problem, SETTINGS)
    checked = 0
    for deployment, counts in zip(problem.deployments, solution.counts, strict=True):
        mine = list(counts)
        for out in range(len(mine)):
            if mine[out] == 0:
                continue
            for into in range(len(mine)):
                if into == out:
                    continue
                delta, legal = move_delta(deployment, mine, out, into, SETTINGS)
                before = deployment_objective(deployment, mine, SETTINGS)
                mine[out] -= 1
                mine[into] += 1
                after = deployment_objective(deployment, mine, SETTINGS)
                assert legal == (min(moves(deployment, mine)) <= deployment.max_moves)
                mine[out] += 1
                mine[into] -= 1
                assert delta == pytest.approx(after - before, rel=1e-9, abs=1e-6)
                checked += 1
    assert checked > 10
