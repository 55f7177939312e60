"""The operator's own Prometheus metrics: planning time, decisions, and the cost figures the chart's
recording rules join with vLLM and DCGM series (gridshift_energy_price_usd_per_kwh,
gridshift_gpu_hourly_cost_usd)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gridshift.service.state import CycleReport, Observation


class OperatorMetrics:
    """One registry per service, so tests can read it without global state."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.plan_seconds = Histogram(
            "gridshift_plan_seconds",
            "Seconds one planning cycle took (gather, plan, act, status).",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=self.registry,
        )
        self.decisions = Counter(
            "gridshift_decisions",
            "Planning decisions that changed, by reason (CheaperRegion, ScaleUp, ...).",
            ["reason"],
            registry=self.registry,
        )
        self.member_writes = Counter(
            "gridshift_member_writes", "Objects applied to member clusters.", registry=self.registry
        )
        self.status_writes = Counter("gridshift_status_writes", "Status patches on the hub.", registry=self.registry)
        self.leader = Gauge("gridshift_leader", "1 while this replica holds the leader Lease.", registry=self.registry)
        self.usd_per_hour = Gauge(
            "gridshift_estimated_usd_per_hour",
            "Predicted cost of a deployment's replicas in a region, USD/h.",
            ["deployment", "region"],
            registry=self.registry,
        )
        self.joules_per_token = Gauge(
            "gridshift_estimated_joules_per_token",
            "Predicted GPU energy per output token, J (the deployment's "
            "figure in each region it runs in: routing by capacity gives every replica the same load).",
            ["deployment", "region"],
            registry=self.registry,
        )
        self.energy_price = Gauge(
            "gridshift_energy_price_usd_per_kwh",
            "Electricity price now, USD/kWh, PUE included.",
            ["region"],
            registry=self.registry,
        )
        self.gpu_hourly_cost = Gauge(
            "gridshift_gpu_hourly_cost_usd",
            "Marginal hourly cost of one GPU, USD (0 for owned hardware).",
            ["region", "gpu_type"],
            registry=self.registry,
        )

    def record(self, report: CycleReport, observation: Observation | None) -> None:
        self.leader.set(1 if report.leader else 0)
        if not report.leader or report.plan is None or observation is None:
            return
        self.plan_seconds.observe(report.seconds)
        self.member_writes.inc(report.member_writes)
        self.status_writes.inc(report.status_writes)
        for reason in report.decisions:
            self.decisions.labels(reason=reason).inc()
        self.usd_per_hour.clear()
        self.joules_per_token.clear()
        for plan in report.plan.deployments:
            replicas = sum(t.replicas for t in plan.targets)
            for target in plan.targets:
                if target.replicas <= 0 or replicas <= 0:
                    continue
                share = target.replicas / replicas
                self.usd_per_hour.labels(plan.id, target.region).inc(plan.cost.usd_per_hour * share)
                if plan.cost.joules_per_token is not None:
                    self.joules_per_token.labels(plan.id, target.region).set(plan.cost.joules_per_token)
        for cluster in observation.snapshot.clusters:
            current = observation.views[cluster.name].prices.interval_at(report.started_at)
            if current is not None:
                self.energy_price.labels(cluster.region).set(current.usd_per_kwh * cluster.pue)
            for offering in cluster.offerings:
                self.gpu_hourly_cost.labels(cluster.region, offering.gpu_type).set(offering.hourly_cost_usd)
