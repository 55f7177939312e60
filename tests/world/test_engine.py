"""The replica batching model against the profile it is built from (no clusters)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from e2e.world import vllm_metrics as vm
from e2e.world.engine import FleetEngine, ReplicaParams
from e2e.world.profiles import ReplicaPerformance
from e2e.world.trace import Arrivals, TraceLoad, load_trace


def _arrivals(times: list[float], prompt: int, output: int) -> Arrivals:
    n = len(times)
    return Arrivals(np.array(times), np.full(n, prompt, dtype=np.int64), np.full(n, output, dtype=np.int64))


def _run(engine: FleetEngine, until: float, dt: float = 0.5, start: float = 0.0, scale: float = 1.0) -> None:
    t = start
    while t < until - 1e-9:
        engine.advance(t, t + dt, counter_scale=scale)
        t += dt


def _mean(engine: FleetEngine, family: vm.HistogramFamily, slot: int) -> float:
    histogram = engine.histograms[family.name]
    return float(histogram.sums[slot] / histogram.counts[slot].sum())


def test_one_request_follows_the_profile(h100: ReplicaPerformance) -> None:
    engine = FleetEngine()
    slot = engine.add_replica("a", ReplicaParams(h100))
    prompt, output = 1024, 100
    engine.enqueue(np.array([slot]), _arrivals([0.3], prompt, output))
    _run(engine, 10.0)
    model = h100.model
    expected_ttft = prompt / model.prefill_tokens_per_s
    assert _mean(engine, vm.TTFT, slot) == pytest.approx(expected_ttft, rel=1e-6)
    # Alone in its batch, every later token takes one decode step at batch 1.
    step = model.step_time_ms(1, prompt + output / 2) / 1000
    assert _mean(engine, vm.ITL, slot) == pytest.approx(step, rel=0.02)
    assert _mean(engine, vm.E2E, slot) == pytest.approx(expected_ttft + (output - 1) * step, rel=0.02)
    assert engine.generation_tokens[slot] == pytest.approx(output)
    assert engine.prompt_tokens[slot] == prompt
    assert engine.requests_finished[slot] == 1
    assert engine.live_requests == 0


def test_batch_fills_to_max_num_seqs_then_requests_wait(h100: ReplicaPerformance) -> None:
    engine = FleetEngine()
    slot = engine.add_replica("a", ReplicaParams(h100, max_num_seqs=8))
    engine.enqueue(np.full(20, slot), _arrivals([0.1] * 20, 128, 2000))
    _run(engine, 2.0)
    assert engine.running[slot] == 8
    assert engine.waiting[slot] == 12
    assert engine.batch[slot] == pytest.approx(8, abs=0.01)
    # Decode at batch 8 runs at the profile's step time for batch 8.
    step = h100.model.step_time_ms(8, 128 + engine.generation_tokens[slot] / 16) / 1000
    before = engine.generation_tokens[slot]
    _run(engine, 3.0, start=2.0)
    assert (engine.generation_tokens[slot] - before) == pytest.approx(8 / step, rel=0.03)


def test_queued_requests_wait_for_a_slot_and_their_ttft_shows_it(h100: ReplicaPerformance) -> None:
    engine = FleetEngine()
    slot = engine.add_replica("a", ReplicaParams(h100, max_num_seqs=1))
    engine.enqueue(np.array([slot, slot]), _arrivals([0.0, 0.0], 100, 200))
    _run(engine, 30.0)
    ttft = engine.histograms[vm.TTFT.name]
    assert ttft.counts[slot].sum() == 2
    # The second request waits for the whole first one (~200 steps): its TTFT is over a second.
    assert ttft.counts[slot][np.searchsorted(ttft.bounds, 1.0) + 1 :].sum() == 1
    queue = engine.histograms[vm.QUEUE.name]
    assert queue.sums[slot] > 1.0


def test_high_batch_energy_per_token_matches_the_profile(h100: ReplicaPerformance) -> None:
    engine = FleetEngine(seed=3)
    slots = np.array([engine.add_replica(f"r{i}", ReplicaParams(h100)) for i in range(4)])
    trace = load_trace("conv")
    load = TraceLoad(trace, rate_per_s=4 * 8.0)
    t, dt = 0.0, 0.5
    batches, energy0, tokens0 = [], 0.0, 0.0
    while t < 900:
        engine.route(slots, np.ones(4), load.arrivals(t, t + dt))
        engine.advance(t, t + dt)
        t += dt
        if t == 300:  # after warm-up
            energy0, tokens0 = engine.energy_j[slots].sum(), engine.generation_tokens[slots].sum()
        if t > 300:
            batches.append(engine.batch[slots].mean())
    measured = (engine.energy_j[slots].sum() - energy0) / (engine.generation_tokens[slots].sum() - tokens0)
    batch = float(np.mean(batches))
    assert batch > 32, "the load should drive a high batch"
    prompt_per_output = trace.prompt_tokens.mean() / trace.output_tokens.mean()
    context = trace.prompt_tokens.mean() + trace.output_tokens.mean() / 2
    expected = h100.joules_per_output_token(batch, context, prompt_per_output)
    assert measured == pytest.approx(expected, rel=0.2)
    # Throughput: tokens per second per replica is the batch divided by the decode step, less prefill time.
    assert engine.power_w[slots].mean() > h100.model.power_watts(1)


def test_counter_scale_scales_counts_not_latencies(h100: ReplicaPerformance) -> None:
    results = []
    for scale in (1.0, 0.01):
        engine = FleetEngine()
        slot = engine.add_replica("a", ReplicaParams(h100))
        engine.enqueue(np.full(5, slot), _arrivals([0.0, 0.2, 0.4, 0.6, 0.8], 500, 50))
        _run(engine, 10.0, scale=scale)
        ttft = engine.histograms[vm.TTFT.name]
        results.append(
            (engine.generation_tokens[slot], ttft.counts[slot].sum(), ttft.sums[slot] / ttft.counts[slot].sum())
        )
    (tokens, count, mean), (scaled_tokens, scaled_count, scaled_mean) = results
    assert scaled_tokens == pytest.approx(tokens * 0.01)
    assert scaled_count == pytest.approx(count * 0.01)
    assert scaled_mean == pytest.approx(mean)


def test_idle_replica_draws_loaded_idle_power(h100: ReplicaPerformance) -> None:
    engine = FleetEngine()
    slot = engine.add_replica("a", ReplicaParams(h100))
    _run(engine, 5.0)
    assert engine.power_w[slot] == pytest.approx(h100.model.idle_power_watts)
    assert engine.energy_j[slot] == pytest.approx(5.0 * h100.model.idle_power_watts)


def test_removing_a_replica_drops_its_requests_and_a_new_one_starts_from_zero(h100: ReplicaPerformance) -> None:
    engine = FleetEngine()
    a = engine.add_replica("a", ReplicaParams(h100))
    b = engine.add_replica("b", ReplicaParams(h100))
    engine.enqueue(np.array([a, b, b]), _arrivals([0.0, 0.0, 0.0], 100, 5000))
    _run(engine, 2.0)
    engine.abandoned[b] = 3.0  # as if clients had given up on it (CLIENT_TIMEOUT_S)
    engine.remove_replica("b")
    assert engine.live_requests == 1
    c = engine.add_replica("c", ReplicaParams(h100))
    assert c == b  # the slot is reused...
    assert engine.generation_tokens[c] == 0  # ...with fresh counters, like a new vLLM process
    assert engine.abandoned[c] == 0 and engine.waiting[c] == 0
    with pytest.raises(ValueError, match="no replica"):
        engine.enqueue(np.array([5]), _arrivals([3.0], 10, 10))


def test_histogram_buckets_are_le(h100: ReplicaPerformance) -> None:
    engine = FleetEngine()
    slot = engine.add_replica("a", ReplicaParams(h100))
    histogram = engine.histograms[vm.E2E.name]
    histogram.observe(np.array([slot, slot]), np.array([0.3, 0.31]), 1.0)
    cumulative = dict(histogram.cumulative(slot))
    assert cumulative["0.3"] == 1
    assert cumulative["0.5"] == 2
    assert cumulative["+Inf"] == 2


def test_bad_params_are_named() -> None:
    with pytest.raises(ValueError, match="max_num_seqs"):
        ReplicaParams(performance=None, max_num_seqs=0)  # type: ignore[arg-type]


def _quantile(histogram_counts: npt.NDArray[np.float64], family: vm.HistogramFamily, q: float) -> float:
    """histogram_quantile as Prometheus computes it: linear within the bucket."""
    cumulative = np.cumsum(histogram_counts) / histogram_counts.sum()
    index = int(np.searchsorted(cumulative, q))
    bounds = [0.0, *family.buckets]
    below = float(cumulative[index - 1]) if index else 0.0
    width = bounds[index + 1] - bounds[index]
    return bounds[index] + width * (q - below) / (float(cumulative[index]) - below)


def _steady_figures(h100: ReplicaPerformance, dt: float) -> dict[str, float]:
    engine = FleetEngine(seed=5)
    slots = np.array([engine.add_replica(f"r{i}", ReplicaParams(h100)) for i in range(2)])
    load = TraceLoad(load_trace("conv"), rate_per_s=12.0)
    t = 0.0
    while t < 1200 - 1e-9:
        engine.route(slots, np.ones(2), load.arrivals(t, t + dt))
        engine.advance(t, t + dt)
        t += dt

    def mean(family: vm.HistogramFamily) -> float:
        histogram = engine.histograms[family.name]
        return float(histogram.sums[slots].sum() / histogram.counts[slots].sum())

    itl = engine.histograms[vm.ITL.name].counts[slots].sum(axis=0)
    return {
        "ttft": mean(vm.TTFT),
        "tpot": mean(vm.TPOT_PER_REQUEST),
        "e2e": mean(vm.E2E),
        "itl_p95": _quantile(itl, vm.ITL, 0.95),
        "joules_per_token": float(engine.energy_j[slots].sum() / engine.generation_tokens[slots].sum()),
    }


@pytest.mark.parametrize(
    ("name", "tolerance"), [("ttft", 0.1), ("tpot", 0.1), ("e2e", 0.1), ("itl_p95", 0.2), ("joules_per_token", 0.05)]
)
def test_step_size_barely_changes_the_figures(h100: ReplicaPerformance, name: str, tolerance: float) -> None:
    """The world steps 1-2 simulated seconds at a time; the figures must agree with fine steps."""
    fine, coarse = _figures(h100, 0.1), _figures(h100, 2.0)
    assert coarse[name] == pytest.approx(fine[name], rel=tolerance)


_FIGURES: dict[float, dict[str, float]] = {}


def _figures(h100: ReplicaPerformance, dt: float) -> dict[str, float]:
    if dt not in _FIGURES:
        _FIGURES[dt] = _steady_figures(h100, dt)
    return _FIGURES[dt]


def test_twenty_replicas_simulate_faster_than_real_time_at_speed_360(h100: ReplicaPerformance) -> None:
    import time

    engine = FleetEngine(seed=1)
    slots = np.array([engine.add_replica(f"r{i}", ReplicaParams(h100)) for i in range(20)])
    load = TraceLoad(load_trace("conv"), rate_per_s=160.0)
    t, dt, sim_seconds = 0.0, 2.0, 600.0
    started = time.thread_time()
    while t < sim_seconds:
        engine.route(slots, np.ones(20), load.arrivals(t, t + dt))
        engine.advance(t, t + dt, counter_scale=1 / 360)
        t += dt
    cpu = time.thread_time() - started
    # Real time at speed 360 is sim_seconds / 360; the simulation must need well under that.
    assert cpu < 0.5 * sim_seconds / 360, f"{cpu:.2f} CPU s for {sim_seconds / 360:.2f} real s"
