"""SLO capacity of one replica: the largest output-token rate it sustains within p95 TTFT and TPOT.

The model (docs/planner.md derives it) for a replica receiving Poisson requests at rate lam with
mean prompt P and output O tokens, decode step s(B) = a + g*B with g = b*ctx + c, ctx = P + O/2:

- Prefill takes a share rho_pf = lam*P/R_pf of engine time (R_pf: prefill tokens/s), decode the rest.
  Little's law on decoding sequences, lam*O*s(B) = B*(1 - rho_pf), gives the batch in closed form:
  B = lam*O*a / (1 - rho_pf - lam*O*g).
- Inter-token time: a step takes s(B); a step that also carries a prefill chunk takes
  s(B) + min(C, P)/R_pf. The fraction of steps carrying a chunk is f = lam*ceil(P/C)*s/(1-rho_pf);
  when f exceeds 1 - q the q-quantile (p95) TPOT includes the chunk.
- TTFT: prompts queue for the prefill channel, which moves C prompt tokens per step, so a prompt of
  P tokens needs P*(s/C + 1/R_pf) seconds. Kingman's G/G/1 mean wait with an exponential tail
  gives the q-quantile wait; TTFT_q = wait_q + ceil(Pq/C)*s + Pq/R_pf for the q-quantile prompt Pq.
  Kingman's (c_a^2 + c_s^2) is the index of dispersion of the prompt work arriving for renewal
  arrivals with independent sizes; real traffic is not renewal (the Azure code trace's inter-arrivals
  have c_a^2 near 1, yet its long prompts come in clumps), so a pair may carry the index measured from
  its traffic (`work_dispersion`, gridshift.simulation.requests.measure) and its measured p95 prompt;
  without them the settings' defaults apply (Poisson arrivals, the Azure traces' prompt tail).

- Batch limit: the batch B may not exceed the profile's largest measured batch, nor what the KV cache
  holds when each sequence reaches P + O positions (gridshift.planner.kvmemory derives it from GPU
  memory, weights and KV bytes per token). On a 24 GB GPU with long contexts the KV cache binds long
  before compute: Llama-3.1-8B on an L4 holds 15 sequences of 2,048 positions, so capacity there is
  at most 15 / (O x s(15)) requests/s whatever the SLO. Profiles without a known GPU memory or model
  architecture keep the profile's limit alone.

Every term rises with lam, so the capacity is found by bisection, vectorised over many
(deployment, GPU type) pairs at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from gridshift.planner.profiles import PerformanceModel
from gridshift.planner.settings import PlannerSettings

FloatArray = npt.NDArray[np.float64]

_BISECTION_STEPS = 60


class CapacityLimit(StrEnum):
    """What stops a replica from taking more load."""

    TPOT = "TPOT"
    TTFT = "TTFT"
    MAX_BATCH = "MaxBatch"
    KV_MEMORY = "KVMemory"
    """The batch the KV cache holds at the deployment's prompt + output length (below the profile's)."""
    UNREACHABLE_SLO = "SLOUnreachable"


@dataclass(frozen=True)
class ReplicaCapacity:
    """A replica at its SLO capacity."""

    requests_per_second: float
    output_tokens_per_second: float
    batch: float
    step_time_ms: float
    tpot_p95_ms: float
    ttft_p95_ms: float
    power_watts: float
    limit: CapacityLimit


@dataclass(frozen=True)
class OperatingPoint:
    """A replica at a given request rate."""

    batch: float
    step_time_ms: float
    tpot_p95_ms: float
    ttft_p95_ms: float
    power_watts: float
    feasible: bool


@dataclass(frozen=True)
class _Latency:
    batch: FloatArray
    step_s: FloatArray
    tpot_s: FloatArray
    ttft_s: FloatArray
    stable: npt.NDArray[np.bool_]


@dataclass(frozen=True)
class CapacityInputs:
    """Column arrays, one entry per (workload, performance model) pair."""

    step_base_ms: FloatArray
    step_ms_per_kv_position: FloatArray
    step_ms_per_sequence: FloatArray
    prefill_tokens_per_s: FloatArray
    max_batch: FloatArray
    """Largest batch per pair: the profile's, lowered to the KV-memory limit (PerformanceModel.batch_limit)."""
    mean_prompt_tokens: FloatArray
    mean_output_tokens: FloatArray
    tpot_slo_ms: FloatArray
    ttft_slo_ms: FloatArray
    prompt_p95_tokens: FloatArray | None = None
    """Measured p95 prompt length; None: mean x settings.prompt_p95_to_mean."""
    work_dispersion: FloatArray | None = None
    """Measured index of dispersion of the prompt work arriving (Kingman's c_a^2 + c_s^2); None:
    settings.arrival_scv + settings.prompt_length_scv."""

    @staticmethod
    def of(
        models: list[PerformanceModel],
        prompt_tokens: list[float],
        output_tokens: list[float],
        tpot_slo_ms: list[float],
        ttft_slo_ms: list[float],
        prompt_p95_tokens: list[float] | None = None,
        work_dispersion: list[float] | None = None,
    ) -> CapacityInputs:
        def column(values: list[float]) -> FloatArray:
            return np.asarray(values, dtype=np.float64)

        return CapacityInputs(
            step_base_ms=column([m.step_base_ms for m in models]),
            step_ms_per_kv_position=column([m.step_ms_per_kv_position for m in models]),
            step_ms_per_sequence=column([m.step_ms_per_sequence for m in models]),
            prefill_tokens_per_s=column([m.prefill_tokens_per_s for m in models]),
            max_batch=column(
                [float(m.batch_limit(p + o)) for m, p, o in zip(models, prompt_tokens, output_tokens, strict=True)]
            ),
            mean_prompt_tokens=column(prompt_tokens),
            mean_output_tokens=column(output_tokens),
            tpot_slo_ms=column(tpot_slo_ms),
            ttft_slo_ms=column(ttft_slo_ms),
            prompt_p95_tokens=None if prompt_p95_tokens is None else column(prompt_p95_tokens),
            work_dispersion=None if work_dispersion is None else column(work_dispersion),
        )


def _latency(inputs: CapacityInputs, rate: FloatArray, settings: PlannerSettings) -> _Latency:
    prompt = inputs.mean_prompt_tokens
    output = inputs.mean_output_tokens
    prefill_rate = inputs.prefill_tokens_per_s
    chunk = float(settings.prefill_chunk_tokens)
    quantile = settings.latency_quantile
    context = prompt + output / 2.0
    base_s = inputs.step_base_ms / 1000.0
    per_sequence_s = (inputs.step_ms_per_kv_position * context + inputs.step_ms_per_sequence) / 1000.0

    prefill_share = rate * prompt / prefill_rate
    decode_room = 1.0 - prefill_share - rate * output * per_sequence_s
    stable = decode_room > 0
    safe_room = np.where(stable, decode_room, 1.0)
    batch = np.where(stable, rate * output * base_s / safe_room, np.inf)
    step_s = base_s + per_sequence_s * np.where(stable, batch, 0.0)

    chunks_per_prompt = np.ceil(prompt / chunk)
    decode_share = np.maximum(1.0 - prefill_share, 1e-12)
    steps_with_prefill = rate * chunks_per_prompt * step_s / decode_share
    chunk_stall_s = np.minimum(chunk, prompt) / prefill_rate
    tpot_s = step_s + np.where(steps_with_prefill > 1.0 - quantile, chunk_stall_s, 0.0)

    service_s = prompt * (step_s / chunk + 1.0 / prefill_rate)
    utilisation = rate * service_s
    stable &= utilisation < 1.0
    safe_util = np.where(stable, utilisation, 0.5)
    dispersion = (
        inputs.work_dispersion
        if inputs.work_dispersion is not None
        else settings.arrival_scv + settings.prompt_length_scv
    )
    mean_wait_s = safe_util / (1.0 - safe_util) * dispersion / 2.0 * service_s
    tail_scale_s = np.where(safe_util > 0, mean_wait_s / np.maximum(safe_util, 1e-300), 0.0)
    wait_q_s = np.where(
        safe_util > 1.0 - quantile,
        tail_scale_s * np.log(np.maximum(safe_util, 1e-300) / (1.0 - quantile)),
        0.0,
    )
    prompt_q = (
        inputs.prompt_p95_tokens if inputs.prompt_p95_tokens is not None else prompt * settings.prompt_p95_to_mean
    )
    own_prefill_s = np.ceil(prompt_q / chunk) * step_s + prompt_q / prefill_rate
    ttft_s = wait_q_s + own_prefill_s
    return _Latency(batch=batch, step_s=step_s, tpot_s=tpot_s, ttft_s=ttft_s, stable=stable)


def _within_slo(inputs: CapacityInputs, rate: FloatArray, settings: PlannerSettings) -> npt.NDArray[np.bool_]:
    latency = _latency(inputs, rate, settings)
    ok: npt.NDArray[np.bool_] = (
        latency.stable
        & (latency.batch <= inputs.max_batch)
        & (latency.tpot_s * 1000.0 <= inputs.tpot_slo_ms)
        & (latency.ttft_s * 1000.0 <= inputs.ttft_slo_ms)
    )
    return ok


def capacity_requests_per_second(inputs: CapacityInputs, settings: PlannerSettings) -> FloatArray:
    """Largest request rate per replica within the SLO, one entry per pair (0 where even one request misses it)."""
    prompt = inputs.mean_prompt_tokens
    output = inputs.mean_output_tokens
    context = prompt + output / 2.0
    per_sequence_s = (inputs.step_ms_per_kv_position * context + inputs.step_ms_per_sequence) / 1000.0
    # Decode room and prefill utilisation both vanish before this rate; no SLO survives it.
    upper = 1.0 / (prompt / inputs.prefill_tokens_per_s + output * per_sequence_s)
    low = np.zeros_like(upper)
    high = upper.copy()
    feasible_at_zero = _within_slo(inputs, np.full_like(upper, 1e-12), settings)
    for _ in range(_BISECTION_STEPS):
        middle = (low + high) / 2.0
        ok = _within_slo(inputs, middle, settings)
        low = np.where(ok, middle, low)
        high = np.where(ok, high, middle)
    result: FloatArray = np.where(feasible_at_zero, low, 0.0)
    return result


def batch_at(inputs: CapacityInputs, rates: FloatArray, settings: PlannerSettings) -> FloatArray:
    """Mean decode batch of each pair at its request rate (inf where the replica cannot keep up)."""
    batch: FloatArray = _latency(inputs, rates, settings).batch
    return batch


def power_at(models: list[PerformanceModel], batch: FloatArray) -> FloatArray:
    """PerformanceModel.power_watts over arrays (idle power where the batch is 0)."""
    base = np.asarray([m.power_base_watts for m in models])
    per_sequence = np.asarray([m.power_watts_per_sequence for m in models])
    per_log = np.asarray([m.power_watts_per_log_batch for m in models])
    cap = np.asarray([m.power_cap_watts for m in models])
    idle = np.asarray([m.idle_power_watts for m in models])
    finite = np.where(np.isfinite(batch), batch, 0.0)
    active = np.minimum(cap, base + per_sequence * finite + per_log * np.log(np.maximum(finite, 1.0)))
    power: FloatArray = np.where(finite > 0, active, idle)
    return power


def _single(
    model: PerformanceModel,
    prompt: float,
    output: float,
    tpot: float,
    ttft: float,
    prompt_p95: float | None = None,
    dispersion: float | None = None,
) -> CapacityInputs:
    return CapacityInputs.of(
        [model],
        [prompt],
        [output],
        [tpot],
        [ttft],
        None if prompt_p95 is None else [prompt_p95],
        None if dispersion is None else [dispersion],
    )


def operating_point(
    model: PerformanceModel,
    *,
    requests_per_second: float,
    mean_prompt_tokens: float,
    mean_output_tokens: float,
    settings: PlannerSettings,
    prompt_p95_tokens: float | None = None,
    work_dispersion: float | None = None,
) -> OperatingPoint:
    """Batch, latencies and power of one replica at a request rate (latency SLOs not applied)."""
    inputs = _single(
        model, mean_prompt_tokens, mean_output_tokens, math.inf, math.inf, prompt_p95_tokens, work_dispersion
    )
    latency = _latency(inputs, np.asarray([requests_per_second], dtype=np.float64), settings)
    batch = float(latency.batch[0])
    feasible = bool(latency.stable[0]) and batch <= model.batch_limit(mean_prompt_tokens + mean_output_tokens)
    power = model.power_watts(batch) if requests_per_second > 0 and math.isfinite(batch) else model.idle_power_watts
    return OperatingPoint(
        batch=batch,
        step_time_ms=float(latency.step_s[0]) * 1000.0,
        tpot_p95_ms=float(latency.tpot_s[0]) * 1000.0,
        ttft_p95_ms=float(latency.ttft_s[0]) * 1000.0,
        power_watts=power,
        feasible=feasible,
    )


def replica_capacity(
    model: PerformanceModel,
    *,
    mean_prompt_tokens: float,
    mean_output_tokens: float,
    tpot_slo_ms: float,
    ttft_slo_ms: float,
    settings: PlannerSettings,
    prompt_p95_tokens: float | None = None,
    work_dispersion: float | None = None,
) -> ReplicaCapacity:
    """The SLO capacity of one replica and what limits it."""
    inputs = _single(
        model, mean_prompt_tokens, mean_output_tokens, tpot_slo_ms, ttft_slo_ms, prompt_p95_tokens, work_dispersion
    )
    measured = {"prompt_p95_tokens": prompt_p95_tokens, "work_dispersion": work_dispersion}
    rate = float(capacity_requests_per_second(inputs, settings)[0])
    if rate <= 0.0:
        point = operating_point(
            model,
            requests_per_second=1e-12,
            mean_prompt_tokens=mean_prompt_tokens,
            mean_output_tokens=mean_output_tokens,
            settings=settings,
            **measured,
        )
        return ReplicaCapacity(
            0.0,
            0.0,
            0.0,
            point.step_time_ms,
            point.tpot_p95_ms,
            point.ttft_p95_ms,
            model.idle_power_watts,
            CapacityLimit.UNREACHABLE_SLO,
        )
    point = operating_point(
        model,
        requests_per_second=rate,
        mean_prompt_tokens=mean_prompt_tokens,
        mean_output_tokens=mean_output_tokens,
        settings=settings,
        **measured,
    )
    beyond = operating_point(
        model,
        requests_per_second=rate * (1 + 1e-6) + 1e-12,
        mean_prompt_tokens=mean_prompt_tokens,
        mean_output_tokens=mean_output_tokens,
        settings=settings,
        **measured,
    )
    if not beyond.feasible:
        kv_bound = model.batch_limit(mean_prompt_tokens + mean_output_tokens) < model.max_batch
        limit = CapacityLimit.KV_MEMORY if kv_bound else CapacityLimit.MAX_BATCH
    elif beyond.tpot_p95_ms > tpot_slo_ms:
        limit = CapacityLimit.TPOT
    else:
        limit = CapacityLimit.TTFT
    return ReplicaCapacity(
        requests_per_second=rate,
        output_tokens_per_second=rate * mean_output_tokens,
        batch=point.batch,
        step_time_ms=point.step_time_ms,
        tpot_p95_ms=point.tpot_p95_ms,
        ttft_p95_ms=point.ttft_p95_ms,
        power_watts=point.power_watts,
        limit=limit,
    )
