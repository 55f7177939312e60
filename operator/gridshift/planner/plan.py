"""The planner's entry point: `make_plan(snapshot, settings, clock=..., previous=...) -> Plan`.

One joint problem covers every deployment, because deployments compete for GPUs in cheap regions.
The anytime search (gridshift.planner.search) holds a valid plan from the start (the running
placement, re-validated) and improves it within `settings.time_budget_seconds`: greedy, then HiGHS
on the whole problem or on groups of deployments. The Plan carries, per deployment, target
placements, make-before-break steps, routing weights, predicted cost and an explanation. A
deployment that cannot be served gets a reason, never an exception.
"""

from __future__ import annotations

import functools
import gc
import math
import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np

from gridshift.modes import MigrationMode
from gridshift.planner.band import hold_band
from gridshift.planner.capacity import CapacityInputs, batch_at, power_at
from gridshift.planner.cost import (
    carbon_usd_per_hour,
    energy_usd_per_hour,
    grams_co2_per_hour,
    grams_per_million_tokens,
    joules_per_token,
    usd_per_million_tokens,
)
from gridshift.planner.migration import (
    ClassRoute,
    Key,
    MigrationStep,
    RouteWeight,
    migration_steps,
    percents,
    routing_weights,
)
from gridshift.planner.problem import DeploymentProblem, Option, Problem, build_problem
from gridshift.planner.profiles import PerformanceModel
from gridshift.planner.search import Clock, WarmStart, search
from gridshift.planner.settings import PlannerSettings
from gridshift.planner.snapshot import Cluster, Snapshot
from gridshift.planner.solution import Solution, Solver, deployment_objective, free_gpus, moves, objective

# --- the budget of the whole call ---------------------------------------------------------------
# With a clock, settings.time_budget_seconds bounds make_plan as a whole: the search gets what is left
# after building the problem, less a reserve for assembling the plan afterwards, estimated from the
# problem's size. CPU seconds per deployment and per option (one per deployment x cluster x GPU type),
# fitted on make_plan with the search replaced by a fixed first fill (bench/plan_phases.py, seed 0,
# tightness 0.4, garbage collection paused as make_plan does, on the shared 2-core machine at load
# 2.3-2.6, 2 December 2026): assembly, with the one collection that follows the call, took 0.31
# CPU-s at 1,000 deployments x 22,608 options (12 clusters x 3 GPU types), 0.97 at 3,000 x 67,740,
# 0.77 at 3,000 x 36,000 (12 x 1), 0.65 at 3,000 x 12,000 (4 x 1), 2.80 at 10,000 x 224,580 and 1.91
# at 10,000 x 40,000 (4 x 1). The estimate is at or a little above each but 3,000 x 67,740 (0.94).
_ASSEMBLY_SECONDS_PER_DEPLOYMENT = 0.2e-3
_ASSEMBLY_SECONDS_PER_OPTION = 5e-6
# Building the same problems took 0.26, 0.72, 0.33, 0.18, 2.54 and 0.68 CPU-s: below this estimate.
# When the build took longer than it on the caller's clock (a wall clock on a loaded node, a slower
# machine), the assembly is assumed to run slower by the same factor, at most _SLOWDOWN_CAP; never
# faster.
_BUILD_SECONDS_PER_DEPLOYMENT = 30e-6
_BUILD_SECONDS_PER_OPTION = 11e-6
_SLOWDOWN_CAP = 20.0


@dataclass(frozen=True)
class TargetPlacement:
    """Replicas the plan wants on one GPU type in one cluster."""

    cluster: str
    region: str
    gpu_type: str
    replicas: int
    current_desired: int
    current_ready: int
    capacity_tokens_per_s_per_replica: float
    reachable: bool = True


@dataclass(frozen=True)
class CostPrediction:
    """Cost of the target placement at the observed load and the price now."""

    usd_per_hour: float
    gpu_usd_per_hour: float
    energy_usd_per_hour: float
    usd_per_million_tokens: float | None
    joules_per_token: float | None
    energy_share: float | None
    """Electricity's share of the cost; may leave [0, 1] when prices are negative."""
    power_watts: float
    co2_grams_per_hour: float | None = None
    """Emissions at the observed load and the intensity now, PUE included; None unless every
    cluster used has a carbon feed (planner.carbon)."""
    co2_grams_per_million_tokens: float | None = None
    carbon_usd_per_hour: float = 0.0
    """Internal carbon cost at the deployment's carbon price (not in `usd_per_hour`, which is money
    spent); unmeasured clusters count at PlannerSettings.missing_carbon_g_per_kwh."""
    co2_grams_per_hour_by_region: Mapping[str, float] = field(default_factory=dict)
    """`co2_grams_per_hour` split by region (empty when it is None)."""
    usd_per_hour_by_region: Mapping[str, float] = field(default_factory=dict)
    """`usd_per_hour` of the replicas in each region: their GPU-hours and energy at that region's prices."""
    power_watts_by_region: Mapping[str, float] = field(default_factory=dict)
    """`power_watts` of the replicas in each region."""
    output_tokens_per_s_by_region: Mapping[str, float] = field(default_factory=dict)
    """The served output tokens split by each region's share of the placement's capacity, as requests are
    routed (migration.routing_weights) and as each option's power was computed; empty without a demand."""
    served_tokens_per_s: float | None = None
    """The output tokens/s the placement serves (the demand, at most its capacity, replicas kept in unreachable
    clusters included): what `usd_per_million_tokens` and `joules_per_token` are per; None without a demand."""
    unpriced: tuple[tuple[str, str, int], ...] = ()
    """(cluster, GPU type, replicas) the placement keeps running that every figure above leaves out, their price or
    power unknown (_unpriced): kept in an unreachable cluster that no longer tells their offering or whose GPU type no
    GPUProfile gives a power for, kept by a Frozen deployment where it has no option, or kept outside the plan where
    nothing can replace them. The figures are those of the rest alone ($/Mtok: their cost over the tokens they can
    serve). Found in review: status.cost read cheaper than the deployment ran, with nothing saying so. Sorted by
    cluster, then GPU type."""

    @property
    def unpriced_replicas(self) -> int:
        """How many replicas the figures leave out (`unpriced`)."""
        return sum(n for _, _, n in self.unpriced)

    @property
    def joules_per_token_by_region(self) -> dict[str, float]:
        """GPU energy per output token in each region that serves tokens: its power over its tokens."""
        found = {}
        for region, tokens in self.output_tokens_per_s_by_region.items():
            joules = joules_per_token(self.power_watts_by_region.get(region, 0.0), tokens)
            if joules is not None:
                found[region] = joules
        return found

    @property
    def carbon_share(self) -> float | None:
        """The carbon price's share of the cost the decision weighed (money plus internal carbon cost)."""
        total = self.usd_per_hour + self.carbon_usd_per_hour
        # None unless the total is positive: at negative prices the share read backwards (-6.4%; review).
        return None if self.carbon_usd_per_hour == 0 or total <= 0 else self.carbon_usd_per_hour / total


@dataclass(frozen=True)
class Explanation:
    reason: str
    summary: str
    details: tuple[str, ...]
    binding_constraints: tuple[str, ...]
    alternative: str | None
    """The unused option ("cluster/GPU type") that would serve the whole demand most cheaply alone."""
    alternative_usd_per_hour: float | None
    """What serving the whole demand there would cost per hour now (replicas needed x cost per
    replica-hour), comparable with `CostPrediction.usd_per_hour` across GPU types."""
    saving_usd_per_hour_vs_current: float | None
    """Objective per hour of keeping the current placement minus the plan's (None when the current
    placement leaves demand unserved: the saving would only count the penalty)."""


@dataclass(frozen=True)
class DeploymentPlan:
    id: str
    mode: MigrationMode
    act: bool
    """False in Advisory and Frozen modes: the plan is reported, the shell changes nothing."""
    feasible: bool
    infeasible_reason: str | None
    targets: tuple[TargetPlacement, ...]
    steps: tuple[MigrationStep, ...]
    routing: tuple[RouteWeight, ...]
    cost: CostPrediction
    explanation: Explanation
    demand_tokens_per_s: float | None
    needed_tokens_per_s: float | None
    capacity_tokens_per_s: float
    max_num_seqs: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """vLLM --max-num-seqs per (cluster, GPU type) the deployment may use: the batch at SLO capacity at the
    observed request sizes. The engine is configured with the same numbers the plan was made with."""
    class_routing: tuple[ClassRoute, ...] = ()
    """Per request-size class, percent of its requests per (cluster, GPU type); empty unless the
    deployment is planned by class (planner.classes)."""
    variants: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """The build (Requirements.variants name) replicas run per (cluster, GPU type), where it is not the
    model itself."""
    strays: Mapping[tuple[str, str], float | None] = field(default_factory=dict)
    """Per (cluster, GPU type) where replicas run where the deployment may no longer run (DeploymentProblem.strays:
    those this plan stops and those kept for a later cycle within maxConcurrentMoves), a replica's capacity there
    in tokens/s at the SLO, as the make-before-break steps count it (`_stray_unit`: 0.0 where its profile gives
    none for the spec: the SLO, memory, a request class; None where no profile gives it, which the steps count as
    0). Their Ready replicas serve until the move replacing them is done: status counts them as Ready capacity
    (names those of None), and the deployment as Reconciling while the plan replaces them."""
    replaces_strays: bool = False
    """Whether the plan does without its strays: stops them, this cycle or a later one within maxConcurrentMoves
    (`_replaces_strays`: replicas elsewhere, or none wanted at all). False without strays, and where it keeps them
    (nowhere else to run): status reads the deployment as Reconciling while those it replaces run."""
    held_away: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """Per (cluster, GPU type), the replicas an Auto or Advisory deployment holds in a cluster it cannot reach on a GPU
    type dropped from spec.gpuTypes (`_held_away`): the plan wants none of them, yet cannot stop them while the
    cluster is away. No target lists them (where the cluster answers they are strays, which the decision leaves
    out; Frozen keeps them among its targets), nothing plans with them; status counts them as desired by the rule
    of the unreachable targets (service.status.counts_as_desired: while no reachable target replaces them, always
    in Advisory). Found in review: counted nowhere, an Auto or Advisory deployment whose replicas ran on only there
    read desiredReplicas 0 and "0/0 replicas Ready"; listed as unreachable targets instead (a431c88, reverted), its
    decision flipped between "b/A100 x10" and "nothing" with each change of b's reachability."""
    usable_away: frozenset[str] = frozenset()
    """The unreachable clusters where it may still run its replicas (its eligibility rules: regions,
    tenantNamespaceSelector, clusterSelector, the GPU type offered and profiled; by the cluster's rules alone where
    none of its replicas there is known): the only ones an unreachable cluster's routing weight is kept in for a while
    (the routing grace, service.migrate), whatever is known of its pods."""

    @property
    def total_replicas(self) -> int:
        return sum(t.replicas for t in self.targets if t.reachable)


@dataclass(frozen=True)
class Plan:
    now: datetime
    solver: Solver
    """The search step whose plan won (gridshift.planner.solution.Solver)."""
    variable_count: int
    """Columns of the whole problem's MILP."""
    objective_usd_per_hour: float
    """Fleet cost per hour (window mean, starts amortised over the payback window) plus penalties, of the
    plan as assembled: with the replicas the scale-down band keeps (planner.band)."""
    bound_usd_per_hour: float | None
    """A lower bound on the objective: HiGHS's when it ran on the whole problem, else the LP relaxation's
    that priced the pools (gridshift.planner.pricing); None when neither finished."""
    proven_optimal: bool
    """The search proved its plan optimal for the demand; what the scale-down band keeps after it, on GPUs
    left free, is on top (the band is no demand, so no solver weighs it)."""
    budget_exhausted: bool
    """The time budget ended the search; the plan is the best found, and may differ between runs."""
    search_steps: tuple[str, ...]
    deployments: tuple[DeploymentPlan, ...]
    snapshot: Snapshot | None = field(default=None, repr=False)
    """The input, kept so that the next cycle can tell what changed (make_plan's `previous`)."""
    group_targets: Mapping[tuple[str, str], Mapping[tuple[str, str], int]] = field(default_factory=dict, repr=False)
    """Replicas per (cluster, GPU type) of each class group of a deployment split into groups, keyed
    (deployment id, the group's home GPU type): the next cycle's warm start of each group (`deployments`
    only has the groups merged)."""
    steady: Mapping[str, Mapping[tuple[str, str], int]] = field(default_factory=dict, repr=False)
    """Per deployment caught in the middle of a move, the placement that move leaves (_steady_placements): what
    its decision was read against (not a class-planned one's: _hold_steady), carried to the next cycle while the
    move is still in flight; also, unread, one carried through a cycle in which the move's cluster was lost."""

    def for_deployment(self, deployment_id: str) -> DeploymentPlan:
        for plan in self.deployments:
            if plan.id == deployment_id:
                return plan
        raise KeyError(f"no plan for deployment {deployment_id!r}")

    def targets(self) -> dict[str, dict[tuple[str, str], int]]:
        """Replicas per (cluster, GPU type) of every deployment: the warm start of the next cycle."""
        return {
            plan.id: {(t.cluster, t.gpu_type): t.replicas for t in plan.targets if t.reachable}
            for plan in self.deployments
        }


def make_plan(
    snapshot: Snapshot,
    settings: PlannerSettings | None = None,
    *,
    clock: Clock | None = None,
    previous: Plan | None = None,
) -> Plan:
    """Plan every deployment of `snapshot`.

    `clock` (seconds, monotonic: the operator passes time.monotonic) lets the whole call keep to
    settings.time_budget_seconds: the search gets what is left after building the problem, less a
    reserve for assembling the plan (`assembly_reserve`). Without a clock nothing can be measured:
    the search's HiGHS time limits add up to the budget, and building and assembling come on top.
    `previous` (last cycle's Plan) is a warm start: its targets are kept as a candidate while they
    stay valid, so a cycle in which little changed starts from last cycle's answer.
    """
    settings = settings or PlannerSettings()
    with _collector_paused():
        started = clock() if clock is not None else 0.0
        warm = _warm_start(previous, snapshot)
        steady, carried = _steady_placements(previous, snapshot)
        advisory = frozenset(d.id for d in snapshot.deployments if d.requirements.mode is MigrationMode.ADVISORY)
        if not advisory:
            budget = settings.time_budget_seconds - _spent(clock, started)
            plan = _plan_once(snapshot, settings, clock, warm, budget, steady)
        else:
            plan = _plan_with_advisory(snapshot, settings, clock, warm, advisory, started, steady)
        return replace(plan, steady={**carried, **steady})


def _steady_placements(
    previous: Plan | None, snapshot: Snapshot
) -> tuple[dict[str, dict[Key, int]], dict[str, dict[Key, int]]]:
    """Per deployment caught in the middle of the previous plan's move, the placement that move leaves once its
    stops are done (DeploymentProblem.steady): the replicas desired now, less those started ahead of stops not
    made yet. The move runs from the placement the previous plan read as current (its own steady placement while
    a move was already in flight, Plan.steady, else the one it found) to its target; only where every pool lies
    between that placement, or the one the previous plan found, and the target (anything else changed the
    placement since). A surge replica stays in flight for as many cycles as it takes to become Ready: found in
    review, read as a ScaleDown from the second cycle on, the surge being in the previous plan's snapshot already.
    Only for mode Auto: Frozen and Advisory change nothing, no move is in flight (found in review: Frozen mid-move
    read 'costs 2.190 USD/h more than keeping the current placement'). None without a previous plan (after a
    restart the surge reads as replicas).

    Second: the steady placements carried to the next cycle unused (Plan.steady), those of moves into a cluster
    lost this cycle: found in review, dropped, the move read ScaleDown "saves 2.34 USD/h" once the cluster was
    back, its surge counted as an eleventh replica."""
    if previous is None or previous.snapshot is None:
        return {}, {}
    before = {d.id: d for d in previous.snapshot.deployments}
    targets = previous.targets()
    lost = {c.name for c in snapshot.clusters if not c.reachable}

    def reachable(placement: Mapping[Key, int]) -> dict[Key, int]:
        return {key: n for key, n in placement.items() if key[0] not in lost}

    found: dict[str, dict[Key, int]] = {}
    carried: dict[str, dict[Key, int]] = {}
    for deployment in snapshot.deployments:
        earlier = before.get(deployment.id)
        target = targets.get(deployment.id)
        if earlier is None or target is None or deployment.requirements.mode is not MigrationMode.AUTO:
            continue
        # A move into or within a cluster now unreachable cannot be followed (its replicas there are not options:
        # found in review, the surge's cluster lost read ScaleUp); replicas left in one the move does not use are
        # no part of it (review: a lost cluster's last-known replica read as a stop owed, then as a ScaleDown).
        if any(n > 0 and key[0] in lost for key, n in target.items()):
            if deployment.id in previous.steady:
                carried[deployment.id] = dict(previous.steady[deployment.id])
            continue
        was = {(p.cluster, p.gpu_type): p.desired for p in earlier.placements}
        base = previous.steady.get(deployment.id, was)
        now = {(p.cluster, p.gpu_type): p.desired for p in deployment.placements}
        steady = _move_left(reachable(base), reachable(was), reachable(target), reachable(now))
        if steady is not None:
            found[deployment.id] = steady
    return found, carried


def _move_left(
    base: Mapping[Key, int], was: Mapping[Key, int], target: Mapping[Key, int], now: Mapping[Key, int]
) -> dict[Key, int] | None:
    """The placement `now` leaves once the stops of the move from `base` to `target` catch up with its starts
    (_steady_placements; `was`: the desired replicas the move was planned from, `base` plus a surge in flight
    then). Started: the replicas now above `base` where the target has more; stopped: those now below it where the
    target has as many or fewer (a surge replica still running there counts as a stop owed). None where nothing
    is owed, or `now` is not between them."""
    keys = sorted(set(was) | set(base) | set(now) | set(target))
    if any(
        not min(base.get(k, 0), target.get(k, 0)) <= now.get(k, 0) <= max(was.get(k, 0), target.get(k, 0)) for k in keys
    ):
        return None
    started = sum(
        min(now.get(k, 0), target.get(k, 0)) - base.get(k, 0) for k in keys if target.get(k, 0) > base.get(k, 0)
    )
    stopped = sum(base.get(k, 0) - now.get(k, 0) for k in keys if target.get(k, 0) <= base.get(k, 0))
    surge = started - stopped
    if surge <= 0:
        return None
    steady = dict(now)
    for k in keys:
        take = min(surge, max(0, now.get(k, 0) - target.get(k, 0)))
        if take > 0:
            steady[k] = now[k] - take
            surge -= take
    return steady


def _plan_with_advisory(
    snapshot: Snapshot,
    settings: PlannerSettings,
    clock: Clock | None,
    warm: WarmStart | None,
    advisory: frozenset[str],
    started: float,
    steady: Mapping[str, Mapping[Key, int]],
) -> Plan:
    """Advisory deployments change nothing, so the plan that acts must leave them their GPUs: it sees
    them as Frozen (found in review: a recommendation that vacated a pool let an Auto deployment plan a
    start into GPUs that never came free). Their recommendations come after, from the Advisory
    deployments alone on the GPUs the acting plan leaves them: what each would do in Auto mode, given
    what the others do. The acting search gets the budget less the Advisory share of the deployments
    (at least half, at most nine tenths); the recommendations what is left (with a clock) or the rest
    of the budget (without one: each search is held to its share)."""
    budget = settings.time_budget_seconds
    share = min(_ACTING_SHARE_MAX, max(0.5, 1.0 - len(advisory) / len(snapshot.deployments)))
    acting = _plan_once(
        _advisory_held(snapshot, advisory),
        settings,
        clock,
        _advisory_kept(warm, snapshot, advisory),
        share * budget - _spent(clock, started),
        steady,
    )
    alone = _advisory_alone(snapshot, advisory, acting)
    left = budget - _spent(clock, started) if clock is not None else (1.0 - share) * budget
    recommending = _plan_once(alone, settings, clock, warm, left, steady)
    recommended = {plan.id: plan for plan in recommending.deployments}
    return replace(
        acting,
        proven_optimal=acting.proven_optimal and recommending.proven_optimal,
        budget_exhausted=acting.budget_exhausted or recommending.budget_exhausted,
        search_steps=(
            *acting.search_steps,
            f"Advisory recommendations ({len(advisory)}): searched alone, on the GPUs the plan leaves",
            *recommending.search_steps,
        ),
        deployments=tuple(recommended.get(plan.id, plan) for plan in acting.deployments),
        snapshot=snapshot,
        group_targets={**acting.group_targets, **recommending.group_targets},
    )


_ACTING_SHARE_MAX = 0.9
"""The most of the budget the acting search gets beside Advisory deployments: their search is small
(the Advisory deployments alone) but needs some time of its own, however few they are."""


def _spent(clock: Clock | None, started: float) -> float:
    return clock() - started if clock is not None else 0.0


def _plan_once(
    snapshot: Snapshot,
    settings: PlannerSettings,
    clock: Clock | None,
    warm: WarmStart | None,
    budget: float,
    steady: Mapping[str, Mapping[Key, int]] | None = None,
) -> Plan:
    """One build, search and assembly within `budget` seconds: of `clock`, or without one of the time
    limits the search hands HiGHS (building and assembling come on top). `steady`: _steady_placements."""
    started = clock() if clock is not None else 0.0
    problem = build_problem(snapshot, settings)
    _hold_steady(problem, steady or {})
    left = budget
    if clock is not None:
        built = clock() - started
        left = budget - built - assembly_reserve(problem, built)
    result = search(problem, settings, clock=clock, previous=warm, budget=left)
    # The one place the scale-down band applies: after the search, on the GPUs its plan leaves free.
    solution = hold_band(problem, result.solution, settings)
    held = solution is not result.solution
    return Plan(
        now=snapshot.now,
        solver=solution.solver,
        variable_count=problem.variable_count,
        objective_usd_per_hour=objective(problem, solution, settings) if held else result.objective_usd_per_hour,
        bound_usd_per_hour=result.bound_usd_per_hour,
        proven_optimal=result.proven_optimal,
        budget_exhausted=result.budget_exhausted,
        search_steps=result.steps,
        deployments=_assemble(problem, solution, settings, result.budget_exhausted),
        snapshot=snapshot,
        group_targets=_group_targets(problem, solution),
    )


def _hold_steady(problem: Problem, steady: Mapping[str, Mapping[Key, int]]) -> None:
    """DeploymentProblem.steady of each deployment `steady` (_steady_placements) holds, per option."""
    for deployment in problem.deployments:
        placement = steady.get(deployment.deployment.id)
        # A deployment planned by class: its groups share pools, the surge is no one group's (left as it is).
        if placement is None or deployment.group is not None:
            continue
        deployment.steady = tuple(placement.get(o.key, o.current) for o in deployment.options)


def _group_targets(problem: Problem, solution: Solution) -> dict[tuple[str, str], dict[Key, int]]:
    """Each class group's replicas per pool (Plan.group_targets)."""
    return {
        (deployment.deployment.id, deployment.group.home_gpu_type): {
            o.key: n for o, n in zip(deployment.options, counts, strict=True) if n > 0
        }
        for deployment, counts in zip(problem.deployments, solution.counts, strict=True)
        if deployment.group is not None
    }


def _advisory_alone(snapshot: Snapshot, advisory: frozenset[str], acting: Plan) -> Snapshot:
    """The Advisory deployments alone, each pool less the GPUs the acting plan's other deployments hold
    there now or will (the more of the two: both hold GPUs while a move is under way)."""
    gpus = {d.id: d.requirements.gpus_per_replica for d in snapshot.deployments}
    taken: dict[Key, int] = {}
    for plan in acting.deployments:
        if plan.id in advisory:
            continue
        for t in plan.targets:
            key = (t.cluster, t.gpu_type)
            taken[key] = taken.get(key, 0) + max(t.replicas, t.current_desired) * gpus[plan.id]
    clusters = tuple(
        replace(
            c,
            offerings=tuple(
                replace(o, available_gpus=max(0, o.available_gpus - taken.get((c.name, o.gpu_type), 0)))
                for o in c.offerings
            ),
        )
        for c in snapshot.clusters
    )
    return replace(snapshot, deployments=tuple(d for d in snapshot.deployments if d.id in advisory), clusters=clusters)


def _advisory_held(snapshot: Snapshot, advisory: frozenset[str]) -> Snapshot:
    """`snapshot` with its Advisory deployments Frozen: they keep what they hold, GPUs included."""
    return replace(
        snapshot,
        deployments=tuple(
            replace(d, requirements=replace(d.requirements, mode=MigrationMode.FROZEN)) if d.id in advisory else d
            for d in snapshot.deployments
        ),
    )


def _advisory_kept(warm: WarmStart | None, snapshot: Snapshot, advisory: frozenset[str]) -> WarmStart | None:
    """The warm start of the acting search: last cycle's targets, but Advisory deployments where they run."""
    if warm is None:
        return None
    held = {
        d.id: {(p.cluster, p.gpu_type): p.desired for p in d.placements}
        for d in snapshot.deployments
        if d.id in advisory
    }
    return replace(warm, targets={**warm.targets, **held})


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's automatic garbage collection off for the duration of make_plan, and back as it was.

    Why: the collector only frees reference cycles, and the planner makes none (frozen dataclasses,
    tuples, dicts, numpy arrays: a 1,000-deployment make_plan with HiGHS left 0 objects for
    gc.collect() afterwards), but its full collections traverse every live object, and building
    the problem and assembling the plan create a few million: at 10,000 deployments 1,435
    collections took 1.8-2.0 of 7.7-8.7 CPU-s of make_plan (bench/plan_phases.py, search replaced by
    a fixed first fill); paused, make_plan took 6.4-6.8, the one collection after it (over the plan's
    objects) 0.34 included; at 1,000, 0.68-0.78 before and 0.57-0.67 after. Peak memory at 10,000
    is unchanged (284 MiB). Reference counting still frees everything as before.

    It is process-wide state, so it is restored in `finally` (also when planning raises) to exactly
    what it was: re-enabled only if it was enabled, so a caller that turned collection off keeps it
    off, and of two overlapping calls in different threads the last to finish leaves it as the first
    found it. Other threads' cycles meanwhile wait for the next collection after the call.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def assembly_reserve(problem: Problem, build_seconds: float) -> float:
    """Seconds of the budget kept for assembling the plan of `problem`, on the clock that measured
    `build_seconds` for building it: the size-based estimate, scaled up when the build itself ran
    slower than its own estimate."""
    options = sum(len(d.options) for d in problem.deployments)
    deployments = len(problem.deployments)
    build = _BUILD_SECONDS_PER_DEPLOYMENT * deployments + _BUILD_SECONDS_PER_OPTION * options
    slowdown = min(_SLOWDOWN_CAP, max(1.0, build_seconds / build)) if build > 0 else 1.0
    return slowdown * (_ASSEMBLY_SECONDS_PER_DEPLOYMENT * deployments + _ASSEMBLY_SECONDS_PER_OPTION * options)


def _assemble(
    problem: Problem, solution: Solution, settings: PlannerSettings, exhausted: bool = False
) -> tuple[DeploymentPlan, ...]:
    """Every deployment's plan from the search's counts (after the search, within make_plan's budget
    through `assembly_reserve`: at 10,000 deployments this step alone took about 4 CPU-s, so it reads
    only the options a plan uses where it can; the best alternative's shortlist reads every unused option
    once, in _all_covers). `exhausted`: the search was cut short by its time budget (the explanations say
    so where it, not the inventory or a payback, left a deployment short or unmoved)."""
    free = free_gpus(problem, solution)
    powers = _load_powers(problem, solution, settings)
    alternatives = _all_covers(problem, solution, settings)
    return _merge_class_groups(
        problem,
        [
            _deployment_plan(
                problem,
                deployment,
                list(counts),
                free,
                powers,
                alternatives[deployment.index],
                settings,
                exhausted,
                band_held=deployment.index in solution.band_held,
            )
            for deployment, counts in zip(problem.deployments, solution.counts, strict=True)
        ],
        _Fleet(solution.counts, free, settings),
    )


def _warm_start(previous: Plan | None, snapshot: Snapshot) -> WarmStart | None:
    """Last cycle's targets, and which deployments changed since: those whose requirements, placement or
    demand differ, or all of them when any cluster, price or carbon horizon or profile changed, a deployment
    came or went (a deleted one frees GPUs for all: found in review, a plan "proven optimal" was kept with
    demand left short), or time moved (a later `now` slides every price window, so pool prices moved)."""
    if previous is None:
        return None
    before = previous.snapshot
    ids = frozenset(d.id for d in snapshot.deployments)
    if (
        before is None
        or frozenset(d.id for d in before.deployments) != ids
        or (before.now, before.clusters, before.prices, before.carbon, before.profiles)
        != (snapshot.now, snapshot.clusters, snapshot.prices, snapshot.carbon, snapshot.profiles)
    ):
        changed = ids
    else:
        earlier = {d.id: d for d in before.deployments}
        changed = frozenset(d.id for d in snapshot.deployments if earlier.get(d.id) != d)
    return WarmStart(previous.targets(), changed, previous.proven_optimal, previous.group_targets)


def _load_powers(problem: Problem, solution: Solution, settings: PlannerSettings) -> dict[tuple[int, int], float]:
    """Power of each used option's replicas at the observed load, shared in proportion to capacity.

    Computed for all deployments in one vectorised pass. With unknown demand, power at capacity.
    """
    keys: list[tuple[int, int]] = []
    models = []
    rates: list[float] = []
    prompts: list[float] = []
    outputs: list[float] = []
    powers: dict[tuple[int, int], float] = {}
    for deployment, counts in zip(problem.deployments, solution.counts, strict=True):
        if deployment.frozen:
            counts = tuple(o.current for o in deployment.options)
        workload = deployment.workload
        options = deployment.options
        used = [j for j, count in enumerate(counts) if count > 0]
        capacity_rps = _used_sum([options[j].capacity_rps * counts[j] for j in used], bool(options))
        served = workload.requests_per_second
        for j in used:
            option = options[j]
            if served is None or capacity_rps <= 0:
                powers[(deployment.index, j)] = option.power_at_capacity_watts
                continue
            keys.append((deployment.index, j))
            models.append(option.model)
            rates.append(option.capacity_rps * min(1.0, served / capacity_rps))
            prompts.append(workload.mean_prompt_tokens)
            outputs.append(workload.mean_output_tokens)
    for key, value in zip(keys, _powers_at_rates(models, rates, prompts, outputs, settings), strict=True):
        powers[key] = value
    return powers


def _powers_at_rates(
    models: list[PerformanceModel],
    rates: list[float],
    prompts: list[float],
    outputs: list[float],
    settings: PlannerSettings,
) -> list[float]:
    """Power of one replica of each model at its request rate (idle power at rate 0), in one vectorised pass."""
    if not models:
        return []
    inputs = CapacityInputs.of(models, prompts, outputs, [0.0] * len(models), [0.0] * len(models))
    values = power_at(models, batch_at(inputs, np.asarray(rates, dtype=np.float64), settings))
    return [float(v) if r > 0 else m.idle_power_watts for m, r, v in zip(models, rates, values, strict=True)]


def _cost_prediction(
    problem: Problem,
    deployment: DeploymentProblem,
    counts: list[int],
    powers: dict[tuple[int, int], float],
    settings: PlannerSettings,
    outside: Sequence[tuple[str, str, int, int]] = (),
) -> CostPrediction:
    """The plan's cost; `outside`: strays it keeps running outside the plan (_deployment_plan), left out and counted
    in `unpriced` with the rest it cannot price (_unpriced)."""
    workload = deployment.workload
    options = deployment.options
    used = [j for j, count in enumerate(counts) if count > 0]
    capacity_rps = _used_sum([options[j].capacity_rps * counts[j] for j in used], bool(options))
    served_rps = workload.requests_per_second
    priced = [(options[j], counts[j], powers[(deployment.index, j)]) for j in used]
    away = _kept_away(deployment, counts, capacity_rps, settings)
    priced += away
    capacity_rps += sum(o.capacity_rps * n for o, n, _ in away)
    gpu_cost = energy_cost = power_total = grams = 0.0
    by_region: dict[str, float] = {}
    usd_by_region: dict[str, float] = {}
    watts_by_region: dict[str, float] = {}
    capacity_by_region: dict[str, float] = {}
    measured = bool(problem.carbon_views)
    for option, count, power in priced:
        price = problem.price_views[option.cluster].now_usd_per_kwh
        gpus_here = count * option.gpus * option.gpu_hour_usd
        energy_here = energy_usd_per_hour(count * power, option.pue, price)
        gpu_cost += gpus_here
        energy_cost += energy_here
        power_total += count * power
        region = option.region
        usd_by_region[region] = usd_by_region.get(region, 0.0) + gpus_here + energy_here
        watts_by_region[region] = watts_by_region.get(region, 0.0) + count * power
        capacity_by_region[region] = capacity_by_region.get(region, 0.0) + option.capacity_rps * count
        carbon = problem.carbon_views.get(option.cluster)
        # Found in review: a feed that never answered has a view (the fallback, measured=False) and was
        # counted as measured, so 820 g/kWh figures were reported as real ones.
        measured = measured and carbon is not None and carbon.measured
        here = grams_co2_per_hour(count * power, option.pue, _intensity_now(problem, option.cluster, settings))
        grams += here
        by_region[option.region] = by_region.get(option.region, 0.0) + here
    total = gpu_cost + energy_cost
    served_tokens = None if served_rps is None else min(served_rps, capacity_rps) * workload.mean_output_tokens
    tokens_by_region = (
        {}
        if served_tokens is None or capacity_rps <= 0
        else {r: served_tokens * capacity / capacity_rps for r, capacity in capacity_by_region.items()}
    )
    per_million = usd_per_million_tokens(total, served_tokens)
    joules = joules_per_token(power_total, served_tokens)
    energy_share = None if total == 0 else energy_cost / total
    carbon_price = deployment.deployment.requirements.carbon_price_usd_per_tonne
    return CostPrediction(
        total,
        gpu_cost,
        energy_cost,
        per_million,
        joules,
        energy_share,
        power_total,
        co2_grams_per_hour=grams if measured else None,
        co2_grams_per_million_tokens=grams_per_million_tokens(grams, served_tokens) if measured else None,
        carbon_usd_per_hour=carbon_usd_per_hour(grams, carbon_price) if carbon_price > 0 else 0.0,
        co2_grams_per_hour_by_region=by_region if measured else {},
        usd_per_hour_by_region=usd_by_region,
        power_watts_by_region=watts_by_region,
        output_tokens_per_s_by_region=tokens_by_region,
        served_tokens_per_s=served_tokens,
        unpriced=_unpriced(problem, deployment, counts, away, outside),
    )


def _unpriced(
    problem: Problem,
    deployment: DeploymentProblem,
    counts: list[int],
    away: Sequence[tuple[Option, int, float]],
    outside: Sequence[tuple[str, str, int, int]],
) -> tuple[tuple[str, str, int], ...]:
    """CostPrediction.unpriced: the replicas the plan keeps that `_cost_prediction` has no option to price: those
    kept in unreachable clusters (`_kept_away`'s rule) without an option there (DeploymentProblem.away) or on a GPU
    type dropped from spec.gpuTypes (which `unreachable` does not list), a Frozen deployment's in reachable clusters
    where it has none (no offering, no GPUProfile, the SLO out of reach), and the strays kept `outside` the plan.
    Placements in clusters the hub does not list are noted apart (not counted). Each pool once: none is both priced
    and counted here. Sorted by cluster and GPU type, the same every cycle whatever order the clusters and
    placements came in (found in review: it followed the snapshot's order); the explanation's lines sort what they
    name themselves (_listed)."""
    priced = {o.key for o in deployment.options} | {o.key for o, _, _ in away}
    found: dict[tuple[str, str], int] = {}
    kept_away = deployment.frozen or not any(counts)  # `_kept_away`'s rule: nothing reachable replaces them
    if deployment.unreachable and kept_away:
        for cluster, gpu_type, desired in deployment.unreachable:
            if (cluster, gpu_type) not in priced:
                found[(cluster, gpu_type)] = found.get((cluster, gpu_type), 0) + desired
    # Frozen keeps every replica (_targets). Those of `unreachable` were counted above; in an unreachable cluster the
    # rest are on a type dropped from gpuTypes, kept by the same rule as `unreachable`'s in any mode: found in
    # review, counted nowhere (Frozen, then Auto and Advisory with nothing reachable to replace them: "nothing;
    # 0.000 USD/h" while they ran). Where the plan replaces them they are left out, as `unreachable`'s are.
    if deployment.frozen:
        listed = {(c, g) for c, g, _ in deployment.unreachable}
        for placed in deployment.deployment.placements:
            key = (placed.cluster, placed.gpu_type)
            if placed.desired > 0 and placed.cluster in problem.clusters and key not in priced and key not in listed:
                found[key] = found.get(key, 0) + placed.desired
    elif kept_away:  # Auto and Advisory: those DeploymentPlan.held_away names, one rule for both
        for key, desired in _held_away(problem, deployment).items():
            if key not in priced:
                found[key] = found.get(key, 0) + desired
    for cluster, gpu_type, desired, _ in outside:
        found[(cluster, gpu_type)] = found.get((cluster, gpu_type), 0) + desired
    return tuple(sorted((c, g, n) for (c, g), n in found.items()))


def _kept_away(
    deployment: DeploymentProblem, counts: list[int], capacity_rps: float, settings: PlannerSettings
) -> list[tuple[Option, int, float]]:
    """(option, replicas, watts per replica) of the replicas the plan keeps in clusters it cannot reach, priced
    (DeploymentProblem.away): all of them in mode Frozen, or where the plan has no reachable replica to replace
    them (as status counts them desired: service.status._keeps_stranded). They serve what the reachable replicas
    (`capacity_rps`) leave of the demand, idle beyond it (all of it with demand unknown: at capacity, as the
    reachable ones). Found in review: they were priced at 0, status.cost read 0 USD/h while they ran."""
    if not deployment.away or not (deployment.frozen or not any(counts)):
        return []
    kept = [(o, o.current) for o in deployment.away if o.current > 0]
    served = deployment.workload.requests_per_second
    if served is None:
        return [(o, n, o.power_at_capacity_watts) for o, n in kept]
    away_rps = sum(o.capacity_rps * n for o, n in kept)
    share = min(1.0, max(0.0, served - capacity_rps) / away_rps) if away_rps > 0 else 0.0
    workload = deployment.workload
    watts = _powers_at_rates(
        [o.model for o, _ in kept],
        [o.capacity_rps * share for o, _ in kept],
        [workload.mean_prompt_tokens] * len(kept),
        [workload.mean_output_tokens] * len(kept),
        settings,
    )
    return [(o, n, w) for (o, n), w in zip(kept, watts, strict=True)]


def _label(option: Option) -> str:
    return f"{option.cluster}/{option.gpu_type}"


_POOLS_NAMED = 5
"""Pools a list of them names before it counts the rest: _some_pools, the one cap of every such list."""


def _some_pools(pools: Iterable[tuple[Key, str]]) -> str:
    """(pool, its words) as the explanation lists pools: by cluster, then GPU type, the first `_POOLS_NAMED`, then
    ", and N more pool(s)", the count covering the rest, so the words stay short and the same from cycle to cycle
    whatever order the snapshot listed them in. Every list of pools a cause, a binding constraint or the cost names
    goes through it: the pools a shortfall's cause prices out (_priced_out) or a roll-back holds (_short_because),
    the replicas the cost leaves out and those in unreachable clusters (_listed). The summary's placement is not
    such a list: it is the plan, listed whole. Found in review: the first named 3 in the snapshot's order, then
    " and N more", the second 5, then ", and N more pool(s)"; the second, the unreachable and the held had named
    every pool in the snapshot's order (the unreachable ones in binding_constraints, shown in status), their words
    changing between cycles that changed nothing."""
    ordered = sorted(pools, key=operator.itemgetter(0))
    shown = ", ".join(words for _, words in ordered[:_POOLS_NAMED])
    more = len(ordered) - _POOLS_NAMED
    return shown + (f", and {more} more pool(s)" if more > 0 else "")


@dataclass(frozen=True)
class _Cover:
    """One option alone covering the deployment's need: replicas, and GPU and energy cost per hour (and the
    internal carbon cost per hour at the intensity now, for a deployment with a carbon price)."""

    replicas: int
    gpu_usd: float
    energy_usd: float
    carbon_usd: float = 0.0

    @property
    def usd_per_hour(self) -> float:
        return self.gpu_usd + self.energy_usd


_ALTERNATIVE_SHORTLIST = 4
"""Unused options valued at the observed load for the best alternative: the cheapest at full load. Load
moves energy only, a small share of a replica's cost beside its GPU-hours, so the cheapest at load is
among them."""


def _cover_replicas(deployment: DeploymentProblem, option: Option) -> int:
    """Replicas of `option` alone that cover the deployment's need (at least one, and minReplicas)."""
    unit = deployment.unit_capacity(option)
    need = math.ceil(deployment.coverage_target / unit - 1e-9) if unit > 0 else 1
    return max(1, deployment.min_replicas, need)


def _candidates(
    problem: Problem, deployment: DeploymentProblem, counts: Sequence[int]
) -> tuple[list[int], int, dict[int, int]]:
    """The options an alternative may be (unused, and able to hold the whole cover: the pool has the GPUs and
    the option's bound, maxReplicas included, admits that many; found in review, an empty pool was offered,
    then a pool of 1 GPU "for the same demand" that needed 2 replicas, and 16 replicas against maxReplicas 5),
    the plan's main option (-1: the plan places nothing, so no alternative), and the cover of each of the
    shortlist (_cover_replicas, worked out once here for _all_covers)."""
    options = deployment.options
    used = [j for j, n in enumerate(counts) if n > 0]
    if not used:
        return [], -1, {}
    inventory = problem.inventory
    # (cost at full load, index, cover) of each candidate: sorted, the cheapest at full load first, ties by index.
    # Valued at the observed load only for the few cheapest at full load: at 1,000 deployments all of
    # them (22,000 options) took 0.1-0.2 CPU-s, against 0.3 for the whole plan's assembly.
    ranked = []
    for j, n in enumerate(counts):
        if n == 0:
            option = options[j]
            cover = _cover_replicas(deployment, option)
            if cover <= option.upper and inventory.get(option.key, 0) >= cover * option.gpus:
                ranked.append((cover * option.hourly_cost_now_usd, j, cover))
    shortlist = sorted(ranked)[:_ALTERNATIVE_SHORTLIST]
    unit_of = deployment.unit_capacity
    main = max(used, key=lambda k: (counts[k] * unit_of(options[k]), -options[k].hourly_usd))
    return sorted(j for _, j, _ in shortlist), main, {j: cover for _, j, cover in shortlist}


@dataclass(frozen=True)
class _Alternatives:
    """A deployment's alternative candidates (_candidates, found once) and each one's and the main option's cover."""

    shortlist: list[int] = field(default_factory=list)
    main: int = -1
    covers: dict[int, _Cover] = field(default_factory=dict)


def _all_covers(problem: Problem, solution: Solution, settings: PlannerSettings) -> list[_Alternatives]:
    """Per deployment, each alternative candidate and the main option alone covering its need, at the price
    now and with power at the observed load shared over its replicas: the basis of the plan's own cost
    (_cost_prediction), so that the alternative and "why it won" compare with it, across GPU types too.
    Found in review: they were valued at full-load power against the plan at its load, so a twin cluster
    looked dearer. One vectorised power pass for the whole fleet, as _load_powers."""
    keys: list[tuple[int, int, int]] = []
    models: list[PerformanceModel] = []
    rates: list[float] = []
    prompts: list[float] = []
    outputs: list[float] = []
    found: list[_Alternatives] = []
    for deployment, counts in zip(problem.deployments, solution.counts, strict=True):
        if deployment.frozen:
            counts = tuple(o.current for o in deployment.options)
        unused, main, covers = _candidates(problem, deployment, counts)
        found.append(_Alternatives(unused, main))
        if not unused:
            continue
        served = deployment.workload.requests_per_second
        for k in [*unused, main]:
            option = deployment.options[k]
            n = covers[k] if k in covers else _cover_replicas(deployment, option)
            capacity = option.capacity_rps
            keys.append((deployment.index, k, n))
            models.append(option.model)
            rates.append(capacity if served is None or capacity <= 0 else capacity * min(1.0, served / (n * capacity)))
            prompts.append(deployment.workload.mean_prompt_tokens)
            outputs.append(deployment.workload.mean_output_tokens)
    for (d, k, n), power in zip(keys, _powers_at_rates(models, rates, prompts, outputs, settings), strict=True):
        deployment = problem.deployments[d]
        option = deployment.options[k]
        watts = option.power_at_capacity_watts if deployment.workload.requests_per_second is None else power
        price = problem.price_views[option.cluster].now_usd_per_kwh
        found[d].covers[k] = _Cover(
            n,
            n * option.gpus * option.gpu_hour_usd,
            energy_usd_per_hour(n * watts, option.pue, price),
            _cover_carbon(problem, deployment, option, n * watts, settings),
        )
    return found


def _cover_carbon(
    problem: Problem, deployment: DeploymentProblem, option: Option, watts: float, settings: PlannerSettings
) -> float:
    """The internal carbon cost per hour of `watts` at `option`'s cluster, at the intensity now (the fallback
    where it has no feed, as the planner assumes); 0 without a carbon price."""
    usd_per_tonne = deployment.deployment.requirements.carbon_price_usd_per_tonne
    if not deployment.deployment.requirements.uses_carbon or usd_per_tonne <= 0:
        return 0.0
    intensity = _intensity_now(problem, option.cluster, settings)
    return carbon_usd_per_hour(grams_co2_per_hour(watts, option.pue, intensity), usd_per_tonne)


def _intensity_now(problem: Problem, cluster: str, settings: PlannerSettings) -> float:
    """gCO2/kWh at `cluster` now: its carbon view's, or the fallback the planner assumes where it has none."""
    view = problem.carbon_views.get(cluster)
    return view.now_g_per_kwh if view is not None else settings.missing_carbon_g_per_kwh


def _why_won(
    chosen: Option,
    other: Option,
    covers: Mapping[int, _Cover],
    chosen_at: int,
    other_at: int,
    full: bool,
    carbon_price: float = 0.0,
) -> str:
    """Which part of the cost (GPU-hours, energy, the carbon price or a carbon limit) decided between the
    plan's main option and `other`; `full`: `other` has no free GPUs (then that, not its price, is why where
    it is not cheaper). `carbon_price`: the deployment's, USD/t (0: no carbon figures)."""
    a, b = covers[chosen_at], covers[other_at]
    gpu_gain, energy_gain = b.gpu_usd - a.gpu_usd, b.energy_usd - a.energy_usd
    tie = 1e-9
    undecided = (
        "nothing at today's price (its GPUs are all taken)"
        if full
        else "nothing at today's price (the window's prices or a start cost decide)"
    )
    if gpu_gain > tie and energy_gain > tie:
        what = "both GPU-hours and energy"
    elif gpu_gain <= tie and energy_gain <= tie:
        # Equal (twin clusters) or dearer on both: not a win on either (found in review: "both" for a tie).
        what = undecided
    elif abs(gpu_gain) >= abs(energy_gain):
        what = "GPU-hours" if gpu_gain > 0 else undecided
    else:
        what = "energy" if energy_gain > 0 else undecided
    if what == undecided and not full:
        # Found in review: a move to a cleaner grid made for the carbon price or a carbon limit read "on
        # nothing at today's price (the window's prices or a start cost decide)"; these compared money only.
        what = _carbon_won(chosen, other, a, b, carbon_price) or undecided
    head = f"{_label(chosen)} wins over {_label(other)} on {what}: covering the demand there would take "
    if carbon_price > 0:
        return (
            f"{head}{b.replicas} replica(s) at {_fixed(b.gpu_usd, 3)} USD/h of GPU-hours, {_fixed(b.energy_usd, 3)} "
            f"USD/h of energy and {_fixed(b.carbon_usd, 3)} USD/h of carbon at {carbon_price:g} USD/t, against "
            f"{_fixed(a.gpu_usd, 3)}, {_fixed(a.energy_usd, 3)} and {_fixed(a.carbon_usd, 3)} here"
        )
    return (
        f"{head}{b.replicas} replica(s) at {_fixed(b.gpu_usd, 3)} USD/h of GPU-hours and {_fixed(b.energy_usd, 3)} "
        f"USD/h of energy, against {_fixed(a.gpu_usd, 3)} and {_fixed(a.energy_usd, 3)} here"
    )


def _carbon_won(chosen: Option, other: Option, a: _Cover, b: _Cover, carbon_price: float) -> str | None:
    """The carbon term that decided where money did not: a limit `other` breaks now and `chosen` does not
    (with its figures), or the carbon price where the cover there costs more in money and carbon together."""
    if other.carbon_limit is not None and chosen.carbon_limit is None:
        return f"the carbon limit ({_label(other)} breaks it now: {other.carbon_limit})"
    money_gain = b.usd_per_hour - a.usd_per_hour
    if carbon_price > 0 and b.carbon_usd - a.carbon_usd > 1e-9 and money_gain + b.carbon_usd - a.carbon_usd > 0:
        return (
            f"the carbon price ({carbon_price:g} USD/t: {_fixed(b.carbon_usd, 3)} USD/h of carbon there against "
            f"{_fixed(a.carbon_usd, 3)} here)"
        )
    return None


_without_penalties = functools.lru_cache(maxsize=4)(PlannerSettings.without_penalties)
"""PlannerSettings.without_penalties, made once per settings rather than once per deployment explained."""


def _explain(
    problem: Problem,
    deployment: DeploymentProblem,
    counts: list[int],
    free: dict[Key, int],
    settings: PlannerSettings,
    cost: CostPrediction,
    infeasible_reason: str | None,
    alternatives: _Alternatives,
    ruled_out: int = 0,
    exhausted: bool = False,
    band_held: bool = False,
) -> Explanation:
    """Why the plan is what it is. `ruled_out`: replicas running where the spec no longer lets the
    deployment run that the plan replaces (DeploymentProblem.strays): no option, so not in `counts`.
    `band_held`: the scale-down band added replicas to the search's plan (Solution.band_held)."""
    used = [(o, n) for o, n in zip(deployment.options, counts, strict=True) if n > 0]
    current, started, stopped = _from_steady(deployment, counts)
    details = _opening_details(deployment, infeasible_reason)
    uses_carbon = deployment.deployment.requirements.uses_carbon
    chosen_objective = deployment_objective(deployment, counts, settings)
    # A plan that keeps the placement (most of a fleet's) has the same objective: not summed twice.
    keep_objective = chosen_objective if counts == current else deployment_objective(deployment, current, settings)
    # Against a placement that leaves demand unserved or breaks minReplicas/minRegions, a "saving"
    # would only count the penalty (a replica added for minReplicas "saved" 999,998 USD/h, found in
    # review); and the plan's own penalties (a stale cluster's changes, a shortfall) are not money.
    money = _without_penalties(settings)
    current_is_plain = not _has_penalty(deployment, current, keep_objective) or (
        abs(keep_objective - deployment_objective(deployment, current, money)) < 1e-6
    )
    # The objective is already per hour (window mean, starts amortised over the window).
    saving = None
    # Strays it stops have no option, so no cost here: no saving (review: ten stopped "saved 0.000 USD/h").
    # Nor for an infeasible plan: what it stops leaves demand unserved (review: maxReplicas cut "saved" 8.1 USD/h).
    if deployment.options and current_is_plain and not ruled_out and infeasible_reason is None:
        chosen_money = (
            deployment_objective(deployment, counts, money)
            if _has_penalty(deployment, counts, chosen_objective)
            else chosen_objective
        )
        saving = keep_objective - chosen_money
    if saving is not None and uses_carbon:
        # The internal carbon price and the carbon limit's penalty steer the plan but are no money: the saving
        # is in money (found in review: a LowerCarbon move dearer in money "saved" its carbon cost). Only
        # deployments that use carbon have options with a carbon view (problem.py).
        saving = _money_spent(deployment, current, money) - _money_spent(deployment, counts, money)
    binding = _binding_constraints(problem, deployment, counts, used, started, stopped, free, settings, band_held)
    alternative, alt_hourly = _alternative(deployment, counts, free, details, binding, alternatives, exhausted, cost)
    gaps = _current_gaps(deployment, problem.clusters)
    reason = _reason(deployment, started, stopped, ruled_out, infeasible_reason, gaps)
    if reason == "CheaperPlacement":
        reason = _pure_move_reason([(deployment, counts, current)], free, money)
    details.extend(_gap_details(gaps, reason, sum(current)))
    if started and stopped and reason in ("ScaleUp", "ScaleDown"):
        details.append(f"also moves {min(started, stopped)} replica(s) to {_move_target(deployment, counts, binding)}")
    placed = ", ".join(f"{_label(o)} x{n}" for o, n in used) or "nothing"
    summary = f"{reason}: {placed}; {_fixed(cost.usd_per_hour, 3)} USD/h"
    if cost.usd_per_million_tokens is not None:
        summary += f", {_fixed(cost.usd_per_million_tokens, 4)} USD/Mtok"
    summary += f" (GPU-hours {_fixed(cost.gpu_usd_per_hour, 3)}, energy {_fixed(cost.energy_usd_per_hour, 3)})"
    if saving is not None and (started or stopped or ruled_out):
        if saving < 0:
            # A scale-up for the SLO, leaving a region for a carbon limit, or giving a pool to another
            # deployment costs money: said as such, never as a negative saving (found in review).
            summary += f"; costs {-saving:.3f} USD/h more than keeping the current placement"
        else:
            summary += f"; saves {saving:.3f} USD/h against keeping the current placement"
    if alternative is not None and alt_hourly is not None:
        summary += f"; best alternative {alternative} at {_fixed(alt_hourly, 3)} USD/h for the same demand"
    if uses_carbon:
        summary += _carbon_summary(deployment, cost)
    return Explanation(
        reason=reason,
        summary=summary[:1024],
        details=tuple(details),
        binding_constraints=tuple(binding),
        alternative=alternative,
        alternative_usd_per_hour=alt_hourly,
        saving_usd_per_hour_vs_current=saving,
    )


def _opening_details(deployment: DeploymentProblem, infeasible_reason: str | None) -> list[str]:
    """The details an explanation opens with: why the plan is infeasible, in the words of its infeasible_reason
    (Ready's message), then the problem's notes that reason does not already say (that of a deployment with
    nowhere to run holds them all, and its minRegions clause says what problem.py's note on minRegions above
    the eligible regions says: found in review, said twice). Found in review: an Infeasible decision's
    explanation was empty, maxReplicas cut below the demand or the only cluster unreachable, while Ready's
    message said why."""
    if infeasible_reason is None:
        return list(deployment.notes)
    said = {_unmet_spread_note(deployment)} if deployment.min_regions < deployment.user_min_regions else set()
    return [infeasible_reason, *(n for n in deployment.notes if n not in infeasible_reason and n not in said)]


def _regions_exceeded(deployment: DeploymentProblem) -> str:
    """The infeasible reason's clause for minRegions above the regions the deployment may run in
    (DeploymentProblem.min_regions: lowered to their number, build_problem)."""
    return f"minRegions {deployment.user_min_regions} exceeds the {deployment.min_regions} eligible region(s)"


def _unmet_spread_note(deployment: DeploymentProblem) -> str:
    """The note build_problem adds where minRegions is above the eligible regions (and lowers min_regions to
    their number): the same fact as _regions_exceeded, so the explanation leaves it out beside that clause."""
    return (
        f"minRegions {deployment.user_min_regions} cannot be met: only {deployment.min_regions} eligible region(s) "
        "can run it"
    )


def _from_steady(deployment: DeploymentProblem, counts: list[int]) -> tuple[list[int], int, int]:
    """The placement a decision is read against, and the replicas `counts` starts and stops from it: the one a
    move in flight leaves (DeploymentProblem.steady), not the one with its surge replica, else the current one."""
    current = list(deployment.steady or deployment.columns.current)
    started, stopped = moves(deployment, counts, current)
    return current, started, stopped


def _pure_move_reason(
    parts: Sequence[tuple[DeploymentProblem, list[int], list[int]]],
    free: Mapping[Key, int],
    money: PlannerSettings,
) -> str:
    """The reason of a move that starts as many replicas as it stops, off a placement that covers the demand and
    meets minReplicas and minRegions, read off what it spends and emits against the running placement: CheaperPlacement
    where it spends less money (window mean, starts included), LowerCarbon where it does not but its carbon terms
    (the carbon price's cost, a carbon limit's penalty) fall, MakesRoom where neither holds and it leaves a pool
    the fleet's plan fills (or, failing that, where it costs this deployment more: the fleet's plan is then what
    it serves). `parts`: (problem, counts, current) of the deployment, or of each of its class groups. Found in
    review: LowerCarbon for any move of a carbon deployment not cheaper (its emissions 25 times up), and
    CheaperPlacement for a move to capacity five times dearer."""
    spent = math.fsum(_money_spent(d, counts, money) for d, counts, _ in parts)
    spent_now = math.fsum(_money_spent(d, current, money) for d, _, current in parts)
    tie = 1e-9 * max(1.0, abs(spent_now))
    if spent < spent_now - tie:
        return "CheaperPlacement"
    if parts[0][0].deployment.requirements.uses_carbon:
        carbon = math.fsum(_carbon_terms(d, counts) for d, counts, _ in parts)
        if carbon < math.fsum(_carbon_terms(d, current) for d, _, current in parts) - 1e-9:
            return "LowerCarbon"
    left = any(
        n < o.current and free.get(o.key, 0) < o.gpus
        for d, counts, _ in parts
        for o, n in zip(d.options, counts, strict=True)
    )
    if left or spent > spent_now + tie:
        return "MakesRoom"
    return "CheaperPlacement"


def _move_target(deployment: DeploymentProblem, counts: list[int], binding: list[str]) -> str:
    """What the replicas a scale also moves move to: capacity within the carbon limits, cheaper capacity,
    or (found in review: "cheaper" for a move into a dearer cluster) where GPUs are free."""
    pairs = list(zip(deployment.options, counts, strict=True))
    if any(o.carbon_limit is not None and n < o.current for o, n in pairs):
        return "capacity within the carbon limits"
    started = [o.hourly_usd / deployment.unit_capacity(o) for o, n in pairs if n > o.current]
    stopped = [o.hourly_usd / deployment.unit_capacity(o) for o, n in pairs if n < o.current]
    if started and stopped and max(started) < min(stopped):
        return "cheaper capacity"
    if any(b.startswith("inventory:") for b in binding):
        return "capacity with free GPUs (the cheaper pool is taken)"
    return "other capacity"


def _fixed(value: float, digits: int) -> str:
    """`value` with `digits` decimals, never "-0.000": a cost that rounds to zero from below (a negative
    price times a tiny draw) is zero (review)."""
    return f"{round(value, digits) + 0.0:.{digits}f}"


def _money_spent(deployment: DeploymentProblem, counts: list[int], money: PlannerSettings) -> float:
    """USD/h `counts` spends (window mean, starts amortised): the objective without penalties (`money`), less
    the internal carbon cost and carbon-limit penalty in the options' cost (and in their starts' where a carbon
    feed is stale)."""
    return deployment_objective(deployment, counts, money) - _carbon_terms(deployment, counts)


def _carbon_terms(deployment: DeploymentProblem, counts: Sequence[int]) -> float:
    """USD/h of the carbon terms in `counts`' objective: the internal carbon cost, the carbon-limit penalty, and
    the carbon held on starts where a feed is stale (0 for a deployment that does not use carbon)."""
    return sum(
        (o.carbon_usd_per_hour + o.carbon_penalty_usd) * k + max(0, k - o.current) * o.carbon_start_per_hour_usd
        for o, k in zip(deployment.options, counts, strict=True)
    )


def _has_penalty(deployment: DeploymentProblem, counts: Sequence[int], value: float) -> bool:
    """Whether deployment_objective (`value`, its result for `counts`) may hold a penalty: a shortfall of
    the coverage it sums, minReplicas or minRegions not met, a stale cluster's count changed. Change
    both together."""
    if not math.isfinite(value):
        return True
    if deployment.frozen:
        return False
    columns = deployment.columns
    covered = 0.0
    replicas = 0
    regions: set[str] = set()
    for j, n in enumerate(counts):
        if columns.stale[j] and n != columns.current[j]:
            return True
        if n > 0:
            covered += n * columns.unit[j]
            replicas += n
            regions.add(columns.region[j])
    if deployment.coverage_target > 0 and max(0.0, 1.0 - covered / deployment.coverage_target) > 0:
        return True
    return replicas < deployment.min_replicas or (deployment.min_regions >= 2 and len(regions) < deployment.min_regions)


def _binding_constraints(
    problem: Problem,
    deployment: DeploymentProblem,
    counts: list[int],
    used: list[tuple[Option, int]],
    started: int,
    stopped: int,
    free: Mapping[Key, int],
    settings: PlannerSettings,
    band_held: bool = False,
) -> list[str]:
    """The modes, prices, reachability and limits that shaped the plan, in the order users read them."""
    options = deployment.options
    binding: list[str] = []
    if deployment.frozen:
        binding.append("mode Frozen: placement kept as is")
    if deployment.advisory:
        binding.append("mode Advisory: plan reported, nothing changed")
    price_stale = sorted({o.cluster for o, stale in zip(options, deployment.columns.stale, strict=True) if stale})
    # A stale carbon feed holds the carbon terms only (problem._option): price-driven changes go on there.
    carbon_stale = sorted({o.cluster for o in options if o.carbon_stale})
    if price_stale:
        binding.append(f"price stale in {', '.join(price_stale)}: no price-driven change there")
    if carbon_stale:
        binding.append(
            f"carbon intensity stale in {', '.join(carbon_stale)}: no carbon-driven change there "
            "(price-driven changes go on)"
        )
    if not deployment.frozen:
        binding.extend(_carbon_limits(deployment, counts, started, stopped))
    if deployment.unreachable:
        binding.append(f"unreachable: {_listed(deployment.unreachable)} not counted as capacity")
    total = sum(counts)
    covered = sum(n * deployment.unit_capacity(o) for o, n in used)
    # maxReplicas binds only where another replica would serve demand left unserved and a pool has room
    # for one (found in review: named whenever the plan had that many, minReplicas = maxReplicas with
    # demand for one included, and where inventory was what stopped it).
    if (
        total >= deployment.user_max_replicas
        and not deployment.frozen
        and covered < deployment.coverage_target - 1e-9
        and any(free.get(o.key, 0) >= o.gpus for o in options)
    ):
        binding.append(f"maxReplicas {deployment.user_max_replicas} reached")
    weakest_used = min((deployment.unit_capacity(o) for o, _ in used), default=0.0)
    # Named only where planner.band added replicas to the search's plan: judged from the counts alone, it
    # was also named where minRegions or a mix of GPU types left a replica's worth above the demand (review).
    if band_held:
        binding.append("scale-down band: a replica kept that demand alone no longer needs")
    # minReplicas binds only when the plan has exactly that many and demand alone would be covered with
    # fewer; below it (nothing placed, inventory short) it is unmet, not binding (found in review).
    if (
        deployment.min_replicas
        and total == deployment.min_replicas
        and covered - weakest_used >= deployment.coverage_target - 1e-9
    ):
        binding.append(f"minReplicas {deployment.min_replicas}")
    # minRegions likewise: exactly that many regions, and demand covered without the smallest one's.
    by_region: dict[str, float] = {}
    for o, n in used:
        by_region[o.region] = by_region.get(o.region, 0.0) + n * deployment.unit_capacity(o)
    if (
        deployment.min_regions >= 2
        and len(by_region) == deployment.min_regions
        and covered - min(by_region.values()) >= deployment.coverage_target - 1e-9
    ):
        binding.append(f"minRegions {deployment.min_regions}")
    if _move_limit_binds(deployment, counts, started, stopped, free, settings):
        binding.append(f"maxConcurrentMoves {deployment.max_moves}")
    return binding


def _move_limit_binds(
    deployment: DeploymentProblem,
    counts: list[int],
    started: int,
    stopped: int,
    free: Mapping[Key, int],
    settings: PlannerSettings,
) -> bool:
    """Whether maxConcurrentMoves kept a move the plan wanted: at the limit, a replica that ran before still
    runs where it ran, so there was more to move (with none left there, there was nothing more: found in
    review, a plan moving its only replica named it); or, short, below minReplicas or in fewer regions than
    minRegions, a pool has room where one more replica would lower the objective but be a move too many, which
    the shortfall's or the spread's cause names ("maxConcurrentMoves 1 binds: X has room", _priced_out, _spread)
    by the same test, _kept_back. Found in review: that cause was given with binding_constraints empty where
    nothing stayed (both replicas in a stopped for one started in b), 12 of 13 such causes over random
    snapshots. `started`/`stopped`: from the steady placement (_from_steady); _kept_back counts from the current
    one, as the search does."""
    if (
        min(started, stopped) >= deployment.max_moves
        and started
        and stopped
        and any(min(n, o.current) > 0 for o, n in zip(deployment.options, counts, strict=True))  # one stayed
    ):
        return True
    return bool(_kept_back(deployment, counts, free, settings))


def _carbon_avoided(cluster: str) -> str:
    return f"carbon limit: {cluster} avoided while above it"


_CARBON_BROKEN = "carbon limit broken in "


def _carbon_limits(deployment: DeploymentProblem, counts: list[int], started: int, stopped: int) -> list[str]:
    """Per cluster where an option breaks a carbon limit now: avoided where the plan leaves it empty, broken
    (and why) where it places replicas there. Found in review: "avoided" also where the plan placed them there
    (the limit is a penalty, paid when no capacity within it serves the demand)."""
    limited = [(o, n) for o, n in zip(deployment.options, counts, strict=True) if o.carbon_limit is not None]
    found = []
    for cluster in sorted({o.cluster for o, _ in limited}):
        here = [(o, n) for o, n in limited if o.cluster == cluster and n > 0]
        if not here:
            found.append(_carbon_avoided(cluster))
        elif any(n < o.current for o, n in here) and min(started, stopped) >= deployment.max_moves:
            found.append(
                f"{_CARBON_BROKEN}{cluster}: its replicas leave at most maxConcurrentMoves "
                f"{deployment.max_moves} at a time"
            )
        else:
            found.append(f"{_CARBON_BROKEN}{cluster}: no capacity within the limit serves the demand")
    return found


def _alternative(
    deployment: DeploymentProblem,
    counts: list[int],
    free: dict[Key, int],
    details: list[str],
    binding: list[str],
    alternatives: _Alternatives,
    exhausted: bool,
    cost: CostPrediction,
) -> tuple[str | None, float | None]:
    """The best option not used: the one that would cover the demand most cheaply on its own (replicas
    needed x cost per hour now at the observed load, comparable across GPU types and with the plan's own
    cost), and why the plan did not move there (appended to details and binding). None where the plan
    places nothing (no demand, or nothing fits: no option to compare), and never a pool too small for one
    replica (found in review: an empty pool was offered as the best alternative). `cost`: the plan's own
    (_cost_prediction)."""
    options = deployment.options
    unused, main, covers = alternatives.shortlist, alternatives.main, alternatives.covers
    if not unused:
        return None, None
    unit = deployment.unit_capacity
    used = [j for j, n in enumerate(counts) if n > 0]
    # The first of equal costs, in option order.
    j = min(unused, key=lambda k: (covers[k].usd_per_hour, k))
    option = options[j]
    alternative = _label(option)
    dearest = max(used, key=lambda k: options[k].hourly_usd / unit(options[k]))
    full = free.get(option.key, 0) < option.gpus
    gain = options[dearest].hourly_usd - option.hourly_usd
    if option.hourly_usd / unit(option) < options[dearest].hourly_usd / unit(options[dearest]):
        if full:
            binding.append(f"inventory: {alternative} has no free GPUs")
            if option.current:  # it ran there: the fleet's plan gave the pool to another deployment
                details.append(f"moved out of cheaper {alternative}: its GPUs go to another deployment")
            else:
                details.append(f"not moved to cheaper {alternative}: its GPUs are all taken")
        elif option.stale:
            details.append(f"not moved to {alternative}: its price is stale")
        elif option.carbon_stale and option.carbon_start_per_hour_usd >= gain > 0:
            # Where the held carbon outweighs the saving (review: 0.0000 USD/h was blamed where a start cost decided).
            details.append(
                f"not moved to {alternative}: its carbon intensity is stale, so a replica started there is charged "
                f"{option.carbon_start_per_hour_usd:.4f} USD/h more carbon (the dirtiest of its options, or a limit "
                "its last known intensity breaks)"
            )
        elif options[dearest].stale:
            # Found in review: blamed on the start cost, where a stale price where it runs keeps it there.
            details.append(
                f"not moved to {alternative}: the price in {options[dearest].cluster} is stale, and a stale price "
                "moves no replica"
            )
        elif gain <= 0:
            # Cheaper per unit of capacity, dearer per replica: the demand does not need what it adds.
            details.append(
                f"not moved to {alternative}: cheaper per unit of capacity, but a replica there costs "
                f"{-gain:.4f} USD/h more and the demand does not need its extra capacity"
            )
        elif covers[j].replicas > covers[main].replicas and covers[j].usd_per_hour >= covers[main].usd_per_hour:
            # Cheaper per unit of capacity, but whole replicas make it dearer here (found in review: blamed on
            # the start cost, for a deployment with nothing to move).
            details.append(
                f"not placed on {alternative}: cheaper per unit of capacity, but the demand needs "
                f"{covers[j].replicas} replica(s) there against {covers[main].replicas} on {_label(options[main])}"
            )
        else:
            details.append(_payback_note(deployment, counts, alternatives, j, dearest, exhausted, cost.usd_per_hour))
    if not deployment.frozen:
        carbon_price = deployment.deployment.requirements.carbon_price_usd_per_tonne
        details.append(_why_won(options[main], option, covers, main, j, full, carbon_price))
    return alternative, covers[j].usd_per_hour


def _payback_note(
    deployment: DeploymentProblem,
    counts: list[int],
    alternatives: _Alternatives,
    j: int,
    dearest: int,
    exhausted: bool,
    plan_usd: float,
) -> str:
    """Why the plan is not on option j, cheaper per unit of capacity and per replica than the plan's `dearest`
    option (what _alternative weighed it against), in the figures of the whole cover there (_all_covers)
    against the plan's own cost per hour (`plan_usd`, _cost_prediction, on the same basis: price now, power at
    the observed load): what it would save per hour at today's price, and what starting its replicas costs.
    Found in review: "saves 4.3252 USD/h per replica, but a start costs 0.1355 USD" set 1 H100 against 1 A100
    where the demand needed 6 A100, so the saving and the start cost said of different things; and the cover
    there was set against the plan's main option alone, where a dearer one beside it was what j was weighed
    against (a plan of 2 H100 and 1 A100: "takes 3 replica(s) at 7.6423 USD/h against 6.1423 USD/h on" the
    H100, 3 of them where its pool had 2, with the plan at 6.724 USD/h)."""
    option = deployment.options[j]
    there = alternatives.covers[j]
    head = f"not moved to {_label(option)}"
    gain = plan_usd - there.usd_per_hour
    if gain <= 0:
        return (
            f"{head}: cheaper per unit of capacity and per replica than {_label(deployment.options[dearest])}, but "
            f"covering the demand there takes {there.replicas} replica(s) at {_fixed(there.usd_per_hour, 4)} USD/h "
            f"against {_fixed(plan_usd, 4)} USD/h for the plan's placement"
        )
    starts = max(0, there.replicas - option.current)
    start_usd = starts * option.start_cost_usd
    cover = f"covering the demand there ({there.replicas} replica(s)) would save {gain:.4f} USD/h at today's price"
    paid_back = start_usd <= gain * deployment.window_hours
    if exhausted and paid_back and _move_allowed(deployment, counts, dearest):
        # Found in review: "not paid back within 6 h" for 3.12 USD/h saved against a 0.13 USD start,
        # where the budget ended the search before it got there.
        return (
            f"{head}: {cover}, its {starts} start(s) at {start_usd:.4f} USD paid back within "
            f"{deployment.window_hours:g} h, but the search was cut short by its time budget"
        )
    if paid_back:
        return (
            f"{head}: {cover}, its {starts} start(s) at {start_usd:.4f} USD paid back within "
            f"{deployment.window_hours:g} h, but the window's prices or a limit above decide"
        )
    return (
        f"{head}: {cover}, but its {starts} start(s) cost {start_usd:.4f} USD, not paid back within "
        f"{deployment.window_hours:g} h (or a limit above binds)"
    )


def _move_allowed(deployment: DeploymentProblem, counts: list[int], j: int) -> bool:
    """Whether a replica at option j could go elsewhere within maxConcurrentMoves: one the plan starts
    there could start elsewhere instead; a running one needs a move of its own."""
    return counts[j] > deployment.options[j].current or min(moves(deployment, counts)) < deployment.max_moves


def _reason(
    deployment: DeploymentProblem,
    started: int,
    stopped: int,
    ruled_out: int,
    infeasible_reason: str | None,
    gaps: tuple[bool, list[str]] = (False, []),
) -> str:
    """The decision's reason: what the plan does, or why it cannot. `gaps`: _current_gaps, what the running
    placement leaves unmet. A move (replicas started and stopped) off a placement short of the demand is
    SLOAtRisk, one off a placement that breaks minReplicas or minRegions PlacementRules, whatever the size of
    the objective's penalty for it: found in review, a deployment short by under a tenth scored below
    bound_violation_penalty_usd and its move to capacity five times dearer read CheaperPlacement (or ScaleDown,
    2 A100 for 1 H100 as demand rose), and a move made for minRegions 2 read SLOAtRisk with the SLO met.
    CheaperPlacement here is a pure move, which _pure_move_reason names from its cost and carbon."""
    if infeasible_reason:
        return "Infeasible"
    if deployment.frozen:
        return "Frozen"
    if not started and not stopped and not ruled_out:
        return "NoChange"
    short, rules = gaps
    if started and stopped and short:
        return "SLOAtRisk"
    if ruled_out or (started and stopped and rules):
        return "PlacementRules"
    if started > stopped:
        return "ScaleUp"
    if stopped > started:
        return "ScaleDown"
    return "CheaperPlacement"


def _current_gaps(deployment: DeploymentProblem, clusters: Mapping[str, Cluster]) -> tuple[bool, list[str]]:
    """What the running placement (the replicas desired now) leaves unmet, read off its counts: whether its
    capacity is below what the demand needs within the SLO (headroom included), and the minReplicas and
    minRegions rules it breaks, in words. Replicas where the deployment may no longer run are no option and
    count for nothing, as in the objective; but they run (status counts the Ready ones as serving until the move
    replacing them is done), so the words count them apart. Found in review: "breaks minReplicas 1 (0 running)"
    beside 1 Ready replica in a region since forbidden. Those in an unreachable cluster are named apart too (the
    cluster's where it may still run: `usable_away`; else with those where it may no longer run): found in review,
    "0 running where it may run" beside 1 replica kept in an unreachable cluster it may use. Those are judged per
    GPU type, as the reachable strays are (_away_pools), and those on a GPU type dropped from spec.gpuTypes in an
    unreachable cluster count where it may no longer run (_dropped_away): found in review, a replica on a GPU type
    without a profile counted where it may run beside a usable one in the same cluster, and those on a dropped type
    counted nowhere. `clusters`: the problem's, for their regions and reachability."""
    if deployment.frozen or not deployment.options:
        return False, []
    columns = deployment.columns
    covered = sum(map(operator.mul, columns.current, columns.unit))
    short = deployment.coverage_target > 0 and covered < deployment.coverage_target * (1.0 - 1e-9)
    rules = []
    replicas = sum(columns.current)
    usable = _away_pools(deployment)
    away = [(c, n) for c, g, n in deployment.unreachable if (c, g) in usable]
    lost = [(c, n) for c, g, n in deployment.unreachable if (c, g) not in usable] + _dropped_away(deployment, clusters)
    gone = sum(desired for _, _, desired, _ in deployment.strays) + sum(n for _, n in lost)
    if replicas < deployment.min_replicas:
        said = f"{replicas} running{' where it may run' if gone else ''}{_unreachable_words(away)}"
        if gone:
            said += f"; {gone} where it may no longer run{_unreachable_words(lost, ' of them')}"
        rules.append(f"minReplicas {deployment.min_replicas} ({said})")
    regions = {columns.region[j] for j, n in enumerate(columns.current) if n > 0}
    if deployment.min_regions >= 2 and len(regions) < deployment.min_regions:
        # Qualified only where replicas apart hold a region the count leaves out (review: "where it may run"
        # beside a stray in a region already counted).
        strayed = {clusters[c].region for c, *_ in deployment.strays if c in clusters} | {
            clusters[c].region for c, _ in lost if c in clusters
        }
        elsewhere = [(c, n) for c, n in away if c not in clusters or clusters[c].region not in regions]
        said = f"{len(regions)} region(s) running{' where it may run' if strayed - regions else ''}"
        if elsewhere:
            said += f", replicas in unreachable {', '.join(dict.fromkeys(c for c, _ in elsewhere))}"
        rules.append(f"minRegions {deployment.min_regions} ({said})")
    return short, rules


def _away_pools(deployment: DeploymentProblem) -> set[Key]:
    """The (cluster, GPU type) of `deployment.unreachable` where it may still run those replicas: a cluster of
    `usable_away` (the cluster's own rules hold there) and a pool of `away` (the cluster offers the GPU type, and a
    build of the model has SLO capacity on it): the rules problem._usable_away judges each such pool by."""
    return {o.key for o in deployment.away if o.cluster in deployment.usable_away}


def _dropped_away(deployment: DeploymentProblem, clusters: Mapping[str, Cluster]) -> list[tuple[str, int]]:
    """(cluster, replicas desired) on GPU types dropped from spec.gpuTypes in unreachable clusters: neither in
    `unreachable` (which lists spec.gpuTypes only) nor strays (reachable clusters only), yet they may still run."""
    gpu_types = set(deployment.deployment.requirements.gpu_types)
    return [
        (p.cluster, p.desired)
        for p in deployment.deployment.placements
        if p.desired > 0 and p.gpu_type not in gpu_types and p.cluster in clusters and not clusters[p.cluster].reachable
    ]


def _unreachable_words(held: list[tuple[str, int]], of: str = "") -> str:
    """`held` (cluster, replicas) in unreachable clusters, in words: ", 1 in unreachable a" ('' for none)."""
    if not held:
        return ""
    return f", {sum(n for _, n in held)}{of} in unreachable {', '.join(dict.fromkeys(c for c, _ in held))}"


def _gap_details(gaps: tuple[bool, list[str]], reason: str, running: int) -> list[str]:
    """The details that say why a plan off a placement with `gaps` changes it: for a move made for them
    (SLOAtRisk, PlacementRules), and a scale-up of a running placement that breaks a rule (found in review:
    a move made for minRegions 2 had no explanation). `running`: replicas desired now (none: a first
    placement, which needs no such word)."""
    short, rules = gaps
    found = []
    if short and reason == "SLOAtRisk":
        found.append("the running placement does not cover what the demand needs within the SLO")
    if rules and (reason in ("SLOAtRisk", "PlacementRules") or (reason == "ScaleUp" and running)):
        found.append(f"the running placement breaks {', '.join(rules)}")
    return found


def _infeasible_reason(
    deployment: DeploymentProblem,
    counts: list[int],
    free: Mapping[Key, int],
    settings: PlannerSettings,
    exhausted: bool = False,
) -> str | None:
    if deployment.frozen:
        return None
    if not deployment.options:
        if deployment.needs_nothing:
            return None  # nothing to place, and nowhere to place it: no replica is the plan
        # Clusters that could run it but cannot be reached are the cause, named first (review: the only cluster
        # lost read "minRegions 1 cannot be met", a rule the user never set).
        away = sorted(deployment.usable_away)
        lost = [f"{', '.join(away)} unreachable, no reachable cluster can run it"] if away else []
        why = "; ".join([*lost, *deployment.notes]) or "no cluster offers an accepted GPU type"
        return f"no eligible cluster and GPU type: {why}"
    covered, short, below = _unmet(deployment, counts)
    problems = []
    # The cause is said once, with the first problem it explains; the inventory is blamed only without one.
    # Sought only where there is one to explain: _priced_out weighs every pool with room, and plan assembly
    # runs this for every deployment within make_plan's reserve (review: 2.5 s grew to 3.5 s at 10,000).
    cause = _short_because(deployment, counts, free, settings, exhausted) if short or below else None
    if short:
        problems.append(f"{_shortfall(deployment, covered)} ({cause or 'inventory or maxReplicas binds'})")
    if below:
        fit = " fit in free inventory" if cause is None else " placed" if short else f": {cause}"
        problems.append(f"only {sum(counts)} of minReplicas {deployment.min_replicas}{fit}")
    regions = _regions(deployment, counts)
    if _too_few_regions(deployment, regions):
        # The cause once: where a clause above named one, it is not said again here.
        problems.append(_spread(deployment, counts, regions, free, settings, exhausted, said=bool(cause and problems)))
    if deployment.min_regions < deployment.user_min_regions:
        problems.append(_regions_exceeded(deployment))
    return "; ".join(problems) or None


def _unmet(deployment: DeploymentProblem, counts: list[int]) -> tuple[float, bool, bool]:
    """(capacity covered, short of the demand, below minReplicas) of `counts`: where a shortfall's cause is
    sought (_infeasible_reason), and the move limit it can name is weighed for binding_constraints (_kept_back)."""
    # n x unit_capacity(option), in option order: columns.unit is unit_capacity's rule.
    covered = sum(map(operator.mul, counts, deployment.columns.unit))
    return covered, covered < deployment.coverage_target - 1e-6, sum(counts) < deployment.min_replicas


def _regions(deployment: DeploymentProblem, counts: list[int]) -> set[str]:
    """The regions `counts` places replicas in."""
    return {o.region for n, o in zip(counts, deployment.options, strict=True) if n > 0}


def _too_few_regions(deployment: DeploymentProblem, regions: set[str]) -> bool:
    """Whether replicas in `regions` leave minRegions unmet: where the infeasible reason says so (_spread), and the
    move limit it can name is weighed for binding_constraints (_kept_back), as for a shortfall (_unmet)."""
    return deployment.min_regions >= 2 and len(regions) < deployment.min_regions


def _spread(
    deployment: DeploymentProblem,
    counts: list[int],
    regions: set[str],
    free: Mapping[Key, int],
    settings: PlannerSettings,
    exhausted: bool,
    said: bool,
) -> str:
    """The infeasible reason's clause for minRegions unmet, with its cause where the pools with room in another
    region show one and `said` (a cause given with a clause before) is False: the search cut short by its time
    budget, or, not cut short, maxConcurrentMoves keeping from such a pool a replica that would lower the
    objective (_kept_back, the test binding_constraints names the limit by). Found in review: a plan stopping both
    replicas in a dear region and starting one in b said "spread over 1 of minRegions 2" alone, with nothing in
    binding_constraints, where a replica in c (room, 3 USD/GPU-h) was a second move past maxConcurrentMoves 1."""
    spread = f"spread over {len(regions)} of minRegions {deployment.min_regions}"
    if said:
        return spread
    if exhausted:
        room = [
            o for n, o in zip(counts, deployment.options, strict=True) if o.region not in regions and _room(o, n, free)
        ]
        return spread + (f" ({_budget_words(room[0])})" if room else "")
    kept = [o for o in _kept_back(deployment, counts, free, settings) if o.region not in regions]
    return spread + (f" ({_move_limit_words(deployment, kept[0])})" if kept else "")


def _budget_words(option: Option) -> str:
    """The time budget as the cause of what `option` (a pool with room) did not get: _spread's, _short_because's."""
    return f"the search was cut short by its time budget: {_label(option)} has room"


def _move_limit_words(deployment: DeploymentProblem, option: Option) -> str:
    """The move limit as the cause of what `option` (a pool with room) was kept from: _kept_back's pools."""
    return f"maxConcurrentMoves {deployment.max_moves} binds: {_label(option)} has room"


def _room(option: Option, count: int, free: Mapping[Key, int]) -> bool:
    """Whether one more replica fits at the option: below its bound, and GPUs free in its pool."""
    return count < option.upper and free.get(option.key, 0) >= option.gpus


def _short_because(
    deployment: DeploymentProblem,
    counts: list[int],
    free: Mapping[Key, int],
    settings: PlannerSettings,
    exhausted: bool,
) -> str | None:
    """Why a deployment below its cap has fewer replicas than it needs, where that is not the inventory:
    a roll-back's hold on pools with free GPUs (Deployment.no_growth; named as _some_pools lists them), a search
    its time budget cut short while a pool had room, or, the search not cut short, maxConcurrentMoves keeping a
    replica from a pool with room where it would lower the objective, or pools with room where a replica costs
    more than the objective's penalty for going without it (_priced_out). None: the pools lack room, or the cap
    binds.
    Found in review: the first two read "inventory or maxReplicas binds" (or "fit in free inventory") with
    15 of 16 GPUs free and a cap of 16; so did the last, with the only pool left offered at 5e6 USD per
    GPU-hour (a RegionalCluster stored before MAX_USD_PER_GPU_HOUR is planned at its cost)."""
    if sum(counts) >= deployment.max_replicas:
        return None
    options = list(zip(counts, deployment.options, strict=True))
    hold = deployment.deployment.no_growth
    held = [o for n, o in options if o.key in hold and n >= o.current and free.get(o.key, 0) >= o.gpus]
    causes = []
    if held:
        causes.append(f"{_some_pools((o.key, _label(o)) for o in held)}: a recent roll-back holds growth there")
    room = [o for n, o in options if _room(o, n, free)]
    if exhausted and room:
        causes.append(_budget_words(room[0]))
    elif room:
        causes.extend(_priced_out(deployment, counts, free, settings))
    return "; ".join(causes) or None


def _priced_out(
    deployment: DeploymentProblem, counts: list[int], free: Mapping[Key, int], settings: PlannerSettings
) -> list[str]:
    """What one more replica at each pool with room says of the shortfall, the search not cut short
    (_one_more). Where one would lower the deployment's objective but take it past maxConcurrentMoves, the
    move limit is the cause: "maxConcurrentMoves 2 binds: X has room" (the first such pool), named also
    beside a pool where one would lower it within the limit: the limit does keep a replica from X, and a
    search stopped short of its optimum has no words of its own, while the inventory's are false there;
    binding_constraints names the limit by the same test (_kept_back). Where one would lower it within the
    limit and none is kept back, price is not the cause: [] then. Only where none would lower it are the
    pools named by price (a few, then counted: _some_pools): a replica's cost there (GPU-hours, energy, a start,
    a carbon limit's or a stale price's penalty) is at least the shortfall and minReplicas penalties it would take
    off, so the search left it out by price, not for want of GPUs. Every term is convex in the count (each
    replica takes off no more penalty than the one before, and costs no less), so where one more does not lower
    the objective, no more do. Only the configured GPU-hour cost is given as a figure: this is Ready's message, and the
    penalty it is weighed against moves with the measured demand (_shortfall). Found in review: the price
    was named, and the move limit not, where a pool left empty by price stood beside one that
    maxConcurrentMoves 1 kept from a second replica."""
    weighed = _one_more(deployment, counts, free, settings)
    if weighed.blocked:
        return [_move_limit_words(deployment, weighed.blocked[0])]
    priced = weighed.priced
    if weighed.lower or not priced:
        return []
    shown = _some_pools((o.key, f"{_label(o)} ({_priced_terms(o)})") for o in priced)
    has = "has" if len(priced) == 1 else "have"
    return [f"{shown} {has} room, but a replica there costs more than the penalty for going without it"]


@dataclass(frozen=True)
class _OneMore:
    """One more replica at each pool with room, weighed by the deployment's objective (_one_more)."""

    priced: tuple[Option, ...] = ()
    """Pools where it would not lower the objective."""
    blocked: tuple[Option, ...] = ()
    """Pools where it would lower the objective, but be a move past maxConcurrentMoves."""
    lower: bool = False
    """Whether it would lower the objective within the limit at some pool."""


def _one_more(
    deployment: DeploymentProblem, counts: list[int], free: Mapping[Key, int], settings: PlannerSettings
) -> _OneMore:
    """One more replica at each pool with room, the deployment below its cap, weighed by its objective: the
    one test behind the shortfall's cause (_priced_out) and the move limit in binding_constraints
    (_kept_back). A move is a replica started while another stops (moves): one started beyond those stopped
    is growth, and breaks no move limit (migration.py)."""
    if sum(counts) >= deployment.max_replicas:
        return _OneMore()
    now = deployment_objective(deployment, counts, settings)
    priced: list[Option] = []
    blocked: list[Option] = []
    lower = False
    for j, (n, option) in enumerate(zip(counts, deployment.options, strict=True)):
        if not _room(option, n, free):
            continue
        more = [*counts[:j], n + 1, *counts[j + 1 :]]
        if deployment_objective(deployment, more, settings) >= now:
            priced.append(option)
        elif min(moves(deployment, more)) > deployment.max_moves:
            blocked.append(option)
        else:
            lower = True
    return _OneMore(tuple(priced), tuple(blocked), lower)


def _kept_back(
    deployment: DeploymentProblem, counts: list[int], free: Mapping[Key, int], settings: PlannerSettings
) -> tuple[Option, ...]:
    """The pools where one more replica would lower the objective of a deployment short, below minReplicas or
    in fewer regions than minRegions, but be a move past maxConcurrentMoves (_one_more's `blocked`): where the
    shortfall's cause (_priced_out) or the spread's (_spread) names the move limit, binding_constraints names it
    too. One more start is a move past the limit only where the plan stops more than the limit and starts at
    least as many, so only there is anything weighed: plan assembly explains every deployment, and the rest
    spend no objective on this. Found in review: minRegions kept from its second region by the limit was not
    weighed, so neither the reason nor binding_constraints named the limit."""
    started, stopped = moves(deployment, counts)
    if not started >= deployment.max_moves < stopped:
        return ()
    _, short, below = _unmet(deployment, counts)
    if short or below or _too_few_regions(deployment, _regions(deployment, counts)):
        return _one_more(deployment, counts, free, settings).blocked
    return ()


def _priced_terms(option: Option) -> str:
    """A replica's configured GPU-hour cost at `option`, and the penalties its cost carries, in words."""
    penalties = []
    if option.carbon_limit or option.carbon_limit_on_start:
        penalties.append("a carbon limit's penalty")
    if option.stale:
        penalties.append("a stale price's penalty")
    gpus = f"{option.gpus * option.gpu_hour_usd:.2f} USD/h of GPU-hours"
    return f"{gpus} with {' and '.join(penalties)}" if penalties else gpus


def _shortfall(deployment: DeploymentProblem, covered: float) -> str:
    """The coverage problem in words. A measured demand's figures move with every scrape, and this text is
    Ready's message: figures there would rewrite the status each cycle (found in review), so it says only
    that more is needed; `needed_tokens_per_s` and `capacity_tokens_per_s` carry the figures."""
    if deployment.deployment.requirements.static_requests_per_second is None and deployment.demand_known:
        return "needs more tokens/s within the SLO than fit"
    return f"needs {deployment.coverage_target:.1f} tokens/s within the SLO but only {covered:.1f} fit"


def _deployment_plan(
    problem: Problem,
    deployment: DeploymentProblem,
    counts: list[int],
    free: dict[Key, int],
    powers: dict[tuple[int, int], float],
    alternatives: _Alternatives,
    settings: PlannerSettings,
    exhausted: bool = False,
    *,
    band_held: bool = False,
) -> DeploymentPlan:
    required = deployment.deployment.requirements
    options = deployment.options
    if deployment.frozen:
        counts = [o.current for o in options]
    involved = [(o, n) for o, n in zip(options, counts, strict=True) if n or o.current or o.ready]
    unit = {o.key: deployment.unit_capacity(o) for o, _ in involved}
    target = {o.key: n for o, n in involved}
    desired = {o.key: o.current for o, _ in involved}
    ready = {o.key: o.ready for o, _ in involved}
    strays = _stray_targets(deployment, involved)
    for cluster, gpu_type, stray_desired, stray_ready in strays:
        key = (cluster, gpu_type)
        unit[key], target[key], desired[key], ready[key] = (
            _stray_unit(deployment, gpu_type) or 0.0,
            0,
            stray_desired,
            stray_ready,
        )
    infeasible = _infeasible_reason(deployment, counts, free, settings, exhausted)
    needed = deployment.coverage_target
    steps = migration_steps(desired, ready, target, unit, needed, deployment.max_moves)
    kept = [stray for stray in deployment.strays if stray not in strays]
    cost = _cost_prediction(problem, deployment, counts, powers, settings, kept)
    targets = _targets(problem, deployment, counts, strays)
    # Strays are replaced by this plan when it places the deployment elsewhere (stopped this cycle, or
    # in a later one within maxConcurrentMoves): the rules, not the price, drive that plan.
    replaces_strays = bool(deployment.strays) and _replaces_strays(deployment, involved)
    ruled_out = sum(d for _, _, d, _ in deployment.strays) if replaces_strays else 0
    explanation = _explain(
        problem, deployment, counts, free, settings, cost, infeasible, alternatives, ruled_out, exhausted, band_held
    )
    left_out = _left_out(cost, kept)
    if left_out:  # most plans leave nothing out: no copy (dataclasses.replace reads every field)
        explanation = replace(explanation, details=(*explanation.details, *left_out))
    # Routing reads the capacity of the target's keys only: those of the involved options. Requests go
    # where target replicas are Ready (a replica started earlier, or one that fell over, may not be yet:
    # a Service without Ready endpoints fails its share); where none is Ready, by the target.
    capacity_rps = {o.key: o.capacity_rps for o, _ in involved}
    serving = {key: min(n, ready.get(key, 0)) for key, n in target.items()}
    return DeploymentPlan(
        id=deployment.deployment.id,
        mode=required.mode,
        act=required.mode == MigrationMode.AUTO,
        feasible=infeasible is None,
        infeasible_reason=infeasible,
        targets=tuple(targets),
        steps=steps,
        routing=routing_weights(serving if any(serving.values()) else target, capacity_rps),
        cost=cost,
        explanation=explanation,
        demand_tokens_per_s=deployment.workload.output_tokens_per_second,
        needed_tokens_per_s=deployment.workload.needed_tokens_per_second,
        capacity_tokens_per_s=_used_sum([o.capacity_tokens_per_s * n for o, n in involved if n], bool(options)),
        max_num_seqs={o.key: o.max_num_seqs for o in options},
        variants={o.key: o.variant for o in options if o.variant},
        strays={(c, g): _stray_unit(deployment, g) for c, g, _, _ in deployment.strays},
        replaces_strays=replaces_strays,
        held_away=_held_away(problem, deployment),
        usable_away=deployment.usable_away,
    )


def _held_away(problem: Problem, deployment: DeploymentProblem) -> dict[Key, int]:
    """DeploymentPlan.held_away: the placements in unreachable clusters the problem knows that `unreachable` does not
    list (spec.gpuTypes' types only), none for a Frozen deployment (_targets lists them)."""
    if deployment.frozen:
        return {}
    listed = {(c, g) for c, g, _ in deployment.unreachable}
    held: dict[Key, int] = {}
    for placed in deployment.deployment.placements:
        known, key = problem.clusters.get(placed.cluster), (placed.cluster, placed.gpu_type)
        if placed.desired > 0 and known is not None and not known.reachable and key not in listed:
            held[key] = held.get(key, 0) + placed.desired
    return held


def _left_out(cost: CostPrediction, kept: Sequence[tuple[str, str, int, int]]) -> list[str]:
    """The explanation's words for the replicas the cost leaves out (CostPrediction.unpriced): the strays kept outside
    the plan, then the rest, whose price or power is unknown. Found in review: "nothing; 0.000 USD/h" while a replica
    the plan cannot replace ran on; and a cost without those kept in a cluster that no longer told their offering."""
    lines = []
    if kept:
        lines.append(
            "still running outside the plan, and not in its cost: " + _listed((c, g, d) for c, g, d, _ in kept)
        )
    outside = {(c, g) for c, g, _, _ in kept}
    unknown = [(c, g, n) for c, g, n in cost.unpriced if (c, g) not in outside]
    if unknown:
        replicas = sum(n for _, _, n in unknown)  # every pool's, named or not
        lines.append(f"cost excludes {replicas} replica(s), no price or power known for them: {_listed(unknown)}")
    return lines


def _listed(replicas: Iterable[tuple[str, str, int]]) -> str:
    """(cluster, GPU type, replicas) pools as both lines of `_left_out` and the unreachable binding constraint name
    them, "c/GPU x2" each (_some_pools)."""
    return _some_pools(((c, g), f"{c}/{g} x{n}") for c, g, n in replicas)


def _stray_targets(
    deployment: DeploymentProblem, involved: list[tuple[Option, int]]
) -> list[tuple[str, str, int, int]]:
    """(cluster, GPU type, desired, ready) of the replicas running where the deployment may no longer
    run that this plan stops, once the target elsewhere is Ready (migration_steps). None where the plan
    has nowhere else for the deployment (`_replaces_strays`: stopping them would only take it down); and
    only as many as maxConcurrentMoves allows beside the plan's own starts and stops (a start and a stop
    make a move), whole placements at a time: the rest go in a later cycle, once this one's starts are
    running. Those kept this cycle are left out of the plan, as before it stopped any."""
    if not deployment.strays or not _replaces_strays(deployment, involved):
        return []
    started = sum(max(0, n - o.current) for o, n in involved)
    stopped = sum(max(0, o.current - n) for o, n in involved)
    room = sum(d for _, _, d, _ in deployment.strays)
    if started > deployment.max_moves:
        room = max(0, deployment.max_moves - stopped)
    out = []
    for cluster, gpu_type, desired, ready in deployment.strays:
        if desired <= room:
            room -= desired
            out.append((cluster, gpu_type, desired, ready))
    return out


def _replaces_strays(deployment: DeploymentProblem, involved: list[tuple[Option, int]]) -> bool:
    """Whether the plan does without the strays: it has replicas elsewhere, or it wants none at all (a known
    demand of 0 and minReplicas 0: scaled to zero, as it would be where it may run). Otherwise they are kept,
    stopping them would only take the deployment down. Found in review: a region forbidden in the same spec
    change that scaled the deployment to zero kept its 10 replicas there for ever, read Ready Placed."""
    if any(n for _, n in involved):
        return True
    return deployment.demand_known and deployment.coverage_target <= 0 and deployment.min_replicas == 0


def _stray_unit(deployment: DeploymentProblem, gpu_type: str) -> float | None:
    """Capacity of a stray replica: a replica's capacity depends on its GPU type only, so that of any
    option of the type; where the deployment has none (the type dropped from gpuTypes, offered nowhere it may
    run, or unable to meet the SLO), its profile's (DeploymentProblem.stray_capacity, 0.0 for the last); None
    without a profile either (its replicas there then count for nothing, and status names them as unknown)."""
    return next(
        (deployment.unit_capacity(o) for o in deployment.options if o.gpu_type == gpu_type),
        deployment.stray_capacity.get(gpu_type),
    )


def _used_sum(terms: list[float], any_options: bool) -> float:
    """sum(capacity x count over every option) from the terms of used options only: the terms left out
    are 0.0 and change no sum; 0.0 when none is used, the int 0 sum() gives without options."""
    return sum(terms, 0.0) if any_options else 0


def _targets(
    problem: Problem, deployment: DeploymentProblem, counts: list[int], strays: list[tuple[str, str, int, int]]
) -> list[TargetPlacement]:
    """Replicas per pool the plan wants, plus those it cannot count (unreachable; Frozen without option)
    and those it stops (`strays`: where the deployment may no longer run, target 0)."""
    options = deployment.options
    targets = [
        TargetPlacement(
            cluster=o.cluster,
            region=o.region,
            gpu_type=o.gpu_type,
            replicas=n,
            current_desired=o.current,
            current_ready=o.ready,
            capacity_tokens_per_s_per_replica=o.capacity_tokens_per_s,
        )
        for o, n in zip(options, counts, strict=True)
        if n > 0 or o.current > 0
    ]
    for cluster, gpu_type, stray_desired, stray_ready in strays:
        targets.append(_uncounted(problem, cluster, gpu_type, 0, stray_desired, stray_ready))
    placements = (
        {(p.cluster, p.gpu_type): p for p in deployment.deployment.placements} if deployment.unreachable else {}
    )
    for cluster, gpu_type, replicas in deployment.unreachable:
        placed = placements[(cluster, gpu_type)]
        targets.append(_uncounted(problem, cluster, gpu_type, replicas, placed.desired, placed.ready, False))
    if deployment.frozen:
        # Frozen keeps every replica, also those the planner has no option for (no profile, SLO not
        # reachable on that GPU): they stay, uncounted as capacity.
        listed = {(t.cluster, t.gpu_type) for t in targets}
        for placed in deployment.deployment.placements:
            if (placed.cluster, placed.gpu_type) not in listed and placed.desired > 0:
                known = problem.clusters.get(placed.cluster)
                reachable = known is not None and known.reachable
                targets.append(
                    _uncounted(
                        problem,
                        placed.cluster,
                        placed.gpu_type,
                        placed.desired,
                        placed.desired,
                        placed.ready,
                        reachable,
                    )
                )
    return targets


def _uncounted(
    problem: Problem, cluster: str, gpu_type: str, replicas: int, desired: int, ready: int, reachable: bool = True
) -> TargetPlacement:
    """A placement the plan lists without counting its capacity: a stray it stops, an unreachable one it
    keeps, a Frozen one without an option; region '' for a cluster the problem does not know."""
    known = problem.clusters.get(cluster)
    return TargetPlacement(
        cluster=cluster,
        region=known.region if known else "",
        gpu_type=gpu_type,
        replicas=replicas,
        current_desired=desired,
        current_ready=ready,
        capacity_tokens_per_s_per_replica=0.0,
        reachable=reachable,
    )


def _carbon_summary(deployment: DeploymentProblem, cost: CostPrediction) -> str:
    """The carbon part of the summary: emissions, and the carbon price's share of the decision."""
    text = ""
    if cost.co2_grams_per_hour is not None:
        text += f"; {cost.co2_grams_per_hour / 1000.0:.3f} kgCO2/h"
        if cost.co2_grams_per_million_tokens is not None:
            text += f", {cost.co2_grams_per_million_tokens:.0f} gCO2/Mtok"
    price = deployment.deployment.requirements.carbon_price_usd_per_tonne
    share = cost.carbon_share
    if price > 0:
        text += f"; carbon at {price:g} USD/t adds {cost.carbon_usd_per_hour:.3f} USD/h"
        if share is not None:
            text += f" ({share:.1%} of the cost decided on)"
    return text


@dataclass(frozen=True)
class _Fleet:
    """What merging a deployment's class groups reads of the whole plan: every problem deployment's counts,
    the GPUs the plan leaves free, and the settings."""

    counts: Sequence[Sequence[int]]
    free: Mapping[Key, int]
    settings: PlannerSettings


def _merge_class_groups(problem: Problem, plans: list[DeploymentPlan], fleet: _Fleet) -> tuple[DeploymentPlan, ...]:
    """One DeploymentPlan per deployment: the class groups of a deployment (adjacent in the problem,
    planner.problem._class_problems) merged, with per-class routing weights."""
    merged: list[DeploymentPlan] = []
    start = 0
    while start < len(plans):
        end = start + 1
        if problem.deployments[start].group is None:
            merged.append(plans[start])
            start = end
            continue
        while end < len(plans) and problem.deployments[end].group is not None and plans[end].id == plans[start].id:
            end += 1
        merged.append(_merged(problem.deployments[start:end], plans[start:end], fleet))
        start = end
    return tuple(merged)


def _merged_reason(
    groups: list[DeploymentProblem],
    plans: list[DeploymentPlan],
    targets: Sequence[TargetPlacement],
    fleet: _Fleet,
) -> str:
    """The reason of the class groups' plans together. Found in review: it was the first group's that
    changed anything, so moving one group's replicas to another's GPU type read ScaleUp for a net
    scale-down. Infeasible, Frozen, SLOAtRisk and PlacementRules hold for the deployment when one group
    has them; otherwise _reason's rule on the merged targets' starts and stops, a pure move's reason
    (_pure_move_reason) judged over every group's counts."""
    reasons = {p.explanation.reason for p in plans}
    for carried in ("Infeasible", "Frozen", "SLOAtRisk", "PlacementRules"):
        if carried in reasons:
            return carried
    started = sum(max(0, t.replicas - t.current_desired) for t in targets)
    stopped = sum(max(0, t.current_desired - t.replicas) for t in targets)
    # Above, the carried reasons: none of them holds here, and none is left to _reason to find.
    reason = _reason(groups[0], started, stopped, 0, None)
    if reason != "CheaperPlacement":
        return reason
    parts = [(g, list(fleet.counts[g.index]), list(g.columns.current)) for g in groups]
    return _pure_move_reason(parts, fleet.free, _without_penalties(fleet.settings))


def _class_routes(groups: list[DeploymentProblem], plans: list[DeploymentPlan]) -> tuple[ClassRoute, ...]:
    """Each class's requests split over its groups by the routing's shares, and within a group over
    its placements by capacity. As for a deployment without classes (_deployment_plan), requests go where
    target replicas are Ready, and by the targets only where none of the deployment's is: a class whose
    group has none Ready goes to the deployment's Ready replicas (a replica serves every class). Found in
    review: class routing weighed every target replica, so a plan with no steps published a share for a
    pool with no Ready replica (its Service fails that share)."""
    serving = _serving_fractions(plans)
    capacities = [_group_capacity(plan, serving) for plan in plans]
    pooled: dict[Key, float] = {}
    for capacity in capacities:
        for key, value in capacity.items():
            pooled[key] = pooled.get(key, 0.0) + value
    exact: dict[str, dict[Key, float]] = {}
    for group_problem, plan, capacity in zip(groups, plans, capacities, strict=True):
        group = group_problem.group
        if group is None:
            continue
        if not capacity and any(t.reachable and t.replicas > 0 for t in plan.targets):
            capacity = pooled  # its pools are starting: others serve its classes meanwhile
        total = sum(capacity.values())
        if total <= 0:
            continue
        for share in group.shares:
            name = share.request_class.name
            for key, value in capacity.items():
                into = exact.setdefault(name, {})
                into[key] = into.get(key, 0.0) + share.requests_per_second * value / total
    return tuple(
        ClassRoute(name, key[0], key[1], weight)
        for name in sorted(exact)
        for key, weight in sorted(percents(exact[name]).items())
    )


def _serving_fractions(plans: list[DeploymentPlan]) -> dict[Key, float]:
    """Per reachable pool of the deployment, the share of its target replicas that serve now:
    min(target, Ready) / target over the class groups together (a pool's running replicas are one
    group's, planner.problem._class_problems); every target replica where none of the pools has one Ready."""
    replicas: dict[Key, int] = {}
    ready: dict[Key, int] = {}
    for plan in plans:
        for t in plan.targets:
            if t.reachable:
                key = (t.cluster, t.gpu_type)
                replicas[key] = replicas.get(key, 0) + t.replicas
                ready[key] = max(ready.get(key, 0), t.current_ready)
    fractions = {key: min(n, ready[key]) / n for key, n in replicas.items() if n > 0}
    return fractions if any(fractions.values()) else dict.fromkeys(fractions, 1.0)


def _group_capacity(plan: DeploymentPlan, serving: Mapping[Key, float]) -> dict[Key, float]:
    """Tokens/s a class group's serving replicas give per pool (`serving`: _serving_fractions)."""
    capacity: dict[Key, float] = {}
    for t in plan.targets:
        key = (t.cluster, t.gpu_type)
        value = t.replicas * t.capacity_tokens_per_s_per_replica * serving.get(key, 0.0)
        if t.reachable and value > 0:
            capacity[key] = value
    return capacity


def _merged_targets(plans: list[DeploymentPlan]) -> tuple[TargetPlacement, ...]:
    by_key: dict[tuple[str, str, bool], TargetPlacement] = {}
    for plan in plans:
        for target in plan.targets:
            key = (target.cluster, target.gpu_type, target.reachable)
            held = by_key.get(key)
            if held is None:
                by_key[key] = target
                continue
            replicas = held.replicas + target.replicas
            capacity = (
                held.replicas * held.capacity_tokens_per_s_per_replica
                + target.replicas * target.capacity_tokens_per_s_per_replica
            ) / max(1, replicas)
            by_key[key] = replace(
                held,
                replicas=replicas,
                current_desired=max(held.current_desired, target.current_desired),
                current_ready=max(held.current_ready, target.current_ready),
                capacity_tokens_per_s_per_replica=capacity,
            )
    return tuple(by_key.values())


def _merged_steps(groups: list[DeploymentProblem], plans: list[DeploymentPlan]) -> tuple[MigrationStep, ...]:
    """Make-before-break steps of the whole deployment, in requests/s: a replica counts for its group
    mix's capacity, the floor is the deployment's rate with headroom (while steps run, one group's
    surplus is taken to cover another's: the floor is the deployment's, not each group's)."""
    desired: dict[Key, int] = {}
    ready: dict[Key, int] = {}
    target: dict[Key, int] = {}
    capacity: dict[Key, tuple[float, float]] = {}
    needed = 0.0
    for group, plan in zip(groups, plans, strict=True):
        workload = group.workload
        needed += (workload.requests_per_second or 0.0) * (1.0 + workload.headroom)
        for t in plan.targets:
            if not t.reachable:
                continue
            key = (t.cluster, t.gpu_type)
            desired[key] = max(desired.get(key, 0), t.current_desired)
            ready[key] = max(ready.get(key, 0), t.current_ready)
            target[key] = target.get(key, 0) + t.replicas
            weight = float(max(t.replicas, t.current_desired, 1))
            total, weights = capacity.get(key, (0.0, 0.0))
            rps = t.capacity_tokens_per_s_per_replica / workload.mean_output_tokens
            capacity[key] = (total + weight * rps, weights + weight)
    unit = {k: total / weights for k, (total, weights) in capacity.items()}
    return migration_steps(desired, ready, target, unit, needed, groups[0].max_moves)


def _merged_cost(plans: list[DeploymentPlan]) -> CostPrediction:
    """The class groups' costs added up, per token over the tokens they serve: each group's as its own cost counts
    them (_cost_prediction: replicas kept in an unreachable cluster serve too; found in review, a class-planned
    deployment whose only cluster was lost had no $/Mtok, its groups' reachable capacity being 0)."""
    costs = [p.cost for p in plans]
    served = [c.served_tokens_per_s for c in costs]
    served_tokens = None if any(s is None for s in served) else math.fsum(s or 0.0 for s in served)
    total = math.fsum(c.usd_per_hour for c in costs)
    energy = math.fsum(c.energy_usd_per_hour for c in costs)
    power = math.fsum(c.power_watts for c in costs)
    measured = all(c.co2_grams_per_hour is not None for c in costs)
    grams = math.fsum(c.co2_grams_per_hour or 0.0 for c in costs)
    by_region = _summed_by_region(c.co2_grams_per_hour_by_region for c in costs)
    tokens_known = all(c.output_tokens_per_s_by_region or not c.power_watts_by_region for c in costs)
    return CostPrediction(
        total,
        math.fsum(c.gpu_usd_per_hour for c in costs),
        energy,
        usd_per_million_tokens(total, served_tokens),
        joules_per_token(power, served_tokens),
        None if total == 0 else energy / total,
        power,
        co2_grams_per_hour=grams if measured else None,
        co2_grams_per_million_tokens=grams_per_million_tokens(grams, served_tokens) if measured else None,
        carbon_usd_per_hour=math.fsum(c.carbon_usd_per_hour for c in costs),
        co2_grams_per_hour_by_region=by_region if measured else {},
        usd_per_hour_by_region=_summed_by_region(c.usd_per_hour_by_region for c in costs),
        power_watts_by_region=_summed_by_region(c.power_watts_by_region for c in costs),
        output_tokens_per_s_by_region=(
            _summed_by_region(c.output_tokens_per_s_by_region for c in costs) if tokens_known else {}
        ),
        unpriced=tuple(sorted(u for c in costs for u in c.unpriced)),  # groups: disjoint placements (by GPU type)
    )


def _summed_by_region(maps: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Per-region figures of a deployment's class groups added up (regions in first-seen order)."""
    found: dict[str, float] = {}
    for values in maps:
        for region, value in values.items():
            found[region] = found.get(region, 0.0) + value
    return found


def _merged_engine(plans: list[DeploymentPlan]) -> tuple[dict[Key, int], dict[Key, str]]:
    """The class groups' engine settings per pool: --max-num-seqs and the build."""
    max_num_seqs: dict[Key, int] = {}
    variants: dict[Key, str] = {}
    # A pool's batch cap is the largest of the groups that place replicas there (any group's where none
    # does). Found in review: a group with no replica on A100 raised its cap from 42 to 114.
    pools = [{(t.cluster, t.gpu_type) for t in p.targets if t.replicas > 0} for p in plans]
    for plan, here in zip(plans, pools, strict=True):
        for key, value in plan.max_num_seqs.items():
            if key in here or not any(key in other for other in pools):
                max_num_seqs[key] = max(value, max_num_seqs.get(key, 0))
        for key, name in plan.variants.items():
            variants.setdefault(key, name)
    return max_num_seqs, variants


def _joined_reasons(reasons: Iterable[str | None]) -> str | None:
    """The class groups' infeasible reasons as the deployment's (Ready's message, and the explanation's opening):
    each clause once, in order. Found in review: two groups short in the same words read "X; X". Clauses are split
    at "; " outside parentheses only (a shortfall's cause in parentheses may hold "; " itself)."""
    clauses: dict[str, None] = {}
    for reason in reasons:
        depth, start = 0, 0
        for i, char in enumerate(reason or ""):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0 and reason is not None and reason.startswith("; ", i):
                clauses.setdefault(reason[start:i])
                start = i + 2
        if reason:
            clauses.setdefault(reason[start:])
    return "; ".join(clauses) or None


def _merged_details(groups: list[DeploymentProblem], plans: list[DeploymentPlan], infeasible: str | None) -> list[str]:
    """The class groups' details as one explanation's: an infeasible deployment's opens with its infeasible
    reason, Ready's words, as one without classes does (_opening_details); then each group's details, labelled
    with its classes. The groups' own reasons are left out where each is the deployment's whole reason and those
    groups together serve every class (their labels would add nothing: said again). Found in review: in group
    order, "[short] b/A100 wins ..." came before "[long] needs more tokens/s ...", the reason Ready gave; and two
    groups short in the same words said it four times ("X; X", "[short] X", "[long] X")."""
    every = {s.request_class.name for g in groups if g.group for s in g.group.shares}
    repeating = [
        infeasible is not None and p.infeasible_reason is not None and p.explanation.details[:1] == (infeasible,)
        for p in plans
    ]
    covered: set[str] = set()
    for g, repeats in zip(groups, repeating, strict=True):
        if repeats:
            covered |= {s.request_class.name for s in g.group.shares} if g.group else every
    details = [infeasible] if infeasible else []
    for g, p, repeats in zip(groups, plans, repeating, strict=True):
        own = p.explanation.details[1:] if repeats and covered == every else p.explanation.details
        details.extend(f"[{g.group.label if g.group else ''}] {d}" for d in own)
    return details


def _merged(groups: list[DeploymentProblem], plans: list[DeploymentPlan], fleet: _Fleet) -> DeploymentPlan:
    """The class groups' plans of one deployment as one: targets, steps and costs added up, the
    largest group's explanation with every group's details, and per-class routing."""
    main = plans[0]
    cost = _merged_cost(plans)
    targets = _merged_targets(plans)
    class_routing = _class_routes(groups, plans)
    steps = _merged_steps(groups, plans)
    by_cluster: dict[str, float] = {}
    for route in class_routing:
        share = next(
            (
                s.request_class.share
                for g in groups
                if g.group
                for s in g.group.shares
                if s.request_class.name == route.request_class
            ),
            0.0,
        )
        by_cluster[route.cluster] = by_cluster.get(route.cluster, 0.0) + share * route.weight
    routing = tuple(RouteWeight(cluster, weight) for cluster, weight in sorted(percents(by_cluster).items()))
    savings = [p.explanation.saving_usd_per_hour_vs_current for p in plans]
    saving = None if any(s is None for s in savings) else math.fsum(s or 0.0 for s in savings)
    reason = _merged_reason(groups, plans, targets, fleet)
    placed = ", ".join(f"{t.cluster}/{t.gpu_type} x{t.replicas}" for t in targets if t.replicas > 0) or "nothing"
    classes = "; ".join(
        f"{name} -> "
        + ", ".join(f"{r.cluster}/{r.gpu_type} {r.weight}%" for r in class_routing if r.request_class == name)
        for name in dict.fromkeys(r.request_class for r in class_routing)
    )
    # _fixed, as _explain: found in review, "-0.000 USD/h" for a cost just below zero.
    summary = f"{reason}: {placed}; {_fixed(cost.usd_per_hour, 3)} USD/h"
    if cost.usd_per_million_tokens is not None:
        summary += f", {_fixed(cost.usd_per_million_tokens, 4)} USD/Mtok"
    if classes:
        summary += f"; request classes {classes}"
    infeasible = _joined_reasons(p.infeasible_reason for p in plans)
    details = _merged_details(groups, plans, infeasible)
    binding = list(dict.fromkeys(b for p in plans for b in p.explanation.binding_constraints))
    # A cluster one group avoids and another places replicas in breaks the deployment's carbon limit.
    broken = {b.removeprefix(_CARBON_BROKEN).split(":")[0] for b in binding if b.startswith(_CARBON_BROKEN)}
    binding = [b for b in binding if b not in {_carbon_avoided(c) for c in broken}]
    max_num_seqs, variants = _merged_engine(plans)
    demand = [p.demand_tokens_per_s for p in plans]
    needed = [p.needed_tokens_per_s for p in plans]
    return replace(
        main,
        feasible=infeasible is None,
        infeasible_reason=infeasible,
        targets=targets,
        steps=steps,
        routing=routing,
        cost=cost,
        explanation=replace(
            main.explanation,
            reason=reason,
            summary=summary[:1024],
            details=tuple(details),
            binding_constraints=tuple(binding),
            saving_usd_per_hour_vs_current=saving,
        ),
        demand_tokens_per_s=None if any(d is None for d in demand) else math.fsum(d or 0.0 for d in demand),
        needed_tokens_per_s=None if any(n is None for n in needed) else math.fsum(n or 0.0 for n in needed),
        capacity_tokens_per_s=math.fsum(p.capacity_tokens_per_s for p in plans),
        max_num_seqs=max_num_seqs,
        class_routing=class_routing,
        variants=variants,
        strays={k: v for p in reversed(plans) for k, v in p.strays.items()},  # a key two groups hold: the main one's
        replaces_strays=any(p.replaces_strays for p in plans),
        held_away={k: v for p in plans for k, v in p.held_away.items()},  # the main group's: no group's home type
        usable_away=frozenset().union(*(p.usable_away for p in plans)),
    )
