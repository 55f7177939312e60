"""The scale-down band (PlannerSettings.scale_down_band), applied to the solved plan.

The solvers cover the demand alone (DeploymentProblem.coverage_target). The band is applied afterwards,
in this one place: where the plan stops replicas that run now and leaves less capacity than the band
holds (DeploymentProblem.band_coverage), replicas are added back (_kept), on GPUs the plan leaves free.
Priced inside the solvers like unserved demand, the band's margin competed with other deployments' real
demand in a full pool and could win (review: a deployment was left 0.05 of a replica short so that
another kept its 4th replica for a 5% margin); after the search it only takes GPUs no demand wants.
"""

from __future__ import annotations

from gridshift.planner.problem import DeploymentProblem, Problem
from gridshift.planner.settings import PlannerSettings
from gridshift.planner.solution import Solution, free_gpus, moves, option_cost

_EPS = 1e-9


def hold_band(problem: Problem, solution: Solution, settings: PlannerSettings) -> Solution:
    """`solution` with the replicas the scale-down band keeps; `solution` itself where it keeps none.

    Deployments are served in index order (snapshot order): the first takes a free GPU two would keep.
    Frozen deployments and class groups have no band (band_coverage at most coverage_target)."""
    free = free_gpus(problem, solution)
    counts = list(solution.counts)
    held: set[int] = set()
    for deployment in problem.deployments:
        if deployment.frozen or deployment.band_coverage <= deployment.coverage_target + _EPS:
            continue
        kept = _kept(deployment, counts[deployment.index], free, settings)
        if kept is not None:
            counts[deployment.index] = kept
            held.add(deployment.index)
    return Solution(tuple(counts), solution.solver, frozenset(held)) if held else solution


def _kept(
    deployment: DeploymentProblem, counts: tuple[int, ...], free: dict[tuple[str, str], int], settings: PlannerSettings
) -> tuple[int, ...] | None:
    """`counts` with replicas added until the band's coverage is reached, or None where none is added.

    Only where the plan stops replicas (one kept back: no start for a margin) or already starts them (one
    more start joins a move under way: b far cheaper than a, 4 replicas moved to b rather than 3 moved
    and the 4th kept at a's price for as long as the band holds), on GPUs left free in `free` (taken from
    it), within each option's upper bound, the optimiser's maxReplicas and maxConcurrentMoves. Fewest
    replicas first: of those that close the gap alone the cheapest by the objective's own terms
    (option_cost: window cost, start, a stale cluster's change penalty), else the one that closes most."""
    columns = deployment.columns
    kept = list(counts)
    covered = sum(n * u for n, u in zip(kept, columns.unit, strict=True))
    target = deployment.band_coverage
    total = sum(kept)
    changed = False
    while covered < target - _EPS and total < deployment.max_replicas:
        room = _room(deployment, counts, kept, free)
        if not room:
            break
        gap = target - covered
        closing = [j for j in room if columns.unit[j] >= gap - _EPS]
        if closing:
            j = min(closing, key=lambda i: (_added_cost(deployment, kept, i, settings), i))
        else:
            j = max(room, key=lambda i: (columns.unit[i], -_added_cost(deployment, kept, i, settings), -i))
        option = deployment.options[j]
        kept[j] += 1
        free[option.key] -= option.gpus
        covered += columns.unit[j]
        total += 1
        changed = True
    return tuple(kept) if changed else None


def _room(
    deployment: DeploymentProblem, planned: tuple[int, ...], kept: list[int], free: dict[tuple[str, str], int]
) -> list[int]:
    """Options that may take one more replica for the band (see _kept)."""
    current = deployment.columns.current
    room = []
    for j, option in enumerate(deployment.options):
        if kept[j] >= option.upper or free.get(option.key, 0) < option.gpus:
            continue
        if option.carbon_limit is not None:
            # Found in regression review: the band's margin has no price, so a replica was kept where it breaks
            # a carbon limit (the cheapest option) and the explanation said no capacity within it served the
            # demand, which the search had served. A margin never breaks a limit.
            continue
        if kept[j] < current[j]:
            room.append(j)
        elif planned[j] > current[j]:
            kept[j] += 1
            legal = min(moves(deployment, kept)) <= deployment.max_moves
            kept[j] -= 1
            if legal:
                room.append(j)
    return room


def _added_cost(deployment: DeploymentProblem, kept: list[int], j: int, settings: PlannerSettings) -> float:
    """What one more replica at option j adds to the objective: its own terms only, since demand is
    covered and minReplicas and minRegions only gain."""
    return option_cost(deployment, j, kept[j] + 1, settings) - option_cost(deployment, j, kept[j], settings)
