"""What a solver returns, and the one objective every solver is judged by (USD per hour)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from gridshift.planner.problem import DeploymentProblem, Problem
from gridshift.planner.settings import PlannerSettings


class Solver(StrEnum):
    """Which step of the anytime search produced the plan (gridshift.planner.search)."""

    CURRENT = "current"
    """The running placement, re-validated: nothing found was cheaper."""
    WARM = "warm"
    """The previous cycle's plan, still valid and not beaten."""
    GREEDY = "greedy"
    PRICED = "greedy-priced"
    """The greedy with each pool priced at its LP shadow price (gridshift.planner.pricing)."""
    MILP = "milp"
    """HiGHS on the whole problem (optimal when Plan.proven_optimal)."""
    LNS = "milp-neighbourhoods"
    """HiGHS on groups of deployments, the rest fixed (large-neighbourhood search)."""


@dataclass(frozen=True)
class Solution:
    """Replicas per option, in the order of each DeploymentProblem.options."""

    counts: tuple[tuple[int, ...], ...]
    solver: Solver
    band_held: frozenset[int] = frozenset()
    """Indices of the deployments to which the scale-down band added replicas after the search
    (planner.band): their explanation names the band, and only theirs."""


def moves(
    problem: DeploymentProblem, counts: tuple[int, ...] | list[int], start: Sequence[int] | None = None
) -> tuple[int, int]:
    """(replicas started, replicas stopped) to go from the current placement (or `start`, per option) to `counts`."""
    added = removed = 0
    for n, current in zip(counts, problem.columns.current if start is None else start, strict=True):
        if n > current:
            added += n - current
        elif n < current:
            removed += current - n
    return added, removed


def free_gpus(problem: Problem, solution: Solution) -> dict[tuple[str, str], int]:
    """GPUs per pool that `solution` leaves free: the inventory (which counts what our replicas hold now as
    available) less what its counts use. Read by plan assembly and by the scale-down band (planner.band)."""
    free = dict(problem.inventory)
    for deployment, counts in zip(problem.deployments, solution.counts, strict=True):
        for option, count in zip(deployment.options, counts, strict=True):
            if count:
                free[option.key] = free.get(option.key, 0) - count * option.gpus
    return free


def shortfall_penalty_per_unit(problem: DeploymentProblem, settings: PlannerSettings) -> float:
    """Objective cost of the whole demand left unserved: the penalty per replica-equivalent times replicas."""
    strongest = problem.strongest_unit
    replicas_equivalent = problem.coverage_target / strongest if strongest > 0 else 1.0
    return settings.shortfall_penalty_usd * max(1.0, replicas_equivalent)


def deployment_objective(
    problem: DeploymentProblem, counts: tuple[int, ...] | list[int], settings: PlannerSettings
) -> float:
    """Window cost + start costs + penalties of one deployment's counts (the MILP's objective)."""
    columns = problem.columns
    total = 0.0
    covered = 0.0
    replicas = 0
    regions: set[str] = set()
    stale_penalty = settings.stale_change_penalty_usd
    for j, n in enumerate(counts):
        current = columns.current[j]
        if n == 0 and current == 0:
            continue
        total += n * columns.window_cost[j]
        if n > current:
            total += (n - current) * columns.start_cost[j]
        if columns.stale[j]:
            total += abs(n - current) * stale_penalty
        if n > 0:
            covered += n * columns.unit[j]
            replicas += n
            regions.add(columns.region[j])
    if problem.frozen:
        return total
    if problem.coverage_target > 0:
        missing = max(0.0, 1.0 - covered / problem.coverage_target)
        if missing > 0:
            total += missing * shortfall_penalty_per_unit(problem, settings)
    total += max(0, problem.min_replicas - replicas) * settings.bound_violation_penalty_usd
    if problem.min_regions >= 2:
        total += max(0, problem.min_regions - len(regions)) * settings.bound_violation_penalty_usd
    return total


def objective(problem: Problem, solution: Solution, settings: PlannerSettings) -> float:
    return math.fsum(
        deployment_objective(p, c, settings) for p, c in zip(problem.deployments, solution.counts, strict=True)
    )


def option_cost(problem: DeploymentProblem, j: int, n: int, settings: PlannerSettings) -> float:
    """Option j's own terms of deployment_objective at count n: window cost, starts, stale changes."""
    columns = problem.columns
    current = columns.current[j]
    cost = n * columns.window_cost[j]
    if n > current:
        cost += (n - current) * columns.start_cost[j]
    if columns.stale[j]:
        cost += abs(n - current) * settings.stale_change_penalty_usd
    return cost


@dataclass(frozen=True)
class _Aggregates:
    started: int
    stopped: int
    covered: float
    region_replicas: dict[str, int]


# Aggregates of recently seen counts, per deployment: the greedy solver's exchange and eviction passes
# evaluate many moves from the same counts. Keyed by the counts tuple (hashed in C).
_AGGREGATE_CACHE_SIZE = 4


def aggregates(problem: DeploymentProblem, counts: list[int]) -> _Aggregates:
    """Started and stopped replicas, capacity covered and replicas per region of `counts` (cached)."""
    key = tuple(counts)
    cache = problem.aggregate_cache
    cached = cache.get(key)
    if isinstance(cached, _Aggregates):
        return cached
    columns = problem.columns
    started = stopped = 0
    covered = 0.0
    region_replicas: dict[str, int] = {}
    for j, n in enumerate(counts):
        current = columns.current[j]
        if n > current:
            started += n - current
        elif n < current:
            stopped += current - n
        if n > 0:
            covered += n * columns.unit[j]
            region = columns.region[j]
            region_replicas[region] = region_replicas.get(region, 0) + n
    found = _Aggregates(started, stopped, covered, region_replicas)
    if len(cache) >= _AGGREGATE_CACHE_SIZE:
        cache.pop(next(iter(cache)))
    cache[key] = found
    return found


def move_delta(
    problem: DeploymentProblem, counts: list[int], out: int, into: int, settings: PlannerSettings
) -> tuple[float, bool]:
    """Objective change of moving one replica from option `out` to option `into`, and whether the
    result respects maxConcurrentMoves; equal to the difference of two deployment_objective calls."""
    columns = problem.columns
    delta = (
        option_cost(problem, out, counts[out] - 1, settings)
        - option_cost(problem, out, counts[out], settings)
        + option_cost(problem, into, counts[into] + 1, settings)
        - option_cost(problem, into, counts[into], settings)
    )
    totals = aggregates(problem, counts)
    started, stopped = totals.started, totals.stopped
    # The moved replica changes started/stopped only at its two options.
    # (Conditional expressions rather than max(0, x): this runs in the solver's innermost loop.)
    for j, change in ((out, -1), (into, 1)):
        current = columns.current[j]
        before = counts[j]
        after = before + change
        started += (after - current if after > current else 0) - (before - current if before > current else 0)
        stopped += (current - after if current > after else 0) - (current - before if current > before else 0)
    legal = min(started, stopped) <= problem.max_moves
    if problem.frozen:
        return delta, legal
    if problem.coverage_target > 0:
        penalty = shortfall_penalty_per_unit(problem, settings)
        missing_before = max(0.0, 1.0 - totals.covered / problem.coverage_target)
        covered_after = totals.covered - columns.unit[out] + columns.unit[into]
        missing_after = max(0.0, 1.0 - covered_after / problem.coverage_target)
        delta += (missing_after - missing_before) * penalty
    if problem.min_regions >= 2:
        replicas = totals.region_replicas
        region_out, region_in = columns.region[out], columns.region[into]
        regions_before = len(replicas)
        regions_after = regions_before
        if region_out != region_in:
            regions_after -= 1 if replicas.get(region_out, 0) == 1 else 0
            regions_after += 1 if replicas.get(region_in, 0) == 0 else 0
        violation_before = max(0, problem.min_regions - regions_before)
        violation_after = max(0, problem.min_regions - regions_after)
        delta += (violation_after - violation_before) * settings.bound_violation_penalty_usd
    return delta, legal
