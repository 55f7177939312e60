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
from scipy.sparse import csc_matrix

from gridshift.planner.migration import Key
from gridshift.planner.milp import RunTime, new_highs, timed_run
from gridshift.planner.problem import Problem
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


def pool_prices(
    problem: Problem,
    settings: PlannerSettings,
    *,
    time_limit: float | None = None,
    stop: Callable[[], bool] | None = None,
    clock: Callable[[], float] | None = None,
) -> PoolPrices:
    """Solve the compact LP (simplex, one thread)."""
    keys = sorted(problem.inventory)
    pool_row = {key: i for i, key in enumerate(keys)}
    pools = len(keys)
    capacity = np.asarray([problem.inventory[key] for key in keys], dtype=np.float64)
    stale_penalty = settings.stale_change_penalty_usd
    frozen_cost = 0.0
    cost: list[float] = []
    upper: list[float] = []
    col_start = [0]
    index: list[int] = []
    value: list[float] = []
    row_lower: list[float] = []
    row_upper: list[float] = []
    row = pools
    for deployment in problem.deployments:
        options = deployment.options
        columns = deployment.columns
        if deployment.frozen:
            for option in options:
                frozen_cost += option.current * option.hourly_usd
                capacity[pool_row[option.key]] -= option.current * option.gpus
            continue
        if not options:
            continue
        cover, cap, floor = row, row + 1, row + 2
        row += 3
        demand = deployment.coverage_target
        for j, option in enumerate(options):
            unit = columns.unit[j] / demand if demand > 0 else 0.0
            keep = min(option.current, option.upper)
            extra = columns.start_cost[j] + (stale_penalty if option.stale else 0.0)
            for price, bound in ((columns.window_cost[j], keep), (columns.window_cost[j] + extra, option.upper - keep)):
                if bound <= 0:
                    continue
                cost.append(price)
                upper.append(float(bound))
                index.extend((pool_row[option.key], cover, cap, floor))
                value.extend((float(option.gpus), unit, 1.0, 1.0))
                col_start.append(len(index))
        # Slack columns: unserved share, replicas short of minReplicas.
        cost.extend((shortfall_penalty_per_unit(deployment, settings), settings.bound_violation_penalty_usd))
        upper.extend((1.0, highspy.kHighsInf))
        index.extend((cover, floor))
        value.extend((1.0, 1.0))
        col_start.extend((len(index) - 1, len(index)))
        row_lower.extend((1.0 if demand > 0 else 0.0, -highspy.kHighsInf, float(deployment.min_replicas)))
        row_upper.extend((highspy.kHighsInf, float(deployment.max_replicas), highspy.kHighsInf))
    if not cost:
        return PoolPrices({key: 0.0 for key in keys}, frozen_cost)
    matrix = csc_matrix(
        (np.asarray(value), np.asarray(index, dtype=np.int32), np.asarray(col_start, dtype=np.int32)),
        shape=(row, len(cost)),
    )
    highs = new_highs(time_limit, {"solver": "simplex"}, stop)
    lp = highspy.HighsLp()
    lp.num_col_ = len(cost)
    lp.num_row_ = row
    lp.col_cost_ = np.asarray(cost, dtype=np.float64)
    lp.col_lower_ = np.zeros(len(cost))
    lp.col_upper_ = np.asarray(upper, dtype=np.float64)
    lp.row_lower_ = np.concatenate((np.full(pools, -highspy.kHighsInf), np.asarray(row_lower)))
    lp.row_upper_ = np.concatenate((np.maximum(capacity, 0.0), np.asarray(row_upper)))
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr
    lp.a_matrix_.index_ = matrix.indices
    lp.a_matrix_.value_ = matrix.data
    highs.passModel(lp)
    run = timed_run(highs, clock)
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return PoolPrices({}, None, run)
    duals = np.asarray(highs.getSolution().row_dual[:pools])
    # A <= row's dual is <= 0 when minimising; its negation is the saving per GPU.
    per_gpu = {key: max(0.0, -float(duals[i])) for i, key in enumerate(keys)}
    return PoolPrices(per_gpu, float(highs.getInfo().objective_function_value) + frozen_cost, run)
