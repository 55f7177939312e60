"""One deployment's cheapest counts at given pool prices, found exactly by enumeration (numpy).

The greedy (gridshift.planner.greedy) fills deployments one at a time against the inventory the
earlier ones left. Its own fill is a heuristic (cheapest capacity per token, then a completing
option); at the pool prices of the LP relaxation (gridshift.planner.pricing) it ends 20-30% above
the optimum at 1,000 deployments. This module replaces that fill by the exact minimum of the
deployment's priced objective, which is small enough to enumerate:

- a replica's capacity depends on the GPU type only (profiles are per model x GPU type), so what a
  fill covers, and whether it meets minReplicas and the replica cap, depends only on how many
  replicas it puts on each GPU type: n = (n_1, ..., n_G), G <= 4, each at most the replica cap;
- for a given n, the cheapest way to place n_g replicas of type g takes the n_g cheapest *slots* of
  that type, a slot being one more replica at an option: the first `current` replicas of an option
  cost its window cost (keeping them; less the stale-stop penalty where the price is stale), the
  next ones also its start cost (plus that penalty). Each option's slot costs rise, so taking the
  cheapest slots of a type never skips a cheaper slot of the same option;
- minRegions 2: a cheapest-slot selection that lies in one region r is mended by the cheapest single
  swap, the last slot of some type g out and the cheapest slot of type g outside r in; that swap is
  optimal for the same n (any selection over two regions holds a slot of some type g outside r,
  and the rest of it costs no less than the cheapest n_g - 1 slots of g and n_h of every other h).
  The penalty is paid instead where it is cheaper (it never is at the default penalties).

The objective per n is then the slots' prefix sums, the shortfall share penalty and the minReplicas
penalty, evaluated for every n at once; the least wins. maxConcurrentMoves is not part of the
enumeration: a fill that breaks it is replaced by the cheaper of keeping only the running
replicas that fit and keeping all of them (each within the limit), and the caller compares with
its own fill. minRegions above 2, and replica caps so large that the replica vectors number over
_MAX_COMBINATIONS, are not handled (None: the caller's fill serves).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridshift.arrays import FloatArray, IntArray
from gridshift.planner.migration import Key
from gridshift.planner.problem import DeploymentProblem
from gridshift.planner.settings import PlannerSettings
from gridshift.planner.solution import deployment_objective, moves, shortfall_penalty_per_unit

# Replica vectors n evaluated at most per fill: 4 GPU types at a replica cap of 20 (194,481), a few
# MB of arrays. Beyond it (a cap of hundreds of replicas) the caller's heuristic fill serves.
_MAX_COMBINATIONS = 200_000


@dataclass
class _Type:
    """The slots of one GPU type, cheapest first, truncated to the replica cap."""

    cost: FloatArray
    option: IntArray
    region: IntArray
    unit: float
    forced: int
    """Slots at the front that every fill must take (keeping every running replica), else 0."""
    outside: FloatArray
    """Per region r: the cheapest slot of this type outside r (inf when none)."""
    outside_option: IntArray


def exact_fill(
    problem: DeploymentProblem,
    free: Mapping[Key, int],
    settings: PlannerSettings,
    extra: Sequence[float],
) -> tuple[list[int], bool] | None:
    """The counts that minimise the deployment's objective plus `extra[j]` per replica at option j
    (its pool's price x GPUs), within what `free` leaves in each pool, the options' bounds and the
    replica cap, and within maxConcurrentMoves, and whether they are that minimum (True) or the
    better of the two move-limited candidates (False: the caller may know a better one). None when
    the enumeration does not apply (frozen, no options, minRegions above 2) or no candidate keeps
    the move limit."""
    if problem.frozen or not problem.options or problem.min_regions > 2:
        return None
    counts = _best_counts(problem, settings, _slot_types(problem, free, settings, extra, False, False))
    if counts is not None and min(moves(problem, counts)) <= problem.max_moves:
        return counts, True
    best: tuple[float, list[int]] | None = None
    for keep_only, keep_all in ((True, False), (False, True)):
        candidate = _best_counts(problem, settings, _slot_types(problem, free, settings, extra, keep_only, keep_all))
        if candidate is None or min(moves(problem, candidate)) > problem.max_moves:
            continue
        value = priced_objective(problem, candidate, settings, extra)
        if best is None or value < best[0]:
            best = (value, candidate)
    return None if best is None else (best[1], False)


def ranked_fills(
    problem: DeploymentProblem,
    free: Mapping[Key, int],
    settings: PlannerSettings,
    extra: Sequence[float],
    k: int,
) -> list[list[int]]:
    """Up to `k` least-cost counts of the enumeration (as `exact_fill`), cheapest first, those within
    maxConcurrentMoves; where one of them breaks it, also up to `k` of each move-limited candidate
    (keeping only the running replicas that fit, keeping all of them). Columns of the restricted
    master (gridshift.planner.master); empty where the enumeration does not apply."""
    if problem.frozen or not problem.options or problem.min_regions > 2:
        return []
    found = _ranked_counts(problem, settings, _slot_types(problem, free, settings, extra, False, False), k)
    if any(min(moves(problem, counts)) > problem.max_moves for counts in found):
        for keep_only, keep_all in ((True, False), (False, True)):
            types = _slot_types(problem, free, settings, extra, keep_only, keep_all)
            found.extend(_ranked_counts(problem, settings, types, k))
    return [counts for counts in found if min(moves(problem, counts)) <= problem.max_moves]


def priced_objective(
    problem: DeploymentProblem, counts: Sequence[int], settings: PlannerSettings, extra: Sequence[float]
) -> float:
    """The deployment's objective plus its pool prices (what the fills are compared on)."""
    return deployment_objective(problem, list(counts), settings) + math.fsum(
        n * price for n, price in zip(counts, extra, strict=True) if n
    )


@dataclass(frozen=True)
class _Static:
    """One deployment's options as arrays (what `_slot_types` reads on every call): built once per
    deployment (`_static`), because the greedy, the sweep and the restricted master's pricing rounds
    fill each deployment thousands of times at 1,000 deployments."""

    keys: list[Key]
    gpus: IntArray
    upper: IntArray
    current: IntArray
    window_cost: FloatArray
    start_cost: FloatArray
    stale: npt.NDArray[np.bool_]
    type_of: IntArray
    """Per option, its GPU type's position among the types in order of first appearance."""
    region: IntArray
    """Per option, its region's position among the regions in order of first appearance."""
    regions: int
    units: list[float]
    """Per type, the unit (capacity per replica) of its first option."""


def _static(problem: DeploymentProblem) -> _Static:
    found = problem.fill_cache.get("static")
    if isinstance(found, _Static):
        return found
    columns = problem.columns
    types: dict[str, int] = {}
    regions: dict[str, int] = {}
    units: list[float] = []
    for j, option in enumerate(problem.options):
        if option.gpu_type not in types:
            types[option.gpu_type] = len(types)
            units.append(columns.unit[j])
        regions.setdefault(option.region, len(regions))
    static = _Static(
        keys=[o.key for o in problem.options],
        gpus=np.asarray([o.gpus for o in problem.options], dtype=np.int64),
        upper=np.asarray([o.upper for o in problem.options], dtype=np.int64),
        current=np.asarray(columns.current, dtype=np.int64),
        window_cost=np.asarray(columns.window_cost, dtype=np.float64),
        start_cost=np.asarray(columns.start_cost, dtype=np.float64),
        stale=np.asarray(columns.stale, dtype=bool),
        type_of=np.asarray([types[o.gpu_type] for o in problem.options], dtype=np.int64),
        region=np.asarray([regions[o.region] for o in problem.options], dtype=np.int64),
        regions=len(regions),
        units=units,
    )
    problem.fill_cache["static"] = static
    return static


def _slot_types(
    problem: DeploymentProblem,
    free: Mapping[Key, int],
    settings: PlannerSettings,
    extra: Sequence[float],
    keep_only: bool,
    keep_all: bool,
) -> list[_Type] | None:
    """Per GPU type its slots (the objective's constant part, the stale-stop penalty of every running
    replica, is left out: it is the same for every fill). None when keeping every running replica is
    asked for and cannot be done. Per option in order: its kept slots, then its new ones; each type's
    slots are those in that order, sorted (stably) by cost, forced ones first."""
    cap = problem.max_replicas
    static = _static(problem)
    room = np.asarray([free.get(key, 0) for key in static.keys], dtype=np.int64)
    by_room = np.where(static.gpus > 0, room // np.maximum(static.gpus, 1), static.upper)
    upper = np.maximum(0, np.minimum(static.upper, by_room))
    keep = np.minimum(static.current, upper)
    if keep_all and (bool((keep < static.current).any()) or int(static.current.sum()) > cap):
        return None
    new = np.zeros_like(keep) if keep_only else np.minimum(upper - keep, cap)
    keep = np.minimum(keep, cap)
    price = static.window_cost + np.asarray(extra, dtype=np.float64)
    keep_cost, new_cost = price, price + static.start_cost
    if static.stale.any():
        # |n - current| x penalty = current x penalty, less it per kept replica, plus it per new one.
        penalty = settings.stale_change_penalty_usd
        keep_cost = np.where(static.stale, keep_cost - penalty, keep_cost)
        new_cost = np.where(static.stale, new_cost + penalty, new_cost)
    options = len(static.keys)
    # Interleaved per option: (kept, new), so that np.repeat lays the slots out in option order.
    counts = np.stack((keep, new), axis=1).ravel()
    slot_cost = np.repeat(np.stack((keep_cost, new_cost), axis=1).ravel(), counts)
    slot_option = np.repeat(np.repeat(np.arange(options, dtype=np.int64), 2), counts)
    slot_forced = np.repeat(np.tile(np.asarray([keep_all, False]), options), counts)
    slot_type = static.type_of[slot_option]
    first_cost = np.where(keep > 0, keep_cost, new_cost)
    present = keep + new > 0
    types: list[_Type] = []
    for g, unit in enumerate(static.units):
        mask = slot_type == g
        cost, option, must = slot_cost[mask], slot_option[mask], slot_forced[mask]
        # Forced slots first (all of them must be taken), then the rest by cost; ties by position.
        order = np.lexsort((np.arange(len(cost)), cost, ~must))[:cap]
        outside, outside_option = _outside(static, present & (static.type_of == g), first_cost)
        types.append(
            _Type(
                cost=cost[order],
                option=option[order],
                region=static.region[option[order]],
                unit=unit,
                forced=int(must.sum()),
                outside=outside,
                outside_option=outside_option,
            )
        )
    return types


def _outside(static: _Static, eligible: npt.NDArray[np.bool_], first_cost: FloatArray) -> tuple[FloatArray, IntArray]:
    """Per region r: the cheapest first slot of the `eligible` options outside r (inf when none) and its
    option (-1), the first option in order among equal costs."""
    candidates = np.flatnonzero(eligible)
    outside = np.full(static.regions, np.inf)
    outside_option = np.full(static.regions, -1, dtype=np.int64)
    if len(candidates) == 0:
        return outside, outside_option
    grid = np.where(
        static.region[candidates][None, :] != np.arange(static.regions)[:, None],
        first_cost[candidates][None, :],
        np.inf,
    )
    at = np.argmin(grid, axis=1)
    best = grid[np.arange(static.regions), at]
    found = np.isfinite(best)
    outside[found] = best[found]
    outside_option[found] = candidates[at[found]]
    return outside, outside_option


def _best_counts(problem: DeploymentProblem, settings: PlannerSettings, types: list[_Type] | None) -> list[int] | None:
    """The least-cost counts over every n (module docstring), or None when `types` is None or no n is feasible."""
    found = _ranked_counts(problem, settings, types, 1)
    return found[0] if found else None


def _ranked_counts(
    problem: DeploymentProblem, settings: PlannerSettings, types: list[_Type] | None, k: int
) -> list[list[int]]:
    """Up to `k` feasible counts of least cost over every n, cheapest first (ties: the first n in the
    enumeration); empty when `types` is None or no n is feasible."""
    if types is None:
        return []
    if not types:
        return [[0] * len(problem.options)]
    if math.prod(len(t.cost) + 1 for t in types) > _MAX_COMBINATIONS:
        return []
    n = _grid(tuple(len(t.cost) + 1 for t in types))
    total = np.zeros(len(n[0]), dtype=np.int64)
    cost = np.zeros(len(n[0]))
    covered = np.zeros(len(n[0]))
    feasible = np.ones(len(n[0]), dtype=bool)
    for t, count in zip(types, n, strict=True):
        prefix = np.concatenate(([0.0], np.cumsum(t.cost)))
        cost += prefix[count]
        covered += t.unit * count
        total += count
        feasible &= count >= t.forced
    feasible &= total <= problem.max_replicas
    big = settings.bound_violation_penalty_usd
    if problem.coverage_target > 0:
        cost += shortfall_penalty_per_unit(problem, settings) * np.maximum(0.0, 1.0 - covered / problem.coverage_target)
    cost += big * np.maximum(0, problem.min_replicas - total)
    swap_type = np.full(len(total), -1, dtype=np.int64)
    region = np.zeros(len(total), dtype=np.int64)
    if problem.min_regions >= 2:
        cost, swap_type, region = _mend_regions(problem, types, n, total, cost, big)
    return [
        _counts_at(problem, types, n, swap_type, region, int(b)) for b in _least(np.where(feasible, cost, np.inf), k)
    ]


# 64 shapes: at 1,000 x 12 x 3 (0.4 and 0.8, three seeds) a search's fills meet about 110 shapes, 2.5-4.4 MB
# all cached; 64 of them left 330-430 misses per 5,000 calls (20-30 ms of meshgrid), 16 left 1,600-1,700
# (55-75 ms, 2-4% of the fills' CPU). The bound is _MAX_COMBINATIONS vectors an entry (about 5 MB at 3 types).
@functools.lru_cache(maxsize=64)
def _grid(sizes: tuple[int, ...]) -> list[IntArray]:
    """Every replica vector n with n_g < sizes[g], one array per type (read-only: shared between calls,
    since the same few shapes recur thousands of times in a search)."""
    grids = np.meshgrid(*[np.arange(size) for size in sizes], indexing="ij")
    n = [grid.ravel() for grid in grids]
    for array in n:
        array.flags.writeable = False
    return n


def _least(cost: FloatArray, k: int) -> list[int]:
    """Indices of the `k` least finite costs, cheapest first, ties by index."""
    # Finite ones only: -inf (a price of -inf, or one so negative that a cost overflows) and NaN are not
    # fills, and left in they would take picks (-inf is the least, and `cost <= kth` lets it through).
    cost = np.where(np.isfinite(cost), cost, np.inf)
    if k == 1:
        best = int(np.argmin(cost))
        return [best] if np.isfinite(cost[best]) else []
    # A stable selection, not argpartition's (which keeps an arbitrary member of a tie at the k-th place):
    # every index costing at most the k-th least, in index order, then a stable sort by cost, so that
    # ties go to the lowest index and gridshift.planner.batchfill's stable sort agrees by construction.
    if len(cost) > k:
        kth = np.partition(cost, k - 1)[k - 1]
        picked = np.flatnonzero(cost <= kth if np.isfinite(kth) else np.isfinite(cost))
    else:
        picked = np.flatnonzero(np.isfinite(cost))
    picked = picked[np.argsort(cost[picked], kind="stable")][:k]
    return [int(b) for b in picked]


def _counts_at(
    problem: DeploymentProblem, types: list[_Type], n: list[IntArray], swap_type: IntArray, region: IntArray, b: int
) -> list[int]:
    """The counts of the enumeration's vector `b` (its slots, mended by its swap where it has one)."""
    counts = [0] * len(problem.options)
    for t, count in zip(types, n, strict=True):
        for j in t.option[: count[b]]:
            counts[int(j)] += 1
    g = int(swap_type[b])
    if g >= 0:
        t = types[g]
        counts[int(t.option[n[g][b] - 1])] -= 1
        counts[int(t.outside_option[region[b]])] += 1
    return counts


def _mend_regions(
    problem: DeploymentProblem,
    types: list[_Type],
    n: list[IntArray],
    total: IntArray,
    cost: FloatArray,
    big: float,
) -> tuple[FloatArray, IntArray, IntArray]:
    """minRegions 2: selections in one region pay the cheapest swap to a second region, or the
    penalty where that is cheaper; returns the costs, the GPU type swapped (-1: none) and the region."""
    size = len(total)
    region = np.full(size, -1, dtype=np.int64)
    spread = np.zeros(size, dtype=bool)
    for t, count in zip(types, n, strict=True):
        used = count > 0
        if len(t.region) == 0:
            continue
        first = int(t.region[0])
        # Whether the first k slots of this type all lie in the first slot's region.
        same = np.concatenate(([True], np.cumsum(t.region != first) == 0))
        spread |= used & ~same[count]
        spread |= used & (region >= 0) & (region != first)
        region = np.where(used & (region < 0), first, region)
    single = ~spread & (region >= 0)
    at = np.maximum(region, 0)
    swap = np.full(size, np.inf)
    swap_type = np.full(size, -1, dtype=np.int64)
    for g, (t, count) in enumerate(zip(types, n, strict=True)):
        if len(t.cost) == 0:
            continue
        last = np.concatenate(([0.0], t.cost))
        # The forced (kept) slots may not be swapped out.
        delta = np.where((count > 0) & (count > t.forced), t.outside[at] - last[count], np.inf)
        better = delta < swap
        swap = np.where(better, delta, swap)
        swap_type = np.where(better, g, swap_type)
    swap = np.where(total >= 2, swap, np.inf)
    use_swap = single & (swap < big)
    missing = np.where(total == 0, problem.min_regions, np.where(single, 1, 0))
    cost = cost + np.where(use_swap, swap, big * missing)
    return cost, np.where(use_swap, swap_type, -1), at
