"""The anytime search: always a valid plan in hand, improved while the time budget lasts.

Order of work (each step only ever replaces the incumbent by a valid plan with a lower objective):

1. the current placement, re-validated (clipped to what may run: bounds, inventory that shrank);
2. the previous cycle's plan, when the caller passes it and it is still valid (warm start);
3. the greedy (gridshift.planner.greedy) with every pool priced at its shadow price from the LP
   relaxation (gridshift.planner.pricing): the contention a per-deployment fill cannot see; each
   deployment takes the exact minimum of its priced objective on the inventory left
   (gridshift.planner.fill). Where that plan leaves penalties, the greedy's heuristic fill at the
   same prices is tried too; then each deployment in turn re-takes its exact fill at those prices
   on what the others leave, where that lowers its objective (the sweep); where penalties remain,
   the greedy without prices (also when the LP did not finish). The LP's optimum is the plan's
   lower bound until HiGHS proves a better one. Above _PRICING_SAMPLE movable deployments the LP
   prices an evenly spaced sample of them against the same share of the inventory (no bound then):
   the whole LP takes 12 CPU-s at 10,000;
4. where the whole problem is too large for HiGHS (settings.milp_max_variables) and the LP priced all
   of it: the restricted master (gridshift.planner.master), one replica pattern per deployment from
   the plans above and the exact fill at the LP's and the master's pool prices, chosen jointly by an
   LP, then a MILP on the deployments it leaves fractional and their neighbours (short of time, under
   _MASTER_FIRST_SECONDS left after the greedies: between the sweep's first pass and its others);
   otherwise HiGHS branch and bound on the whole problem, started from the incumbent, with
   `whole_problem_share` of the time left, when the problem has at most
   `settings.milp_max_variables` columns;
5. otherwise, or when that did not prove optimality, large-neighbourhood search: HiGHS re-solves
   groups of deployments holding one GPU type in many pools, the others held fixed, each group
   started from the incumbent.

The planner reads no clock. Time comes from a `Clock` the caller injects (the operator passes
`time.monotonic`; tests pass a fake); without one the budget still bounds HiGHS, which reads its own
clock through its `time_limit` option: the limits handed to it add up to at most the budget. The
greedy's effort is then bounded by problem size only.

Determinism: with one HiGHS thread and a fixed seed, a run that finishes before its time limit is a
pure function of the snapshot and settings. Only when the budget truly runs out (HiGHS stopped by
its time limit, or a step skipped because the clock says so) may two runs of the same snapshot
differ; the result then says `budget_exhausted`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from gridshift.planner.firstfill import first_fill
from gridshift.planner.greedy import best_fill, solve_greedy
from gridshift.planner.master import restricted_master
from gridshift.planner.migration import Key
from gridshift.planner.milp import RunTime, build_model, run_milp
from gridshift.planner.pricing import PoolPrices, pool_prices
from gridshift.planner.problem import DeploymentProblem, Problem
from gridshift.planner.settings import PlannerSettings
from gridshift.planner.solution import (
    Solution,
    Solver,
    deployment_objective,
    moves,
    objective,
    shortfall_penalty_per_unit,
)

_PRICING_SHARE = 0.25
"""At most this share of the time left goes to the LP that prices the pools."""
# With at least _PRICING_FLOOR_FROM seconds left the LP gets at least _PRICING_FLOOR_SECONDS, up to
# _PRICING_FLOOR_SHARE of them: at 1,000 deployments and a 2 s make_plan budget its 25% (0.38-0.4 CPU-s)
# was about what the LP takes (0.3-0.5 CPU-s on the loaded 2-core machine), so it failed in 3 of 8 runs
# of one seed, and the plan was then the greedy without prices (24% above HiGHS's bound instead of 3.4%;
# docs/planner.md, "Eighth round"). Below that, as before: there the LP's overrun cost the fills their time.
_PRICING_FLOOR_FROM = 1.2
_PRICING_FLOOR_SECONDS = 0.6
_PRICING_FLOOR_SHARE = 0.4
# Above this many movable deployments the pools are priced on an evenly spaced sample of this many
# (pricing.pool_prices): the compact LP takes about 0.3 CPU-s at 1,000 deployments and 12 at 10,000.
_PRICING_SAMPLE = 1_000
# A sampled LP gets this share of the time left instead: at that size the fills cannot finish within
# a budget of seconds anyway, and without prices they are far worse (the plain greedy's fill).
_SAMPLED_PRICING_SHARE = 0.5
# The restricted master starts only with this much left: about what its short form (master.py,
# _FULL_SECONDS) takes at 1,000 deployments before its MILP (two LPs and a few hundred fills: 0.2-0.3 CPU-s).
_MASTER_MIN_SECONDS = 0.35
# Without a clock each HiGHS call is charged its whole time limit (0.5 s per master LP): the master then
# needs this much, as before the short form, or its LPs would leave its MILP nothing.
_MASTER_MIN_UNCLOCKED = 1.0
# With less than this left after the greedies (large problems), the sweep makes one pass before the restricted
# master and the rest after it: at 1,000 deployments and a 2 s budget, the greedies end with about 0.6-0.9 s left.
_MASTER_FIRST_SECONDS = 1.5
# Deployments the sweep (large problems) re-fills between two offers of its changes.
_SWEEP_CHUNK = 256
# Passes of the sweep, while the last one changed anything and the budget lasts.
_SWEEP_PASSES = 3
_BACKSTOP_FACTOR = 1.25
_BACKSTOP_SECONDS = 0.25
# The clocks' rate is learnt from HiGHS calls of at least this many (HiGHS) seconds, and taken as no
# lower than the floor (a CPU clock at a load of 20 on one core).
_RATE_MIN_SECONDS = 0.02
_RATE_FLOOR = 0.05


class Clock(Protocol):
    """Seconds from an arbitrary origin, never decreasing (time.monotonic in the operator)."""

    def __call__(self) -> float: ...


@dataclass(frozen=True)
class WarmStart:
    """What the previous cycle leaves the next: its targets per deployment id and (cluster, GPU type),
    which deployments' inputs changed since (all of them when prices or inventory moved), and whether
    the previous plan was proven optimal."""

    targets: dict[str, dict[tuple[str, str], int]]
    changed: frozenset[str]
    proven_optimal: bool = False
    group_targets: Mapping[tuple[str, str], Mapping[tuple[str, str], int]] = field(default_factory=dict)
    """A deployment split into class groups: each group's targets, keyed (deployment id, the group's home
    GPU type). Found in review: every group took the deployment's whole `targets`, so a warm start doubled
    a two-group deployment's replicas, and with nothing changed returned that as proven optimal."""


@dataclass(frozen=True)
class SearchResult:
    solution: Solution
    objective_usd_per_hour: float
    bound_usd_per_hour: float | None
    """The best lower bound proved: HiGHS's when it ran on the whole problem, else the pool-pricing LP's."""
    proven_optimal: bool
    budget_exhausted: bool
    steps: tuple[str, ...]
    """What ran, in order, with the objective after each step (for the plan's explanation and logs)."""


class _Deadline:
    """The budget on the injected clock; without one, on the time limits handed to HiGHS so far
    (their sum never exceeds the budget, so HiGHS's own clock enforces it)."""

    def __init__(self, clock: Clock | None, budget: float) -> None:
        self.clock = clock
        self.budget = budget
        self.started = clock() if clock is not None else 0.0
        self.last = self.started
        """The latest reading of the injected clock."""
        self.allotted = 0.0
        self.exhausted = False
        self.rate = 1.0
        """Injected-clock seconds per HiGHS (wall) second, as last measured."""

    def left(self) -> float:
        """Seconds left; a reading at or past the deadline ends the search (the clock is not read again)."""
        if self.clock is None:
            return self.budget - self.allotted
        if self.exhausted:
            return 0.0
        left = self.budget - (self._read(self.clock) - self.started)
        if left <= 0:
            self.exhausted = True
        return left

    def allot(self, seconds: float) -> float:
        """A time limit of at most `seconds` for HiGHS, counted against the budget without a clock."""
        limit = max(0.0, min(seconds, self.left()))
        if self.clock is None:
            self.allotted += limit
        return limit

    def stopper(self, seconds: float) -> Callable[[], bool] | None:
        """With a clock: what HiGHS's interrupt callbacks ask, true once `seconds` have passed on the
        injected clock or the budget is spent. HiGHS's wall-clock limit then only backs it up."""
        clock = self.clock
        if clock is None:
            return None
        if self.exhausted:
            return lambda: True
        until = self._read(clock) + seconds
        fired = False

        def stop() -> bool:
            # HiGHS may ask again after an interrupt: once true, the clock is not read again.
            nonlocal fired
            if fired or self.exhausted:
                return True
            now = self._read(clock)
            if now - self.started >= self.budget:
                self.exhausted = True
            fired = now >= until or self.exhausted
            return fired

        return stop

    def backstop(self, seconds: float) -> float:
        """HiGHS's own (wall-clock) limit beside the injected clock: a little above the share, because
        HiGHS does not ask its interrupt callbacks everywhere (at 1,000 deployments it spent 9 CPU-s
        in one stretch without asking, measured), converted to HiGHS's clock at the rate the two
        clocks ran during the last HiGHS call (a CPU clock on a loaded machine runs slower than
        HiGHS's wall clock). Without a clock, the limit itself."""
        if self.clock is None:
            return seconds
        return (_BACKSTOP_FACTOR * seconds + _BACKSTOP_SECONDS) / self.rate

    def highs_clock(self) -> Clock | None:
        """The clock HiGHS calls read right around HiGHS's run (None without one, or once the budget is
        spent). A stopper may find the budget spent during the run: the reading after it is then that
        last reading, so the clock is not read again."""
        clock = self.clock
        if clock is None or self.exhausted:
            return None
        return lambda: self.last if self.exhausted else self._read(clock)

    def _read(self, clock: Clock) -> float:
        # Any reading at or past the deadline ends the search, whoever takes it. Found by the budget property
        # (a clock stepping 0.5 s, budget 10 s): HiGHS's clock read past the deadline just before the master's
        # LP, did not end it, and the reading after the run was a second one past the deadline.
        self.last = clock()
        if self.last - self.started >= self.budget:
            self.exhausted = True
        return self.last

    def after_highs(self, run: RunTime) -> None:
        """Learn the rate of the injected clock against HiGHS's from one run. A reading past the
        deadline ends the search, so the clock is not read again."""
        if run.clock_span is None:
            return
        before, now = run.clock_span
        if now - self.started >= self.budget:
            self.exhausted = True
        # No span, no rate: where the reading before the run ended the search, the one after it is that same
        # reading (review: the rate fell to its floor, and a later run's backstop grew from 0.25 s to 5).
        if run.highs_seconds >= _RATE_MIN_SECONDS and now > before:
            self.rate = min(1.0, max(_RATE_FLOOR, (now - before) / run.highs_seconds))

    def end(self) -> None:
        """Nothing more starts, and the clock is not read again."""
        self.exhausted = True

    def allows(self, seconds: float) -> bool:
        """Whether `seconds` are left. Once the answer is no it stays no, without reading the clock."""
        if self.exhausted:
            return False
        if self.left() >= seconds:
            return True
        self.exhausted = True
        return False


def violations(problem: Problem, solution: Solution) -> list[str]:
    """Why `solution` is not a plan the operator may apply (empty when it is)."""
    found: list[str] = []
    used: dict[tuple[str, str], int] = {}
    grouped: dict[str, tuple[int, int]] = {}  # replicas of the class groups of one deployment together, its cap
    for deployment, counts in zip(problem.deployments, solution.counts, strict=True):
        name = deployment.deployment.id
        if len(counts) != len(deployment.options):
            found.append(f"{name}: {len(counts)} counts for {len(deployment.options)} options")
            continue
        if deployment.group is not None and not deployment.frozen:
            grouped[name] = (grouped.get(name, (0, 0))[0] + sum(counts), deployment.user_max_replicas)
        for option, count in zip(deployment.options, counts, strict=True):
            used[option.key] = used.get(option.key, 0) + count * option.gpus
            if count < 0:
                found.append(f"{name}: negative count at {option.cluster}/{option.gpu_type}")
        if deployment.frozen:
            if any(c != o.current for c, o in zip(counts, deployment.options, strict=True)):
                found.append(f"{name}: Frozen placement changed")
            continue
        for option, count in zip(deployment.options, counts, strict=True):
            if count > option.upper:
                found.append(f"{name}: {count} replicas above the {option.upper} allowed at {option.key}")
        if sum(counts) > deployment.max_replicas:
            found.append(f"{name}: {sum(counts)} replicas above the cap {deployment.max_replicas}")
        if min(moves(deployment, counts)) > deployment.max_moves:
            found.append(f"{name}: more than maxConcurrentMoves {deployment.max_moves} moves")
    for name, (total, cap) in grouped.items():
        if total > cap:
            found.append(f"{name}: {total} replicas over its class groups, above its maxReplicas {cap}")
    for key, gpus in used.items():
        if gpus > problem.inventory.get(key, 0):
            found.append(f"{key[0]}/{key[1]}: {gpus} GPUs planned, {problem.inventory.get(key, 0)} available")
    return found


def revalidated_current(problem: Problem) -> Solution:
    """The placement running now, trimmed to a valid plan: counts above an option's upper bound or the
    replica cap are cut, and where inventory shrank below what runs, replicas of the dearest options
    go first. Only stops, never starts, so no move limit can be broken."""
    counts: list[list[int]] = []
    for deployment in problem.deployments:
        mine = [o.current if deployment.frozen else min(o.current, max(o.upper, 0)) for o in deployment.options]
        excess = sum(mine) - deployment.max_replicas
        if not deployment.frozen and excess > 0:
            by_cost = sorted(range(len(mine)), key=lambda j: (-deployment.columns.window_cost[j], j))
            for j in by_cost:
                if excess <= 0:
                    break
                cut = min(mine[j], excess)
                mine[j] -= cut
                excess -= cut
        counts.append(mine)
    used: dict[tuple[str, str], int] = {}
    for deployment, mine in zip(problem.deployments, counts, strict=True):
        for option, count in zip(deployment.options, mine, strict=True):
            used[option.key] = used.get(option.key, 0) + count * option.gpus
    over = {key: gpus - problem.inventory.get(key, 0) for key, gpus in used.items()}
    if any(v > 0 for v in over.values()):
        holders = sorted(
            (
                (-deployment.columns.window_cost[j] / max(option.gpus, 1), deployment.index, j)
                for deployment in problem.deployments
                if not deployment.frozen
                for j, option in enumerate(deployment.options)
                if counts[deployment.index][j] > 0 and over.get(option.key, 0) > 0
            ),
        )
        for _, index, j in holders:
            option = problem.deployments[index].options[j]
            while over[option.key] > 0 and counts[index][j] > 0:
                counts[index][j] -= 1
                over[option.key] -= option.gpus
    return Solution(counts=tuple(tuple(c) for c in counts), solver=Solver.CURRENT)


def _mapped(problem: Problem, previous: WarmStart) -> tuple[Solution | None, bool]:
    """The previous plan's targets as counts of this problem, or None when they no longer fit it; and
    whether every deployment was mapped (False: a class group the previous plan has no targets of, which
    keeps its current placement, so the result is no longer the previous plan)."""
    counts: list[tuple[int, ...]] = []
    complete = True
    for deployment in problem.deployments:
        group = deployment.group
        targets: Mapping[Key, int] | None
        if group is None:
            targets = previous.targets.get(deployment.deployment.id)
        else:
            targets = previous.group_targets.get((deployment.deployment.id, group.home_gpu_type))
        if targets is None or deployment.frozen:
            complete = complete and (targets is not None or deployment.frozen)
            counts.append(tuple(o.current for o in deployment.options))
            continue
        counts.append(tuple(targets.get(o.key, 0) for o in deployment.options))
    solution = Solution(counts=tuple(counts), solver=Solver.WARM)
    return (None if violations(problem, solution) else solution), complete


@dataclass
class _Best:
    problem: Problem
    settings: PlannerSettings
    solution: Solution
    value: float
    steps: list[str]
    cost_of: Solution | None = None
    cost: float = 0.0
    """usd_per_hour of `cost_of` (the incumbent when it was last asked, see _penalised)."""

    unavoidable: float | None = None
    """_unavoidable_penalty of the problem (None until _penalised first needs it)."""

    plans: list[Solution] = field(default_factory=list)
    """Every valid plan offered whole (not in parts), in order: the restricted master's columns."""

    current: Solution | None = None
    """The running placement, re-validated: where the first fill starts."""

    mastered: bool = False
    """Whether the restricted master ran (before the sweep when time is short, else after it): once only."""

    scale: float = 1.0
    """What the running placement costs per hour without penalties (usd_per_hour): the size of a plan's
    cost, against which a candidate's improvement is told from rounding (see _take)."""

    parts: list[float] | None = None
    """Each deployment's objective at the incumbent (None until a partial offer needs them): their
    math.fsum is `value`, exactly as `objective` computes it."""

    def offer(self, candidate: Solution | None, step: str) -> bool:
        if candidate is None:
            self.steps.append(f"{step}: no solution")
            return False
        problems = violations(self.problem, candidate)
        if problems:
            # A solver bug must never reach the cluster: the candidate is dropped, and says why.
            self.steps.append(f"{step}: invalid, dropped ({problems[0]})")
            return False
        self.plans.append(candidate)
        value = objective(self.problem, candidate, self.settings)
        return self._take(candidate, value, None, step)

    def offer_part(self, sub: Problem, members: list[int], part: Solution, step: str) -> bool:
        """The incumbent with `members` (deployment indices) replaced by `part`, a solution of `sub`
        (gridshift.planner.search._subproblem of the incumbent): checked against `sub` alone, whose
        inventory is what the incumbent's other deployments leave, and valued from the members'
        objectives only. Equivalent to offering the merged plan, in a few per cent of the time at
        1,000 deployments."""
        problems = violations(sub, part)
        if problems:
            self.steps.append(f"{step}: invalid, dropped ({problems[0]})")
            return False
        if self.parts is None:
            self.parts = [
                deployment_objective(d, c, self.settings)
                for d, c in zip(self.problem.deployments, self.solution.counts, strict=True)
            ]
        parts = list(self.parts)
        merged = list(self.solution.counts)
        for position, index in enumerate(members):
            merged[index] = part.counts[position]
            parts[index] = deployment_objective(self.problem.deployments[index], part.counts[position], self.settings)
        return self._take(Solution(tuple(merged), part.solver), math.fsum(parts), parts, step)

    def _take(self, candidate: Solution, value: float, parts: list[float] | None, step: str) -> bool:
        # Relative to the plan's cost, not to the objective: found in review, a deployment no GPU can serve
        # put 3e10 USD/h of penalties in the objective, and every other deployment's saving under 30 USD/h
        # was "kept the incumbent". Never finer than the objective's own rounding.
        better = value < self.value - max(1e-9 * max(1.0, self.scale), 64 * math.ulp(abs(self.value)))
        self.steps.append(f"{step}: {value:.4f} USD/h" + ("" if better else " (kept the incumbent)"))
        if better:
            self.solution, self.value, self.parts = candidate, value, parts
        return better


def search(
    problem: Problem,
    settings: PlannerSettings,
    *,
    clock: Clock | None = None,
    previous: WarmStart | None = None,
    budget: float | None = None,
) -> SearchResult:
    """The best valid plan found within `budget` seconds on `clock` (settings.time_budget_seconds when
    None; make_plan passes what its whole call has left). A budget at or below zero still returns the
    re-validated current placement (or the previous plan, when still valid)."""
    deadline = _Deadline(clock, settings.time_budget_seconds if budget is None else budget)
    current = revalidated_current(problem)
    best = _Best(problem, settings, current, objective(problem, current, settings), [], current=current)
    best.scale = usd_per_hour(problem, current, settings)
    best.steps.append(f"current placement, re-validated: {best.value:.4f} USD/h")
    changed: frozenset[str] = frozenset()
    if previous is not None:
        changed = previous.changed
        mapped, complete = _mapped(problem, previous)
        kept = best.offer(mapped, "previous plan")
        if kept and complete and not changed and previous.proven_optimal:
            # Nothing changed since a plan proven optimal: it still is.
            best.steps.append("nothing changed since the previous plan, proven optimal: kept")
            return SearchResult(best.solution, best.value, None, True, False, tuple(best.steps))
    # The LP's bound until HiGHS proves a better one (it always does: it starts from a tighter LP).
    prices = _priced_greedy(problem, settings, best, deadline)
    bound = None if prices is None else prices.bound
    _plain_greedy(problem, settings, best, deadline, bound)
    _master(problem, settings, best, deadline, prices, bound)
    optimal = False
    size = problem.variable_count
    if not settings.exact_search:
        pass
    elif bound is not None and best.value - bound <= _proof_gap(problem, best.solution, settings):
        # The LP's bound already proves the incumbent within the tolerance: nothing left to search.
        best.steps.append(f"within {settings.stop_gap:.2%} of the LP bound {bound:.4f} USD/h: stopped")
        optimal = True
    elif size <= settings.milp_max_variables and deadline.allows(settings.min_solver_seconds):
        model = build_model(problem, settings)
        # Not all of it: if HiGHS cannot finish the whole problem, neighbourhoods use the rest.
        limit = deadline.allot(deadline.left() * settings.whole_problem_share)
        result = run_milp(
            problem,
            settings,
            start=best.solution,
            time_limit=deadline.backstop(limit),
            model=model,
            stop=deadline.stopper(limit),
            clock=deadline.highs_clock(),
            absolute_gap=_proof_gap(problem, best.solution, settings),
            relative_gap=0.0,
        )
        deadline.after_highs(result.run)
        if result.solution is not None:
            best.offer(Solution(result.solution.counts, Solver.MILP), "HiGHS, whole problem")
            optimal = result.optimal and best.solution.solver == Solver.MILP
            bound = _tighter(bound, result.bound)
        else:
            best.steps.append("HiGHS, whole problem: no solution within the time limit")
        if result.optimal and best.solution.solver != Solver.MILP:
            # HiGHS proved the incumbent optimal (it found nothing better than its start).
            optimal = True
            bound = _tighter(bound, result.bound)
        if not result.optimal and deadline.allows(settings.min_solver_seconds):
            _neighbourhoods(problem, settings, best, deadline, changed)
        elif not result.optimal:
            deadline.exhausted = True
    elif size > settings.milp_max_variables and deadline.allows(settings.min_solver_seconds):
        _neighbourhoods(problem, settings, best, deadline, changed)
    return SearchResult(
        solution=best.solution,
        objective_usd_per_hour=best.value,
        bound_usd_per_hour=bound,
        proven_optimal=optimal,
        budget_exhausted=deadline.exhausted,
        steps=tuple(best.steps),
    )


def _tighter(bound: float | None, other: float | None) -> float | None:
    return other if bound is None else bound if other is None else max(bound, other)


def _priced_greedy(problem: Problem, settings: PlannerSettings, best: _Best, deadline: _Deadline) -> PoolPrices | None:
    """The greedy at each pool's LP shadow price (gridshift.planner.pricing), each deployment filled
    exactly at those prices (gridshift.planner.fill); where that plan leaves penalties, the greedy
    with its heuristic fill at the same prices too; then the sweep (`_sweep`). Returns the LP's
    prices (with its lower bound on the objective unless it priced a sample), or None when it did not finish."""
    if deadline.left() < settings.min_solver_seconds:
        # Too little time for HiGHS, but the search began with some: the first fill without prices
        # still runs (see `_first_fill`). "Began with": the budget it was handed, not what re-validating
        # the running placement left of it (that reading ends the deadline, and at 1,000 deployments
        # and a 0.5 s make_plan budget it took all of the 0.01-0.03 s the search was handed).
        started = deadline.budget > 0
        deadline.end()
        if started:
            best.steps.append("pool prices (LP relaxation): no time left for HiGHS")
            _first_fill(problem, settings, best, deadline, None, always=True)
        return None
    # The LP takes a fraction of a second up to 1,000 deployments; without a clock its share is capped
    # so that HiGHS's later limits still fit the budget.
    left = deadline.left()
    sampled = len(problem.movable) > _PRICING_SAMPLE
    share = left * (_SAMPLED_PRICING_SHARE if sampled else _PRICING_SHARE)
    if left >= _PRICING_FLOOR_FROM:
        share = max(share, min(_PRICING_FLOOR_SECONDS, _PRICING_FLOOR_SHARE * left))
    limit = deadline.allot(share)
    prices = pool_prices(
        problem,
        settings,
        # With a clock, the stopper holds the LP to its share (simplex asks its callback often); the
        # backstop is the budget left at the slowest rate the clocks are assumed to run at, because
        # their rate is not known yet: at a load of 14 on 2 cores, a backstop sized on the share
        # stopped the LP at a seventh of it (measured), and then the plain greedy was the start.
        time_limit=limit if deadline.clock is None else deadline.backstop(left) / _RATE_FLOOR,
        stop=deadline.stopper(limit),
        clock=deadline.highs_clock(),
        sample=_PRICING_SAMPLE,
    )
    deadline.after_highs(prices.run)
    if not prices.found:
        best.steps.append("pool prices (LP relaxation): not found within the time limit")
        _first_fill(problem, settings, best, deadline, None, always=True)
        if sampled:
            _sweep(problem, settings, best, deadline, {})
        return None
    if prices.sampled:
        best.steps.append(f"pool prices (LP relaxation) on a sample of {_PRICING_SAMPLE} deployments")
    _first_fill(problem, settings, best, deadline, prices.per_gpu)
    # On a sample (large problems) the greedies are left out: they fill about a thousand deployments
    # per CPU-second, and the sweep below reaches every deployment instead.
    greedies = () if prices.sampled else ((True, "exact fills at LP pool prices"), (False, "greedy at LP pool prices"))
    for exact, step in greedies:
        if not deadline.allows(0.0) or (not exact and not _penalised(problem, best, settings)):
            break
        priced = solve_greedy(
            problem, settings, stop=lambda: not deadline.allows(0.0), pool_prices=prices.per_gpu, exact=exact
        )
        cut = " (cut short by the budget)" if deadline.exhausted else ""
        best.offer(priced if priced is None else Solution(priced.counts, Solver.PRICED), step + cut)
    # Each deployment in turn re-takes its exact fill at the pool prices on what the others leave,
    # where that lowers its objective: the greedies fill in one order, and where their plans leave
    # penalties the incumbent may still be the first fill. At 1,000 x 0.4, seed 4, the sweep took the
    # first fill from 5,175 to 2,798 USD/h in 0.7 CPU-s, which the neighbourhoods had not reached in
    # 10 s (2,805; optimum 2,706.13).
    mastered = not prices.sampled and problem.variable_count > settings.milp_max_variables
    if mastered and deadline.left() < _MASTER_FIRST_SECONDS:
        # Short of time (a 2 s budget at 1,000 deployments): one pass of the sweep (most of its gain), then
        # the restricted master, which re-prices the deployments jointly, and the sweep's other passes after it.
        _sweep(problem, settings, best, deadline, prices.per_gpu, 1)
        _master(problem, settings, best, deadline, prices, prices.bound)
    _sweep(problem, settings, best, deadline, prices.per_gpu)
    return prices


def _plain_greedy(
    problem: Problem, settings: PlannerSettings, best: _Best, deadline: _Deadline, bound: float | None
) -> None:
    """The greedy without prices, where the LP did not finish or the incumbent pays penalties some plan
    might avoid; not above _PRICING_SAMPLE movable deployments, where the sweep from the first fill had
    the time the greedy would need (it was cut short)."""
    large = len(problem.movable) > _PRICING_SAMPLE
    if not large and deadline.allows(0.0) and (bound is None or _penalised(problem, best, settings)):
        greedy = solve_greedy(problem, settings, stop=lambda: not deadline.allows(0.0))
        best.offer(greedy, "greedy" + (" (cut short by the budget)" if deadline.exhausted else ""))


def _master(
    problem: Problem,
    settings: PlannerSettings,
    best: _Best,
    deadline: _Deadline,
    prices: PoolPrices | None,
    bound: float | None,
) -> None:
    """The restricted master (gridshift.planner.master) from the plans seen so far, where the whole
    problem is too large for HiGHS (settings.milp_max_variables), the LP priced all of it, its bound
    does not already prove the incumbent and the incumbent pays no penalty a plan could avoid;
    offered like any other plan, so it never makes the plan worse."""
    if best.mastered or not settings.exact_search or problem.variable_count <= settings.milp_max_variables:
        return
    if prices is None or prices.sampled:
        return
    if bound is not None and best.value - bound <= _proof_gap(problem, best.solution, settings):
        return
    # Where the incumbent still pays penalties some plan could avoid, the MILP over the columns (penalties
    # of millions against costs of thousands) ran into its time limit and found nothing better (1,000 x
    # 0.8, seed 2: 232M USD/h against 16M for the optimum); the neighbourhoods, which take the groups
    # holding penalties first, get the time instead.
    if _penalised(problem, best, settings):
        return
    # Not `allows`: a no there would end the search, and the neighbourhoods may still use what is left.
    if deadline.exhausted or deadline.left() < (_MASTER_MIN_SECONDS if deadline.clock else _MASTER_MIN_UNCLOCKED):
        return
    best.mastered = True
    found = restricted_master(problem, settings, best.solution, best.plans, prices.per_gpu, deadline)
    cut = " (cut short by the budget)" if deadline.exhausted else ""
    best.offer(found.solution, f"restricted master ({found.summary}){cut}")


def _first_fill(
    problem: Problem,
    settings: PlannerSettings,
    best: _Best,
    deadline: _Deadline,
    prices: Mapping[Key, float] | None,
    *,
    always: bool = False,
) -> None:
    """The numpy first fill (gridshift.planner.firstfill) from the re-validated running placement: every
    deployment that can be served at the pool prices is, in a few hundredths of a second per
    thousand deployments, before any slower step.

    `always`: without prices it runs even once the budget is spent (the LP that was to price it ran past
    the budget, or left HiGHS too little): it is the cheapest step that serves what the running
    placement leaves short, and it overruns the budget by its own time only (0.05 CPU-s at 1,000
    deployments, 0.5 at 10,000). Before, a budget that let the LP start but not finish ended with the
    running placement: at 1,000 deployments x 12 clusters x 3 GPU types and a budget of 0.5 s, 642-661
    deployments short where the first fill leaves 2-152 (docs/planner.md, "Budget")."""
    if not always and not deadline.allows(0.0):
        return
    start = best.current if best.current is not None else revalidated_current(problem)
    filled = first_fill(problem, settings, start, pool_prices=prices)
    best.offer(filled, "first fill" + (" at LP pool prices" if prices else ""))


def _sweep(
    problem: Problem,
    settings: PlannerSettings,
    best: _Best,
    deadline: _Deadline,
    prices: Mapping[Key, float],
    passes: int = _SWEEP_PASSES,
) -> None:
    """Each deployment in turn (those paying penalties first, then the dearest per unit of demand)
    takes its exact fill at the pool prices (greedy.best_fill) on the GPUs the others leave, where
    that lowers its own objective: every step keeps the plan valid and lowers its objective, so the
    sweep may stop at any deployment. Changes are offered in chunks, each checked on its own."""
    used: dict[Key, int] = {}
    for deployment, counts in zip(problem.deployments, best.solution.counts, strict=True):
        _add_use(used, deployment, counts, 1)
    free = {key: total - used.get(key, 0) for key, total in problem.inventory.items()}
    if best.parts is None:
        best.parts = [
            deployment_objective(d, c, settings) for d, c in zip(problem.deployments, best.solution.counts, strict=True)
        ]
    steps = len(best.steps)
    improved = 0
    for _ in range(passes):
        parts = best.parts
        assert parts is not None
        worth = [(-parts[d.index] / max(d.coverage_target, 1e-9), d.index) for d in problem.movable]
        order = [index for _, index in sorted(worth)]
        before_pass = improved
        for start in range(0, len(order), _SWEEP_CHUNK):
            if not deadline.allows(0.0):
                break
            parts = best.parts
            assert parts is not None
            changed: dict[int, tuple[int, ...]] = {}
            for index in order[start : start + _SWEEP_CHUNK]:
                deployment = problem.deployments[index]
                old = best.solution.counts[index]
                extra = [prices.get(o.key, 0.0) * o.gpus for o in deployment.options]
                _add_use(free, deployment, old, 1)
                new = tuple(best_fill(deployment, free, settings, extra, True))
                if deployment_objective(deployment, new, settings) < parts[index] - 1e-9:
                    changed[index] = new
                _add_use(free, deployment, changed.get(index, old), -1)
            if not changed:
                continue
            members = list(changed)
            before = [best.solution.counts[i] for i in members]
            sub = _subproblem(problem, best.solution, members, used)
            if best.offer_part(sub, members, Solution(tuple(changed.values()), Solver.PRICED), "sweep"):
                improved += len(members)
                for index, old_counts in zip(members, before, strict=True):
                    _add_use(used, problem.deployments[index], old_counts, -1)
                    _add_use(used, problem.deployments[index], best.solution.counts[index], 1)
            else:
                # Never expected (each fill keeps to what the others leave): start again from the incumbent.
                free = {key: total - used.get(key, 0) for key, total in problem.inventory.items()}
        if improved == before_pass or deadline.exhausted:
            break
    del best.steps[steps:]
    cut = " (cut short by the budget)" if deadline.exhausted else ""
    at = " at LP pool prices" if prices else ""
    done = f"{improved} improved{cut}: {best.value:.4f} USD/h"
    best.steps.append(f"sweep{at}, each deployment its exact fill on what the others leave: {done}")


def _penalised(problem: Problem, best: _Best, settings: PlannerSettings) -> bool:
    """Whether the incumbent pays penalties (demand or bounds unmet) that some plan might avoid: worth
    another heuristic. Penalties no plan can avoid (`_unavoidable_penalty`) do not count: a deployment
    no GPU of the whole inventory can serve made every plan "penalised", and the heuristic greedy
    (0.35 CPU-s at 1,000 deployments) ran for nothing (issue 13)."""
    if best.cost_of is not best.solution:
        best.cost_of, best.cost = best.solution, usd_per_hour(problem, best.solution, settings)
    if best.unavoidable is None:
        best.unavoidable = _unavoidable_penalty(problem, settings)
    # Above the cost's own rounding, and the penalties' (a million USD/h each, summed with the cost).
    tolerance = max(1e-6 * max(1.0, best.cost), 1e-12 * abs(best.value))
    return best.value - best.cost - best.unavoidable > tolerance


def _unavoidable_penalty(problem: Problem, settings: PlannerSettings) -> float:
    """A lower bound on the penalties of every plan: per deployment, alone on the whole inventory, the
    demand it cannot cover (its options by capacity per replica, each up to its bound and its pool's
    GPUs, within maxReplicas), the replicas below minReplicas and the regions below minRegions it
    cannot have. Each term is at most that deployment's penalty in any plan; move limits and the other
    deployments are left out, which only lowers it."""
    total = 0.0
    for deployment in problem.deployments:
        if deployment.frozen:
            continue  # no penalty (solution.deployment_objective)
        caps = [max(0, min(o.upper, problem.inventory.get(o.key, 0) // max(o.gpus, 1))) for o in deployment.options]
        most = min(deployment.max_replicas, sum(caps))
        covered, room = 0.0, most
        for unit, cap in sorted(zip(deployment.columns.unit, caps, strict=True), reverse=True):
            take = min(cap, room)
            covered, room = covered + take * unit, room - take
        if deployment.coverage_target > 0:
            missing = max(0.0, 1.0 - covered / deployment.coverage_target)
            total += missing * shortfall_penalty_per_unit(deployment, settings)
        total += max(0, deployment.min_replicas - most) * settings.bound_violation_penalty_usd
        if deployment.min_regions >= 2:
            regions = {region for region, cap in zip(deployment.columns.region, caps, strict=True) if cap > 0}
            total += max(0, deployment.min_regions - len(regions)) * settings.bound_violation_penalty_usd
    return total


def _neighbourhoods(
    problem: Problem, settings: PlannerSettings, best: _Best, deadline: _Deadline, changed: frozenset[str]
) -> None:
    """Large-neighbourhood search: groups of settings.neighbourhood_deployments holding one GPU type
    in many pools (`_groups`: the contention a per-deployment fill cannot price) re-solved exactly by
    HiGHS with every other deployment fixed. Passes, each with a new grouping, repeat while the budget
    lasts and one of the last two passes improved anything."""
    idle = 0
    # GPUs the incumbent uses per pool, kept up to date as groups improve it.
    used: dict[Key, int] = {}
    for deployment, counts in zip(problem.deployments, best.solution.counts, strict=True):
        _add_use(used, deployment, counts, 1)
    for round_ in range(settings.neighbourhood_passes):
        groups = _groups(problem, best.solution, settings.neighbourhood_deployments, settings, changed, round_)
        improved = False
        for members in groups:
            if not deadline.allows(settings.min_solver_seconds):
                return
            sub = _subproblem(problem, best.solution, members, used)
            start = Solution(tuple(best.solution.counts[i] for i in members), Solver.MILP)
            limit = deadline.allot(settings.neighbourhood_seconds)
            result = run_milp(
                sub,
                settings,
                start=start,
                time_limit=deadline.backstop(limit),
                stop=deadline.stopper(limit),
                clock=deadline.highs_clock(),
                absolute_gap=_proof_gap(sub, start, settings),
                relative_gap=0.0,
            )
            deadline.after_highs(result.run)
            if result.solution is None:
                continue
            before = [best.solution.counts[i] for i in members]
            part = Solution(result.solution.counts, Solver.LNS)
            if best.offer_part(sub, members, part, f"HiGHS on {len(members)} deployments"):
                improved = True
                for index, old in zip(members, before, strict=True):
                    _add_use(used, problem.deployments[index], old, -1)
                    _add_use(used, problem.deployments[index], best.solution.counts[index], 1)
            else:
                best.steps.pop()
        # Each round regroups: stop once two in a row improve nothing.
        idle = 0 if improved else idle + 1
        if idle >= 2:
            return


def _groups(
    problem: Problem,
    solution: Solution,
    size: int,
    settings: PlannerSettings,
    changed: frozenset[str],
    round_: int = 0,
) -> list[list[int]]:
    """Deployments grouped by the GPU type they hold most GPUs of (a deployment holding none: the type
    of its cheapest option per unit of capacity), shuffled within each type by a hash of their id and
    the round, and cut into groups of `size`: a group then holds deployments in many pools of one GPU
    type, so HiGHS can exchange them between those pools (a chain: one leaves a cheap pool for another
    so that a third takes its place). Grouped by pool instead, 40 holders of one pool could only move
    to room left free elsewhere: at 1,000 deployments this grouping's plans cost less on 12 of 14
    runs (docs/planner.md, "Choosing the method"). A new shuffle each round meets new partners; the
    hash keeps it a function of the snapshot (determinism) and of each id alone (a warm start
    regroups the same way). Groups holding penalties (demand or bounds unmet) go first: that is
    where a plan gains most; then groups with deployments whose inputs changed since the previous
    plan (warm start)."""

    def main_type(deployment: DeploymentProblem) -> str:
        counts = solution.counts[deployment.index]
        best_type = deployment.options[deployment.by_unit_cost[0]].gpu_type
        best_gpus = 0
        for option, count in zip(deployment.options, counts, strict=True):
            if count * option.gpus > best_gpus:
                best_type, best_gpus = option.gpu_type, count * option.gpus
        return best_type

    def shuffled(deployment: DeploymentProblem) -> bytes:
        return hashlib.blake2b(f"{round_}/{deployment.deployment.id}".encode(), digest_size=8).digest()

    free = settings.without_penalties()

    def penalty(index: int) -> float:
        deployment, counts = problem.deployments[index], solution.counts[index]
        return deployment_objective(deployment, counts, settings) - deployment_objective(deployment, counts, free)

    movable = sorted(problem.movable, key=lambda d: (main_type(d), shuffled(d), d.deployment.id))
    groups = [[d.index for d in movable[i : i + size]] for i in range(0, len(movable), size)]
    weight = [sum(penalty(i) for i in group) for group in groups]
    fresh = [sum(1 for i in group if problem.deployments[i].deployment.id in changed) for group in groups]
    order = sorted(range(len(groups)), key=lambda g: (-weight[g] if weight[g] > 1e-6 else 0.0, -fresh[g], g))
    return [groups[g] for g in order]


def _add_use(used: dict[Key, int], deployment: DeploymentProblem, counts: Sequence[int], sign: int) -> None:
    for option, count in zip(deployment.options, counts, strict=True):
        if count:
            used[option.key] = used.get(option.key, 0) + sign * count * option.gpus


def _subproblem(problem: Problem, solution: Solution, members: list[int], used: Mapping[Key, int]) -> Problem:
    """The problem restricted to `members`, with the inventory the other deployments leave free
    (`used`: GPUs per pool that `solution` uses, all deployments)."""
    fixed_use = dict(used)
    for index in members:
        _add_use(fixed_use, problem.deployments[index], solution.counts[index], -1)
    inventory = {key: total - fixed_use.get(key, 0) for key, total in problem.inventory.items()}
    deployments = [problem.deployments[i] for i in members]
    sub = Problem(
        deployments=[_reindexed(d, position) for position, d in enumerate(deployments)],
        inventory=inventory,
        price_views=problem.price_views,
        stale_clusters=problem.stale_clusters,
        clusters=problem.clusters,
        carbon_views=problem.carbon_views,
    )
    return sub


def _reindexed(deployment: DeploymentProblem, index: int) -> DeploymentProblem:
    return replace(deployment, index=index)


def _proof_gap(problem: Problem, start: Solution, settings: PlannerSettings) -> float:
    """HiGHS's optimality gap, absolute and measured against what the plan costs, not against the
    objective: where demand cannot be met, penalties of millions dominate it, and a relative gap of
    1e-6 would let tens of dollars an hour of real cost through as "optimal"."""
    return max(settings.mip_relative_gap, settings.stop_gap) * max(1.0, usd_per_hour(problem, start, settings))


def usd_per_hour(problem: Problem, solution: Solution, settings: PlannerSettings) -> float:
    """The objective without penalties: what the plan costs per hour (window mean, starts amortised)."""
    free = settings.without_penalties()
    return math.fsum(
        deployment_objective(d, c, free) for d, c in zip(problem.deployments, solution.counts, strict=True)
    )
