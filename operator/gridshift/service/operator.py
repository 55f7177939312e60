"""The service: one planning cycle gathers a snapshot, plans, acts on member clusters and writes status.

The kopf shell only feeds it the indexed hub objects and pokes it on spec changes. Everything it
touches goes through adapters (Hub, MemberCluster, MetricsSource, ManagedPriceFeed) injected at
construction, so the cycle runs the same against fakes in unit tests and real apiservers in e2e.

Safety rules kept here:
- Only the Lease holder acts; others plan nothing and write nothing.
- An idle cycle writes nothing: status is patched only when it changed (values rounded so metric
  jitter is not a change), member objects only when replicas or the rendered template changed.
- Migrations follow the planner's make-before-break steps, persisted in status.migration so a
  restarted operator resumes where it stopped; a replica not Ready by readyTimeoutSeconds is
  rolled back and the reason recorded.
- Advisory and Frozen deployments are never touched in member clusters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from gridshift.actuation.members import (
    ActuationForbidden,
    ClusterUnreachable,
    GpuInventory,
    MemberCluster,
    WorkloadState,
)
from gridshift.actuation.render import WorkloadTarget, render_deployment, render_workload
from gridshift.api import GPUProfile, InferenceDeployment, MigrationMode, RegionalCluster
from gridshift.api.inference_deployment import DemandSource
from gridshift.hub.client import Hub, ObjectGone, ObjectRef, RouteMissing, SecretMissing
from gridshift.planner import snapshot as S
from gridshift.planner.capacity import replica_capacity
from gridshift.planner.plan import DeploymentPlan, Plan, make_plan
from gridshift.planner.settings import PlannerSettings
from gridshift.service import inputs
from gridshift.service.metrics import OperatorMetrics
from gridshift.service.status import cluster_status, deployment_status, status_patch
from gridshift.settings import OperatorSettings
from gridshift.signals.labels import DeploymentRef
from gridshift.signals.metrics import DeploymentSignals, MetricsError, MetricsSource
from gridshift.signals.price_service import ManagedPriceFeed, PriceReading

log = logging.getLogger("gridshift.service")

LEASE_NAME = "gridshift-leader"
_DONE_STATES = ("Done", "RolledBack", "Failed")

MemberFactory = Callable[[str, str], MemberCluster]
"""(cluster name, kubeconfig text) -> member client."""
MetricsFactory = Callable[[str], MetricsSource]
"""(Prometheus URL) -> metrics source."""
FeedFactory = Callable[[str, RegionalCluster], ManagedPriceFeed]
"""(cluster name, RegionalCluster) -> managed price feed."""


@dataclass
class ClusterView:
    """What one cycle learned about one member cluster."""

    name: str
    spec: RegionalCluster
    member: MemberCluster | None
    inventory: list[GpuInventory] | None
    workloads: list[WorkloadState] | None
    reading: PriceReading | None
    error: str | None = None
    old_status: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class CycleReport:
    """Outcome of one cycle, for logs, probes, metrics and tests."""

    leader: bool
    started_at: datetime
    seconds: float = 0.0
    plan: Plan | None = None
    member_writes: int = 0
    status_writes: int = 0
    events: int = 0
    decisions: list[str] = field(default_factory=list)
    """Reasons of the decisions that changed this cycle (one per deployment whose decision changed)."""
    errors: list[str] = field(default_factory=list)


class OperatorService:
    """Plans and acts for every InferenceDeployment; see the module docstring for its rules."""

    def __init__(
        self,
        settings: OperatorSettings,
        hub: Hub,
        member_factory: MemberFactory,
        metrics_factory: MetricsFactory,
        feed_factory: FeedFactory,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        default_profiles: Sequence[Any] = (),
        planner_settings: PlannerSettings | None = None,
        identity: str | None = None,
        metrics_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.hub = hub
        self._member_factory = member_factory
        self._metrics_factory = metrics_factory
        self._feed_factory = feed_factory
        self._clock = clock
        self._metrics_clock = metrics_clock
        self._default_profiles = tuple(default_profiles)
        self.planner_settings = planner_settings or PlannerSettings(
            cold_start_seconds=settings.cold_start_seconds, move_penalty_usd=settings.move_penalty_usd
        )
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}"
        self._members: dict[str, tuple[str, MemberCluster]] = {}
        self._feeds: dict[str, tuple[str, ManagedPriceFeed]] = {}
        self._metrics: dict[str, MetricsSource] = {}
        self._last_workloads: dict[str, list[WorkloadState]] = {}
        self._pending: dict[str, tuple[str, datetime]] = {}
        self._profiles: dict[tuple[str, str, int], Any] = {}
        self._applied: dict[str, dict[tuple[str, str], int]] = {}
        self._measured: dict[str, inputs.MeasuredCost | None] = {}
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.last_report: CycleReport | None = None
        self.metrics = OperatorMetrics()

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_environment(cls, settings: OperatorSettings) -> OperatorService:
        """Real adapters: hub from in-cluster config or KUBECONFIG, members from kubeconfig Secrets."""
        from gridshift.service.wiring import real_service

        return real_service(settings)

    # ------------------------------------------------------------------ shell-facing API

    def request_replan(self) -> None:
        # kopf runs sync callbacks in worker threads: wake the loop thread-safely.
        if self._wake is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def health(self) -> dict[str, Any]:
        report = self.last_report
        if report is None:
            return {"cycles": 0}
        return {
            "leader": report.leader,
            "lastCycle": report.started_at.isoformat(),
            "seconds": round(report.seconds, 3),
            "errors": len(report.errors),
        }

    async def run_forever(self, deployments: Any, clusters: Any, profiles: Any) -> None:
        """The global planning loop: every planIntervalSeconds, or sooner when a spec changes."""
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        while True:
            try:
                report = await asyncio.to_thread(
                    self.run_cycle, _bodies(deployments), _bodies(clusters), _bodies(profiles)
                )
                log.info(
                    "cycle leader=%s %.2fs member_writes=%d status_writes=%d errors=%d",
                    report.leader,
                    report.seconds,
                    report.member_writes,
                    report.status_writes,
                    len(report.errors),
                )
                for error in report.errors:
                    log.warning("%s", error)
            except Exception:  # one bad cycle must not stop the operator; the next one retries
                log.exception("planning cycle failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.plan_interval_seconds)
            self._wake.clear()

    async def delete_everywhere(self, namespace: str, name: str) -> None:
        await asyncio.to_thread(self.delete_from_members, namespace, name)

    def delete_from_members(self, namespace: str, name: str) -> int:
        """Remove a deleted InferenceDeployment's objects from every known member cluster.

        Raises if a member cluster cannot be reached, so the finalizer stays and kopf retries:
        nothing is left orphaned when the cluster returns.
        """
        deleted = 0
        for cluster, (_, member) in sorted(self._members.items()):
            deleted += member.delete_deployment_objects(namespace, name)
            log.info("deleted %d objects of %s/%s in %s", deleted, namespace, name, cluster)
        return deleted

    # ------------------------------------------------------------------ the cycle

    def run_cycle(
        self,
        deployment_bodies: Sequence[Mapping[str, Any]],
        cluster_bodies: Sequence[Mapping[str, Any]],
        profile_bodies: Sequence[Mapping[str, Any]],
    ) -> CycleReport:
        started = time.perf_counter()
        now = self._clock()
        report = CycleReport(leader=False, started_at=now)
        lease_seconds = max(3 * self.settings.plan_interval_seconds, 30.0)
        if not self.hub.hold_lease(LEASE_NAME, self.settings.namespace, self.identity, lease_seconds, now):
            report.seconds = time.perf_counter() - started
            self.last_report = report
            self.metrics.record(report, {})
            return report
        report.leader = True

        deployments = inputs.parse_bodies(deployment_bodies, InferenceDeployment)
        clusters = [c for c in inputs.parse_bodies(cluster_bodies, RegionalCluster) if c.model is not None]
        profiles = inputs.parse_bodies(profile_bodies, GPUProfile)
        views = [
            self._observe_cluster(c.key, c.model, c.body.get("status") or {}, report)
            for c in clusters
            if c.model is not None
        ]
        valid = [d for d in deployments if d.model is not None]
        snapshot = self._snapshot(now, valid, views, profiles, report)
        self._profiles = {(p.model, p.gpu_type, p.gpus_per_replica): p for p in snapshot.profiles}
        plan = make_plan(snapshot, self.planner_settings)
        report.plan = plan
        by_cluster = {v.name: v for v in views}
        for parsed, deployment in zip(valid, snapshot.deployments, strict=True):
            assert parsed.model is not None
            self._act_and_report(
                now, parsed.body, parsed.model, deployment, plan.for_deployment(deployment.id), by_cluster, report
            )
        for view in views:
            self._write_cluster_status(now, view, report)
        report.seconds = time.perf_counter() - started
        self.last_report = report
        self.metrics.record(report, by_cluster)
        return report

    # ------------------------------------------------------------------ gathering

    def _member(self, name: str, cluster: RegionalCluster) -> MemberCluster:
        ref = cluster.spec.kubeconfig_secret_ref
        kubeconfig = self.hub.read_secret(ref.namespace or self.settings.namespace, ref.name, ref.key)
        cached = self._members.get(name)
        if cached is not None and cached[0] == kubeconfig:
            return cached[1]
        member = self._member_factory(name, kubeconfig)
        self._members[name] = (kubeconfig, member)
        return member

    def _feed(self, name: str, cluster: RegionalCluster) -> ManagedPriceFeed:
        key = cluster.spec.price_feed.model_dump_json()
        cached = self._feeds.get(name)
        if cached is not None and cached[0] == key:
            return cached[1]
        feed = self._feed_factory(name, cluster)
        self._feeds[name] = (key, feed)
        return feed

    def _observe_cluster(
        self, name: str, cluster: RegionalCluster, old_status: Mapping[str, Any], report: CycleReport
    ) -> ClusterView:
        view = ClusterView(name, cluster, None, None, None, None, old_status=old_status)
        try:
            view.reading = self._feed(name, cluster).read()
        except Exception as error:  # a broken feed config is reported, never fatal
            report.errors.append(f"price feed of {name}: {error}")
        try:
            view.member = self._member(name, cluster)
            view.workloads = view.member.workloads()
            view.inventory = view.member.gpu_inventory()
            self._last_workloads[name] = view.workloads
        except (ClusterUnreachable, ActuationForbidden, SecretMissing, ValueError) as error:
            view.error = str(error)
            view.inventory = None
            # Last known replicas, none counted as Ready: when the cluster returns they are reconciled.
            view.workloads = [_not_ready(w) for w in self._last_workloads.get(name, [])]
            report.errors.append(str(error))
        return view

    def _signals(
        self,
        idep: InferenceDeployment,
        ns: str,
        name: str,
        views: Iterable[ClusterView],
        now: datetime,
        report: CycleReport,
    ) -> list[DeploymentSignals] | None:
        if idep.spec.demand.source is DemandSource.STATIC:
            return []
        out = []
        for view in views:
            if not any(
                (w.deployment_namespace, w.deployment_name) == (ns, name) and w.desired > 0
                for w in view.workloads or ()
            ):
                continue
            url = view.spec.spec.prometheus_url or self.settings.prometheus_url
            if url is None or view.inventory is None:
                return None
            source = self._metrics.setdefault(url, self._metrics_factory(url))
            ref = DeploymentRef(
                ns,
                name,
                view.spec.spec.workload_namespace,
                idep.spec.model.served_name,
                cluster=view.name if self.settings.metrics_cluster_label else None,
            )
            try:
                # Prometheus evaluates at its own (wall-clock) time, whatever clock the planner runs on.
                out.append(source.deployment_signals(ref, self._metrics_clock()))
            except MetricsError as error:
                report.errors.append(str(error))
                return None
            except Exception as error:  # an adapter bug must not stop planning for everyone else
                report.errors.append(f"metrics for {ns}/{name} in {view.name}: {type(error).__name__}: {error}")
                return None
        return out

    def _snapshot(
        self,
        now: datetime,
        deployments: Sequence[inputs.Parsed[InferenceDeployment]],
        views: Sequence[ClusterView],
        profiles: Sequence[inputs.Parsed[GPUProfile]],
        report: CycleReport,
    ) -> S.Snapshot:
        planner_clusters = []
        for view in views:
            held: dict[str, int] = {}
            for w in view.workloads or ():
                held[w.gpu_type] = held.get(w.gpu_type, 0) + w.desired * w.gpus_per_replica
            planner_clusters.append(inputs.planner_cluster(view.name, view.spec, view.inventory, held))
        planner_deployments = []
        workloads = {v.name: v.workloads for v in views}
        self._measured = {}  # this cycle's deployments only: deleted ones leave nothing behind
        for parsed in deployments:
            assert parsed.model is not None
            ns = str(parsed.body["metadata"]["namespace"])
            name = str(parsed.body["metadata"]["name"])
            signals = self._signals(parsed.model, ns, name, views, now, report)
            self._measured[f"{ns}/{name}"] = inputs.measured_cost(signals)
            demand = (
                inputs.observed_demand(parsed.model, signals, self.settings.metrics_window_seconds)
                if signals is not None
                else S.ObservedDemand(
                    None, parsed.model.spec.demand.mean_prompt_tokens, parsed.model.spec.demand.mean_output_tokens
                )
            )
            planner_deployments.append(
                S.Deployment(ns, name, parsed.model.spec, inputs.placements_of(ns, name, workloads), demand)
            )
        return S.Snapshot(
            now=now,
            deployments=tuple(planner_deployments),
            clusters=tuple(planner_clusters),
            profiles=inputs.profiles_from(profiles, self._default_profiles),
            prices={v.name: inputs.price_horizon(v.reading) for v in views},
        )

    # ------------------------------------------------------------------ acting

    def _act_and_report(
        self,
        now: datetime,
        body: Mapping[str, Any],
        idep: InferenceDeployment,
        deployment: S.Deployment,
        plan: DeploymentPlan,
        views: Mapping[str, ClusterView],
        report: CycleReport,
    ) -> None:
        old_status: Mapping[str, Any] = body.get("status") or {}
        steps: list[dict[str, Any]] = [dict(s) for s in old_status.get("migration") or []]
        routing = list(old_status.get("routing") or [])
        if plan.mode is MigrationMode.AUTO:
            if _waits_on_unreachable(steps, views):
                # The move cannot finish while its cluster is away; plan afresh from what is reachable.
                report.errors.append(f"{deployment.id}: migration abandoned, a cluster it needs is unreachable")
                steps = []
            if not steps or all(s.get("state") in _DONE_STATES for s in steps):
                steps = self._start_migration(now, deployment, plan)
                if not steps and plan.routing:
                    routing = [{"cluster": r.cluster, "weight": r.weight} for r in plan.routing]
            steps, routing = self._advance(now, idep, deployment, steps, routing, views, report)
        route = idep.spec.routing.http_route_name
        if route and plan.mode is MigrationMode.AUTO and routing:
            try:
                weights = {r["cluster"]: int(r["weight"]) for r in routing}
                if self.hub.set_route_weights(deployment.namespace, route, weights, set(views)):
                    report.member_writes += 1
            except (RouteMissing, SecretMissing) as error:
                report.errors.append(f"{deployment.id}: {error}")
        applied = self._applied.pop(deployment.id, {})
        if applied:
            deployment = _with_desired(deployment, applied)
        new_status = deployment_status(
            now, body, idep, deployment, plan, steps, routing, views, old_status, self._measured.get(deployment.id)
        )
        patch = status_patch(old_status, new_status)
        if patch:
            ref = ObjectRef(
                "InferenceDeployment", deployment.namespace, deployment.name, str(body["metadata"].get("uid", ""))
            )
            try:
                self.hub.patch_status(ref, patch)
            except ObjectGone:
                return  # deleted mid-cycle: its finalizer handler cleans up
            report.status_writes += 1
            old_decision = (old_status.get("lastDecision") or {}).get("summary")
            if new_status.get("lastDecision", {}).get("summary") != old_decision:
                decision = new_status["lastDecision"]
                report.decisions.append(decision["reason"])
                self.hub.emit_event(
                    ref,
                    decision["reason"],
                    decision["summary"],
                    warning=decision["reason"] in ("Infeasible", "RolledBack", "SLOAtRisk"),
                )
                report.events += 1

    def _start_migration(self, now: datetime, deployment: S.Deployment, plan: DeploymentPlan) -> list[dict[str, Any]]:
        """Record the plan's steps once the same target was planned twice revalidateDelaySeconds apart.

        Pure growth (only ScaleUp/WaitReady/ShiftRouting) starts at once: more capacity is never
        the risky direction, and waiting would leave demand unserved.
        """
        if not plan.steps:
            self._pending.pop(deployment.id, None)
            return []
        signature = repr([(t.cluster, t.gpu_type, t.replicas) for t in plan.targets])
        growth_only = all(s.action.value != "ScaleDown" for s in plan.steps)
        first_seen = self._pending.get(deployment.id)
        if not growth_only and self.settings.revalidate_delay_seconds > 0:
            if first_seen is None or first_seen[0] != signature:
                self._pending[deployment.id] = (signature, now)
                return []
            if now - first_seen[1] < timedelta(seconds=self.settings.revalidate_delay_seconds):
                return []
        self._pending.pop(deployment.id, None)
        current = {(p.cluster, p.gpu_type): p.desired for p in deployment.placements}
        return [
            {
                "index": s.index,
                "action": s.action.value,
                "cluster": s.cluster,
                "gpuType": s.gpu_type,
                "replicas": s.replicas,
                **({"fromReplicas": current.get((s.cluster, s.gpu_type), 0)} if s.action.value == "ScaleUp" else {}),
                **({"routing": [{"cluster": r.cluster, "weight": r.weight} for r in s.routing]} if s.routing else {}),
                "state": "Pending",
            }
            for s in plan.steps
        ]

    def _advance(
        self,
        now: datetime,
        idep: InferenceDeployment,
        deployment: S.Deployment,
        steps: list[dict[str, Any]],
        routing: list[dict[str, Any]],
        views: Mapping[str, ClusterView],
        report: CycleReport,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Carry out steps in order until one must wait; returns the updated steps and routing."""
        ready = {(p.cluster, p.gpu_type): p.ready for p in deployment.placements}
        for step in steps:
            if step["state"] in _DONE_STATES:
                continue
            if step["state"] == "Pending":
                step["state"] = "Running"
                step["startedAt"] = now.isoformat()
            action = step["action"]
            if action in ("ScaleUp", "ScaleDown"):
                view = views.get(step["cluster"])
                if view is None or view.member is None or view.inventory is None:
                    step["message"] = f"cluster {step['cluster']} unreachable; will retry"
                    break
                try:
                    report.member_writes += self._set_replicas(
                        idep, deployment, view, step["gpuType"], step["replicas"]
                    )
                except (ClusterUnreachable, ActuationForbidden) as error:
                    step["message"] = str(error)
                    report.errors.append(str(error))
                    break
                step["state"] = "Done"
            elif action == "WaitReady":
                if ready.get((step["cluster"], step["gpuType"]), 0) >= step["replicas"]:
                    step["state"] = "Done"
                    continue
                started = datetime.fromisoformat(step["startedAt"])
                if now - started > timedelta(seconds=idep.spec.migration.ready_timeout_seconds):
                    self._roll_back(idep, deployment, steps, views, report, now)
                break
            elif action == "ShiftRouting":
                routing = list(step.get("routing") or [])
                step["state"] = "Done"
        if steps and all(s["state"] in _DONE_STATES for s in steps):
            steps = []
        return steps, routing

    def _roll_back(
        self,
        idep: InferenceDeployment,
        deployment: S.Deployment,
        steps: list[dict[str, Any]],
        views: Mapping[str, ClusterView],
        report: CycleReport,
        now: datetime,
    ) -> None:
        reason = (
            f"replicas not Ready within readyTimeoutSeconds={idep.spec.migration.ready_timeout_seconds}; "
            "scaled back to the counts before the move"
        )
        for step in steps:
            if step["action"] == "ScaleUp" and step["state"] == "Done" and step.get("fromReplicas") is not None:
                view = views.get(step["cluster"])
                if view is not None and view.member is not None and view.inventory is not None:
                    report.member_writes += self._set_replicas(
                        idep, deployment, view, step["gpuType"], int(step["fromReplicas"])
                    )
            if step["state"] in ("Pending", "Running", "Done"):
                step["state"] = "RolledBack"
                step["message"] = reason
        report.errors.append(f"{deployment.id}: {reason}")

    def _set_replicas(
        self, idep: InferenceDeployment, deployment: S.Deployment, view: ClusterView, gpu_type: str, replicas: int
    ) -> int:
        """Apply the workload with `replicas` unless it already has that count and template. Returns writes."""
        assert view.member is not None
        target = WorkloadTarget(
            deployment_namespace=deployment.namespace,
            deployment_name=deployment.name,
            cluster=view.name,
            workload_namespace=view.spec.spec.workload_namespace,
            gpu_type=gpu_type,
            replicas=replicas,
            max_num_seqs=self._max_num_seqs(idep, gpu_type),
        )
        wanted_hash = render_deployment(idep.spec, target)["metadata"]["annotations"]
        current = next(
            (
                w
                for w in view.workloads or ()
                if (w.deployment_namespace, w.deployment_name, w.gpu_type)
                == (deployment.namespace, deployment.name, gpu_type)
            ),
            None,
        )
        if current is not None and current.desired == replicas and current.spec_hash in wanted_hash.values():
            return 0
        view.member.apply(render_workload(idep.spec, target))
        self._applied.setdefault(deployment.id, {})[(view.name, gpu_type)] = replicas
        return 1

    def _max_num_seqs(self, idep: InferenceDeployment, gpu_type: str) -> int:
        """vLLM --max-num-seqs: the batch at which the profile still meets the SLO (256 without a profile)."""
        spec = idep.spec
        model = self._profiles.get((spec.model.source, gpu_type, spec.replica.gpus_per_replica)) or self._profiles.get(
            (spec.model.served_name, gpu_type, spec.replica.gpus_per_replica)
        )
        if model is None:
            return 256
        capacity = replica_capacity(
            model,
            mean_prompt_tokens=spec.demand.mean_prompt_tokens,
            mean_output_tokens=spec.demand.mean_output_tokens,
            tpot_slo_ms=spec.slo.tpot_p95_ms,
            ttft_slo_ms=spec.slo.ttft_p95_ms,
            settings=self.planner_settings,
        )
        return max(1, min(model.max_batch, math.ceil(capacity.batch))) if capacity.batch > 0 else 1

    def _write_cluster_status(self, now: datetime, view: ClusterView, report: CycleReport) -> None:
        new = cluster_status(now, view.reading, view.inventory, view.error, view.old_status)
        patch = status_patch(view.old_status, new)
        if patch:
            try:
                self.hub.patch_status(ObjectRef("RegionalCluster", "", view.name), patch)
            except ObjectGone:
                return
            report.status_writes += 1


def _with_desired(deployment: S.Deployment, applied: Mapping[tuple[str, str], int]) -> S.Deployment:
    """The deployment with the replica counts this cycle applied (Ready counts stay as observed)."""
    placements = {(p.cluster, p.gpu_type): p for p in deployment.placements}
    for (cluster, gpu_type), replicas in applied.items():
        ready = placements[(cluster, gpu_type)].ready if (cluster, gpu_type) in placements else 0
        placements[(cluster, gpu_type)] = S.Placement(cluster, gpu_type, replicas, min(ready, replicas))
    return replace(deployment, placements=tuple(placements[k] for k in sorted(placements)))


def _waits_on_unreachable(steps: Sequence[Mapping[str, Any]], views: Mapping[str, ClusterView]) -> bool:
    pending = [s for s in steps if s.get("state") not in _DONE_STATES and s.get("cluster") != "*"]
    return any(s["cluster"] in views and views[s["cluster"]].inventory is None for s in pending)


def _not_ready(workload: WorkloadState) -> WorkloadState:
    return replace(workload, ready=0)


def _bodies(index: Any) -> list[Mapping[str, Any]]:
    """Flatten a kopf index (key -> store of values) or any mapping/iterable of bodies."""
    if isinstance(index, Mapping):
        out: list[Mapping[str, Any]] = []
        for value in index.values():
            if isinstance(value, Mapping):
                out.append(value)
            else:
                out.extend(value)
        return out
    return list(index)
