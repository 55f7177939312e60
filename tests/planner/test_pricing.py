"""Pool shadow prices from the compact LP relaxation, and the greedy filled at those prices."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import highspy
import numpy as np
import numpy.typing as npt
import pytest
from scipy.sparse import csc_matrix

from gridshift.planner import PlannerSettings, Snapshot, make_plan
from gridshift.planner.greedy import solve_greedy
from gridshift.planner.migration import Key
from gridshift.planner.milp import column_lp, solve_milp
from gridshift.planner.pricing import pool_prices
from gridshift.planner.problem import DeploymentProblem, Problem, build_problem
from gridshift.planner.search import violations
from gridshift.planner.solution import objective, shortfall_penalty_per_unit
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


def test_penalties_no_plan_can_avoid_do_not_run_the_heuristic_greedies() -> None:
    # Issue 13: a deployment that the whole inventory cannot serve made every plan "penalised", so the
    # heuristic greedy at LP prices and the plain greedy ran for nothing (0.35 CPU-s each at 1,000).
    from gridshift.planner.search import search

    problem = build_problem(_with_unservable([deployment("other", 5.0)]), SETTINGS)
    result = search(problem, SETTINGS)
    assert violations(problem, result.solution) == []
    assert result.objective_usd_per_hour > 1e6  # "huge" pays its shortfall
    heuristic = [s for s in result.steps if s.startswith(("greedy at LP pool prices", "greedy:"))]
    assert heuristic == [], result.steps


def _with_unservable(extra: list[Any]) -> Snapshot:
    clusters = [cluster("a", gpus={H100: 8}, gpu_hour=2.0), cluster("b", gpus={H100: 8}, gpu_hour=3.0)]
    return snapshot(
        [deployment("huge", 10_000.0, max_replicas=2), deployment("small", 5.0), *extra],
        clusters,
        {"a": flat_prices(0.1), "b": flat_prices(0.1)},
    )


@pytest.mark.parametrize(
    "extra",
    [
        [],
        [deployment("many", 1.0, min_replicas=20, max_replicas=32)],
        [deployment("big", 300.0, max_replicas=16), deployment("mid", 100.0, max_replicas=16)],
    ],
)
def test_the_unavoidable_penalty_is_below_the_penalty_of_the_plan_found(extra: list[Any]) -> None:
    from gridshift.planner.search import _unavoidable_penalty, search, usd_per_hour

    problem = build_problem(_with_unservable(extra), SETTINGS)
    result = search(problem, SETTINGS)
    penalty = result.objective_usd_per_hour - usd_per_hour(problem, result.solution, SETTINGS)
    unavoidable = _unavoidable_penalty(problem, SETTINGS)
    assert 0 < unavoidable <= penalty * (1 + 1e-9) + 1e-6, result.steps


# --- The compact LP's array build equals the plain one (one Python step per LP column) ---


@dataclass
class _PlainCompactLp:
    """The compact LP (module docstring) as HiGHS's column-wise arrays, built one deployment at a time."""

    keys: list[Key]
    capacity: npt.NDArray[np.float64]
    """GPUs per pool (row), less those Frozen deployments hold."""
    frozen_cost: float = 0.0
    cost: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)
    col_start: list[int] = field(default_factory=lambda: [0])
    index: list[int] = field(default_factory=list)
    value: list[float] = field(default_factory=list)
    row_lower: list[float] = field(default_factory=list)
    row_upper: list[float] = field(default_factory=list)
    rows: int = field(init=False)
    """Rows so far: one per pool, then three per deployment."""
    pool_row: dict[Key, int] = field(init=False)

    def __post_init__(self) -> None:
        self.pool_row = {key: i for i, key in enumerate(self.keys)}
        self.rows = len(self.keys)

    def add_frozen(self, deployment: DeploymentProblem) -> None:
        """A Frozen deployment keeps its replicas: their cost is fixed, their GPUs leave the pools."""
        for option in deployment.options:
            self.frozen_cost += option.current * option.hourly_usd
            self.capacity[self.pool_row[option.key]] -= option.current * option.gpus

    def add_deployment(self, deployment: DeploymentProblem, settings: PlannerSettings) -> None:
        """A deployment's keep/new columns per option, its two slack columns and its three rows."""
        options = deployment.options
        columns = deployment.columns
        cover, cap, floor = self.rows, self.rows + 1, self.rows + 2
        self.rows += 3
        demand = deployment.coverage_target
        for j, option in enumerate(options):
            unit = columns.unit[j] / demand if demand > 0 else 0.0
            keep = min(option.current, option.upper)
            extra = columns.start_cost[j] + (settings.stale_change_penalty_usd if option.stale else 0.0)
            for price, bound in ((columns.window_cost[j], keep), (columns.window_cost[j] + extra, option.upper - keep)):
                if bound <= 0:
                    continue
                self.cost.append(price)
                self.upper.append(float(bound))
                self.index.extend((self.pool_row[option.key], cover, cap, floor))
                self.value.extend((float(option.gpus), unit, 1.0, 1.0))
                self.col_start.append(len(self.index))
        # Slack columns: unserved share, replicas short of minReplicas.
        self.cost.extend((shortfall_penalty_per_unit(deployment, settings), settings.bound_violation_penalty_usd))
        self.upper.extend((1.0, highspy.kHighsInf))
        self.index.extend((cover, floor))
        self.value.extend((1.0, 1.0))
        self.col_start.extend((len(self.index) - 1, len(self.index)))
        self.row_lower.extend((1.0 if demand > 0 else 0.0, -highspy.kHighsInf, float(deployment.min_replicas)))
        self.row_upper.extend((highspy.kHighsInf, float(deployment.max_replicas), highspy.kHighsInf))

    def lp(self) -> highspy.HighsLp:
        pools = len(self.keys)
        matrix = csc_matrix(
            (
                np.asarray(self.value),
                np.asarray(self.index, dtype=np.int32),
                np.asarray(self.col_start, dtype=np.int32),
            ),
            shape=(self.rows, len(self.cost)),
        )
        return column_lp(
            np.asarray(self.cost, dtype=np.float64),
            np.zeros(len(self.cost)),
            np.asarray(self.upper, dtype=np.float64),
            np.concatenate((np.full(pools, -highspy.kHighsInf), np.asarray(self.row_lower))),
            np.concatenate((np.maximum(self.capacity, 0.0), np.asarray(self.row_upper))),
            matrix,
        )


def _plain_compact_lp(problem: Problem, settings: PlannerSettings) -> _PlainCompactLp:
    keys = sorted(problem.inventory)
    plain = _PlainCompactLp(keys, np.asarray([problem.inventory[key] for key in keys], dtype=np.float64))
    for part in problem.deployments:
        if part.frozen:
            plain.add_frozen(part)
        elif part.options:
            plain.add_deployment(part, settings)
    return plain


@pytest.mark.parametrize(
    ("deployments", "clusters", "gpu_types", "tightness", "seed", "frozen"),
    [(1, 1, 1, 0.5, 0, 0), (30, 12, 3, 0.8, 1, 3), (200, 6, 2, 1.3, 2, 20), (120, 4, 3, 0.4, 3, 0)],
)
def test_the_compact_lp_is_built_column_for_column_as_the_plain_loop_builds_it(
    deployments: int, clusters: int, gpu_types: int, tightness: float, seed: int, frozen: int
) -> None:
    from gridshift.modes import MigrationMode
    from gridshift.planner.pricing import _compact_lp
    from gridshift.planner.synthetic import random_snapshot
    from gridshift.profiles_catalog import default_performance_models

    settings = PlannerSettings()
    world = random_snapshot(
        default_performance_models(),
        deployments=deployments,
        clusters=clusters,
        gpu_types=gpu_types,
        seed=seed,
        occupancy=tightness,
    )
    # Some Frozen deployments: their GPUs leave the pools, their cost is fixed.
    world = replace(
        world,
        deployments=tuple(
            replace(d, requirements=replace(d.requirements, mode=MigrationMode.FROZEN)) if i < frozen else d
            for i, d in enumerate(world.deployments)
        ),
    )
    problem = build_problem(world, settings)
    plain = _plain_compact_lp(problem, settings)
    keys, frozen_cost, _, lp = _compact_lp(problem, settings)
    assert lp is not None
    expected = plain.lp()
    assert keys == plain.keys
    assert frozen_cost == plain.frozen_cost
    for name in ("col_cost_", "col_lower_", "col_upper_", "row_lower_", "row_upper_"):
        assert np.array_equal(np.asarray(getattr(lp, name)), np.asarray(getattr(expected, name))), name
    for name in ("start_", "index_", "value_"):
        assert np.array_equal(np.asarray(getattr(lp.a_matrix_, name)), np.asarray(getattr(expected.a_matrix_, name))), (
            name
        )


def test_a_sample_prices_every_pool_against_its_share_of_the_inventory_and_bounds_nothing() -> None:
    from gridshift.planner.pricing import _compact_lp

    world = random_snapshot([H100_MODEL, A100_MODEL], deployments=40, clusters=4, gpu_types=2, seed=5, occupancy=0.8)
    problem = build_problem(world, SETTINGS)
    movable = sum(1 for d in problem.deployments if not d.frozen and d.options)
    whole = pool_prices(problem, SETTINGS)
    # A sample as large as the problem is the problem: same prices, same bound.
    same = pool_prices(problem, SETTINGS, sample=movable)
    assert not same.sampled and (same.per_gpu, same.bound) == (whole.per_gpu, whole.bound)
    sampled = pool_prices(problem, SETTINGS, sample=10)
    assert sampled.sampled and sampled.found and sampled.bound is None
    assert set(sampled.per_gpu) == set(whole.per_gpu)
    keys, _, was_sampled, lp = _compact_lp(problem, SETTINGS, 10)
    full_keys, _, _, full = _compact_lp(problem, SETTINGS)
    assert was_sampled and lp is not None and full is not None and keys == full_keys
    pools = len(keys)
    # Ten deployments' rows, against their share of the pools' GPUs.
    assert lp.num_row_ == pools + 3 * 10
    assert np.allclose(np.asarray(lp.row_upper_[:pools]), np.asarray(full.row_upper_[:pools]) * 10 / movable)
