"""The restricted master (issue 13): one replica pattern per deployment, chosen jointly over the pools.

A pattern (column) is a complete vector of one deployment's replica counts within maxConcurrentMoves,
its bounds and the inventory. Per movable deployment the columns are its counts in each valid plan
the search has seen (the running placement, the first fill, the greedies at pool prices: their fills
on the inventory the others leave are the columns that pack), and the exact fill's best vector at
the compact LP's pool prices on the whole inventory (gridshift.planner.fill.ranked_fills). Then:

1. the **master LP**: each deployment a convex combination of its columns, each pool within the GPUs
   Frozen deployments leave (HiGHS simplex);
2. **pricing rounds**: the enumeration again at the master's pool duals, its two best vectors per
   deployment added as columns, and the master LP re-solved;
3. **fix and solve**: the deployments the LP leaves integral keep their column, except the
   fractional ones and the `_FREED` dearest of those whose column uses a pool a fractional one's
   columns use; HiGHS branch and bound picks one column each for those, on the GPUs the fixed ones
   leave.

The result is a valid plan (every column respects its deployment's bounds and move limit; the pool
rows hold the inventory), which the search offers like any other: it never makes the plan worse.
At 1,000 deployments x 12 clusters x 3 GPU types and the default 10 s budget the search's plans
ended 0.04-0.96% above the optimum on seeds 0-4 (0.14-2.05% without it), the step taking 2-3 CPU-s
(docs/planner.md, "Results", seventh round); a 2 s budget does not reach it.

No clock is read here: the search passes its deadline (`Budget`), asked between steps and handed to
HiGHS as time limits and interrupt callbacks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import highspy
import numpy as np
import numpy.typing as npt
from scipy.sparse import csc_matrix

from gridshift.arrays import FloatArray, IntArray
from gridshift.planner.fill import ranked_fills
from gridshift.planner.migration import Key
from gridshift.planner.milp import RunTime, column_lp, new_highs, timed_run
from gridshift.planner.problem import DeploymentProblem, Problem
from gridshift.planner.settings import PlannerSettings
from gridshift.planner.solution import Solution, Solver, deployment_objective

_ROUNDS = 2
"""Pricing rounds (each: the enumeration at the master's duals, then the master LP again)."""
_PRICED_COLUMNS = 2
"""Columns a pricing round adds per deployment (its enumeration's best vectors at the duals)."""
_FREED = 300
"""LP-integral deployments freed beside the fractional ones, dearest first. 120 left penalties at
1,000 x 0.8 in research; 300 reached 0.2-1.0%."""
_LP_SECONDS = 0.5
"""Time limit of one master LP (0.03-0.1 CPU-s at 1,000 deployments in research)."""
_MILP_SECONDS = 1.5
"""Time limit of the fix-and-solve MILP (0.6-1.0 CPU-s at 1,000 deployments in research)."""
_MILP_ABSOLUTE_GAP = 0.5
"""USD/h: HiGHS stops the fix-and-solve MILP within this of its optimum."""
_INTEGRAL = 1e-6
"""A column's LP value within this of 0 or 1 counts as integral."""


class Budget(Protocol):
    """What the search's deadline (gridshift.planner.search._Deadline) offers this step."""

    def left(self) -> float: ...

    def allows(self, seconds: float) -> bool: ...

    def allot(self, seconds: float) -> float: ...

    def backstop(self, seconds: float) -> float: ...

    def stopper(self, seconds: float) -> Callable[[], bool] | None: ...

    def highs_clock(self) -> Callable[[], float] | None: ...

    def after_highs(self, run: RunTime) -> None: ...


@dataclass
class _Columns:
    """The master's columns: owner (position among the movable deployments), counts, objective, and the
    pools they use with GPUs per pool (pool rows in the order of `keys`)."""

    keys: list[Key]
    owner: list[int] = field(default_factory=list)
    counts: list[tuple[int, ...]] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    pools: list[IntArray] = field(default_factory=list)
    gpus: list[FloatArray] = field(default_factory=list)
    seen: set[tuple[int, tuple[int, ...]]] = field(default_factory=set)
    row: dict[Key, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.row = {key: i for i, key in enumerate(self.keys)}

    def add(
        self, position: int, deployment: DeploymentProblem, counts: Sequence[int], settings: PlannerSettings
    ) -> bool:
        """Add a column unless the deployment has it already; whether it was new."""
        key = (position, tuple(counts))
        if key in self.seen:
            return False
        self.seen.add(key)
        use = np.zeros(len(self.keys))
        for option, count in zip(deployment.options, counts, strict=True):
            if count:
                use[self.row[option.key]] += count * option.gpus
        pools = np.flatnonzero(use)
        self.owner.append(position)
        self.counts.append(tuple(counts))
        self.cost.append(deployment_objective(deployment, list(counts), settings))
        self.pools.append(pools.astype(np.int64))
        self.gpus.append(use[pools])
        return True


@dataclass(frozen=True)
class MasterResult:
    """The plan found (None: none), and what ran, for the search's steps."""

    solution: Solution | None
    summary: str


def restricted_master(
    problem: Problem,
    settings: PlannerSettings,
    incumbent: Solution,
    plans: Sequence[Solution],
    prices: Mapping[Key, float],
    budget: Budget,
) -> MasterResult:
    """The method of the module docstring on the movable deployments; `incumbent` and `plans` are valid
    plans of `problem` (their counts are columns), `prices` the compact LP's per GPU of each pool. The
    deployments the master leaves alone (Frozen, without options) keep the incumbent's counts."""
    movable = problem.movable
    keys = sorted(problem.inventory)
    capacity = _free_capacity(problem, keys)
    free = {key: max(0, int(capacity[i])) for i, key in enumerate(keys)}
    columns = _Columns(keys)
    for position, deployment in enumerate(movable):
        for plan in (incumbent, *plans):
            columns.add(position, deployment, plan.counts[deployment.index], settings)
    if not _priced_columns(movable, columns, free, settings, prices, 1, budget):
        return MasterResult(None, "cut short by the budget while adding columns")
    x = _rounds(movable, columns, free, capacity, settings, budget)
    if x is None:
        return MasterResult(None, "master LP not solved within the time limit")
    chosen, summary = _fix_and_solve(columns, len(movable), capacity, x, budget)
    if chosen is None:
        return MasterResult(None, summary)
    counts = list(incumbent.counts)
    for position, deployment in enumerate(movable):
        counts[deployment.index] = columns.counts[chosen[position]]
    return MasterResult(Solution(tuple(counts), Solver.PRICED), summary)


def _rounds(
    movable: list[DeploymentProblem],
    columns: _Columns,
    free: Mapping[Key, int],
    capacity: FloatArray,
    settings: PlannerSettings,
    budget: Budget,
) -> FloatArray | None:
    """The master LP, then `_ROUNDS` pricing rounds each followed by the master LP again, while the
    budget lasts: the last LP's column values (0 for columns added after it), None when the first
    LP was not solved."""
    x: FloatArray | None = None
    for round_ in range(_ROUNDS + 1):
        solved = _solve_lp(columns, len(movable), capacity, budget)
        if solved is None:
            break
        x, duals = solved
        if round_ == _ROUNDS or not _priced_columns(movable, columns, free, settings, duals, _PRICED_COLUMNS, budget):
            break
    if x is None:
        return None
    return np.concatenate((x, np.zeros(len(columns.owner) - len(x))))


def _free_capacity(problem: Problem, keys: list[Key]) -> FloatArray:
    """GPUs per pool (in `keys`' order) less those the deployments the master leaves alone hold
    (Frozen ones: their running placement)."""
    row = {key: i for i, key in enumerate(keys)}
    capacity = np.asarray([problem.inventory[key] for key in keys], dtype=np.float64)
    for deployment in problem.deployments:
        if deployment.frozen:
            for option in deployment.options:
                capacity[row[option.key]] -= option.current * option.gpus
    return capacity


def _priced_columns(
    movable: list[DeploymentProblem],
    columns: _Columns,
    free: Mapping[Key, int],
    settings: PlannerSettings,
    prices: Mapping[Key, float],
    k: int,
    budget: Budget,
) -> int | None:
    """Each deployment's `k` best vectors at `prices` on the whole inventory (fill.ranked_fills) added
    as columns; how many were new (None: the budget ended it)."""
    added = 0
    for position, deployment in enumerate(movable):
        # About 0.3 ms per deployment: the deadline is asked every 64.
        if position % 64 == 0 and not budget.allows(0.0):
            return None
        extra = [prices.get(o.key, 0.0) * o.gpus for o in deployment.options]
        for counts in ranked_fills(deployment, free, settings, extra, k):
            added += columns.add(position, deployment, counts, settings)
    return added


def _matrix(columns: _Columns, picked: IntArray, position_of: IntArray, deployments: int) -> csc_matrix:
    """Pool rows, then one convexity row per deployment (its position in `position_of`), for the
    columns `picked`."""
    pools = len(columns.keys)
    rows = [
        np.concatenate((columns.pools[c], [pools + position_of[columns.owner[c]]])).astype(np.int32) for c in picked
    ]
    values = [np.concatenate((columns.gpus[c], [1.0])) for c in picked]
    starts = np.concatenate(([0], np.cumsum([len(r) for r in rows]))).astype(np.int32)
    return csc_matrix((np.concatenate(values), np.concatenate(rows), starts), shape=(pools + deployments, len(picked)))


def _model(
    columns: _Columns, picked: IntArray, position_of: IntArray, deployments: int, capacity: FloatArray
) -> highspy.HighsLp:
    """The master over `picked` columns: pools within `capacity`, each of `deployments` one column."""
    cost = np.asarray(columns.cost, dtype=np.float64)[picked]
    row_lower = np.concatenate((np.full(len(capacity), -highspy.kHighsInf), np.ones(deployments)))
    row_upper = np.concatenate((np.maximum(capacity, 0.0), np.ones(deployments)))
    matrix = _matrix(columns, picked, position_of, deployments)
    return column_lp(cost, np.zeros(len(picked)), np.ones(len(picked)), row_lower, row_upper, matrix)


def _solve_lp(
    columns: _Columns, deployments: int, capacity: FloatArray, budget: Budget
) -> tuple[FloatArray, dict[Key, float]] | None:
    """The master LP over every column: each column's value and each pool's price per GPU (the
    negated dual of its row, >= 0); None when HiGHS did not reach the optimum."""
    picked = np.arange(len(columns.owner))
    lp = _model(columns, picked, np.arange(deployments), deployments, capacity)
    highs = _run(lp, _LP_SECONDS, {"solver": "simplex"}, budget)
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    solution = highs.getSolution()
    duals = np.asarray(solution.row_dual[: len(columns.keys)])
    prices = {key: max(0.0, -float(duals[i])) for i, key in enumerate(columns.keys)}
    return np.asarray(solution.col_value), prices


def _run(
    lp: highspy.HighsLp, seconds: float, options: Mapping[str, float | bool | str], budget: Budget
) -> highspy.Highs:
    """HiGHS run on `lp` for at most `seconds` of what the budget has left (allotted, stopped and backed up by
    it, its clock's rate learnt from the run); the solved instance."""
    limit = budget.allot(min(seconds, budget.left()))
    highs = new_highs(budget.backstop(limit), options, budget.stopper(limit))
    highs.passModel(lp)
    budget.after_highs(timed_run(highs, budget.highs_clock()))
    return highs


def _fix_and_solve(
    columns: _Columns, deployments: int, capacity: FloatArray, x: FloatArray, budget: Budget
) -> tuple[list[int] | None, str]:
    """Fix the LP-integral deployments at their column except those `_freed` names, and let HiGHS pick
    one column each for the rest on the GPUs the fixed ones leave. Returns the column per deployment
    (None: HiGHS found none) and what happened."""
    owner = np.asarray(columns.owner, dtype=np.int64)
    fixed = np.full(deployments, -1, dtype=np.int64)
    whole = np.flatnonzero(x > 1 - _INTEGRAL)
    fixed[owner[whole]] = whole
    freed = _freed(columns, owner, fixed, x)
    fixed[freed] = -1
    left = capacity.copy()
    for c in fixed[fixed >= 0]:
        left[columns.pools[c]] -= columns.gpus[c]
    open_ = np.flatnonzero(fixed < 0)
    position_of = np.full(deployments, -1, dtype=np.int64)
    position_of[open_] = np.arange(len(open_))
    picked = np.flatnonzero(position_of[owner] >= 0)
    chosen = [int(c) for c in fixed]
    fractional = len(open_) - len(freed)
    if len(open_) == 0:
        return chosen, f"master LP integral: {len(columns.owner)} columns"
    lp = _model(columns, picked, position_of, len(open_), left)
    lp.integrality_ = [highspy.HighsVarType.kInteger] * len(picked)
    highs = _run(lp, _MILP_SECONDS, {"mip_rel_gap": 0.0, "mip_abs_gap": _MILP_ABSOLUTE_GAP}, budget)
    values = np.asarray(highs.getSolution().col_value) if highs.getInfo().primal_solution_status == 2 else None
    what = f"{len(columns.owner)} columns, {fractional} fractional deployments, {len(open_)} re-solved by HiGHS"
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        what += " (stopped by its time limit)"
    if values is None or len(values) != len(picked):
        return None, what + ": no solution"
    for c in picked[values > 0.5]:
        chosen[int(owner[c])] = int(c)
    if any(c < 0 for c in chosen):
        return None, what + ": no solution"
    return chosen, what


def _freed(columns: _Columns, owner: IntArray, fixed: IntArray, x: FloatArray) -> npt.NDArray[np.int64]:
    """The `_FREED` dearest LP-integral deployments whose column uses a pool that a fractional
    deployment's columns (with a value > 0) use."""
    touched = np.zeros(len(columns.keys), dtype=bool)
    for c in np.flatnonzero((x > _INTEGRAL) & (fixed[owner] < 0)):
        touched[columns.pools[c]] = True
    cost = np.asarray(columns.cost, dtype=np.float64)
    near = [int(c) for c in fixed[fixed >= 0] if touched[columns.pools[c]].any()]
    # Dearest first; ties by deployment (determinism).
    near.sort(key=lambda c: (-cost[c], columns.owner[c]))
    return np.asarray([columns.owner[c] for c in near[:_FREED]], dtype=np.int64)
