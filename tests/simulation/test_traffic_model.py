"""The capacity model with measured traffic (planner.capacity.TrafficShape) against the request-level engine."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gridshift.planner.capacity import (
    DISPERSION_WINDOWS_S,
    MINUTE_MISS,
    PROMPT_QUANTILE_POINTS,
    CapacityInputs,
    TrafficShape,
    capacity_requests_per_second,
    operating_point,
    replica_capacity,
)
from gridshift.planner.profiles import PerformanceModel
from gridshift.planner.settings import PlannerSettings
from gridshift.simulation.data import TraceProfile, shipped_trace
from gridshift.simulation.requests import Burstiness, measure, minute_latency, prompt_mix_cv, serve, steady_stream
from tests.simulation.sim_replay import MEASURED_MODEL, models

SETTINGS = PlannerSettings()


def _model() -> PerformanceModel:
    return next(m for m in models() if m.model == MEASURED_MODEL)


def _p95(model: PerformanceModel, trace: TraceProfile, copies: int, rate: float) -> tuple[float, float]:
    """Request-level p95 TTFT and TPOT (ms) of one replica at `rate`, an hour of the scored slice."""
    stream = steady_stream(trace, copies, offset=29, rate=rate, seed=2)
    served = serve(model, stream)
    return served.ttft_quantile(0.95) * 1000.0, served.tpot_quantile(0.95) * 1000.0


def test_measure_gives_the_prompt_distribution_and_a_dispersion_per_window() -> None:
    trace = shipped_trace("code")
    seen = measure(steady_stream(trace, 18, offset=3, rate=3.0, seed=1))
    traffic = seen.traffic
    assert traffic.prompt_quantiles.shape == (PROMPT_QUANTILE_POINTS,)
    assert (np.diff(traffic.prompt_quantiles) >= 0).all()
    assert traffic.dispersion_curve.shape == (len(DISPERSION_WINDOWS_S),)
    assert traffic.rate == pytest.approx(3.0, rel=0.05)
    # The code trace's long prompts come in clumps: the dispersion grows with the window.
    assert traffic.dispersion_curve[-1] > 2.0 * traffic.dispersion_curve[0]


@pytest.mark.parametrize("dispersion", [1.6, 0.5])
def test_flat_dispersion_and_one_prompt_length_give_kingmans_exponential_tail(dispersion: float) -> None:
    """With the same index D at every window and every prompt alike, both wait approximations are Kingman's:
    TTFT_95 = own prefill + theta ln(rho / 0.05), theta = D E[S] / (2 (1 - rho)). D below 1 (smoother than
    Poisson) too: the model floors it only near zero."""
    model = _model()
    prompt, output, rate = 1000.0, 200.0, 6.0
    traffic = TrafficShape(
        prompt_quantiles=np.full(PROMPT_QUANTILE_POINTS, prompt),
        dispersion_curve=np.full(len(DISPERSION_WINDOWS_S), dispersion),
        rate=rate,
    )
    point = operating_point(
        model,
        requests_per_second=rate,
        mean_prompt_tokens=prompt,
        mean_output_tokens=output,
        settings=SETTINGS,
        traffic=traffic,
    )
    step_s = point.step_time_ms / 1000.0
    chunk = SETTINGS.prefill_chunk_tokens
    service = prompt * (step_s / chunk + 1.0 / model.prefill_tokens_per_s)
    rho = rate * service
    theta = dispersion * service / (2.0 * (1.0 - rho))
    own = math.ceil(prompt / chunk) * step_s + prompt / model.prefill_tokens_per_s
    own += 0.5 * step_s * (1.0 - math.exp(-point.batch))
    assert point.predicted_ttft_p95_ms / 1000.0 == pytest.approx(own + theta * math.log(rho / 0.05), rel=1e-6)


def _calibration_hour(model: PerformanceModel, trace: TraceProfile, copies: int, ttft_slo: float) -> Burstiness:
    """The traffic measured on the calibration hour (seed 1), run at 3/4 of the Poisson model's capacity."""
    guess = replica_capacity(
        model,
        mean_prompt_tokens=trace.mean_prompt_tokens,
        mean_output_tokens=trace.mean_output_tokens,
        tpot_slo_ms=50.0,
        ttft_slo_ms=ttft_slo,
        settings=SETTINGS,
    ).requests_per_second
    return measure(steady_stream(trace, copies, offset=3, rate=0.75 * guess, seed=1))


@pytest.mark.parametrize(("name", "copies", "ttft_slo"), [("code", 18, 2000.0), ("conv", 11, 1000.0)])
def test_capacity_from_measured_traffic_is_the_request_level_capacity(name: str, copies: int, ttft_slo: float) -> None:
    """Calibrated on one hour (seed 1), scored on another (seed 2): the modelled capacity for the hour's p95 (no
    per-minute allowance) is within 10% of the largest rate at which the request-level engine meets the SLO
    over the hour (the Poisson/one-index model was 22% under it on the code trace), and p95 TTFT at half and
    three quarters of it within 15%."""
    model = _model()
    trace = shipped_trace(name)
    seen = _calibration_hour(model, trace, copies, ttft_slo)
    capacity = replica_capacity(
        model,
        mean_prompt_tokens=seen.prompt_mean_tokens,
        mean_output_tokens=trace.mean_output_tokens,
        tpot_slo_ms=50.0,
        ttft_slo_ms=ttft_slo,
        settings=SETTINGS,
        traffic=seen.traffic,
    ).requests_per_second
    assert _p95(model, trace, copies, 0.9 * capacity)[0] <= ttft_slo
    assert _p95(model, trace, copies, 1.1 * capacity)[0] > ttft_slo
    for share in (0.5, 0.75):
        predicted = operating_point(
            model,
            requests_per_second=share * capacity,
            mean_prompt_tokens=seen.prompt_mean_tokens,
            mean_output_tokens=trace.mean_output_tokens,
            settings=SETTINGS,
            traffic=seen.traffic,
        )
        ttft, tpot = _p95(model, trace, copies, share * capacity)
        assert predicted.predicted_ttft_p95_ms == pytest.approx(ttft, rel=0.15)
        assert predicted.predicted_tpot_p95_ms == pytest.approx(tpot, rel=0.15)


@pytest.mark.parametrize(("name", "copies", "ttft_slo"), [("code", 18, 2000.0), ("conv", 11, 1000.0)])
def test_the_capacity_holds_minute_by_minute(name: str, copies: int, ttft_slo: float) -> None:
    """The SLO is judged on each minute's p95. At the capacity for the hour's p95 a large share of minutes miss
    (their p95 scatters around the hour's); at the per-minute capacity (MINUTE_MISS of minutes allowed to
    miss) the engine's minutes miss about that share (4 hours of the scored slice, seed 2)."""
    model = _model()
    trace = shipped_trace(name)
    seen = _calibration_hour(model, trace, copies, ttft_slo)

    def capacity_and_missed(allowed: float | None) -> tuple[float, float]:
        inputs = CapacityInputs.of(
            [model],
            [seen.prompt_mean_tokens],
            [trace.mean_output_tokens],
            [50.0],
            [ttft_slo],
            traffic=[seen.traffic],
            minute_miss=allowed,
        )
        rate = float(capacity_requests_per_second(inputs, SETTINGS)[0])
        stream = steady_stream(trace, copies, offset=29, rate=rate, seed=2, minutes=240)
        minute = (stream.arrival_s // 60.0).astype(np.int64)
        latency = minute_latency(serve(model, stream), minute, 240, ttft_slo_ms=ttft_slo, tpot_slo_ms=50.0)
        return rate, 1.0 - float(latency.within(0.95)[1:].mean())

    hour_rate, hour_missed = capacity_and_missed(None)
    minute_rate, minute_missed = capacity_and_missed(MINUTE_MISS)
    assert hour_missed >= 0.1
    assert minute_rate < hour_rate
    assert minute_missed <= 2.0 * MINUTE_MISS


def test_the_prompt_mix_spread_is_the_minute_means_and_shrinks_with_more_tenants() -> None:
    """prompt_mix_cv: the coefficient of variation of the mean prompt from minute to minute over the copies'
    requests together; more tenants mix more evenly; a trace of one prompt length has none."""
    trace = shipped_trace("conv")
    few, many = (prompt_mix_cv(trace, copies, offset=100) for copies in (2, 32))
    assert few > many > 0.0
    length = len(trace.requests_per_minute)
    minute = (trace.arrival_seconds // 60).astype(np.int64)
    whole = minute < length  # the replay's minutes: the trace's last, unfinished one is left out
    tokens = np.bincount(minute[whole], weights=trace.prompt_tokens[whole].astype(float), minlength=length)
    counts = np.bincount(minute[whole], minlength=length)
    cells = (np.arange(60) + 10) % length  # one copy: the trace's own minutes from the offset, looped
    seen = counts[cells] > 0
    means = tokens[cells][seen] / counts[cells][seen]
    assert prompt_mix_cv(trace, 1, offset=10) == pytest.approx(means.std() / means.mean(), rel=1e-12)
    flat = TraceProfile(
        name="flat",
        requests_per_minute=trace.requests_per_minute,
        mean_prompt_tokens=1000.0,
        mean_output_tokens=trace.mean_output_tokens,
        prompt_tokens=np.full_like(trace.prompt_tokens, 1000),
        output_tokens=trace.output_tokens,
        arrival_seconds=trace.arrival_seconds,
    )
    assert prompt_mix_cv(flat, 8, offset=100) == 0.0
    # Found in review: the unfinished last minute, which the replay never plays, was counted into the last whole one.
    tail = trace.arrival_seconds >= 60.0 * length
    assert tail.any()
    cut = TraceProfile(
        name="cut",
        requests_per_minute=trace.requests_per_minute,
        mean_prompt_tokens=1000.0,
        mean_output_tokens=trace.mean_output_tokens,
        prompt_tokens=np.where(tail, 40_000, 1000),
        output_tokens=trace.output_tokens,
        arrival_seconds=trace.arrival_seconds,
    )
    assert prompt_mix_cv(cut, 8, offset=100) == 0.0
