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
from typing import Any

from gridshift.actuation.members import Inventory, MemberCluster, WorkloadState
from gridshift.api import InferenceDeployment, RegionalCluster
from gridshift.api.regional_cluster import workload_namespace_for
from gridshift.planner import snapshot as S
from gridshift.planner.plan import Plan
from gridshift.service.inputs import MeasuredCost
from gridshift.signals.price_service import PriceReading


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
    feed_error: str | None = None
    """Why the price feed could not even be built (a Secret refused, a bad setting)."""
    old_status: Mapping[str, Any] = field(default_factory=dict)
    orphans: list[WorkloadState] = field(default_factory=list)
    """Deployments owned (by annotation) by an InferenceDeployment that no longer exists: swept."""
    foreign: list[WorkloadState] = field(default_factory=list)
    """Deployments labelled as gridshift's without valid owner annotations: never counted or touched."""
    admitted_namespaces: frozenset[str] | None = None
    """Hub namespaces allowed here by tenantNamespaceSelector, of those with deployments (None: all)."""

    @property
    def reachable(self) -> bool:
        return self.inventory is not None

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
class Observation:
    """Everything the observe stage found: the planner's snapshot, and what the later stages read beside it."""

    snapshot: S.Snapshot
    deployments: tuple[ObservedDeployment, ...]
    views: Mapping[str, ClusterView]


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
