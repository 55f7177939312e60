"""Builders for planner tests: small snapshots written out in full, so each test shows its world."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gridshift.api import InferenceDeploymentSpec
from gridshift.planner import (
    Cluster,
    Deployment,
    EnergyPrice,
    ObservedDemand,
    Offering,
    Placement,
    PriceHorizon,
    Snapshot,
)
from gridshift.planner.profiles import PerformanceModel, ProfilePoint, fit_performance_model
from gridshift.service.inputs import requirements_of

REPO = Path(__file__).resolve().parents[2]
H100 = "NVIDIA-H100-80GB-HBM3"
A100 = "NVIDIA-A100-SXM4-80GB"
MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"
NOW = datetime(2024, 6, 1, 12, 0)


def shared_data() -> Path:
    return Path(os.environ.get("GRIDSHIFT_SHARED_DATA", REPO / ".." / "shared" / "data"))


def measured_rows() -> list[dict[str, str]]:
    path = shared_data() / "h100-llama3-8b-power" / "measurements.csv"
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def measured_points() -> list[ProfilePoint]:
    return [
        ProfilePoint(int(r["batch"]), int(r["context"]), float(r["step_ms"]), float(r["avg_power_w"]))
        for r in measured_rows()
        if r["kind"] == "decode"
    ]


# A fixed H100 model (the fit of our measurements, rounded) so planner tests need no data files.
H100_MODEL = PerformanceModel(
    model=MODEL,
    gpu_type=H100,
    gpus_per_replica=1,
    step_base_ms=7.72,
    step_ms_per_kv_position=5.6e-5,
    step_ms_per_sequence=0.015,
    power_base_watts=384.0,
    power_watts_per_sequence=0.5,
    power_watts_per_log_batch=0.35,
    power_cap_watts=600.0,
    idle_power_watts=126.0,
    prefill_tokens_per_s=19148.0,
    max_batch=512,
)
A100_MODEL = PerformanceModel(
    model=MODEL,
    gpu_type=A100,
    gpus_per_replica=1,
    step_base_ms=7.72 * 1.675,
    step_ms_per_kv_position=5.6e-5 * 1.675,
    step_ms_per_sequence=0.015 * 1.675,
    power_base_watts=384.0 * 0.57,
    power_watts_per_sequence=0.5 * 0.57,
    power_watts_per_log_batch=0.35 * 0.57,
    power_cap_watts=600.0 * 0.57,
    idle_power_watts=126.0 * 0.57,
    prefill_tokens_per_s=19148.0 / 1.675,
    max_batch=512,
)


def spec(
    *,
    gpu_types: Sequence[str] = (H100,),
    min_replicas: int = 1,
    max_replicas: int = 16,
    min_regions: int = 1,
    mode: str = "Auto",
    max_moves: int = 4,
    payback_hours: float = 6.0,
    ttft_ms: float = 2000.0,
    tpot_ms: float = 50.0,
    allowed: Sequence[str] = (),
    forbidden: Sequence[str] = (),
    preferred: Sequence[str] = (),
    selector: Mapping[str, str] | None = None,
    static_rps: float | None = None,
) -> InferenceDeploymentSpec:
    document: dict[str, Any] = {
        "model": {"servedName": "chat", "source": MODEL},
        "replica": {"gpusPerReplica": 1, "gpuTypes": list(gpu_types)},
        "slo": {"ttftP95Ms": ttft_ms, "tpotP95Ms": tpot_ms},
        "capacity": {"minReplicas": min_replicas, "maxReplicas": max_replicas, "minRegions": min_regions},
        "placement": {
            "allowedRegions": list(allowed),
            "forbiddenRegions": list(forbidden),
            "preferredRegions": list(preferred),
        },
        "migration": {"mode": mode, "maxConcurrentMoves": max_moves, "paybackHorizonHours": payback_hours},
        "demand": {"meanPromptTokens": 1000, "meanOutputTokens": 250},
    }
    if selector is not None:
        document["placement"]["clusterSelector"] = {"matchLabels": dict(selector)}
    if static_rps is not None:
        document["demand"] = {**document["demand"], "source": "Static", "requestsPerSecond": static_rps}
    return InferenceDeploymentSpec.model_validate(document)


def deployment(
    name: str,
    rps: float | None,
    *,
    placements: Sequence[tuple[str, str, int]] = (),
    prompt: float = 1000.0,
    output: float = 250.0,
    **spec_args: Any,
) -> Deployment:
    return Deployment(
        namespace="ns",
        name=name,
        requirements=requirements_of(spec(**spec_args)),
        placements=tuple(Placement(c, g, n, n) for c, g, n in placements),
        demand=ObservedDemand(rps, prompt, output),
    )


def cluster(
    name: str,
    *,
    region: str | None = None,
    gpus: Mapping[str, int] | None = None,
    gpu_hour: float = 2.0,
    pue: float = 1.2,
    reachable: bool = True,
    labels: Mapping[str, str] | None = None,
) -> Cluster:
    offerings = tuple(
        Offering(gpu_type=t, available_gpus=n, hourly_cost_usd=gpu_hour, idle_power_watts=75.5)
        for t, n in (gpus or {H100: 16}).items()
    )
    return Cluster(
        name=name,
        region=region or name,
        pue=pue,
        offerings=offerings,
        labels=dict(labels or {}),
        reachable=reachable,
    )


def flat_prices(usd_per_kwh: float, hours: int = 24, *, stale: bool = False) -> PriceHorizon:
    return hourly_prices([usd_per_kwh] * hours, stale=stale)


def hourly_prices(values: Sequence[float], *, stale: bool = False) -> PriceHorizon:
    return PriceHorizon(
        tuple(EnergyPrice(NOW + timedelta(hours=h), NOW + timedelta(hours=h + 1), v) for h, v in enumerate(values)),
        stale=stale,
    )


def snapshot(
    deployments: Sequence[Deployment],
    clusters: Sequence[Cluster],
    prices: Mapping[str, PriceHorizon],
    profiles: Sequence[PerformanceModel] = (H100_MODEL, A100_MODEL),
) -> Snapshot:
    return Snapshot(
        now=NOW, deployments=tuple(deployments), clusters=tuple(clusters), profiles=tuple(profiles), prices=dict(prices)
    )


def fitted_measured_model() -> PerformanceModel:
    return fit_performance_model(measured_points(), model=MODEL, gpu_type=H100, prefill_tokens_per_s=19148.0)
