"""A continuous-batching simulation of one replica, to check the planner's latency model against.

The engine is stepped as vLLM's scheduler steps it: every step decodes one token for each running
sequence and, with chunked prefill, also prefills up to `prefill_chunk_tokens` prompt tokens of the
waiting requests in arrival order. A step takes the profile's decode time for the running batch and
its KV positions, plus the chunk's tokens at the prefill rate. A request's first token comes at the
end of the step that finishes its prompt; then it decodes one token per step until its output length.

Requests are a real trace's (arrival times, prompt and output lengths), with the arrival times scaled
so that the mean rate is the one asked for. TTFT p95 is over requests; TPOT p95 over inter-token
intervals (as vLLM's inter-token-latency histogram counts them).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridshift.arrays import FloatArray
from gridshift.planner.profiles import PerformanceModel


@dataclass(frozen=True)
class ReplicaRun:
    """Latency of one replica driven by a trace at one request rate."""

    requests_per_second: float
    requests: int
    ttft_p95_ms: float
    tpot_p95_ms: float
    mean_batch: float
    stable: bool
    """False when requests still waited at the end far beyond the SLO scale (the replica fell behind)."""


def _weighted_quantile(values: FloatArray, weights: FloatArray, quantile: float) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    index = int(np.searchsorted(cumulative, quantile * cumulative[-1]))
    return float(values[order][min(index, len(order) - 1)])


@dataclass(frozen=True)
class _Requests:
    """The requests of one run, in arrival order: arrival times (s), prompt and output lengths (tokens)."""

    arrivals: FloatArray
    prompts: npt.NDArray[np.int64]
    outputs: npt.NDArray[np.int64]


def _scheduled_requests(
    arrival_seconds: FloatArray,
    prompt_tokens: npt.NDArray[np.int64],
    output_tokens: npt.NDArray[np.int64],
    requests_per_second: float,
    duration_seconds: float,
    poisson_seed: int | None,
) -> _Requests:
    """The run's requests: the trace scaled to the rate (or seeded Poisson arrivals), cycled until
    `duration_seconds`."""
    if poisson_seed is not None:
        gaps = np.random.default_rng(poisson_seed).exponential(1.0 / requests_per_second, len(arrival_seconds))
        scaled = np.cumsum(gaps) - gaps[0]
    else:
        trace_rate = len(arrival_seconds) / max(float(arrival_seconds[-1] - arrival_seconds[0]), 1e-9)
        scaled = (arrival_seconds - arrival_seconds[0]) * (trace_rate / requests_per_second)
    # Cycle the trace if the run is longer than the scaled trace.
    span = float(scaled[-1]) + 1.0 / requests_per_second
    repeats = int(np.ceil(duration_seconds / span)) if span > 0 else 1
    arrivals = np.concatenate([scaled + k * span for k in range(repeats)])
    prompts = np.tile(prompt_tokens, repeats)
    outputs = np.maximum(np.tile(output_tokens, repeats), 1)
    keep = arrivals < duration_seconds
    return _Requests(arrivals[keep], prompts[keep], outputs[keep])


@dataclass
class _Engine:
    """What the stepped engine records: each request's first-token time and every step's inter-token
    interval with the sequences it served."""

    first_token: FloatArray
    itl_values: list[float]
    itl_weights: list[int]
    batch_time: float = 0.0
    busy_time: float = 0.0


def _prefill_chunk(waiting: deque[int], prefill_left: dict[int, int], budget: int, room: int) -> tuple[int, list[int]]:
    """Hand the step's prefill budget to waiting prompts in arrival order while the batch has `room`:
    the tokens prefilled and the requests whose prompt is done."""
    chunk = 0
    finished_prefill: list[int] = []
    for request in waiting:
        if budget <= 0 or len(finished_prefill) >= room:
            break
        take = min(budget, prefill_left[request])
        prefill_left[request] -= take
        budget -= take
        chunk += take
        if prefill_left[request] == 0:
            finished_prefill.append(request)
    return chunk, finished_prefill


def _run_engine(
    model: PerformanceModel, requests: _Requests, prefill_chunk_tokens: int, duration_seconds: float
) -> _Engine:
    """Step the engine (module docstring) until `duration_seconds` or until every request is done."""
    arrivals, prompts, outputs = requests.arrivals, requests.prompts, requests.outputs
    per_kv_s = model.step_ms_per_kv_position / 1000.0
    per_sequence_s = model.step_ms_per_sequence / 1000.0
    base_s = model.step_base_ms / 1000.0
    prefill_rate = model.prefill_tokens_per_s
    max_batch = model.max_batch

    clock = 0.0
    next_arrival = 0
    waiting: deque[int] = deque()
    prefill_left: dict[int, int] = {}
    running_ids: list[int] = []
    running_context: list[int] = []
    running_left: list[int] = []
    engine = _Engine(np.full(len(arrivals), np.nan), [], [])
    count = len(arrivals)
    while clock < duration_seconds:
        while next_arrival < count and arrivals[next_arrival] <= clock:
            waiting.append(next_arrival)
            prefill_left[next_arrival] = int(prompts[next_arrival])
            next_arrival += 1
        if not waiting and not running_ids:
            if next_arrival >= count:
                break
            clock = float(arrivals[next_arrival])
            continue
        chunk, finished_prefill = _prefill_chunk(
            waiting, prefill_left, prefill_chunk_tokens, max_batch - len(running_ids)
        )
        batch = len(running_ids)
        kv_positions = sum(running_context)
        step = base_s + per_kv_s * kv_positions + per_sequence_s * batch if batch else base_s
        step += chunk / prefill_rate
        clock += step
        engine.busy_time += step
        engine.batch_time += batch * step
        if batch:
            engine.itl_values.append(step)
            engine.itl_weights.append(batch)
        # Decode: every running sequence got one token this step.
        survivors_ids, survivors_context, survivors_left = [], [], []
        for request, context, left in zip(running_ids, running_context, running_left, strict=True):
            if left > 1:
                survivors_ids.append(request)
                survivors_context.append(context + 1)
                survivors_left.append(left - 1)
        running_ids, running_context, running_left = survivors_ids, survivors_context, survivors_left
        for request in finished_prefill:
            waiting.popleft()
            del prefill_left[request]
            engine.first_token[request] = clock
            if outputs[request] > 1:
                running_ids.append(request)
                running_context.append(int(prompts[request]) + 1)
                running_left.append(int(outputs[request]) - 1)
    return engine


def simulate_replica(
    model: PerformanceModel,
    arrival_seconds: FloatArray,
    prompt_tokens: npt.NDArray[np.int64],
    output_tokens: npt.NDArray[np.int64],
    *,
    requests_per_second: float,
    prefill_chunk_tokens: int = 512,
    duration_seconds: float = 900.0,
    warmup_seconds: float = 120.0,
    quantile: float = 0.95,
    poisson_seed: int | None = None,
) -> ReplicaRun:
    """Step the engine through the trace's requests arriving at `requests_per_second` on average.

    With `poisson_seed`, arrivals are a seeded Poisson process instead of the trace's own times (the
    lengths stay the trace's): the planner's model assumes Poisson arrivals, real traces are burstier.
    """
    if requests_per_second <= 0:
        raise ValueError(f"requests_per_second must be > 0, got {requests_per_second}")
    requests = _scheduled_requests(
        arrival_seconds, prompt_tokens, output_tokens, requests_per_second, duration_seconds, poisson_seed
    )
    engine = _run_engine(model, requests, prefill_chunk_tokens, duration_seconds)
    arrivals = requests.arrivals
    measured = (arrivals >= warmup_seconds) & (arrivals < duration_seconds)
    ttft = engine.first_token[measured] - arrivals[measured]
    unfinished = np.isnan(ttft)
    # Requests that never got a first token waited at least until the end of the run.
    ttft = np.where(unfinished, duration_seconds - arrivals[measured], ttft)
    stable = bool(unfinished.mean() < 0.05) if len(ttft) else True
    ttft_p95 = float(np.quantile(ttft, quantile)) if len(ttft) else float("nan")
    tpot_p95 = (
        _weighted_quantile(np.asarray(engine.itl_values), np.asarray(engine.itl_weights, dtype=np.float64), quantile)
        if engine.itl_values
        else float("nan")
    )
    return ReplicaRun(
        requests_per_second=requests_per_second,
        requests=int(measured.sum()),
        ttft_p95_ms=ttft_p95 * 1000.0,
        tpot_p95_ms=tpot_p95 * 1000.0,
        mean_batch=engine.batch_time / engine.busy_time if engine.busy_time > 0 else 0.0,
        stable=stable,
    )
