"""The observe stage: hub objects, member clusters, Prometheus and price feeds become one `Observation`.

`Observer` owns the adapters' caches (member clients per kubeconfig, each keeping its member's objects
by watch; managed price feeds per feed spec, one rebuilt for an edit that keeps its source starting
from the old one's series; metrics sources per Prometheus URL, and each cluster's
last known workloads) and asks each source once per cycle. Hub bodies are parsed once per
resourceVersion (inputs.ParseCache) and a deployment's requirements translated once per parsed spec.
The translations themselves are the pure functions of service.inputs.

Failure rules kept here: a broken feed, an invalid kubeconfig or an unreachable cluster is reported
in the cycle report and its view (with a message that never quotes a credential), never fatal; an
unreachable cluster's last known replicas are kept but none counts as Ready; metrics that cannot be
read make a deployment's demand unknown (the planner then never scales below the capacity running), and so
do clusters whose series one Prometheus cannot tell apart (shared, workload namespaces in common, no
operator.metricsClusterLabel): not read, rather than each counting the others' demand.

Ownership: a member Deployment counts as a deployment's replica only when its owner annotations name
that InferenceDeployment *and its UID*. Objects of any kind gridshift writes (Deployments, Services,
PodDisruptionBudgets, NetworkPolicies) naming a UID that is not on the hub are orphans (swept by service.sweep
once the hub confirms the owner is gone); Deployments without owner annotations are foreign, reported
and left alone. Those of an owner still on the hub that is not planned (refused by the model, or being
deleted) are also kept apart (ClusterView.kept): left as they run, their GPUs held in the budget.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from gridshift.actuation.members import (
    MANAGED_KINDS,
    ClusterUnreachable,
    KubeconfigInvalid,
    LiveObject,
    MemberCluster,
    MemberError,
    WorkloadState,
)
from gridshift.api import GPUProfile, InferenceDeployment, MigrationMode, RegionalCluster
from gridshift.api.common import DNS_LABEL
from gridshift.api.inference_deployment import DemandSource
from gridshift.api.regional_cluster import NAMESPACE_PLACEHOLDER, MemberAccess, workload_namespace_for
from gridshift.hub.client import Hub, SecretMissing, SecretPurpose
from gridshift.planner import snapshot as S
from gridshift.planner.migration import Unmeasured
from gridshift.planner.profiles import PerformanceModel
from gridshift.redaction import display_url
from gridshift.service import inputs
from gridshift.service.errors import describe
from gridshift.service.migrate import MigrationProgress, routing_from_wire
from gridshift.service.state import (
    ClusterView,
    CycleErrorReason,
    CycleReport,
    Observation,
    ObservedDeployment,
    Orphan,
    Problem,
    Refused,
)
from gridshift.settings import CLUSTER_READ_TIMEOUTS, OperatorSettings
from gridshift.signals.carbon_service import ManagedCarbonFeed, carbon_source_key
from gridshift.signals.labels import DeploymentRef
from gridshift.signals.metrics import DeploymentSignals, ImplausibleDemand, MetricsError, MetricsSource
from gridshift.signals.price_service import ManagedPriceFeed, price_source_key
from gridshift.signals.promql import Signal

_log = logging.getLogger(__name__)

MemberFactory = Callable[[str, str], MemberCluster]
"""(cluster name, kubeconfig text) -> member client."""
MetricsFactory = Callable[[str], MetricsSource]
"""(Prometheus URL) -> metrics source."""
FeedFactory = Callable[[str, RegionalCluster], ManagedPriceFeed]
"""(cluster name, RegionalCluster) -> managed price feed."""
CarbonFeedFactory = Callable[[str, RegionalCluster], ManagedCarbonFeed]
"""(cluster name, RegionalCluster with a carbonFeed) -> managed carbon feed."""
FeedT = TypeVar("FeedT", ManagedPriceFeed, ManagedCarbonFeed)


@dataclass(frozen=True)
class Sources:
    """What the Observer reads through besides the hub, injected at construction (service.wiring builds the real
    adapters, tests the fakes of gridshift.testing): the factories of the adapters it caches, the shipped
    performance models GPUProfiles override (inputs.profiles_from), and the clock Prometheus is read at."""

    member_factory: MemberFactory
    metrics_factory: MetricsFactory
    feed_factory: FeedFactory
    default_profiles: Sequence[PerformanceModel] = ()
    metrics_clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    carbon_feed_factory: CarbonFeedFactory | None = None
    """None: carbon feeds are not built (a cluster's carbonFeed is then not read)."""


DEPARTED_MEMORY = 256
"""Most names of deleted RegionalClusters whose namespaces in use the Observer remembers (`Observer._departed`),
the longest gone dropped first: a name never created again is otherwise kept for the process's life."""


class Observer:
    """Reads every source once per cycle through cached adapters; see the module docstring."""

    def __init__(self, settings: OperatorSettings, hub: Hub, sources: Sources) -> None:
        self.settings = settings
        self.hub = hub
        self._member_factory = sources.member_factory
        self._metrics_factory = sources.metrics_factory
        self._feed_factory = sources.feed_factory
        self._default_profiles = tuple(sources.default_profiles)
        self._metrics_clock = sources.metrics_clock
        self._members: dict[str, tuple[str, MemberCluster]] = {}
        # The finalizers (service.sweep, kopf's threads) ask for member clients while a cycle does.
        self._members_lock = threading.Lock()
        # Each cluster's feed with its spec (JSON) and source key (signals.price_service.price_source_key).
        self._feeds: dict[str, tuple[str, str, ManagedPriceFeed]] = {}
        self._carbon_feed_factory = sources.carbon_feed_factory
        self._carbon_feeds: dict[str, tuple[str, str, ManagedCarbonFeed]] = {}
        self._metrics: dict[str, MetricsSource] = {}
        # One thread per cluster queried at once (a dozen regions is the design point); a late query
        # keeps its thread until its own timeout, so the pool is larger than the usual fleet.
        self._metrics_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="gridshift-metrics")
        # Member clusters are read in parallel too, each call within api_timeout_seconds (gridshift.deadline) and
        # each cluster's read waited for while its calls keep answering (`_await_reads`). A read late keeps
        # its thread until its calls end (each within the api timeout, the first failure ending the read), and
        # the cluster is not read again meanwhile (`_reads`): at most one thread per cluster, so hung members
        # hold no more threads than there are clusters, and each gives its thread back on its own. Past 16 at
        # once, the others' reads wait their turn (and are late, reported as such, for that cycle).
        self._cluster_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="gridshift-observe")
        self._reads: dict[str, Future[tuple[ClusterView, list[str]]]] = {}
        """Each cluster's latest read, by name: a late one still running is not started again."""
        self._last_workloads: dict[str, list[WorkloadState]] = {}
        self._in_use: dict[str, frozenset[str]] = {}
        """Each cluster's namespaces in use as this process last saw them (ClusterView.namespaces_in_use)."""
        self._departed: OrderedDict[str, frozenset[str]] = OrderedDict()
        """The namespaces in use of RegionalClusters gone from the hub, by name, until one of that name is read again
        (`_observe_cluster`): one deleted and created again starts with an empty status.workloadNamespaces. None
        kept for an empty set; at most DEPARTED_MEMORY names."""
        self._away: dict[str, datetime] = {}
        """When each cluster unreachable now became so (ClusterView.unreachable_since)."""
        self._unmeasured: dict[str, Unmeasured] = {}
        """This cycle's unreachable clusters whose Prometheus was asked for the routing grace and gave no answer,
        with why (ObservedDeployment.unmeasured_away): a fixed reason, the error's text going to the cycle's errors."""
        # Hub bodies are validated again only when they changed (inputs.ParseCache), and a deployment's
        # requirements translated again only when its parsed spec did.
        self._deployment_models = inputs.ParseCache(InferenceDeployment)
        self._cluster_models = inputs.ParseCache(RegionalCluster)
        self._profile_models = inputs.ParseCache(GPUProfile)
        self._requirements: dict[str, tuple[InferenceDeployment, S.Requirements]] = {}
        # Labels of tenant namespaces as last read, for a cycle whose read fails (tenantNamespaceSelector).
        self._namespace_labels_seen: dict[str, dict[str, str]] = {}

    def known_members(self) -> list[tuple[str, MemberCluster]]:
        """Member clients made so far, by cluster name."""
        with self._members_lock:
            return [(name, member) for name, (_, member) in sorted(self._members.items())]

    def observe(
        self,
        now: datetime,
        deployment_bodies: Sequence[Mapping[str, Any]],
        cluster_bodies: Sequence[Mapping[str, Any]],
        profile_bodies: Sequence[Mapping[str, Any]],
        report: CycleReport,
        marked_leaving: Collection[str] = frozenset(),
    ) -> Observation:
        """`marked_leaving`: UIDs whose deletion has begun though the body may not say so yet (service.sweep)."""
        parsed_all = self._deployment_models.parse(deployment_bodies)
        valid = [d for d in parsed_all if d.resource]
        refused = _refused("InferenceDeployment", parsed_all, report)
        clusters = self._cluster_models.parse(cluster_bodies)
        profiles = inputs.profile_uses(self._profile_models.parse(profile_bodies))
        live = {_ns_name(d.body): str(d.body["metadata"].get("uid", "")) for d in valid}
        # Every owner on the hub, refused ones too: their replicas are left as they run and hold their GPUs.
        on_hub = {_ns_name(d.body): str(d.body["metadata"].get("uid", "")) for d in parsed_all if _named(d.body)}
        # A deployment being deleted is neither planned nor acted on (a cycle that applied its workloads
        # would undo the finalizer's cleanup); its replicas stay live, not orphans, and hold their GPUs.
        leaving = {live[_ns_name(d.body)] for d in valid if _leaving(d.body, marked_leaving)}
        deployments = [d for d in valid if live[_ns_name(d.body)] not in leaving]
        tenants = sorted({ns for ns, _ in live})
        usable = [c for c in clusters if c.resource is not None]
        labels = self._tenant_labels(tenants, usable, report)
        seen = self._observe_clusters(now, usable, tenants, labels, (live, on_hub), leaving, report)
        views, shared = _shared_members(seen, {c.key: inputs.created_at(c.body) for c in usable}, report)
        if self.settings.metrics_cluster_label is None:
            conflicts = _shared_prometheus(views, tenants, self.settings.prometheus_url)
            for view in views:
                view.metrics_conflict = conflicts.get(view.name)
                if view.metrics_conflict is not None:
                    report.errors.append(view.metrics_conflict)
        self._forget_clusters_except({c.key for c in clusters})
        refused += _refused("RegionalCluster", clusters, report)
        planner_clusters = []
        for view in views:
            view.unreachable_since = self._spell(now, view)
            held, kept = _gpus(view.workloads or ()), _gpus(view.kept)
            cluster = inputs.planner_cluster(view.name, view.resource, view.inventory, held, kept)
            planner_clusters.append(replace(cluster, admitted_namespaces=view.admitted_namespaces))
        placements = inputs.placements_by_deployment({v.name: v.workloads for v in views})
        observed = []
        running = {v.name: _running(v) for v in views}
        measured, away = _apart(self._measure(deployments, views, running, report, now), views)
        requirements: dict[str, tuple[InferenceDeployment, S.Requirements]] = {}
        for parsed in deployments:
            assert parsed.resource is not None
            ns, name = _ns_name(parsed.body)
            by_cluster = self._signals(parsed.resource, ns, name, running, measured)
            placed = placements.get((ns, name), ())
            demand, demand_problem = _demand(parsed, by_cluster, placed, self.settings.queue_drain_seconds)
            known = self._requirements.get(parsed.key)
            if known is not None and known[0] is parsed.resource:
                required = known[1]
            else:
                required = inputs.requirements_of(
                    parsed.resource.spec, default_carbon_price=self.settings.default_carbon_price_usd_per_tonne
                )
            requirements[parsed.key] = (parsed.resource, required)
            planned = S.Deployment(ns, name, required, placed, demand)
            cost, seen_away = inputs.measured_cost_by_cluster(by_cluster), self._reporting(ns, name, running, away)
            observed.append(ObservedDeployment(parsed.body, parsed.resource, planned, cost, demand_problem, *seen_away))
        self._requirements = requirements
        snapshot = S.Snapshot(
            now=now,
            deployments=tuple(d.planned for d in observed),
            clusters=tuple(planner_clusters),
            profiles=inputs.profiles_from(profiles, self._default_profiles),
            prices={v.name: v.prices for v in views},
            carbon={v.name: v.carbon for v in views if v.carbon is not None},
        )
        return Observation(
            snapshot, tuple(observed), {v.name: v for v in views}, tuple(refused), {v.name: v for v in shared}, profiles
        )

    def member(self, name: str, access: MemberAccess) -> MemberCluster:
        """The member client of a cluster, made from its kubeconfig Secret (cached while the Secret is unchanged).

        Raises SecretMissing or MemberError (KubeconfigInvalid, ...): messages never quote the kubeconfig."""
        ref = access.kubeconfig_secret_ref
        kubeconfig = self.hub.read_secret(
            ref.namespace or self.settings.namespace, ref.name, ref.key, SecretPurpose.MEMBER_KUBECONFIG
        )
        with self._members_lock:
            cached = self._members.get(name)
            if cached is not None and cached[0] == kubeconfig:
                return cached[1]
            try:
                member = self._member_factory(name, kubeconfig)
            except MemberError:
                raise
            except Exception as error:  # a factory that fails some other way must not leak what it parsed
                raise KubeconfigInvalid(name, f"cannot be used ({type(error).__name__})") from None
            if cached is not None:
                cached[1].close()  # the kubeconfig changed: the old client's watches stop
            self._members[name] = (kubeconfig, member)
            return member

    # ------------------------------------------------------------------ adapters, cached

    def _feed(self, name: str, cluster: RegionalCluster) -> ManagedPriceFeed:
        """The cluster's managed price feed, rebuilt when the spec changes (see _rebuilt)."""
        spec = cluster.spec.price_feed
        key = spec.model_dump_json()
        cached = self._feeds.get(name)
        if cached is not None and cached[0] == key:
            return cached[2]
        source = price_source_key(spec)
        feed = self._rebuilt(cached, source, lambda: self._feed_factory(name, cluster))
        self._feeds[name] = (key, source, feed)
        return feed

    def _carbon_feed(self, name: str, cluster: RegionalCluster) -> ManagedCarbonFeed | None:
        """The cluster's managed carbon feed (None without spec.carbonFeed), rebuilt when the spec changes."""
        spec = cluster.spec.carbon_feed
        cached = self._carbon_feeds.get(name)
        key = spec.model_dump_json() if spec is not None else ""
        if cached is not None and cached[0] == key:
            return cached[2]
        if spec is None or self._carbon_feed_factory is None:
            if cached is not None:
                self._carbon_feeds.pop(name)[2].close()
            return None
        factory = self._carbon_feed_factory
        source = carbon_source_key(spec)
        feed = self._rebuilt(cached, source, lambda: factory(name, cluster))
        self._carbon_feeds[name] = (key, source, feed)
        return feed

    @staticmethod
    def _rebuilt(cached: tuple[str, str, FeedT] | None, source: str, build: Callable[[], FeedT]) -> FeedT:
        """A feed built for a changed spec; the one it replaces stops refreshing. When both read the same
        source (only fxToUsd, refreshSeconds or the like changed), the new one starts from the old one's last
        good series, fetched when it was: found in review, an fxToUsd edit during an upstream outage emptied
        the cluster's prices at once (PriceFeedStale, no horizon, and no error saying why)."""
        feed = build()  # first: a build that raises leaves the feed in use as it was, not closed and cached
        if cached is not None:
            cached[2].close()  # its background refresh stops
            if cached[1] == source:
                feed.carry_over(cached[2])
        return feed

    def _forget_clusters_except(self, names: set[str]) -> None:
        """Drop the adapters of RegionalClusters that are gone (their feeds stop refreshing)."""
        for name in [n for n in self._feeds if n not in names]:
            self._feeds.pop(name)[2].close()
        for name in [n for n in self._carbon_feeds if n not in names]:
            self._carbon_feeds.pop(name)[2].close()
        with self._members_lock:
            gone = [self._members.pop(n)[1] for n in list(self._members) if n not in names]
        for member in gone:
            member.close()
        for name in [n for n in self._last_workloads if n not in names]:
            self._last_workloads.pop(name, None)
        for name in [n for n in self._in_use if n not in names]:
            departed = self._departed.pop(name, frozenset()) | self._in_use.pop(name)
            if departed:
                self._departed[name] = departed  # the latest gone last: the first dropped is the longest gone
        while len(self._departed) > DEPARTED_MEMORY:
            self._departed.popitem(last=False)
        for name in [n for n in self._away if n not in names]:
            del self._away[name]
        for name in [n for n, read in self._reads.items() if n not in names and read.done()]:
            del self._reads[name]

    # ------------------------------------------------------------------ sources

    def _spell(self, now: datetime, view: ClusterView) -> datetime | None:
        """When the cluster's unreachable spell began (None while reachable): remembered from its first cycle, or,
        for a process that finds one begun (a restart, a new leader), the Reachable=False condition's transition, so
        that a failover does not grant the routing grace again."""
        if view.reachable:
            self._away.pop(view.name, None)
            return None
        if view.name not in self._away:
            self._away[view.name] = _unreachable_recorded(view.old_status) or now
        return self._away[view.name]

    def _observe_clusters(
        self,
        now: datetime,
        clusters: Sequence[inputs.Parsed[RegionalCluster]],
        tenants: Sequence[str],
        labels: Mapping[str, dict[str, str] | None],
        owners: tuple[Mapping[tuple[str, str], str], Mapping[tuple[str, str], str]],
        leaving: Collection[str],
        report: CycleReport,
    ) -> list[ClusterView]:
        """Every cluster observed at once (a dozen regions cost one slow answer, not the sum of twelve);
        views and errors kept in the clusters' order, so a cycle's report reads the same whatever answers first.
        `owners`: the UIDs of the InferenceDeployments the model accepts (live), and of all on the hub."""

        def one(parsed: inputs.Parsed[RegionalCluster]) -> tuple[ClusterView, list[str]]:
            assert parsed.resource is not None
            own = CycleReport(leader=True, started_at=now)
            status = parsed.body.get("status") or {}
            view = self._observe_cluster(parsed.key, parsed.resource, status, tenants, owners, leaving, own)
            view.admitted_namespaces = _admitted(parsed.resource, labels)
            return view, own.errors

        reads: dict[str, Future[tuple[ClusterView, list[str]]] | None] = {}
        for parsed in clusters:
            earlier = self._reads.get(parsed.key)
            if earlier is not None and not earlier.done():
                reads[parsed.key] = None  # an earlier cycle's read still running: not a second thread on it
            else:
                reads[parsed.key] = self._reads[parsed.key] = self._cluster_pool.submit(one, parsed)
        late = self._await_reads({name: read for name, read in reads.items() if read is not None})
        views = []
        for parsed in clusters:
            assert parsed.resource is not None
            read = reads[parsed.key]
            if read is not None and read.done():
                view, errors = read.result()
                if view.error is None and view.workloads is not None:
                    # Here, not in the read's thread: a read late at the deadline that ends later must not
                    # replace what a later cycle knows (its answer is dropped with its thread).
                    self._last_workloads[view.name] = view.workloads
                    self._departed.pop(view.name, None)  # read: what is still there is in use now
            else:
                if read is not None:
                    read.cancel()  # still queued behind other clusters' reads: then never started
                why = late.get(parsed.key, "its read begun by an earlier cycle has not ended")
                view, errors = self._late(now, parsed, leaving, why)
                view.admitted_namespaces = _admitted(parsed.resource, labels)
            self._in_use[view.name] = frozenset(view.namespaces_in_use)
            views.append(view)
            report.errors.extend(errors)
        return views

    def _await_reads(self, reads: Mapping[str, Future[tuple[ClusterView, list[str]]]]) -> dict[str, str]:
        """Wait for the clusters' `reads` until each ended or is late; the late ones, with why. A read is late once
        none of its member calls answered for cluster_read_deadline_seconds (the member client's `answered_at`,
        or the wait's start), or at cluster_read_cap_seconds however it answers. Found in review: the whole
        read had 3 x apiTimeoutSeconds, so a healthy but large member, read cold (one list call per namespace
        and kind, one after another), was Unreachable after a restart and its replicas planned again elsewhere."""
        started = time.monotonic()
        quiet, cap = self.settings.cluster_read_deadline_seconds, self.settings.cluster_read_cap_seconds
        limit = f"{quiet:g} s, {CLUSTER_READ_TIMEOUTS} x apiTimeoutSeconds"
        capped = f"{cap:g} s (planIntervalSeconds)" if cap == self.settings.plan_interval_seconds else limit
        late: dict[str, str] = {}
        pending = dict(reads)
        while pending:
            now = time.monotonic()
            wake = started + cap
            for name, read in list(pending.items()):
                last = max(started, self._answered_at(name))
                if read.done():
                    del pending[name]
                elif now >= started + cap:
                    late[name] = f"not read within {capped}, though its calls were answered"
                elif now >= last + quiet:
                    late[name] = f"none of its calls answered for {limit}"
                else:
                    wake = min(wake, last + quiet)
                    continue
                pending.pop(name, None)
            if pending:
                wait(pending.values(), timeout=max(0.0, wake - now), return_when=FIRST_COMPLETED)
        return late

    def _answered_at(self, name: str) -> float:
        """When a call of the cluster's member client last got an answer (-inf: none, or no client yet): the read's
        calls, or another thread's on the same client (a finalizer's deletions), answered by the same apiserver;
        the cap bounds the wait either way."""
        with self._members_lock:
            cached = self._members.get(name)
        answered = cached[1].answered_at() if cached is not None else None
        return float("-inf") if answered is None else answered

    def _late(
        self, now: datetime, parsed: inputs.Parsed[RegionalCluster], leaving: Collection[str], why: str
    ) -> tuple[ClusterView, list[str]]:
        """The view of a cluster whose read is late (`_await_reads`; `why`), or one started by an earlier cycle
        still runs: unreachable this cycle, as if its apiserver had not answered, its feeds read here; the read's
        answer, whenever it comes, is dropped."""
        assert parsed.resource is not None
        late = ClusterUnreachable(parsed.key, f"{why}; planned without it this cycle")
        own = CycleReport(leader=True, started_at=now)
        status = parsed.body.get("status") or {}
        view = self._with_feeds(parsed.key, parsed.resource, status, own)
        view.error, view.failure = str(late), late
        remembered = self._departed.get(parsed.key, frozenset())  # recorded while unread: see `_observe_cluster`
        self._unread(view, recorded_namespaces(status) | remembered, leaving, own)
        return view, own.errors

    def _with_feeds(
        self, name: str, cluster: RegionalCluster, old_status: Mapping[str, Any], report: CycleReport
    ) -> ClusterView:
        """A cluster's view with its price and carbon feeds read (their errors reported), its member not yet."""
        view = ClusterView(name, cluster, None, None, None, None, old_status=old_status)
        try:
            view.reading = self._feed(name, cluster).read()
        except Exception as error:  # a broken feed config is reported, never fatal
            view.feed_error = f"price feed of {name}: {describe(error)}"
            report.errors.append(view.feed_error)
        view.prices = inputs.price_horizon(view.reading)
        if cluster.spec.carbon_feed is not None:
            try:
                carbon_feed = self._carbon_feed(name, cluster)
                view.carbon_reading = carbon_feed.read() if carbon_feed is not None else None
            except Exception as error:  # a broken carbon feed config is reported, never fatal
                view.carbon_feed_error = f"carbon feed of {name}: {describe(error)}"
                report.errors.append(view.carbon_feed_error)
            # Configured but unread is stale: the planner then makes no carbon-driven change here.
            view.carbon = inputs.carbon_horizon(view.carbon_reading)
        return view

    def _observe_cluster(
        self,
        name: str,
        cluster: RegionalCluster,
        old_status: Mapping[str, Any],
        tenants: Sequence[str],
        owners: tuple[Mapping[tuple[str, str], str], Mapping[tuple[str, str], str]],
        leaving: Collection[str],
        report: CycleReport,
    ) -> ClusterView:
        """Run on the cluster pool: it writes no state of the Observer's that a later cycle reads (see
        `_observe_clusters`) but the adapters' caches."""
        view = self._with_feeds(name, cluster, old_status, report)
        wanted = self._workload_namespaces(cluster, tenants) | self._known_namespaces(name)
        recorded = recorded_namespaces(old_status)
        # A RegionalCluster deleted and created again under its name: where its namespaces were in use, read too,
        # and, once read, in use only where gridshift's Deployments are. Its refusal is neither reported nor counted
        # against the cluster (review: a member that refused it, rebuilt or its tenant's RoleBinding dropped, made
        # the whole cluster Forbidden each cycle), also where this process recorded it while the member was not
        # read: recorded then (review of 2313ad7: not recorded, a restart in the outage lost it and what gridshift
        # left there was never swept); after a restart it is an ordinary recorded namespace.
        remembered = self._departed.get(name, frozenset()) - wanted
        namespaces = sorted(wanted | recorded | remembered)
        unreadable: dict[str, str] = {}
        unlisted: set[str] = set()
        try:
            view.member = self.member(name, cluster.spec)
            found, companions, unreadable, unlisted = _read_member(view.member, view, namespaces, remembered)
        except (MemberError, SecretMissing) as error:
            view.error, view.failure = str(error), error
        except Exception as error:  # an adapter bug must not stop the other clusters; never quote its input
            view.error = f"cluster {name}: {describe(error)}"
        if view.error is not None:
            self._unread(view, recorded | remembered, leaving, report)
            return view
        # Recorded namespaces stay recorded while they cannot be read (what is there is unknown); one that only
        # the record names is not reported: it holds no replica this process counts on.
        in_use = {w.namespace for w in found if w.owned} | {n for n in unreadable if n in recorded - remembered}
        unreadable = {n: reason for n, reason in unreadable.items() if n in wanted}
        view.uids = frozenset(w.uid for w in found if w.uid)
        owned, view.kept = _owned(found, owners, leaving)
        view.workloads = [w for w in owned if w.owner_uid not in leaving]
        if unreadable:
            # A namespace the member's credentials may not read costs its own tenants only (review: one
            # tenant's unprovisioned namespace made the whole cluster unreachable for every tenant). What ran
            # there is kept, none of it counted Ready, as for an unreachable cluster.
            # Only where the Deployments could not be listed, not read ones again (review: counted once more each
            # cycle where the Services alone were refused, and one deleted there kept for good).
            read = {(w.namespace, w.name) for w in found}
            view.unlisted = frozenset(unlisted)
            view.workloads += [
                replace(w, ready=0)
                for w in self._last_workloads.get(name, [])
                if w.namespace in unlisted and w.owner_uid not in leaving and (w.namespace, w.name) not in read
            ]
            for namespace, reason in sorted(unreadable.items()):
                report.errors.append(
                    f"cluster {name}: namespace {namespace} not read, its replicas not counted: {reason}"
                )
        # With the replicas kept from an unreadable namespace: counted, so recorded (review).
        view.namespaces_in_use = tuple(sorted(in_use | {w.namespace for w in view.workloads}))
        # Against every owner on the hub, refused ones too (review: their objects were orphans each cycle, each
        # owner asked of the hub again, every cycle, to be found there and left; the sweep was right, but wasteful).
        view.orphans = _orphans(found, companions, owners[1])
        view.foreign = [w for w in found if not w.owned]
        for w in view.foreign:
            report.errors.append(
                f"cluster {name}: Deployment {w.namespace}/{w.name} is labelled as gridshift's but "
                "has no owner annotations: ignored"
            )
        return view

    def _unread(self, view: ClusterView, recorded: set[str], leaving: Collection[str], report: CycleReport) -> None:
        """`view` of a cluster whose member could not be read this cycle (`view.error` says why)."""
        assert view.error is not None
        view.inventory = view.objects = None
        # Last known replicas, none counted as Ready: when the cluster returns they are reconciled.
        last = self._last_workloads.get(view.name, [])
        view.workloads = [replace(w, ready=0) for w in last if w.owner_uid not in leaving]
        view.uids = frozenset(w.uid for w in last if w.uid)
        view.namespaces_in_use = tuple(sorted(recorded | {w.namespace for w in last}))
        report.errors.append(view.error)

    @staticmethod
    def _workload_namespaces(cluster: RegionalCluster, tenants: Sequence[str]) -> set[str]:
        """The shared workload namespace always (leftovers of a tenant's last deployment are found there);
        with a per-tenant template, the namespaces of the tenants that have deployments."""
        if NAMESPACE_PLACEHOLDER not in cluster.spec.workload_namespace:
            return {cluster.spec.workload_namespace}
        return {workload_namespace_for(cluster.spec, ns) for ns in tenants}

    def _known_namespaces(self, cluster: str) -> set[str]:
        """Workload namespaces of the replicas last seen there (so that a tenant's last leftovers are seen)."""
        return {w.namespace for w in self._last_workloads.get(cluster, [])}

    def _tenant_labels(
        self, tenants: Sequence[str], clusters: Sequence[inputs.Parsed[RegionalCluster]], report: CycleReport
    ) -> dict[str, dict[str, str] | None]:
        """Each tenant namespace's labels, read once a cycle for every cluster's tenantNamespaceSelector (none
        read when no cluster has one)."""
        if not any(c.resource is not None and c.resource.spec.tenant_namespace_selector for c in clusters):
            return {}
        return {ns: self._namespace_labels(ns, report) for ns in tenants}

    def _namespace_labels(self, namespace: str, report: CycleReport) -> dict[str, str] | None:
        """A tenant namespace's labels; on a failed read the last ones read, else None (admitted nowhere).
        Found in review: a failed read gave {}, which NotIn and DoesNotExist selectors match, so a deny-list
        admitted every tenant it refuses for as long as the hub did not answer."""
        try:
            labels = self.hub.namespace_labels(namespace)
        except Exception as error:
            known = self._namespace_labels_seen.get(namespace)
            report.errors.append(
                f"labels of hub namespace {namespace} not read ({describe(error)}): "
                + ("its last labels read are used" if known is not None else "no tenantNamespaceSelector admits it")
            )
            return known
        self._namespace_labels_seen[namespace] = labels
        return labels

    def _signals(
        self,
        idep: InferenceDeployment,
        ns: str,
        name: str,
        running: Mapping[str, frozenset[tuple[str, str]]],
        measured: Mapping[str, Mapping[tuple[str, str], DeploymentSignals] | None],
    ) -> dict[str, DeploymentSignals] | None:
        """Each cluster's vLLM/DCGM signals of the deployment, by cluster; {} for Static demand, None when unknown."""
        if idep.spec.demand.source is DemandSource.STATIC:
            return {}
        out = {}
        for cluster, names in running.items():
            if (ns, name) not in names:
                continue
            answers = measured.get(cluster)
            found = answers.get((ns, name)) if answers is not None else None
            if found is None:  # no Prometheus, cluster unreachable, or its query failed (reported once)
                return None
            out[cluster] = found
        return out

    def _measure(
        self,
        deployments: Sequence[inputs.Parsed[InferenceDeployment]],
        views: Sequence[ClusterView],
        running: Mapping[str, frozenset[tuple[str, str]]],
        report: CycleReport,
        now: datetime,
    ) -> dict[str, dict[tuple[str, str], DeploymentSignals] | None]:
        """Every cluster's signals of the deployments running there: one `cluster_signals` call (one query
        per signal) per cluster, clusters in parallel, all within metrics_deadline_seconds.

        A cluster without Prometheus, unreachable, failing or late maps to None: the demand of its
        deployments is unknown this cycle (reported once per cluster, not once per deployment). A failed signal
        demand is not made of (not in signals.metrics.DEMAND_SIGNALS) is only missing there, its error reported once.

        An unreachable cluster's Prometheus is asked only for the routing grace (`_wanted`), its errors said as such
        and kept apart (`_unmeasured`): found in review, asked every cycle, a hanging one stalled every cycle for
        metrics_deadline_seconds and its errors read as those of the reachable clusters' deployments. The grace is told
        why in fixed words (`why`, planner.migration.Unmeasured), the error's text goes to the cycle's errors alone:
        found in review, copied into the tenant's RoutingGrace Event it named the admin's metrics source and quoted
        its server's answer (docs/security.md row 78)."""
        wanted = self._wanted(deployments, views, running, now)
        away = {v.name for v in views if not v.reachable}
        self._unmeasured = {}

        def error(cluster: str, text: str, why: Unmeasured = Unmeasured.FAILED) -> None:
            if cluster in away:
                self._unmeasured[cluster] = why
                text = f"cluster {cluster} unreachable, its Prometheus read for the routing grace only: {text}"
            report.errors.append(text)

        out: dict[str, dict[tuple[str, str], DeploymentSignals] | None] = {}
        pending: dict[str, Future[dict[DeploymentRef, DeploymentSignals]]] = {}
        by_name = {v.name: v for v in views}
        for cluster, refs in sorted(wanted.items()):
            view = by_name[cluster]
            url = view.resource.spec.prometheus_url or self.settings.prometheus_url
            if url is None or view.metrics_conflict is not None:
                out[cluster] = None  # a shared Prometheus' conflict is reported once, by observe
                continue
            source = self._metrics.get(url)
            if source is None:  # built once per URL: each holds a connection pool
                try:
                    source = self._metrics[url] = self._metrics_factory(url)
                except Exception as problem:  # one cluster's metrics source must not stop the cycle
                    out[cluster] = None
                    error(cluster, f"metrics of cluster {cluster}: source not created: {describe(problem)}")
                    continue
            # Prometheus evaluates at its own (wall-clock) time, whatever clock the planner runs on.
            pending[cluster] = self._metrics_pool.submit(source.cluster_signals, refs, self._metrics_clock())
        deadline = self.settings.metrics_deadline_seconds
        wait(pending.values(), timeout=deadline)
        for cluster, future in sorted(pending.items()):
            if not future.done():
                future.cancel()  # a query still running ends by its own timeout; its answer is dropped
                out[cluster] = None
                error(
                    cluster,
                    f"metrics of cluster {cluster}: no answer within the {deadline:g} s deadline",
                    Unmeasured.NO_ANSWER,
                )
                continue
            try:
                answers = future.result()
            except MetricsError as failed:
                out[cluster] = None
                # The source's own deadline often fires before this wait's (wiring gives both one setting).
                error(cluster, str(failed), Unmeasured.NO_ANSWER if failed.timed_out else Unmeasured.FAILED)
                continue
            except Exception as failed:  # an adapter bug must not stop planning for everyone else
                out[cluster] = None
                error(cluster, f"metrics of cluster {cluster}: {describe(failed)}")
                continue
            out[cluster] = {(ref.namespace, ref.name): signals for ref, signals in answers.items()}
            # A failed signal that demand is not made of is missing for every deployment there, and reported once.
            for text in sorted({e for signals in answers.values() for e in signals.failed.values()}):
                error(cluster, text)
        return out

    def _wanted(
        self,
        deployments: Sequence[inputs.Parsed[InferenceDeployment]],
        views: Sequence[ClusterView],
        running: Mapping[str, frozenset[tuple[str, str]]],
        now: datetime,
    ) -> dict[str, list[DeploymentRef]]:
        """Per cluster, the deployments to read the signals of: those running there, measured by Prometheus. In an
        unreachable cluster (whose demand is not used), only those the routing grace may keep weight there for
        (`_graceable`), whatever their demand's source: the grace reads their pods' replicas_reporting alone."""
        wanted: dict[str, list[DeploymentRef]] = {}
        for parsed in deployments:
            assert parsed.resource is not None
            static = parsed.resource.spec.demand.source is DemandSource.STATIC
            ns, name = _ns_name(parsed.body)
            for view in views:
                if (ns, name) not in running[view.name]:
                    continue
                if (view.reachable and static) or (not view.reachable and not self._graceable(parsed, view, now)):
                    continue  # Static demand is not measured; an unreachable cluster is read for the grace only
                wanted.setdefault(view.name, []).append(
                    DeploymentRef(
                        ns,
                        name,
                        view.workload_namespace_for(ns),
                        parsed.resource.spec.model.served_name,
                        cluster=view.name if self.settings.metrics_cluster_label else None,
                    )
                )
        return wanted

    def _graceable(self, parsed: inputs.Parsed[InferenceDeployment], view: ClusterView, now: datetime) -> bool:
        """Whether the routing grace may keep the deployment's weight in the unreachable cluster this cycle: Auto mode
        with no move in flight (service.migrate routes a move, and Frozen or Advisory, as before the grace), the
        routing in force (status.routing) gives the cluster weight, and its spell is younger than the grace. Found in
        review: a Frozen or Advisory deployment's weight had a hanging Prometheus asked, stalling the cycle, for
        nothing."""
        assert parsed.resource is not None
        grace = timedelta(seconds=self.settings.unreachable_routing_grace_seconds)
        since = view.unreachable_since
        if parsed.resource.spec.migration.mode is not MigrationMode.AUTO or since is None or now - since >= grace:
            return False
        status = parsed.body.get("status") or {}
        if MigrationProgress.from_status(status).in_flight:
            return False
        return any(r.cluster == view.name and r.weight > 0 for r in routing_from_wire(status.get("routing")))

    def _reporting(
        self,
        ns: str,
        name: str,
        running: Mapping[str, frozenset[tuple[str, str]]],
        away: Mapping[str, Mapping[tuple[str, str], DeploymentSignals] | None],
    ) -> tuple[dict[str, int], dict[str, Unmeasured]]:
        """Per unreachable cluster holding the deployment's replicas, its pods there that report fresh vLLM metrics
        (0 when not measured); and per unreachable cluster where they were not measured, why: its Prometheus gave
        no answer (`_unmeasured`), or its replicas there are unknown (none listed since the operator started)."""
        reporting: dict[str, int] = {}
        unmeasured: dict[str, Unmeasured] = {}
        for cluster, answers in away.items():
            if cluster not in self._last_workloads:
                unmeasured[cluster] = Unmeasured.REPLICAS_UNKNOWN
            elif (ns, name) in running.get(cluster, frozenset()):
                signals = answers.get((ns, name)) if answers is not None else None
                count = signals.scalar(Signal.REPLICAS_REPORTING) if signals is not None else None
                reporting[cluster] = int(count or 0)
                failed = signals is not None and Signal.REPLICAS_REPORTING in signals.failed
                if answers is None or failed:  # no series at all is measured: none reports
                    why = Unmeasured.FAILED if failed else self._unmeasured.get(cluster, Unmeasured.NOT_ASKED)
                    unmeasured[cluster] = why
        return reporting, unmeasured


def _shared_prometheus(views: Sequence[ClusterView], tenants: Sequence[str], default_url: str | None) -> dict[str, str]:
    """Each cluster whose Prometheus is another's too with workload namespaces in common, and why its demand
    is not read. Without operator.metricsClusterLabel a cluster's queries select by namespace alone, so there
    they answer both clusters' series. Found in review: two RegionalClusters naming no prometheusUrl (the
    operator's, for both) each counted the fleet's 4 req/s, 8 in all, with no error.

    A cluster's namespaces are those it can hold replicas in (`_replica_namespaces`): its workload namespaces
    of the tenants its tenantNamespaceSelector admits, and those holding gridshift's Deployments now."""
    by_url: dict[str, list[tuple[ClusterView, set[str]]]] = {}
    for view in views:
        url = view.resource.spec.prometheus_url or default_url
        if url is not None:
            namespaces = _replica_namespaces(view, tenants)
            by_url.setdefault(str(url).rstrip("/"), []).append((view, namespaces))  # as the source takes it
    out: dict[str, str] = {}
    for url, sharing in by_url.items():
        for view, mine in sharing:
            others = sorted(o.name for o, theirs in sharing if o is not view and mine & theirs)
            if not others:
                continue
            out[view.name] = (
                f"cluster {view.name}: its Prometheus {display_url(url)} is also that of {', '.join(others)} in the "
                "same workload namespaces, and operator.metricsClusterLabel is unset, so their series cannot be told "
                "apart: demand is not read from it (it would count the other clusters' replicas too). Set "
                "operator.metricsClusterLabel, or give each RegionalCluster a prometheusUrl of its own"
            )
    return out


def _shared_members(
    views: Sequence[ClusterView], created: Mapping[str, datetime], report: CycleReport
) -> tuple[list[ClusterView], list[ClusterView]]:
    """The clusters planned and acted on; and those that are not, each because a RegionalCluster created before it
    (metadata.creationTimestamp, then name, as HTTPRoutes are held) lists one of the Deployments it lists: the
    same metadata.uid, so the same object, in one member cluster and workload namespace. The first keeps acting
    and counts those replicas as its own; a later one is neither planned nor written to (no scale, repair or
    sweep) until one of the two is deleted, and says so (`shared_member`, reported here). `created`: each
    cluster's creationTimestamp (inputs.created_at).

    Found in review: two RegionalClusters naming one member (a rename done by creating the new one before
    deleting the old) rendered the same object names, and the planner, counting the replicas once per cluster,
    scaled the second's "surplus" down: the same Deployment, at 0 every third cycle, with no condition saying
    why. By uid, not by the gridshift.dev/cluster label: an object gridshift did not write cannot make a
    RegionalCluster stop, and one a RegionalCluster deleted since wrote (a rename done in order) stops none."""
    order = sorted(views, key=lambda v: (created[v.name], v.name))
    for i, view in enumerate(order):
        holder = next((h for h in order[:i] if h.shared_member is None and h.uids & view.uids), None)
        if holder is None:
            continue
        view.shared_member = (
            f"cluster {view.name}: its member cluster is also RegionalCluster {holder.name}'s (both list the "
            f"same Deployments in its workload namespaces), which was created first and acts there alone: "
            f"{view.name} is not planned and writes nothing there. Delete one of the two RegionalClusters "
            "(one per member cluster; to rename one, delete the old before creating the new)"
        )
        report.errors.append(view.shared_member)
    return [v for v in views if v.shared_member is None], [v for v in views if v.shared_member is not None]


def _replica_namespaces(view: ClusterView, tenants: Sequence[str]) -> set[str]:
    """The member namespaces where `view`'s cluster can have replicas (and so series): the workload namespaces of
    the tenants it admits (the plan places no other tenant there), and those where gridshift's Deployments are
    now (a refused, leaving or no longer admitted tenant's replicas still run and export series). Found in review:
    every tenant on the hub was counted, so two clusters with per-tenant namespaces admitting different tenants
    were called ambiguous and their deployments' demand never read, though no namespace was in both."""
    admitted = tenants if view.admitted_namespaces is None else [t for t in tenants if t in view.admitted_namespaces]
    return Observer._workload_namespaces(view.resource, admitted) | set(view.namespaces_in_use)


def _unreachable_recorded(status: Mapping[str, Any]) -> datetime | None:
    """lastTransitionTime of a Reachable=False condition in a RegionalCluster's status; None when there is none or it
    does not parse (status edited by hand)."""
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    for condition in conditions if isinstance(conditions, list) else ():
        if (
            isinstance(condition, Mapping)
            and condition.get("type") == "Reachable"
            and condition.get("status") == "False"
        ):
            try:
                since = datetime.fromisoformat(str(condition.get("lastTransitionTime")))
            except ValueError:
                return None
            return since if since.tzinfo is not None else None
    return None


Measured = dict[str, dict[tuple[str, str], DeploymentSignals] | None]


def _apart(measured: Measured, views: Sequence[ClusterView]) -> tuple[Measured, Measured]:
    """The answers demand is read from, and apart those of unreachable clusters: read for the routing grace alone
    (service.migrate), their deployments' demand unknown as before."""
    away = {v.name: measured.get(v.name) for v in views if not v.reachable}
    return {c: None if c in away else answers for c, answers in measured.items()}, away


def _running(view: ClusterView) -> frozenset[tuple[str, str]]:
    """The deployments with replicas wanted in the cluster (and so series to read there)."""
    return frozenset((w.deployment_namespace, w.deployment_name) for w in view.workloads or () if w.desired > 0)


def _owned(
    found: Sequence[WorkloadState],
    owners: tuple[Mapping[tuple[str, str], str], Mapping[tuple[str, str], str]],
    leaving: Collection[str],
) -> tuple[list[WorkloadState], list[WorkloadState]]:
    """The replicas of live deployments (leaving ones included); and those kept but not planned, of deployments
    still on the hub that the model refuses or that are being deleted (`leaving`). Found in review: these were
    left out of every count, so without Node visibility their GPUs went to other tenants; kept apart, they hold
    them in the budget."""
    live, on_hub = owners
    owned, kept = [], []
    for w in (w for w in found if w.owned):
        key = (w.deployment_namespace, w.deployment_name)
        if live.get(key) == w.owner_uid:
            owned.append(w)
        if on_hub.get(key) == w.owner_uid and (live.get(key) != w.owner_uid or w.owner_uid in leaving):
            kept.append(w)
    return owned, kept


def _gpus(workloads: Sequence[WorkloadState]) -> dict[str, int]:
    """GPUs per type the workloads' replicas ask for."""
    out: dict[str, int] = {}
    for w in workloads:
        out[w.gpu_type] = out.get(w.gpu_type, 0) + w.desired * w.gpus_per_replica
    return out


def _named(body: Mapping[str, Any]) -> bool:
    """The body has the namespace and name every hub InferenceDeployment has (a refused one is read as it is)."""
    meta = body.get("metadata")
    return isinstance(meta, Mapping) and bool(meta.get("namespace")) and bool(meta.get("name"))


def _ns_name(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body["metadata"]
    return str(meta["namespace"]), str(meta["name"])


def _admitted(cluster: RegionalCluster, labels: Mapping[str, dict[str, str] | None]) -> frozenset[str] | None:
    """The tenant namespaces `cluster`'s tenantNamespaceSelector admits (None: no selector, all); a namespace whose
    labels are unknown (`labels` None) is admitted by none."""
    selector = inputs.selector_of(cluster.spec.tenant_namespace_selector)
    if selector is None:
        return None
    return frozenset(ns for ns, known in labels.items() if known is not None and selector.matches(known))


def _refused(kind: str, parsed: Sequence[inputs.Parsed[Any]], report: CycleReport) -> list[Refused]:
    """The objects of `kind` the model refuses, each named in the cycle's errors (an InferenceDeployment
    also as its InvalidResource problem; a RegionalCluster's comes with the other clusters' problems)."""
    refused = [Refused(kind, p.key, p.error or "", p.body) for p in parsed if p.resource is None]
    for invalid in refused:
        if kind == "RegionalCluster":
            report.errors.append(f"RegionalCluster {invalid.key} is invalid, not used: {invalid.error}")
            continue
        # Admission should have refused it; where the CRD's schema and the model disagree it did not.
        message = (
            f"InferenceDeployment {invalid.key} is invalid, not planned (its replicas are left as they run): "
            f"{invalid.error}"
        )
        report.errors.append(message)
        report.problems.append(Problem(CycleErrorReason.INVALID_RESOURCE, message, deployment=invalid.key))
    return refused


def _leaving(body: Mapping[str, Any], marked: Collection[str]) -> bool:
    """Deletion has begun: the hub set deletionTimestamp (the finalizer holds the object), or the
    finalizer's handler marked the UID before the body in the index said so."""
    meta = body["metadata"]
    return meta.get("deletionTimestamp") is not None or str(meta.get("uid", "")) in marked


def flatten(index: Any) -> list[Mapping[str, Any]]:
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


_DNS_LABEL = re.compile(DNS_LABEL)


def recorded_namespaces(old_status: Mapping[str, Any]) -> set[str]:
    """status.workloadNamespaces as written by an earlier cycle (of this process or another): what was
    there when this process started, or before workloadNamespace changed, is read, counted and swept; and a
    deletion refused the listing of one of them keeps its finalizer (service.sweep)."""
    recorded = old_status.get("workloadNamespaces")
    if not isinstance(recorded, list):
        return set()
    return {n for n in recorded if isinstance(n, str) and _DNS_LABEL.fullmatch(n)}


def _read_member(
    member: MemberCluster, view: ClusterView, namespaces: Sequence[str], remembered: Collection[str] = frozenset()
) -> tuple[list[WorkloadState], list[LiveObject], dict[str, str], set[str]]:
    """The member's gridshift Deployments in `namespaces`, and its other objects (`owned_objects`), with its
    inventory and those objects' digests set on `view`; the namespaces the credentials may not read, with why
    (the adapter leaves them out); and of those, the ones whose Deployments could not be listed (what runs
    there is unknown). Every namespace refused is the cluster's refusal, raised as before; `remembered` ones
    (`Observer._departed`) do not count either way: the cluster reads as it would without them."""
    found = member.workloads(namespaces)
    view.inventory = member.gpu_inventory(namespaces)
    companions = member.owned_objects(namespaces)
    view.objects = {(o.kind, o.namespace, o.name): o.applied for o in companions}
    unlisted = {n for n in member.unreadable_namespaces("Deployment") if n in namespaces}
    refused = {n: error for n, error in member.unreadable_namespaces().items() if n in namespaces}
    own = {n: error for n, error in refused.items() if n not in remembered}
    if own and len(own) == len(set(namespaces) - set(remembered)):
        raise next(iter(own.values()))
    return found, companions, {n: str(error) for n, error in refused.items()}, unlisted


def _orphans(
    found: Sequence[WorkloadState], companions: Sequence[LiveObject], on_hub: Mapping[tuple[str, str], str]
) -> list[Orphan]:
    """Each owner, per member namespace, of objects of any kind here whose UID is not `on_hub` (the sweep asks the hub
    before it deletes). Found in review: only Deployments were looked at, and deletion removes the Deployment first,
    so a clean-up cut short after it left the owner's Service, PodDisruptionBudget and NetworkPolicy for good."""
    owners: dict[tuple[str, str, str, str], list[tuple[str, str]]] = {}
    for w in found:
        if w.owned:
            owners.setdefault((w.deployment_namespace, w.deployment_name, w.owner_uid, w.namespace), []).append(
                ("Deployment", w.name)
            )
    for o in companions:
        if o.owner is not None and o.owner[1]:
            owners.setdefault((*o.owner, o.namespace), []).append((o.kind, o.name))
    return sorted(
        Orphan(*owner, objects=tuple(sorted(objects, key=_deletion_order)))
        for owner, objects in owners.items()
        if on_hub.get(owner[:2]) != owner[2]
    )


def _deletion_order(found: tuple[str, str]) -> tuple[int, str]:
    """In MANAGED_KINDS order, Deployments first, as `delete_deployment_objects` deletes: the replicas go before
    the Service, PodDisruptionBudget and NetworkPolicy written beside them."""
    kinds = [kind for _, kind in MANAGED_KINDS]
    return (kinds.index(found[0]) if found[0] in kinds else len(kinds), found[1])


def _in_cluster(ready: Mapping[tuple[str, str], int], cluster: str) -> int:
    return sum(n for (where, _), n in ready.items() if where == cluster)


def _demand(
    parsed: inputs.Parsed[InferenceDeployment],
    signals: Mapping[str, DeploymentSignals] | None,
    placed: Sequence[S.Placement],
    queue_drain_seconds: float,
) -> tuple[S.ObservedDemand, str | None]:
    """The deployment's demand, and why it is unknown when its own measurements could not be used. `signals`:
    each cluster's; `placed`: its replicas, whose Ready count per cluster the pods reporting must reach.

    Unknown (None) without measurements, or when they are not believed or cannot be read: the series come
    from the deployment's own replicas, so nothing in them may stop another deployment's planning."""
    idep, status = parsed.resource, parsed.body.get("status")
    assert idep is not None  # the observe stage plans parsed deployments only
    unknown = S.ObservedDemand(None, idep.spec.demand.mean_prompt_tokens, idep.spec.demand.mean_output_tokens)
    if signals is None:
        return unknown, None
    try:
        # Counted where Ready now and at the last status write (the fewer): a pod just turned Ready may not be
        # scraped yet (found in regression review: every scale-up read as metrics unavailable, a cycle error
        # and an alert); one Ready a plan interval since has been. Without a status (a first cycle), none.
        before = inputs.ready_recorded(status)
        ready = [
            (cluster, min(sum(p.ready for p in placed if p.cluster == cluster), _in_cluster(before, cluster)))
            for cluster in signals
        ]
        return inputs.observed_demand(idep, list(signals.values()), queue_drain_seconds, ready), None
    except ImplausibleDemand as error:
        return unknown, str(error)
    except Exception as error:  # one deployment's series must not end the cycle for all
        # Not a reading the operator refuses but a fault in reading it: logged with its traceback, so that a
        # bug is not taken for a Prometheus problem (self-review). The traceback names code, not the series.
        _log.exception("demand of %s/%s not computed", *_ns_name(parsed.body))
        return unknown, describe(error)
