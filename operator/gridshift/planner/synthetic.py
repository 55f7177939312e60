"""Random but realistic snapshots, for the planner benchmark and tests (seeded, no I/O).

GPU types other than the profiled one get a profile scaled from it by published ratios: decode is
memory-bound, so step time scales with HBM bandwidth (A100-80GB 2.0 TB/s, H100 3.35, B200 8.0,
L40S 0.86 TB/s), and power with board power (400, 700, 1000, 350 W).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np

from gridshift.modes import MigrationMode
from gridshift.planner import snapshot as S
from gridshift.planner.capacity import CapacityInputs, capacity_requests_per_second
from gridshift.planner.profiles import GPU_PRODUCT_LABELS, PerformanceModel
from gridshift.planner.settings import PlannerSettings

SYNTHETIC_HEADROOM = 0.2
"""Demand headroom of every synthetic deployment (InferenceDeployment's default)."""

# label -> (HBM TB/s, board W, typical marginal USD per GPU-hour, idle W)
GPU_TRAITS: dict[str, tuple[float, float, float, float]] = {
    GPU_PRODUCT_LABELS["H100"]: (3.35, 700.0, 2.5, 75.5),
    GPU_PRODUCT_LABELS["A100-80GB"]: (2.0, 400.0, 1.5, 55.0),
    GPU_PRODUCT_LABELS["B200"]: (8.0, 1000.0, 5.0, 140.0),
    GPU_PRODUCT_LABELS["L40S"]: (0.86, 350.0, 0.9, 35.0),
}
REGIONS = (
    "eu-de",
    "eu-fr",
    "eu-es",
    "eu-nl",
    "eu-se",
    "us-tx",
    "us-ca",
    "us-va",
    "us-ny",
    "ca-on",
    "au-nsw",
    "jp-tk",
    "sg",
    "eu-ch",
    "eu-at",
    "eu-pl",
)


def scaled_model(base: PerformanceModel, gpu_type: str) -> PerformanceModel:
    """A profile of the same model on another GPU type, scaled by bandwidth and board power."""
    if base.gpu_type == gpu_type:
        return base
    base_bw, base_w, _, _ = GPU_TRAITS[base.gpu_type]
    bw, watts, _, _ = GPU_TRAITS[gpu_type]
    speed = base_bw / bw
    power = watts / base_w
    return replace(
        base,
        gpu_type=gpu_type,
        step_base_ms=base.step_base_ms * speed,
        step_ms_per_kv_position=base.step_ms_per_kv_position * speed,
        step_ms_per_sequence=base.step_ms_per_sequence * speed,
        power_base_watts=base.power_base_watts * power,
        power_watts_per_sequence=base.power_watts_per_sequence * power,
        power_watts_per_log_batch=base.power_watts_per_log_batch * power,
        power_cap_watts=base.power_cap_watts * power,
        idle_power_watts=base.idle_power_watts * power,
        prefill_tokens_per_s=base.prefill_tokens_per_s / speed,
        # The base's KV-memory bound is its own GPU's memory; GPU_TRAITS carries none for the other type.
        kv_memory=None,
    )


def _price_series(rng: np.random.Generator, now: datetime, hours: int) -> S.PriceHorizon:
    base = rng.uniform(0.03, 0.25)
    swing = rng.uniform(0.1, 0.6) * base
    phase = rng.uniform(0, 24)
    intervals = []
    for hour in range(hours):
        price = base + swing * math.sin(2 * math.pi * (hour + phase) / 24) + rng.normal(0, 0.1 * base)
        if rng.random() < 0.02:
            price = -abs(price)
        start = now + timedelta(hours=hour)
        intervals.append(S.EnergyPrice(start, start + timedelta(hours=1), round(float(price), 5), forecast=hour >= 12))
    return S.PriceHorizon(tuple(intervals), stale=False)


INVENTORY_FLOOR_GPUS = 8
"""The fewest GPUs a synthetic cluster offers of one type before its random draw (x0.5-1.5): a pool
holds at least one replica of the largest models (8 GPUs). At few deployments the floor, not the
requested occupancy, sizes the inventory: `SyntheticInstance.floor_binds`."""


@dataclass(frozen=True)
class SyntheticInstance:
    """A random snapshot with what sized its inventory, so that a benchmark can say how tight it is."""

    snapshot: S.Snapshot
    gpus_needed: int
    """GPUs the deployments need on their best accepted type (at least minReplicas each)."""
    gpus_offered: int
    """GPUs in the snapshot's inventory, every cluster and type together."""
    floor_binds: bool
    """True where INVENTORY_FLOOR_GPUS, not the occupancy asked for, sized the pools."""

    @property
    def effective_occupancy(self) -> float:
        """GPUs needed over GPUs offered: the occupancy the instance has (the random draws and the
        floor move it away from the one asked for)."""
        return self.gpus_needed / self.gpus_offered if self.gpus_offered else math.inf


def random_snapshot(
    base_models: Sequence[PerformanceModel],
    *,
    deployments: int,
    clusters: int,
    gpu_types: int,
    seed: int = 0,
    now: datetime = datetime(2024, 6, 1, 12, 0),
    horizon_hours: int = 24,
    occupancy: float = 0.6,
) -> S.Snapshot:
    """A snapshot whose total demand fills about `occupancy` of the GPU inventory.

    The draws come in a fixed order (deployments, then clusters and prices, then placements), so a
    seed always gives the same snapshot."""
    return random_instance(
        base_models,
        deployments=deployments,
        clusters=clusters,
        gpu_types=gpu_types,
        seed=seed,
        now=now,
        horizon_hours=horizon_hours,
        occupancy=occupancy,
    ).snapshot


MIN_OCCUPANCY = 1e-3
"""Least share of the inventory a random instance's demand is sized to fill: below it, the inventory is sized
for this share (bench planner refuses a --tightness below it)."""


def random_instance(
    base_models: Sequence[PerformanceModel],
    *,
    deployments: int,
    clusters: int,
    gpu_types: int,
    seed: int = 0,
    now: datetime = datetime(2024, 6, 1, 12, 0),
    horizon_hours: int = 24,
    occupancy: float = 0.6,
) -> SyntheticInstance:
    """random_snapshot's snapshot with the GPUs needed and offered."""
    if not base_models:
        raise ValueError("base_models: need at least one performance model")
    if not 1 <= gpu_types <= len(GPU_TRAITS):
        raise ValueError(f"gpu_types must be within 1..{len(GPU_TRAITS)}, got {gpu_types}")
    rng = np.random.default_rng(seed)
    types = list(GPU_TRAITS)[:gpu_types]
    profiles = _scaled_profiles(base_models, types)
    usable = sorted({(m.model, m.gpus_per_replica) for m in profiles.values()})
    if not usable:
        raise ValueError("base_models: none is on a GPU type the synthetic snapshot knows")
    specs = [_deployment_draw(rng, index, usable, types, clusters) for index in range(deployments)]
    gpus_needed = _servable(specs, profiles)
    sized = int(gpus_needed / max(occupancy, MIN_OCCUPANCY) / (clusters * gpu_types))
    per_offering = max(INVENTORY_FLOOR_GPUS, sized)
    cluster_list, prices = _clusters(rng, clusters, types, per_offering, now, horizon_hours)
    snapshot = S.Snapshot(
        now=now,
        deployments=tuple(_deployments(rng, specs, cluster_list)),
        clusters=tuple(cluster_list),
        profiles=tuple(profiles.values()),
        prices=prices,
    )
    offered = sum(o.available_gpus for c in cluster_list for o in c.offerings)
    return SyntheticInstance(snapshot, gpus_needed, offered, floor_binds=sized < INVENTORY_FLOOR_GPUS)


def _scaled_profiles(
    base_models: Sequence[PerformanceModel], types: Sequence[str]
) -> dict[tuple[str, str, int], PerformanceModel]:
    profiles: dict[tuple[str, str, int], PerformanceModel] = {}
    for base in base_models:
        # Scale measured profiles only: scaling a scaled one compounds two estimates.
        if base.gpu_type not in GPU_TRAITS or base.scaled:
            continue
        for gpu_type in types:
            model = scaled_model(base, gpu_type)
            profiles.setdefault((model.model, model.gpu_type, model.gpus_per_replica), model)
    return profiles


def _deployment_draw(
    rng: np.random.Generator, index: int, usable: Sequence[tuple[str, int]], types: Sequence[str], clusters: int
) -> tuple[S.Requirements, S.ObservedDemand]:
    model_name, gpus = usable[int(rng.integers(len(usable)))]
    accepted = sorted(rng.choice(types, size=int(rng.integers(1, len(types) + 1)), replace=False).tolist())
    min_replicas = int(rng.integers(1, 3))
    min_regions = int(rng.integers(1, 3)) if clusters > 1 else 1
    # Keyword arguments are evaluated in order: the draws keep the order of the seeded snapshots.
    spec = S.Requirements(
        model_names=(model_name, f"m{index}"),
        gpu_types=tuple(accepted),
        gpus_per_replica=gpus,
        ttft_slo_ms=float(rng.choice([1000, 2000, 3000, 5000])),
        tpot_slo_ms=float(rng.choice([50, 75, 100, 150])),
        min_replicas=min_replicas,
        max_replicas=int(rng.integers(max(4, min_regions), 33)),
        min_regions=min_regions,
        mode=MigrationMode.AUTO,
        max_concurrent_moves=int(rng.integers(1, 4)),
        payback_horizon_hours=float(rng.choice([2, 6, 12, 24])),
        mean_prompt_tokens=1000.0,
        mean_output_tokens=250.0,
        headroom=SYNTHETIC_HEADROOM,
    )
    rate = float(rng.lognormal(mean=0.5, sigma=1.0))
    prompt = float(rng.uniform(200, 2000))
    output = float(rng.uniform(100, 500))
    return spec, S.ObservedDemand(rate, prompt, output)


def _servable(
    specs: list[tuple[S.Requirements, S.ObservedDemand]], profiles: dict[tuple[str, str, int], PerformanceModel]
) -> int:
    """Make every deployment servable on its best accepted GPU type (in place), and return the GPUs
    they need there: the inventory is sized from it."""
    pairs = [(i, g) for i, (spec, _) in enumerate(specs) for g in spec.gpu_types]
    models = [profiles[(specs[i][0].model_names[0], g, specs[i][0].gpus_per_replica)] for i, g in pairs]
    inputs = CapacityInputs.of(
        models,
        [specs[i][1].mean_prompt_tokens or 1000.0 for i, _ in pairs],
        [specs[i][1].mean_output_tokens or 250.0 for i, _ in pairs],
        [specs[i][0].tpot_slo_ms for i, _ in pairs],
        [specs[i][0].ttft_slo_ms for i, _ in pairs],
    )
    rates = capacity_requests_per_second(inputs, PlannerSettings())
    best_rate = [0.0] * len(specs)
    for (i, _), rate in zip(pairs, rates, strict=True):
        best_rate[i] = max(best_rate[i], float(rate))
    gpus_needed = 0
    for i, (spec, demand) in enumerate(specs):
        if best_rate[i] <= 0:
            # Keep every synthetic deployment servable: relax an SLO the chosen GPUs cannot meet.
            specs[i] = (replace(spec, ttft_slo_ms=30000.0, tpot_slo_ms=500.0), demand)
            best_rate[i] = demand.requests_per_second or 1.0
        needed = math.ceil((demand.requests_per_second or 0.0) * 1.2 / best_rate[i])
        if needed > spec.max_replicas // 2:
            # Users size maxReplicas above their demand; keep twice the need as the cap.
            specs[i] = (replace(specs[i][0], max_replicas=min(10_000, 2 * needed)), demand)
        gpus_needed += spec.gpus_per_replica * max(spec.min_replicas, needed)
    return gpus_needed


def _clusters(
    rng: np.random.Generator,
    clusters: int,
    types: Sequence[str],
    per_offering: int,
    now: datetime,
    horizon_hours: int,
) -> tuple[list[S.Cluster], dict[str, S.PriceHorizon]]:
    cluster_list = []
    prices = {}
    for index in range(clusters):
        region = REGIONS[index % len(REGIONS)] + ("" if index < len(REGIONS) else f"-{index // len(REGIONS)}")
        offerings = []
        for gpu_type in types:
            _, _, cost, idle = GPU_TRAITS[gpu_type]
            offerings.append(
                S.Offering(
                    gpu_type=gpu_type,
                    available_gpus=int(per_offering * rng.uniform(0.5, 1.5)),
                    hourly_cost_usd=round(float(cost * rng.uniform(0.0, 1.2)), 3),
                    idle_power_watts=idle,
                )
            )
        name = f"c{index:02d}-{region}"
        cluster_list.append(
            S.Cluster(name=name, region=region, pue=round(float(rng.uniform(1.1, 1.5)), 2), offerings=tuple(offerings))
        )
        prices[name] = _price_series(rng, now, horizon_hours)
    return cluster_list, prices


def _deployments(
    rng: np.random.Generator, specs: list[tuple[S.Requirements, S.ObservedDemand]], cluster_list: list[S.Cluster]
) -> list[S.Deployment]:
    """The deployments, each running a few replicas somewhere already."""
    deployment_list = []
    for index, (spec, demand) in enumerate(specs):
        placements: list[S.Placement] = []
        for _ in range(int(rng.integers(0, 3))):
            cluster = cluster_list[int(rng.integers(len(cluster_list)))]
            gpu_type = spec.gpu_types[int(rng.integers(len(spec.gpu_types)))]
            if all(p.cluster != cluster.name or p.gpu_type != gpu_type for p in placements):
                count = int(rng.integers(1, 4))
                placements.append(S.Placement(cluster.name, gpu_type, count, count))
        deployment_list.append(
            S.Deployment(
                namespace="bench", name=f"d{index:05d}", requirements=spec, placements=tuple(placements), demand=demand
            )
        )
    return deployment_list


def with_synthetic_carbon(snapshot: S.Snapshot, usd_per_tonne: float, *, seed: int, hours: int = 48) -> S.Snapshot:
    """`snapshot` with an hourly carbon horizon per cluster and every deployment pricing carbon at
    `usd_per_tonne` (gridshift bench planner --carbon-price).

    Each cluster's mean intensity is drawn from 30..700 gCO2/kWh (the 2024 range of shared/data/carbon-2024's
    zones, CA-ON to AU-NSW life-cycle), each hour within +-30% of it. Drawn from a generator of its own, so
    the snapshot's other draws (random_snapshot) are those of the seed without carbon."""
    rng = np.random.default_rng([seed, 19])
    start = snapshot.now.replace(minute=0, second=0, microsecond=0)
    carbon = {}
    for cluster in snapshot.clusters:
        mean = rng.uniform(30.0, 700.0)
        values = mean * rng.uniform(0.7, 1.3, size=hours)
        carbon[cluster.name] = S.CarbonHorizon(
            tuple(
                S.CarbonIntensity(start + timedelta(hours=h), start + timedelta(hours=h + 1), float(v))
                for h, v in enumerate(values)
            )
        )
    deployments = tuple(
        replace(d, requirements=replace(d.requirements, carbon_price_usd_per_tonne=usd_per_tonne))
        for d in snapshot.deployments
    )
    return replace(snapshot, deployments=deployments, carbon=carbon)
