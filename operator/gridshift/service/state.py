"""The typed state one planning cycle passes from stage to stage.

observe -> `Observation` (the snapshot, and per cluster a `ClusterView`); decide -> the planner's
`Plan`; migrate and actuate -> each deployment's `MigrationProgress` (service.migrate); report ->
status, Events and metrics. `CycleReport` collects what the cycle did, for logs, probes, metrics
and tests. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from gridshift.actuation.members import Inventory, MemberCluster, Owner, WorkloadState
from gridshift.api import InferenceDeployment, RegionalCluster
from gridshift.api.regional_cluster import workload_namespace_for
from gridshift.planner import snapshot as S
from gridshift.planner.migration import Unmeasured
from gridshift.planner.plan import Plan
from gridshift.service.inputs import MeasuredCost, ProfileUse
from gridshift.signals.carbon_service import CarbonReading
from gridshift.signals.price_service import PriceReading


def _feed_problem(reading: PriceReading | CarbonReading | None, not_built: str | None) -> str | None:
    if reading is not None and reading.error is not None:
        return str(reading.error)
    return not_built


@dataclass(frozen=True, order=True)
class Orphan:
    """An owner, by its annotations, of gridshift's objects in one member namespace, whose UID is not live.

    Found among the Services, PodDisruptionBudgets and NetworkPolicies as well as the Deployments (review: a
    clean-up cut short after the Deployment's deletion left the others for good, and they refused a deployment
    created again under the name)."""

    owner_namespace: str
    owner_name: str
    owner_uid: str
    namespace: str
    """The member namespace holding its objects."""
    objects: tuple[tuple[str, str], ...] = ()
    """(kind, name) of each of its objects found there, Deployments first: what the sweep deletes, by name.
    Found in review: the sweep deleted by the owner's label values, so an object whose `gridshift.dev/deployment`
    label was changed by hand was found here every cycle and never deleted, and nothing said so."""

    @property
    def owner(self) -> Owner:
        return Owner(self.owner_namespace, self.owner_name, self.owner_uid)


@dataclass
class ClusterView:
    """What one cycle learned about one member cluster."""

    name: str
    resource: RegionalCluster
    member: MemberCluster | None
    inventory: Inventory | None
    """GPUs on Ready nodes; None when the cluster could not be reached this cycle."""
    workloads: list[WorkloadState] | None
    """gridshift's replicas here: Deployments whose owner annotations name a live InferenceDeployment."""
    reading: PriceReading | None
    """The price feed's reading as published (feed currency), for status fields about the feed itself."""
    prices: S.PriceHorizon = field(default_factory=lambda: S.PriceHorizon(stale=True))
    """The same prices in USD/kWh, converted once (service.inputs.price_horizon); PUE not included."""
    error: str | None = None
    """Why the member cluster could not be read this cycle."""
    failure: Exception | None = None
    """The error behind `error` when it is one of gridshift's own (MemberError, SecretMissing): its type
    gives the RegionalCluster's Ready reason. Never formatted anywhere but through `error`."""
    feed_error: str | None = None
    """Why the price feed could not even be built (a Secret refused, a bad setting)."""
    old_status: Mapping[str, Any] = field(default_factory=dict)
    kept: list[WorkloadState] = field(default_factory=list)
    """Deployments of an InferenceDeployment still on the hub but not planned (being deleted, or refused by the
    model): left as they run, not in `workloads`, their GPUs held in the budget (service.inputs.planner_cluster)."""
    orphans: list[Orphan] = field(default_factory=list)
    """Owners of objects here, of every kind gridshift writes, whose annotations name an InferenceDeployment UID
    that is not live: swept (service.sweep) once the hub confirms it gone."""
    foreign: list[WorkloadState] = field(default_factory=list)
    """Deployments labelled as gridshift's without valid owner annotations: never counted or touched."""
    objects: Mapping[tuple[str, str, str], str] | None = None
    """(kind, namespace, name) -> `render.applied_digest` of gridshift's Services, PodDisruptionBudgets
    and NetworkPolicies here (None: not read this cycle): one missing or changed by hand is applied again."""
    admitted_namespaces: frozenset[str] | None = None
    """Hub namespaces allowed here by tenantNamespaceSelector, of those with deployments (None: all)."""
    carbon_reading: CarbonReading | None = None
    """The carbon feed's reading (None without spec.carbonFeed)."""
    carbon: S.CarbonHorizon | None = None
    """The same intensities for the planner (service.inputs.carbon_horizon); None without a carbon feed."""
    carbon_feed_error: str | None = None
    """Why the carbon feed could not even be built."""
    metrics_conflict: str | None = None
    """Why this cluster's Prometheus series cannot be told from another cluster's (one Prometheus, namespaces in
    common, no operator.metricsClusterLabel): its deployments' demand is then not read."""
    namespaces_in_use: tuple[str, ...] = ()
    """Member namespaces holding gridshift's Deployments (status.workloadNamespaces): those found this cycle,
    and those recorded before that could not be read. Those a RegionalCluster of the same name deleted before had
    in use, as this process saw them (service.observe's `Observer._departed`): all while the member is not read,
    then only where found."""
    unlisted: frozenset[str] = frozenset()
    """Member namespaces whose Deployments the credentials may not list this cycle: `workloads` there are the last
    read (none Ready), their counts not known now, so service.actuate writes a count there whatever they say."""
    uids: frozenset[str] = frozenset()
    """metadata.uid of every gridshift-labelled Deployment listed here (the last known, when not read)."""
    unreachable_since: datetime | None = None
    """When this unreachable spell began (None while reachable): the first cycle it was not read, or the
    RegionalCluster's Reachable=False transition when a restarted operator finds one (service.observe)."""
    shared_member: str | None = None
    """Why the cluster is neither planned nor written to: another RegionalCluster, created first, lists the same
    member Deployments (service.observe `_shared_members`). Such a view is in Observation.held, not views."""

    @property
    def reachable(self) -> bool:
        return self.inventory is not None

    @property
    def price_feed_problem(self) -> str | None:
        """The price feed's last error: its reading's, or why it could not be built (one or the other)."""
        return _feed_problem(self.reading, self.feed_error)

    @property
    def carbon_feed_problem(self) -> str | None:
        """The carbon feed's last error: its reading's, or why it could not be built (one or the other)."""
        return _feed_problem(self.carbon_reading, self.carbon_feed_error)

    def workload_namespace_for(self, hub_namespace: str) -> str:
        """Where the replicas of a deployment in `hub_namespace` live in this cluster."""
        return workload_namespace_for(self.resource.spec, hub_namespace)

    @property
    def region(self) -> str:
        return self.resource.spec.region

    @property
    def pue(self) -> float:
        return self.resource.spec.pue


@dataclass(frozen=True)
class ObservedDeployment:
    """One valid InferenceDeployment as read from the hub, beside the planner's view of it."""

    body: Mapping[str, Any]
    resource: InferenceDeployment
    planned: S.Deployment
    """What the planner is given: spec, current placements, observed demand."""
    measured: MeasuredCost | None
    """Cost figures measured through Prometheus over the metrics window, when there are any."""
    demand_problem: str | None = None
    """Why the measured demand was not used (implausible figures from the deployment's own replicas)."""
    reporting_away: Mapping[str, int] = field(default_factory=dict)
    """Per unreachable cluster holding its replicas, its pods there that report fresh vLLM metrics (signals'
    replicas_reporting; 0 when Prometheus did not answer): the evidence the routing grace reads (service.migrate)."""
    unmeasured_away: Mapping[str, Unmeasured] = field(default_factory=dict)
    """Per unreachable cluster whose grace is running, why its pods' metrics were not measured (Prometheus did not
    answer, its replicas there unknown since the operator started), where they were not: the routing grace says so,
    not that none reports. A fixed reason, never the error's text (tenant-visible: the RoutingGrace Event)."""

    @property
    def id(self) -> str:
        return self.planned.id

    @property
    def uid(self) -> str:
        return str(self.body["metadata"].get("uid", ""))

    @property
    def old_status(self) -> Mapping[str, Any]:
        status: Mapping[str, Any] = self.body.get("status") or {}
        return status


@dataclass(frozen=True)
class Refused:
    """A hub object the apiserver admitted but gridshift's model refuses: not used this cycle (an
    InferenceDeployment's replicas are left as they run); its status says why (service.status.refused_status)."""

    kind: str
    """InferenceDeployment or RegionalCluster."""
    key: str
    """namespace/name, or the name of a cluster-scoped object."""
    error: str
    """Each bad field and what is wrong with it (api.validation.problems_of), never a value."""
    body: Mapping[str, Any]


@dataclass(frozen=True)
class Observation:
    """Everything the observe stage found: the planner's snapshot, and what the later stages read beside it."""

    snapshot: S.Snapshot
    deployments: tuple[ObservedDeployment, ...]
    views: Mapping[str, ClusterView]
    """The clusters planned and acted on."""
    refused: tuple[Refused, ...] = ()
    held: Mapping[str, ClusterView] = field(default_factory=dict)
    """Clusters whose member cluster an earlier RegionalCluster names too (ClusterView.shared_member): only their
    status is written. Found in review: planned as two clusters, the one Deployment was scaled down by one of them
    as the other's surplus, to 0 every few cycles."""
    profiles: Mapping[str, ProfileUse] = field(default_factory=dict)
    """Each GPUProfile by name: used by the planner, or why not (service.inputs.profile_uses), judged once a cycle
    for the snapshot's profiles and for their status."""


class CycleErrorReason(StrEnum):
    """Reasons of gridshift_cycle_errors_total: what went wrong in a cycle (each also in the log)."""

    UNREACHABLE = "Unreachable"
    FORBIDDEN = "Forbidden"
    KUBECONFIG_INVALID = "KubeconfigInvalid"
    PRICE_FEED_FAILED = "PriceFeedFailed"
    CARBON_FEED_FAILED = "CarbonFeedFailed"
    FOREIGN_OBJECTS = "ForeignObjects"
    SHARED_MEMBER = "SharedMember"
    ACTUATION_FAILED = "ActuationFailed"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    ROUTE_FAILED = "RouteFailed"
    MIGRATION_ROLLED_BACK = "MigrationRolledBack"
    DEPLOYMENT_FAILED = "DeploymentFailed"
    INVALID_RESOURCE = "InvalidResource"
    STATUS_WRITE_FAILED = "StatusWriteFailed"
    EVENT_FAILED = "EventFailed"
    LEASE_LOST = "LeaseLost"
    CYCLE_FAILED = "CycleFailed"


CYCLE_ERROR_REASONS: Mapping[CycleErrorReason, str] = {
    CycleErrorReason.UNREACHABLE: "A member cluster's API server could not be reached (per cluster, per cycle).",
    CycleErrorReason.FORBIDDEN: "A member cluster, or the hub for a Secret, refused gridshift's credentials or write.",
    CycleErrorReason.KUBECONFIG_INVALID: "A member kubeconfig Secret is missing, unlabelled, or does not parse.",
    CycleErrorReason.PRICE_FEED_FAILED: "A price feed's last fetch failed, or the feed cannot be built.",
    CycleErrorReason.CARBON_FEED_FAILED: "A carbon feed's last fetch failed, or the feed cannot be built.",
    CycleErrorReason.FOREIGN_OBJECTS: "Deployments labelled as gridshift's without owner annotations were found.",
    CycleErrorReason.SHARED_MEMBER: (
        "A RegionalCluster lists the same member Deployments as one created before it (one member cluster named "
        "twice): it is not planned and writes nothing there (its Ready says SharedMember, naming the other)."
    ),
    CycleErrorReason.ACTUATION_FAILED: "A member cluster refused a write for a deployment (retried next cycle).",
    CycleErrorReason.METRICS_UNAVAILABLE: (
        "A deployment's request rate could not be read from Prometheus, or a cluster's Prometheus is another's "
        "too without operator.metricsClusterLabel (not read: RegionalCluster condition MetricsAmbiguous)."
    ),
    CycleErrorReason.ROUTE_FAILED: (
        "A deployment's HTTPRoute is missing, not labelled managed, held by another InferenceDeployment that names "
        "it (created first; the deployment's own Ready and Stalled say RouteHeld), or changed meanwhile."
    ),
    CycleErrorReason.MIGRATION_ROLLED_BACK: (
        "A migration's replicas were not Ready, or its member writes not taken, within readyTimeoutSeconds: the "
        "batch in flight was scaled back to its counts before the move (or the message names where scaling back "
        "failed)."
    ),
    CycleErrorReason.DEPLOYMENT_FAILED: "Acting on one deployment failed unexpectedly; the others went on.",
    CycleErrorReason.INVALID_RESOURCE: (
        "A RegionalCluster or InferenceDeployment does not validate and is not used (an InferenceDeployment's "
        "replicas are left as they run, holding their GPUs)."
    ),
    CycleErrorReason.STATUS_WRITE_FAILED: "A status could not be written (e.g. no RBAC patch on gpuprofiles/status).",
    CycleErrorReason.EVENT_FAILED: "A decision's Event could not be written (its status was).",
    CycleErrorReason.LEASE_LOST: "The leader Lease was not renewed in time: the cycle stopped writing.",
    CycleErrorReason.CYCLE_FAILED: "A whole planning cycle failed unexpectedly; the next one retries.",
}


@dataclass(frozen=True)
class Problem:
    """One thing that went wrong in a cycle, by reason, with the object it concerns (for metrics and logs).

    The message never holds a credential (it is one of the cycle's error texts, or built like them).
    """

    reason: CycleErrorReason
    message: str
    deployment: str | None = None
    """namespace/name of the InferenceDeployment concerned."""
    cluster: str | None = None
    """RegionalCluster concerned."""


@dataclass(frozen=True)
class DeploymentOutcome:
    """What the report stage concluded about one deployment this cycle (for the operator's metrics)."""

    namespace: str
    name: str
    ready: bool
    slo_at_risk: bool
    replicas: tuple[tuple[str, int, int], ...]
    """(region, desired, ready) per region the deployment has replicas in."""
    ttft_slo_seconds: float
    tpot_slo_seconds: float


@dataclass
class CycleReport:
    """Outcome of one cycle, for logs, probes, metrics and tests."""

    leader: bool
    started_at: datetime
    seconds: float = 0.0
    planner_seconds: float | None = None
    """Time the planner's search took this cycle (None when it did not run: no lead, or the last plan reused)."""
    plan_reused: bool = False
    """The planner's problem was the same as last cycle's: its plan was used again (service.decide)."""
    plan: Plan | None = None
    member_writes: int = 0
    status_writes: int = 0
    events: int = 0
    decisions: list[str] = field(default_factory=list)
    """Reasons of the decisions that changed this cycle (one per deployment whose decision changed)."""
    errors: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    """The cycle's errors by reason and object; the report stage derives them from typed state."""
    outcomes: list[DeploymentOutcome] = field(default_factory=list)

    def fold(self, part: CycleReport) -> None:
        """Take in what a part of the cycle done on a report of its own wrote and found (service.migrate_auto)."""
        self.member_writes += part.member_writes
        self.errors.extend(part.errors)
        self.problems.extend(part.problems)

    def health(self) -> dict[str, Any]:
        """What the health probe shows of the last cycle (shell.handlers)."""
        return {
            "leader": self.leader,
            "lastCycle": self.started_at.isoformat(),
            "seconds": round(self.seconds, 3),
            "errors": len(self.errors),
            "problems": sorted({p.reason.value for p in self.problems}),
        }
