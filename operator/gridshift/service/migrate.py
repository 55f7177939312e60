"""The migrate stage: the make-before-break state machine of one deployment, persisted in its status.

The planner says which steps lead from the current placement to the target
(gridshift.planner.migration); this module carries them out across cycles:

- A planned migration starts only once the same target was planned twice revalidateDelaySeconds
  apart (one noisy sample must not move replicas); pure growth starts at once, since more capacity
  is never the risky direction and waiting would leave demand unserved.
- Steps run in order: ScaleUp and ScaleDown write to a member cluster (through `ReplicaSetter`),
  WaitReady waits until the replicas are Ready, ShiftRouting changes the routing weights; routing
  changes nowhere else while there is something to move (only a plan without steps routes to its
  target at once, which then runs). A step
  that must wait ends the cycle's progress; the next cycle resumes from `status.migration`, so a
  restarted operator carries on where it stopped.
- A WaitReady not met within readyTimeoutSeconds rolls the move back: every ScaleUp of the batch in
  flight (done since the last ShiftRouting, or running with a try that may have been applied) whose replicas are
  not all Ready, where its Deployment is observed (a scale-back never creates one), is scaled back to its count
  before it (Ready ones stay: nothing already running is lost), the
  steps are cleared (planned afresh next cycle) and the roll-back is counted and logged, and goes out as a Warning Event
  (MigrationRolledBack) through `MigrationProgress.rolled_back`, which says whether anything was scaled back.
  Batches already shifted stay: their sources were scaled down once their replicas were Ready, so
  taking those replicas back would leave too few; a wait on one of theirs that crashed holds its key.
  A wait on replicas already starting that no ScaleUp of the move started (left by an abandoned move)
  takes them back to those Ready (now or last cycle) where the routing in force sends no traffic; a kept
  cluster the routing counts on is only held. A scale-back the member refuses is said to have been refused, and is
  left to the roll-back of a later wait on those replicas, and so is one a cluster did not answer (never written again
  from memory: a later move may have put traffic there since); the Ready condition of the roll-back's cycle names
  those clusters (MigrationProgress.scale_back_pending).
- A ShiftRouting or ScaleDown goes only while the replicas every earlier WaitReady saw Ready still are:
  one that lost them (a crash, an eviction, an unreachable cluster whose replicas are not counted) is
  waited on again, from then, under the same timeout.
- A ScaleUp or ScaleDown the member refuses (RBAC, an object not gridshift's) for readyTimeoutSeconds,
  or that never goes out to a cluster the cycle's reads reached (no member client, every write timing out),
  is rolled back the same way: a refused write held every later plan of the deployment. Its reason names
  the write, the cluster and the refusal's HTTP status or kind (or that the cluster did not answer, or that
  the write never went out, or that an earlier try may have been applied: remembered per step), not replicas
  not Ready; so do the step's message and the Ready condition while it is retried (not once rolled back). The
  member's own words go to the log only; gridshift's own, where they say what to do (`MemberError.own_words`), to
  status too.
- After a roll-back, no replica starts where the rolled-back batch started them, nor where the
  wait that ran out was (each cluster and GPU type on its own) for a hold of readyTimeoutSeconds,
  doubled at each roll-back there in a row, at most ROLL_BACK_HOLD_MAX_FACTOR times: replicas that
  start slower than the timeout were otherwise started, stopped and started again every timeout,
  paying for GPUs that never served (review). The planner is
  given the holds (`holds`, `with_holds`: Deployment.no_growth) and plans around them, so growth goes
  elsewhere; a plan made without them (or one waiting on replicas there) is not started while they
  last. Held in memory like the
  revalidation wait: a restarted operator tries once more at once.
- A migration that waits on an unreachable cluster, or on one no longer listed (its RegionalCluster
  was deleted), is abandoned and planned afresh; so is one kept through a Frozen or Advisory spell
  (its steps were for a placement and prices since gone), when the mode is Auto again, and one planned
  for an earlier spec: status.observedGeneration, written with the steps, is not the object's generation
  (a region forbidden mid-move, a mode changed and back, also while the operator was restarting) and the
  plan for the spec now puts no replica where the steps start some. Its replicas stay as they are, and
  the new plan starts from them.

Steps are typed here (`StepRecord`, `StepState`) and converted to and from the wire format
(`MigrationStepStatus`) only at the edges.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from pydantic import ValidationError

from gridshift import redaction
from gridshift.actuation.members import ClusterUnreachable, MemberError, RequestStage
from gridshift.api import MigrationMode
from gridshift.api.inference_deployment import STEP_MESSAGE_MAX, MigrationStepStatus
from gridshift.hub.client import RouteMissing
from gridshift.planner.migration import (
    GraceNote,
    Key,
    RouteWeight,
    StepAction,
    Unreachable,
    percents,
    routing_as_a_move_starts,
    routing_with_grace,
)
from gridshift.planner.plan import DeploymentPlan
from gridshift.planner.snapshot import Snapshot
from gridshift.service.actuate import report_route_failure
from gridshift.service.inputs import ready_recorded
from gridshift.service.state import ClusterView, CycleErrorReason, CycleReport, ObservedDeployment, Problem
from gridshift.service.writes import Fenced

ROLL_BACK_HOLD_MAX_FACTOR = 8
"""The longest hold after roll-backs in a row, in readyTimeoutSeconds (8 x the default 1200 s: 2 h 40 min):
long enough that a start which never fits the timeout is not paid for every timeout, short enough that a
cluster that recovers is used again the same day."""

ROUTING_CLUSTER = "*"
"""The cluster name of a ShiftRouting step, which acts on the routing of every cluster."""


class StepState(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    DONE = "Done"
    FAILED = "Failed"
    ROLLED_BACK = "RolledBack"

    @property
    def finished(self) -> bool:
        return self in (StepState.DONE, StepState.ROLLED_BACK, StepState.FAILED)


@dataclass
class StepRecord:
    """One step of a migration in flight, as persisted in status.migration."""

    index: int
    action: StepAction
    cluster: str
    gpu_type: str
    replicas: int
    state: StepState = StepState.PENDING
    from_replicas: int | None = None
    """Replica count before this ScaleUp (after the migration's earlier steps), restored if its batch is rolled back."""
    routing: tuple[RouteWeight, ...] = ()
    started_at: datetime | None = None
    message: str = ""
    maybe_applied: bool = False
    """A try of this ScaleUp's or ScaleDown's write may have gone out (`_write`): a later try whose read fails, or
    that never leaves, is not worded "not sent", nor is the roll-back. Found in review: a write whose apply timed
    out (or whose Deployment went out before a later object failed) was rolled back as "not sent" because the last
    cycle's try failed at the read before it. Persisted with the step (status.migration[].maybeApplied)."""

    @property
    def key(self) -> Key:
        return (self.cluster, self.gpu_type)

    @classmethod
    def from_status(cls, step: MigrationStepStatus) -> StepRecord:
        return cls(
            index=step.index,
            action=StepAction(step.action),
            cluster=step.cluster,
            gpu_type=step.gpu_type,
            replicas=step.replicas,
            state=StepState(step.state),
            from_replicas=step.from_replicas,
            routing=tuple(RouteWeight(r.cluster, r.weight) for r in step.routing),
            started_at=step.started_at,
            message=step.message,
            maybe_applied=step.maybe_applied,
        )

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "index": self.index,
            "action": self.action.value,
            "cluster": self.cluster,
            "gpuType": self.gpu_type,
            "replicas": self.replicas,
            "state": self.state.value,
        }
        if self.from_replicas is not None:
            wire["fromReplicas"] = self.from_replicas
        if self.routing:
            wire["routing"] = routing_to_wire(self.routing)
        if self.started_at is not None:
            wire["startedAt"] = self.started_at.isoformat()
        if self.maybe_applied:
            wire["maybeApplied"] = True
        if self.message:
            # Cut to what the CRD stores: a member's refusal quoted whole (an admission webhook's list of
            # policies) failed the status's validation, and the deployment's status froze (review). Redacted
            # before the cut, as conditions are (service.status._Conditions).
            wire["message"] = redaction.excerpt(self.message, STEP_MESSAGE_MAX)
        return wire


def routing_to_wire(routing: Sequence[RouteWeight]) -> list[dict[str, Any]]:
    return [{"cluster": r.cluster, "weight": r.weight} for r in routing]


def routing_from_wire(routing: object) -> tuple[RouteWeight, ...]:
    """status.routing's weights; an entry that does not parse (status edited by hand) is dropped, and the
    next weights published replace the rest. Found in review: one `weight: "x"` raised on every cycle
    before the report stage, so that deployment was never acted on, nor its status rewritten, again."""
    if not isinstance(routing, list):
        return ()
    weights = []
    for entry in routing:
        try:
            weights.append(RouteWeight(str(entry["cluster"]), int(entry["weight"])))
        except (KeyError, TypeError, ValueError, OverflowError):
            continue
    return tuple(weights)


@dataclass
class MigrationProgress:
    """Where one deployment's migration stands after this cycle: the steps in flight and the routing."""

    steps: list[StepRecord] = field(default_factory=list)
    routing: tuple[RouteWeight, ...] = ()
    error: str | None = None
    """Why a member cluster refused this cycle's write (the step waits and is retried next cycle), in the member's
    words where it gave some: the log's (service.report)."""
    failure: Exception | None = None
    """The error `error` words, typed (a MemberError of the member's write, or what the hub raised for the routing
    weights): what service.status.refusal_reason classifies, by its type, never by its words."""
    status_error: str | None = None
    """The same in gridshift's words alone (the write, the cluster, the HTTP status: `_not_written`), as status says
    it (the Ready condition's message); None where `error` is gridshift's own (a route not taken)."""
    rolled_back: str | None = None
    """Why the move in flight was rolled back this cycle, and for how long it is held (a Warning Event)."""
    grace: tuple[str, ...] = ()
    """Why an unreachable cluster's weight was kept (the routing grace, until when) or dropped this cycle, when that
    changed since the deployment's last notes: a Warning Event (RoutingGrace). The cycle's log has them every cycle
    (`Migrations._route`)."""
    route_held: str | None = None
    """Why the HTTPRoute the deployment names carries another InferenceDeployment's weights, not its own
    (service.actuate.route_holders; set by the actuate stage): Ready False and Stalled, reason RouteHeld."""
    scale_back_pending: tuple[str, ...] = ()
    """The clusters, sorted, that did not answer this cycle's roll-back (its scale-back there not written, left to a
    later wait's roll-back): the Ready condition's message names them."""

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> MigrationProgress:
        """The migration persisted in status (steps that do not parse are dropped: the plan starts afresh)."""
        if not isinstance(status, Mapping):
            return cls()
        try:
            steps = [
                StepRecord.from_status(MigrationStepStatus.model_validate(s)) for s in status.get("migration") or []
            ]
        except (ValidationError, ValueError, TypeError):
            steps = []
        return cls(steps, routing_from_wire(status.get("routing")))

    @property
    def in_flight(self) -> bool:
        return any(not s.state.finished for s in self.steps)


class ReplicaSetter(Protocol):
    """The actuate stage as the state machine needs it: set a workload's replica count or a route's
    weights, return writes.

    Raises MemberError (ClusterUnreachable, ActuationForbidden, ForeignObject, ...) when the member cluster
    refuses."""

    def set_replicas(self, deployment: ObservedDeployment, view: ClusterView, gpu_type: str, replicas: int) -> int: ...

    def publish_routing(
        self, deployment: ObservedDeployment, routing: Sequence[RouteWeight], views: Mapping[str, ClusterView]
    ) -> int:
        """Set the weights on the deployment's HTTPRoute, if it names one; returns the writes. Raises
        what the hub raises when it does not take them."""
        ...


@dataclass(frozen=True)
class _PendingTarget:
    targets: tuple[tuple[str, str, int], ...]
    first_seen: datetime


@dataclass(frozen=True)
class _Hold:
    """Until when no replica of a deployment is started at one (cluster, GPU type), after a roll-back of
    replicas started there."""

    until: datetime
    factor: int
    """The hold in readyTimeoutSeconds: 1 after one roll-back, doubled at each roll-back there in a row."""
    batch: datetime | None
    """When the rolled-back ScaleUp there started: the same roll-back met again (its status patch failed,
    so the next cycle read the steps in flight once more) is the same hold, not a longer one."""


class Migrations:
    """Starts, advances and rolls back the migrations of every deployment; see the module docstring."""

    def __init__(self, revalidate_delay_seconds: float, routing_grace_seconds: float = 0.0) -> None:
        self._revalidate_delay = timedelta(seconds=revalidate_delay_seconds)
        self._grace = routing_grace_seconds
        self._pending: dict[str, _PendingTarget] = {}
        self._paused: set[str] = set()
        """Deployments whose migration was in flight while their mode was not Auto (see `run`)."""
        self._holds: dict[str, dict[Key, _Hold]] = {}
        """Per deployment, where roll-backs hold new replicas (see `holds`); kept after they end, for doubling."""
        self._said: dict[str, tuple[str, ...]] = {}
        """Per deployment, the routing grace's notes of its last cycle with any (its RoutingGrace Event, `_route`)."""
        self._uids: dict[str, str] = {}
        """The metadata.uid each deployment's state above belongs to (see `forget`)."""
        self._holds_lock = threading.Lock()
        """`_holds` is read whole (`holds`) by one deployment's migrate stage while another's roll-back adds to it:
        service.migrate_auto runs them in a pool (review: "dictionary changed size during iteration")."""

    def forget(self, live: Mapping[str, str]) -> None:
        """Keep the state of this cycle's deployments (id -> metadata.uid) only: a deployment deleted, or deleted
        and created again under its name, starts afresh. Found in review: a roll-back's hold (up to 8
        readyTimeoutSeconds) outlived its deployment and kept a new one of the same name out of the cheap
        cluster, and the maps grew with every deployment ever seen."""
        with self._holds_lock:
            for known in {*self._pending, *self._paused, *self._holds, *self._said, *self._uids}:
                if known not in live or self._uids.get(known, live[known]) != live[known]:
                    self._pending.pop(known, None)
                    self._paused.discard(known)
                    self._holds.pop(known, None)
                    self._said.pop(known, None)
                    self._uids.pop(known, None)
            self._uids.update(live)

    def holds(self, now: datetime) -> dict[str, frozenset[Key]]:
        """Per deployment, the (cluster, GPU type) where no replica may start now: the planner plans around
        them (planner.snapshot.Deployment.no_growth), so a held cluster costs neither growth elsewhere nor
        the moves that do not need it."""
        with self._holds_lock:
            held = {d: frozenset(k for k, h in keys.items() if now < h.until) for d, keys in self._holds.items()}
        return {d: keys for d, keys in held.items() if keys}

    def run(
        self,
        now: datetime,
        deployment: ObservedDeployment,
        plan: DeploymentPlan,
        views: Mapping[str, ClusterView],
        actuator: ReplicaSetter,
        report: CycleReport,
    ) -> MigrationProgress:
        """This cycle's progress of the deployment's migration (Auto mode only; others keep status as is)."""
        progress = MigrationProgress.from_status(deployment.old_status)
        if plan.mode is not MigrationMode.AUTO:
            if progress.in_flight:
                self._paused.add(deployment.id)
            return progress
        if progress.in_flight and (deployment.id in self._paused or _written_outside_auto(deployment.old_status)):
            # Steps kept through a Frozen or Advisory spell were planned for a placement and prices since gone:
            # resumed, they ran that stale move and then the move back (review). Planned afresh instead. The
            # status's mode says it too: the in-memory mark is lost by a restart, a new leader, or a cycle the
            # deployment was not observed in (review: the stale move then scaled a cluster the plan kept to 0).
            report.errors.append(f"{deployment.id}: migration paused outside Auto abandoned; planned afresh")
            progress.steps = []
        self._paused.discard(deployment.id)
        if progress.in_flight and (stale := _planned_for_another_spec(deployment, progress, plan)) is not None:
            # Steps of an earlier spec ran to their end: traffic shifted to a region since forbidden, then the
            # move back (review). The replicas they started stay and count in the plan made now.
            report.errors.append(f"{deployment.id}: migration planned for {stale} abandoned; planned afresh")
            progress.steps = []
        most = deployment.resource.spec.capacity.max_replicas
        if any(s.action is StepAction.SCALE_UP and s.replicas > most and not s.state.finished for s in progress.steps):
            # No start planned now goes past maxReplicas: the step was planned before maxReplicas was lowered, or
            # written into status by hand (found in review: a ScaleUp to 100,000 was sent as written).
            report.errors.append(f"{deployment.id}: migration starting more than maxReplicas={most} abandoned")
            progress.steps = []
        if _waits_on_unreachable(progress.steps, views):
            # The move cannot finish while its cluster is away; plan afresh from what is reachable.
            report.errors.append(f"{deployment.id}: migration abandoned, a cluster it needs is unreachable")
            progress.steps = []
        if progress.in_flight and (barred := _started_where_ruled_out(progress, plan)):
            # Found in review: a cluster that stopped admitting the namespace (tenantNamespaceSelector) or
            # matching the deployment changes no generation, so the move ran on: traffic shifted there and
            # the admitted source scaled down, then the next plan moved everything back.
            report.errors.append(f"{deployment.id}: migration into {barred}, where it may no longer run, abandoned")
            progress.steps = []
        if not progress.in_flight:
            progress.steps = self._start(now, deployment, plan)
            scaled_to_zero = not any(t.replicas > 0 for t in plan.targets) and not any(
                p.desired > 0 for p in deployment.planned.placements
            )
            proposed = progress.routing
            if not plan.steps and (plan.routing or scaled_to_zero):
                # Nothing to move: the target runs now, route to it (to nothing, scaled to zero; not when
                # replicas run that an infeasible plan keeps outside its targets). A move waiting for its
                # revalidation keeps the routing in force (its target may have no replica yet), held to the grace.
                proposed = plan.routing
            self._route(now, deployment, progress, proposed, _away(deployment, views, now, self._grace, plan), report)
        self._advance(now, deployment, progress, views, actuator, report)
        return progress

    def _route(
        self,
        now: datetime,
        deployment: ObservedDeployment,
        progress: MigrationProgress,
        proposed: tuple[RouteWeight, ...],
        away: Mapping[str, Unreachable],
        report: CycleReport,
    ) -> None:
        """The routing in force when no move was in flight: the routing grace's (docs/planner.md, "Routing grace").
        While none starts, an unreachable cluster keeps its weight while the grace holds it (routing_with_grace). A
        move that starts keeps the weights the grace holds then (or whose pods were not measured), to its
        ShiftRouting, and drops those the evidence rules out onto clusters with Ready replicas
        (routing_as_a_move_starts; found in review: each simpler way either overloaded the clusters left for the
        cold start, or kept a weight with no pod reporting up to readyTimeoutSeconds). A move in flight routes as it did
        before the grace: applied there too, a one-cycle blip of a cluster took its weight for the rest of the move
        (review)."""
        serving = {p.cluster for p in deployment.planned.placements if p.ready > 0}
        if progress.steps:
            progress.routing, notes = routing_as_a_move_starts(progress.routing, away, now, self._grace, serving)
        else:
            progress.routing, notes = routing_with_grace(proposed, progress.routing, away, now, self._grace, serving)
        report.errors.extend(f"{deployment.id}: {note}" for note in notes)
        # One RoutingGrace Event each time what it decides changes, not one a cycle: a spell (or every cluster away,
        # the weights left as they are) lasts many cycles, and the Event's note says until when. A count of pods
        # reporting is in the log alone: each change of it raised an Event while routing stayed (fifth review).
        decided = tuple(n.decision if isinstance(n, GraceNote) else n for n in notes)
        if decided != self._said.get(deployment.id, ()):
            progress.grace = notes
        if decided:
            self._said[deployment.id] = decided
        else:
            self._said.pop(deployment.id, None)

    def _start(self, now: datetime, deployment: ObservedDeployment, plan: DeploymentPlan) -> list[StepRecord]:
        """The plan's steps, once revalidated and not held by a roll-back (see the module docstring); [] while
        waiting."""
        if not plan.steps:
            self._pending.pop(deployment.id, None)
            return []
        if self._held(now, deployment.id, plan):
            self._pending.pop(deployment.id, None)  # revalidated afresh once the hold ends
            return []
        targets = tuple((t.cluster, t.gpu_type, t.replicas) for t in plan.targets)
        growth_only = all(s.action is not StepAction.SCALE_DOWN for s in plan.steps)
        if not growth_only and self._revalidate_delay > timedelta(0):
            first = self._pending.get(deployment.id)
            if first is None or first.targets != targets:
                self._pending[deployment.id] = _PendingTarget(targets, now)
                return []
            if now - first.first_seen < self._revalidate_delay:
                return []
        self._pending.pop(deployment.id, None)
        count = {(p.cluster, p.gpu_type): p.desired for p in deployment.planned.placements}
        records = []
        for s in plan.steps:
            before = count.get((s.cluster, s.gpu_type), 0)
            if s.action in (StepAction.SCALE_UP, StepAction.SCALE_DOWN):
                count[(s.cluster, s.gpu_type)] = s.replicas
            records.append(
                StepRecord(
                    index=s.index,
                    action=s.action,
                    cluster=s.cluster,
                    gpu_type=s.gpu_type,
                    replicas=s.replicas,
                    from_replicas=before if s.action is StepAction.SCALE_UP else None,
                    routing=s.routing,
                )
            )
        return records

    def _advance(
        self,
        now: datetime,
        deployment: ObservedDeployment,
        progress: MigrationProgress,
        views: Mapping[str, ClusterView],
        actuator: ReplicaSetter,
        report: CycleReport,
    ) -> None:
        """Carry out steps in order until one must wait; a finished migration leaves no steps."""
        ready = {(p.cluster, p.gpu_type): p.ready for p in deployment.planned.placements}
        timeout = deployment.resource.spec.migration.ready_timeout_seconds
        for step in progress.steps:
            if step.state.finished:
                continue
            if step.state is StepState.PENDING or step.started_at is None:
                # A Running step without startedAt (status edited by hand) starts its clock now: it asserted.
                step.state = StepState.RUNNING
                step.started_at = now
            if step.action in (StepAction.SHIFT_ROUTING, StepAction.SCALE_DOWN):
                if _no_longer_ready(progress.steps, step, ready, now):
                    break  # traffic goes to, or a source stops for, replicas only while they are still Ready
                if (empty := _routed_to_none_ready(progress, step, ready)) is not None:
                    # A cluster kept as it was (no WaitReady of its own) lost its Ready replicas mid-move: the
                    # plan counted on them. Planned afresh from what is Ready, nothing shifted or stopped.
                    report.errors.append(f"{deployment.id}: migration abandoned, {empty}; planned afresh")
                    progress.steps = []
                    return
            if step.action in (StepAction.SCALE_UP, StepAction.SCALE_DOWN):
                if (unwritten := self._write(deployment, progress, step, views, actuator, report)) is not None:
                    refused_for = now - step.started_at
                    if refused_for > timedelta(seconds=timeout):
                        # A write refused for as long as a start may take (RBAC, a foreign object in the way), or
                        # never answered by a cluster the cycle's reads reached (else the move was abandoned), is
                        # given up like a start that never becomes Ready: it held every later plan (review).
                        self._roll_back(now, deployment, progress, (step, ready), views, actuator, report, unwritten)
                    break
                step.state = StepState.DONE
            elif step.action is StepAction.WAIT_READY:
                if ready.get(step.key, 0) >= step.replicas:
                    step.state = StepState.DONE
                    continue
                if now - step.started_at > timedelta(seconds=timeout):
                    self._roll_back(now, deployment, progress, (step, ready), views, actuator, report)
                break
            elif step.action is StepAction.SHIFT_ROUTING:
                # The route takes the new weights before a later ScaleDown stops replicas it may still
                # send traffic to: weights the hub does not take hold the migration here until it does.
                # Not when no managed route exists to carry traffic (missing, or unlabelled: gridshift
                # never writes it), nor when nothing is stopped after this step (a scale-up): holding
                # there protects nothing and would keep every later plan waiting.
                step.routing = _over_ready(step.routing, ready)
                try:
                    report.member_writes += actuator.publish_routing(deployment, step.routing, views)
                except Fenced:
                    raise
                except Exception as error:  # reported like the actuate stage's route failures
                    reason = report_route_failure(deployment, error, report)
                    if not isinstance(error, RouteMissing) and _scales_down_after(progress.steps, step):
                        step.message = progress.error = f"{reason}; will retry"
                        progress.failure = error
                        break
                    step.message = reason
                progress.routing = step.routing
                step.state = StepState.DONE
        if progress.steps and not progress.in_flight:
            if all(s.state is StepState.DONE for s in progress.steps):
                # Replicas started and Ready there: that key's run of roll-backs is over.
                with self._holds_lock:
                    keys = self._holds.get(deployment.id, {})
                    for step in progress.steps:
                        if step.action is StepAction.WAIT_READY:
                            keys.pop(step.key, None)
            progress.steps = []

    @staticmethod
    def _write(
        deployment: ObservedDeployment,
        progress: MigrationProgress,
        step: StepRecord,
        views: Mapping[str, ClusterView],
        actuator: ReplicaSetter,
        report: CycleReport,
    ) -> _Unwritten | None:
        """A ScaleUp's or ScaleDown's member write; None when it went through, else why not, for a roll-back's reason.
        The step's message and status say it for this cycle in gridshift's words (`_not_written`); the member's own
        are in the cycle's errors (the log) alone. Found in review: status.migration[].message and the Ready message
        quoted the member's refusal (an admission webhook's text), which tenants read and which may echo what
        redaction does not know; the roll-back's Event, a cycle later, said only its HTTP status."""
        view = views.get(step.cluster)
        if view is None or view.member is None or not view.reachable:
            step.message = f"cluster {step.cluster} unreachable; will retry"
            return _Unwritten(None)
        try:
            report.member_writes += actuator.set_replicas(deployment, view, step.gpu_type, step.replicas)
        except MemberError as error:
            unwritten = _Unwritten.of(error)
            step.maybe_applied = step.maybe_applied or unwritten.went_out  # any try's, for the step's life
            progress.error = str(error)
            progress.failure = error
            step.message = progress.status_error = f"{_not_written(step, unwritten)[0]}; will retry"
            report.errors.append(f"{deployment.id}: {error}")
            return unwritten
        return None

    def _roll_back(
        self,
        now: datetime,
        deployment: ObservedDeployment,
        progress: MigrationProgress,
        failed: tuple[StepRecord, Mapping[Key, int]],
        views: Mapping[str, ClusterView],
        actuator: ReplicaSetter,
        report: CycleReport,
        unwritten: _Unwritten | None = None,
    ) -> None:
        """`failed`: the step that waited past the timeout (a WaitReady, or a write that did not go through:
        `unwritten` says why, as `_write` returns it) and the Ready counts this cycle."""
        steps, (step, ready) = progress.steps, failed
        timeout = deployment.resource.spec.migration.ready_timeout_seconds
        refused = step.action is not StepAction.WAIT_READY
        # Ready last cycle, capped at the count now (lowered by hand since): a roll-back never scales up.
        desired = {(p.cluster, p.gpu_type): p.desired for p in deployment.planned.placements}
        lately = {k: min(n, desired.get(k, 0)) for k, n in ready_recorded(deployment.old_status).items()}
        # The keys whose Deployment was observed, or went out in this cycle's try of the failed write (part of it
        # did: the Deployment first, `_Unwritten.part_out`; review: its replicas ran on after the roll-back, as the
        # Deployment was not there at the cycle's start). A scale-back never creates one. No other write of this
        # cycle can matter: a step's clock starts when it is first reached, so the steps before it were done earlier.
        seen = set(desired) | ({step.key} if unwritten is not None and unwritten.part_out else set())
        nowhere = _routed_nowhere(progress.routing)
        undo, kept, started, leftover = _batch_to_undo(steps, step, ready, nowhere, lately, seen)
        refused_back, unanswered = self._scale_back(deployment, undo, views, actuator, report)
        not_written = refused_back | unanswered
        # Found in review: a refused write was said to leave "replicas not Ready", though a refused ScaleUp
        # started none and a refused ScaleDown's were all Ready.
        cause = "replicas not Ready within" if unwritten is None else "".join(_not_written(step, unwritten))
        reason = f"{cause} readyTimeoutSeconds={timeout}; " + _scaled_back(undo, not_written, leftover)
        if kept:
            reason += f" (Ready replicas kept in {', '.join(sorted({c for c, _ in kept}))})"
        if step.action is StepAction.WAIT_READY and (
            leftover is not None
            or not any(s.key == step.key and s.action is StepAction.SCALE_UP for s in _batch(steps))
        ):
            # A wait this batch started nothing for (a kept cluster's replicas, or an earlier batch's that
            # crashed): named, since no ScaleUp of the batch points at it (one of the batch's not yet done may).
            reason += f"; the wait on {step.cluster} ran out ({ready.get(step.key, 0)}/{step.replicas} Ready)"
        if refused_back:
            # Found in review: a refused scale-back was reported as done. Only the cluster is named here (this
            # goes out as an Event); the member's own words are in the cycle's errors, redacted when logged.
            reason += f"; scaling back refused in {_clusters(refused_back)}, left to a later wait's roll-back"
        if unanswered:
            # Found in review: a cluster that did not answer was said to have "failed", and Ready said nothing. Not
            # written again from memory (review of a first version that did: a later move put traffic on those
            # replicas, and the remembered scale-back stopped them at a readiness dip): a later wait's roll-back.
            progress.scale_back_pending = tuple(sorted({c for c, _ in unanswered}))
            where = _clusters(unanswered)
            reason += f"; roll-back not written in {where} (not answering), left to a later wait's roll-back"
        for each in steps:
            if each.state in (StepState.PENDING, StepState.RUNNING, StepState.DONE):
                each.state = StepState.ROLLED_BACK
                each.message = reason
        if unwritten is not None:
            # This cycle's `_write` said "will retry": given up now, the steps cleared (review: Ready promised a retry
            # in the cycle the MigrationRolledBack Event went out). Ready keeps the refusal's reason (progress.error).
            progress.status_error = f"migration rolled back: {reason}"
        holds = self._hold(now, deployment.id, started, timeout)
        progress.rolled_back = reason
        if holds:
            where = ", ".join(
                f"{c} ({g}) before {h.until.isoformat(timespec='seconds')}" for (c, g), h in sorted(holds.items())
            )
            progress.rolled_back += f"; no replica starts again in {where}"
            if not refused:  # a longer timeout only waits longer on a refusal
                progress.rolled_back += (
                    " (raise spec.migration.readyTimeoutSeconds if replicas there take longer to start)"
                )
        report.errors.append(f"{deployment.id}: {reason}")
        # Counted by reason (gridshift_cycle_errors_total), not only logged: it left no other trace (review).
        report.problems.append(
            Problem(CycleErrorReason.MIGRATION_ROLLED_BACK, f"{deployment.id}: {reason}", deployment=deployment.id)
        )

    @staticmethod
    def _scale_back(
        deployment: ObservedDeployment,
        undo: Mapping[Key, int],
        views: Mapping[str, ClusterView],
        actuator: ReplicaSetter,
        report: CycleReport,
    ) -> tuple[set[Key], set[Key]]:
        """Write a roll-back's counts; the keys whose write the member refused, and those a cluster did not answer
        (unreachable, no member client, a 5xx or no complete answer: it may not have been applied)."""
        refused: set[Key] = set()
        unanswered: set[Key] = set()
        for (cluster, gpu_type), replicas in undo.items():
            view = views.get(cluster)
            if view is None or not _answers(view):
                unanswered.add((cluster, gpu_type))
                continue
            assert view.member is not None
            try:
                report.member_writes += actuator.set_replicas(deployment, view, gpu_type, replicas)
            except MemberError as error:
                report.errors.append(f"{deployment.id}: roll-back in {cluster}: {error}")
                if not error.sent_before:  # else the Deployment, with the count, went out before a later object
                    (unanswered if isinstance(error, ClusterUnreachable) else refused).add((cluster, gpu_type))
        return refused, unanswered

    def _held(self, now: datetime, deployment_id: str, plan: DeploymentPlan) -> bool:
        """Whether the plan starts replicas, or waits on them, where a hold still runs (a plan made without the
        hold: the planner was given it, see `holds`). Found in review: a wait on a kept cluster's replicas that
        ran out started nothing, so nothing was held, and the same move waited on them again at once, for ever."""
        held = self.holds(now).get(deployment_id, frozenset())
        return any(
            s.action in (StepAction.SCALE_UP, StepAction.WAIT_READY) and (s.cluster, s.gpu_type) in held
            for s in plan.steps
        )

    def _hold(
        self, now: datetime, deployment_id: str, started: Mapping[Key, datetime | None], timeout: float
    ) -> dict[Key, _Hold]:
        """The holds after a roll-back of replicas `started` at each key (see the module docstring)."""
        with self._holds_lock:
            keys = self._holds.setdefault(deployment_id, {})
            for key, batch in started.items():
                last = keys.get(key)
                if last is not None and batch is not None and last.batch == batch:
                    continue  # this roll-back met again: its status was not written, the steps were read back
                factor = 1 if last is None else min(2 * last.factor, ROLL_BACK_HOLD_MAX_FACTOR)
                keys[key] = _Hold(now + timedelta(seconds=timeout * factor), factor, batch)
            return {key: keys[key] for key in started}


def _batch_to_undo(
    steps: Sequence[StepRecord],
    failed: StepRecord,
    ready: Mapping[Key, int],
    no_traffic: Callable[[str], bool],
    ready_lately: Mapping[Key, int],
    seen: Collection[Key],
) -> tuple[dict[Key, int], set[Key], dict[Key, datetime | None], Key | None]:
    """What a roll-back after `failed` takes back: each key the batch in flight (`_batch`) started, back to its
    count before the batch's first ScaleUp of it but not below its Ready replicas; the keys whose Ready
    replicas are kept (all of them Ready, or part); the keys held, with when their start began; and the key of
    a leftover taken back to its Ready replicas (see below; where its Deployment is), if any.

    A wait in the batch that no ScaleUp of it started (the plan's first, on replicas already starting: what an
    abandoned move left), in a cluster the routing in force sends nothing to (`no_traffic`), takes its key back
    to its Ready replicas: now, or last cycle (`ready_lately`), whichever is more. Found in review: a replica
    left by a move abandoned mid-way (its cluster unreachable one cycle, a Frozen spell) was never Ready, and
    each later move waited on it, ran out, scaled nothing back and held the key, for as long as the replica
    stayed: an hour of a GPU that never served, where the same move uninterrupted scaled it back at its
    timeout. Found in review of that: a kept cluster the route sends traffic to is not taken back, however few
    of its replicas are Ready (pods restarting after a node failure went 4 -> 0 while 40% of the requests still
    went there; a readiness dip in the cycle the wait ran out stopped three serving replicas): the routing
    counts on them, so the key is only held, as before. And a dip at the timeout must not stop replicas that
    were Ready a cycle ago and come back. A wait of an earlier batch, already shifted, takes nothing back (above).

    Found in review: when a replica an earlier batch had shifted traffic to crashed and its wait ran out, the
    batch in flight was undone instead: its cluster's Ready replica was stopped and held, the crashed one
    kept and never held. Only replicas that are not Ready go back, and the held keys are those that failed:
    the batch's not Ready and the one whose wait ran out (also a kept cluster's, which no ScaleUp started).

    A leftover is taken back only where its Deployment is (`seen`: observed this cycle, or sent by the failed
    write), as a ScaleUp running is (`_may_have_started`): found in review, one deleted by hand in the cycle its
    wait ran out was created again, with 0 replicas, by its scale-back."""
    batch = _batch(steps)
    count = _counts_set(batch, seen)
    kept = {key for key, replicas in count.items() if ready.get(key, 0) >= replicas}
    undo: dict[Key, int] = {}  # each key back to its count before the batch's first ScaleUp of it
    partly: set[Key] = set()  # keys of the batch taken back to their Ready replicas, not below
    started: dict[Key, datetime | None] = {}  # where the batch started replicas (or tried to: a refused write)
    for s in batch:
        if s.action is StepAction.SCALE_UP and s.key not in kept:
            if _may_have_started(s, seen) and s.from_replicas is not None:
                # Back to the count before the batch, but never below the replicas Ready now: a Deployment
                # scaled down stops its not-Ready pods first, so those Ready keep serving.
                back = undo.setdefault(s.key, max(s.from_replicas, min(ready.get(s.key, 0), count[s.key])))
                if back > s.from_replicas:
                    partly.add(s.key)
            if s.state is not StepState.PENDING:
                started.setdefault(s.key, s.started_at)
    leftover = None
    if failed.action is StepAction.WAIT_READY:
        started.setdefault(failed.key, failed.started_at)
        back = max(ready.get(failed.key, 0), ready_lately.get(failed.key, 0))
        leftover_of_the_batch = failed.key not in count and any(s is failed for s in batch)
        if leftover_of_the_batch and no_traffic(failed.cluster) and back < failed.replicas:
            # Its count is at least the wait's, above `back`: only replicas not Ready stop (a Deployment scaled
            # down stops those first), so no Ready capacity is lost; and none the routing sends requests to.
            leftover = failed.key
            if failed.key in seen:  # else its Deployment is gone (deleted by hand): the scale-back created it again
                undo[failed.key] = back
    return undo, kept | partly, started, leftover


def _answers(view: ClusterView) -> bool:
    """Whether a cluster may be written to this cycle: reachable, with a member client."""
    return view.member is not None and view.reachable


def _clusters(keys: set[Key]) -> str:
    return ", ".join(sorted({c for c, _ in keys}))


def _counts_set(batch: Sequence[StepRecord], seen: Collection[Key]) -> dict[Key, int]:
    """The count each key's last ScaleUp of `batch` set there, or may have (`_may_have_started`)."""
    return {s.key: s.replicas for s in batch if s.action is StepAction.SCALE_UP and _may_have_started(s, seen)}


def _may_have_started(step: StepRecord, seen: Collection[Key]) -> bool:
    """Whether a ScaleUp's count may have gone out and still stands: done, or running with a try that may have been
    applied (StepRecord.maybe_applied), where its cluster's Deployment of this deployment is known to be (`seen`).
    Found in review: a ScaleUp whose Deployment went out before the rest of its write was refused was not taken back
    by the roll-back, so the replicas it started stayed, uncounted by the plan. Found in review of that: one whose
    write never applied (a 5xx) had its scale-back create a 0-replica Deployment, Service, NetworkPolicy and PDB
    there. And a done one whose Deployment was deleted by hand since had its scale-back create it again, at the
    count before the batch: a replica started that the user had removed (a cluster that does not answer keeps its
    last known Deployments, so `seen` holds them there)."""
    done = step.state is StepState.DONE
    return step.key in seen and (done or (step.state is StepState.RUNNING and step.maybe_applied))


def _routed_nowhere(routing: Sequence[RouteWeight]) -> Callable[[str], bool]:
    """Whether the routing in force sends a cluster no request. Not known of any cluster while no routing is
    recorded (a status written before any, or lost): then every cluster may carry traffic."""
    routed = {r.cluster for r in routing if r.weight > 0}
    return lambda cluster: bool(routing) and cluster not in routed


@dataclass(frozen=True)
class _Unwritten:
    """Why a ScaleUp's or ScaleDown's member write did not go through this cycle (`Migrations._write`), as typed
    data: `_not_written` words it from these fields alone, never from the error's text."""

    stage: RequestStage | None
    """The request the member's error ended (MemberError.stage; READ: the write itself never went out); None when
    no request was sent at all (no member client, the cluster unreachable this cycle)."""
    status: int | None = None
    """The member's HTTP status (MemberError.status), None where no answer came, or none was sent."""
    gist: str = ""
    """MemberError.gist: the HTTP status and its phrase, or the error's kind; never the member's words."""
    failed: bool = False
    """The cluster failed it (ClusterUnreachable: a 5xx, or no complete answer) rather than refused it."""
    own: str = ""
    """MemberError.own_words: the refusal whole where gridshift alone wrote it and it says what to do (a workload
    namespace to create, the permission a request lacks); "" otherwise (the gist is said)."""
    went_out: bool = False
    """This try may have changed the cluster: its write request got a 5xx or no complete answer, or an earlier
    request of the same write went out (MemberError.sent_before). A refusal of the write itself applied nothing."""
    part_out: bool = False
    """An earlier request of this same try went out (MemberError.sent_before: the Deployment, with its count)."""

    @classmethod
    def of(cls, error: MemberError) -> _Unwritten:
        failed = isinstance(error, ClusterUnreachable)
        went_out = error.sent_before or (failed and error.stage is RequestStage.WRITE)
        return cls(error.stage, error.status, error.gist, failed, error.own_words, went_out, error.sent_before)


def _not_written(step: StepRecord, why: _Unwritten) -> tuple[str, str]:
    """What became of a write that did not go through, in gridshift's words (the write, the cluster, the HTTP status
    and phrase or the error's kind), and how a roll-back's reason goes on from there to "readyTimeoutSeconds=...":
    status says the first while the write is retried (`_write`), the roll-back and its Event both once it is given
    up. Found in review: the reason quoted the member's whole refusal, which for a 400/422 is the apiserver's or
    an admission webhook's text (redaction removes only the credentials gridshift knows), and went out as an Event.

    Five cases, told apart because they leave different things behind: the write never left (no member client,
    the view unreachable: `stage` None); a read before it (discovery, the object's GET) failed or got no complete
    answer, so the write was never sent (RequestStage.READ; review: a 503 to that GET read "failed with HTTP 503",
    as if the apply had been answered); the write itself got no complete answer (a transport error, the deadline),
    or a 5xx: whether it was applied is not known (Kubernetes' API conventions: a 500's outcome is unknown, a 504
    may have completed); the member refused it (any other answer: its gist, e.g. "HTTP 403 Forbidden", or gridshift's
    own words where they say what to do, `_Unwritten.own`).

    A try that was not sent says so only while no earlier try of the step may have gone out (StepRecord.maybe_applied;
    found in review: an apply that timed out, then a 503 to the read before the next try, was rolled back as "not
    sent"); else it says that an earlier try may have been applied, a refusal too."""
    write, cluster = f"{step.action.value} in {step.cluster}", step.cluster
    earlier = "an earlier try may have been applied"
    unsent, aside, also = (":", f" ({earlier})", f"; {earlier}") if step.maybe_applied else (" not sent:", "", "")
    if why.stage is None:
        return f"{write}{unsent} cluster {cluster} unreachable{aside}", " for"
    if not why.failed:
        # A refusal after a try that may have gone out says so too (review: it said "refused" alone, and the
        # roll-back "nothing was scaled back", while a replica that went out ran on); where part of this very try
        # went out, it says that (review: the first try read "an earlier try may have been applied").
        went = "; part of the write went out" if why.part_out else also
        if why.own:
            return f"{write} refused: {why.own}{went}", "; still refused after"
        said = "" if why.gist == MemberError.kind else f" ({why.gist})"  # a bare MemberError: "refused (refused)"
        return f"{write} refused{said}{went}", "; still refused after"
    if why.stage is RequestStage.READ:
        if why.status is None:
            return f"{write}{unsent} no complete answer from cluster {cluster} to the read before it{aside}", " within"
        return (
            f"{write}{unsent} the read before it failed in cluster {cluster} ({why.gist}{also})",
            "; still failing after",
        )
    if why.status is None:
        return f"{write}: no complete answer from cluster {cluster} (it may have been applied)", " within"
    return f"{write} failed in cluster {cluster} ({why.gist}; it may have been applied)", "; still failing after"


def _scaled_back(undo: Mapping[Key, int], not_written: set[Key], leftover: Key | None) -> str:
    """What a roll-back scaled back, for its reason. Found in review: every roll-back said "scaled back" though
    one on a wait that started nothing (an earlier batch's replica that crashed) scaled nothing back."""
    written = [k for k in undo if k not in not_written]
    if not written:
        return "nothing was scaled back"
    if written == [leftover]:
        return "scaled back to the replicas Ready"
    return "scaled back to the counts before the move"


def _batch(steps: Sequence[StepRecord]) -> Sequence[StepRecord]:
    """The batch in flight: the steps since the last ShiftRouting done."""
    shifted = max(
        (i for i, s in enumerate(steps) if s.action is StepAction.SHIFT_ROUTING and s.state is StepState.DONE),
        default=-1,
    )
    return steps[shifted + 1 :]


def with_holds(snapshot: Snapshot, holds: Mapping[str, frozenset[Key]]) -> Snapshot:
    """The snapshot with each deployment's held (cluster, GPU type) as its no_growth (see Migrations.holds)."""
    if not holds:
        return snapshot
    deployments = tuple(replace(d, no_growth=holds[d.id]) if d.id in holds else d for d in snapshot.deployments)
    return replace(snapshot, deployments=deployments)


def _written_outside_auto(status: Mapping[str, Any]) -> bool:
    """Whether the deployment's status was last written in a mode other than Auto (`status.mode`, written every
    cycle by service.status), so its steps in flight were kept through a Frozen or Advisory spell."""
    mode = status.get("mode")
    return isinstance(mode, str) and mode != MigrationMode.AUTO.value


def _planned_for_another_spec(
    deployment: ObservedDeployment, progress: MigrationProgress, plan: DeploymentPlan
) -> str | None:
    """Which earlier spec the stored steps were planned for, when the spec changed since (both generations
    known) and the plan for the spec now starts no replica where the steps do; None otherwise. A change the
    move survives (a new demand figure, a label) keeps it: abandoned, every such edit restarted its waits."""
    generation = deployment.body.get("metadata", {}).get("generation")
    stored = deployment.old_status.get("observedGeneration")
    if not (isinstance(generation, int) and isinstance(stored, int) and stored != generation):
        return None
    wanted = {(t.cluster, t.gpu_type) for t in plan.targets if t.replicas > 0}
    if all(s.key in wanted for s in progress.steps if s.action is StepAction.SCALE_UP):
        return None
    return f"generation {stored} (the spec is at {generation} now)"


def _started_where_ruled_out(progress: MigrationProgress, plan: DeploymentPlan) -> str:
    """The clusters the stored move starts replicas in that the plan made now has no option in (the
    deployment may no longer run there: not admitted, not selected, forbidden), joined; "" when none."""
    barred = {s.cluster for s in progress.steps if s.action is StepAction.SCALE_UP and s.key not in plan.max_num_seqs}
    return ", ".join(sorted(barred))


def _scales_down_after(steps: Sequence[StepRecord], step: StepRecord) -> bool:
    """Whether a ScaleDown not yet done follows `step`."""
    position = next(i for i, s in enumerate(steps) if s is step)
    return any(s.action is StepAction.SCALE_DOWN and not s.state.finished for s in steps[position + 1 :])


def _no_longer_ready(steps: Sequence[StepRecord], step: StepRecord, ready: Mapping[Key, int], now: datetime) -> bool:
    """Whether replicas a done WaitReady before `step` saw Ready are Ready no more (crashed, evicted); the
    latest such WaitReady of that key is then waited on again, from now. Found in review: a WaitReady was
    checked once, so a later ShiftRouting sent half the traffic to a cluster with no Ready replica and the
    ScaleDown after it stopped the last Ready source. Keys scaled down after their WaitReady are not held."""
    position = next(i for i, s in enumerate(steps) if s is step)
    waited: dict[Key, StepRecord] = {}
    for earlier in steps[:position]:
        if earlier.action is StepAction.WAIT_READY and earlier.state is StepState.DONE:
            waited[earlier.key] = earlier
        elif earlier.action is StepAction.SCALE_DOWN:
            waited.pop(earlier.key, None)
    lost = [w for key, w in waited.items() if ready.get(key, 0) < w.replicas]
    for wait in lost:
        wait.state, wait.started_at = StepState.RUNNING, now
        wait.message = f"only {ready.get(wait.key, 0)}/{wait.replicas} Ready now, after they were: waiting again"
    return bool(lost)


def _routed_to_none_ready(progress: MigrationProgress, step: StepRecord, ready: Mapping[Key, int]) -> str | None:
    """A cluster that `step` would leave traffic on (the weights it publishes; for a ScaleDown, the ones in
    force) with no Ready replica, named; None when every such cluster has one. Found in review: a cluster
    the move kept had no WaitReady to re-check, so when its replicas crashed mid-move, the ShiftRouting
    sent it half the traffic and the ScaleDown after it stopped the last other source."""
    if step.action is StepAction.SHIFT_ROUTING and not _scales_down_after(progress.steps, step):
        return None  # a move that only adds replicas stops nothing: its weights go out as planned
    weights = step.routing if step.action is StepAction.SHIFT_ROUTING else progress.routing
    for route in weights:
        if route.weight > 0 and not any(n > 0 for (cluster, _), n in ready.items() if cluster == route.cluster):
            return f"cluster {route.cluster} would take {route.weight}% of the traffic with no Ready replica"
    return None


def _over_ready(routing: tuple[RouteWeight, ...], ready: Mapping[Key, int]) -> tuple[RouteWeight, ...]:
    """The weights without the clusters that have no Ready replica, the rest scaled back up to 100; as they
    are when none is left. Found in review: a growth move's ShiftRouting (no ScaleDown after it, so no
    abandon guard) gave half the traffic to a kept cluster whose replicas had all crashed."""
    serving = {c for (c, _), n in ready.items() if n > 0}
    kept = {r.cluster: float(r.weight) for r in routing if r.cluster in serving}
    if not kept or len(kept) == len(routing):
        return routing
    return tuple(RouteWeight(c, w) for c, w in sorted(percents(kept).items()))


def _away(
    deployment: ObservedDeployment, views: Mapping[str, ClusterView], now: datetime, grace: float, plan: DeploymentPlan
) -> dict[str, Unreachable]:
    """The unreachable clusters, as the routing grace reads them: when each spell began (a grace already over, where
    no observation says: no weight kept on no evidence), whether the deployment may still run there (the plan's
    DeploymentPlan.usable_away, the planner's own eligibility rules), and the deployment's pods there reporting fresh
    metrics, or why they were not measured."""
    ended = now - timedelta(seconds=grace)
    return {
        name: Unreachable(
            name,
            view.unreachable_since or ended,
            deployment.reporting_away.get(name, 0),
            # Eligibility first, whatever is known of its pods (fifth review: "not measured" kept a forbidden
            # region's weight into a move); a cluster whose replicas are unknown is judged by its own rules there.
            usable=name in plan.usable_away,
            unmeasured=deployment.unmeasured_away.get(name),
        )
        for name, view in views.items()
        if not view.reachable
    }


def _waits_on_unreachable(steps: Sequence[StepRecord], views: Mapping[str, ClusterView]) -> bool:
    pending = [s for s in steps if not s.state.finished and s.cluster != ROUTING_CLUSTER]
    return any(s.cluster not in views or not views[s.cluster].reachable for s in pending)
