"""The actuate stage: member-cluster workloads and HTTPRoute weights, written only when they change.

`Actuator.set_replicas` renders a deployment's workload for one (cluster, GPU type) and applies it
unless the cluster already runs that replica count with those objects; `repair` applies again, with
the counts as they are, whatever of a running workload differs from its rendering. Both compare the
rendered objects with what was read back of the live ones (`render.applied_digest`: the fields
gridshift sets, from the watch-fed caches of observation), not with an annotation: `kubectl edit`
keeps the annotation while it changes an image or drops a securityContext, a deleted NetworkPolicy
has no annotation at all, and a new operator version renders Services and policies afresh. So an
idle cycle still asks the apiserver nothing, and drift is repaired within a cycle, by applying only
the objects that differ. Server-side apply cannot remove what another writer added beside gridshift's
fields (a sidecar, a volume): an object our apply left as it was is not applied again until it or its
rendering changes. It remembers what it applied this cycle, so status shows the new desired counts at
once. `route` writes routing weights to the HTTPRoute a deployment names, where that deployment holds the
route: of the InferenceDeployments naming one route, the one created first (`route_holders`); the others'
weights are refused (RouteHeld, reported as RouteFailed), since a route's every rule takes one set of weights.

What the engine runs (`_target`): the plan's variant and --max-num-seqs where the plan has an option for the
(cluster, GPU type), else what the live Deployment runs; the plan's --max-num-seqs only once it leaves a dead
band around the live value (MAX_NUM_SEQS_KEEP_*) or the Deployment was rendered from another generation of the
spec (the GENERATION annotation: an edit not yet applied there), since each new value is a rollout; and, past
the band, a new value on the same generation and build at most once per `max_num_seqs_interval_seconds`
(OperatorSettings) per member Deployment, unless the plan's is below half the live one (MAX_NUM_SEQS_UNSAFE_BELOW).
When a value was last rendered is the member Deployment's MAX_NUM_SEQS_SINCE annotation (its metadata: no
rollout), so an operator restart or a new leader keeps the interval.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, NamedTuple

from gridshift.actuation.members import MemberError, RequestStage, WorkloadState
from gridshift.actuation.render import WorkloadTarget, applied_digest, engine_image, model_source, render_workload
from gridshift.api import InferenceDeploymentSpec, MigrationMode
from gridshift.api.regional_cluster import NAMESPACE_PLACEHOLDER
from gridshift.hub.client import Hub, RouteMissing
from gridshift.planner import snapshot as S
from gridshift.planner.migration import Key, RouteWeight
from gridshift.planner.plan import DeploymentPlan, Plan
from gridshift.service.errors import describe
from gridshift.service.inputs import max_model_len
from gridshift.service.state import ClusterView, CycleErrorReason, CycleReport, ObservedDeployment, Problem
from gridshift.service.writes import Fenced

_DEFAULT_MAX_NUM_SEQS = 256
"""vLLM's own default of --max-num-seqs, for a new workload on a GPU type the plan has no option for."""

MAX_NUM_SEQS_KEEP_BELOW = 0.10
"""Fraction of the live --max-num-seqs a planned value may fall below it and not be rendered (dead band).
The flag follows the batch at SLO capacity, which follows measured mean request sizes: found in review, a
+/-2.5 % jitter of the mean prompt moved it 9, 8, 7, 6, 10, 11, each a new pod template, so five rollouts of
every replica in six cycles (minutes of cold start each, a spare GPU for the surge). Narrow on this side: a
live cap above the SLO batch lets a replica past its planned load decode a batch that much larger (10 % and
MAX_NUM_SEQS_KEEP_SEQUENCES at most), and a decode step takes s(B) = a + g*B (planner.capacity), so its tokens
come less than that much slower; a replica within its planned load never fills the cap. A planned value that
is the KV-memory limit (planner.problem.max_num_seqs) is kept below too: the plan carries the number only, not
which limit set it (docs/gpus.md says so)."""
MAX_NUM_SEQS_KEEP_ABOVE = 0.25
"""Fraction of the live --max-num-seqs a planned value may rise above it and not be rendered. Wider than
MAX_NUM_SEQS_KEEP_BELOW: a live cap below the SLO batch only binds at the planned load's edge, where it
queues requests (a longer TTFT for some) and keeps the SLO's TPOT for those it runs."""
MAX_NUM_SEQS_KEEP_SEQUENCES = 1
"""Sequences the dead band is widened by on both sides: the flag is the batch rounded up, so a batch that
moved by a hair crosses a whole number (9.01 and 8.99 are 10 and 9)."""
_STAMP = "%Y-%m-%dT%H:%M:%SZ"
"""RFC 3339 in UTC, whole seconds: the MAX_NUM_SEQS_SINCE annotation's form."""
MAX_NUM_SEQS_UNSAFE_BELOW = 0.5
"""Fraction of the live --max-num-seqs below which a planned value is rendered within the rollout interval
(OperatorSettings.max_num_seqs_interval_seconds) too. A live cap over twice the SLO batch B lets a replica past
its planned load decode 2B, a step of a + 2gB (planner.capacity): near twice the planned step where g*B dominates,
so every running request's TPOT breaks the SLO, not only the queued ones'. A live cap below the planned one is
never rendered early: it queues requests at the planned load's edge (a longer TTFT for some), and the queue adds
to the measured demand (service.inputs.observed_demand), which the planner meets with replicas. Found in review:
the flag is TTFT-limited and moves about 3.7 times the mean prompt, so the dead band alone let the means of
successive rate windows roll every replica six times in 30 s (10, 36, 23, 18, 15, 10, 7) on an unchanged spec."""


class RouteHeld(RouteMissing):
    """The HTTPRoute a deployment names is held by another InferenceDeployment (`route_holders`): not written.
    A RouteMissing as far as a migration is concerned: no route of this deployment's carries its traffic, so
    a ShiftRouting is not held for weights that will never be taken. Its message names the holder, which is
    in the route's own namespace: no other tenant's name is shown."""


def route_holders(bodies: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], str]:
    """(namespace, HTTPRoute) -> the id (namespace/name) of the InferenceDeployment that writes its weights: of
    those naming it, the one created first (metadata.creationTimestamp, then name). Every mode counts, not Auto
    only: a Frozen deployment's route keeps its weights, and a later Auto one naming it would take its traffic.

    Found in review: every deployment naming a route wrote its weights to every rule of it (the backendRefs
    are named after clusters, not deployments), each cycle, without a word: two deployments naming one
    route sent each other's traffic to the regions of whichever wrote last, and any tenant allowed to create
    an InferenceDeployment in the namespace could so take a colleague's traffic.

    `bodies`: every InferenceDeployment on the hub, read as it is (spec.routing.httpRouteName), not only those
    planned. Found in review of that fix: holders were chosen among the planned ones, so a holder the model
    refuses this cycle (an edit admission let through) or one being deleted (its finalizer still cleaning, its
    replicas serving) lost its route to the next created, whose weights then sent its traffic where it had no
    replica. Such a holder keeps the route, writing nothing there, until it is gone from the hub."""
    holders: dict[tuple[str, str], str] = {}
    for _, namespace, name, route in sorted(filter(None, map(_naming, bodies))):
        holders.setdefault((namespace, route), f"{namespace}/{name}")
    return holders


def _naming(body: Mapping[str, Any]) -> tuple[datetime, str, str, str] | None:
    """(created, namespace, name, HTTPRoute) of a hub body naming a route, else None. Read defensively: a body
    the model refuses may hold anything. Created: the creationTimestamp (the apiserver stamps whole seconds: two
    created in one second are told apart by name); one missing or unreadable sorts last: no route is taken from
    one known to be older."""
    meta, spec = body.get("metadata"), body.get("spec")
    routing = spec.get("routing") if isinstance(spec, Mapping) else None
    route = routing.get("httpRouteName") if isinstance(routing, Mapping) else None
    if not isinstance(meta, Mapping) or not isinstance(route, str) or not route:
        return None
    namespace, name = meta.get("namespace"), meta.get("name")
    if not isinstance(namespace, str) or not isinstance(name, str) or not namespace or not name:
        return None
    stamp = meta.get("creationTimestamp")
    created = datetime.max.replace(tzinfo=UTC)
    if isinstance(stamp, str):
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(stamp)  # the apiserver writes RFC 3339 in UTC ("...Z")
            created = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return created, namespace, name, route


class Rendered(NamedTuple):
    """One object of a rendered workload, as `render.applied_digest`."""

    kind: str
    namespace: str
    name: str
    applied: str


class Actuator:
    """Writes workloads and routes for this cycle; see the module docstring."""

    def __init__(
        self,
        hub: Hub,
        fence: Callable[[], bool] = lambda: True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_num_seqs_interval_seconds: float = 1800.0,
    ) -> None:
        self.hub = hub
        self._fence = fence
        self._clock = clock
        self._interval = max_num_seqs_interval_seconds
        self._max_num_seqs: dict[str, Mapping[tuple[str, str], int]] = {}
        self._variants: dict[str, Mapping[tuple[str, str], str]] = {}
        self._applied: dict[str, dict[Key, int]] = {}
        self._rendered: dict[WorkloadTarget, tuple[InferenceDeploymentSpec, list[Rendered]]] = {}
        self._rendered_before: dict[WorkloadTarget, tuple[InferenceDeploymentSpec, list[Rendered]]] = {}
        self._tried: dict[tuple[str, str, str, str], tuple[str, str | None]] = {}
        """(cluster, kind, namespace, name) -> (digest applied, live digest it was applied over)."""
        self._route_holders: dict[tuple[str, str], str] = {}
        """(namespace, HTTPRoute) -> the id of the deployment that writes its weights (`route_holders`)."""

    def begin(self, plan: Plan, bodies: Iterable[Mapping[str, Any]] = ()) -> None:
        """A new cycle: the plan's engine batch sizes per deployment and (cluster, GPU type), and which of the
        InferenceDeployments on the hub (`bodies`, refused and leaving ones too) holds each HTTPRoute
        (`route_holders`)."""
        self._route_holders = route_holders(bodies)
        self._max_num_seqs = {d.id: d.max_num_seqs for d in plan.deployments}
        self._variants = {d.id: d.variants for d in plan.deployments if d.variants}
        # Counts applied this cycle only: a cycle cut short (the Lease lost mid-write) left its counts to be read
        # as the next cycle's, or a later deployment's of the same name (review).
        self._applied = {}
        # Renderings used last cycle are kept one more: a steady fleet renders nothing again.
        self._rendered_before, self._rendered = self._rendered, {}

    def set_replicas(self, deployment: ObservedDeployment, view: ClusterView, gpu_type: str, replicas: int) -> int:
        """Apply the workload with `replicas` unless it is read to have that count (this cycle: not where its
        namespace's Deployments were not listed, `ClusterView.unlisted`) and those objects. Returns writes."""
        assert view.member is not None
        target = self._target(deployment, view, gpu_type, replicas)
        rendered = self._render(deployment.resource.spec, target)
        current = self._current(deployment, view, gpu_type)
        if current is None or current.desired != replicas or current.namespace in view.unlisted:
            # A new count (or a new workload): every object, as before. So where the namespace's Deployments were
            # not listed this cycle: `current` is the last read, not what runs (review: a roll-back's scale-back to
            # the count read before the ScaleUp was taken as done, and the never-Ready replica ran on).
            stale = rendered
        else:
            stale = self._differing(view, rendered, current.applied)
        if not stale:
            return 0
        self._apply(deployment, view, target, stale)
        self._applied.setdefault(deployment.id, {})[(view.name, gpu_type)] = replicas
        return 1

    def repair_all(
        self,
        deployment: ObservedDeployment,
        plan: DeploymentPlan,
        moving: bool,
        views: Mapping[str, ClusterView],
        report: CycleReport,
    ) -> None:
        """`repair` in every cluster, for an Auto deployment that is not `moving` (a migration's own
        steps apply what they change); a cluster that refuses is reported and the others still repaired."""
        if plan.mode is not MigrationMode.AUTO or moving:
            return
        for view in views.values():
            try:
                report.member_writes += self.repair(deployment, view)
            except MemberError as error:
                report.errors.append(f"{deployment.id}: workload in {view.name} not repaired: {error}")

    def repair(self, deployment: ObservedDeployment, view: ClusterView) -> int:
        """Apply again, at the counts they run with, the objects of the deployment's workloads here that
        differ from their rendering (changed by hand, deleted, rendered anew). Returns writes."""
        if view.member is None or view.objects is None or not view.reachable:
            return 0
        writes = 0
        for w in view.workloads or ():
            if (w.deployment_namespace, w.deployment_name) != (deployment.planned.namespace, deployment.planned.name):
                continue
            target = self._target(deployment, view, w.gpu_type, w.desired)
            stale = self._differing(view, self._render(deployment.resource.spec, target), w.applied)
            if stale:
                self._apply(deployment, view, target, stale)
                writes += 1
        return writes

    def _apply(
        self, deployment: ObservedDeployment, view: ClusterView, target: WorkloadTarget, stale: Sequence[Rendered]
    ) -> None:
        """Apply the `stale` objects of the workload, and remember the live state each was met in.

        Each object is fenced on its own: the four of a new workload take up to a read, an apply and retries
        each, longer together than the Lease's margin (review). Once the first went out, a lapse stops the
        rest without raising: the workload's count is written (and counted), the objects left are repaired
        by whoever leads next; the next write raises Fenced."""
        assert view.member is not None
        wanted = {(r.kind, r.name) for r in stale}
        sent: set[tuple[str, str]] = set()
        for manifest in render_workload(deployment.resource.spec, target):
            key = (manifest["kind"], manifest["metadata"]["name"])
            if key not in wanted:
                continue
            if sent and not self._fence():
                break  # read once: a lapse between two reads raised after the Deployment went out (review)
            if not sent:
                self._fenced()
            try:
                view.member.apply([manifest], fence=self._fenced)  # fenced again before a retry on 409
            except Fenced:
                if not sent:
                    raise
                break  # as a lapse between two objects: the Deployment went out, the rest is the next leader's
            except MemberError as error:
                if sent:
                    # An earlier object of the write went out (the Deployment, its count, first): a read failed
                    # before this one's apply does not make the write unsent (service.migrate words its roll-back),
                    # nor does a refusal of this one (sent_before: the migration remembers it may have gone out).
                    error.stage, error.sent_before = RequestStage.WRITE, True
                raise
            sent.add(key)
        for r in stale:
            if (r.kind, r.name) in sent:
                self._tried[(view.name, r.kind, r.namespace, r.name)] = (r.applied, self._live(view, r))

    def _target(
        self, deployment: ObservedDeployment, view: ClusterView, gpu_type: str, replicas: int
    ) -> WorkloadTarget:
        """The rendering of the workload: the plan's build and batch size where it has an option for this
        (cluster, GPU type), else those the live Deployment runs. Found in review: a replica the plan has no
        option for (kept by an Infeasible plan, a stray with nowhere to go, a forbidden region's) was rendered
        as the model's own build at vLLM's default batch of 256 and rolled out so: a small quantised variant's
        replica became the base model on a GPU it cannot start on."""
        spec = deployment.resource.spec
        live = self._current(deployment, view, gpu_type)
        live_engine: tuple[str, tuple[str, ...]] | None = None
        planned = self._max_num_seqs.get(deployment.id, {}).get((view.name, gpu_type))
        now = self._clock()
        if planned is not None:
            variant = self._variants.get(deployment.id, {}).get((view.name, gpu_type), "")
            max_num_seqs = _steady_max_num_seqs(deployment, live, variant, planned, (now, self._interval))
        elif live is not None:
            told = live_variant(spec, live)
            variant, max_num_seqs = told or "", live.max_num_seqs or _DEFAULT_MAX_NUM_SEQS
            # A build not told apart: its container as it runs, rather than a guess rolled out.
            live_engine = (live.image, live.args) if told is None else None
        else:
            variant, max_num_seqs = "", _DEFAULT_MAX_NUM_SEQS
        return WorkloadTarget(
            deployment_namespace=deployment.planned.namespace,
            deployment_name=deployment.planned.name,
            cluster=view.name,
            workload_namespace=view.workload_namespace_for(deployment.planned.namespace),
            gpu_type=gpu_type,
            replicas=replicas,
            max_num_seqs=max_num_seqs,
            owner_uid=deployment.uid,
            variant=variant,
            max_model_len=max_model_len(spec, variant, gpu_type),
            generation=_generation(deployment),
            max_num_seqs_since=_since(live, max_num_seqs, now),
            live_engine=live_engine,
            secret_references=NAMESPACE_PLACEHOLDER in view.resource.spec.workload_namespace,
        )

    @staticmethod
    def _current(deployment: ObservedDeployment, view: ClusterView, gpu_type: str) -> WorkloadState | None:
        wanted = (deployment.planned.namespace, deployment.planned.name, gpu_type)
        return next(
            (w for w in view.workloads or () if (w.deployment_namespace, w.deployment_name, w.gpu_type) == wanted),
            None,
        )

    def _render(self, spec: InferenceDeploymentSpec, target: WorkloadTarget) -> list[Rendered]:
        """The digests of the workload's objects, rendered once per parsed spec and target (repair compares
        every running workload every cycle; only digests are kept, the manifests are rendered to apply)."""
        known = self._rendered.get(target) or self._rendered_before.get(target)
        if known is None or known[0] is not spec:
            rendered = [
                Rendered(m["kind"], m["metadata"]["namespace"], m["metadata"]["name"], applied_digest(m))
                for m in render_workload(spec, target)
            ]
            known = (spec, rendered)
        self._rendered[target] = known
        return known[1]

    def _differing(self, view: ClusterView, rendered: Sequence[Rendered], deployment_applied: str) -> list[Rendered]:
        """The objects whose live one is missing or differs, less those an apply of ours already met in
        exactly this state (what server-side apply cannot undo is not retried every cycle)."""
        stale = []
        for r in rendered:
            key = (view.name, r.kind, r.namespace, r.name)
            live = deployment_applied if r.kind == "Deployment" else self._live(view, r)
            if live == r.applied:
                self._tried.pop(key, None)
            elif (view.objects is not None or r.kind == "Deployment") and self._tried.get(key) != (r.applied, live):
                stale.append(r)
        return stale

    @staticmethod
    def _live(view: ClusterView, r: Rendered) -> str | None:
        """The digest of the live object (None: there is none, or it was not read)."""
        if r.kind == "Deployment":
            found = next((w for w in view.workloads or () if (w.namespace, w.name) == (r.namespace, r.name)), None)
            return found.applied if found is not None else None
        return (view.objects or {}).get((r.kind, r.namespace, r.name))

    def route(
        self,
        deployment: ObservedDeployment,
        plan: DeploymentPlan,
        routing: Sequence[RouteWeight],
        views: Mapping[str, ClusterView],
        report: CycleReport,
    ) -> str | None:
        """Publish the routing weights on the deployment's HTTPRoute, if it names one (Auto mode only); a
        failure is reported (RouteFailed), and the deployment's status is still written. Returns why the route
        is another deployment's (`route_held`, for MigrationProgress.route_held), in every mode and whether or
        not weights were due this cycle: a Frozen deployment's route carries the holder's weights too. A held
        route is reported (RouteFailed) every cycle, in every mode: found in review, Frozen and Advisory ones,
        and Auto ones with no weights due, reported nothing, which an alert on RouteFailed missed."""
        held = self.route_held(deployment)
        if held is not None:
            report_route_failure(deployment, RouteHeld(held), report)
            return held
        if plan.mode is not MigrationMode.AUTO:
            return None
        if not routing and (
            any(t.replicas > 0 for t in plan.targets) or any(p.desired > 0 for p in deployment.planned.placements)
        ):
            # No weights yet (a first move still starting, or waiting to revalidate), or replicas that still run
            # without a plan for them (an infeasible plan keeps them: found in self-review, zeroing the route then
            # took a serving deployment's traffic away): the route keeps its own.
            return None
        try:
            report.member_writes += self.publish_routing(deployment, routing, views)
        except Fenced:
            raise
        except Exception as error:  # a route the hub refuses must not stop the deployment's report
            report_route_failure(deployment, error, report)
        return None

    def publish_routing(
        self, deployment: ObservedDeployment, routing: Sequence[RouteWeight], views: Mapping[str, ClusterView]
    ) -> int:
        """Set the weights on the deployment's HTTPRoute, if it names one; returns the writes (0 or 1). No
        weights at all (scaled to zero) set every cluster's to 0: found in review, an empty routing was never
        written and the route kept 100 for a cluster with no replica, so a fallback backendRef got nothing.
        Raises RouteHeld where another deployment holds the route (`route_holders`), else what the hub raises
        (RouteMissing, RouteConflict, HubForbidden, ...)."""
        route = deployment.resource.spec.routing.http_route_name
        if not route:
            return 0
        namespace = deployment.planned.namespace
        held = self.route_held(deployment)
        if held is not None:
            raise RouteHeld(held)
        self._fenced()
        weights = {r.cluster: r.weight for r in routing}
        # Clusters gridshift weighted last time count too: a RegionalCluster deleted since is no view, and its
        # backendRef kept the weight it had (review: 100 beside the new 100, a 50/50 split status did not show).
        weighted = {str(r.get("cluster")) for r in deployment.old_status.get("routing") or [] if isinstance(r, Mapping)}
        clusters = set(views) | weighted
        return int(self.hub.set_route_weights(namespace, route, weights, clusters))

    def route_held(self, deployment: ObservedDeployment) -> str | None:
        """Why the HTTPRoute the deployment names is not its to write (another InferenceDeployment, created
        first, holds it: `route_holders`), or None. The holder is in the route's own namespace: no other
        tenant's name is shown."""
        route = deployment.resource.spec.routing.http_route_name
        namespace = deployment.planned.namespace
        holder = self._route_holders.get((namespace, route), deployment.id) if route else deployment.id
        if holder == deployment.id:
            return None
        return (
            f"HTTPRoute {namespace}/{route} is held by InferenceDeployment {holder} (created first), whose "
            "weights it carries; give each InferenceDeployment its own HTTPRoute (docs/routing.md)"
        )

    def _fenced(self) -> None:
        """Checked before every write: a migration's steps are several writes, and the Lease may lapse
        between two of them (the write pool fences status and Events the same way)."""
        if not self._fence():
            raise Fenced("leader Lease not renewed within the renew deadline: member write not sent")

    def as_applied(self, deployment: ObservedDeployment) -> S.Deployment:
        """The deployment with the replica counts applied this cycle (Ready counts stay as observed)."""
        applied = self._applied.pop(deployment.id, {})
        if not applied:
            return deployment.planned
        placements = {(p.cluster, p.gpu_type): p for p in deployment.planned.placements}
        for (cluster, gpu_type), replicas in applied.items():
            ready = placements[(cluster, gpu_type)].ready if (cluster, gpu_type) in placements else 0
            placements[(cluster, gpu_type)] = S.Placement(cluster, gpu_type, replicas, min(ready, replicas))
        return replace(deployment.planned, placements=tuple(placements[k] for k in sorted(placements)))


def _steady_max_num_seqs(
    deployment: ObservedDeployment,
    live: WorkloadState | None,
    variant: str,
    planned: int,
    interval: tuple[datetime, float] | None = None,
) -> int:
    """The plan's --max-num-seqs, or the live Deployment's while the plan's is within the dead band around it
    (MAX_NUM_SEQS_KEEP_BELOW, _ABOVE, _SEQUENCES) and it runs the build planned, or while its value was rendered
    less than `interval` = (now, seconds) ago (`_recent`) and the plan's is not below MAX_NUM_SEQS_UNSAFE_BELOW of
    it. A Deployment rendered from
    another generation of the spec (an edit: a new SLO, image or build) takes the plan's, until one rendering
    from this generation was applied there; so does a Deployment that does not say its value.

    Found in review: the edit was told by status.observedGeneration, which is written every cycle, also
    when the member apply failed, the cluster was unreachable or repair waited for a migration: the edit
    was seen one cycle only, and the planned value, inside the band of the old one, was never rendered.
    A Deployment without the GENERATION annotation (of the previous release) counts as rendered from
    another: the previous release rendered the plan's value every cycle, so at the upgrade this renders
    what it would have; where the value is the same, the one write is the annotation (metadata, no rollout)."""
    generation = _generation(deployment)
    if live is None or live.max_num_seqs is None or generation is None or live.generation != generation:
        return planned
    if live_variant(deployment.resource.spec, live) != variant:
        return planned
    running = live.max_num_seqs
    low = running * (1.0 - MAX_NUM_SEQS_KEEP_BELOW) - MAX_NUM_SEQS_KEEP_SEQUENCES
    high = running * (1.0 + MAX_NUM_SEQS_KEEP_ABOVE) + MAX_NUM_SEQS_KEEP_SEQUENCES
    if low <= planned <= high:
        return running
    # The interval holds a value only where pods run it: at 0 replicas a new value rolls nothing, and held there it
    # rolled the replicas a migration's or roll-back's ScaleUp started with the old one, once the interval ended
    # (found in review: started at 10:15 with 5, restarted at 10:31 for the planned 14).
    held = interval is not None and live.desired > 0 and _recent(live, *interval)
    if held and planned >= running * MAX_NUM_SEQS_UNSAFE_BELOW:
        return running
    return planned


def _recent(live: WorkloadState, now: datetime, seconds: float) -> bool:
    """Whether the live Deployment's --max-num-seqs was rendered less than `seconds` before `now`. One that does
    not say when (rendered before gridshift wrote it down, or the annotation removed) or says a time after `now`
    (a clock set back, a hand edit) is not recent: one new value goes through and is stamped."""
    since = live.max_num_seqs_since
    return since is not None and since <= now and (now - since).total_seconds() < seconds


def _since(live: WorkloadState | None, max_num_seqs: int, now: datetime) -> str | None:
    """The MAX_NUM_SEQS_SINCE stamp to render with `max_num_seqs`: the live one while the value stays (None where
    it has none: a value it kept is not stamped as new), else `now`."""
    if live is not None and live.max_num_seqs == max_num_seqs:
        stamp = live.max_num_seqs_since
        return stamp.strftime(_STAMP) if stamp is not None else None
    return now.astimezone(UTC).strftime(_STAMP)


def _generation(deployment: ObservedDeployment) -> int | None:
    """The InferenceDeployment's metadata.generation (None: unknown, which the dead band counts as an edit)."""
    generation = deployment.body.get("metadata", {}).get("generation")
    return generation if isinstance(generation, int) and not isinstance(generation, bool) else None


def live_variant(spec: InferenceDeploymentSpec, live: WorkloadState) -> str | None:
    """The spec's build a live Deployment runs: the one its VARIANT annotation names while the spec still
    has it; for a Deployment rendered before gridshift wrote that down, the build with its weights whose own
    extraArgs all appear in its args, preferring the one with its image, then the one with the most such
    args. Found in review: told by weights and image alone, a quantise-on-load variant (only
    `--quantization=fp8` of its own) read as the model's own build and was rolled to it. None: two builds
    fit equally (the caller keeps the container as it runs). A build since removed from the spec, or none
    with its weights, is the model's own."""
    names = ["", *(v.name for v in spec.variants)]
    if live.variant is not None:
        return live.variant if live.variant in names else ""
    args = set(live.args)
    own = {v.name: [str(a) for a in v.extra_args] for v in spec.variants}
    fits = [n for n in names if model_source(spec, n) == live.model and args.issuperset(own.get(n, ()))]
    if not fits:
        return ""
    scores = {n: (engine_image(spec, n) == live.image, len(own.get(n, ()))) for n in fits}
    best = [n for n in fits if scores[n] == max(scores.values())]
    return best[0] if len(best) == 1 else None


def report_route_failure(deployment: ObservedDeployment, error: Exception, report: CycleReport) -> str:
    """Reports weights the hub did not take (RouteFailed); returns why, without the deployment's name
    (no secret in it: `describe`)."""
    reason = f"routing weights not published: {describe(error)}"
    message = f"{deployment.id}: {reason}"
    if message not in report.errors:  # the migrate stage and the actuate stage may both try in one cycle
        report.errors.append(message)
        report.problems.append(Problem(CycleErrorReason.ROUTE_FAILED, message, deployment=deployment.id))
    return reason
