"""The joint placement MILP, solved by HiGHS through scipy.optimize.milp.

Per deployment d and option j (a cluster and GPU type): integer replicas x_j. Each option that
holds replicas now (current_j > 0) gets a continuous "started" a_j >= x_j - current_j and, when
needed, a "stopped" r_j >= current_j - x_j; for the others, started is x_j itself. Minimise

    sum window_cost_j x_j + start_cost_j a_j  (+ penalties on slacks and stale-price changes)

subject to: demand coverage sum cap_j x_j / D + u >= 1 (u: unserved share, heavily priced),
sum x_j + v >= minReplicas, sum x_j <= maxReplicas, region indicators y_r <= sum_{j in r} x_j with
sum y_r + w >= minRegions, at most maxConcurrentMoves moves (min(started, stopped) <= M, one
binary per deployment), and per (cluster, GPU type) sum over deployments of GPUs x_j <= inventory.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from gridshift.planner.problem import Problem
from gridshift.planner.settings import PlannerSettings
from gridshift.planner.solution import Solution, Solver, shortfall_penalty_per_unit


class _Builder:
    def __init__(self) -> None:
        self.cost: list[float] = []
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.integer: list[int] = []
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.values: list[float] = []
        self.row_lower: list[float] = []
        self.row_upper: list[float] = []

    def variable(self, cost: float, lower: float, upper: float, integer: bool) -> int:
        self.cost.append(cost)
        self.lower.append(lower)
        self.upper.append(upper)
        self.integer.append(1 if integer else 0)
        return len(self.cost) - 1

    def row(self, terms: list[tuple[int, float]], lower: float, upper: float) -> None:
        index = len(self.row_lower)
        for column, value in terms:
            self.rows.append(index)
            self.cols.append(column)
            self.values.append(value)
        self.row_lower.append(lower)
        self.row_upper.append(upper)


def solve_milp(problem: Problem, settings: PlannerSettings) -> Solution | None:
    """The optimal counts, or None if HiGHS reports no solution (the caller falls back to greedy)."""
    return _solve(problem, settings, relax=False)


def solve_lp_floor(problem: Problem, settings: PlannerSettings) -> Solution | None:
    """The LP relaxation's replica counts, rounded down: a start for the greedy solver on problems too
    large for branch and bound. Placement problems are close to transport problems, whose LP optima
    are mostly integral, so little is lost in the rounding."""
    return _solve(problem, settings, relax=True)


def _solve(problem: Problem, settings: PlannerSettings, *, relax: bool) -> Solution | None:
    builder = _Builder()
    x_columns: list[list[int]] = []
    inventory_terms: dict[tuple[str, str], list[tuple[int, float]]] = {}
    big_penalty = settings.bound_violation_penalty_usd
    stale_penalty = settings.stale_change_penalty_usd
    for deployment in problem.deployments:
        columns: list[int] = []
        started_terms: list[tuple[int, float]] = []
        stopped_terms: list[tuple[int, float]] = []
        limit_moves = (
            not deployment.frozen
            and deployment.current_total > 0
            and deployment.max_moves < deployment.max_replicas + deployment.current_total
        )
        for option in deployment.options:
            if deployment.frozen:
                column = builder.variable(option.window_cost_usd, option.current, option.current, True)
            elif option.current == 0:
                cost = option.window_cost_usd + option.start_cost_usd + (stale_penalty if option.stale else 0.0)
                column = builder.variable(cost, 0, option.upper, True)
                started_terms.append((column, 1.0))
            else:
                upper = max(option.upper, 0)
                column = builder.variable(option.window_cost_usd, 0, upper, True)
                started_cost = option.start_cost_usd + (stale_penalty if option.stale else 0.0)
                started = builder.variable(started_cost, 0, np.inf, False)
                builder.row([(column, 1.0), (started, -1.0)], -np.inf, option.current)
                started_terms.append((started, 1.0))
                if option.stale or limit_moves:
                    stopped = builder.variable(stale_penalty if option.stale else 0.0, 0, np.inf, False)
                    builder.row([(column, 1.0), (stopped, 1.0)], option.current, np.inf)
                    stopped_terms.append((stopped, 1.0))
            columns.append(column)
            inventory_terms.setdefault(option.key, []).append((column, float(option.gpus)))
        x_columns.append(columns)
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
    if not builder.cost:
        return Solution(
            counts=tuple(() for _ in problem.deployments), solver=Solver.LP_GREEDY if relax else Solver.MILP
        )
    count = len(builder.cost)
    constraints = []
    if builder.row_lower:
        matrix = coo_matrix(
            (builder.values, (builder.rows, builder.cols)), shape=(len(builder.row_lower), count)
        ).tocsr()
        constraints.append(LinearConstraint(matrix, builder.row_lower, builder.row_upper))
    result = milp(
        c=np.asarray(builder.cost),
        integrality=np.zeros(len(builder.integer)) if relax else np.asarray(builder.integer),
        bounds=Bounds(np.asarray(builder.lower, dtype=float), np.asarray(builder.upper, dtype=float)),
        constraints=constraints,
        options={"mip_rel_gap": settings.mip_relative_gap, "presolve": True},
    )
    if result.x is None:
        return None
    values = np.floor(result.x + 1e-6).astype(int) if relax else np.rint(result.x).astype(int)
    cut = np.clip(result.x - values, 0.0, 1.0) if relax else np.zeros(0)
    return Solution(
        counts=tuple(tuple(int(values[c]) for c in columns) for columns in x_columns),
        solver=Solver.LP_GREEDY if relax else Solver.MILP,
        fractions=tuple(tuple(float(cut[c]) for c in columns) for columns in x_columns) if relax else (),
    )
