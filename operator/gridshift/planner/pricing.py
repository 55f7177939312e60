"""Shadow prices of the GPU pools, from a compact LP relaxation of the joint problem (HiGHS, highspy).

A per-deployment greedy cannot see that the cheap pools are contended: the deployment served first
takes them, whoever would have saved most there. The LP relaxation can: the dual of each pool's row
(cluster x GPU type) is what one more GPU there would save the fleet per hour. The greedy then
fills every deployment at its option's cost *plus* the pool's price per GPU (gridshift.planner.greedy),
so that deployments with a good alternative leave the contended pool to those without one.

The LP is compact, built straight from the options' columns as arrays, with no Python object per
LP column:

    per option j of deployment d: keep_j in [0, min(current_j, upper_j)] at hourly_j,
                                  new_j  in [0, upper_j - current_j]     at hourly_j + start_j (+ stale penalty)
    per deployment: sum_j unit_j/demand (keep_j + new_j) + u_d >= 1   (u_d in [0, 1] at the shortfall penalty)
                    sum_j (keep_j + new_j) <= maxReplicas;  sum_j (keep_j + new_j) + v_d >= minReplicas
    per pool k:     sum_{j in k} gpus_j (keep_j + new_j) <= inventory_k - GPUs Frozen deployments hold

Regions, move limits and the penalty for stopping a replica where the price is stale are left out:
they make the LP several times slower (0.8 vs 0.15 CPU-s at 1,000 deployments, measured) and price
no pool. Leaving constraints out relaxes it further, so its optimum, plus what Frozen deployments
cost, is still a lower bound on every plan's objective (`PoolPrices.bound`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import highspy
import numpy as np
import numpy.typing as npt
from scipy.sparse import csc_matrix

from gridshift.planner.migration import Key
from gridshift.planner.milp import RunTime, column_lp, new_highs, timed_run
from gridshift.planner.problem import DeploymentProblem, Problem
from gridshift.planner.settings import PlannerSettings
from gridshift.planner.solution import shortfall_penalty_per_unit


@dataclass(frozen=True)
class PoolPrices:
    """USD/h per GPU of each pool (>= 0; pools with GPUs to spare price at 0), and the LP's lower bound
    on the objective (USD/h, penalties included); both empty (None) when HiGHS ended without the LP's
    optimum (time limit or `stop`), since a suboptimal basis prices nothing reliably and bounds nothing."""

    per_gpu: dict[Key, float]
    bound: float | None
    run: RunTime = field(default_factory=lambda: RunTime(0.0, None))


@dataclass
class _CompactLp:
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


def _compact_lp(problem: Problem, settings: PlannerSettings) -> _CompactLp:
    keys = sorted(problem.inventory)
    compact = _CompactLp(keys, np.asarray([problem.inventory[key] for key in keys], dtype=np.float64))
    for deployment in problem.deployments:
        if deployment.frozen:
            compact.add_frozen(deployment)
        elif deployment.options:
            compact.add_deployment(deployment, settings)
    return compact


def pool_prices(
    problem: Problem,
    settings: PlannerSettings,
    *,
    time_limit: float | None = None,
    stop: Callable[[], bool] | None = None,
    clock: Callable[[], float] | None = None,
) -> PoolPrices:
    """Solve the compact LP (simplex, one thread)."""
    compact = _compact_lp(problem, settings)
    keys = compact.keys
    if not compact.cost:
        return PoolPrices({key: 0.0 for key in keys}, compact.frozen_cost)
    highs = new_highs(time_limit, {"solver": "simplex"}, stop)
    highs.passModel(compact.lp())
    run = timed_run(highs, clock)
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return PoolPrices({}, None, run)
    duals = np.asarray(highs.getSolution().row_dual[: len(keys)])
    # A <= row's dual is <= 0 when minimising; its negation is the saving per GPU.
    per_gpu = {key: max(0.0, -float(duals[i])) for i, key in enumerate(keys)}
    return PoolPrices(per_gpu, float(highs.getInfo().objective_function_value) + compact.frozen_cost, run)
