"""The k best fills of many deployments at once, on one inventory at one set of pool prices (numpy).

The restricted master's pricing rounds (gridshift.planner.master) ask every deployment for its k best
fills on the whole inventory at the master LP's duals: fill.ranked_fills once per deployment, about
0.3 ms each at 1,000 deployments, mostly numpy's per-call overhead. The deployments are independent
there (same `free`, same prices), so this module computes them together and returns, per deployment,
exactly the list ranked_fills returns (same counts, same order). It owns that batched computation and
nothing else; fill.py stays the definition.

Why the lists are identical, step by step (fill's module docstring says why the method is exact):

- slots: every option's kept then new slots, laid out in option order as fill._slot_types does, sorted
  per (deployment, GPU type) by (forced first, cost, position) and cut at the replica cap: the same
  slots in the same order, and the same forced counts, units and "cheapest slot outside region r"
  (the first option in order among equal costs, as fill._outside's argmin);
- enumeration: deployments with the same number of types share one grid of replica vectors n, either
  their own shape or a padded box (the cap rounded up to a power of two); vectors beyond a type's slots
  are infeasible. Padding keeps the lexicographic order of the vectors, hence which tie comes first.
  Each cost is built with the same float operations in the same order as fill._ranked_counts (prefix
  sums by sequential cumsum, per type in order, then the shortfall, minReplicas and minRegions terms);
- selection: the k least finite costs, ties by the lowest index (k argmins, as fill._least, stable);
- maxConcurrentMoves: where a main-pass fill breaks it, the keep-only and keep-all passes are batched
  the same way, and the fills within the limit are kept in ranked_fills' order (pass, then rank).

What is not batched goes through fill.ranked_fills itself: deployments with a replica cap above
`WIDE` (their padded slot arrays would dominate memory and time) and those whose enumeration may meet
more than `LOOP_ABOVE` replica vectors (`vectors`: there the batch's per-vector work costs more than the
loop's per-call overhead saves). Frozen deployments, those without options and minRegions above 2 get
no fills, as in ranked_fills. A call's memory is bounded by `_CELLS` (costs per enumeration step), not
by the deployments' number or shape. No clock: the caller chunks the deployments (one Batch per chunk)
by their estimated CPU (`work`) and asks its budget between chunks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gridshift.arrays import BoolArray, FloatArray, IntArray
from gridshift.planner.fill import _MAX_COMBINATIONS, _grid, _static, ranked_fills
from gridshift.planner.migration import Key
from gridshift.planner.problem import DeploymentProblem
from gridshift.planner.settings import PlannerSettings
from gridshift.planner.solution import shortfall_penalty_per_unit

WIDE = 24
"""Deployments with a replica cap above this go through fill.ranked_fills (at 1,000 x 12 x 3 about 1.4%)."""
LOOP_ABOVE = (8_000, 1_000)
"""Deployments whose enumeration may meet more replica vectors than this (`vectors`; at minRegions 1, 2) go
through fill.ranked_fills: past it the batch's per-vector work outweighs the loop's per-call overhead. 256
three-type deployments, CPU ms a deployment batched / looped: minRegions 2 at 729 vectors 0.32 / 0.42, 1,331
0.49 / 0.45, 15,625 2.52 / 1.22; minRegions 1 (no mending) at 4,913 0.30 / 0.34, 15,625 0.68 / 0.56."""
_BOX_LIMIT = 1_000
"""A group's padded box (cap rounded up to a power of two, per type) at most this many vectors, else its own
shape (a box far above a deployment's own shape costs more than the groups it saves)."""
_CELLS = 200_000
"""At most this many (deployment, vector) costs per enumeration step: rows of a group are chunked to it
(1.6 MB an array, a dozen of them alive in `_costs` and `_mend`: at most 30 MiB traced a call)."""


_PER_OPTION = 1.2
"""`work`'s CPU microseconds an option (slots, their sort, `_outside`): what the estimate missed on fleets
with many clusters (1,000 deployments, four types, 40 / 80 clusters: 80 / 170 options a deployment, a chunk
of 256 estimated 0.046 s took 0.07 / 0.10 s batched; 0.8-1.3 us an option over it)."""


def vectors(deployment: DeploymentProblem) -> int:
    """An upper bound on the replica vectors the deployment's enumeration meets: per GPU type its slots
    (the options' bounds summed, at most the replica cap) plus one, multiplied (fill._ranked_counts)."""
    static = _static(deployment)
    slots = [0] * len(static.units)
    for g, upper in zip(static.type_of.tolist(), static.upper.tolist(), strict=True):
        slots[g] += max(0, upper)
    return math.prod(min(n, max(0, deployment.max_replicas)) + 1 for n in slots)


def _applies(deployment: DeploymentProblem) -> bool:
    return not deployment.frozen and bool(deployment.options) and deployment.min_regions <= 2


def _batched(deployment: DeploymentProblem) -> bool:
    limit = LOOP_ABOVE[1] if deployment.min_regions >= 2 else LOOP_ABOVE[0]
    return _applies(deployment) and deployment.max_replicas <= WIDE and vectors(deployment) <= limit


def work(deployment: DeploymentProblem) -> float:
    """The estimated CPU microseconds of the deployment's fills (measured as LOOP_ABOVE's figures): here,
    0.1 ms plus `_PER_OPTION` an option plus 0.15 us a vector it is enumerated on (its box or its own
    shape, as `_groups`; 0.035 at minRegions 1), in fill.ranked_fills 0.3 ms plus the same an option plus
    0.055 us a vector (0.017). What the caller's chunks are bounded by, so that a chunk's time does not
    depend on how many wide deployments, or options, it holds. Cached in the deployment's fill_cache
    (asked every pricing round)."""
    found = deployment.fill_cache.get("work")
    if isinstance(found, float):
        return found
    estimate = _work(deployment)
    deployment.fill_cache["work"] = estimate
    return estimate


def _work(deployment: DeploymentProblem) -> float:
    if not _applies(deployment):
        return 1.0
    two = deployment.min_regions >= 2
    size = vectors(deployment)
    per_option = _PER_OPTION * len(deployment.options)
    if not _batched(deployment):
        return 300.0 + per_option + min(size, _MAX_COMBINATIONS) * (0.055 if two else 0.017)
    cap, types = deployment.max_replicas, len(_static(deployment).units)
    box = (max(_side(cap), cap) + 1) ** types
    return 100.0 + per_option + (box if box <= _BOX_LIMIT else size) * (0.15 if two else 0.035)


def _side(cap: int) -> int:
    """A padded box's side before the + 1: the replica cap rounded up to a power of two (1 for a cap of 0 or 1),
    so that deployments of nearby caps share one enumeration grid (`_groups`, and `work`'s estimate of it)."""
    return 1 << max(cap - 1, 0).bit_length()


@dataclass(frozen=True)
class Batch:
    """Options of a list of deployments flattened (per option: its deployment `owner`, its position
    `local` in it), and per deployment its fields the enumeration reads. Built once (`batch`) and
    re-used over pricing rounds."""

    deployments: list[DeploymentProblem]
    pools: list[Key]
    pool: IntArray
    owner: IntArray
    local: IntArray
    offsets: IntArray
    sizes: IntArray
    gpus: IntArray
    upper: IntArray
    current: IntArray
    window_cost: FloatArray
    start_cost: FloatArray
    stale: BoolArray
    type_of: IntArray
    region: IntArray
    types: IntArray
    regions: int
    units: FloatArray
    cap: IntArray
    min_replicas: IntArray
    min_regions: IntArray
    max_moves: IntArray
    target: FloatArray
    penalty_per_unit: FloatArray
    batched: BoolArray
    """Deployments this module enumerates; the others that get fills go through fill.ranked_fills."""
    looped: BoolArray
    big: float
    stale_penalty: float


def batch(deployments: Sequence[DeploymentProblem], settings: PlannerSettings) -> Batch:
    """The arrays of `deployments` (fill._static's per deployment, concatenated)."""
    deployments = list(deployments)
    statics = [_static(d) for d in deployments]
    sizes = np.asarray([len(d.options) for d in deployments], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    owner = np.repeat(np.arange(len(deployments), dtype=np.int64), sizes)
    keys = [key for s in statics for key in s.keys]
    pools = sorted(set(keys))
    row = {key: i for i, key in enumerate(pools)}
    types = np.asarray([len(s.units) for s in statics], dtype=np.int64)
    units = np.zeros((len(deployments), max(1, int(types.max(initial=0)))))
    for i, s in enumerate(statics):
        units[i, : len(s.units)] = s.units

    def joined(name: str, dtype: type) -> np.ndarray:
        parts = [getattr(s, name) for s in statics]
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    applies = np.asarray([_applies(d) for d in deployments], dtype=bool)
    batched = np.asarray([_batched(d) for d in deployments], dtype=bool)
    cap = np.asarray([d.max_replicas for d in deployments], dtype=np.int64)
    return Batch(
        deployments=deployments,
        pools=pools,
        pool=np.asarray([row[key] for key in keys], dtype=np.int64),
        owner=owner,
        local=np.arange(len(keys), dtype=np.int64) - offsets[owner],
        offsets=offsets,
        sizes=sizes,
        gpus=joined("gpus", np.int64),
        upper=joined("upper", np.int64),
        current=joined("current", np.int64),
        window_cost=joined("window_cost", np.float64),
        start_cost=joined("start_cost", np.float64),
        stale=joined("stale", np.bool_),
        type_of=joined("type_of", np.int64),
        region=joined("region", np.int64),
        types=types,
        regions=max(1, max((s.regions for s in statics), default=1)),
        units=units,
        cap=cap,
        min_replicas=np.asarray([d.min_replicas for d in deployments], dtype=np.int64),
        min_regions=np.asarray([d.min_regions for d in deployments], dtype=np.int64),
        max_moves=np.asarray([d.max_moves for d in deployments], dtype=np.int64),
        target=np.asarray([d.coverage_target for d in deployments], dtype=np.float64),
        penalty_per_unit=np.asarray([shortfall_penalty_per_unit(d, settings) for d in deployments], dtype=np.float64),
        batched=batched,
        looped=applies & ~batched,
        big=settings.bound_violation_penalty_usd,
        stale_penalty=settings.stale_change_penalty_usd,
    )


@dataclass(frozen=True)
class _Slots:
    """Per (deployment, type) its slots, cheapest first, padded to `width` (cost inf, option -1)."""

    ok: BoolArray
    cost: FloatArray
    option: IntArray
    region: IntArray
    length: IntArray
    forced: IntArray
    outside: FloatArray
    outside_option: IntArray


def _slots(b: Batch, free: IntArray, price: FloatArray, rows: BoolArray, keep_only: bool, keep_all: bool) -> _Slots:
    """fill._slot_types for the deployments `rows` at once (`free`, `price`: per pool of b.pools)."""
    count, types = len(b.deployments), b.units.shape[1]
    room = free[b.pool]
    by_room = np.where(b.gpus > 0, room // np.maximum(b.gpus, 1), b.upper)
    upper = np.maximum(0, np.minimum(b.upper, by_room))
    keep = np.minimum(b.current, upper)
    ok = rows.copy()
    if keep_all:
        short = np.bincount(b.owner, weights=keep < b.current, minlength=count) > 0
        ok &= ~short & (np.bincount(b.owner, weights=b.current, minlength=count) <= b.cap)
    cap = b.cap[b.owner]
    new = np.zeros_like(keep) if keep_only else np.minimum(upper - keep, cap)
    keep = np.minimum(keep, cap)
    live = ok[b.owner]
    keep, new = np.where(live, keep, 0), np.where(live, new, 0)
    value = b.window_cost + price[b.pool] * b.gpus
    keep_cost, new_cost = value, value + b.start_cost
    if b.stale.any():
        keep_cost = np.where(b.stale, keep_cost - b.stale_penalty, keep_cost)
        new_cost = np.where(b.stale, new_cost + b.stale_penalty, new_cost)
    options = len(keep)
    counts = np.stack((keep, new), axis=1).ravel()
    slot_cost = np.repeat(np.stack((keep_cost, new_cost), axis=1).ravel(), counts)
    slot_option = np.repeat(np.repeat(np.arange(options, dtype=np.int64), 2), counts)
    must = np.repeat(np.tile(np.asarray([keep_all, False]), options), counts)
    group = b.owner[slot_option] * types + b.type_of[slot_option]
    forced = np.bincount(group, weights=must, minlength=count * types).astype(np.int64).reshape(count, types)
    # Per (deployment, type): forced slots first, then by cost, ties by position (fill._slot_types' lexsort).
    order = np.lexsort((np.arange(len(slot_cost)), slot_cost, ~must, group))
    in_group = group[order]
    rank = np.arange(len(order)) - np.searchsorted(in_group, np.arange(count * types))[in_group]
    width = max(1, int(b.cap[ok].max(initial=0)))
    take = rank < b.cap[in_group // types]
    order, in_group, rank = order[take], in_group[take], rank[take]
    cost = np.full((count * types, width), np.inf)
    option = np.full((count * types, width), -1, dtype=np.int64)
    cost[in_group, rank] = slot_cost[order]
    option[in_group, rank] = slot_option[order]
    length = np.bincount(in_group, minlength=count * types).astype(np.int64).reshape(count, types)
    option = option.reshape(count, types, width)
    region = np.where(option >= 0, b.region[np.maximum(option, 0)], -1)
    first_cost = np.where(keep > 0, keep_cost, new_cost)
    outside, outside_option = _outside(b, keep + new > 0, first_cost)
    return _Slots(ok, cost.reshape(count, types, width), option, region, length, forced, outside, outside_option)


def _outside(b: Batch, present: BoolArray, first_cost: FloatArray) -> tuple[FloatArray, IntArray]:
    """Per (deployment, type, region r): the cheapest first slot of the present options of that type
    outside r, inf when none, and its option (-1): the first in order among equal costs (fill._outside).
    Per (deployment, type) only two options are needed: the cheapest of all, `best`, and the cheapest
    outside best's region; r gets the second where it is best's region, else the first. O(options), not
    options x regions (at 80 clusters, 320 options and 80 regions, that grid was 124 MiB a call). Ordered
    as argmin orders: NaN first (argmin returns it), then by cost, then by position."""
    count, types, regions = len(b.deployments), b.units.shape[1], b.regions
    cost = np.where(present, first_cost, np.inf)
    group = b.owner * types + b.type_of
    nan = np.isnan(cost)
    order = np.lexsort((np.arange(len(cost)), np.where(nan, 0.0, cost), ~nan, group))
    best = _first(order, group, count * types)
    best_region = np.where(best >= 0, b.region[np.maximum(best, 0)], -1)
    away = order[b.region[order] != best_region[group[order]]]
    second = _first(away, group, count * types)
    pick = np.where(best_region[:, None] == np.arange(regions)[None, :], second[:, None], best[:, None]).reshape(
        count, types, regions
    )
    value = np.where(pick >= 0, cost[np.maximum(pick, 0)], np.inf)
    found = np.isfinite(value)
    return np.where(found, value, np.inf), np.where(found, pick, -1)


def _first(order: IntArray, group: IntArray, groups: int) -> IntArray:
    """Per group, the first option of `order` in it (-1: none)."""
    first = np.full(groups, -1, dtype=np.int64)
    at = group[order]
    head = np.flatnonzero(np.concatenate(([True], at[1:] != at[:-1]))) if len(order) else np.zeros(0, dtype=np.int64)
    first[at[head]] = order[head]
    return first


def _groups(b: Batch, sl: _Slots) -> dict[tuple[int, ...], list[int]]:
    """The deployments to enumerate, by grid shape: a padded box where small enough, else their own
    shape; those whose own shape is over fill._MAX_COMBINATIONS are left out (no fills, as fill)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for d in np.flatnonzero(sl.ok).tolist():
        shape = tuple((sl.length[d, : b.types[d]] + 1).tolist())
        if int(np.prod(shape)) > _MAX_COMBINATIONS:
            continue
        cap = int(b.cap[d])
        side = min(_side(cap), sl.cost.shape[2])
        box = (max(side, cap) + 1,) * len(shape)
        groups.setdefault(box if int(np.prod(box)) <= _BOX_LIMIT else shape, []).append(d)
    return groups


def _costs(
    b: Batch, sl: _Slots, rows: IntArray, n: list[IntArray], prefix: FloatArray
) -> tuple[FloatArray, IntArray, IntArray]:
    """fill._ranked_counts' cost of every vector of `n` for each deployment of `rows` (inf where
    infeasible), with its minRegions swap (type, -1: none) and region."""
    size = len(n[0])
    total = np.zeros(size, dtype=np.int64)
    cost = np.zeros((len(rows), size))
    covered = np.zeros((len(rows), size))
    feasible = np.ones((len(rows), size), dtype=bool)
    for g, count in enumerate(n):
        cost += prefix[rows, g][:, count]
        covered += b.units[rows, g][:, None] * count
        total += count
        feasible &= (count[None, :] >= sl.forced[rows, g][:, None]) & (count[None, :] <= sl.length[rows, g][:, None])
    feasible &= total[None, :] <= b.cap[rows][:, None]
    target = b.target[rows][:, None]
    positive = target > 0
    shortfall = np.maximum(0.0, 1.0 - covered / np.where(positive, target, 1.0))
    cost = np.where(positive, cost + b.penalty_per_unit[rows][:, None] * shortfall, cost)
    cost += b.big * np.maximum(0, b.min_replicas[rows][:, None] - total[None, :])
    swap_type = np.full((len(rows), size), -1, dtype=np.int64)
    at = np.zeros((len(rows), size), dtype=np.int64)
    two = b.min_regions[rows] >= 2
    if two.any():
        cost[two], swap_type[two], at[two] = _mend(b, sl, rows[two], n, total, cost[two])
    with np.errstate(invalid="ignore"):
        return np.where(feasible, cost, np.inf), swap_type, at


def _mend(
    b: Batch, sl: _Slots, rows: IntArray, n: list[IntArray], total: IntArray, cost: FloatArray
) -> tuple[FloatArray, IntArray, IntArray]:
    """fill._mend_regions for `rows` at once (vectors beyond a type's slots may get any value: they are
    infeasible)."""
    size = len(total)
    region = np.full((len(rows), size), -1, dtype=np.int64)
    spread = np.zeros((len(rows), size), dtype=bool)
    for g, count in enumerate(n):
        used = (count > 0)[None, :] & (sl.length[rows, g] > 0)[:, None]
        first = sl.region[rows, g, 0][:, None]
        same = np.concatenate(
            (np.ones((len(rows), 1), dtype=bool), np.cumsum(sl.region[rows, g] != first, axis=1) == 0), axis=1
        )
        spread |= used & ~same[:, np.minimum(count, same.shape[1] - 1)]
        spread |= used & (region >= 0) & (region != first)
        region = np.where(used & (region < 0), first, region)
    single = ~spread & (region >= 0)
    at = np.maximum(region, 0)
    swap = np.full((len(rows), size), np.inf)
    swap_type = np.full((len(rows), size), -1, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        for g, count in enumerate(n):
            last = np.concatenate((np.zeros((len(rows), 1)), sl.cost[rows, g]), axis=1)
            out = np.take_along_axis(sl.outside[rows, g], at, axis=1)
            movable = (count[None, :] > 0) & (count[None, :] > sl.forced[rows, g][:, None])
            delta = np.where(movable, out - last[:, np.minimum(count, last.shape[1] - 1)], np.inf)
            better = delta < swap
            swap = np.where(better, delta, swap)
            swap_type = np.where(better, g, swap_type)
    swap = np.where(total[None, :] >= 2, swap, np.inf)
    use = single & (swap < b.big)
    missing = np.where(total[None, :] == 0, b.min_regions[rows][:, None], np.where(single, 1, 0))
    return cost + np.where(use, swap, b.big * missing), np.where(use, swap_type, -1), at


def _least(cost: FloatArray, k: int) -> tuple[IntArray, IntArray]:
    """Per row its `k` least finite costs, cheapest first, ties by the lowest index (fill._least):
    (row, vector) pairs in row then rank order, and each one's rank. -inf and NaN are no fills (set to inf
    first: argmin would pick -inf)."""
    cost = np.where(np.isfinite(cost), cost, np.inf)
    picked = []
    for _ in range(min(k, cost.shape[1])):
        at = np.argmin(cost, axis=1)
        found = np.isfinite(cost[np.arange(len(cost)), at])
        picked.append(np.where(found, at, -1))
        cost[np.arange(len(cost)), at] = np.inf
    best = np.stack(picked, axis=1)
    row, rank = np.nonzero(best >= 0)
    return np.stack((row, best[row, rank])), rank


def _enumerate(b: Batch, sl: _Slots, k: int) -> tuple[IntArray, IntArray, IntArray]:
    """fill._ranked_counts for every deployment of `sl.ok`: (deployment, rank, padded counts) per fill."""
    count, types, _ = sl.cost.shape
    prefix = np.concatenate((np.zeros((count, types, 1)), np.cumsum(sl.cost, axis=2)), axis=2)
    found: list[tuple[IntArray, IntArray, IntArray]] = []
    for shape, members in _groups(b, sl).items():
        n = _grid(shape)
        step = max(1, _CELLS // len(n[0]))
        for start in range(0, len(members), step):
            rows = np.asarray(members[start : start + step], dtype=np.int64)
            cost, swap_type, at = _costs(b, sl, rows, n, prefix)
            (row, vector), rank = _least(cost, k)
            counts = _counts(b, sl, rows[row], [c[vector] for c in n], swap_type[row, vector], at[row, vector])
            found.append((rows[row], rank, counts))
    if not found:
        return _no_fills(b)
    return tuple(np.concatenate(part) for part in zip(*found, strict=True))  # type: ignore[return-value]


def _no_fills(b: Batch) -> tuple[IntArray, IntArray, IntArray]:
    """`_enumerate`'s answer when nothing is enumerated: no (deployment, rank, padded counts)."""
    empty = np.zeros(0, dtype=np.int64)
    return empty, empty, np.zeros((0, int(b.sizes.max(initial=1))), dtype=np.int64)


def _counts(b: Batch, sl: _Slots, rows: IntArray, n: list[IntArray], swap_type: IntArray, at: IntArray) -> IntArray:
    """Per fill (deployment `rows[i]`, vector n[.][i]) its counts, padded to the widest deployment: the
    first n_g slots of each type, mended by its swap where it has one (fill._counts_at)."""
    widest = int(b.sizes.max(initial=1))
    flat = np.zeros(len(rows) * widest, dtype=np.int64)
    base = b.offsets[rows][:, None]
    start = np.arange(len(rows), dtype=np.int64)[:, None] * widest
    width = sl.option.shape[2]
    for g, count in enumerate(n):
        take = np.arange(width)[None, :] < count[:, None]
        flat += np.bincount((start + sl.option[rows, g] - base)[take], minlength=len(flat))
    swapped = np.flatnonzero(swap_type >= 0)
    if len(swapped):
        kind = swap_type[swapped]
        last = np.stack(n, axis=1)[swapped, kind] - 1
        here = start[swapped, 0] - base[swapped, 0]
        np.subtract.at(flat, here + sl.option[rows[swapped], kind, last], 1)
        np.add.at(flat, here + sl.outside_option[rows[swapped], kind, at[swapped]], 1)
    return flat.reshape(len(rows), widest)


def _within_moves(b: Batch, rows: IntArray, counts: IntArray) -> BoolArray:
    """Per fill, whether it keeps its deployment's maxConcurrentMoves (solution.moves)."""
    widest = counts.shape[1]
    padded = np.zeros((len(b.deployments), widest), dtype=np.int64)
    padded[b.owner, b.local] = b.current
    current = padded[rows]
    added = np.maximum(counts - current, 0).sum(axis=1)
    removed = np.maximum(current - counts, 0).sum(axis=1)
    return np.asarray(np.minimum(added, removed) <= b.max_moves[rows], dtype=bool)


def ranked_fills_batch(
    b: Batch, free: Mapping[Key, int], prices: Mapping[Key, float], settings: PlannerSettings, k: int
) -> list[list[list[int]]]:
    """Per deployment of `b`, what fill.ranked_fills(deployment, free, settings, extra, k) returns with
    extra[j] = prices[pool of option j] x its GPUs (0 for a pool without a price)."""
    free_pool = np.asarray([free.get(key, 0) for key in b.pools], dtype=np.int64)
    price_pool = np.asarray([prices.get(key, 0.0) for key in b.pools], dtype=np.float64)
    if not b.batched.any():  # (nothing to enumerate: the arrays below assume some option)
        d0, r0, c0 = _no_fills(b)
    else:
        d0, r0, c0 = _enumerate(b, _slots(b, free_pool, price_pool, b.batched, False, False), k)
    ok0 = _within_moves(b, d0, c0)
    broke = np.zeros(len(b.deployments), dtype=bool)
    broke[d0[~ok0]] = True
    parts = [(d0, np.zeros_like(d0), r0, c0, ok0)]
    if broke.any():
        for stage, (keep_only, keep_all) in enumerate(((True, False), (False, True)), start=1):
            d, r, c = _enumerate(b, _slots(b, free_pool, price_pool, broke, keep_only, keep_all), k)
            parts.append((d, np.full_like(d, stage), r, c, _within_moves(b, d, c)))
    owner, number, rank, counts, within = (np.concatenate(x) for x in zip(*parts, strict=True))
    # ranked_fills' order: the main pass's fills by rank, then the keep-only pass's, then the keep-all one's.
    kept = np.flatnonzero(within)
    kept = kept[np.lexsort((rank[kept], number[kept], owner[kept]))]
    out: list[list[list[int]]] = [[] for _ in b.deployments]
    for position, row in zip(owner[kept].tolist(), counts[kept].tolist(), strict=True):
        out[position].append(row[: b.sizes[position]])
    for position in np.flatnonzero(b.looped).tolist():
        deployment = b.deployments[position]
        extra = [prices.get(o.key, 0.0) * o.gpus for o in deployment.options]
        out[position] = ranked_fills(deployment, free, settings, extra, k)
    return out
