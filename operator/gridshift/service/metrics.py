"""The operator's own Prometheus metrics: cycles and their errors, the planner, clusters and price feeds,
and the predicted cost of each deployment, which the chart's recording rules join with the measured cost.

Names follow Prometheus' conventions (base units in the name: `_seconds`, `_usd_per_hour`,
`_usd_per_kwh`, `_ratio`; counters end in `_total`). One label scheme is shared with the recording
rules and alerts (gridshift_dev.chart) and with the vLLM and DCGM series the PodMonitor relabels:

    gridshift_dev_deployment  "<namespace>.<name>" of the InferenceDeployment, exactly the replica pods'
                              label gridshift.dev/deployment (gridshift.api.labels), so predicted and
                              measured series join `on (gridshift_dev_deployment, region)`;
    region, cluster           the RegionalCluster's region and name;
    gridshift_dev_gpu_type    the GPU type, as the pods' label gridshift.dev/gpu-type.

Only the leader exports what it planned (cluster, deployment and plan series); a replica that is not
leading drops them, so that `max by (...)` over replicas never reads a deposed leader's old values. Whether
it leads is asked at each scrape (`_LeaderRegistry`), not only at the end of a cycle: found in review, a
leader deposed between two cycles exported its last plan beside the new leader's until its next cycle.
docs/status.md lists every metric (generated from this registry).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import RestrictedRegistry

from gridshift.api import MigrationMode
from gridshift.api.common import REGION_NAME
from gridshift.api.labels import deployment_label_value
from gridshift.planner.cost import usd_per_kwh_with_pue
from gridshift.planner.plan import DeploymentPlan
from gridshift.planner.solution import Solver
from gridshift.service.report import DECISION_EVENTS
from gridshift.service.state import CycleErrorReason, CycleReport, Observation
from gridshift.signals.labels import LabelScheme

DEPLOYMENT_LABEL = LabelScheme().deployment_label
"""`gridshift_dev_deployment`: the target label the PodMonitor copies from the pod label gridshift.dev/deployment."""
GPU_TYPE_LABEL = "gridshift_dev_gpu_type"
"""The target label copied from the replica pods' label gridshift.dev/gpu-type."""
REGION_LABEL = "region"
CLUSTER_LABEL = "cluster"

_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
PLAN_OUTCOMES = ("optimal", "budget_exhausted", "feasible")
"""Outcomes of gridshift_plans_total: proven optimal, stopped by the time budget, otherwise feasible."""


MetricT = TypeVar("MetricT", Counter, Gauge, Histogram)


@dataclass(frozen=True)
class Declared(Generic[MetricT]):
    """One metric of the operator's registry: its kind, name, help and labels.

    `leader_only` gauges carry what the leader planned; a replica that is not leading drops their
    series (OperatorMetrics._drop_unset)."""

    kind: type[MetricT]
    name: str
    documentation: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None
    leader_only: bool = False


class _LeaderRegistry(CollectorRegistry):
    """A registry that leaves the leader-only families out of a scrape while `leading()` says no: the series
    stay (a cycle that does not lead drops them), unseen from the moment the Lease lapses."""

    def __init__(self, leading: Callable[[], bool] | None) -> None:
        super().__init__()
        self.leading = leading
        self.leader_only: set[str] = set()
        """Names of the leader-only families."""

    def _hidden(self) -> set[str]:
        return self.leader_only if self.leading is not None and not self.leading() else set()

    def collect(self) -> Iterable[Metric]:
        hidden = self._hidden()
        return (family for family in super().collect() if family.name not in hidden)

    def restricted_registry(self, names: Iterable[str]) -> RestrictedRegistry:
        """A scrape asking for some names (`name[]=`) goes around `collect`: hidden here the same way."""
        return RestrictedRegistry(set(names) - self._hidden(), self)


class _Registering:
    """Registers declared metrics in one registry, in declaration order, noting the leader-only gauges."""

    def __init__(self, registry: _LeaderRegistry) -> None:
        self.registry = registry
        self.leader_only: list[Gauge] = []

    def __call__(self, declared: Declared[MetricT]) -> MetricT:
        extra: dict[str, Any] = {"buckets": declared.buckets} if declared.buckets is not None else {}
        metric = declared.kind(declared.name, declared.documentation, declared.labels, registry=self.registry, **extra)
        if declared.leader_only and isinstance(metric, Gauge):
            self.leader_only.append(metric)
            self.registry.leader_only.add(declared.name)
        return metric


# The registry, in the order it is exposed; OperatorMetrics gives each an attribute of the same name.
_CLUSTER = (CLUSTER_LABEL, REGION_LABEL)
_DEPLOYMENT_REGION = (DEPLOYMENT_LABEL, REGION_LABEL)
_DEPLOYMENT = (DEPLOYMENT_LABEL,)

# -- cycles
CYCLE_SECONDS = Declared(
    Histogram,
    "gridshift_cycle_duration_seconds",
    "Wall-clock seconds of one planning cycle (observe, plan, act, report), leader cycles only.",
    buckets=_SECONDS_BUCKETS,
)
PLANNER_SECONDS = Declared(
    Histogram,
    "gridshift_planner_duration_seconds",
    "Wall-clock seconds the planner's search took in a cycle (bounded by plannerTimeBudgetSeconds).",
    buckets=_SECONDS_BUCKETS,
)
CYCLES = Declared(Counter, "gridshift_cycles", "Planning cycles run, leader or not.")
LAST_CYCLE = Declared(
    Gauge,
    "gridshift_last_cycle_timestamp_seconds",
    "Unix time the last planning cycle ended, or the operator started, before its first (a stuck loop stops "
    "advancing it).",
)
CYCLE_ERRORS = Declared(
    Counter,
    "gridshift_cycle_errors",
    "Errors of planning cycles by reason (per object and cycle: an unreachable cluster counts every cycle).",
    ("reason",),
)
LEADER = Declared(Gauge, "gridshift_leader", "1 while this replica holds the leader Lease, else 0.")

# -- what the leader did
DECISIONS = Declared(
    Counter,
    "gridshift_decisions",
    "New decisions (each with an Event), by reason (ScaleUp, ScaleDown, CheaperPlacement, PlacementRules, ...).",
    ("reason",),
)
MEMBER_WRITES = Declared(Counter, "gridshift_member_writes", "Objects applied to member clusters.")
STATUS_WRITES = Declared(Counter, "gridshift_status_writes", "Status patches on the hub.")
PLANS = Declared(
    Counter,
    "gridshift_plans",
    "Plans made, by the search step whose plan won (current, warm, greedy, milp, milp-neighbourhoods) and "
    "outcome (optimal: proven; budget_exhausted: the time budget ended the search; feasible: otherwise).",
    ("solver", "outcome"),
)

# -- the last plan (leader only)
PLAN_SOLVER = Declared(
    Gauge,
    "gridshift_plan_solver_info",
    "1 for the search step whose plan won the last cycle.",
    ("solver",),
    leader_only=True,
)
PLAN_OBJECTIVE = Declared(
    Gauge,
    "gridshift_plan_objective_usd_per_hour",
    "The last plan's objective: fleet cost per hour plus penalties, USD/h.",
    leader_only=True,
)
PLAN_GAP = Declared(
    Gauge,
    "gridshift_plan_gap_ratio",
    "(objective - proven lower bound) / objective of the last plan; 0 if proven optimal, NaN without a bound.",
    leader_only=True,
)

# -- clusters (leader only)
CLUSTER_REACHABLE = Declared(
    Gauge,
    "gridshift_cluster_reachable",
    "1 when the member cluster answered in the last cycle, else 0 (also while its spec is refused: InvalidSpec, "
    "under its spec.region; and while another RegionalCluster names its member: SharedMember).",
    _CLUSTER,
    leader_only=True,
)
PRICE_FEED_STALE = Declared(
    Gauge,
    "gridshift_price_feed_stale",
    "1 when the cluster's electricity prices are stale (no good fetch for staleAfterSeconds), else 0.",
    _CLUSTER,
    leader_only=True,
)
PRICE_FEED_AGE = Declared(
    Gauge,
    "gridshift_price_feed_age_seconds",
    "Seconds since the cluster's price feed last fetched successfully (absent before the first).",
    _CLUSTER,
    leader_only=True,
)
ENERGY_PRICE = Declared(
    Gauge,
    "gridshift_energy_price_usd_per_kwh",
    "Electricity price now as the grid charges it, USD/kWh (PUE not included).",
    _CLUSTER,
    leader_only=True,
)
ENERGY_PRICE_WITH_PUE = Declared(
    Gauge,
    "gridshift_energy_price_with_pue_usd_per_kwh",
    "Electricity price now per kWh the GPUs draw, USD/kWh: price x the site's PUE.",
    _CLUSTER,
    leader_only=True,
)
CARBON_INTENSITY = Declared(
    Gauge,
    "gridshift_carbon_intensity_grams_per_kwh",
    "Grid carbon intensity now, gCO2eq/kWh on the carbon feed's basis, PUE not included (clusters with a carbonFeed).",
    _CLUSTER,
    leader_only=True,
)
CARBON_FEED_STALE = Declared(
    Gauge,
    "gridshift_carbon_feed_stale",
    "1 while the cluster's carbon feed is stale (no carbon-driven change there; price-driven ones go on), else 0.",
    _CLUSTER,
    leader_only=True,
)
PREDICTED_CO2 = Declared(
    Gauge,
    "gridshift_deployment_predicted_co2_kg_per_hour",
    "Predicted emissions of the deployment's planned replicas in a region, kgCO2eq/h (power x PUE x "
    "intensity now; clusters with a carbon feed).",
    _DEPLOYMENT_REGION,
    leader_only=True,
)
PREDICTED_CO2_PER_MTOK = Declared(
    Gauge,
    "gridshift_deployment_predicted_co2_grams_per_million_tokens",
    "Predicted emissions per million output tokens of the deployment, gCO2eq.",
    _DEPLOYMENT,
    leader_only=True,
)
GPU_COST = Declared(
    Gauge,
    "gridshift_gpu_cost_usd_per_hour",
    "Marginal cost of one GPU for an hour, excluding electricity, USD/h (0 for owned hardware).",
    (*_CLUSTER, GPU_TYPE_LABEL),
    leader_only=True,
)

# -- deployments (leader only)
PREDICTED_COST = Declared(
    Gauge,
    "gridshift_deployment_predicted_cost_usd_per_hour",
    "Predicted cost of the deployment's planned replicas in a region, USD/h: their GPU-hours and energy at "
    "that region's prices now (joins gridshift_deployment_region:cost_usd_per_hour:sum, the measured cost).",
    _DEPLOYMENT_REGION,
    leader_only=True,
)
PREDICTED_JOULES = Declared(
    Gauge,
    "gridshift_deployment_predicted_joules_per_token",
    "Predicted GPU energy per output token in a region, J: its replicas' power over the tokens it serves "
    "(the deployment's served tokens split by the region's share of the planned capacity).",
    _DEPLOYMENT_REGION,
    leader_only=True,
)
DESIRED_REPLICAS = Declared(
    Gauge,
    "gridshift_deployment_desired_replicas",
    "Replicas gridshift wants in a region (those stranded in an unreachable cluster while nothing replaces them; "
    "in Advisory, always).",
    _DEPLOYMENT_REGION,
    leader_only=True,
)
READY_REPLICAS = Declared(
    Gauge, "gridshift_deployment_ready_replicas", "Replicas Ready in a region.", _DEPLOYMENT_REGION, leader_only=True
)
DEPLOYMENT_READY = Declared(
    Gauge,
    "gridshift_deployment_ready",
    "1 when the deployment's Ready condition is True, else 0 (also while its spec is refused: InvalidSpec).",
    _DEPLOYMENT,
    leader_only=True,
)
SLO_AT_RISK = Declared(
    Gauge,
    "gridshift_deployment_slo_at_risk",
    "1 when the deployment's SLOAtRisk condition is True (capacity short or measured latency above), else 0.",
    _DEPLOYMENT,
    leader_only=True,
)
TTFT_SLO = Declared(
    Gauge,
    "gridshift_deployment_ttft_slo_seconds",
    "The deployment's p95 time-to-first-token objective, s (to compare with vLLM's histogram).",
    _DEPLOYMENT,
    leader_only=True,
)
TPOT_SLO = Declared(
    Gauge,
    "gridshift_deployment_tpot_slo_seconds",
    "The deployment's p95 time-per-output-token objective, s.",
    _DEPLOYMENT,
    leader_only=True,
)


def _region_of(body: Mapping[str, Any]) -> str | None:
    """spec.region of a refused RegionalCluster's raw body, where it is a region name. Found in review: the
    region was taken only from the series this process had exported, so after an operator restart or
    failover (or for a cluster refused from its creation) gridshift_cluster_reachable had no series."""
    spec = body.get("spec")
    region = spec.get("region") if isinstance(spec, Mapping) else None
    return region if isinstance(region, str) and len(region) <= 63 and re.fullmatch(REGION_NAME, region) else None


class OperatorMetrics:
    """One registry per service, so tests can read it without global state."""

    def __init__(self, leading: Callable[[], bool] | None = None) -> None:
        self.registry = _LeaderRegistry(leading)
        made = _Registering(self.registry)
        # -- cycles
        self.cycle_seconds = made(CYCLE_SECONDS)
        self.planner_seconds = made(PLANNER_SECONDS)
        self.cycles = made(CYCLES)
        self.last_cycle = made(LAST_CYCLE)
        # From the start, not 0: GridshiftCyclesStopped (time() - this > 600 for 5m) paged a fresh leader 5 minutes
        # after it started, its first cycle, reading every member cold, still running (found in review).
        self.last_cycle.set(time.time())
        self.cycle_errors = made(CYCLE_ERRORS)
        self.leader = made(LEADER)
        if leading is not None:
            self.leader.set_function(lambda: 1.0 if leading() else 0.0)
        # -- what the leader did
        self.decisions = made(DECISIONS)
        self.member_writes = made(MEMBER_WRITES)
        self.status_writes = made(STATUS_WRITES)
        self.plans = made(PLANS)
        self._zero_counters()
        # -- the last plan (leader only)
        self.plan_solver = made(PLAN_SOLVER)
        self.plan_objective = made(PLAN_OBJECTIVE)
        self.plan_gap = made(PLAN_GAP)
        # -- clusters (leader only)
        self.cluster_reachable = made(CLUSTER_REACHABLE)
        self.price_feed_stale = made(PRICE_FEED_STALE)
        self.price_feed_age = made(PRICE_FEED_AGE)
        self.energy_price = made(ENERGY_PRICE)
        self.energy_price_with_pue = made(ENERGY_PRICE_WITH_PUE)
        self.carbon_intensity = made(CARBON_INTENSITY)
        self.carbon_feed_stale = made(CARBON_FEED_STALE)
        self.predicted_co2 = made(PREDICTED_CO2)
        self.predicted_co2_per_mtok = made(PREDICTED_CO2_PER_MTOK)
        self.gpu_cost = made(GPU_COST)
        # -- deployments (leader only)
        self.predicted_cost = made(PREDICTED_COST)
        self.predicted_joules = made(PREDICTED_JOULES)
        self.desired_replicas = made(DESIRED_REPLICAS)
        self.ready_replicas = made(READY_REPLICAS)
        self.deployment_ready = made(DEPLOYMENT_READY)
        self.slo_at_risk = made(SLO_AT_RISK)
        self.ttft_slo = made(TTFT_SLO)
        self.tpot_slo = made(TPOT_SLO)
        self._leader_only: tuple[Gauge, ...] = tuple(made.leader_only)
        self._exported: dict[Gauge, set[tuple[str, ...]]] = {g: set() for g in self._leader_only}
        """Label values each leader-only gauge carries: replaced series are removed after the new ones are set,
        so that a scrape never finds a series missing half-way through a cycle (alerts' `for` would restart)."""
        self._setting: dict[Gauge, set[tuple[str, ...]]] = {}
        self._children: dict[tuple[Gauge, tuple[str, ...]], Gauge] = {}

    def _zero_counters(self) -> None:
        """Every series of the labelled counters, at 0 from the start: `increase()` needs a sample before the
        first event to count it, so a counter that appeared at its first increment hid that event (a one-off
        cycle error never fired GridshiftCycleErrors)."""
        for reason in CycleErrorReason:
            self.cycle_errors.labels(reason=reason.value)
        for event in DECISION_EVENTS:
            self.decisions.labels(reason=event.value)
        for solver in Solver:
            for outcome in PLAN_OUTCOMES:
                self.plans.labels(solver=solver.value, outcome=outcome)

    def _set(self, gauge: Gauge, value: float, **labels: str) -> None:
        key = tuple(labels[name] for name in gauge._labelnames)
        # The labelled child is looked up once per series (labels() checks and locks on every call:
        # tens of thousands of calls a cycle at 10,000 deployments).
        child = self._children.get((gauge, key))
        if child is None:
            child = self._children[(gauge, key)] = gauge.labels(*key)
        child.set(value)
        self._setting.setdefault(gauge, set()).add(key)

    def _drop_unset(self) -> None:
        """Remove the leader-only series this cycle did not set (all of them when not leading)."""
        for gauge in self._leader_only:
            kept = self._setting.get(gauge, set())
            for key in self._exported[gauge] - kept:
                gauge.remove(*key)
                self._children.pop((gauge, key), None)
            self._exported[gauge] = kept
        self._setting = {}

    def cycle_failed(self) -> None:
        """A whole cycle raised (run_forever caught it)."""
        self.cycle_errors.labels(reason=CycleErrorReason.CYCLE_FAILED.value).inc()

    def record(self, report: CycleReport, observation: Observation | None) -> None:
        self.cycles.inc()
        self.last_cycle.set(time.time())
        for problem in report.problems:
            self.cycle_errors.labels(reason=problem.reason.value).inc()
        if not report.leader or report.plan is None or observation is None:
            self.plan_objective.set(math.nan)
            self.plan_gap.set(math.nan)
            self._drop_unset()
            return
        self.cycle_seconds.observe(report.seconds)
        if report.planner_seconds is not None:
            self.planner_seconds.observe(report.planner_seconds)
        self.member_writes.inc(report.member_writes)
        self.status_writes.inc(report.status_writes)
        for reason in report.decisions:
            self.decisions.labels(reason=reason).inc()
        self._plan(report)
        self._clusters(report, observation)
        self._deployments(report)
        self._failed(report, observation)
        self._refused(observation)
        self._drop_unset()

    def _plan(self, report: CycleReport) -> None:
        plan = report.plan
        assert plan is not None
        optimal, exhausted, feasible = PLAN_OUTCOMES
        outcome = optimal if plan.proven_optimal else exhausted if plan.budget_exhausted else feasible
        self.plans.labels(solver=plan.solver.value, outcome=outcome).inc()
        self._set(self.plan_solver, 1, solver=plan.solver.value)
        objective = plan.objective_usd_per_hour
        self.plan_objective.set(objective)
        if plan.proven_optimal:
            self.plan_gap.set(0.0)
        elif plan.bound_usd_per_hour is not None and objective > 0:
            self.plan_gap.set(max(0.0, (objective - plan.bound_usd_per_hour) / objective))
        else:
            self.plan_gap.set(math.nan)

    def _clusters(self, report: CycleReport, observation: Observation) -> None:
        now = report.started_at
        for cluster in observation.snapshot.clusters:
            view = observation.views[cluster.name]
            where = {CLUSTER_LABEL: cluster.name, REGION_LABEL: cluster.region}
            self._set(self.cluster_reachable, 1 if view.reachable else 0, **where)
            reading = view.reading
            self._set(self.price_feed_stale, 1 if reading is None or reading.stale else 0, **where)
            if reading is not None and reading.last_good_fetch is not None:
                self._set(self.price_feed_age, max(0.0, (now - reading.last_good_fetch).total_seconds()), **where)
            current = view.prices.interval_at(now)
            if current is not None:
                self._set(self.energy_price, current.usd_per_kwh, **where)
                self._set(self.energy_price_with_pue, usd_per_kwh_with_pue(cluster.pue, current.usd_per_kwh), **where)
            for offering in cluster.offerings:
                self._set(self.gpu_cost, offering.hourly_cost_usd, **where, **{GPU_TYPE_LABEL: offering.gpu_type})
            if view.resource.spec.carbon_feed is not None:
                carbon = view.carbon_reading
                self._set(self.carbon_feed_stale, 1 if carbon is None or carbon.stale else 0, **where)
                intensity = carbon.series.at(now) if carbon is not None and carbon.series is not None else None
                if intensity is not None:
                    self._set(self.carbon_intensity, intensity.g_per_kwh, **where)

    def _deployments(self, report: CycleReport) -> None:
        assert report.plan is not None
        labels = {}
        for outcome in report.outcomes:
            value = deployment_label_value(outcome.namespace, outcome.name)
            labels[f"{outcome.namespace}/{outcome.name}"] = value
            one = {DEPLOYMENT_LABEL: value}
            self._set(self.deployment_ready, 1 if outcome.ready else 0, **one)
            self._set(self.slo_at_risk, 1 if outcome.slo_at_risk else 0, **one)
            self._set(self.ttft_slo, outcome.ttft_slo_seconds, **one)
            self._set(self.tpot_slo, outcome.tpot_slo_seconds, **one)
            for region, desired, ready in outcome.replicas:
                self._set(self.desired_replicas, desired, **one, **{REGION_LABEL: region})
                self._set(self.ready_replicas, ready, **one, **{REGION_LABEL: region})
        for plan in report.plan.deployments:
            if plan.id not in labels or plan.mode is MigrationMode.ADVISORY:
                continue  # not reported this cycle; or Advisory, whose cost is hypothetical (status.cost)
            # Each region at its own prices and load: a share of the deployment's total charged every region
            # the average, and measured over predicted could not be 1 where GPU-hour prices differ (review).
            for region, usd in plan.cost.usd_per_hour_by_region.items():
                self._set(self.predicted_cost, usd, **{DEPLOYMENT_LABEL: labels[plan.id], REGION_LABEL: region})
            for region, joules in plan.cost.joules_per_token_by_region.items():
                self._set(self.predicted_joules, joules, **{DEPLOYMENT_LABEL: labels[plan.id], REGION_LABEL: region})
            self._carbon(plan, labels[plan.id])

    def _failed(self, report: CycleReport, observation: Observation) -> None:
        """Deployments not acted on this cycle (DeploymentFailed) keep the series they had: nothing new was learnt of
        them. Where they had none (a new leader's first cycle), Ready and SLOAtRisk are those of the status as stored,
        and the SLO objectives the spec's. Found in review: every gridshift_deployment_* series of such a deployment
        was dropped, so GridshiftSLOAtRisk resolved, and `== 0` alerts went silent, just when acting on it failed."""
        reported = {f"{o.namespace}/{o.name}" for o in report.outcomes}
        failed = {p.deployment for p in report.problems if p.reason is CycleErrorReason.DEPLOYMENT_FAILED}
        for deployment in observation.deployments:
            if deployment.id not in failed or deployment.id in reported:
                continue
            one = {DEPLOYMENT_LABEL: deployment_label_value(deployment.planned.namespace, deployment.planned.name)}
            kept = False
            for gauge in self._leader_only:
                if DEPLOYMENT_LABEL in gauge._labelnames:
                    at = gauge._labelnames.index(DEPLOYMENT_LABEL)
                    keys = {k for k in self._exported[gauge] if k[at] == one[DEPLOYMENT_LABEL]}
                    self._setting.setdefault(gauge, set()).update(keys)
                    kept = kept or bool(keys)
            if not kept:
                stored = {c.get("type"): c.get("status") for c in deployment.old_status.get("conditions") or []}
                slo = deployment.resource.spec.slo
                self._set(self.deployment_ready, 1 if stored.get("Ready") == "True" else 0, **one)
                self._set(self.slo_at_risk, 1 if stored.get("SLOAtRisk") == "True" else 0, **one)
                self._set(self.ttft_slo, slo.ttft_p95_ms / 1000, **one)
                self._set(self.tpot_slo, slo.tpot_p95_ms / 1000, **one)

    def _refused(self, observation: Observation) -> None:
        """Objects whose spec gridshift refuses (InvalidSpec), and clusters held (SharedMember), are not used: a
        deployment reads not Ready, a cluster not reachable (under its spec's region; the region it was last
        exported with where that is not a region name; none if neither). Found in review: their series were dropped,
        so alerts on `== 0` went silent just when the object stopped being managed."""
        regions = {key[0]: key[1] for key in self._exported[self.cluster_reachable]}
        for name, held in observation.held.items():
            # Held (SharedMember): not used either. Found in review: its series were dropped, as the refused' were.
            self._set(self.cluster_reachable, 0, **{CLUSTER_LABEL: name, REGION_LABEL: held.resource.spec.region})
        for invalid in observation.refused:
            namespace, _, name = invalid.key.rpartition("/")
            if invalid.kind == "InferenceDeployment":
                self._set(self.deployment_ready, 0, **{DEPLOYMENT_LABEL: deployment_label_value(namespace, name)})
            elif invalid.kind == "RegionalCluster" and (region := _region_of(invalid.body) or regions.get(name)):
                self._set(self.cluster_reachable, 0, **{CLUSTER_LABEL: name, REGION_LABEL: region})

    def _carbon(self, plan: DeploymentPlan, deployment: str) -> None:
        """A deployment's predicted emissions, where every cluster it uses has a carbon feed."""
        for region, grams in plan.cost.co2_grams_per_hour_by_region.items():
            self._set(self.predicted_co2, grams / 1000.0, **{DEPLOYMENT_LABEL: deployment, REGION_LABEL: region})
        if plan.cost.co2_grams_per_million_tokens is not None:
            self._set(
                self.predicted_co2_per_mtok, plan.cost.co2_grams_per_million_tokens, **{DEPLOYMENT_LABEL: deployment}
            )
