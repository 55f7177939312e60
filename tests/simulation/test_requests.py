"""The request-level engine: against the token-stepped engine, under overload, and as simulate's SLO judge."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gridshift.planner.profiles import PerformanceModel
from gridshift.simulation import requests
from gridshift.simulation.data import shipped_trace
from gridshift.simulation.engine import request_level, request_levels
from gridshift.simulation.replay import build_replay
from gridshift.simulation.replica import ReplicaRun, simulate_replica
from gridshift.simulation.requests import RequestStream, minute_latency, serve, thinned_arrivals
from gridshift.simulation.settings import SimulationSettings
from tests.simulation.sim_replay import (
    MEASURED_MODEL,
    START,
    conv_capacity,
    flat_replay,
    flat_trace,
    hourly_prices,
    models,
    setup,
    shipped_replay,
)


def _model() -> PerformanceModel:
    return next(m for m in models() if m.model == MEASURED_MODEL)


def _poisson(rate: float, seconds: float, seed: int) -> RequestStream:
    trace = shipped_trace("conv")
    rng = np.random.default_rng(seed)
    count = int(rate * seconds * 1.3) + 10
    gaps = rng.exponential(1.0 / rate, count)
    arrivals = np.cumsum(gaps) - gaps[0]
    pick = rng.integers(0, len(trace.prompt_tokens), count)
    kept = arrivals < seconds
    return RequestStream(arrivals[kept], trace.prompt_tokens[pick][kept], trace.output_tokens[pick][kept])


def _stepped(model: PerformanceModel, stream: RequestStream) -> ReplicaRun:
    """The token-stepped engine on the same 600 s of requests."""
    return simulate_replica(
        model,
        stream.arrival_s,
        stream.prompt_tokens,
        stream.output_tokens,
        requests_per_second=len(stream) / float(stream.arrival_s[-1] - stream.arrival_s[0]),
        duration_seconds=600.0,
        warmup_seconds=0.0,
    )


@pytest.mark.parametrize("share", [0.5, 0.75, 1.0])
def test_request_level_engine_agrees_with_the_token_stepped_engine(share: float) -> None:
    model = _model()
    capacity = conv_capacity(model)
    stream = _poisson(share * capacity, 600.0, seed=3)
    served = serve(model, stream)
    stepped = _stepped(model, stream)
    assert served.ttft_quantile(0.95) * 1000.0 == pytest.approx(stepped.ttft_p95_ms, rel=0.15)
    assert served.tpot_quantile(0.95) * 1000.0 == pytest.approx(stepped.tpot_p95_ms, rel=0.1)
    assert served.mean_batch == pytest.approx(stepped.mean_batch, rel=0.2)


def test_at_a_quarter_of_capacity_the_engine_counts_the_chunk_steps_the_stepped_engine_runs() -> None:
    # There the p95 TPOT falls among the steps that carry a prefill chunk (about 5% of intervals), so
    # it tells whether the engine counts them all. The channel used to be busy until each busy
    # period's fluid finish, about half a step short of its last whole step: p95 TPOT 9.0, 8.7, 10.8
    # ms on these streams against the stepped engine's 10.0, 9.8, 14.1 (16% short on average).
    model = _model()
    capacity = conv_capacity(model)
    engine, stepped = [], []
    for seed in (3, 4, 5):
        stream = _poisson(0.25 * capacity, 600.0, seed=seed)
        engine.append(serve(model, stream).tpot_quantile(0.95) * 1000.0)
        stepped.append(_stepped(model, stream).tpot_p95_ms)
    assert np.mean(engine) == pytest.approx(np.mean(stepped), rel=0.05), (engine, stepped)


@pytest.mark.parametrize(("rate", "seed"), [(4.0, 1), (9.0, 2), (12.0, 3)])
def test_the_compiled_engine_gives_the_numpy_engine_bit_for_bit(
    rate: float, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve runs `_passes_loop` compiled by numba; `_passes` (numpy) is the reference it must equal exactly,
    light, near capacity and overloaded (queues that never settle, all passes taken)."""
    pytest.importorskip("numba")
    model = _model()
    stream = _poisson(rate, 900.0, seed=seed)
    compiled = serve(model, stream)
    assert requests._compiled_passes() is not None
    monkeypatch.setattr(requests, "_compiled_passes", lambda: None)
    reference = serve(model, stream)
    for field in dataclasses.fields(reference):
        assert np.array_equal(getattr(compiled, field.name), getattr(reference, field.name)), field.name


def test_an_overloaded_replica_queues_and_its_minutes_miss_the_slo() -> None:
    model = _model()
    stream = _poisson(20.0, 300.0, seed=1)
    served = serve(model, stream)
    minute = (stream.arrival_s // 60.0).astype(np.int64)
    latency = minute_latency(served, minute, 5, ttft_slo_ms=1000.0, tpot_slo_ms=50.0)
    assert served.ttft_s[-100:].min() > 30.0
    assert not latency.within(0.95)[1:].any()
    light = _poisson(1.0, 300.0, seed=1)
    light_latency = minute_latency(
        serve(model, light), (light.arrival_s // 60.0).astype(np.int64), 5, ttft_slo_ms=1000.0, tpot_slo_ms=50.0
    )
    assert light_latency.within(0.95).all()


def test_round_robin_thinning_keeps_the_share_asked_for_and_the_trace_timing() -> None:
    trace = shipped_trace("code")
    minutes = 30
    keep = np.full(minutes, 0.25)
    stream, minute_of = thinned_arrivals(trace, copies=8, first_offset=5, keep=keep, rng=np.random.default_rng(4))
    length = len(trace.requests_per_minute)
    offsets = 5 + (np.arange(8) * length) // 8
    union = trace.requests_per_minute[(np.arange(minutes)[:, None] + offsets[None, :]) % length].sum(axis=1)
    assert np.abs(np.bincount(minute_of, minlength=minutes) - union * 0.25).max() <= 1.0
    assert (np.diff(stream.arrival_s) >= 0).all()
    assert (stream.arrival_s // 60.0 == minute_of).all()
    assert set(stream.prompt_tokens.tolist()) <= set(trace.prompt_tokens.tolist())


def test_simulate_judges_minutes_request_by_request() -> None:
    replay = shipped_replay(days=0.1, deployments=3)
    needed = np.stack([d.needed for d in replay.deployments], axis=1)
    assert request_level(replay, needed * 3).all()
    none_ready = request_level(replay, needed * 0)
    busy = np.stack([d.rate_rps > 0 for d in replay.deployments], axis=1)
    assert not none_ready[busy].any()
    # Half the replicas the fluid model needs: the queues grow and most busy minutes miss.
    assert request_level(replay, np.maximum(needed // 2, 1))[needed >= 4].mean() < 0.5


def test_schedules_judged_together_get_each_their_own_verdict() -> None:
    """engine.request_levels replays each (deployment, replica count) once for all schedules: a schedule's
    verdict must still be its own (a minute judged at another schedule's count would pass the starved one)."""
    replay = shipped_replay(days=0.1, deployments=3)
    needed = np.stack([d.needed for d in replay.deployments], axis=1)
    ample, starved = needed * 3, np.maximum(needed // 2, 1)
    together = request_levels(replay, [ample, starved, ample])
    assert together[0].all() and together[2].all()
    assert together[1][needed >= 4].mean() < 0.5
    alone = request_level(replay, starved)
    assert (together[1] == alone).mean() >= 0.98
    # A schedule whose count changes minute by minute agrees with the same minutes judged alone wherever
    # the count holds from the minute before.
    mixed = np.where(np.arange(len(needed))[:, None] % 20 < 10, needed, needed + 1)
    held = np.vstack([np.zeros((1, mixed.shape[1]), dtype=bool), mixed[1:] == mixed[:-1]])
    assert (request_levels(replay, [mixed, needed])[0][held] == request_level(replay, mixed)[held]).mean() >= 0.98


def test_a_queue_never_comes_back_hours_later_nor_from_another_schedule() -> None:
    """Found in review (4 December 2026): minutes at one replica count were replayed back to back however far
    apart, so ten starved minutes at the day's peak (one replica) left a queue that the night's one-replica
    minutes, seven hours later, inherited: 59 of them missed, in the starved schedule and, judged beside it,
    in a schedule that was never starved. Minutes apart are now replayed apart."""
    settings = SimulationSettings(start=START, days=1.0, markets=("DE",), gpus_per_market=16, diurnal_trough=0.2)
    replay = build_replay(
        settings, [setup("d", 20.0, "DE")], {"flat": flat_trace()}, [hourly_prices("DE", [50.0] * 72)], models()
    )
    deployment = replay.deployments[0]
    peak = int(np.argmax(deployment.rate_rps))
    ample = deployment.needed[:, None].copy()
    starved = ample.copy()
    starved[peak : peak + 10, 0] = 1
    assert (ample[peak + 60 :, 0] == 1).any(), "the night must have one-replica minutes for this test"
    alone, starved_alone = request_level(replay, ample)[:, 0], request_level(replay, starved)[:, 0]
    assert alone.all()
    # The starved minutes (and the few after them, draining) miss; an hour on, the two schedules agree.
    assert not starved_alone[peak : peak + 10].all()
    assert (starved_alone[peak + 60 :] == alone[peak + 60 :]).all()
    together = request_levels(replay, [ample, starved])
    assert together[0][:, 0].all()
    assert (together[1][:, 0] == starved_alone).all()


@pytest.mark.parametrize("peak_rps", [2.0, 8.2, 10.0])
def test_the_request_level_stream_runs_at_the_rate_the_deployment_is_sized_and_costed_at(
    monkeypatch: pytest.MonkeyPatch, peak_rps: float
) -> None:
    """Found in review: the copies were rounded, so a deployment between whole multiples of the trace's rate was
    judged request by request on another load (2.0 req/s on a 5 req/s trace: one copy, 2.5x; 8.2: two, x1.22)."""
    from gridshift.simulation import engine

    trace = flat_trace(per_minute=300.0)  # 5 req/s
    replay = flat_replay([setup("chat", peak_rps, "CHEAP")], [hourly_prices("CHEAP", [50.0])], minutes=30)
    seen: list[np.ndarray] = []  # type: ignore[type-arg]

    def spy(*args: object, **kwargs: object) -> tuple[RequestStream, np.ndarray]:  # type: ignore[type-arg]
        stream, minute_of = thinned_arrivals(*args, **kwargs)  # type: ignore[arg-type]
        seen.append(minute_of)
        return stream, minute_of

    monkeypatch.setattr(engine, "thinned_arrivals", spy)
    request_level(replay, np.ones((30, 1), dtype=np.int64))
    per_minute = np.bincount(np.concatenate(seen), minlength=30)
    assert replay.deployments[0].rate_rps == pytest.approx(np.full(30, peak_rps))
    assert trace.mean_requests_per_second == 5.0
    # One Ready replica takes every request: the stream's minutes hold the sized rate, to the request.
    assert np.abs(per_minute - peak_rps * 60.0).max() <= 1.0
