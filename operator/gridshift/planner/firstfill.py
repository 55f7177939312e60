"""The first fill: every deployment that can be served, served, in a few numpy passes over all options.

At 10,000 deployments the greedy (gridshift.planner.greedy) fills about a thousand deployments per
CPU-second, so a budget of seconds used to end with thousands of deployments on running placements
that do not cover their demand. This fill comes first and is cheap at any size: it starts from the
running placement, re-validated (only stops, so no move limit breaks), and

1. adds replicas to each deployment that is short of its demand or minReplicas, at its cheapest
   option per unit of capacity (window cost, start cost and the pool's price per GPU,
   gridshift.planner.pricing) among those with room. All short deployments ask at once; a pool
   grants requests in order (larger replicas first, then the cheaper ask), as far as its free GPUs
   go, and those refused ask again at their next option in the next round, until no request is
   granted. Adds are only starts, so they are bounded by maxConcurrentMoves only where the
   re-validation already stopped more than that many replicas;
2. stops, in deployments that were not short, replicas that demand does not need (the dearest per
   unit of capacity first, never at a stale price, never the last replica of an option when the
   deployment needs two regions, never below minReplicas): only stops.

Everything is arrays: one entry per option of the whole problem (the options of deployment d are
a contiguous run, in the order of DeploymentProblem.options). The result is valid (bounds,
inventory, Frozen placements, move limits); minRegions is not sought here (the later steps do).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import chain

import numpy as np

from gridshift.arrays import BoolArray, FloatArray, IntArray
from gridshift.planner.migration import Key
from gridshift.planner.problem import Problem
from gridshift.planner.settings import PlannerSettings
from gridshift.planner.solution import Solution, Solver

# Rounds of asking: each round every short deployment asks its cheapest option with room; a pool
# that fills up sends the rest to their next option. A few tens suffice (36 pools at 12 x 3).
_MAX_ROUNDS = 400
_COVERED = 1.0 - 1e-9


@dataclass(frozen=True)
class Flat:
    """The problem's options as parallel arrays (see the module docstring)."""

    owner: IntArray
    pool: IntArray
    gpus: IntArray
    unit: FloatArray
    hourly: FloatArray
    start: FloatArray
    current: IntArray
    upper: IntArray
    stale: BoolArray
    region_pool: IntArray
    """An id per (deployment, region): options in the same region of the same deployment share it."""
    offsets: IntArray
    """Option i of deployment d is entry offsets[d] + i; offsets[-1] is the number of entries."""
    target: FloatArray
    min_replicas: IntArray
    max_replicas: IntArray
    min_regions: IntArray
    max_moves: IntArray
    fixed: BoolArray
    """Per deployment: Frozen (its counts stay the running ones)."""
    pools: tuple[Key, ...]
    inventory: IntArray


def flatten(problem: Problem) -> Flat:
    pools: dict[Key, int] = {key: i for i, key in enumerate(problem.inventory)}
    regions: dict[tuple[int, str], int] = {}
    options = [o for d in problem.deployments for o in d.options]
    for o in options:
        pools.setdefault(o.key, len(pools))
    sizes = np.fromiter((len(d.options) for d in problem.deployments), dtype=np.int64, count=len(problem.deployments))
    return Flat(
        owner=np.repeat(np.arange(len(problem.deployments), dtype=np.int64), sizes),
        pool=np.fromiter((pools[o.key] for o in options), dtype=np.int64, count=len(options)),
        gpus=np.fromiter((o.gpus for o in options), dtype=np.int64, count=len(options)),
        unit=np.fromiter((o.capacity_tokens_per_s for o in options), dtype=np.float64, count=len(options)),
        hourly=np.fromiter((o.hourly_usd for o in options), dtype=np.float64, count=len(options)),
        start=np.fromiter((o.start_per_hour_usd for o in options), dtype=np.float64, count=len(options)),
        current=np.fromiter((o.current for o in options), dtype=np.int64, count=len(options)),
        upper=np.fromiter((max(o.upper, 0) for o in options), dtype=np.int64, count=len(options)),
        stale=np.fromiter((o.stale for o in options), dtype=bool, count=len(options)),
        region_pool=np.fromiter(
            (regions.setdefault((o.deployment, o.region), len(regions)) for o in options),
            dtype=np.int64,
            count=len(options),
        ),
        offsets=np.concatenate(([0], np.cumsum(sizes))).astype(np.int64),
        target=np.fromiter((d.coverage_target for d in problem.deployments), dtype=np.float64),
        min_replicas=np.fromiter((d.min_replicas for d in problem.deployments), dtype=np.int64),
        max_replicas=np.fromiter((d.max_replicas for d in problem.deployments), dtype=np.int64),
        min_regions=np.fromiter((d.min_regions for d in problem.deployments), dtype=np.int64),
        max_moves=np.fromiter((d.max_moves for d in problem.deployments), dtype=np.int64),
        fixed=np.fromiter((d.frozen for d in problem.deployments), dtype=bool),
        pools=tuple(pools),
        inventory=np.array([problem.inventory.get(key, 0) for key in pools], dtype=np.int64),
    )


def first_fill(
    problem: Problem,
    settings: PlannerSettings,
    start: Solution,
    pool_prices: Mapping[Key, float] | None = None,
    flat: Flat | None = None,
) -> Solution:
    """`start` (a valid plan that only stops replicas: the re-validated running placement) with the
    short deployments filled and the oversized ones trimmed (module docstring)."""
    f = flat if flat is not None else flatten(problem)
    counts = np.fromiter(chain.from_iterable(start.counts), dtype=np.int64, count=int(f.offsets[-1]))
    n_dep = len(f.target)
    price = np.array([(pool_prices or {}).get(key, 0.0) for key in f.pools], dtype=np.float64)
    # Trim first: what over-served deployments give back is room for the short ones.
    started = np.zeros(n_dep, dtype=np.int64)
    counts = _trim(f, counts, started, _stopped(f, counts))
    used = np.bincount(f.pool, weights=counts * f.gpus, minlength=len(f.pools)).astype(np.int64)
    free = f.inventory - used
    movable = ~f.fixed[f.owner]
    # Adding at a stale price costs the stale-change penalty: such options come last.
    add_cost = (f.hourly + price[f.pool] * f.gpus + np.where(f.stale, settings.stale_change_penalty_usd, 0.0)) / f.unit
    with_start = add_cost + f.start / f.unit
    stopped = _stopped(f, counts)
    region_owner = np.zeros(int(f.region_pool.max(initial=-1)) + 1, dtype=np.int64)
    region_owner[f.region_pool] = f.owner
    for _ in range(_MAX_ROUNDS):
        covered = np.bincount(f.owner, weights=counts * f.unit, minlength=n_dep)
        total = np.bincount(f.owner, weights=counts, minlength=n_dep).astype(np.int64)
        in_region = np.bincount(f.region_pool, weights=counts, minlength=len(region_owner))
        regions = np.bincount(region_owner, weights=in_region > 0, minlength=n_dep)
        # Replicas a deployment may still start: the cap, and the move limit where it can bind.
        moves_left = np.where(stopped > f.max_moves, f.max_moves - started, np.iinfo(np.int64).max // 4)
        room_d = np.minimum(f.max_replicas - total, moves_left)
        open_d = ~f.fixed & (room_d > 0)
        # A deployment in fewer regions than it needs asks for one replica in a region it is not in.
        spread = open_d & (f.min_regions >= 2) & (regions < f.min_regions)
        short = open_d & ~spread & (((f.target > 0) & (covered < f.target * _COVERED)) | (total < f.min_replicas))
        room = np.minimum(f.upper - counts, free[f.pool] // np.maximum(f.gpus, 1))
        eligible = movable & (room > 0) & (short[f.owner] | (spread[f.owner] & (in_region[f.region_pool] == 0)))
        asking = np.flatnonzero(eligible)
        if len(asking) == 0:
            break
        cost = np.where(counts[asking] >= f.current[asking], with_start[asking], add_cost[asking])
        order = np.lexsort((cost, f.owner[asking]))
        owners = f.owner[asking[order]]
        first = np.ones(len(order), dtype=bool)
        first[1:] = owners[1:] != owners[:-1]
        ask, ask_cost = asking[order[first]], cost[order[first]]
        d = f.owner[ask]
        missing = np.maximum(f.target[d] - covered[d], 0.0)
        want = np.maximum(np.ceil(missing / f.unit[ask] - 1e-9).astype(np.int64), f.min_replicas[d] - total[d])
        want = np.where(spread[d], 1, np.clip(want, 1, None))
        want = np.minimum(np.minimum(want, room[ask]), room_d[d])
        ask, pools, gpus, granted = _grant(f, free, ask, ask_cost, want)
        if not granted.any():
            break
        np.add.at(counts, ask, granted)
        np.add.at(free, pools, -granted * gpus)
        np.add.at(started, f.owner[ask], granted)
    counts = _trim(f, counts, started, stopped)
    # np.split of the empty array gives one empty part: with no deployments there are no parts.
    split = np.split(counts, f.offsets[1:-1]) if n_dep else []
    return Solution(counts=tuple(tuple(c.tolist()) for c in split), solver=Solver.PRICED)


def _grant(
    f: Flat, free: IntArray, ask: IntArray, ask_cost: FloatArray, want: IntArray
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """What each pool grants of the asks (option indices `ask`, `want` replicas each): in order, larger
    replicas first, then the cheaper ask per unit. Returns the asks in that order with their pools,
    GPUs per replica and the replicas granted."""
    grant_order = np.lexsort((ask_cost, -f.gpus[ask], f.pool[ask]))
    ask, want = ask[grant_order], want[grant_order]
    gpus = f.gpus[ask]
    pools = f.pool[ask]
    need = want * gpus
    cumulative = np.cumsum(need)
    pool_start = np.ones(len(ask), dtype=bool)
    pool_start[1:] = pools[1:] != pools[:-1]
    base = np.maximum.accumulate(np.where(pool_start, cumulative - need, 0))
    left = free[pools] - (cumulative - need - base)
    # Asks that fit are granted whole; only the first ask that overflows a pool takes the part
    # that fits (the asks after it see less than nothing left and ask again next round).
    full = left >= need
    granted = np.where(full, want, 0)
    over = np.flatnonzero(~full & (left > 0))
    if len(over):
        later = np.zeros(len(over), dtype=bool)
        later[1:] = pools[over][1:] == pools[over][:-1]
        part = over[~later]
        granted[part] = np.minimum(want[part], left[part] // np.maximum(gpus[part], 1))
    return ask, pools, gpus, granted


def _stopped(f: Flat, counts: IntArray) -> IntArray:
    return np.bincount(f.owner, weights=np.maximum(f.current - counts, 0), minlength=len(f.target)).astype(np.int64)


def _trim(f: Flat, counts: IntArray, started: IntArray, stopped: IntArray) -> IntArray:
    """Stop replicas that demand does not need (module docstring): only where the deployment's move
    limit allows one more stop (`started`, `stopped`: replicas started and stopped so far, changed
    in place)."""
    n_dep = len(f.target)
    blocked = f.fixed | (f.target <= 0)
    per_unit = f.hourly / f.unit
    floor = np.where(f.min_regions[f.owner] >= 2, 1, 0)
    for _ in range(_MAX_ROUNDS):
        covered = np.bincount(f.owner, weights=counts * f.unit, minlength=n_dep)
        total = np.bincount(f.owner, weights=counts, minlength=n_dep).astype(np.int64)
        spare = covered - f.target
        stops_left = np.where(started > f.max_moves, f.max_moves - stopped, np.iinfo(np.int64).max // 4)
        candidates = np.flatnonzero(
            ~blocked[f.owner]
            & (stops_left[f.owner] > 0)
            & ~f.stale
            & (per_unit > 0)
            & (counts > floor)
            & (counts <= f.current)
            & (f.unit <= spare[f.owner] + 1e-9 * f.target[f.owner])
            & (total[f.owner] > f.min_replicas[f.owner])
        )
        if len(candidates) == 0:
            break
        order = candidates[np.lexsort((-per_unit[candidates], f.owner[candidates]))]
        owners = f.owner[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = owners[1:] != owners[:-1]
        drop = order[first]
        d = f.owner[drop]
        n = np.floor((spare[d] + 1e-9 * f.target[d]) / f.unit[drop]).astype(np.int64)
        n = np.minimum(np.minimum(n, counts[drop] - floor[drop]), total[d] - f.min_replicas[d])
        n = np.clip(np.minimum(n, stops_left[d]), 0, None)
        if not n.any():
            break
        counts[drop] -= n
        np.add.at(stopped, d, n)
    return counts
