"""The report stage: status patches and decision Events on the hub, written only when something changed,
and the cycle's problems by reason (for metrics and structured logs).

Status is composed by service.status (from the observation, the plan and the migration's progress)
and compared with what is stored; the merge patch is empty in an idle cycle, so nothing is written.
An Event goes out only for a new decision (a new placement, mode or feasibility), with a message
built from the decision's reason and placement alone, so that the same decision taken again reads
the same and becomes a series of one Event. A decision Event whose status patch raised (cut, timed out, refused)
is held by the Reporter and sent by the first later cycle that still holds that decision (`_Unannounced`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import partial
from typing import Any

from gridshift import redaction
from gridshift.api import MigrationMode
from gridshift.api.conditions import ClusterReadyReason, SLOReason
from gridshift.api.inference_deployment import DemandSource
from gridshift.hub.client import Hub, ObjectGone, ObjectRef
from gridshift.planner import snapshot as S
from gridshift.planner.plan import DeploymentPlan
from gridshift.service.errors import describe
from gridshift.service.inputs import ProfileUse
from gridshift.service.migrate import MigrationProgress
from gridshift.service.state import (
    ClusterView,
    CycleErrorReason,
    CycleReport,
    DeploymentOutcome,
    Observation,
    ObservedDeployment,
    Problem,
    Refused,
)
from gridshift.service.status import (
    DecisionChange,
    DeploymentReport,
    cluster_failure,
    cluster_status,
    counts_as_desired,
    deployment_status,
    profile_status,
    refusal_reason,
    refused_status,
    status_patch,
)
from gridshift.service.writes import Fenced, WritePool

_log = logging.getLogger("gridshift.service")  # the cycle's own logger: its records read as the loop's


class EventReason(StrEnum):
    """Reasons of the Events gridshift emits (events.k8s.io/v1), one per new decision."""

    SCALE_UP = "ScaleUp"
    SCALE_DOWN = "ScaleDown"
    CHEAPER_PLACEMENT = "CheaperPlacement"
    LOWER_CARBON = "LowerCarbon"
    MAKES_ROOM = "MakesRoom"
    PLACEMENT_RULES = "PlacementRules"
    SLO_AT_RISK = "SLOAtRisk"
    INFEASIBLE = "Infeasible"
    MIGRATION_ROLLED_BACK = "MigrationRolledBack"
    CLEANUP_SKIPPED = "CleanupSkipped"
    ROUTING_GRACE = "RoutingGrace"


EVENT_REASONS: Mapping[EventReason, tuple[str, str]] = {
    EventReason.SCALE_UP: ("Normal", "The plan adds replicas (more demand, or minReplicas/minRegions)."),
    EventReason.SCALE_DOWN: ("Normal", "The plan removes replicas (less demand)."),
    EventReason.CHEAPER_PLACEMENT: (
        "Normal",
        "The plan moves replicas to cheaper capacity (make-before-break), the move paying back within "
        "paybackHorizonHours.",
    ),
    EventReason.LOWER_CARBON: (
        "Normal",
        "The plan moves replicas to lower-carbon capacity (the carbon price, or a carbon limit), make-before-break, "
        "at no saving in money: the message says what it costs.",
    ),
    EventReason.MAKES_ROOM: (
        "Normal",
        "The plan moves replicas out of a pool it gives to other deployments (make-before-break): this deployment "
        "costs more, the fleet less; the message says how much more.",
    ),
    EventReason.PLACEMENT_RULES: (
        "Normal",
        "The plan replaces replicas running where the deployment may no longer run (a region forbidden or no "
        "longer allowed, a cluster excluded or no longer admitting its namespace, a GPU type dropped, without "
        "a GPUProfile or unable to meet the SLO): they stop once those started elsewhere are Ready; or moves "
        "replicas because the running placement breaks minReplicas or minRegions (the message names the rule).",
    ),
    EventReason.SLO_AT_RISK: (
        "Warning",
        "The plan moves replicas because the current placement's capacity does not cover what the demand needs "
        "within the SLO.",
    ),
    EventReason.INFEASIBLE: (
        "Warning",
        "No placement serves the demand within the SLO (the Ready condition says why); what fits runs.",
    ),
    EventReason.MIGRATION_ROLLED_BACK: (
        "Warning",
        "A move's new replicas were not Ready within spec.migration.readyTimeoutSeconds (or a member cluster "
        "refused its write that long): those not Ready were scaled back to the counts before the move, or to the "
        "replicas Ready where the move waited on replicas it did not start in a cluster it routes no traffic to (the "
        "message says when nothing was, and names the clusters where scaling back failed), and no move starts "
        "replicas where the wait ran out again for a hold the message gives (the timeout, doubled at each roll-back "
        "in a row).",
    ),
    EventReason.ROUTING_GRACE: (
        "Warning",
        "A member cluster holding the deployment's replicas is unreachable: while no move is in flight its routing "
        "weight is kept (the message says until when: operator.unreachableRoutingGraceSeconds after the spell "
        "began) while its pods report fresh vLLM metrics, else dropped to 0 (why: the grace ended, none reports, not "
        "measured); a move that starts keeps the weights the grace holds then to its ShiftRouting; or left as it is "
        "when every routed cluster is away; one Event each time the message changes.",
    ),
    EventReason.CLEANUP_SKIPPED: (
        "Warning",
        "On deletion: a member cluster refused the listing of the deployment's workload namespace (HTTP 403: its "
        "member Role does not cover the tenant), and neither the deployment's status records replicas there nor "
        "the RegionalCluster's status records that namespace in use, so nothing there was deleted and the "
        "deletion went on; the message names the cluster, the namespace and the kind refused.",
    ),
}
"""Type and meaning of each Event reason (docs/status.md)."""

DECISION_EVENTS = tuple(
    r
    for r in EventReason
    if r not in (EventReason.MIGRATION_ROLLED_BACK, EventReason.CLEANUP_SKIPPED, EventReason.ROUTING_GRACE)
)
"""The Event reasons that are decisions (gridshift_decisions_total); a roll-back is counted as a cycle error, a
cleanup skipped is the finalizer's, and the routing grace follows a cluster's reachability: no decision."""


class EventAction(StrEnum):
    PLACE = "Place"
    RECOMMEND = "Recommend"
    ROLL_BACK = "RollBack"
    CLEAN_UP = "CleanUp"
    ROUTE = "Route"


EVENT_ACTIONS: Mapping[EventAction, str] = {
    EventAction.PLACE: "Auto mode: gridshift carries the decision out (make-before-break).",
    EventAction.RECOMMEND: "Advisory mode: the decision is reported; nothing is changed in any member cluster.",
    EventAction.ROLL_BACK: "Auto mode: a move in flight was taken back (MigrationRolledBack).",
    EventAction.CLEAN_UP: "The deletion's clean-up of the member clusters (CleanupSkipped).",
    EventAction.ROUTE: "Auto mode: an unreachable cluster's routing weight kept or dropped (RoutingGrace).",
}


QUIET_DECISIONS = frozenset({"NoChange", "Frozen"})
"""Decision reasons that change nothing: stored in status.lastDecision, never an Event."""

DECISION_REASONS: Mapping[str, str] = {
    "NoChange": "The plan keeps the placement as it is.",
    "ScaleUp": "The plan adds replicas.",
    "ScaleDown": "The plan removes replicas (a step of a move in flight is read against the placement that move "
    "leaves, without the replica it started ahead of a stop: a move, not a scale-down).",
    "CheaperPlacement": "The plan moves replicas to cheaper capacity, as many as started as stopped: it spends less.",
    "LowerCarbon": (
        "The plan moves replicas to lower-carbon capacity (carbon price or limits), as many as started as stopped, "
        "at no saving in money: its carbon cost or carbon-limit penalty falls."
    ),
    "MakesRoom": (
        "The plan moves replicas out of a pool it gives to other deployments, as many as started as stopped: "
        "dearer for this deployment, cheaper for the fleet."
    ),
    "PlacementRules": (
        "The plan replaces replicas running where the deployment may no longer run (make-before-break: they "
        "stop after those started elsewhere are Ready), or moves replicas because the running placement breaks "
        "minReplicas or minRegions (the explanation names the rule)."
    ),
    "SLOAtRisk": (
        "The plan moves replicas (starts some, stops others) because the current placement's capacity leaves "
        "demand unserved within the SLO, however small the shortfall."
    ),
    "Infeasible": "No placement covers the demand within the SLO and the spec's bounds; what fits is planned.",
    "Frozen": "Mode Frozen: the placement is kept whatever the plan would be.",
}
"""The planner's decision reasons (status.lastDecision.reason; gridshift.planner.plan)."""


_CLUSTER_PROBLEM = {
    ClusterReadyReason.UNREACHABLE: CycleErrorReason.UNREACHABLE,
    ClusterReadyReason.FORBIDDEN: CycleErrorReason.FORBIDDEN,
    ClusterReadyReason.KUBECONFIG_INVALID: CycleErrorReason.KUBECONFIG_INVALID,
}


UNANNOUNCED_MEMORY = 4096
"""Most decision Events held unannounced at once (`Reporter`), oldest dropped first: one per deployment whose
status patch failed, gone once announced or superseded; this bounds what deleted deployments leave behind."""


class Reporter:
    """Writes each object's status and decision Events through the hub, and records the cycle's problems."""

    def __init__(self, hub: Hub, writes: WritePool | None = None) -> None:
        self.hub = hub
        self.writes = writes
        """Where deployment status patches and Events go (bounded concurrency); None: written at once."""
        self._unannounced: OrderedDict[ObjectRef, _Unannounced] = OrderedDict()
        """Decision Events not sent because their deployment's status patch raised, by deployment."""

    def deployment(
        self,
        now: datetime,
        deployment: ObservedDeployment,
        applied: S.Deployment,
        plan: DeploymentPlan,
        progress: MigrationProgress,
        views: Mapping[str, ClusterView],
        report: CycleReport,
    ) -> DeploymentReport:
        composed = deployment_status(now, deployment, applied, plan, progress, views)
        _deployment_problems(deployment, applied, progress, report)
        report.outcomes.append(_outcome(deployment, applied, plan, composed, views))
        patch = status_patch(deployment.old_status, composed.status)
        meta = deployment.body["metadata"]
        ref = ObjectRef("InferenceDeployment", applied.namespace, applied.name, str(meta.get("uid", "")))
        change = composed.decision
        decision = change if change is not None and change.reason not in QUIET_DECISIONS else None
        held = self._unannounced.pop(ref, None)
        if decision is None and held is not None and held.identity == _identity(composed.status):
            decision = held.decision  # still the decision: announced now (a new one supersedes it, unannounced)
        events = [_decision_event(decision)] if decision is not None else []
        if progress.rolled_back is not None:  # a Warning of its own: no decision changed, yet the move was undone
            events.append(_Event(EventReason.MIGRATION_ROLLED_BACK, progress.rolled_back, True, EventAction.ROLL_BACK))
        if progress.grace:  # an unreachable cluster's weight kept or dropped (service.migrate, the routing grace)
            events.append(_Event(EventReason.ROUTING_GRACE, "; ".join(progress.grace), True, EventAction.ROUTE))
        if not patch and not events:
            return composed

        def write() -> list[tuple[_Event, str | None]]:
            """The patch, then each Event with its failure as text (the patch's raises)."""
            if patch:
                self.hub.patch_status(ref, patch, fence=None if self.writes is None else self.writes.check)
            written: list[tuple[_Event, str | None]] = []
            for event in events:
                try:
                    # Every Event gridshift writes goes out here: its note never holds a remembered credential.
                    note = redaction.redact(event.note)
                    self.hub.emit_event(ref, event.reason, note, warning=event.warning, action=event.action)
                except Exception as error:  # Events are best effort: the decision is in status already
                    written.append((event, describe(error)))
                else:
                    written.append((event, None))
            return written

        def done(outcome: list[tuple[_Event, str | None]] | BaseException) -> None:
            if isinstance(outcome, BaseException) and not isinstance(outcome, ObjectGone) and decision is not None:
                self._hold(ref, _Unannounced(_identity(composed.status), decision))
            if isinstance(outcome, ObjectGone | Fenced):
                return  # deleted mid-cycle (its finalizer handler cleans up), or no longer leading
            if isinstance(outcome, BaseException):
                # Only the status patch raises here, after the deployment was acted on (its member workloads
                # written). Found in review: it was reported as DeploymentFailed, 'not acted on this cycle'.
                _status_not_written(ref, outcome, report)
                return
            report.status_writes += 1 if patch else 0
            if decision is not None:
                report.decisions.append(decision.reason)
            for event, failure in outcome:
                if failure is None:
                    report.events += 1
                    continue
                message = f"{deployment.id}: Event {event.reason} not written: {failure}"
                report.errors.append(message)
                report.problems.append(Problem(CycleErrorReason.EVENT_FAILED, message, deployment=deployment.id))

        if self.writes is None:
            try:
                done(write())
            except Exception as error:
                done(error)
        else:
            self.writes.submit(write, done)
        return composed

    def _hold(self, ref: ObjectRef, unannounced: _Unannounced) -> None:
        """Keep a decision Event its status patch kept from going out. Found in review: an Event went out only after
        the patch's answer, and only for a decision that differs from the stored one, so a patch applied whose
        answer was lost (a dropped connection, HubWriteTimeout, cut Fenced at its window's end) left the decision
        stored and no Event, ever; and a patch not applied left the replicas written, which the next plan then
        read as NoChange: no Event either. Held in this process only: a replica that takes the Lease over has none.
        """
        self._unannounced[ref] = unannounced
        self._unannounced.move_to_end(ref)
        while len(self._unannounced) > UNANNOUNCED_MEMORY:
            self._unannounced.popitem(last=False)

    def standing_by(self, last: CycleReport | None, report: CycleReport) -> None:
        """A cycle that does not lead: the lost Lease reported (`lease_lost_since`), and the decision Events held
        forgotten, since the replica that leads now writes those decisions and their Events as it finds them."""
        self._unannounced.clear()
        lease_lost_since(last, report)

    def cluster(self, now: datetime, view: ClusterView, report: CycleReport, leading: Callable[[], bool]) -> bool:
        """The RegionalCluster's status, fenced before each send; False: `leading` said the Lease may have lapsed,
        so no later status goes out. Found in review: it was sent unfenced, and KubeHub's resend on 409 Conflict
        landed after the Lease lapsed, over the new leader's status, with no LeaseLost reported."""
        _cluster_problems(view, report)
        return self._write_status(
            ObjectRef("RegionalCluster", "", view.name),
            view.old_status,
            partial(cluster_status, now, view),
            report,
            leading,
        )

    def profiles(
        self,
        now: datetime,
        bodies: Sequence[Mapping[str, Any]],
        uses: Mapping[str, ProfileUse],
        report: CycleReport,
        leading: Callable[[], bool],
    ) -> None:
        """Each GPUProfile's fit and whether the planner uses it (written when that changed: its spec, or another
        profile for the same model, GPU type and size came or went); none once `leading` says the Lease may have
        lapsed. `uses`: the observe stage's judgement of every profile at once (Observation.profiles), the one the
        planner's inputs were made of."""
        for body in bodies:
            meta = body.get("metadata") or {}
            if meta.get("name"):
                ref = ObjectRef("GPUProfile", "", str(meta["name"]))
                use = uses.get(str(meta["name"]))
                if not self._write_status(
                    ref, body.get("status") or {}, partial(profile_status, now, body, use), report, leading
                ):
                    return

    def refused(
        self, now: datetime, refused: Sequence[Refused], report: CycleReport, leading: Callable[[], bool]
    ) -> None:
        """Each object the model refuses says so in its status: Ready False, reason InvalidSpec, naming the fields;
        none once `leading` says the Lease may have lapsed."""
        for invalid in refused:
            namespace, _, name = invalid.key.rpartition("/")
            uid = str((invalid.body.get("metadata") or {}).get("uid") or "")
            ref = ObjectRef(invalid.kind, namespace, name, uid)
            if not self._write_status(
                ref, invalid.body.get("status") or {}, partial(refused_status, now, invalid), report, leading
            ):
                return

    def _write_status(
        self,
        ref: ObjectRef,
        old: Mapping[str, Any],
        new: Callable[[], Mapping[str, Any]],
        report: CycleReport,
        leading: Callable[[], bool] | None = None,
    ) -> bool:
        """A status patch (none when empty); a failure, in building it or in writing it, is the object's
        problem and stops nothing else (a feed's error text, say, that the status model refuses). False: not
        sent, `leading` said the Lease may have lapsed (the caller's fence reports that), so nothing more is.

        Fenced patch by patch, as the write pool's: found in review, GPUProfile and InvalidSpec patches were
        fenced once, before the first, and one slow patch (10 s, 409 retries) let the rest go out from a
        replica that no longer led, no LeaseLost reported (security.md rows 17 and 31, left here)."""
        try:
            patch = status_patch(old, new())
            if not patch:
                return True
            if leading is not None and not leading():
                return False
            self.hub.patch_status(ref, patch, fence=None if leading is None else partial(_fence, leading))
        except Fenced:
            return False  # a retry on 409 found the Lease lapsed: not sent again
        except ObjectGone:
            return True
        except Exception as error:  # one object's status must not stop the cycle (nor hide the others')
            _status_not_written(ref, error, report)
            return True
        report.status_writes += 1
        return True


def _status_not_written(ref: ObjectRef, error: BaseException, report: CycleReport) -> None:
    """Report a status patch of `ref` that failed (StatusWriteFailed), for every kind, the write pool's too."""
    what = f"{ref.namespace}/{ref.name}" if ref.namespace else ref.name
    message = f"{ref.kind} {what}: status not written: {describe(error)}"
    report.errors.append(message)
    report.problems.append(
        Problem(
            CycleErrorReason.STATUS_WRITE_FAILED,
            message,
            deployment=what if ref.kind == "InferenceDeployment" else None,
            cluster=ref.name if ref.kind == "RegionalCluster" else None,
        )
    )


@dataclass(frozen=True)
class _Event:
    reason: str
    note: str
    warning: bool
    action: EventAction


@dataclass(frozen=True)
class _Unannounced:
    """A decision whose Event was not sent: what identifies it in status (`_identity`) and the change itself."""

    identity: tuple[Any, ...]
    decision: DecisionChange


def _identity(status: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes a decision the same one in a deployment's status (as service.status's `_decision` compares
    them): its placement, the mode, and whether it is Infeasible; not its reason, which a NoChange replaces once
    the plan finds the decision's replicas running."""
    last = status.get("lastDecision") or {}
    return last.get("target"), status.get("mode"), last.get("reason") == "Infeasible"


def _decision_event(decision: DecisionChange) -> _Event:
    return _Event(
        decision.reason,
        decision.summary,
        decision.reason in (EventReason.SLO_AT_RISK, EventReason.INFEASIBLE),
        EventAction.RECOMMEND if decision.mode is MigrationMode.ADVISORY else EventAction.PLACE,
    )


def _outcome(
    deployment: ObservedDeployment,
    applied: S.Deployment,
    plan: DeploymentPlan,
    composed: DeploymentReport,
    views: Mapping[str, ClusterView],
) -> DeploymentOutcome:
    by_region: dict[str, tuple[int, int]] = {}
    for p in applied.placements:
        region = views[p.cluster].region if p.cluster in views else ""
        desired, ready = by_region.get(region, (0, 0))
        by_region[region] = (desired + (p.desired if counts_as_desired(p.cluster, views, plan) else 0), ready + p.ready)
    slo = deployment.resource.spec.slo
    return DeploymentOutcome(
        namespace=applied.namespace,
        name=applied.name,
        ready=composed.health.ready,
        slo_at_risk=composed.health.slo in (SLOReason.CAPACITY_SHORT, SLOReason.LATENCY_ABOVE_SLO),
        replicas=tuple((region, d, r) for region, (d, r) in sorted(by_region.items()) if d or r),
        ttft_slo_seconds=slo.ttft_p95_ms / 1000,
        tpot_slo_seconds=slo.tpot_p95_ms / 1000,
    )


def _cluster_problems(view: ClusterView, report: CycleReport) -> None:
    failure = cluster_failure(view)
    if failure is not None and view.error is not None:
        report.problems.append(Problem(_CLUSTER_PROBLEM[failure], view.error, cluster=view.name))
    if view.price_feed_problem:
        report.problems.append(Problem(CycleErrorReason.PRICE_FEED_FAILED, view.price_feed_problem, cluster=view.name))
    # Found in review: a carbon feed failing for hours counted no cycle error and logged nothing.
    if view.carbon_feed_problem:
        report.problems.append(
            Problem(CycleErrorReason.CARBON_FEED_FAILED, view.carbon_feed_problem, cluster=view.name)
        )
    if view.metrics_conflict:
        report.problems.append(Problem(CycleErrorReason.METRICS_UNAVAILABLE, view.metrics_conflict, cluster=view.name))
    if view.shared_member:
        report.problems.append(Problem(CycleErrorReason.SHARED_MEMBER, view.shared_member, cluster=view.name))
    if view.foreign:
        report.problems.append(
            Problem(
                CycleErrorReason.FOREIGN_OBJECTS,
                f"cluster {view.name}: {len(view.foreign)} Deployment(s) labelled as gridshift's without owner "
                "annotations, ignored (RegionalCluster condition ForeignObjects names them)",
                cluster=view.name,
            )
        )


def _fence(leading: Callable[[], bool]) -> None:
    if not leading():
        raise Fenced("leader Lease not renewed within the renew deadline: status patch not sent again")


def lease_lost_since(last: CycleReport | None, report: CycleReport) -> None:
    """The lost Lease, reported once by the first cycle that does not lead after one that did (found in review:
    a Lease that lapsed between cycles left a cycle that looked like a standby's, with no LeaseLost)."""
    if last is None or not last.leader or any(p.reason is CycleErrorReason.LEASE_LOST for p in last.problems):
        return
    message = "leader Lease not renewed within the renew deadline: stopped leading; standing by"
    report.errors.append(message)
    report.problems.append(Problem(CycleErrorReason.LEASE_LOST, message))


def invalid_cluster_problems(
    cluster_bodies: Sequence[Mapping[str, Any]], seen: Observation, report: CycleReport
) -> None:
    """A RegionalCluster body that observe could not turn into a cluster view: refused, named."""
    named = {str(m.get("name")) for b in cluster_bodies if (m := b.get("metadata") or {}).get("name")}
    for name in sorted(named - set(seen.views) - set(seen.held)):
        report.problems.append(
            Problem(
                CycleErrorReason.INVALID_RESOURCE,
                f"RegionalCluster {name} is invalid, not used (the cycle's error names the field)",
                cluster=name,
            )
        )


def _deployment_problems(
    deployment: ObservedDeployment, applied: S.Deployment, progress: MigrationProgress, report: CycleReport
) -> None:
    if progress.error is not None:
        reason = refusal_reason(progress)
        report.problems.append(
            Problem(
                CycleErrorReason.FORBIDDEN if reason.value == "Forbidden" else CycleErrorReason.ACTUATION_FAILED,
                f"{deployment.id}: {progress.error}",
                deployment=deployment.id,
            )
        )
    if deployment.resource.spec.demand.source is DemandSource.PROMETHEUS and applied.demand.requests_per_second is None:
        report.problems.append(
            Problem(
                CycleErrorReason.METRICS_UNAVAILABLE,
                f"{deployment.id}: request rate unknown (Prometheus"
                + ("" if deployment.demand_problem is None else f": {deployment.demand_problem}")
                + "): never scaling below the capacity running",
                deployment=deployment.id,
            )
        )


def log_cycle(report: CycleReport) -> None:
    """The cycle's one INFO line (what `kubectl logs` shows every planIntervalSeconds; docs/install.md)."""
    _log.info(
        "cycle leader=%s %.2fs member_writes=%d status_writes=%d events=%d errors=%d",
        report.leader,
        report.seconds,
        report.member_writes,
        report.status_writes,
        report.events,
        len(report.errors),
    )


def log_problems(report: CycleReport) -> None:
    """Each error of the cycle, once, at WARNING, with its reason and the deployment or cluster it concerns as
    record attributes (`reason`, `deployment`, `cluster`: keys of the JSON log format, shell.logs)."""
    by_message = {p.message: p for p in report.problems}
    for error in report.errors:
        problem = by_message.pop(error, None)
        _log.warning("%s", error, extra=_keys(problem, error, report))
    for problem in by_message.values():
        _log.warning("%s", problem.message, extra=_keys(problem, problem.message, report))


def _keys(problem: Problem | None, message: str, report: CycleReport) -> dict[str, str]:
    if problem is not None:
        keys = {"reason": problem.reason.value}
        if problem.deployment:
            keys["deployment"] = problem.deployment
        if problem.cluster:
            keys["cluster"] = problem.cluster
        return keys
    # Errors of the stages that keep plain texts name their deployment first ("namespace/name: ...").
    deployments = {d.id for d in report.plan.deployments} if report.plan is not None else set()
    head = message.split(": ", 1)[0]
    return {"deployment": head} if head in deployments else {}
