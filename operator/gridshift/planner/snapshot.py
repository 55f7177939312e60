"""The planner's input: an immutable picture of deployments, clusters, GPUs and prices at one instant.

The shell builds a `Snapshot` from the API objects, Prometheus and the price and carbon feeds; the
planner reads nothing else. Time is `Snapshot.now`, never the wall clock. Money is USD throughout:
the shell converts feed currencies with PriceFeedSpec.fxToUsd before building the snapshot. Carbon
intensity is gCO2eq per kWh of grid electricity (PUE excluded), on the basis the cluster's carbon
feed selects (direct or life-cycle).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from gridshift.modes import MigrationMode
from gridshift.planner.profiles import PerformanceModel


@dataclass(frozen=True)
class _Span:
    """An interval [start, end) of a horizon; `end` after `start`."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"{type(self).__name__}.end ({self.end}) must be after start ({self.start})")


_SpanT = TypeVar("_SpanT", bound=_Span)


@dataclass(frozen=True)
class _Horizon(Generic[_SpanT]):
    """Known intervals of one cluster from about now on, sorted and not overlapping, possibly partial;
    `stale` when the feed went quiet."""

    intervals: tuple[_SpanT, ...] = ()
    stale: bool = False

    def __post_init__(self) -> None:
        for earlier, later in zip(self.intervals, self.intervals[1:], strict=False):
            if later.start < earlier.end:
                kind = type(self).__name__
                raise ValueError(f"{kind}.intervals must be sorted and not overlap: {earlier.start} then {later.start}")

    def interval_at(self, instant: datetime) -> _SpanT | None:
        """The interval holding `instant`, if any (no carrying forward: see planner.prices for that)."""
        return next((i for i in self.intervals if i.start <= instant < i.end), None)


@dataclass(frozen=True)
class EnergyPrice(_Span):
    """Electricity price over [start, end), USD per kWh without PUE; negative prices are real and kept.

    What a feed published (gridshift.signals.prices.PriceInterval, in its own currency and unit) after
    the service converted it once, in service.inputs.price_horizon."""

    usd_per_kwh: float
    forecast: bool = False
    """An estimate the market has not fixed yet (rather than a cleared or tariffed price)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        # A NaN price made every plan's cost NaN, so no plan was ever better than the incumbent: the
        # whole fleet froze (found in review). The shell filters non-finite readings; this is the contract.
        if not math.isfinite(self.usd_per_kwh):
            raise ValueError(f"EnergyPrice.usd_per_kwh must be finite, got {self.usd_per_kwh}")


class PriceHorizon(_Horizon[EnergyPrice]):
    """Known prices of one cluster from about now on, possibly partial; `stale` when the feed went quiet."""


@dataclass(frozen=True)
class CarbonIntensity(_Span):
    """Grid carbon intensity over [start, end), gCO2eq per kWh (PUE excluded); never negative.

    What a carbon feed published (gridshift.signals.carbon.CarbonInterval) on the basis its
    RegionalCluster selects, carried over once in service.inputs."""

    g_per_kwh: float
    forecast: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.g_per_kwh >= 0:
            raise ValueError(f"CarbonIntensity.g_per_kwh must be >= 0, got {self.g_per_kwh}")


class CarbonHorizon(_Horizon[CarbonIntensity]):
    """Known carbon intensities of one cluster from about now on; `stale` when its feed went quiet.

    Read like a PriceHorizon (planner.prices: piecewise constant, the last value carried forward)."""


@dataclass(frozen=True)
class Offering:
    """A GPU type in a cluster: how many gridshift may use, what one costs, and its idle draw.

    `available_gpus` counts every GPU of this type gridshift may hold here, including those its
    replicas already hold (the shell derives it from allocatable minus others' use, capped by
    GPUOffering.maxGpus).
    """

    gpu_type: str
    available_gpus: int
    hourly_cost_usd: float
    idle_power_watts: float

    def __post_init__(self) -> None:
        if self.available_gpus < 0:
            raise ValueError(f"Offering({self.gpu_type}).available_gpus must be >= 0, got {self.available_gpus}")
        if self.hourly_cost_usd < 0:
            raise ValueError(f"Offering({self.gpu_type}).hourly_cost_usd must be >= 0, got {self.hourly_cost_usd}")


@dataclass(frozen=True)
class Cluster:
    """A RegionalCluster as the planner sees it."""

    name: str
    region: str
    pue: float
    offerings: tuple[Offering, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    reachable: bool = True
    admitted_namespaces: frozenset[str] | None = None
    """Hub namespaces whose deployments may run here (RegionalCluster.tenantNamespaceSelector); None: all."""
    tenant_workload_namespaces: bool = False
    """Whether each hub namespace's replicas get their own workload namespace here (`{namespace}`)."""

    def __post_init__(self) -> None:
        if not 1.0 <= self.pue <= 3.0:
            raise ValueError(f"Cluster({self.name}).pue must be within 1.0..3.0, got {self.pue}")
        types = [o.gpu_type for o in self.offerings]
        if len(set(types)) != len(types):
            raise ValueError(f"Cluster({self.name}).offerings lists a GPU type twice: {types}")

    def offering(self, gpu_type: str) -> Offering | None:
        for candidate in self.offerings:
            if candidate.gpu_type == gpu_type:
                return candidate
        return None


@dataclass(frozen=True)
class Placement:
    """Replicas of one deployment on one GPU type in one cluster: wanted (desired) and serving (ready)."""

    cluster: str
    gpu_type: str
    desired: int
    ready: int

    def __post_init__(self) -> None:
        if self.desired < 0 or self.ready < 0:
            raise ValueError(f"Placement({self.cluster}, {self.gpu_type}): desired and ready must be >= 0")


@dataclass(frozen=True)
class RequestClass:
    """Requests of about one size: a bucket of the prompt x output histogram, and its share of requests.

    A deployment whose demand carries two or more classes is planned per class (planner.classes):
    each class may be served on another GPU type, and the plan routes each class separately."""

    name: str
    prompt_tokens: float
    output_tokens: float
    share: float
    """Share of the deployment's requests in this class (the shares of a deployment add up to 1)."""
    prompt_p95_tokens: float | None = None
    """p95 prompt length within the class; None: `prompt_tokens` (a class is a narrow size bucket)."""
    prompt_scv: float | None = None
    """Squared coefficient of variation of prompt length within the class; None: the planner's
    default for a whole workload (PlannerSettings.prompt_length_scv, conservative for a bucket)."""

    def __post_init__(self) -> None:
        if not (self.prompt_tokens > 0 and self.output_tokens > 0):
            raise ValueError(f"RequestClass({self.name}): prompt_tokens and output_tokens must be > 0")
        if not 0 <= self.share <= 1:
            raise ValueError(f"RequestClass({self.name}).share must be within 0..1, got {self.share}")


@dataclass(frozen=True)
class Variant:
    """An interchangeable build of the deployment's model (e.g. fp8 or int4 weights) the user accepts.

    The planner picks, per (cluster, GPU type), the build that serves the demand most cheaply within
    the SLO: the deployment's own model or one of these."""

    name: str
    model_names: tuple[str, ...]
    """Names a GPUProfile may carry for this build, tried in order."""


@dataclass(frozen=True)
class ObservedDemand:
    """Load measured through Prometheus; a field is None when the metric is missing."""

    requests_per_second: float | None = None
    mean_prompt_tokens: float | None = None
    mean_output_tokens: float | None = None
    request_classes: tuple[RequestClass, ...] = ()
    """Request-size classes read from vLLM's prompt and generation token histograms; empty: none measured."""

    def __post_init__(self) -> None:
        # A NaN or infinite rate raised inside build_problem for every deployment of the snapshot
        # (found in review); a missing reading is None, never NaN.
        for name in ("requests_per_second", "mean_prompt_tokens", "mean_output_tokens"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"ObservedDemand.{name} must be None or a finite number >= 0, got {value}")


@dataclass(frozen=True)
class SelectorRequirement:
    """One requirement of a label selector (Kubernetes' metav1.LabelSelectorRequirement)."""

    key: str
    operator: str
    """In, NotIn, Exists or DoesNotExist."""
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Selector:
    """A Kubernetes label selector: every matchLabels pair and every expression must hold."""

    match_labels: Mapping[str, str] = field(default_factory=dict)
    match_expressions: tuple[SelectorRequirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, value in self.match_labels.items():
            if labels.get(key) != value:
                return False
        for requirement in self.match_expressions:
            present = requirement.key in labels
            actual = labels.get(requirement.key)
            if requirement.operator == "In" and (not present or actual not in requirement.values):
                return False
            if requirement.operator == "NotIn" and present and actual in requirement.values:
                return False
            if requirement.operator == "Exists" and not present:
                return False
            if requirement.operator == "DoesNotExist" and present:
                return False
        return True


@dataclass(frozen=True)
class Requirements:
    """What one InferenceDeployment asks of the planner: its spec, translated once by the service.

    SLO fields are objectives (`*_slo_ms`); what a replica achieves is capacity.ReplicaCapacity's.
    """

    model_names: tuple[str, ...]
    """Names a GPUProfile may carry for the model, tried in order: the service gives the model's source only
    (service.inputs.requirements_of), never its served name, which each tenant picks."""
    gpu_types: tuple[str, ...]
    gpus_per_replica: int
    ttft_slo_ms: float
    """p95 time to first token the deployment must meet, ms."""
    tpot_slo_ms: float
    """p95 time per output token the deployment must meet, ms."""
    min_replicas: int
    max_replicas: int
    min_regions: int
    mode: MigrationMode
    max_concurrent_moves: int
    payback_horizon_hours: float
    mean_prompt_tokens: float
    """Used when no prompt length is measured."""
    mean_output_tokens: float
    """Used when no output length is measured."""
    headroom: float
    """Share added to the demand the replicas must cover."""
    static_requests_per_second: float | None = None
    """A Static demand source's rate (then measured rates are ignored); None: demand is measured."""
    allowed_regions: frozenset[str] = frozenset()
    """Empty: every region."""
    forbidden_regions: frozenset[str] = frozenset()
    preferred_regions: frozenset[str] = frozenset()
    cluster_selector: Selector | None = None
    carbon_price_usd_per_tonne: float = 0.0
    """Internal carbon price added to the cost of energy (spec.carbon.priceUsdPerTonne, or the
    operator-wide default); 0: carbon does not enter the cost."""
    carbon_max_g_per_kwh: float | None = None
    """spec.carbon.maxGramsPerKwh: a cluster whose intensity now is above it takes no replicas, and
    replicas there leave it (make-before-break); None: no such limit."""
    carbon_budget_g_per_mtok: float | None = None
    """spec.carbon.maxGramsPerMillionTokens: a placement whose replicas would emit more per million
    output tokens at SLO capacity, at the intensity now, is treated like one above maxGramsPerKwh."""
    request_classes: tuple[RequestClass, ...] = ()
    """spec.demand.requestClasses: the demand's size histogram, used when none is measured; empty: the
    demand is one class at the mean sizes."""
    variants: tuple[Variant, ...] = ()
    """spec.variants the user allows, besides the model itself; empty: the model only."""
    member_secrets: bool = False
    """Whether its replicas read a Secret of the member cluster (engine.env valueFrom): then only clusters
    whose workload namespaces are per tenant may run them (a shared one would let any tenant's replicas
    read it)."""

    def __post_init__(self) -> None:
        if not self.carbon_price_usd_per_tonne >= 0:
            raise ValueError(f"carbon_price_usd_per_tonne must be >= 0, got {self.carbon_price_usd_per_tonne}")
        for name in ("carbon_max_g_per_kwh", "carbon_budget_g_per_mtok"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")

    @property
    def uses_carbon(self) -> bool:
        """Whether carbon intensity enters this deployment's decision at all (a price or a limit)."""
        return (
            self.carbon_price_usd_per_tonne > 0
            or self.carbon_max_g_per_kwh is not None
            or self.carbon_budget_g_per_mtok is not None
        )


@dataclass(frozen=True)
class Deployment:
    """An InferenceDeployment: what it requires, where it runs now, and what it is asked to serve."""

    namespace: str
    name: str
    requirements: Requirements
    placements: tuple[Placement, ...] = ()
    demand: ObservedDemand = field(default_factory=ObservedDemand)
    no_growth: frozenset[tuple[str, str]] = frozenset()
    """(cluster, GPU type) where no replica may be started this round: a recent roll-back there (the
    service's hold, service.migrate). The options keep at most the replicas running there now."""

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Snapshot:
    """Everything one planning round needs. `profiles` holds one model per (model, GPU type, GPUs per replica)."""

    now: datetime
    deployments: tuple[Deployment, ...]
    clusters: tuple[Cluster, ...]
    profiles: tuple[PerformanceModel, ...]
    prices: Mapping[str, PriceHorizon] = field(default_factory=dict)
    carbon: Mapping[str, CarbonHorizon] = field(default_factory=dict)
    """Carbon intensity per cluster that has a carbon feed; a cluster without one is absent (the
    planner then assumes PlannerSettings.missing_carbon_g_per_kwh for it)."""

    def __post_init__(self) -> None:
        names = [c.name for c in self.clusters]
        if len(set(names)) != len(names):
            raise ValueError(f"Snapshot.clusters: cluster names must be unique, got {names}")
        ids = [d.id for d in self.deployments]
        if len(set(ids)) != len(ids):
            raise ValueError("Snapshot.deployments: deployment ids (namespace/name) must be unique")
        unknown = set(self.prices) - set(names)
        if unknown:
            raise ValueError(f"Snapshot.prices names unknown clusters: {sorted(unknown)}")
        unknown = set(self.carbon) - set(names)
        if unknown:
            raise ValueError(f"Snapshot.carbon names unknown clusters: {sorted(unknown)}")


def hours_between(start: datetime, end: datetime) -> float:
    return (end - start) / timedelta(hours=1)
