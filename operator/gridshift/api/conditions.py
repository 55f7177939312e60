"""The status vocabulary: every condition type of every kind, the reasons each may carry, and what they mean.

This is the one source of the words the operator writes into `status.conditions`: the status code
(gridshift.service.status) takes its reasons from the enums below, the CRDs refuse a reason that is
not documented for its condition type (CEL, with a pydantic twin on each status model), and
docs/status.md is generated from the tables here (`make chart`).

Conditions follow the Kubernetes API conventions (metav1.Condition): `reason` is required and
CamelCase, `lastTransitionTime` is required. InferenceDeployment and RegionalCluster also carry the two
abnormal-true conditions of kstatus (sigs.k8s.io/cli-utils), so that Flux and every other kstatus
user reads them without a custom health check: `Reconciling=True` means InProgress, `Stalled=True`
means Failed, otherwise `Ready` decides (True: Current).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, TypeAlias

from gridshift.api.base import CrossFieldRule

Status = Literal["True", "False", "Unknown"]


@dataclass(frozen=True)
class Reason:
    """One reason a condition may carry, the status it goes with, and what it means."""

    name: str
    status: Status
    meaning: str


@dataclass(frozen=True)
class ConditionType:
    """A condition type of one kind: what it says, and every reason it may carry."""

    type: str
    meaning: str
    reasons: tuple[Reason, ...]

    def reason_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.reasons)


# ---------------------------------------------------------------- InferenceDeployment


class ReadyReason(StrEnum):
    """Reasons of an InferenceDeployment's Ready condition."""

    PLACED = "Placed"
    MIGRATING = "Migrating"
    FROZEN = "Frozen"
    ADVISORY = "Advisory"
    STARTING = "Starting"
    UNREACHABLE = "Unreachable"
    INSUFFICIENT_CAPACITY = "InsufficientCapacity"
    INFEASIBLE = "Infeasible"
    FORBIDDEN = "Forbidden"
    ACTUATION_FAILED = "ActuationFailed"
    ROUTE_HELD = "RouteHeld"
    SLO_AT_RISK = "SLOAtRisk"
    INVALID_SPEC = "InvalidSpec"


class ReconcilingReason(StrEnum):
    MIGRATING = "Migrating"
    STARTING = "Starting"
    UNREACHABLE = "Unreachable"
    RECONCILED = "Reconciled"
    STALLED = "Stalled"


class StalledReason(StrEnum):
    INFEASIBLE = "Infeasible"
    INSUFFICIENT_CAPACITY = "InsufficientCapacity"
    FORBIDDEN = "Forbidden"
    ACTUATION_FAILED = "ActuationFailed"
    ROUTE_HELD = "RouteHeld"
    SLO_AT_RISK = "SLOAtRisk"
    INVALID_SPEC = "InvalidSpec"
    PROGRESSING = "Progressing"
    RECONCILED = "Reconciled"


class SLOReason(StrEnum):
    """Reasons of the SLOAtRisk condition (the SLO column of `kubectl get idep`)."""

    WITHIN_SLO = "WithinSLO"
    CAPACITY_SHORT = "CapacityShort"
    LATENCY_ABOVE_SLO = "LatencyAboveSLO"
    DEMAND_UNKNOWN = "DemandUnknown"
    NOT_SERVED = "NotServed"


class FeedReason(StrEnum):
    """Reasons of a feed's staleness condition (PriceFeedStale, CarbonFeedStale)."""

    STALE = "Stale"
    FRESH = "Fresh"


# The names the status code uses for each feed's condition.
PriceFeedReason: TypeAlias = FeedReason
CarbonFeedReason: TypeAlias = FeedReason


class MetricsReason(StrEnum):
    NO_DEMAND_METRICS = "NoDemandMetrics"
    METRICS_FRESH = "MetricsFresh"


def _condition(
    type_: str, meaning: str, enum: type[StrEnum], table: Mapping[StrEnum, tuple[Status, str]]
) -> ConditionType:
    """A condition type whose reasons are `enum`'s members, in its order, each with its status and meaning."""
    missing = [member for member in enum if member not in table]
    if missing:  # every reason the code can write is documented (caught at import, not in production)
        raise ValueError(f"{enum.__name__}: no meaning for {missing}")
    return ConditionType(type_, meaning, tuple(Reason(member.value, *table[member]) for member in enum))


def _as_ready(*reasons: StrEnum) -> dict[StrEnum, tuple[Status, str]]:
    """Stalled's True reasons: each is the failing Ready reason of the same name (kstatus: Failed)."""
    return {reason: ("True", f"As Ready's reason {reason.value}.") for reason in reasons}


def _either(type_: str, meaning: str, *, true: tuple[StrEnum, str], false: tuple[StrEnum, str]) -> ConditionType:
    """A condition with one reason for True and one for False (both members of one enum), each with its meaning."""
    (when_true, true_meaning), (when_false, false_meaning) = true, false
    return _condition(
        type_, meaning, type(when_true), {when_true: ("True", true_meaning), when_false: ("False", false_meaning)}
    )


R, K, S, L = ReadyReason, ReconcilingReason, StalledReason, SLOReason

INFERENCE_DEPLOYMENT_CONDITIONS: tuple[ConditionType, ...] = (
    _condition(
        "Ready",
        "True when the deployment's placement serves its demand within its SLO (in Advisory mode: when the "
        "reported plan would). The reason says why, or what is in the way; the message gives the figures.",
        ReadyReason,
        {
            R.PLACED: (
                "True",
                "The Ready replicas' capacity covers the demand (replicas still starting: Reconciling says so).",
            ),
            R.MIGRATING: (
                "True",
                "A make-before-break move is in flight (status.migration), or replicas run where the deployment "
                "may no longer run until the move that stops them starts (revalidateDelaySeconds; the message "
                "names them); the Ready replicas cover the demand throughout.",
            ),
            R.FROZEN: ("True", "Mode Frozen: the placement is kept as it is, and it covers the demand."),
            R.ADVISORY: (
                "True",
                "Mode Advisory: the plan in status.lastDecision would cover the demand; gridshift runs and "
                "changes nothing (status.cost is hypothetical).",
            ),
            R.STARTING: (
                "False",
                "Replicas the plan needs are not Ready yet (a new deployment, a scale-up); gridshift waits for them.",
            ),
            R.UNREACHABLE: (
                "False",
                "Replicas in unreachable clusters are not counted, and what is Ready elsewhere does not "
                "cover the demand yet; capacity is being raised in reachable clusters.",
            ),
            R.INSUFFICIENT_CAPACITY: (
                "False",
                "The best placement within free inventory and maxReplicas cannot cover the demand within "
                "the SLO (or cannot give minReplicas); what fits runs.",
            ),
            R.INFEASIBLE: (
                "False",
                "No placement at all: no cluster offers an accepted GPU type whose profile meets the SLO "
                "in an allowed region, or minRegions cannot be met.",
            ),
            R.FORBIDDEN: (
                "False",
                "No RegionalCluster admits the deployment's namespace (tenantNamespaceSelector), or a member "
                "cluster refused gridshift's write (RBAC, or a workload namespace that does not exist).",
            ),
            R.ACTUATION_FAILED: (
                "False",
                "A member cluster refused a write for another reason (e.g. an object of that name that is "
                "not gridshift's); retried every cycle.",
            ),
            R.ROUTE_HELD: (
                "False",
                "The HTTPRoute the spec names is held by another InferenceDeployment, created first, whose "
                "weights it carries (docs/routing.md): this one's are not written there (its replicas are still "
                "placed and moved; status.routing is its own decision). The message names the route and its "
                "holder: give each InferenceDeployment its own HTTPRoute.",
            ),
            R.SLO_AT_RISK: (
                "False",
                "Measured p95 time to first token or time per output token is above the SLO "
                "(status.observedSlo), although the capacity model says the placement covers the demand.",
            ),
            R.INVALID_SPEC: (
                "False",
                "The spec does not validate against gridshift's model although the apiserver admitted it (a "
                "CRD older than the operator, or a rule its schema cannot hold): not planned, its replicas are "
                "left as they run and hold their GPUs (other deployments are not placed on them); the message "
                "names each field. The other conditions are as last written.",
            ),
        },
    ),
    _condition(
        "Reconciling",
        "kstatus' abnormal-true condition: True while gridshift is changing the placement (kstatus: InProgress).",
        ReconcilingReason,
        {
            K.MIGRATING: (
                "True",
                "A make-before-break move is in flight, or decided and waiting to stop replicas where the "
                "deployment may no longer run (a spec change not yet carried out).",
            ),
            K.STARTING: ("True", "Replicas are starting, or a scale-up waits for them to be Ready."),
            K.UNREACHABLE: ("True", "Capacity lost with an unreachable cluster is being replaced elsewhere."),
            K.RECONCILED: ("False", "Nothing is in progress."),
            K.STALLED: ("False", "Nothing is in progress because gridshift cannot progress (see Stalled)."),
        },
    ),
    _condition(
        "Stalled",
        "kstatus' abnormal-true condition: True when gridshift cannot make the deployment Ready by itself; "
        "a person (or freed capacity) must act (kstatus: Failed).",
        StalledReason,
        {
            **_as_ready(
                S.INFEASIBLE,
                S.INSUFFICIENT_CAPACITY,
                S.FORBIDDEN,
                S.ACTUATION_FAILED,
                S.ROUTE_HELD,
                S.SLO_AT_RISK,
                S.INVALID_SPEC,
            ),
            S.PROGRESSING: ("False", "Not stalled: a change is in progress (see Reconciling)."),
            S.RECONCILED: ("False", "Not stalled: nothing is in progress."),
        },
    ),
    _condition(
        "SLOAtRisk",
        "True when the latency SLO is at risk now: the Ready replicas' capacity is below the demand, or the "
        "measured p95 latency is above the SLO. Its reason is the SLO column of `kubectl get idep`.",
        SLOReason,
        {
            L.WITHIN_SLO: (
                "False",
                "The Ready replicas' capacity covers the demand, and measured p95 latencies (when measured) "
                "are within the SLO; where a latency query failed in a cluster the deployment runs in, the "
                'message says "measured p95 latency unknown" (none is claimed within the SLO).',
            ),
            L.CAPACITY_SHORT: (
                "True",
                "The Ready replicas' capacity (capacity model, per GPU profile) is below what the demand "
                "needs at the SLO.",
            ),
            L.LATENCY_ABOVE_SLO: ("True", "Measured p95 TTFT or TPOT is above the SLO."),
            L.DEMAND_UNKNOWN: (
                "Unknown",
                "The request rate is not measured (MetricsStale): capacity cannot be compared with demand "
                "(measured latency above the SLO still reads LatencyAboveSLO).",
            ),
            L.NOT_SERVED: ("Unknown", "Mode Advisory: gridshift serves nothing, there is no SLO to judge."),
        },
    ),
    _either(
        "PriceFeedStale",
        "True when a RegionalCluster the deployment may use (in an allowed region, admitting its namespace) "
        "or has replicas in has no fresh electricity prices: no price-driven move is made there. Clusters it "
        'may not use are left out, here and in Ready\'s "unreachable clusters not counted".',
        true=(FeedReason.STALE, "The message names the clusters whose prices are stale."),
        false=(FeedReason.FRESH, "The prices of every cluster it may use are fresh."),
    ),
    _either(
        "MetricsStale",
        "True when demand is read from Prometheus and the request rate is missing, or is summed over fewer "
        "replica pods than are Ready in a cluster (a pod whose scrape fails still serves): the planner then "
        "never scales below the capacity running (tokens/s at the SLO, not a replica count: a move to another "
        "GPU type brings as much capacity as it stops).",
        true=(
            MetricsReason.NO_DEMAND_METRICS,
            "No request rate for the deployment in Prometheus, or fewer of its pods report it than are Ready "
            "(the cycle's MetricsUnavailable problem names the cluster and the counts).",
        ),
        false=(MetricsReason.METRICS_FRESH, "The request rate is measured, or demand is Static."),
    ),
)


# ---------------------------------------------------------------- RegionalCluster


class ClusterReadyReason(StrEnum):
    """Reasons of a RegionalCluster's Ready condition (also its Reachable and Stalled conditions)."""

    REACHABLE = "Reachable"
    UNREACHABLE = "Unreachable"
    FORBIDDEN = "Forbidden"
    KUBECONFIG_INVALID = "KubeconfigInvalid"
    PRICE_FEED_STALE = "PriceFeedStale"
    INVALID_SPEC = "InvalidSpec"
    SHARED_MEMBER = "SharedMember"


class ClusterStalledReason(StrEnum):
    UNREACHABLE = "Unreachable"
    FORBIDDEN = "Forbidden"
    KUBECONFIG_INVALID = "KubeconfigInvalid"
    PRICE_FEED_STALE = "PriceFeedStale"
    INVALID_SPEC = "InvalidSpec"
    SHARED_MEMBER = "SharedMember"
    RECONCILED = "Reconciled"


class ForeignObjectsReason(StrEnum):
    LABELLED_WITHOUT_OWNER = "LabelledWithoutOwner"
    NO_FOREIGN_OBJECTS = "NoForeignObjects"


class MetricsAmbiguousReason(StrEnum):
    SHARED_WITHOUT_CLUSTER_LABEL = "SharedWithoutClusterLabel"
    DISTINCT = "Distinct"


C = ClusterReadyReason
_CLUSTER_FAILURES: dict[StrEnum, tuple[Status, str]] = {
    C.UNREACHABLE: (
        "False",
        "The member cluster's API server could not be reached (network, TLS, HTTP 5xx), gave no complete answer "
        "within apiTimeoutSeconds, or the cluster's read went 3 x apiTimeoutSeconds with none of its calls "
        "answered, or did not end within planIntervalSeconds (the other clusters are planned meanwhile).",
    ),
    C.FORBIDDEN: (
        "False",
        "The member cluster refused gridshift's credentials (HTTP 401/403), or the hub refused reading "
        "the kubeconfig Secret.",
    ),
    C.KUBECONFIG_INVALID: (
        "False",
        "The kubeconfig Secret is missing, not labelled gridshift.dev/secret-purpose=member-kubeconfig, "
        "lacks its key, or does not parse (the message names line and column, never content).",
    ),
}

REGIONAL_CLUSTER_CONDITIONS: tuple[ConditionType, ...] = (
    _condition(
        "Ready",
        "True when gridshift can place replicas in the cluster and judge them by fresh prices.",
        ClusterReadyReason,
        {
            C.REACHABLE: ("True", "The member cluster answered and its price feed is fresh."),
            **_CLUSTER_FAILURES,
            C.PRICE_FEED_STALE: (
                "False",
                "Reachable, but no good price fetch for staleAfterSeconds: no price-driven move is made here.",
            ),
            C.INVALID_SPEC: (
                "False",
                "The spec does not validate against gridshift's model although the apiserver admitted it: the "
                "cluster is not used; the message names each field. The other conditions are as last written.",
            ),
            C.SHARED_MEMBER: (
                "False",
                "Another RegionalCluster, created before this one, lists the same Deployments: both name one member "
                "cluster and workload namespace. This one is not planned and writes nothing to the member; the other "
                "keeps acting there. The message names it: delete one of the two.",
            ),
        },
    ),
    ConditionType(
        "Reachable",
        "True when the last call to the member cluster's API server succeeded.",
        (
            Reason(C.REACHABLE.value, "True", "The member cluster answered."),
            *(Reason(reason.value, *meaning) for reason, meaning in _CLUSTER_FAILURES.items()),
        ),
    ),
    _condition(
        "Stalled",
        "kstatus' abnormal-true condition: True while the cluster is not Ready (kstatus: Failed).",
        ClusterStalledReason,
        {
            **_as_ready(*(reason for reason in ClusterStalledReason if reason is not ClusterStalledReason.RECONCILED)),
            ClusterStalledReason.RECONCILED: ("False", "The cluster is Ready."),
        },
    ),
    _either(
        "PriceFeedStale",
        "True when the cluster's price feed has had no good fetch for staleAfterSeconds (the message gives "
        "the feed's last error).",
        true=(FeedReason.STALE, "No fresh prices: no price-driven move is made here."),
        false=(
            FeedReason.FRESH,
            "Prices are fresh (a failing fetch still within staleAfterSeconds is named in the message).",
        ),
    ),
    _either(
        "CarbonFeedStale",
        "Only on clusters with a spec.carbonFeed. True when the feed has had no good fetch for staleAfterSeconds: no "
        "carbon-driven change (carbon price or limit) is made here, price-driven changes go on, and carbon limits "
        "are not enforced on the replicas running here (docs/carbon.md).",
        true=(FeedReason.STALE, "No fresh intensity; the message gives the feed's last error."),
        false=(FeedReason.FRESH, "The intensity is fresh."),
    ),
    _either(
        "ForeignObjects",
        "True when Deployments labelled as gridshift's but without its owner annotations were found in the "
        "workload namespaces: they are neither counted nor touched.",
        true=(ForeignObjectsReason.LABELLED_WITHOUT_OWNER, "The message names them (first 20)."),
        false=(ForeignObjectsReason.NO_FOREIGN_OBJECTS, "None found."),
    ),
    _either(
        "MetricsAmbiguous",
        "True when the cluster's Prometheus (its prometheusUrl, or the operator's) is also another RegionalCluster's, "
        "their workload namespaces meet, and operator.metricsClusterLabel is unset: the series of the two cannot be "
        "told apart, so the demand of the deployments running here is not read (unknown: never scaled below the "
        "Ready count) rather than counted once per cluster.",
        true=(
            MetricsAmbiguousReason.SHARED_WITHOUT_CLUSTER_LABEL,
            "The message names the other clusters and what to set: operator.metricsClusterLabel, or a prometheusUrl "
            "of the cluster's own.",
        ),
        false=(MetricsAmbiguousReason.DISTINCT, "The cluster's series can be told from every other cluster's."),
    ),
)


# ---------------------------------------------------------------- GPUProfile


class ProfileReadyReason(StrEnum):
    FITTED = "Fitted"
    INVALID = "Invalid"
    POOR_FIT = "PoorFit"
    DUPLICATE = "Duplicate"


class PoorFitReason(StrEnum):
    RESIDUALS_ABOVE_TOLERANCE = "ResidualsAboveTolerance"
    RESIDUALS_WITHIN_TOLERANCE = "ResidualsWithinTolerance"
    NOT_FITTED = "NotFitted"


GPU_PROFILE_CONDITIONS: tuple[ConditionType, ...] = (
    _condition(
        "Ready",
        "True when the planner uses the profile: its performance model could be fitted to the points, within a "
        "factor of 10 of each, and no profile created earlier is for the same model, GPU type and GPUs per replica. "
        "Where it is not used, the shipped profile for the same, if any, is.",
        ProfileReadyReason,
        {
            ProfileReadyReason.FITTED: ("True", "Fitted; status.fit gives the residuals against the points."),
            ProfileReadyReason.INVALID: (
                "False",
                "The points cannot be fitted (the message names the field); the planner does not use it.",
            ),
            ProfileReadyReason.POOR_FIT: (
                "False",
                "The fit misses a point by more than a factor of 10 (a value mis-entered, seconds as ms?): the "
                "planner does not use it. The message names the point, its measured and its fitted value.",
            ),
            ProfileReadyReason.DUPLICATE: (
                "False",
                "Another GPUProfile for the same model, GPU type and GPUs per replica was created first (then: its "
                "name sorts first) and is used; the message names it. The planner does not use this one.",
            ),
        },
    ),
    _condition(
        "PoorFit",
        "True when the fitted model misses a measured point by more than the tolerance (status.fit): "
        "capacity and energy predictions for this GPU type may be off.",
        PoorFitReason,
        {
            PoorFitReason.RESIDUALS_ABOVE_TOLERANCE: ("True", "The message names the worst point."),
            PoorFitReason.RESIDUALS_WITHIN_TOLERANCE: ("False", "Every point within the tolerance."),
            PoorFitReason.NOT_FITTED: ("Unknown", "No model could be fitted (see Ready)."),
        },
    ),
)


# ---------------------------------------------------------------- admission


def conditions_rule(kind: str, conditions: tuple[ConditionType, ...]) -> CrossFieldRule:
    """A status model's rule: each condition is a (type, status, reason) documented in `conditions`.

    The CEL twin makes the apiserver refuse an undocumented reason, or a reason with the wrong status, so
    docs/status.md cannot fall behind what the operator writes."""
    allowed = frozenset(f"{c.type}/{r.status}/{r.name}" for c in conditions for r in c.reasons)
    listed = ", ".join(f"'{triple}'" for triple in sorted(allowed))

    def holds(status: object) -> bool:
        return all(f"{c.type}/{c.status}/{c.reason}" in allowed for c in getattr(status, "conditions", []))

    return CrossFieldRule(
        cel=f"self.conditions.all(c, c.type + '/' + c.status + '/' + c.reason in [{listed}])",
        message=(
            f"conditions: each must be a type, status and reason documented for {kind} in docs/status.md "
            f"(types: {', '.join(c.type for c in conditions)})"
        ),
        field="conditions",
        holds=holds,
    )
