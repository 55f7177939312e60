"""Workloads whose cheapest fleet mixes GPU types by request size, for `gridshift bench mix` and tests.

One deployment of Llama-3.1-8B on one cluster that offers four GPU types; its demand is a histogram
over prompt x output buckets. The sizes come from the Azure LLM inference trace 2023 (conversation:
short prompts; code: long prompts; mixed: both), bucketed by the bucket edges vLLM's own
`vllm:request_prompt_tokens` / `vllm:request_generation_tokens` histograms use (1-2-5 steps), and
the rates span 1-64 requests/s. Profiles are the shipped GPUProfiles (measured or scaled, see
gridshift/data/profiles/README.md).
Everything here is pure: the caller passes the trace rows, the prices and the profiles in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from gridshift.modes import MigrationMode
from gridshift.planner.profiles import PerformanceModel
from gridshift.planner.snapshot import (
    Cluster,
    Deployment,
    EnergyPrice,
    ObservedDemand,
    Offering,
    PriceHorizon,
    RequestClass,
    Requirements,
    Snapshot,
)

MIX_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
MIX_PUE = 1.0
"""PUE of the bench's one cluster: the electricity price is the GPUs' own energy cost."""
MIX_RATES = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
"""Requests/s of the generated workloads (issue 21: 1-64)."""
MIX_SIZES = ("short", "long", "mixed")
VLLM_TOKEN_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0)
"""Upper edges of vLLM's request_prompt_tokens / request_generation_tokens histograms (1-2-5 steps;
the scrapes in shared/data/metrics-scrapes stop at 5000 for a small model's context, larger models
add 10000 and up)."""


@dataclass(frozen=True)
class GpuOffer:
    """A GPU type of the bench and its public hourly price per GPU."""

    gpu_type: str
    usd_per_hour: float
    source: str
    """Where the price comes from."""


@dataclass(frozen=True)
class MixWorkload:
    """One generated workload: a rate and a size histogram."""

    name: str
    requests_per_second: float
    classes: tuple[RequestClass, ...]


def bucket_classes(rows: Sequence[tuple[float, float]], *, max_classes: int = 8) -> tuple[RequestClass, ...]:
    """Prompt x output classes of trace rows (prompt, output tokens): each row counted in the
    (prompt bucket, output bucket) cell of vLLM's edges, the cell's mean sizes kept; the
    `max_classes` most frequent cells stay and the rest join the nearest kept cell."""
    cells: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for prompt, output in rows:
        cells.setdefault((_bucket(prompt), _bucket(output)), []).append((prompt, output))
    kept = sorted(cells, key=lambda k: (-len(cells[k]), k))[:max_classes]
    merged = {k: list(cells[k]) for k in kept}
    for key, members in cells.items():
        if key not in merged:
            nearest = min(kept, key=lambda k: (abs(k[0] - key[0]) + abs(k[1] - key[1]), k))
            merged[nearest].extend(members)
    total = sum(len(m) for m in merged.values())
    classes = []
    for key, members in sorted(merged.items()):
        prompts = np.asarray([p for p, _ in members])
        mean = float(prompts.mean())
        classes.append(
            RequestClass(
                name=f"p{int(VLLM_TOKEN_BUCKETS[key[0]])}-o{int(VLLM_TOKEN_BUCKETS[key[1]])}",
                prompt_tokens=mean,
                output_tokens=float(np.mean([o for _, o in members])),
                share=len(members) / total,
                prompt_p95_tokens=float(np.percentile(prompts, 95)),
                prompt_scv=float(prompts.var() / mean**2),
            )
        )
    return tuple(classes)


def _bucket(tokens: float) -> int:
    for index, edge in enumerate(VLLM_TOKEN_BUCKETS):
        if tokens <= edge:
            return index
    return len(VLLM_TOKEN_BUCKETS) - 1


def mix_workloads(
    conversation: Sequence[tuple[float, float]], code: Sequence[tuple[float, float]]
) -> tuple[MixWorkload, ...]:
    """Rates x sizes: short (the conversation trace), long (the code trace's prompts of 1000 tokens
    and more), mixed (both traces together)."""
    long_rows = [r for r in code if r[0] >= 1000]
    sizes = {
        "short": bucket_classes(conversation),
        "long": bucket_classes(long_rows),
        "mixed": bucket_classes([*conversation, *code]),
    }
    return tuple(MixWorkload(f"{size}-{rate:g}rps", rate, sizes[size]) for size in MIX_SIZES for rate in MIX_RATES)


def mix_profiles(shipped: Sequence[PerformanceModel], offers: Sequence[GpuOffer]) -> dict[str, PerformanceModel]:
    """The shipped profile of MIX_MODEL (one GPU per replica) on each offered GPU type."""
    own = {m.gpu_type: m for m in shipped if m.model == MIX_MODEL and m.gpus_per_replica == 1}
    missing = [o.gpu_type for o in offers if o.gpu_type not in own]
    if missing:
        raise ValueError(f"no shipped GPUProfile of {MIX_MODEL} on {', '.join(missing)}")
    return {o.gpu_type: own[o.gpu_type] for o in offers}


def mix_snapshot(
    workload: MixWorkload,
    offers: Sequence[GpuOffer],
    profiles: Mapping[str, PerformanceModel],
    *,
    usd_per_kwh: float = 0.10,
    ttft_slo_ms: float = 2000.0,
    tpot_slo_ms: float = 100.0,
    gpu_types: Sequence[str] | None = None,
    by_class: bool = True,
    now: datetime = datetime(2024, 6, 1, 12, 0),
) -> Snapshot:
    """The workload as a one-cluster snapshot (inventory ample, a flat price): `gpu_types` limits the
    accepted types (the single-type baselines); `by_class` False plans at the mean size instead."""
    types = tuple(gpu_types) if gpu_types is not None else tuple(o.gpu_type for o in offers)
    rate = workload.requests_per_second
    biggest = max(math.ceil(rate * 4), 64)
    prompt = math.fsum(c.share * c.prompt_tokens for c in workload.classes)
    output = math.fsum(c.share * c.output_tokens for c in workload.classes)
    requirements = Requirements(
        model_names=(MIX_MODEL,),
        gpu_types=types,
        gpus_per_replica=1,
        ttft_slo_ms=ttft_slo_ms,
        tpot_slo_ms=tpot_slo_ms,
        min_replicas=1,
        max_replicas=biggest,
        min_regions=1,
        mode=MigrationMode.AUTO,
        max_concurrent_moves=biggest,
        payback_horizon_hours=24.0,
        mean_prompt_tokens=prompt,
        mean_output_tokens=output,
        headroom=0.0,
        static_requests_per_second=rate,
        request_classes=workload.classes if by_class else (),
    )
    cluster = Cluster(
        name="bench",
        region="us-east",
        pue=MIX_PUE,
        offerings=tuple(
            Offering(o.gpu_type, biggest, o.usd_per_hour, profiles[o.gpu_type].idle_power_watts) for o in offers
        ),
    )
    price = PriceHorizon((EnergyPrice(now, now + timedelta(hours=48), usd_per_kwh),))
    return Snapshot(
        now=now,
        deployments=(Deployment("bench", workload.name, requirements, demand=ObservedDemand()),),
        clusters=(cluster,),
        profiles=tuple(profiles[t] for t in types),
        prices={"bench": price},
    )


MIX_GPU_TYPES = ("NVIDIA-L4", "NVIDIA-A10G", "NVIDIA-A100-SXM4-80GB", "NVIDIA-H100-80GB-HBM3")
"""The bench's four GPU types (Mélange's set): prices from the shipped list-price snapshot
(gridshift/data/gpu_prices.yaml), profiles from the shipped GPUProfiles."""
