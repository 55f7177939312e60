"""The restricted master (issue 13): one replica pattern per deployment, chosen jointly over the pools.

A pattern (column) is a complete vector of one deployment's replica counts within maxConcurrentMoves,
its bounds and the inventory. Per movable deployment the columns are its counts in each valid plan
the search has seen (the running placement, the first fill, the greedies at pool prices: their fills
on the inventory the others leave are the columns that pack), and the exact fill's best vector at
the compact LP's pool prices on the whole inventory (gridshift.planner.fill.ranked_fills, computed for many
deployments at once by gridshift.planner.batchfill). Then:

1. the **master LP**: each deployment a convex combination of its columns, each pool within the GPUs
   Frozen deployments leave (HiGHS simplex);
2. **pricing rounds**: the enumeration again at the master's pool duals, its two best vectors per
   deployment added as columns, and the master LP re-solved;
3. **fix and solve**: the deployments the LP leaves integral keep their column, except the
   fractional ones and the `_FREED` dearest of those whose column uses a pool a fractional one's
   columns use; HiGHS branch and bound picks one column each for those, on the GPUs the fixed ones
   leave.

With less than `_FULL_SECONDS` left (a 2 s budget at 1,000 deployments), a short form: no pricing at the
compact LP's prices, the pricing rounds only for the deployments the MILP re-solves, fewer of them freed
(`_SHORT_FREED`) but also every deployment whose LP column is not the incumbent's, and the MILP started from
the incumbent (then a feasible point) with HiGHS options that find improvements sooner.

The result is a valid plan (every column respects its deployment's bounds and move limit; the pool
rows hold the inventory), which the search offers like any other: it never makes the plan worse.
At 1,000 deployments x 12 clusters x 3 GPU types and the default 10 s budget the search's plans
ended 0.04-0.96% above the optimum on seeds 0-4 (0.14-2.05% without it), the step taking 2-3 CPU-s
(docs/planner.md, "Results", seventh round); a 2 s budget reaches the short form only.

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
from gridshift.planner.batchfill import Batch, batch, ranked_fills_batch, work
from gridshift.planner.migration import Key
from gridshift.planner.milp import RunTime, column_lp, new_highs, timed_run
from gridshift.planner.problem import DeploymentProblem, Problem
from gridshift.planner.settings import PlannerSettings
from gridshift.planner.solution import Solution, Solver, deployment_objective

_ROUNDS = 2
"""Pricing rounds (each: the enumeration at the master's duals, then the master LP again)."""
_PRICED_COLUMNS = 2
"""Columns a pricing round adds per deployment (its enumeration's best vectors at the duals)."""
_PRICING_CHUNK = 256
"""Deployments priced together (batchfill) at most: 256 took 0.10 CPU-s a round at 1,000 deployments (k=2),
128 0.125, all 1,000 at once 0.083; the budget is asked between chunks."""
_PRICING_WORK = 50_000.0
"""A chunk's estimated CPU microseconds at most (batchfill.work): 43 deployments of three GPU types at a
replica cap of 24 and minRegions 2 (fill.ranked_fills, about 1.2 ms each), fewer than the 64 between main's
budget checks; at 1,000 x 12 x 3 a chunk of 256 common ones is 33,000-42,000 (seeds 0-2), so they stay 256;
at 80 clusters (320 options a deployment) 90-135."""
_FREED = 300
"""LP-integral deployments freed beside the fractional ones, dearest first. 120 left penalties at
1,000 x 0.8 in research; 300 reached 0.2-1.0%."""
_LP_SECONDS = 0.5
"""Time limit of one master LP (0.03-0.1 CPU-s at 1,000 deployments in research)."""
_MILP_SECONDS = 1.5
"""Time limit of the fix-and-solve MILP (0.6-1.0 CPU-s at 1,000 deployments in research)."""
_MILP_ABSOLUTE_GAP = 0.5
"""USD/h: HiGHS stops the fix-and-solve MILP within this of its optimum."""
_FULL_SECONDS = 2.5
"""With less than this left the step is cut to fit (`_rounds` short, the MILP from the incumbent): the full
step took 2-3 CPU-s at 1,000 deployments (seventh round)."""
_SHORT_FREED = 150
"""`_FREED` when short of time: at a 2 s budget, 150 beside the fractional ones and those the LP moved gave
0.86-2.7% at 1,000 x 0.4 on seeds 1, 3 and 4 where 300 gave 0.91-3.6 (its MILP stopped sooner)."""
_SHORT_MILP_OPTIONS: Mapping[str, float | bool | str] = {"mip_pool_soft_limit": 10, "mip_lp_age_limit": 1}
"""HiGHS options of the MILP when short of time: a small cut pool whose cuts age out after one round. On the
MILP of 1,000 x 0.4, seed 0, at a 2 s budget (708 columns, 251 rows, the incumbent as start), HiGHS's
defaults found nothing better in 0.25 s and proved the optimum in 2.3; with these, 46 of the 48 USD/h the
optimum saves in 0.3 s and the proof in 0.7 (its root spent the time managing cuts)."""
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
    seen: dict[tuple[int, tuple[int, ...]], int] = field(default_factory=dict)
    row: dict[Key, int] = field(default_factory=dict)
    batches: dict[tuple[int, ...], Batch] = field(default_factory=dict)
    """The pricing's deployments as arrays (batchfill.batch), per chunk of positions: built once per search."""

    def __post_init__(self) -> None:
        self.row = {key: i for i, key in enumerate(self.keys)}

    def add(
        self, position: int, deployment: DeploymentProblem, counts: Sequence[int], settings: PlannerSettings
    ) -> bool:
        """Add a column unless the deployment has it already; whether it was new."""
        key = (position, tuple(counts))
        if key in self.seen:
            return False
        self.seen[key] = len(self.owner)
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
    short = budget.left() < _FULL_SECONDS
    if not short and not _priced_columns(movable, columns, free, settings, prices, 1, budget):
        return MasterResult(None, "cut short by the budget while adding columns")
    x = _rounds(movable, columns, free, capacity, settings, budget, short)
    if x is None:
        return MasterResult(None, "master LP not solved within the time limit")
    # Short of time, the MILP starts from the incumbent (its columns are in the master): it then returns a plan
    # at least as good however soon the budget stops it.
    start = (
        np.asarray([columns.seen[(p, tuple(incumbent.counts[d.index]))] for p, d in enumerate(movable)])
        if short
        else None
    )
    chosen, summary = _fix_and_solve(columns, len(movable), capacity, x, budget, start)
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
    short: bool,
) -> FloatArray | None:
    """The master LP, then `_ROUNDS` pricing rounds at its duals each followed by the master LP again, while
    the budget lasts: the last LP's column values (0 for columns added after it), None when the first LP was
    not solved. `short` (less than `_FULL_SECONDS` left): the rounds price the deployments the MILP will
    re-solve only (the fractional ones after the first LP and `_SHORT_FREED` of `_freed`'s). Pricing every
    deployment takes about 0.1 CPU-s a round at 1,000 deployments (batchfill; 0.25 one by one, docs/planner.md,
    "Ninth round"); a 2 s budget leaves the whole step 0.4-0.7, and these rounds took 0.05-0.07 each one by one
    ("Eighth round")."""
    solved = _solve_lp(columns, len(movable), capacity, budget)
    if solved is None:
        return None
    x, duals = solved
    scope = _short_scope(columns, len(movable), x) if short else None
    for _ in range(_ROUNDS):
        if not _priced_columns(movable, columns, free, settings, duals, _PRICED_COLUMNS, budget, scope):
            break
        solved = _solve_lp(columns, len(movable), capacity, budget)
        if solved is None:
            break
        x, duals = solved
    return np.concatenate((x, np.zeros(len(columns.owner) - len(x))))


def _short_scope(columns: _Columns, deployments: int, x: FloatArray) -> list[int]:
    """The positions the short form prices: those fractional in the master LP's `x`, and `_freed`'s
    `_SHORT_FREED`."""
    owner = np.asarray(columns.owner, dtype=np.int64)
    fixed = np.full(deployments, -1, dtype=np.int64)
    whole = np.flatnonzero(x > 1 - _INTEGRAL)
    fixed[owner[whole]] = whole
    return sorted({*np.flatnonzero(fixed < 0).tolist(), *_freed(columns, owner, fixed, x, _SHORT_FREED).tolist()})


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
    scope: Sequence[int] | None = None,
) -> int | None:
    """Each deployment's (of `scope`: positions among `movable`, all when None) `k` best vectors at
    `prices` on the whole inventory (fill.ranked_fills' lists, batchfill.ranked_fills_batch) added as columns
    in position order; how many were new (None: the budget ended it)."""
    added = 0
    for chunk in _chunks(movable, list(range(len(movable)) if scope is None else scope)):
        # The deadline is asked every chunk: at most `_PRICING_WORK` microseconds estimated.
        if not budget.allows(0.0):
            return None
        if chunk not in columns.batches:
            columns.batches[chunk] = batch([movable[position] for position in chunk], settings)
        fills = ranked_fills_batch(columns.batches[chunk], free, prices, settings, k)
        for position, found in zip(chunk, fills, strict=True):
            for counts in found:
                added += columns.add(position, movable[position], counts, settings)
    return added


def _chunks(movable: list[DeploymentProblem], positions: list[int]) -> list[tuple[int, ...]]:
    """`positions` in order, cut into chunks of at most `_PRICING_CHUNK` deployments and `_PRICING_WORK`
    estimated microseconds (a deployment over it alone)."""
    chunks: list[tuple[int, ...]] = []
    chunk: list[int] = []
    spent = 0.0
    for position in positions:
        cost = work(movable[position])
        if chunk and (len(chunk) == _PRICING_CHUNK or spent + cost > _PRICING_WORK):
            chunks.append(tuple(chunk))
            chunk, spent = [], 0.0
        chunk.append(position)
        spent += cost
    if chunk:
        chunks.append(tuple(chunk))
    return chunks


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
    lp: highspy.HighsLp,
    seconds: float,
    options: Mapping[str, float | bool | str],
    budget: Budget,
    start: FloatArray | None = None,
) -> highspy.Highs:
    """HiGHS run on `lp` for at most `seconds` of what the budget has left (allotted, stopped and backed up by
    it, its clock's rate learnt from the run), from the column values `start` where given; the solved
    instance."""
    limit = budget.allot(min(seconds, budget.left()))
    highs = new_highs(budget.backstop(limit), options, budget.stopper(limit))
    highs.passModel(lp)
    if start is not None:
        highs.setSolution(len(start), np.arange(len(start), dtype=np.int32), start)
    budget.after_highs(timed_run(highs, budget.highs_clock()))
    return highs


def _fix_and_solve(
    columns: _Columns,
    deployments: int,
    capacity: FloatArray,
    x: FloatArray,
    budget: Budget,
    start: IntArray | None = None,
) -> tuple[list[int] | None, str]:
    """Fix the LP-integral deployments at their column except those `_freed` names, and let HiGHS pick
    one column each for the rest on the GPUs the fixed ones leave. With `start` (the incumbent's column
    per deployment): `_SHORT_FREED` freed instead of `_FREED`, and also every LP-integral deployment
    whose column is not the incumbent's, so that the incumbent is a feasible start for HiGHS. Returns
    the column per deployment (None: HiGHS found none) and what happened."""
    owner = np.asarray(columns.owner, dtype=np.int64)
    fixed = np.full(deployments, -1, dtype=np.int64)
    whole = np.flatnonzero(x > 1 - _INTEGRAL)
    fixed[owner[whole]] = whole
    fractional = int(np.sum(fixed < 0))
    freed = _freed(columns, owner, fixed, x, _FREED if start is None else _SHORT_FREED)
    fixed[freed] = -1
    if start is not None:
        fixed[fixed != start] = -1
    left = capacity.copy()
    for c in fixed[fixed >= 0]:
        left[columns.pools[c]] -= columns.gpus[c]
    open_ = np.flatnonzero(fixed < 0)
    position_of = np.full(deployments, -1, dtype=np.int64)
    position_of[open_] = np.arange(len(open_))
    picked = np.flatnonzero(position_of[owner] >= 0)
    chosen = [int(c) for c in fixed]
    if len(open_) == 0:
        return chosen, f"master LP integral: {len(columns.owner)} columns"
    lp = _model(columns, picked, position_of, len(open_), left)
    lp.integrality_ = [highspy.HighsVarType.kInteger] * len(picked)
    initial = None if start is None else np.isin(picked, start[open_]).astype(np.float64)
    options: dict[str, float | bool | str] = {"mip_rel_gap": 0.0, "mip_abs_gap": _MILP_ABSOLUTE_GAP}
    if start is not None:
        options.update(_SHORT_MILP_OPTIONS)
    highs = _run(lp, _MILP_SECONDS, options, budget, initial)
    values = np.asarray(highs.getSolution().col_value) if highs.getInfo().primal_solution_status == 2 else None
    what = f"{len(columns.owner)} columns, {fractional} fractional deployments, {len(open_)} re-solved by HiGHS"
    what += "" if start is None else " from the incumbent"
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        what += " (stopped by its time limit)"
    if values is None or len(values) != len(picked):
        return None, what + ": no solution"
    for c in picked[values > 0.5]:
        chosen[int(owner[c])] = int(c)
    if any(c < 0 for c in chosen):
        return None, what + ": no solution"
    return chosen, what


def _freed(columns: _Columns, owner: IntArray, fixed: IntArray, x: FloatArray, count: int) -> npt.NDArray[np.int64]:
    """The `count` dearest LP-integral deployments whose column uses a pool that a fractional
    deployment's columns (with a value > 0) use."""
    touched = np.zeros(len(columns.keys), dtype=bool)
    for c in np.flatnonzero((x > _INTEGRAL) & (fixed[owner] < 0)):
        touched[columns.pools[c]] = True
    cost = np.asarray(columns.cost, dtype=np.float64)
    near = [int(c) for c in fixed[fixed >= 0] if touched[columns.pools[c]].any()]
    # Dearest first; ties by deployment (determinism).
    near.sort(key=lambda c: (-cost[c], columns.owner[c]))
    return np.asarray([columns.owner[c] for c in near[:count]], dtype=np.int64)
