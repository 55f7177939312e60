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
from typing import Any

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
    sampled: bool = False
    """Priced on a sample of the deployments (`pool_prices`'s `sample`): the prices are the LP's optimum's,
    but `bound` is None, since the sample's LP bounds nothing of the whole problem."""

    @property
    def found(self) -> bool:
        """Whether HiGHS reached the LP's optimum (the prices are usable)."""
        return self.bound is not None or self.sampled


def _compact_lp(
    problem: Problem, settings: PlannerSettings, sample: int | None = None
) -> tuple[list[Key], float, bool, highspy.HighsLp | None]:
    """The compact LP (module docstring) as HiGHS's column-wise arrays, built from the options' columns
    with numpy (no Python loop per LP column: 0.04 against 0.11 CPU-s at 1,000 deployments). Columns
    per deployment: keep then new per option (where its bound is > 0), then the shortfall and
    minReplicas slacks; rows: one per pool (GPUs less those Frozen deployments hold), then cover, cap
    and floor per deployment. Returns the pools, what Frozen deployments cost, and the LP (None: no
    column)."""
    keys = sorted(problem.inventory)
    capacity, frozen_cost = _free_pools(problem, keys)
    movable, share = _sampled(problem.movable, sample)
    capacity *= share
    window, start, current, stale, unit, upper, gpus, pool, owner = _option_columns(movable, keys)
    demand = [d.coverage_target for d in movable]
    shortfall = [shortfall_penalty_per_unit(d, settings) for d in movable]
    max_replicas = [d.max_replicas for d in movable]
    min_replicas = [d.min_replicas for d in movable]
    if not demand:
        return keys, frozen_cost, False, None
    count, pools = len(demand), len(keys)
    need = np.asarray(demand, dtype=np.float64)
    of = np.asarray(owner, dtype=np.int64)
    cur = np.asarray(current, dtype=np.int64)
    top = np.asarray(upper, dtype=np.int64)
    keep = np.minimum(cur, top)
    price = np.asarray(window, dtype=np.float64)
    extra = np.asarray(start, dtype=np.float64) + np.where(
        np.asarray(stale, dtype=bool), settings.stale_change_penalty_usd, 0.0
    )
    per_need = np.where(need[of] > 0, np.asarray(unit, dtype=np.float64) / np.where(need[of] > 0, need[of], 1.0), 0.0)
    # Candidate columns per option: keep (at the window cost), then new (plus the start), where their bound is > 0.
    n = len(of)
    cand_cost = np.stack((price, price + extra), axis=1).ravel()
    cand_upper = np.stack((keep, top - keep), axis=1).ravel()
    cand_option = np.repeat(np.arange(n), 2)
    present = cand_upper > 0
    cand_cost, cand_upper, cand_option = cand_cost[present], cand_upper[present], cand_option[present]
    cand_owner = of[cand_option]
    # Each deployment's columns, then its two slack columns: order by owner, slacks last (stable sort).
    slack_owner = np.repeat(np.arange(count), 2)
    order = np.argsort(np.concatenate((cand_owner * 2, slack_owner * 2 + 1)), kind="stable")
    cost = np.concatenate(
        (
            cand_cost,
            np.stack((np.asarray(shortfall), np.full(count, settings.bound_violation_penalty_usd)), axis=1).ravel(),
        )
    )[order]
    col_upper = np.concatenate((cand_upper.astype(np.float64), np.tile([1.0, highspy.kHighsInf], count)))[order]
    matrix = _matrix(
        pools,
        count,
        np.asarray(pool, dtype=np.int64)[cand_option],
        np.asarray(gpus, dtype=np.float64)[cand_option],
        per_need[cand_option],
        cand_owner,
        order,
    )
    row_lower = np.stack(
        (np.where(need > 0, 1.0, 0.0), np.full(count, -highspy.kHighsInf), np.asarray(min_replicas, dtype=np.float64)),
        axis=1,
    ).ravel()
    row_upper = np.stack(
        (
            np.full(count, highspy.kHighsInf),
            np.asarray(max_replicas, dtype=np.float64),
            np.full(count, highspy.kHighsInf),
        ),
        axis=1,
    ).ravel()
    lp = column_lp(
        cost,
        np.zeros(len(cost)),
        col_upper,
        np.concatenate((np.full(pools, -highspy.kHighsInf), row_lower)),
        np.concatenate((np.maximum(capacity, 0.0), row_upper)),
        matrix,
    )
    return keys, frozen_cost, share < 1.0, lp


def _matrix(
    pools: int,
    count: int,
    cand_pool: npt.NDArray[np.int64],
    cand_gpus: npt.NDArray[np.float64],
    cand_per_need: npt.NDArray[np.float64],
    cand_owner: npt.NDArray[np.int64],
    order: npt.NDArray[np.int64],
) -> csc_matrix:
    """The LP's constraint matrix, its columns in `order` (candidate columns, then two slacks per deployment)."""
    m = len(cand_owner)
    # Nonzeros: an option's column (pool, cover, cap, floor); the shortfall slack (cover); the
    # minReplicas slack (floor).
    base = pools + 3 * cand_owner
    cand_rows = np.stack((cand_pool, base, base + 1, base + 2), axis=1)
    cand_values = np.stack((cand_gpus, cand_per_need, np.ones(m), np.ones(m)), axis=1)
    slack_base = pools + 3 * np.arange(count)
    slack_rows = np.stack((slack_base, slack_base + 2), axis=1).ravel()
    per_column = np.concatenate((np.full(m, 4), np.ones(2 * count, dtype=np.int64)))
    nnz = per_column[order]
    rows_by_column = np.concatenate((cand_rows.ravel(), slack_rows))
    values_by_column = np.concatenate((cand_values.ravel(), np.ones(2 * count)))
    first = np.concatenate(([0], np.cumsum(per_column)))
    picks = _gather(first, order, nnz)
    col_start = np.concatenate(([0], np.cumsum(nnz)))
    return csc_matrix(
        (values_by_column[picks], rows_by_column[picks].astype(np.int32), col_start.astype(np.int32)),
        shape=(pools + 3 * count, m + 2 * count),
    )


def _sampled(movable: list[DeploymentProblem], sample: int | None) -> tuple[list[DeploymentProblem], float]:
    """`sample` of the movable deployments, evenly spaced, and their share of all (all of them: 1.0)."""
    if sample is None or not 0 < sample < len(movable):
        return movable, 1.0
    picked = {movable[(i * len(movable)) // sample].index for i in range(sample)}
    return [d for d in movable if d.index in picked], sample / len(movable)


def _free_pools(problem: Problem, keys: list[Key]) -> tuple[npt.NDArray[np.float64], float]:
    """GPUs per pool (in `keys`' order) less those Frozen deployments hold, and what those cost (USD/h)."""
    pool_row = {key: i for i, key in enumerate(keys)}
    capacity = np.asarray([problem.inventory[key] for key in keys], dtype=np.float64)
    frozen_cost = 0.0
    for deployment in problem.deployments:
        if deployment.frozen:
            for option in deployment.options:
                frozen_cost += option.current * option.hourly_usd
                capacity[pool_row[option.key]] -= option.current * option.gpus
    return capacity, frozen_cost


def _option_columns(movable: list[DeploymentProblem], keys: list[Key]) -> tuple[list[Any], ...]:
    """Per option of the movable deployments, in order: window cost, start cost, current replicas,
    stale price, capacity unit, upper bound, GPUs, pool row and owner (the deployment's position)."""
    pool_row = {key: i for i, key in enumerate(keys)}
    columns: tuple[list[Any], ...] = tuple([] for _ in range(9))
    window, start, current, stale, unit, upper, gpus, pool, owner = columns
    for k, deployment in enumerate(movable):
        options = deployment.options
        window.extend(deployment.columns.window_cost)
        start.extend(deployment.columns.start_cost)
        current.extend(deployment.columns.current)
        stale.extend(deployment.columns.stale)
        unit.extend(deployment.columns.unit)
        upper.extend([o.upper for o in options])
        gpus.extend([o.gpus for o in options])
        pool.extend([pool_row[o.key] for o in options])
        owner.extend([k] * len(options))
    return columns


def _gather(
    first: npt.NDArray[np.int64], order: npt.NDArray[np.int64], nnz: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Indices of the nonzeros of columns `order` (column c's at first[c] .. first[c] + its count), in that order."""
    starts = first[order]
    offsets = np.arange(int(nnz.sum())) - np.repeat(np.cumsum(nnz) - nnz, nnz)
    return np.repeat(starts, nnz) + offsets


def pool_prices(
    problem: Problem,
    settings: PlannerSettings,
    *,
    time_limit: float | None = None,
    stop: Callable[[], bool] | None = None,
    clock: Callable[[], float] | None = None,
    sample: int | None = None,
) -> PoolPrices:
    """Solve the compact LP (simplex, one thread); with `sample`, on at most that many movable
    deployments (see _compact_lp; the result then has prices but no bound)."""
    keys, frozen_cost, sampled, lp = _compact_lp(problem, settings, sample)
    if lp is None:
        return PoolPrices({key: 0.0 for key in keys}, frozen_cost)
    highs = new_highs(time_limit, {"solver": "simplex"}, stop)
    highs.passModel(lp)
    run = timed_run(highs, clock)
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return PoolPrices({}, None, run)
    duals = np.asarray(highs.getSolution().row_dual[: len(keys)])
    # A <= row's dual is <= 0 when minimising; its negation is the saving per GPU.
    per_gpu = {key: max(0.0, -float(duals[i])) for i, key in enumerate(keys)}
    if sampled:
        return PoolPrices(per_gpu, None, run, sampled=True)
    return PoolPrices(per_gpu, float(highs.getInfo().objective_function_value) + frozen_cost, run)
