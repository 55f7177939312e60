"""Greedy placement for problems too large for the MILP within the planning budget.

Same inputs and objective as the MILP (gridshift.planner.solution). Deployments are served in order
of *regret per GPU* (how much more their second-cheapest pool costs than their cheapest, per GPU the
cheapest needs), each taking the best of a few candidate fills given the inventory earlier ones left:

- the cheapest capacity per token first, finishing with the cheapest option that completes the demand;
- as much of its cheapest option as the demand needs, then as above.

Every fill first puts one replica in each of the cheapest minRegions regions and keeps replicas where
the price is stale. Keeping a current replica costs its window cost; a new one also its start cost,
so the MILP's payback rule decides moves here too. Moves beyond maxConcurrentMoves are undone, then
single-replica swaps and drops that lower the objective are applied. Two joint passes follow:
deployments left short get room by moving other deployments' replicas out of the pools they need
(repair), and replicas move into cheaper pools the same way while the joint objective falls
(exchange, within a deterministic budget).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import chain

import numpy as np

from gridshift.planner.fill import exact_fill, priced_objective
from gridshift.planner.migration import Key
from gridshift.planner.problem import DeploymentProblem, Problem
from gridshift.planner.settings import PlannerSettings
from gridshift.planner.solution import (
    Solution,
    Solver,
    aggregates,
    deployment_objective,
    move_delta,
    moves,
    option_cost,
    shortfall_penalty_per_unit,
)

_HOMOGENEOUS_CANDIDATES = 1
# Deployments holding a wanted pool that the repair step asks to move, per pool and attempt.
_REPAIR_HOLDERS = 16
# Exchange pass, per deployment: at most this many candidate moves (the total budget is
# PlannerSettings.greedy_exchange_budget, spread evenly: the planner reads no clock, so effort is
# bounded by problem size), and how widely each candidate looks (cheaper pools, holders asked).
_EXCHANGE_MAX_EVALUATIONS = 64
_EXCHANGE_WIDE = (3, 8)
_EXCHANGE_NARROW = (2, 4)
# Deployments between two questions to the search's deadline: a few milliseconds of work.
_STOP_EVERY = 32


class _Filler:
    """Builds one deployment's counts against a private copy of the free inventory."""

    def __init__(self, problem: DeploymentProblem, free: dict[Key, int], settings: PlannerSettings, extra: list[float]):
        self.problem = problem
        self.extra = extra
        self.options = problem.options
        self.candidates = range(len(problem.options))
        self.free = {o.key: free.get(o.key, 0) for o in problem.options}
        self.settings = settings
        self.counts = [0] * len(problem.options)
        self.units = problem.columns.unit
        self.covered = 0.0
        self.total = 0

    def room(self, j: int) -> bool:
        option = self.options[j]
        return self.counts[j] < option.upper and self.free[option.key] >= option.gpus

    def add(self, j: int) -> None:
        option = self.options[j]
        self.counts[j] += 1
        self.free[option.key] -= option.gpus
        self.covered += self.units[j]
        self.total += 1

    def remove(self, j: int) -> None:
        option = self.options[j]
        self.counts[j] -= 1
        self.free[option.key] += option.gpus
        self.covered -= self.units[j]
        self.total -= 1

    def cost(self, j: int) -> float:
        """Cost of one more replica at option j given its count now."""
        option = self.options[j]
        cost = option.hourly_usd + self.extra[j]
        if self.counts[j] >= option.current:
            cost += option.start_per_hour_usd
            if option.stale:
                cost += self.settings.stale_change_penalty_usd
        elif option.stale:
            cost -= self.settings.stale_change_penalty_usd
        return cost

    def cheapest(self, per_unit: bool, among: list[int] | range | None = None) -> int | None:
        best_cost = 0.0
        best: int | None = None
        options, counts, free, units, extra = self.options, self.counts, self.free, self.units, self.extra
        stale_penalty = self.settings.stale_change_penalty_usd
        for j in self.candidates if among is None else among:
            option = options[j]
            count = counts[j]
            if count >= option.upper or free[option.key] < option.gpus:
                continue
            # Inlined self.cost(j): this loop is the greedy solver's hottest.
            cost = option.hourly_usd + extra[j]
            if count >= option.current:
                cost += option.start_per_hour_usd
                if option.stale:
                    cost += stale_penalty
            elif option.stale:
                cost -= stale_penalty
            if per_unit:
                cost /= units[j]
            if best is None or cost < best_cost:
                best, best_cost = j, cost
        return best

    def fill(self, first: int | None) -> list[int]:
        problem = self.problem
        for j, option in enumerate(self.options):
            if option.stale:
                for _ in range(option.current):
                    if self.total < problem.max_replicas and self.room(j):
                        self.add(j)
        if problem.min_regions >= 2:
            self._spread_over_regions()
        target = problem.coverage_target - 1e-9
        if first is not None:
            while self.total < problem.max_replicas and self.covered < target and self.room(first):
                self.add(first)
        while self.total < problem.max_replicas and self.covered < target:
            missing = problem.coverage_target - self.covered
            completing = [j for j in self.candidates if self.units[j] >= missing - 1e-9]
            pick = self.cheapest(per_unit=False, among=completing)
            per_unit = self.cheapest(per_unit=True)
            if per_unit is not None and (
                pick is None or self.cost(per_unit) / self.units[per_unit] < self.cost(pick) / missing
            ):
                pick = per_unit
            if pick is None:
                break
            self.add(pick)
            if pick == per_unit:
                # Its marginal cost stays the same up to its current count (keeping) and beyond it
                # (starting), so replicas that leave demand uncovered go in at once, as one by one.
                self._add_more(pick, problem.coverage_target - self.covered)
        while self.total < min(problem.min_replicas, problem.max_replicas):
            pick = self.cheapest(per_unit=False)
            if pick is None:
                break
            self.add(pick)
        self._limit_moves()
        return self.counts

    def _add_more(self, j: int, missing: float) -> None:
        """Add replicas at option j while its marginal cost is unchanged and demand stays uncovered."""
        option = self.options[j]
        count = self.counts[j]
        more = math.ceil(missing / self.units[j] - 1e-9) - 1
        if count < option.current:
            more = min(more, option.current - count)
        more = min(
            more,
            option.upper - count,
            self.problem.max_replicas - self.total,
            self.free[option.key] // option.gpus if option.gpus else more,
        )
        for _ in range(max(0, more)):
            self.add(j)

    def _spread_over_regions(self) -> None:
        problem = self.problem
        by_region: dict[str, list[int]] = {}
        for j in self.candidates:
            by_region.setdefault(self.options[j].region, []).append(j)
        used = {self.options[j].region for j, n in enumerate(self.counts) if n > 0}
        ranked: list[tuple[float, str, int]] = []
        for region, members in by_region.items():
            pick = self.cheapest(per_unit=True, among=members)
            if pick is not None:
                ranked.append((self.cost(pick) / self.units[pick], region, pick))
        for _, region, j in sorted(ranked):
            if len(used) >= problem.min_regions or self.total >= problem.max_replicas:
                break
            if region in used or not self.room(j):
                continue
            self.add(j)
            used.add(region)

    def _limit_moves(self) -> None:
        """Undo moves past maxConcurrentMoves one at a time, the cheapest way: drop a new replica, keep a
        stopped one, or both (a swap back). Found in review: each way was priced by a whole
        deployment_objective, for every (new, stopped) pair and every move undone: one deployment over
        800 options took 16 s of a 1 s budget. Each way is now priced from the options it touches."""
        problem = self.problem
        options = self.options
        while True:
            started, stopped = moves(problem, self.counts)
            if min(started, stopped) <= problem.max_moves:
                return
            new = [j for j, o in enumerate(options) if self.counts[j] > o.current]
            gone = [j for j, o in enumerate(options) if self.counts[j] < o.current and self.room(j)]
            best = _Undo(problem, self.counts, self.settings).cheapest(new, gone, self.total < problem.max_replicas)
            if best is None:
                return
            drop, keep = best
            if drop is not None:
                self.remove(drop)
            if keep is not None:
                self.add(keep)

    def _better_than(self, base: float) -> float | None:
        """The objective of the counts as they stand, if it is below `base` and within the move limit."""
        trial = deployment_objective(self.problem, self.counts, self.settings)
        if trial < base - 1e-9 and min(moves(self.problem, self.counts)) <= self.problem.max_moves:
            return trial
        return None

    def local_search(self) -> None:
        """Drop surplus replicas and swap single replicas to cheaper options while the objective falls."""
        problem = self.problem
        settings = self.settings
        base = deployment_objective(problem, self.counts, settings)
        by_unit_cost = sorted(self.candidates, key=lambda j: self.cost(j) / self.units[j])
        for _ in range(3):
            improved = False
            for i in [j for j, n in enumerate(self.counts) if n > 0]:
                if self.counts[i] == 0:
                    continue
                self.remove(i)
                trial = self._better_than(base)
                if trial is None:
                    trial = self._swap_in(i, by_unit_cost[:8], base)
                if trial is None:
                    self.add(i)
                else:
                    base, improved = trial, True
            if not improved:
                return

    def _swap_in(self, removed: int, options: list[int], base: float) -> float | None:
        """With a replica of `removed` taken out: the objective once one replica of the first of `options`
        that brings it below `base` is added (that replica stays), or None, nothing added."""
        for k in options:
            if k == removed or not self.room(k):
                continue
            self.add(k)
            trial = self._better_than(base)
            if trial is not None:
                return trial
            self.remove(k)
        return None


class _Undo:
    """What undoing one move costs: one replica fewer at a new option (`drop`), one more at a stopped one
    (`keep`), or both, in a deployment's objective (the terms of solution.deployment_objective), from the
    counts' totals and the options changed; every way at once (numpy)."""

    def __init__(self, problem: DeploymentProblem, counts: list[int], settings: PlannerSettings):
        self.problem = problem
        self.counts = counts
        self.settings = settings
        totals = aggregates(problem, counts)
        self.covered = totals.covered
        self.regions = totals.region_replicas
        self.replicas = sum(counts)

    def _own(self, options: list[int], change: int) -> np.ndarray:
        """The change of each option's own cost (window, start, stale) when its count changes by `change`."""
        problem, counts, settings = self.problem, self.counts, self.settings
        return np.asarray(
            [
                option_cost(problem, j, counts[j] + change, settings) - option_cost(problem, j, counts[j], settings)
                for j in options
            ],
            dtype=np.float64,
        )

    def _penalties(self, covered: np.ndarray, replicas: int, regions: np.ndarray) -> np.ndarray:
        """Penalties at the changed totals less those at the counts now."""
        problem, bound = self.problem, self.settings.bound_violation_penalty_usd
        penalty = np.zeros(np.shape(covered))
        target = problem.coverage_target
        if target > 0:
            missing = np.maximum(0.0, 1.0 - covered / target) - max(0.0, 1.0 - self.covered / target)
            penalty += missing * shortfall_penalty_per_unit(problem, self.settings)
        floor = problem.min_replicas
        penalty += (max(0, floor - replicas) - max(0, floor - self.replicas)) * bound
        if problem.min_regions >= 2:
            spread = problem.min_regions
            penalty += (np.maximum(0, spread - regions) - max(0, spread - len(self.regions))) * bound
        return penalty

    def cheapest(self, new: list[int], gone: list[int], keep_alone: bool) -> tuple[int | None, int | None] | None:
        """The (drop, keep) that raises the objective least; the first of equals, in the order: drops,
        keeps (`keep_alone`: while below maxReplicas), then each drop with each keep."""
        columns = self.problem.columns
        names = {region: n for n, region in enumerate(sorted({columns.region[j] for j in (*new, *gone)}))}
        unit_new = np.asarray([columns.unit[i] for i in new], dtype=np.float64)
        unit_gone = np.asarray([columns.unit[k] for k in gone], dtype=np.float64)
        region_new = np.asarray([names[columns.region[i]] for i in new], dtype=np.int64)
        region_gone = np.asarray([names[columns.region[k]] for k in gone], dtype=np.int64)
        last = np.asarray([self.regions.get(columns.region[i], 0) == 1 for i in new], dtype=bool)
        first = np.asarray([self.regions.get(columns.region[k], 0) == 0 for k in gone], dtype=bool)
        drop, keep, held = self._own(new, -1), self._own(gone, 1), len(self.regions)
        ways = [drop + self._penalties(self.covered - unit_new, self.replicas - 1, held - last.astype(np.int64))]
        if keep_alone:
            ways.append(keep + self._penalties(self.covered + unit_gone, self.replicas + 1, held + first))
        apart = region_new[:, None] != region_gone[None, :]
        regions = held - (last[:, None] & apart) + (first[None, :] & apart)
        covered = self.covered - unit_new[:, None] + unit_gone[None, :]
        ways.append((drop[:, None] + keep[None, :] + self._penalties(covered, self.replicas, regions)).ravel())
        values = np.concatenate(ways)
        if not len(values):
            return None
        at = int(np.argmin(values))
        if at < len(new):
            return new[at], None
        at -= len(new)
        if keep_alone:
            if at < len(gone):
                return None, gone[at]
            at -= len(gone)
        return new[at // len(gone)], gone[at % len(gone)]


def _regrets(deployments: list[DeploymentProblem], extra: list[list[float]]) -> dict[int, float]:
    """Each deployment's regret (by index): what it loses if its cheapest pool is taken, per GPU:
    second-cheapest cover minus cheapest, over the GPUs the cheapest cover takes. A cover serves the
    whole demand from one option, at `extra` per replica on top. With a single cover: its cost's
    magnitude plus 1; with none: 0. Computed over all deployments' options at once (numpy): the
    same figures, in the same float operations, as one loop per option, in a tenth of the time at
    10,000 deployments."""
    sizes = [len(d.options) for d in deployments]
    if not deployments or not any(sizes):
        return {d.index: 0.0 for d in deployments}
    owner = np.repeat(np.arange(len(deployments)), sizes)
    unit = np.fromiter(chain.from_iterable(d.columns.unit for d in deployments), np.float64, len(owner))
    hourly = np.fromiter(chain.from_iterable(d.columns.window_cost for d in deployments), np.float64, len(owner))
    start = np.fromiter(chain.from_iterable(d.columns.start_cost for d in deployments), np.float64, len(owner))
    current = np.fromiter(chain.from_iterable(d.columns.current for d in deployments), np.int64, len(owner))
    gpus = np.fromiter((o.gpus for d in deployments for o in d.options), np.int64, len(owner))
    price = np.fromiter(chain.from_iterable(extra[d.index] for d in deployments), np.float64, len(owner))
    target = np.asarray([d.coverage_target for d in deployments], dtype=np.float64)[owner]
    floor = np.asarray([d.min_replicas for d in deployments], dtype=np.float64)[owner]
    valid = unit > 0
    owner = owner[valid]
    replicas = np.maximum(np.maximum(floor[valid], np.ceil(target[valid] / unit[valid] - 1e-9)), 1.0)
    cost = replicas * (hourly[valid] + price[valid] + np.where(current[valid] == 0, start[valid], 0.0))
    taken = replicas * gpus[valid]
    order = np.lexsort((taken, cost, owner))
    owner, cost, taken = owner[order], cost[order], taken[order]
    covers = np.bincount(owner, minlength=len(deployments))
    first = np.concatenate(([0], np.cumsum(covers)[:-1]))
    regret = np.zeros(len(deployments))
    one = covers == 1
    regret[one] = np.abs(cost[first[one]]) + 1.0
    more = covers >= 2
    regret[more] = (cost[first[more] + 1] - cost[first[more]]) / taken[first[more]]
    return {d.index: float(r) for d, r in zip(deployments, regret.tolist(), strict=True)}


def best_fill(
    problem: DeploymentProblem, free: dict[Key, int], settings: PlannerSettings, extra: list[float], exact: bool
) -> list[int]:
    if problem.frozen:
        return [o.current for o in problem.options]
    if not problem.options:
        return []
    if exact:
        found = exact_fill(problem, free, settings, extra)
        if found is not None and found[1]:
            return found[0]
        heuristic = _heuristic_fill(problem, free, settings, extra)
        if found is not None and priced_objective(problem, found[0], settings, extra) < priced_objective(
            problem, heuristic, settings, extra
        ):
            return found[0]
        return heuristic
    return _heuristic_fill(problem, free, settings, extra)


def _heuristic_fill(
    problem: DeploymentProblem, free: dict[Key, int], settings: PlannerSettings, extra: list[float]
) -> list[int]:
    columns = problem.columns

    def first_replica_cost(j: int) -> float:
        started = columns.start_cost[j] if columns.current[j] == 0 else 0.0
        return (columns.window_cost[j] + extra[j] + started) / columns.unit[j]

    ranked = sorted(range(len(problem.options)), key=lambda j: (first_replica_cost(j), j))
    starts: list[int | None] = [None, *ranked[:_HOMOGENEOUS_CANDIDATES]]
    # A fill that put every replica on one option makes the "all on that option" candidate redundant.
    pure: set[int] = set()
    best: tuple[float, _Filler] | None = None
    for first in starts:
        if first is not None and first in pure:
            continue
        filler = _Filler(problem, free, settings, extra)
        filler.fill(first)
        value = deployment_objective(problem, filler.counts, settings)
        if best is None or value < best[0] - 1e-9:
            best = (value, filler)
        used = [j for j, n in enumerate(filler.counts) if n > 0]
        if len(used) == 1:
            pure.add(used[0])
    assert best is not None
    best[1].local_search()
    return best[1].counts


def solve_greedy(
    problem: Problem,
    settings: PlannerSettings,
    stop: Callable[[], bool] | None = None,
    pool_prices: Mapping[Key, float] | None = None,
    exact: bool = False,
) -> Solution | None:
    """Greedy counts (see the module docstring); valid: bounds, inventory and move limits hold.

    `pool_prices` (USD/h per GPU, gridshift.planner.pricing) are added to each option's cost while
    deployments are ordered and filled, so that contended pools go to those who save most there;
    the joint passes (repair, exchange) and the plan's value use the true objective.

    `exact`: each deployment takes the exact minimum of its priced objective on the inventory left
    (gridshift.planner.fill) where that applies and keeps its move limit, else the better of that
    and the heuristic fill.

    `stop` (the search's deadline) is asked every few deployments: during the fills, the deployments
    not yet filled keep what runs now, trimmed to the inventory left (dearest replicas first; only
    stops, so no move limit breaks); during repair and exchange it ends that pass. Either way the
    plan is valid.
    """
    free = dict(problem.inventory)
    counts: list[list[int]] = [[] for _ in problem.deployments]
    prices = pool_prices or {}
    extra = [[prices.get(o.key, 0.0) * o.gpus for o in p.options] for p in problem.deployments]
    frozen = [p for p in problem.deployments if p.frozen]
    unfrozen = [p for p in problem.deployments if not p.frozen]  # option-less ones too, unlike Problem.movable
    regret = _regrets(unfrozen, extra)
    others = sorted(unfrozen, key=lambda p: (-regret[p.index], p.deployment.id))
    order = frozen + others
    for position, deployment in enumerate(order):
        if stop is not None and position % _STOP_EVERY == 0 and stop():
            _keep_running(order[position:], counts, free)
            return Solution(counts=tuple(tuple(c) for c in counts), solver=Solver.GREEDY)
        chosen = best_fill(deployment, free, settings, extra[deployment.index], exact)
        for option, count in zip(deployment.options, chosen, strict=True):
            free[option.key] = free.get(option.key, 0) - count * option.gpus
        counts[deployment.index] = chosen
    joint = _Joint(problem, counts, free, _Holders(problem, counts), settings, stop)
    _repair(joint)
    _exchange(joint)
    return Solution(counts=tuple(tuple(c) for c in counts), solver=Solver.GREEDY)


def _keep_running(rest: list[DeploymentProblem], counts: list[list[int]], free: dict[Key, int]) -> None:
    """Deployments the greedy had no time for keep their running replicas, as far as the inventory
    left allows (an option's bound and the replica cap too), dropping the dearest first. Only options
    with running replicas are visited (the others keep 0)."""
    for deployment in rest:
        options = deployment.options
        if deployment.frozen:
            mine = [o.current for o in options]
        else:
            mine = [0] * len(options)
            room = deployment.max_replicas
            window = deployment.columns.window_cost
            running = sorted((window[j], j) for j, o in enumerate(options) if o.current > 0)
            for _, j in running:
                option = options[j]
                keep = min(option.current, max(option.upper, 0), room, max(free.get(option.key, 0), 0) // option.gpus)
                mine[j] = keep
                room -= keep
        for option, count in zip(options, mine, strict=True):
            if count:
                free[option.key] = free.get(option.key, 0) - count * option.gpus
        counts[deployment.index] = mine


class _Holders:
    """Who holds replicas in each pool, in a fixed order; entries whose count fell to 0 are skipped."""

    def __init__(self, problem: Problem, counts: list[list[int]]):
        self.by_pool: dict[Key, dict[int, DeploymentProblem]] = {}
        for deployment in problem.deployments:
            if not deployment.frozen:
                for option, count in zip(deployment.options, counts[deployment.index], strict=True):
                    if count > 0:
                        self.add(option.key, deployment)

    def add(self, key: Key, deployment: DeploymentProblem) -> None:
        self.by_pool.setdefault(key, {})[deployment.index] = deployment

    def of(self, key: Key) -> Iterable[DeploymentProblem]:
        return self.by_pool.get(key, {}).values()


Move = tuple[DeploymentProblem, int, int]


@dataclass(frozen=True)
class _Joint:
    """What the joint passes (_repair, _exchange) work on: every deployment's counts and the free
    inventory (both changed in place), who holds each pool, the settings, and the search's deadline."""

    problem: Problem
    counts: list[list[int]]
    free: dict[Key, int]
    holders: _Holders
    settings: PlannerSettings
    stop: Callable[[], bool] | None = None

    def changeable(self) -> Iterator[tuple[DeploymentProblem, list[int]]]:
        """The deployments a pass may change (not frozen, with options), in order, each with its counts, until
        the deadline passes (asked every _STOP_EVERY deployments)."""
        for position, deployment in enumerate(self.problem.deployments):
            if self.stop is not None and position % _STOP_EVERY == 0 and self.stop():
                return
            if deployment.frozen or not deployment.options:
                continue
            yield deployment, self.counts[deployment.index]


def _apply(counts: list[int], free: dict[Key, int], deployment: DeploymentProblem, source: int, target: int) -> None:
    counts[source] -= 1
    counts[target] += 1
    free[deployment.options[source].key] += deployment.options[source].gpus
    free[deployment.options[target].key] -= deployment.options[target].gpus


def _evict(
    key: Key,
    needed_gpus: int,
    exempt: DeploymentProblem,
    max_loss: float,
    holders_asked: int,
    joint: _Joint,
) -> list[Move] | None:
    """Free `needed_gpus` in pool `key` by moving other deployments' replicas, one at a time, to their
    next cheapest pool with room, if that costs them less than `max_loss` in all; else change nothing.
    """
    counts, free, holders, settings = joint.counts, joint.free, joint.holders, joint.settings
    done: list[Move] = []
    loss = 0.0
    while free.get(key, 0) < needed_gpus:
        best: tuple[float, DeploymentProblem, int, int] | None = None
        asked = 0
        for other in holders.of(key):
            if asked >= holders_asked:
                break
            theirs = counts[other.index]
            out = other.position[key]
            if other is exempt or theirs[out] == 0:
                continue
            asked += 1
            for into in other.by_unit_cost:
                option = other.options[into]
                if into == out or option.key == key or theirs[into] >= option.upper:
                    continue
                if free.get(option.key, 0) < option.gpus:
                    continue
                change, legal = move_delta(other, theirs, out, into, settings)
                if legal and (best is None or change < best[0]):
                    best = (change, other, out, into)
                break
        if best is None or loss + best[0] >= max_loss - 1e-9:
            for other, out, into in reversed(done):
                _apply(counts[other.index], free, other, into, out)
            return None
        change, other, out, into = best
        _apply(counts[other.index], free, other, out, into)
        holders.add(other.options[into].key, other)
        done.append((other, out, into))
        loss += change
    return done


def _repair(joint: _Joint) -> None:
    """Serve deployments left short by making room in a pool they accept.

    A deployment served late can find the only pools it accepts taken by deployments that could have
    run elsewhere; this step moves those out, one replica at a time, while that lowers the objective.
    """
    free, settings = joint.free, joint.settings
    threshold = settings.bound_violation_penalty_usd / 2
    for short, mine in joint.changeable():
        for _ in range(short.max_replicas):
            value = deployment_objective(short, mine, settings)
            if value < threshold or sum(mine) >= short.max_replicas:
                break
            served = False
            for j in short.by_unit_cost:
                wanted = short.options[j]
                if mine[j] >= wanted.upper:
                    continue
                mine[j] += 1
                gain = value - deployment_objective(short, mine, settings)
                # The added replica is a start: it must not take the deployment past maxConcurrentMoves.
                legal = min(moves(short, mine)) <= short.max_moves
                mine[j] -= 1
                if gain <= 0 or not legal:
                    continue
                moved = _evict(wanted.key, wanted.gpus, short, gain, _REPAIR_HOLDERS, joint)
                if moved is not None:
                    mine[j] += 1
                    free[wanted.key] -= wanted.gpus
                    joint.holders.add(wanted.key, short)
                    served = True
                    break
            if not served:
                break


def _exchange(joint: _Joint) -> None:
    """Move a replica into a cheaper pool, making room there by moving other deployments' replicas out.

    Served in regret order, early deployments take cheap pools that later ones valued more; this
    pass trades one replica at a time while the joint objective falls.
    """
    problem, free, settings = joint.problem, joint.free, joint.settings
    per_deployment = min(_EXCHANGE_MAX_EVALUATIONS, settings.greedy_exchange_budget // max(1, len(problem.deployments)))
    if per_deployment <= 0:
        return
    pools, asked = _EXCHANGE_WIDE if per_deployment >= _EXCHANGE_MAX_EVALUATIONS // 2 else _EXCHANGE_NARROW
    for mover, mine in joint.changeable():
        order = mover.by_unit_cost
        rank = {j: r for r, j in enumerate(order)}
        budget = per_deployment
        progress = True
        while progress and budget > 0:
            progress = False
            used = sorted((i for i, n in enumerate(mine) if n > 0), key=lambda i: -rank[i])
            for i in used:
                cheaper = [k for k in order if rank[k] < rank[i] and mine[k] < mover.options[k].upper]
                for k in cheaper[:pools]:
                    budget -= 1
                    change, legal = move_delta(mover, mine, i, k, settings)
                    if change >= -1e-9 or not legal:
                        continue
                    source, target = mover.options[i], mover.options[k]
                    # The replica leaves its pool first, so an evicted one may land there.
                    mine[i] -= 1
                    free[source.key] += source.gpus
                    moved = _evict(target.key, target.gpus, mover, -change, asked, joint)
                    if moved is None:
                        mine[i] += 1
                        free[source.key] -= source.gpus
                        continue
                    mine[k] += 1
                    free[target.key] -= target.gpus
                    joint.holders.add(target.key, mover)
                    progress = True
                    break
                if progress or budget <= 0:
                    break
