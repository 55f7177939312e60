"""The observe stage: hub objects, member clusters, Prometheus and price feeds become one `Observation`.

`Observer` owns the adapters' caches (member clients per kubeconfig, managed price feeds per feed
spec, metrics sources per Prometheus URL, and each cluster's last known workloads) and asks each
source once per cycle. The translations themselves are the pure functions of service.inputs.

Failure rules kept here: a broken feed or an unreachable cluster is reported in the cycle report
and its view, never fatal; an unreachable cluster's last known replicas are kept but none counts
as Ready; metrics that cannot be read make a deployment's demand unknown (the planner then never
scales below the Ready count).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from gridshift.actuation.members import ActuationForbidden, ClusterUnreachable, MemberCluster, WorkloadState
from gridshift.api import GPUProfile, InferenceDeployment, RegionalCluster
from gridshift.api.inference_deployment import DemandSource
from gridshift.hub.client import Hub, SecretMissing
from gridshift.planner import snapshot as S
from gridshift.planner.profiles import PerformanceModel
from gridshift.service import inputs
from gridshift.service.state import ClusterView, CycleReport, Observation, ObservedDeployment
from gridshift.settings import OperatorSettings
from gridshift.signals.labels import DeploymentRef
from gridshift.signals.metrics import DeploymentSignals, MetricsError, MetricsSource
from gridshift.signals.price_service import ManagedPriceFeed

MemberFactory = Callable[[str, str], MemberCluster]
"""(cluster name, kubeconfig text) -> member client."""
MetricsFactory = Callable[[str], MetricsSource]
"""(Prometheus URL) -> metrics source."""
FeedFactory = Callable[[str, RegionalCluster], ManagedPriceFeed]
"""(cluster name, RegionalCluster) -> managed price feed."""


class Observer:
    """Reads every source once per cycle through cached adapters; see the module docstring."""

    def __init__(
        self,
        settings: OperatorSettings,
        hub: Hub,
        member_factory: MemberFactory,
        metrics_factory: MetricsFactory,
        feed_factory: FeedFactory,
        default_profiles: Sequence[PerformanceModel],
        metrics_clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.hub = hub
        self._member_factory = member_factory
        self._metrics_factory = metrics_factory
        self._feed_factory = feed_factory
        self._default_profiles = tuple(default_profiles)
        self._metrics_clock = metrics_clock
        self._members: dict[str, tuple[str, MemberCluster]] = {}
        self._feeds: dict[str, tuple[str, ManagedPriceFeed]] = {}
        self._metrics: dict[str, MetricsSource] = {}
        self._last_workloads: dict[str, list[WorkloadState]] = {}

    def known_members(self) -> list[tuple[str, MemberCluster]]:
        """Member clients made so far, by cluster name."""
        return [(name, member) for name, (_, member) in sorted(self._members.items())]

    def observe(
        self,
        now: datetime,
        deployment_bodies: Sequence[Mapping[str, Any]],
        cluster_bodies: Sequence[Mapping[str, Any]],
        profile_bodies: Sequence[Mapping[str, Any]],
        report: CycleReport,
    ) -> Observation:
        deployments = inputs.parse_bodies(deployment_bodies, InferenceDeployment)
        clusters = inputs.parse_bodies(cluster_bodies, RegionalCluster)
        profiles = inputs.parse_bodies(profile_bodies, GPUProfile)
        views = [
            self._observe_cluster(c.key, c.resource, c.body.get("status") or {}, report)
            for c in clusters
            if c.resource is not None
        ]
        planner_clusters = []
        for view in views:
            held: dict[str, int] = {}
            for w in view.workloads or ():
                held[w.gpu_type] = held.get(w.gpu_type, 0) + w.desired * w.gpus_per_replica
            planner_clusters.append(inputs.planner_cluster(view.name, view.resource, view.inventory, held))
        workloads = {v.name: v.workloads for v in views}
        observed = []
        for parsed in deployments:
            if parsed.resource is None:
                continue
            meta = parsed.body["metadata"]
            ns, name = str(meta["namespace"]), str(meta["name"])
            signals = self._signals(parsed.resource, ns, name, views, report)
            demand = (
                inputs.observed_demand(parsed.resource, signals, self.settings.metrics_window_seconds)
                if signals is not None
                else S.ObservedDemand(
                    None, parsed.resource.spec.demand.mean_prompt_tokens, parsed.resource.spec.demand.mean_output_tokens
                )
            )
            planned = S.Deployment(ns, name, parsed.resource.spec, inputs.placements_of(ns, name, workloads), demand)
            observed.append(ObservedDeployment(parsed.body, parsed.resource, planned, inputs.measured_cost(signals)))
        snapshot = S.Snapshot(
            now=now,
            deployments=tuple(d.planned for d in observed),
            clusters=tuple(planner_clusters),
            profiles=inputs.profiles_from(profiles, self._default_profiles),
            prices={v.name: v.prices for v in views},
        )
        return Observation(snapshot, tuple(observed), {v.name: v for v in views})

    # ------------------------------------------------------------------ adapters, cached

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

    # ------------------------------------------------------------------ sources

    def _observe_cluster(
        self, name: str, cluster: RegionalCluster, old_status: Mapping[str, Any], report: CycleReport
    ) -> ClusterView:
        view = ClusterView(name, cluster, None, None, None, None, old_status=old_status)
        try:
            view.reading = self._feed(name, cluster).read()
        except Exception as error:  # a broken feed config is reported, never fatal
            report.errors.append(f"price feed of {name}: {error}")
        view.prices = inputs.price_horizon(view.reading)
        try:
            view.member = self._member(name, cluster)
            view.workloads = view.member.workloads()
            view.inventory = view.member.gpu_inventory()
            self._last_workloads[name] = view.workloads
        except (ClusterUnreachable, ActuationForbidden, SecretMissing, ValueError) as error:
            view.error = str(error)
            view.inventory = None
            # Last known replicas, none counted as Ready: when the cluster returns they are reconciled.
            view.workloads = [replace(w, ready=0) for w in self._last_workloads.get(name, [])]
            report.errors.append(str(error))
        return view

    def _signals(
        self, idep: InferenceDeployment, ns: str, name: str, views: Iterable[ClusterView], report: CycleReport
    ) -> list[DeploymentSignals] | None:
        """Each cluster's vLLM/DCGM signals of the deployment; [] for Static demand, None when unknown."""
        if idep.spec.demand.source is DemandSource.STATIC:
            return []
        out = []
        for view in views:
            if not any(
                (w.deployment_namespace, w.deployment_name) == (ns, name) and w.desired > 0
                for w in view.workloads or ()
            ):
                continue
            url = view.resource.spec.prometheus_url or self.settings.prometheus_url
            if url is None or view.inventory is None:
                return None
            source = self._metrics.setdefault(url, self._metrics_factory(url))
            ref = DeploymentRef(
                ns,
                name,
                view.workload_namespace,
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
