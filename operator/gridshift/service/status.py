"""Composes InferenceDeployment and RegionalCluster status, and the minimal merge patch to reach it.

Status is rebuilt from scratch each cycle, then compared with what is stored: timestamps of
unchanged conditions and decisions are carried over, and measured numbers are rounded to three
significant figures, so a cycle in which nothing meaningful changed produces an empty patch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gridshift.api import InferenceDeploymentStatus, MigrationMode, RegionalClusterStatus
from gridshift.api.base import ApiModel
from gridshift.planner import snapshot as S
from gridshift.planner.plan import CostPrediction, DeploymentPlan
from gridshift.service.inputs import MeasuredCost
from gridshift.service.migrate import MigrationProgress, StepState, routing_to_wire
from gridshift.service.state import ClusterView, ObservedDeployment

_HORIZON_POINTS = 48


def sig(value: float | None, digits: int = 3) -> float | None:
    """Round to `digits` significant figures (None and non-finite values become None)."""
    if value is None or not math.isfinite(value):
        return None
    if value == 0:
        return 0.0
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


class _Conditions:
    """Builds conditions for one object, carrying each lastTransitionTime over while its status holds."""

    def __init__(self, now: datetime, old: Mapping[str, Any], generation: int | None) -> None:
        self.now = now
        self.previous = {c.get("type"): c for c in old.get("conditions") or []}
        self.generation = generation

    def __call__(self, kind: str, holds: bool, reason: str, message: str) -> dict[str, Any]:
        status = "True" if holds else "False"
        previous = self.previous.get(kind)
        changed = previous is None or previous.get("status") != status
        condition = {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": self.now.isoformat() if changed else previous["lastTransitionTime"],  # type: ignore[index]
        }
        if self.generation is not None:
            condition["observedGeneration"] = self.generation
        return condition


def _decision(now: datetime, plan: DeploymentPlan, old: Mapping[str, Any]) -> dict[str, Any]:
    explanation = plan.explanation
    details = "\n".join(explanation.details)
    summary = explanation.summary
    if plan.mode is not MigrationMode.AUTO:
        targets = ", ".join(f"{t.cluster}/{t.gpu_type}={t.replicas}" for t in plan.targets if t.replicas > 0)
        summary = f"[{plan.mode.value}] would run: {targets or 'nothing'}"
    decision = {
        "reason": explanation.reason,
        "summary": summary[:1024],
        "explanation": details[:16384],
        "estimatedSavingUsdPerHour": sig(explanation.saving_usd_per_hour_vs_current),
    }
    previous = old.get("lastDecision") or {}
    same = previous.get("reason") == decision["reason"] and previous.get("summary") == decision["summary"]
    decision["time"] = previous["time"] if same and "time" in previous else now.isoformat()
    if same:  # keep the explanation as first written: its figures move with prices every cycle
        decision["explanation"] = previous.get("explanation", decision["explanation"])
        decision["estimatedSavingUsdPerHour"] = previous.get("estimatedSavingUsdPerHour")
    return {k: v for k, v in decision.items() if v is not None}


def deployment_status(
    now: datetime,
    deployment: ObservedDeployment,
    applied: S.Deployment,
    plan: DeploymentPlan,
    progress: MigrationProgress,
    views: Mapping[str, ClusterView],
) -> dict[str, Any]:
    """The InferenceDeployment's status as it should be after this cycle (wire format).

    With metrics, $/Mtok and J/token are measured (source Measured): energy and tokens from
    Prometheus, the cost rate from the plan's prices. Measured figures keep two significant
    digits so that ordinary jitter is not a status change.
    """
    idep, old = deployment.resource, deployment.old_status
    steps = progress.steps
    generation = deployment.body["metadata"].get("generation")
    placements = _placements(applied, views)
    ready = sum(p["ready"] for p in placements)
    desired = sum(p["desired"] for p in placements)
    regions = sorted({p["region"] for p in placements if p["desired"] > 0})
    unreachable = sorted(c for c, v in views.items() if not v.reachable)
    stale_prices = sorted(c for c, v in views.items() if v.reading is None or v.reading.stale)
    metrics_missing = applied.demand.requests_per_second is None
    slo_at_risk = (not plan.feasible) or (
        plan.needed_tokens_per_s is not None and plan.capacity_tokens_per_s + 1e-9 < plan.needed_tokens_per_s
    )
    migrating = bool(steps)
    ready_ok = ready >= max(1, idep.spec.capacity.min_replicas) or (
        idep.spec.capacity.min_replicas == 0 and desired == 0
    )
    advisory = plan.mode is not MigrationMode.AUTO
    condition = _Conditions(now, old, generation)
    conditions = [
        condition(
            "Ready",
            ready_ok and not slo_at_risk and progress.error is None,
            "ActuationFailed" if progress.error else "ReplicasReady" if ready_ok else "ReplicasNotReady",
            (f"{progress.error}; " if progress.error else "")
            + f"{ready}/{desired} replicas Ready"
            + (f"; unreachable clusters not counted: {', '.join(unreachable)}" if unreachable else ""),
        ),
        condition(
            "SLOAtRisk",
            slo_at_risk,
            "CapacityShort" if slo_at_risk else "CapacityCoversDemand",
            plan.infeasible_reason or ("capacity below demand" if slo_at_risk else ""),
        ),
        condition(
            "PriceFeedStale",
            bool(stale_prices),
            "Stale" if stale_prices else "Fresh",
            f"no fresh prices from: {', '.join(stale_prices)}; no price-driven moves" if stale_prices else "",
        ),
        condition(
            "MetricsStale",
            metrics_missing and idep.spec.demand.source.value == "Prometheus",
            "NoDemandMetrics" if metrics_missing else "MetricsFresh",
            "request rate unknown: never scaling below the Ready count" if metrics_missing else "",
        ),
        condition(
            "Migrating",
            migrating,
            "MigrationInFlight" if migrating else "Idle",
            f"{sum(1 for s in steps if s.state is StepState.DONE)}/{len(steps)} steps done" if migrating else "",
        ),
        condition(
            "Advisory", advisory, plan.mode.value, "plan reported, member clusters untouched" if advisory else ""
        ),
    ]
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "regions": ",".join(regions),
        "readyReplicas": ready,
        "desiredReplicas": desired,
        "placements": placements,
        "routing": routing_to_wire(progress.routing),
        "cost": _cost(plan.cost, deployment.measured),
        "lastDecision": _decision(now, plan, old),
        "migration": [s.to_wire() for s in steps],
        "conditions": conditions,
    }
    if applied.demand.requests_per_second is not None:
        status["observedSlo"] = {"requestsPerSecond": sig(applied.demand.requests_per_second)}
    return _as_stored(InferenceDeploymentStatus, {k: v for k, v in status.items() if v is not None})


def _placements(applied: S.Deployment, views: Mapping[str, ClusterView]) -> list[dict[str, Any]]:
    return [
        {
            "cluster": p.cluster,
            "region": views[p.cluster].region if p.cluster in views else "",
            "gpuType": p.gpu_type,
            "desired": p.desired,
            "ready": p.ready,
        }
        for p in applied.placements
        if p.desired > 0 or p.ready > 0
    ]


def _as_stored(model: type[ApiModel], status: dict[str, Any]) -> dict[str, Any]:
    """Validated against the API model (a misspelt key fails here, not silently pruned by the
    apiserver) and serialised as the apiserver will store it, so comparisons next cycle are exact."""
    return model.model_validate(status).model_dump(by_alias=True, exclude_none=True, mode="json")


def _cost(cost: CostPrediction, measured: MeasuredCost | None) -> dict[str, Any]:
    out = {
        "usdPerHour": sig(cost.usd_per_hour),
        "usdPerMillionTokens": sig(cost.usd_per_million_tokens),
        "joulesPerToken": sig(cost.joules_per_token),
        "energyShare": sig(min(1.0, max(0.0, cost.energy_share))) if cost.energy_share is not None else None,
        "source": "Predicted",
    }
    if measured is not None and measured.joules_per_token is not None:
        tokens_per_hour = measured.generation_tokens_per_second * 3600
        out["usdPerMillionTokens"] = sig(cost.usd_per_hour / tokens_per_hour * 1e6, 2)
        out["joulesPerToken"] = sig(measured.joules_per_token, 2)
        out["source"] = "Measured"
    return {k: v for k, v in out.items() if v is not None}


def cluster_status(now: datetime, view: ClusterView) -> dict[str, Any]:
    """The RegionalCluster's status after this cycle (wire format). Prices in USD/kWh, PUE not included."""
    old, reading = view.old_status, view.reading
    status: dict[str, Any] = {"reachable": view.reachable}
    status["gpus"] = [
        {"gpuType": i.gpu_type, "allocatable": i.allocatable, "used": i.used}
        for i in (view.inventory.gpus if view.inventory is not None else ())
    ] or old.get("gpus", [])
    stale = reading is None or reading.stale
    upcoming = [i for i in view.prices.intervals if i.end > now][:_HORIZON_POINTS]
    current = view.prices.interval_at(now)
    if current is not None:
        status["currentPriceUsdPerKwh"] = sig(current.usd_per_kwh, 4)
    if upcoming:
        status["priceHorizonEnd"] = upcoming[-1].end.isoformat()
        status["priceHorizon"] = [{"start": i.start.isoformat(), "usdPerKwh": sig(i.usd_per_kwh, 4)} for i in upcoming]
    if reading is not None and reading.series is not None and reading.last_good_fetch is not None:
        status["lastPriceFetch"] = reading.last_good_fetch.isoformat()
    feed_error = str(reading.error) if reading is not None and reading.error is not None else view.feed_error or ""
    condition = _Conditions(now, old, None)
    status["conditions"] = [
        condition("Reachable", view.reachable, "Reachable" if view.error is None else "Unreachable", view.error or ""),
        condition("PriceFeedStale", stale, "Stale" if stale else "Fresh", feed_error),
        condition(
            "ForeignObjects",
            bool(view.foreign),
            "LabelledWithoutOwner" if view.foreign else "None",
            (
                "labelled as gridshift's without owner annotations, ignored: "
                + ", ".join(f"Deployment {w.namespace}/{w.name}" for w in view.foreign[:20])
            )
            if view.foreign
            else "",
        ),
    ]
    stored = _as_stored(RegionalClusterStatus, status)
    if old.get("priceHorizon") == stored.get("priceHorizon") and "lastPriceFetch" in old:
        # Refreshes that bring the same prices are not news: keep the time the prices last changed.
        stored["lastPriceFetch"] = old["lastPriceFetch"]
    return stored


def status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch taking `old` to `new` at the top level; empty when nothing changed."""
    patch: dict[str, Any] = {k: v for k, v in new.items() if old.get(k) != v}
    for key in old:
        if key not in new:
            patch[key] = None
    return patch
