"""The joint problem as a mixed-integer program, solved by HiGHS (highspy).

Per deployment: integer replicas x_j per option; started_j >= x_j - current_j (and stopped_j >=
current_j - x_j where needed); sum_j cap_j x_j / demand + u >= 1 (u: unserved share, heavily priced),
sum x_j + v >= minReplicas, sum x_j <= maxReplicas, region indicators y_r <= sum_{j in r} x_j with
sum y_r + w >= minRegions, at most maxConcurrentMoves moves (min(started, stopped) <= M, one
binary per deployment), and per (cluster, GPU type) sum over deployments of GPUs x_j <= inventory.
The objective is USD per hour (gridshift.planner.problem).

HiGHS is called through highspy rather than scipy.optimize.milp because the anytime planner needs
what scipy does not pass on: a start solution (a valid plan HiGHS must not do worse than) and the
best solution found when the time limit ends. HiGHS reads its own clock for `time_limit`; this
module reads none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix, csc_matrix

from gridshift.arrays import FloatArray
from gridshift.planner.problem import Problem
from gridshift.planner.settings import PlannerSettings
from gridshift.planner.solution import Solution, Solver, shortfall_penalty_per_unit


class _Builder:
    def __init__(self) -> None:
        self.cost: list[float] = []
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.integer: list[bool] = []
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.values: list[float] = []
        self.row_lower: list[float] = []
        self.row_upper: list[float] = []

    def variable(self, cost: float, lower: float, upper: float, integer: bool) -> int:
        self.cost.append(cost)
        self.lower.append(lower)
        self.upper.append(upper)
        self.integer.append(integer)
        return len(self.cost) - 1

    def row(self, terms: list[tuple[int, float]], lower: float, upper: float) -> None:
        index = len(self.row_lower)
        for column, value in terms:
            self.rows.append(index)
            self.cols.append(column)
            self.values.append(value)
        self.row_lower.append(lower)
        self.row_upper.append(upper)


@dataclass(frozen=True)
class Model:
    """The MILP in column form, and where each deployment's replica counts are."""

    cost: FloatArray
    lower: FloatArray
    upper: FloatArray
    integer: npt.NDArray[np.bool_]
    rows: npt.NDArray[np.int64]
    cols: npt.NDArray[np.int64]
    values: FloatArray
    row_lower: FloatArray
    row_upper: FloatArray
    x_columns: tuple[tuple[int, ...], ...]

    @property
    def column_count(self) -> int:
        return len(self.cost)


@dataclass(frozen=True)
class RunTime:
    """How long one HiGHS run took on HiGHS's own (wall) clock, and the caller's clock readings just
    before and after it (None without a caller's clock)."""

    highs_seconds: float
    clock_span: tuple[float, float] | None


def timed_run(highs: highspy.Highs, clock: Callable[[], float] | None) -> RunTime:
    """Run HiGHS, reading the caller's clock right around it (so that the caller can learn how fast
    its clock runs against HiGHS's)."""
    before = clock() if clock is not None else None
    highs.run()
    span = None if clock is None or before is None else (before, clock())
    return RunTime(highs.getRunTime(), span)


@dataclass(frozen=True)
class MilpResult:
    """What HiGHS returned: a solution (None if it found none), whether it is proven optimal within
    the gap, the best bound it proved (USD/h), and whether the time limit ended the search."""

    solution: Solution | None
    optimal: bool
    bound: float | None
    timed_out: bool
    run: RunTime = field(default_factory=lambda: RunTime(0.0, None))


def build_model(problem: Problem, settings: PlannerSettings) -> Model:
    builder = _Builder()
    x_columns: list[tuple[int, ...]] = []
    inventory_terms: dict[tuple[str, str], list[tuple[int, float]]] = {}
    big_penalty = settings.bound_violation_penalty_usd
    stale_penalty = settings.stale_change_penalty_usd
    for deployment in problem.deployments:
        columns: list[int] = []
        started_terms: list[tuple[int, float]] = []
        stopped_terms: list[tuple[int, float]] = []
        limit_moves = deployment.limits_moves
        for option in deployment.options:
            if deployment.frozen:
                column = builder.variable(option.hourly_usd, option.current, option.current, True)
            elif option.current == 0:
                cost = option.hourly_usd + option.start_per_hour_usd + (stale_penalty if option.stale else 0.0)
                column = builder.variable(cost, 0, option.upper, True)
                started_terms.append((column, 1.0))
            else:
                upper = max(option.upper, 0)
                column = builder.variable(option.hourly_usd, 0, upper, True)
                started_cost = option.start_per_hour_usd + (stale_penalty if option.stale else 0.0)
                started = builder.variable(started_cost, 0, np.inf, False)
                builder.row([(column, 1.0), (started, -1.0)], -np.inf, option.current)
                started_terms.append((started, 1.0))
                if option.stale or limit_moves:
                    stopped = builder.variable(stale_penalty if option.stale else 0.0, 0, np.inf, False)
                    builder.row([(column, 1.0), (stopped, 1.0)], option.current, np.inf)
                    stopped_terms.append((stopped, 1.0))
            columns.append(column)
            inventory_terms.setdefault(option.key, []).append((column, float(option.gpus)))
        x_columns.append(tuple(columns))
        if deployment.frozen or not columns:
            continue
        if deployment.coverage_target > 0:
            unserved = builder.variable(shortfall_penalty_per_unit(deployment, settings), 0, 1, False)
            builder.row(
                [
                    (c, deployment.unit_capacity(o) / deployment.coverage_target)
                    for c, o in zip(columns, deployment.options, strict=True)
                ]
                + [(unserved, 1.0)],
                1.0,
                np.inf,
            )
        if deployment.min_replicas > 0:
            missing = builder.variable(big_penalty, 0, np.inf, False)
            builder.row([(c, 1.0) for c in columns] + [(missing, 1.0)], deployment.min_replicas, np.inf)
        builder.row([(c, 1.0) for c in columns], -np.inf, deployment.max_replicas)
        if deployment.min_regions >= 2:
            by_region: dict[str, list[int]] = {}
            for column, option in zip(columns, deployment.options, strict=True):
                by_region.setdefault(option.region, []).append(column)
            indicators = []
            for region in sorted(by_region):
                indicator = builder.variable(0.0, 0, 1, True)
                builder.row([(indicator, 1.0)] + [(c, -1.0) for c in by_region[region]], -np.inf, 0.0)
                indicators.append(indicator)
            missing_regions = builder.variable(big_penalty, 0, np.inf, False)
            builder.row([(i, 1.0) for i in indicators] + [(missing_regions, 1.0)], deployment.min_regions, np.inf)
        if limit_moves:
            big = float(deployment.max_replicas + deployment.current_total)
            choose = builder.variable(0.0, 0, 1, True)
            builder.row([*started_terms, (choose, -big)], -np.inf, deployment.max_moves)
            builder.row([*stopped_terms, (choose, big)], -np.inf, deployment.max_moves + big)
    for key in sorted(inventory_terms):
        builder.row(inventory_terms[key], -np.inf, problem.inventory.get(key, 0))
    return Model(
        cost=np.asarray(builder.cost, dtype=np.float64),
        lower=np.asarray(builder.lower, dtype=np.float64),
        upper=np.asarray(builder.upper, dtype=np.float64),
        integer=np.asarray(builder.integer, dtype=bool),
        rows=np.asarray(builder.rows, dtype=np.int64),
        cols=np.asarray(builder.cols, dtype=np.int64),
        values=np.asarray(builder.values, dtype=np.float64),
        row_lower=np.asarray(builder.row_lower, dtype=np.float64),
        row_upper=np.asarray(builder.row_upper, dtype=np.float64),
        x_columns=tuple(x_columns),
    )


def new_highs(
    time_limit: float | None, options: Mapping[str, float | bool | str], stop: Callable[[], bool] | None = None
) -> highspy.Highs:
    """A quiet HiGHS on one thread with a fixed seed, `time_limit` seconds on its own clock, and `stop`
    asked by its interrupt callbacks (simplex and branch and bound)."""
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    # One thread: the result must not depend on thread timing (determinism), and the operator shares
    # its cores with the rest of its work.
    highs.setOptionValue("threads", 1)
    highs.setOptionValue("random_seed", 0)
    if time_limit is not None:
        highs.setOptionValue("time_limit", max(1e-3, float(time_limit)))
    for name, value in options.items():
        highs.setOptionValue(name, value)
    if stop is not None:

        def interrupt(event: Any) -> None:
            if stop():
                event.interrupt()

        highs.cbMipInterrupt.subscribe(interrupt)
        highs.cbSimplexInterrupt.subscribe(interrupt)
    return highs


def column_lp(
    cost: FloatArray,
    lower: FloatArray,
    upper: FloatArray,
    row_lower: FloatArray,
    row_upper: FloatArray,
    matrix: csc_matrix,
) -> highspy.HighsLp:
    """A HiGHS LP from its columns' costs and bounds, its rows' bounds and its column-wise matrix."""
    lp = highspy.HighsLp()
    lp.num_col_ = len(cost)
    lp.num_row_ = len(row_lower)
    lp.col_cost_ = cost
    lp.col_lower_ = lower
    lp.col_upper_ = upper
    lp.row_lower_ = row_lower
    lp.row_upper_ = row_upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr
    lp.a_matrix_.index_ = matrix.indices
    lp.a_matrix_.value_ = matrix.data
    return lp


def _highs(
    model: Model,
    *,
    relax: bool,
    time_limit: float | None,
    options: dict[str, float | bool],
    stop: Callable[[], bool] | None = None,
) -> highspy.Highs:
    highs = new_highs(time_limit, options, stop)
    count = model.column_count
    row_count = len(model.row_lower)
    matrix = coo_matrix((model.values, (model.rows, model.cols)), shape=(row_count, count)).tocsc()
    lp = column_lp(
        model.cost,
        model.lower,
        np.where(np.isinf(model.upper), highspy.kHighsInf, model.upper),
        np.where(np.isinf(model.row_lower), -highspy.kHighsInf, model.row_lower),
        np.where(np.isinf(model.row_upper), highspy.kHighsInf, model.row_upper),
        matrix,
    )
    if not relax:
        lp.integrality_ = [
            highspy.HighsVarType.kInteger if flag else highspy.HighsVarType.kContinuous for flag in model.integer
        ]
    highs.passModel(lp)
    return highs


def run_milp(
    problem: Problem,
    settings: PlannerSettings,
    *,
    start: Solution | None = None,
    time_limit: float | None = None,
    relative_gap: float | None = None,
    absolute_gap: float | None = None,
    model: Model | None = None,
    stop: Callable[[], bool] | None = None,
    clock: Callable[[], float] | None = None,
) -> MilpResult:
    """Branch and bound on the whole problem. `start` must be a valid plan (moves within the limit,
    inventory held): HiGHS then never returns anything worse. `time_limit` in seconds (HiGHS's own
    wall clock). `stop`, asked by HiGHS's interrupt callbacks during simplex and branch and bound,
    ends the search on the caller's clock instead (the planner's injected one, which may count CPU
    seconds); `time_limit` then only backs it up. `clock`, when given, is read just before and after
    HiGHS runs (MilpResult.run)."""
    model = model or build_model(problem, settings)
    if model.column_count == 0:
        empty = Solution(counts=tuple(() for _ in problem.deployments), solver=Solver.MILP)
        return MilpResult(empty, True, 0.0, False)
    gap = settings.mip_relative_gap if relative_gap is None else relative_gap
    options: dict[str, float | bool] = {"mip_rel_gap": gap}
    if absolute_gap is not None:
        options["mip_abs_gap"] = absolute_gap
    highs = _highs(model, relax=False, time_limit=time_limit, options=options, stop=stop)
    if start is not None:
        index = np.asarray([c for columns in model.x_columns for c in columns], dtype=np.int32)
        value = np.asarray([n for counts in start.counts for n in counts], dtype=np.float64)
        # A partial start: HiGHS completes the start/stop, indicator and slack columns itself.
        highs.setSolution(len(index), index, value)
    run = timed_run(highs, clock)
    status = highs.getModelStatus()
    info = highs.getInfo()
    timed_out = status in (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kInterrupt)
    if info.primal_solution_status != 2:  # kSolutionStatusFeasible
        return MilpResult(None, False, None, timed_out, run)
    values = np.rint(np.asarray(highs.getSolution().col_value)).astype(int)
    solution = Solution(
        counts=tuple(tuple(int(values[c]) for c in columns) for columns in model.x_columns), solver=Solver.MILP
    )
    bound = float(info.mip_dual_bound) if np.isfinite(info.mip_dual_bound) else None
    return MilpResult(solution, status == highspy.HighsModelStatus.kOptimal, bound, timed_out, run)


def solve_milp(problem: Problem, settings: PlannerSettings, time_limit: float | None = None) -> Solution | None:
    """The optimal counts (within settings.mip_relative_gap), or None if HiGHS reports no solution."""
    return run_milp(problem, settings, time_limit=time_limit).solution


def lp_bound(problem: Problem, settings: PlannerSettings, time_limit: float | None = None) -> float | None:
    """The LP relaxation's optimum (USD/h): a lower bound on every plan's objective."""
    model = build_model(problem, settings)
    if model.column_count == 0:
        return 0.0
    highs = _highs(model, relax=True, time_limit=time_limit, options={})
    highs.run()
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    return float(highs.getInfo().objective_function_value)
