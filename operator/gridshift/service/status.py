"""Composes InferenceDeployment, RegionalCluster and GPUProfile status, and the minimal merge patch to reach it.

Status is rebuilt from scratch each cycle, then compared with what is stored, so a cycle in which
nothing meaningful changed produces an empty patch:
- conditions carry their lastTransitionTime over while their status holds, and their messages hold no
  figure that moves with prices or load;
- the last decision is kept, with its figures as decided, while the decided placement is the same
  (`decision_target`): a price change that moves nothing rewrites nothing and emits no Event;
- cost figures are those of the decision (refreshed when it or the spec changes); measured figures
  are kept until what was measured (J/token, tokens/s) moves by more than MEASURED_DRIFT, never for a price.

The words (condition types and reasons) come from gridshift.api.conditions; `deployment_health`
decides them, in one pure function.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from gridshift import redaction
from gridshift.actuation.members import ActuationForbidden, KubeconfigInvalid, NamespaceMissing
from gridshift.api import GPUProfile, InferenceDeploymentStatus, MigrationMode, RegionalClusterStatus
from gridshift.api.base import ApiModel
from gridshift.api.common import CONDITION_MESSAGE_MAX
from gridshift.api.conditions import (
    CarbonFeedReason,
    ClusterReadyReason,
    ClusterStalledReason,
    ForeignObjectsReason,
    MetricsAmbiguousReason,
    MetricsReason,
    PoorFitReason,
    PriceFeedReason,
    ProfileReadyReason,
    ReadyReason,
    ReconcilingReason,
    SLOReason,
    StalledReason,
)
from gridshift.api.gpu_profile import GPUProfileStatus
from gridshift.api.inference_deployment import DECISION_TARGET_MAX, CostSource, DemandSource, InferenceDeployment
from gridshift.api.regional_cluster import MAX_USD_PER_GPU_HOUR, costs_beyond_bound
from gridshift.hub.client import HubForbidden, SecretMissing
from gridshift.planner import snapshot as S
from gridshift.planner.cost import (
    grams_per_million_tokens_from_energy,
    usd_per_kwh_with_pue,
    usd_per_million_tokens_from_energy,
)
from gridshift.planner.plan import CostPrediction, DeploymentPlan
from gridshift.service.inputs import MeasuredCost, ProfileUse, parse_bodies, profile_uses
from gridshift.service.migrate import MigrationProgress, StepState, routing_to_wire
from gridshift.service.state import ClusterView, ObservedDeployment, Refused

_HORIZON_POINTS = 48
MEASURED_DRIFT = 0.1
"""A measured figure in status (observedSlo, a Measured cost) is rewritten when it moves by more than this
fraction: Prometheus' rates jitter every cycle, and a tenth is well inside what the SLO margins absorb."""
PROFILE_FIT_TOLERANCE = 0.25
"""Largest relative residual of a GPUProfile's fitted model against one of its points before PoorFit.
A quarter: beyond it the capacity model's batch (and so the SLO capacity) is off by more than the
default 20% demand headroom covers."""
_EPS = 1e-6
_EXPLANATION_CHARS = 16384
"""status.lastDecision.explanation is cut to this many characters: the stored and the refreshed alike."""


def sig(value: float | None, digits: int = 3) -> float | None:
    """Round to `digits` significant figures (None and non-finite values become None)."""
    if value is None or not math.isfinite(value):
        return None
    if value == 0:
        return 0.0
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def _steady(previous: Any, new: float | None, tolerance: float = MEASURED_DRIFT) -> float | None:
    """`previous` while `new` is within `tolerance` (relative) of it, else `new`: measured figures are
    not rewritten for jitter."""
    if new is None or not isinstance(previous, int | float) or isinstance(previous, bool):
        return new
    if previous == new or (previous != 0 and abs(new - previous) <= tolerance * abs(previous)):
        return float(previous)
    return new


def _figure(value: float) -> str:
    """A figure for a message: three significant digits, no trailing noise."""
    rounded = sig(value)
    return f"{rounded:g}" if rounded is not None else "?"


class _Conditions:
    """Builds conditions for one object, carrying each lastTransitionTime over while its status holds."""

    def __init__(self, now: datetime, old: Mapping[str, Any], generation: int | None) -> None:
        self.now = now
        self.previous = {c.get("type"): c for c in old.get("conditions") or []}
        self.generation = generation

    def __call__(self, kind: str, holds: bool | None, reason: StrEnum, message: str) -> dict[str, Any]:
        status = "Unknown" if holds is None else "True" if holds else "False"
        previous = self.previous.get(kind)
        changed = previous is None or previous.get("status") != status or "lastTransitionTime" not in previous
        condition = {
            "type": kind,
            "status": status,
            "reason": reason.value,
            # Messages quote feeds' and members' errors and refused specs: cut here, for every condition,
            # to what the CRD stores, so that none is refused for its length; redacted first (a remembered
            # credential in any error quoted, the net under each error's own redaction; found in review).
            "message": redaction.excerpt(message, CONDITION_MESSAGE_MAX),
            "lastTransitionTime": self.now.isoformat() if changed else previous["lastTransitionTime"],  # type: ignore[index]
        }
        if self.generation is not None:
            condition["observedGeneration"] = self.generation
        return condition


# ---------------------------------------------------------------- InferenceDeployment health


@dataclass(frozen=True)
class DeploymentHealth:
    """What Ready, Reconciling, Stalled and SLOAtRisk say about one deployment this cycle."""

    ready: bool
    reason: ReadyReason
    message: str
    reconciling: ReconcilingReason | None
    """Why gridshift is changing the placement (Reconciling=True), or None."""
    slo: SLOReason
    slo_message: str

    @property
    def stalled(self) -> StalledReason | None:
        return _STALLED.get(self.reason)


_STALLED = {
    ReadyReason.INFEASIBLE: StalledReason.INFEASIBLE,
    ReadyReason.INSUFFICIENT_CAPACITY: StalledReason.INSUFFICIENT_CAPACITY,
    ReadyReason.FORBIDDEN: StalledReason.FORBIDDEN,
    ReadyReason.ACTUATION_FAILED: StalledReason.ACTUATION_FAILED,
    ReadyReason.ROUTE_HELD: StalledReason.ROUTE_HELD,
    ReadyReason.SLO_AT_RISK: StalledReason.SLO_AT_RISK,
}
_SLO_STATUS = {
    SLOReason.WITHIN_SLO: False,
    SLOReason.CAPACITY_SHORT: True,
    SLOReason.LATENCY_ABOVE_SLO: True,
    SLOReason.DEMAND_UNKNOWN: None,
    SLOReason.NOT_SERVED: None,
}


def refusal_reason(refused: MigrationProgress) -> ReadyReason:
    """Ready's reason for this cycle's refused write (MigrationProgress.failure, the error raised), and the
    cycle-error metric's (service.report): one rule, so status and metric agree.

    ActuationForbidden, NamespaceMissing and the hub's HubForbidden (routing weights) need an administrator
    (Forbidden); anything else, such as an object of that name that is not gridshift's, is retried every cycle
    (ActuationFailed). Told by the error's type, not its text: found in review, the text (which quotes the member:
    an admission webhook's "denied the request: forbidden: ...", an HTTP 400) read Forbidden."""
    needs_admin = isinstance(refused.failure, ActuationForbidden | NamespaceMissing | HubForbidden)
    return ReadyReason.FORBIDDEN if needs_admin else ReadyReason.ACTUATION_FAILED


def decision_target(plan: DeploymentPlan) -> str:
    """The decided placement in one stable line: `cluster/GPU type xN`, the reachable targets and the unreachable
    ones the plan keeps (`_keeps_stranded` as decided: Frozen, or nothing reachable replaces them).

    Found in review: only reachable targets counted, so a Frozen deployment whose cluster was lost decided
    "Frozen: keeps nothing" (and refreshed status.cost to 0 USD/h) though it kept its 7 replicas there; a change
    in reachability alone is no new decision."""
    kept = _keeps_stranded(plan, as_decided=True)
    # By cluster (stable: GPU types in the spec's order): the planner lists unreachable targets after the others.
    placed = sorted((t for t in plan.targets if t.replicas > 0 and (t.reachable or kept)), key=lambda t: t.cluster)
    return ", ".join(f"{t.cluster}/{t.gpu_type} x{t.replicas}" for t in placed) or "nothing"


def _in_allowed_regions(idep: InferenceDeployment, views: Mapping[str, ClusterView]) -> dict[str, ClusterView]:
    """The clusters in a region the deployment's placement allows (allowedRegions, forbiddenRegions)."""
    placement = idep.spec.placement
    return {
        name: v
        for name, v in views.items()
        if (not placement.allowed_regions or v.region in placement.allowed_regions)
        and v.region not in placement.forbidden_regions
    }


def _namespace_refused(idep: InferenceDeployment, namespace: str, views: Mapping[str, ClusterView]) -> bool:
    """Whether every cluster in a region the deployment may use refuses its namespace (tenantNamespaceSelector)."""
    candidates = _in_allowed_regions(idep, views).values()
    return bool(candidates) and all(
        v.admitted_namespaces is not None and namespace not in v.admitted_namespaces for v in candidates
    )


def _concerning(
    idep: InferenceDeployment, applied: S.Deployment, views: Mapping[str, ClusterView]
) -> dict[str, ClusterView]:
    """The clusters whose reachability and prices concern the deployment: those it may use (allowed
    region, namespace admitted) and those it has replicas in. Found in review: PriceFeedStale and Ready
    named every cluster of the fleet, so a deployment held to Europe said "no fresh prices from:
    us-east", and one cluster going down rewrote every deployment's status."""
    held = {p.cluster for p in applied.placements if p.desired > 0 or p.ready > 0}
    allowed = _in_allowed_regions(idep, views)
    return {
        name: v
        for name, v in views.items()
        if name in held
        or (name in allowed and (v.admitted_namespaces is None or applied.namespace in v.admitted_namespaces))
    }


def _plan_problem(
    plan: DeploymentPlan, idep: InferenceDeployment, namespace: str, views: Mapping[str, ClusterView]
) -> tuple[ReadyReason, str]:
    """Why an infeasible plan is infeasible, in Ready's words."""
    why = plan.infeasible_reason or "the plan cannot meet the spec"
    if _namespace_refused(idep, namespace, views):
        return ReadyReason.FORBIDDEN, f"no RegionalCluster admits namespace {namespace} (tenantNamespaceSelector)"
    places = any(t.reachable and t.replicas > 0 for t in plan.targets)
    short = plan.needed_tokens_per_s is not None and plan.capacity_tokens_per_s + _EPS < plan.needed_tokens_per_s
    if places and (short or plan.total_replicas < idep.spec.capacity.min_replicas):
        return ReadyReason.INSUFFICIENT_CAPACITY, why
    return ReadyReason.INFEASIBLE, why


@dataclass(frozen=True)
class _ReadyCapacity:
    """What the Ready replicas serve: whether they cover the demand, their capacity (tokens/s), "n/m replicas
    Ready" for the messages, the Ready strays whose capacity nothing gives (`unknown`: `cluster/GPU type xN`, or
    ""), and those counted 0 because their GPUProfile gives none for the spec (`unable`, alike)."""

    covered: bool
    tokens_per_s: float
    counts: str
    unknown: str
    unable: str = ""


def _ready_capacity(
    min_replicas: int, applied: S.Deployment, plan: DeploymentPlan, views: Mapping[str, ClusterView]
) -> _ReadyCapacity:
    """Whether the Ready replicas cover what the demand needs at the SLO (demand unknown: every replica the plan
    keeps Ready), and their capacity.

    Ready replicas where the deployment may no longer run (plan.strays) serve until the move that replaces them
    is done, and count at the unit the make-before-break steps give them: an option's of their GPU type, else the
    deployment's profile of that type (a type dropped from gpuTypes, or no longer offered). Found in review: only
    the plan's targets counted, so forbidding the region a deployment ran in read SLOAtRisk CapacityShort ("Ready
    capacity 0 tokens/s") while its 7 Ready replicas there took all the traffic; and again for strays on a GPU type
    no option had left. Where no profile gives a stray's capacity either (plan.strays None), it counts 0 and is
    named (`unknown`), so that a CapacityShort says what it leaves out rather than claim those replicas serve
    nothing; where its profile gives 0 (the SLO, memory, a request class) it counts 0 as such (`unable`): found in
    review, those were named as unknown beside an explanation saying why the type serves nothing."""
    per_replica = {(t.cluster, t.gpu_type): t.capacity_tokens_per_s_per_replica for t in plan.targets}
    for key, unit in plan.strays.items():  # a stray the plan stops is a target of 0 replicas, counted as 0
        per_replica[key] = max(per_replica.get(key, 0.0), unit or 0.0)
    ready = sum(p.ready for p in applied.placements)
    desired = sum(p.desired for p in applied.placements if counts_as_desired(p.cluster, views, plan))
    ready_capacity = sum(p.ready * per_replica.get((p.cluster, p.gpu_type), 0.0) for p in applied.placements)
    needed = plan.needed_tokens_per_s
    if needed is None:
        covered = ready >= desired and (desired > 0 or min_replicas == 0)
    else:
        covered = ready_capacity + _EPS >= needed and ready >= min_replicas
    unknown, unable = _uncounted_strays(applied, plan, per_replica)
    return _ReadyCapacity(covered, ready_capacity, f"{ready}/{desired} replicas Ready", unknown, unable)


def _uncounted_strays(
    applied: S.Deployment, plan: DeploymentPlan, per_replica: Mapping[tuple[str, str], float]
) -> tuple[str, str]:
    """The Ready strays counted 0 (`cluster/GPU type xN`, or ""): those no GPUProfile gives the capacity of
    (plan.strays None), and those whose GPUProfile gives none for the spec (0.0)."""
    unknown: list[str] = []
    unable: list[str] = []
    for p in applied.placements:
        key = (p.cluster, p.gpu_type)
        if p.ready > 0 and key in plan.strays and per_replica[key] <= 0.0:
            (unknown if plan.strays[key] is None else unable).append(f"{p.cluster}/{p.gpu_type} x{p.ready}")
    return ", ".join(unknown), ", ".join(unable)


def deployment_health(
    idep: InferenceDeployment,
    namespace: str,
    applied: S.Deployment,
    plan: DeploymentPlan,
    progress: MigrationProgress,
    views: Mapping[str, ClusterView],
    measured: MeasuredCost | None,
) -> DeploymentHealth:
    """Ready (with its reason), Reconciling and the SLO state of one deployment; see gridshift.api.conditions.

    Ready is True only when the Ready replicas' capacity covers what the demand needs at the SLO (with
    the spec's headroom) and measured latency, when there is any, is within the SLO; in Advisory mode,
    when the reported plan would. The first problem found names the reason: the plan (Forbidden, Infeasible,
    InsufficientCapacity), a member's refusal (Forbidden, ActuationFailed), capacity not Ready yet (Unreachable,
    Starting), an HTTPRoute another deployment holds (RouteHeld, after a move in flight), measured latency
    (SLOAtRisk), then a move in flight (Migrating)."""
    spec = idep.spec
    reachable = [p for p in applied.placements if p.cluster in views and views[p.cluster].reachable]
    capacity = _ready_capacity(spec.capacity.min_replicas, applied, plan, views)
    covered, counts, needed = capacity.covered, capacity.counts, plan.needed_tokens_per_s
    starting = any(p.ready < p.desired for p in reachable)
    lost = sorted({p.cluster for p in applied.placements if p.desired > 0 and p not in reachable})
    latency = _latency_above(idep, measured)

    static = spec.demand.source is DemandSource.STATIC
    slo, slo_message = _slo_state(
        plan.mode,
        needed,
        capacity.tokens_per_s,
        latency,
        measured,
        figures=static,
        uncounted=(capacity.unknown, capacity.unable),
    )

    def health(reason: ReadyReason, message: str, reconciling: ReconcilingReason | None = None) -> DeploymentHealth:
        ready = reason in (ReadyReason.PLACED, ReadyReason.MIGRATING, ReadyReason.FROZEN, ReadyReason.ADVISORY)
        message += _scale_back_pending(progress)
        return DeploymentHealth(ready, reason, message, None if reason in _STALLED else reconciling, slo, slo_message)

    if plan.mode is not MigrationMode.FROZEN and not plan.feasible:
        reason, why = _plan_problem(plan, idep, applied.namespace, views)
        return health(reason, f"{why}; {counts}")
    if plan.mode is MigrationMode.ADVISORY:
        return health(
            ReadyReason.ADVISORY,
            f"gridshift places and changes nothing; the plan would run {decision_target(plan)}",
        )
    if progress.error is not None:
        return health(refusal_reason(progress), f"{progress.status_error or progress.error}; {counts}")
    frozen = plan.mode is MigrationMode.FROZEN
    if not covered:
        if lost and not frozen:
            return health(
                ReadyReason.UNREACHABLE,
                f"replicas in unreachable {', '.join(lost)} not counted; raising capacity in reachable clusters; "
                + counts,
                ReconcilingReason.UNREACHABLE,
            )
        if frozen and not starting:
            # Found in review: a lost cluster read Unreachable, Reconciling for ever, though Frozen replaces nothing.
            where = f"replicas in unreachable {', '.join(lost)} not counted and not replaced; " if lost else ""
            return health(
                ReadyReason.INSUFFICIENT_CAPACITY,
                f"mode Frozen: {where}the kept placement does not cover the demand ({slo_message}); {counts}",
            )
        return health(ReadyReason.STARTING, f"waiting for replicas to be Ready; {counts}", ReconcilingReason.STARTING)
    # A route another deployment holds (found in review: it said Ready Placed), before measured latency (both
    # Stalled: behind it the tenant was not told), not while a move runs (it read Reconciling False meanwhile).
    if progress.route_held is not None and not (progress.in_flight and not frozen):
        return health(ReadyReason.ROUTE_HELD, f"{progress.route_held}; {counts}")
    if latency:
        return health(ReadyReason.SLO_AT_RISK, f"{latency}; {counts}")
    if (move := None if frozen else _move(progress, applied, plan)) is not None:
        return health(ReadyReason.MIGRATING, f"{move}; {counts}", ReconcilingReason.MIGRATING)
    still = ReconcilingReason.STARTING if starting else None
    if frozen:
        return health(ReadyReason.FROZEN, f"placement kept as it is; {counts}", still)
    return health(ReadyReason.PLACED, _placed_message(counts, needed), still)


def _scale_back_pending(progress: MigrationProgress) -> str:
    """What Ready adds in the cycle a roll-back could not scale back a cluster that did not answer (MigrationProgress.
    scale_back_pending), "" otherwise. Found in review: Ready read "migration rolled back: ..." while the replicas
    there had not been scaled back. Not where a refused write was rolled back: Ready then quotes the roll-back's
    reason, which says it."""
    if not progress.scale_back_pending or progress.error is not None:
        return ""
    where = ", ".join(progress.scale_back_pending)
    return f"; roll-back not written in {where} (not answering), left to a later wait's roll-back"


def _move(progress: MigrationProgress, applied: S.Deployment, plan: DeploymentPlan) -> str | None:
    """What Ready and Reconciling say of a move (Migrating): one in flight, or one decided that stops replicas where
    the deployment may no longer run and waits to start; None without either. Not for Frozen: its steps are kept,
    not run (review: it read Migrating)."""
    if progress.in_flight:
        done = sum(1 for s in progress.steps if s.state is StepState.DONE)
        return f"make-before-break move, {done}/{len(progress.steps)} steps done"
    if (strays := _strays_to_stop(applied, plan)) is not None:
        # Not "(revalidateDelaySeconds)": found in review, it read so with the delay 0, the move waiting on its batch.
        # A plan with no replica anywhere scales to zero: nothing is made before they break.
        move = "make-before-break move" if plan.total_replicas else "scale to zero"
        return (
            f"{move} decided, not under way yet: replicas where the deployment may no longer run "
            f"stop when it runs ({strays})"
        )
    return None


def _strays_to_stop(applied: S.Deployment, plan: DeploymentPlan) -> str | None:
    """The replicas running where the deployment may no longer run that the Auto plan replaces and stops
    (plan.strays; `cluster/GPU type xN`), or None. Until they stop the spec is not carried out: found in review, a
    region forbidden read observedGeneration N, Reconciling False, once the replicas elsewhere were Ready, while
    those in the forbidden region ran on for revalidateDelaySeconds (kstatus Current, so Flux went on). The plan
    says whether it replaces them (DeploymentPlan.replaces_strays): with replicas elsewhere, or scaled to zero (no
    demand, minReplicas 0: found in review, they were kept then and read Reconciled); not with nowhere else to run."""
    if plan.mode is not MigrationMode.AUTO or not plan.replaces_strays:
        return None
    running = [p for p in applied.placements if p.desired > 0 and (p.cluster, p.gpu_type) in plan.strays]
    return ", ".join(f"{p.cluster}/{p.gpu_type} x{p.desired}" for p in running) or None


def _placed_message(counts: str, needed: float | None) -> str:
    """Ready's message when Placed. With demand unknown, Ready means every replica kept is Ready, no more (found
    in review: "covering the demand" beside SLOAtRisk Unknown DemandUnknown)."""
    if needed is None:
        return f"{counts}; request rate unknown, so coverage of the demand not judged"
    return f"{counts}, covering the demand"


def _slo_state(
    mode: MigrationMode,
    needed: float | None,
    ready_capacity: float,
    latency: str | None,
    measured: MeasuredCost | None,
    figures: bool = True,
    uncounted: tuple[str, str] = ("", ""),
) -> tuple[SLOReason, str]:
    """The SLO state and its message: nothing served (Advisory), then measured latency, then unknown demand,
    then Ready capacity against what the demand needs. Without `figures` (measured demand) the message
    names no tokens/s: they move with every scrape, and each new message was a status write a cycle
    (review; the rate is in status.observedSlo, rewritten only when it moves by a tenth). A CapacityShort
    names the Ready strays it counted 0 (`uncounted`, _ReadyCapacity's `unknown` and `unable`): those no profile
    gives the capacity of, short of what is known, and those whose profile gives none for the spec.

    Latency is judged before demand: it is measured whether or not the request rate is (found in review: with
    p95 TTFT at 900 ms against 500 and one pod's scrape failing, Ready said SLOAtRisk while SLOAtRisk read
    Unknown DemandUnknown and gridshift_deployment_slo_at_risk fell to 0)."""
    if mode is MigrationMode.ADVISORY:
        return SLOReason.NOT_SERVED, "mode Advisory: gridshift serves nothing"
    if latency:
        return SLOReason.LATENCY_ABOVE_SLO, latency
    if needed is None:
        return SLOReason.DEMAND_UNKNOWN, "request rate unknown: capacity cannot be compared with demand"
    within = ""
    if measured is not None and measured.latency_unknown:
        # Not "within" on the latency that answered: the failed one may be far above (found in review).
        within = "; measured p95 latency unknown (a latency query failed)"
    elif measured is not None and _measures_latency(measured):
        within = "; measured p95 latency within the SLO"
    capacity = f"Ready capacity {_figure(ready_capacity)} tokens/s" if figures else "Ready capacity"
    demand = f"the {_figure(needed)} tokens/s the demand" if figures else "what the measured demand"
    if ready_capacity + _EPS < needed:
        rate = "" if figures else "; the rate is in status.observedSlo"
        unknown, unable = uncounted
        left_out = (
            f"; not counted: Ready replicas where it may no longer run, whose capacity no GPUProfile gives "
            f"({unknown}), serving until the move replaces them"
            if unknown
            else ""
        )
        if unable:
            left_out += (
                # Not "within the SLO", nor "lastDecision says why" (review): the profile's 0 may be its memory
                # (weights, KV cache) or a request class the type cannot serve, and lastDecision explains only the
                # GPU types still in spec.gpuTypes.
                f"; counted as 0: Ready replicas on a GPU type whose GPUProfile gives it no capacity for this "
                f"deployment's spec ({unable}: the SLO, memory, or a request class it cannot serve)"
            )
        return (
            SLOReason.CAPACITY_SHORT,
            f"{capacity} is below {demand} needs within the SLO (headroom included{rate}){left_out}",
        )
    return SLOReason.WITHIN_SLO, f"{capacity} covers {demand} needs{within}"


def _latency_above(idep: InferenceDeployment, measured: MeasuredCost | None) -> str | None:
    """Which measured p95 latency exceeds the SLO, as a message; None when none does (or none is measured).
    Where a cluster's query failed, the worst of the others is a lower bound: above the SLO, the SLO is missed.

    The objective is named, the measured figure not: it moves with every scrape, and each new message was a
    status write a cycle while latency stayed above (review; it is in status.observedSlo, rewritten only when it
    moves by a tenth)."""
    if measured is None:
        return None
    slo = idep.spec.slo
    over = []
    for what, known, at_least, objective_ms in (
        ("time to first token", measured.ttft_p95_seconds, measured.ttft_p95_at_least, slo.ttft_p95_ms),
        ("time per output token", measured.tpot_p95_seconds, measured.tpot_p95_at_least, slo.tpot_p95_ms),
    ):
        seconds = at_least if known is None else known  # the floor stands in only where the figure is unknown
        if seconds is not None and seconds * 1000 > objective_ms:
            over.append(f"p95 {what} above the {objective_ms:g} ms SLO")
    return "measured " + " and ".join(over) + " (status.observedSlo)" if over else None


def _measures_latency(measured: MeasuredCost) -> bool:
    return measured.ttft_p95_seconds is not None or measured.tpot_p95_seconds is not None


# ---------------------------------------------------------------- InferenceDeployment status


@dataclass(frozen=True)
class DecisionChange:
    """A decision that differs from the stored one: its Event is emitted by the report stage."""

    reason: str
    summary: str
    mode: MigrationMode


def _summary(plan: DeploymentPlan, target: str) -> str:
    if plan.mode is MigrationMode.ADVISORY:
        return f"Advisory: would run: {target}"
    if plan.mode is MigrationMode.FROZEN:
        return f"Frozen: keeps {target}"
    return f"{plan.explanation.reason}: {target}"


def _decision(
    now: datetime, plan: DeploymentPlan, old: Mapping[str, Any]
) -> tuple[dict[str, Any], DecisionChange | None]:
    """The lastDecision to store, and the change when it is a new decision.

    A decision is its placement (`decision_target`), mode and feasibility: while they hold, the stored
    decision is kept as first written, its reason, figures and time included. The planner's figures
    move with every price (its reason and saving are read against the placement a move in flight
    leaves, DeploymentProblem.steady: each step of a paced move is a move, not a scale-down)."""
    explanation = plan.explanation
    target = decision_target(plan)[:DECISION_TARGET_MAX]  # cut alike every cycle: still compared as it is stored
    previous = old.get("lastDecision") or {}
    same = (
        previous.get("target") == target
        and old.get("mode") == plan.mode.value
        and (previous.get("reason") == "Infeasible") == (explanation.reason == "Infeasible")
        and "time" in previous
    )
    if same:
        return _refreshed(previous, plan), None
    summary = _summary(plan, target)
    decision = {
        "time": now.isoformat(),
        "reason": explanation.reason,
        "target": target,
        "summary": summary[:1024],
        "explanation": "\n".join(explanation.details)[:_EXPLANATION_CHARS],
        "estimatedSavingUsdPerHour": sig(explanation.saving_usd_per_hour_vs_current),
    }
    return {k: v for k, v in decision.items() if v is not None}, DecisionChange(explanation.reason, summary, plan.mode)


def _refreshed(previous: Mapping[str, Any], plan: DeploymentPlan) -> dict[str, Any]:
    """The stored decision kept, its explanation refreshed where the plan is infeasible for another reason than
    the one the explanation opens with (Ready's message changed with it): the decision is the same, so no Event.
    Found in review: a spec adding minRegions 2 to a deployment infeasible for its maxReplicas left the
    explanation saying the first reason only, and one stored before explanations opened with it stayed empty.
    Only an explanation that opens with its reason is stored so: the rest moves with every price, and the
    opening holds until the reason changes again, so it is not rewritten each cycle."""
    kept = dict(previous)
    details = plan.explanation.details
    reason = plan.infeasible_reason
    if reason and details[:1] == (reason,) and str(previous.get("explanation", "")).split("\n", 1)[0] != reason:
        kept["explanation"] = "\n".join(details)[:_EXPLANATION_CHARS]
    return kept


def _priced_token_rate(plan: DeploymentPlan, applied: S.Deployment, measured: MeasuredCost) -> float | None:
    """The measured output tokens/s of the replicas status.cost prices: those of every cluster but the ones where
    it runs only replicas it leaves out (CostPrediction.unpriced); None where a cluster runs or plans both kinds,
    the measured rate summing them there (vLLM's series are read per cluster, not per GPU type).

    Found in review: a Measured usdPerMillionTokens divided the priced replicas' GPU-hours by the tokens every
    replica served, so it read low by the unpriced ones' share, unflagged. Where they share a cluster with priced
    ones no measured split is known: a split by Ready replicas would credit one GPU type with another's tokens
    under a source that says Measured, so the figure is left out and `unpricedReplicas` says why.

    None too where a cluster the plan prices replicas in, Ready there, measured no token rate (no series, or its
    query failed): found in review, the priced replicas' GPU-hours were over the other clusters' tokens alone, so
    usdPerMillionTokens read high under a source that says Measured. Replicas not Ready there serve nothing yet:
    a move's new cluster, not yet scraped, leaves the figure in."""
    unpriced = {(cluster, gpu_type) for cluster, gpu_type, _ in plan.cost.unpriced}
    serving = {p.cluster for p in applied.placements if p.ready > 0}
    priced = {t.cluster for t in plan.targets if t.replicas > 0 and (t.cluster, t.gpu_type) not in unpriced}
    if (priced & serving) - {cluster for cluster, _ in measured.tokens_by_cluster}:
        return None
    if not unpriced:
        return measured.generation_tokens_per_second
    pools = {(p.cluster, p.gpu_type) for p in applied.placements if p.desired > 0 or p.ready > 0}
    pools |= {(t.cluster, t.gpu_type) for t in plan.targets if t.replicas > 0}
    left_out = {cluster for cluster, _ in unpriced}
    if any(cluster in left_out for cluster, _ in pools - unpriced):
        return None
    return sum(tokens for cluster, tokens in measured.tokens_by_cluster if cluster not in left_out)


def _cost(
    now: datetime,
    plan: DeploymentPlan,
    applied: S.Deployment,
    measured: MeasuredCost | None,
    old: Mapping[str, Any],
    refresh: bool,
) -> dict[str, Any]:
    """status.cost: the plan's figures as decided (refreshed with `refresh`, or where unpricedReplicas changed),
    measured ones when there are; a Measured cost is recomputed, at this cycle's prices, when its measured inputs
    move (`_measured_moved`)."""
    cost = plan.cost
    out: dict[str, Any] = {
        "usdPerHour": sig(cost.usd_per_hour),
        "usdPerMillionTokens": sig(cost.usd_per_million_tokens),
        "joulesPerToken": sig(cost.joules_per_token),
        "energyShare": sig(min(1.0, max(0.0, cost.energy_share))) if cost.energy_share is not None else None,
        "source": CostSource.HYPOTHETICAL.value if plan.mode is MigrationMode.ADVISORY else CostSource.PREDICTED.value,
        "gramsCo2PerMillionTokens": sig(cost.co2_grams_per_million_tokens),
        "kgCo2PerHour": sig(cost.co2_grams_per_hour / 1000.0) if cost.co2_grams_per_hour is not None else None,
        "carbonUsdPerHour": sig(cost.carbon_usd_per_hour) if cost.carbon_usd_per_hour else None,
        "unpricedReplicas": cost.unpriced_replicas or None,
    }
    previous: Mapping[str, Any] = old.get("cost") or {}
    if measured is not None and measured.joules_per_token is not None and plan.mode is not MigrationMode.ADVISORY:
        priced_tokens = _priced_token_rate(plan, applied, measured)
        # Stored only beside unpricedReplicas: where every replica is priced it is observedSlo's token rate.
        out["pricedOutputTokensPerSecond"] = sig(priced_tokens) if cost.unpriced else None
        out.update(_measured_figures(cost, measured.joules_per_token, priced_tokens))
        if (
            not refresh
            and previous.get("source") == CostSource.MEASURED.value
            and not _measured_moved(measured, out, old)
        ):
            return dict(previous)
    elif (
        not refresh
        and previous.get("source") == out["source"]
        and "time" in previous
        and previous.get("unpricedReplicas") == out["unpricedReplicas"]
    ):
        # As decided: a price change alone is not news (metrics carry the live figure). Replicas becoming
        # unpriced (or priced again) are: found in review, a cluster ceasing to offer a Frozen deployment's GPU
        # type left the stored cost pricing its replicas, with no unpricedReplicas, until a new decision.
        return dict(previous)
    out["time"] = now.isoformat()
    return {k: v for k, v in out.items() if v is not None}


def _measured_figures(cost: CostPrediction, joules_per_token: float, priced_tokens: float | None) -> dict[str, Any]:
    """A Measured status.cost's own figures (the rest are the plan's): usdPerMillionTokens over `priced_tokens`
    (none without them), the measured `joules_per_token`, and gramsCo2PerMillionTokens where the plan has an
    intensity."""
    # Measured energy priced where the placement draws it (USD per GPU watt-hour, PUE included): the plan's
    # energy cost over its power. It was the predicted USD/h over measured tokens (review: with owned GPUs,
    # 0.033 USD/Mtok beside 2 J/token that cost 0.067 at the price, and the chart's rules said 0.067).
    usd_per_watt_hour = cost.energy_usd_per_hour / cost.power_watts if cost.power_watts > 0 else 0.0
    figures: dict[str, Any] = {
        "source": CostSource.MEASURED.value,
        "usdPerMillionTokens": sig(
            usd_per_million_tokens_from_energy(
                cost.gpu_usd_per_hour,
                priced_tokens,
                joules_per_token,
                usd_per_watt_hour,
            ),
            2,
        ),
        "joulesPerToken": sig(joules_per_token, 2),
    }
    if cost.co2_grams_per_hour is not None and cost.power_watts > 0:
        # Measured GPU energy per token x the placement's grams per GPU watt-hour (PUE x intensity).
        grams_per_watt_hour = cost.co2_grams_per_hour / cost.power_watts
        figures["gramsCo2PerMillionTokens"] = sig(
            grams_per_million_tokens_from_energy(joules_per_token, grams_per_watt_hour), 2
        )
    return figures


def _measured_moved(measured: MeasuredCost, out: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    """Whether what a stored Measured cost was computed from moved by more than MEASURED_DRIFT: the J/token it
    holds, the tokens/s status.observedSlo holds (rewritten by the same rule, in the same cycle), or the priced
    replicas' tokens/s it holds beside unpricedReplicas (`out`'s, this cycle's); or whether unpricedReplicas, a
    priced token rate, or a usdPerMillionTokens at all (`out`'s: `_priced_token_rate`), came or went.

    Found in review: the drift was judged on the cost's USD/Mtok and gCO2/Mtok, which move with the price and
    the grid's intensity now: with owned GPUs a price move of a tenth rewrote status.cost, one write per price
    interval and measured deployment, though docs/status.md says never for a price change alone. Found in
    review too: tokens moving from priced replicas' clusters to unpriced ones' at a steady total left
    usdPerMillionTokens at a third of its worth, one left out while clusters mixed both stayed out after, and
    a cluster ceasing to offer a GPU type left the stored cost without unpricedReplicas. And a usdPerMillionTokens
    left out while a cluster of priced replicas measured no tokens stayed out once it did, where every replica is
    priced (no pricedOutputTokensPerSecond) and its tokens were under a tenth of the total."""
    stored: Mapping[str, Any] = old.get("cost") or {}
    joules = stored.get("joulesPerToken")
    tokens = (old.get("observedSlo") or {}).get("outputTokensPerSecond")
    priced = stored.get("pricedOutputTokensPerSecond")
    return (
        _steady(joules, sig(measured.joules_per_token, 2)) != joules
        or _steady(tokens, sig(measured.generation_tokens_per_second)) != tokens
        or _steady(priced, out.get("pricedOutputTokensPerSecond")) != priced
        or stored.get("unpricedReplicas") != out.get("unpricedReplicas")
        or ("usdPerMillionTokens" in stored) != (out.get("usdPerMillionTokens") is not None)
    )


def _observed_slo(
    idep: InferenceDeployment, applied: S.Deployment, measured: MeasuredCost | None, old: Mapping[str, Any]
) -> dict[str, Any]:
    """status.observedSlo from what Prometheus measured (nothing for Static demand)."""
    previous: Mapping[str, Any] = old.get("observedSlo") or {}
    figures: dict[str, float | None] = {}
    if idep.spec.demand.source is DemandSource.PROMETHEUS:
        figures["requestsPerSecond"] = sig(applied.demand.requests_per_second)
    if measured is not None:
        figures["outputTokensPerSecond"] = sig(measured.generation_tokens_per_second)
        if measured.ttft_p95_seconds is not None:
            figures["ttftP95Ms"] = sig(measured.ttft_p95_seconds * 1000, 2)
        if measured.tpot_p95_seconds is not None:
            figures["tpotP95Ms"] = sig(measured.tpot_p95_seconds * 1000, 2)
    steady = {k: _steady(previous.get(k), v) for k, v in figures.items()}
    return {k: v for k, v in steady.items() if v is not None}


@dataclass(frozen=True)
class DeploymentReport:
    """The status an InferenceDeployment should have after this cycle, and what it says."""

    status: dict[str, Any]
    health: DeploymentHealth
    decision: DecisionChange | None
    """Set when the decision differs from the stored one."""


def deployment_status(
    now: datetime,
    deployment: ObservedDeployment,
    applied: S.Deployment,
    plan: DeploymentPlan,
    progress: MigrationProgress,
    views: Mapping[str, ClusterView],
) -> DeploymentReport:
    """The InferenceDeployment's status as it should be after this cycle (wire format), with its health."""
    idep, old = deployment.resource, deployment.old_status
    generation = deployment.body["metadata"].get("generation")
    placements = _placements(applied, views)
    ready = sum(p["ready"] for p in placements)
    wanted = [p for p in placements if counts_as_desired(p["cluster"], views, plan)]
    desired, regions = sum(p["desired"] for p in wanted), sorted({p["region"] for p in wanted if p["desired"] > 0})
    concerning = _concerning(idep, applied, views)
    unreachable = sorted(c for c, v in concerning.items() if not v.reachable)
    stale_prices = sorted(c for c, v in concerning.items() if v.reading is None or v.reading.stale)
    health = deployment_health(idep, applied.namespace, applied, plan, progress, views, deployment.measured)
    decision, change = _decision(now, plan, old)
    refresh = change is not None or old.get("observedGeneration") != generation
    condition = _Conditions(now, old, generation)
    no_metrics = applied.demand.requests_per_second is None and idep.spec.demand.source is DemandSource.PROMETHEUS
    stalled = health.stalled
    conditions = [
        condition(
            "Ready",
            health.ready,
            health.reason,
            health.message + (f"; unreachable clusters not counted: {', '.join(unreachable)}" if unreachable else ""),
        ),
        condition(
            "Reconciling",
            health.reconciling is not None,
            health.reconciling or (ReconcilingReason.STALLED if stalled is not None else ReconcilingReason.RECONCILED),
            "" if health.reconciling is None else health.message,
        ),
        condition(
            "Stalled",
            stalled is not None,
            stalled or (StalledReason.PROGRESSING if health.reconciling is not None else StalledReason.RECONCILED),
            health.message if stalled is not None else "",
        ),
        condition("SLOAtRisk", _SLO_STATUS[health.slo], health.slo, health.slo_message),
        condition(
            "PriceFeedStale",
            bool(stale_prices),
            PriceFeedReason.STALE if stale_prices else PriceFeedReason.FRESH,
            f"no fresh prices from: {', '.join(stale_prices)}; no price-driven moves" if stale_prices else "",
        ),
        condition(
            "MetricsStale",
            no_metrics,
            MetricsReason.NO_DEMAND_METRICS if no_metrics else MetricsReason.METRICS_FRESH,
            "request rate unknown: never scaling below the capacity running" if no_metrics else "",
        ),
    ]
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "mode": plan.mode.value,
        "regions": ",".join(regions),
        "readyReplicas": ready,
        "desiredReplicas": desired,
        "placements": placements,
        "routing": routing_to_wire(progress.routing),
        "cost": _cost(now, plan, applied, deployment.measured, old, refresh),
        "lastDecision": decision,
        "migration": [s.to_wire() for s in progress.steps],
        "conditions": conditions,
    }
    observed = _observed_slo(idep, applied, deployment.measured, old)
    if observed:
        status["observedSlo"] = observed
    # Per request-size class weights, for a size-aware router (planner.classes); [] as stored without any.
    status["classRouting"] = [
        {"requestClass": r.request_class, "cluster": r.cluster, "gpuType": r.gpu_type, "weight": r.weight}
        for r in plan.class_routing
    ]
    stored = _as_stored(InferenceDeploymentStatus, {k: v for k, v in status.items() if v is not None}, old)
    return DeploymentReport(stored, health, change)


def counts_as_desired(cluster: str, views: Mapping[str, ClusterView], plan: DeploymentPlan) -> bool:
    """Whether the replicas last applied in `cluster` count as desired: in a cluster that cannot be reached
    (or is gone) only while the plan keeps them there and replaces them nowhere else (Frozen keeps them;
    Auto places their replacements in reachable clusters when it can). Found in review: during an outage
    desiredReplicas and gridshift_deployment_desired_replicas counted both the stranded replicas and their
    replacements (Desired 14 for a decision of 7); and then, in review of that fix, a Frozen deployment
    whose cluster was lost showed Desired 0 though nothing replaced its replicas; and (again) those on a GPU type
    dropped from gpuTypes while their cluster was away, which no target lists (DeploymentPlan.held_away), showed
    Desired 0 in Auto and Advisory modes though they ran on: counted by the same rule."""
    view = views.get(cluster)
    if view is not None and view.reachable:
        return True
    held = any(c == cluster for c, _ in plan.held_away)
    if not held and not any(t.cluster == cluster and t.replicas > 0 for t in plan.targets):
        return False
    return _keeps_stranded(plan, as_decided=False)


def _keeps_stranded(plan: DeploymentPlan, *, as_decided: bool) -> bool:
    """Whether the plan keeps the replicas it has in clusters it cannot reach: while no reachable target
    replaces them, and always in Frozen mode; in Advisory mode too, unless `as_decided` (an Advisory plan acts
    on nothing, so they stay running, but what it decides is to replace them: decision_target)."""
    if plan.mode is MigrationMode.FROZEN or (plan.mode is MigrationMode.ADVISORY and not as_decided):
        return True
    return not any(t.reachable and t.replicas > 0 for t in plan.targets)


def _placements(applied: S.Deployment, views: Mapping[str, ClusterView]) -> list[dict[str, Any]]:
    return [
        {
            "cluster": p.cluster,
            "region": views[p.cluster].region if p.cluster in views else "",
            "gpuType": p.gpu_type,
            "desired": p.desired,
            "ready": p.ready,
        }
        for p in applied.placements
        if p.desired > 0 or p.ready > 0
    ]


def _as_stored(
    model: type[ApiModel], status: dict[str, Any], stored: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Validated against the API model (a misspelt key, or a condition reason not documented for its type,
    fails here rather than at the apiserver) and serialised as the apiserver will store it, so comparisons
    next cycle are exact.

    A status composed equal to the one `stored` is that one as it is: it passed this validation when it
    was written, and nothing will be written now (validating 10,000 unchanged statuses took seconds of an
    idle cycle)."""
    if stored is not None and stored == status:
        return dict(stored)
    return model.model_validate(status).model_dump(by_alias=True, exclude_none=True, mode="json")


# ---------------------------------------------------------------- RegionalCluster


def cluster_failure(view: ClusterView) -> ClusterReadyReason | None:
    """Ready's reason for a cluster that could not be read this cycle (None when it was read)."""
    if view.error is None:
        return None
    failure = view.failure
    if isinstance(failure, ActuationForbidden | HubForbidden):
        return ClusterReadyReason.FORBIDDEN
    if isinstance(failure, KubeconfigInvalid | SecretMissing):  # SecretMissing: missing, unlabelled, no such key
        return ClusterReadyReason.KUBECONFIG_INVALID
    return ClusterReadyReason.UNREACHABLE


def cluster_status(now: datetime, view: ClusterView) -> dict[str, Any]:
    """The RegionalCluster's status after this cycle (wire format). Prices in USD/kWh, with and without PUE."""
    old, reading = view.old_status, view.reading
    generation = view.resource.metadata.get("generation")
    status: dict[str, Any] = {"reachable": view.reachable}
    if isinstance(generation, int):
        status["observedGeneration"] = generation
    # The last inventory read stands only while the cluster is not read. Found in review: it also stood when a
    # reachable cluster answered with no Ready GPU node (`or` on an empty list), so its old GPUs showed for ever.
    status["gpus"] = (
        [{"gpuType": i.gpu_type, "allocatable": i.allocatable, "used": i.used} for i in view.inventory.gpus]
        if view.inventory is not None
        else old.get("gpus", [])
    )
    stale = reading is None or reading.stale
    upcoming = [i for i in view.prices.intervals if i.end > now][:_HORIZON_POINTS]
    current = view.prices.interval_at(now)
    if current is not None:
        status["currentPriceUsdPerKwh"] = sig(current.usd_per_kwh, 4)
        status["currentPriceWithPueUsdPerKwh"] = sig(usd_per_kwh_with_pue(view.pue, current.usd_per_kwh), 4)
    if upcoming:
        status["priceHorizonEnd"] = upcoming[-1].end.isoformat()
        status["priceHorizon"] = [{"start": i.start.isoformat(), "usdPerKwh": sig(i.usd_per_kwh, 4)} for i in upcoming]
    if reading is not None and reading.series is not None and reading.last_good_fetch is not None:
        status["lastPriceFetch"] = reading.last_good_fetch.isoformat()
    if view.namespaces_in_use:
        status["workloadNamespaces"] = list(view.namespaces_in_use)
    carbon_condition = _carbon_status(now, view, status)
    feed_error = view.price_feed_problem or ""
    failure = cluster_failure(view)
    ready = failure or (ClusterReadyReason.PRICE_FEED_STALE if stale else ClusterReadyReason.REACHABLE)
    ready_message = view.error or (f"no fresh prices: {feed_error}" if stale else "")
    if view.shared_member is not None:  # read or not: what it would write is the other RegionalCluster's to write
        ready, ready_message = ClusterReadyReason.SHARED_MEMBER, view.shared_member
    condition = _Conditions(now, old, generation if isinstance(generation, int) else None)
    said = "; ".join(m for m in (ready_message.rstrip(": "), _costs_beyond_bound(view)) if m)
    status["conditions"] = [
        condition("Ready", ready is ClusterReadyReason.REACHABLE, ready, said),
        condition("Reachable", view.reachable, failure or ClusterReadyReason.REACHABLE, view.error or ""),
        condition(
            "Stalled",
            ready is not ClusterReadyReason.REACHABLE,
            ClusterStalledReason.RECONCILED if ready is ClusterReadyReason.REACHABLE else ClusterStalledReason(ready),
            "" if ready is ClusterReadyReason.REACHABLE else ready_message.rstrip(": "),
        ),
        condition("PriceFeedStale", stale, PriceFeedReason.STALE if stale else PriceFeedReason.FRESH, feed_error),
        *([condition("CarbonFeedStale", *carbon_condition)] if carbon_condition is not None else []),
        condition(
            "ForeignObjects",
            bool(view.foreign),
            ForeignObjectsReason.LABELLED_WITHOUT_OWNER if view.foreign else ForeignObjectsReason.NO_FOREIGN_OBJECTS,
            (
                "labelled as gridshift's without owner annotations, ignored: "
                + ", ".join(f"Deployment {w.namespace}/{w.name}" for w in view.foreign[:20])
            )
            if view.foreign
            else "",
        ),
        condition(
            "MetricsAmbiguous",
            view.metrics_conflict is not None,
            MetricsAmbiguousReason.DISTINCT
            if view.metrics_conflict is None
            else MetricsAmbiguousReason.SHARED_WITHOUT_CLUSTER_LABEL,
            view.metrics_conflict or "",
        ),
    ]
    stored = _as_stored(RegionalClusterStatus, status)
    if old.get("priceHorizon") == stored.get("priceHorizon") and "lastPriceFetch" in old:
        # Refreshes that bring the same prices are not news: keep the time the prices last changed.
        stored["lastPriceFetch"] = old["lastPriceFetch"]
    if (
        old.get("currentCarbonIntensityGPerKwh") == stored.get("currentCarbonIntensityGPerKwh")
        and "lastCarbonFetch" in old
        and "lastCarbonFetch" in stored
    ):
        stored["lastCarbonFetch"] = old["lastCarbonFetch"]  # likewise for an unchanged intensity
    return stored


def _costs_beyond_bound(view: ClusterView) -> str:
    """Ready's words on the offerings whose cost is beyond admission's bound (docs/security.md row 81), "" where
    none is. A cluster stored before the bound is planned with its costs as written (refusing it at the read
    stranded its replicas), so without this it read Ready while deployments shunned it, their messages blaming
    inventory. From the spec alone: the same words every cycle, written once. None for a cluster held as another's
    member (SharedMember): it is not planned (review: the words said it was)."""
    spec = view.resource.spec
    found = [
        f"spec.offerings[{i}].hourlyCost ({spec.offerings[i].gpu_type}) is {_beyond(usd)} USD per GPU-hour once "
        "converted"
        for i, usd in costs_beyond_bound(spec.offerings, spec.price_feed.fx_to_usd)
    ]
    if not found or view.shared_member is not None:
        return ""
    return (
        f"{'; '.join(found)}, beyond the bound of {MAX_USD_PER_GPU_HOUR:,g} USD per GPU-hour that admission holds: "
        "stored before the bound, it is used as written wherever this cluster is planned, so deployments avoid it "
        "or run short of replicas; an edit that changes such a cost, or priceFeed.fxToUsd, is admitted only within "
        "the bound (check fxToUsd: USD per one unit of the currency, not its inverse)"
    )


def _beyond(usd: float) -> str:
    """`usd` (beyond MAX_USD_PER_GPU_HOUR) with as many decimals as it takes to read beyond it (review: 1000.0004
    read "1000", equal to the bound)."""
    for decimals in range(2, 13):
        shown = f"{usd:,.{decimals}f}"
        if float(shown.replace(",", "")) > MAX_USD_PER_GPU_HOUR:
            return shown
    return repr(usd)


def _carbon_status(
    now: datetime, view: ClusterView, status: dict[str, Any]
) -> tuple[bool, CarbonFeedReason, str] | None:
    """The carbon fields of a RegionalCluster's status (set in `status`), and its CarbonFeedStale condition
    (None without a carbon feed: the condition is then not written at all)."""
    if view.resource.spec.carbon_feed is None:
        return None
    reading = view.carbon_reading
    status["carbonBasis"] = view.resource.spec.carbon_feed.basis.value
    if reading is not None and reading.series is not None:
        current = reading.series.at(now)
        if current is not None:
            status["currentCarbonIntensityGPerKwh"] = sig(current.g_per_kwh, 4)
        if reading.last_good_fetch is not None:
            status["lastCarbonFetch"] = reading.last_good_fetch.isoformat()
    stale = reading is None or reading.stale
    error = view.carbon_feed_problem or ""
    return stale, CarbonFeedReason.STALE if stale else CarbonFeedReason.FRESH, error


# ---------------------------------------------------------------- GPUProfile


def _relative_errors(pairs: Sequence[tuple[float, float]]) -> tuple[float, float, int]:
    """RMS and largest |model - measured| / measured, and the index of the largest."""
    errors = [abs(model - measured) / measured for model, measured in pairs]
    worst = max(range(len(errors)), key=errors.__getitem__)
    return math.sqrt(sum(e * e for e in errors) / len(errors)), errors[worst], worst


# ---------------------------------------------------------------- objects the model refuses


def refused_status(now: datetime, refused: Refused) -> dict[str, Any]:
    """The status of an object gridshift's model refuses (service.state.Refused): Ready False and Stalled
    True, reason InvalidSpec, the message naming each bad field (and an InferenceDeployment's Reconciling
    False); its other conditions and fields stay as last written, since nothing about them was learnt."""
    old: Mapping[str, Any] = refused.body.get("status") or {}
    generation = (refused.body.get("metadata") or {}).get("generation")
    condition = _Conditions(now, old, generation if isinstance(generation, int) else None)
    model: type[ApiModel]
    if refused.kind == "InferenceDeployment":
        model = InferenceDeploymentStatus
        message = _refusal("not planned, its replicas are left as they run", refused.error)
        replaced = [
            condition("Ready", False, ReadyReason.INVALID_SPEC, message),
            condition("Reconciling", False, ReconcilingReason.STALLED, ""),
            condition("Stalled", True, StalledReason.INVALID_SPEC, message),
        ]
    else:
        model = RegionalClusterStatus
        message = _refusal("the cluster is not used", refused.error)
        replaced = [
            condition("Ready", False, ClusterReadyReason.INVALID_SPEC, message),
            condition("Stalled", True, ClusterStalledReason.INVALID_SPEC, message),
        ]
    by_type = {c["type"]: c for c in replaced}
    kept = [by_type.pop(c.get("type"), c) for c in old.get("conditions") or []]
    status = {**old, "conditions": kept + list(by_type.values())}
    if isinstance(generation, int):
        status["observedGeneration"] = generation
    return _as_stored(model, status, old)


def _refusal(consequence: str, error: str) -> str:
    return f"the spec does not validate ({consequence}): {error}"


def profile_status(now: datetime, body: Mapping[str, Any], use: ProfileUse | None = None) -> dict[str, Any]:
    """The GPUProfile's status: whether the planner uses it (Ready; `use`, service.inputs.profile_uses over every
    GPUProfile, else this one judged alone), and the residuals of its fit against its points."""
    old: Mapping[str, Any] = body.get("status") or {}
    generation = (body.get("metadata") or {}).get("generation")
    condition = _Conditions(now, old, generation if isinstance(generation, int) else None)
    status: dict[str, Any] = {"observedGeneration": generation if isinstance(generation, int) else None}
    if use is None:
        kept = {k: v for k, v in body.items() if k in ("apiVersion", "kind", "metadata", "spec")}
        use = next(iter(profile_uses(parse_bodies([kept], GPUProfile)).values()))
    profile, model = use.resource, use.model
    if profile is None or model is None:
        status["conditions"] = [
            condition(
                "Ready",
                False,
                ProfileReadyReason.INVALID,
                f"not used by the planner: {use.refusal[1] if use.refusal else 'not fitted'}",
            ),
            condition("PoorFit", None, PoorFitReason.NOT_FITTED, ""),
        ]
        return _as_stored(GPUProfileStatus, {k: v for k, v in status.items() if v is not None})
    points = profile.spec.points
    step_rms, step_max, step_worst = _relative_errors(
        [(model.step_time_ms(p.batch, max(p.context_tokens, 1)), p.step_time_ms) for p in points]
    )
    power_rms, power_max, power_worst = _relative_errors([(model.power_watts(p.batch), p.power_watts) for p in points])
    status["fit"] = {
        "points": len(points),
        "stepTimeRmsRelativeError": sig(step_rms),
        "stepTimeMaxRelativeError": sig(step_max),
        "powerRmsRelativeError": sig(power_rms),
        "powerMaxRelativeError": sig(power_max),
        "tolerance": PROFILE_FIT_TOLERANCE,
    }
    poor = []
    if step_max > PROFILE_FIT_TOLERANCE:
        p = points[step_worst]
        poor.append(f"step time at batch {p.batch}, context {p.context_tokens} is off by {step_max:.0%}")
    if power_max > PROFILE_FIT_TOLERANCE:
        p = points[power_worst]
        poor.append(f"power at batch {p.batch} is off by {power_max:.0%}")
    status["conditions"] = [
        (
            condition(
                "Ready",
                True,
                ProfileReadyReason.FITTED,
                f"fitted to {len(points)} points; largest errors: step time {step_max:.0%}, power {power_max:.0%}",
            )
            if use.refusal is None
            else condition("Ready", False, use.refusal[0], f"not used by the planner: {use.refusal[1]}")
        ),
        condition(
            "PoorFit",
            bool(poor),
            PoorFitReason.RESIDUALS_ABOVE_TOLERANCE if poor else PoorFitReason.RESIDUALS_WITHIN_TOLERANCE,
            "; ".join(poor) + f" (tolerance {PROFILE_FIT_TOLERANCE:.0%})" if poor else "",
        ),
    ]
    return _as_stored(GPUProfileStatus, status)


def status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386) taking `old` to `new`; empty when nothing changed.

    Objects are patched key by key, down to any depth, and a key gone from `new` is sent as null: a merge
    patch merges objects, so sending `new`'s object whole left a nested field that became unset (the
    cost's gCO2/Mtok once carbon is unknown) in place, and the status differed, and was written, every
    cycle (found in review). Lists are replaced whole, as a merge patch does."""
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(before, Mapping) and isinstance(value, Mapping):
            nested = status_patch(before, value)
            if nested:
                patch[key] = nested
        elif before != value or key not in old:
            patch[key] = value
    for key in old:
        if key not in new:
            patch[key] = None
    return patch
