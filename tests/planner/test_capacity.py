"""SLO capacity: the largest load a replica takes within p95 TTFT and TPOT, and what limits it."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridshift.planner.capacity import (
    DISPERSION_WINDOWS_S,
    MIX_NODES,
    PROMPT_QUANTILE_POINTS,
    CapacityInputs,
    CapacityLimit,
    OperatingPoint,
    ReplicaCapacity,
    TrafficShape,
    _dispersion_at,
    _latency,
    batch_at,
    capacity_requests_per_second,
    operating_point,
    power_at,
    replica_capacity,
)
from gridshift.planner.profiles import PerformanceModel
from gridshift.planner.settings import PlannerSettings
from tests.planner.planner_world import H100_MODEL

SETTINGS = PlannerSettings()


def capacity(prompt: float = 1000, output: float = 250, tpot: float = 50, ttft: float = 2000, **kw: object):  # type: ignore[no-untyped-def]
    chosen = PlannerSettings(**kw) if kw else SETTINGS  # type: ignore[arg-type]
    return replica_capacity(
        H100_MODEL,
        mean_prompt_tokens=prompt,
        mean_output_tokens=output,
        tpot_slo_ms=tpot,
        ttft_slo_ms=ttft,
        settings=chosen,
    )


def test_capacity_meets_both_slos_and_is_bound_by_one() -> None:
    result = capacity()
    assert result.output_tokens_per_second > 0
    assert result.predicted_tpot_p95_ms <= 50 + 1e-6
    assert result.predicted_ttft_p95_ms <= 2000 + 1e-6
    # The binding objective is met with (almost) no slack.
    if result.limit == CapacityLimit.TTFT:
        assert result.predicted_ttft_p95_ms == pytest.approx(2000, rel=1e-3)
    elif result.limit == CapacityLimit.TPOT:
        assert result.predicted_tpot_p95_ms == pytest.approx(50, rel=1e-3)


def test_capacity_is_consistent_with_littles_law() -> None:
    result = capacity()
    point = operating_point(
        H100_MODEL,
        requests_per_second=result.requests_per_second,
        mean_prompt_tokens=1000,
        mean_output_tokens=250,
        settings=SETTINGS,
    )
    # Decode tokens/s = batch / step time, scaled by the share of time not spent on prefill.
    prefill_share = result.requests_per_second * 1000 / H100_MODEL.prefill_tokens_per_s
    decode_rate = point.batch / (point.step_time_ms / 1000) * (1 - prefill_share)
    assert decode_rate == pytest.approx(result.output_tokens_per_second, rel=1e-6)


def test_a_tpot_below_one_decode_step_cannot_be_met() -> None:
    result = capacity(tpot=H100_MODEL.step_base_ms * 0.9)
    assert result.output_tokens_per_second == 0
    assert result.limit == CapacityLimit.UNREACHABLE_SLO


def test_a_ttft_below_the_p95_prompt_prefill_cannot_be_met() -> None:
    p95_prompt_s = 1000 * SETTINGS.prompt_p95_to_mean / H100_MODEL.prefill_tokens_per_s
    assert capacity(ttft=p95_prompt_s * 1000 * 0.9).output_tokens_per_second == 0


def test_prefill_interference_costs_capacity() -> None:
    # Same output, longer prompts: more prefill work stalls decode and queues prompts.
    short = capacity(prompt=200).output_tokens_per_second
    long = capacity(prompt=4000).output_tokens_per_second
    assert long < short


def test_larger_prefill_chunks_stall_decode_more() -> None:
    # A whole 1000-token prompt in one step stalls decode ~52 ms, more than a 50 ms TPOT allows once
    # over 5% of steps carry a prompt; 256-token chunks stall 13 ms.
    small = capacity(tpot=50, prefill_chunk_tokens=256)
    large = capacity(tpot=50, prefill_chunk_tokens=2048)
    assert large.limit == CapacityLimit.TPOT
    assert large.output_tokens_per_second < small.output_tokens_per_second


def test_max_batch_caps_capacity() -> None:
    small = replace(H100_MODEL, max_batch=4)
    result = replica_capacity(
        small, mean_prompt_tokens=200, mean_output_tokens=500, tpot_slo_ms=1000, ttft_slo_ms=60000, settings=SETTINGS
    )
    assert result.limit == CapacityLimit.MAX_BATCH
    assert result.batch == pytest.approx(4, rel=1e-3)


@settings(max_examples=50, deadline=None)
@given(
    prompt=st.floats(50, 8000),
    output=st.floats(10, 2000),
    tpot=st.floats(10, 300),
    ttft=st.floats(100, 20000),
    factor=st.floats(1.05, 4.0),
)
def test_looser_slos_never_lower_capacity(
    prompt: float, output: float, tpot: float, ttft: float, factor: float
) -> None:
    tight = capacity(prompt, output, tpot, ttft).output_tokens_per_second
    loose_tpot = capacity(prompt, output, tpot * factor, ttft).output_tokens_per_second
    loose_ttft = capacity(prompt, output, tpot, ttft * factor).output_tokens_per_second
    assert loose_tpot >= tight * (1 - 1e-6)
    assert loose_ttft >= tight * (1 - 1e-6)


@settings(max_examples=50, deadline=None)
@given(prompt=st.floats(50, 8000), output=st.floats(10, 2000), share=st.floats(0.05, 0.999))
def test_latency_rises_with_load(prompt: float, output: float, share: float) -> None:
    result = capacity(prompt, output, 200, 30000)
    if result.requests_per_second == 0:
        return
    lower = operating_point(
        H100_MODEL,
        requests_per_second=result.requests_per_second * share,
        mean_prompt_tokens=prompt,
        mean_output_tokens=output,
        settings=SETTINGS,
    )
    assert lower.batch <= result.batch + 1e-9
    assert lower.predicted_ttft_p95_ms <= result.predicted_ttft_p95_ms + 1e-9
    assert lower.predicted_tpot_p95_ms <= result.predicted_tpot_p95_ms + 1e-9
    assert lower.power_watts <= result.power_watts + 1e-9
    assert math.isfinite(lower.step_time_ms)


# --- the model, pinned against values worked out by hand -----------------------------------------

# A profile with round numbers: decode step 10 ms + per sequence (1e-4 ms x context + 0.02 ms), prefill
# 20,000 tokens/s. With prompts of 1000 and outputs of 200 tokens: context = 1000 + 200/2 = 1100, so
# g = (1e-4 x 1100 + 0.02) / 1000 = 1.3e-4 s per sequence per step.
ROUND = PerformanceModel(
    model="round-numbers",
    gpu_type="test-gpu",
    gpus_per_replica=1,
    step_base_ms=10.0,
    step_ms_per_kv_position=1e-4,
    step_ms_per_sequence=0.02,
    power_base_watts=300.0,
    power_watts_per_sequence=2.0,
    power_watts_per_log_batch=10.0,
    power_cap_watts=700.0,
    idle_power_watts=100.0,
    prefill_tokens_per_s=20000.0,
    max_batch=64,
)
PROMPT, OUTPUT = 1000.0, 200.0


def by_hand(rate: float) -> dict[str, float]:
    """The docstring's model for ROUND at `rate`, one scalar at a time (default settings: 512-token
    chunks, p95, arrival SCV 1, prompt SCV 0.92, p95 prompt = 3.55 x mean)."""
    base, g = 0.010, 1.3e-4
    prefill_share = rate * PROMPT / 20000.0
    batch = rate * OUTPUT * base / (1.0 - prefill_share - rate * OUTPUT * g)  # Little's law, closed form
    step = base + g * batch
    chunk_steps = rate * 2 * step / (1.0 - prefill_share)  # ceil(1000 / 512) = 2 chunks per prompt
    stall = 512 / 20000.0  # min(C, P) / R_pf = 25.6 ms
    tpot = step + (stall if chunk_steps > 0.05 else 0.0)
    service = PROMPT * (step / 512 + 1 / 20000.0)
    utilisation = rate * service
    mean_wait = utilisation / (1 - utilisation) * (1.0 + 0.92) / 2 * service  # Kingman
    wait_q = mean_wait / utilisation * math.log(utilisation / 0.05) if utilisation > 0.05 else 0.0
    prompt_q = PROMPT * 3.55  # 3550 tokens: ceil(3550 / 512) = 7 chunks
    ttft = wait_q + 7 * step + prompt_q / 20000.0
    return {"batch": batch, "step_ms": step * 1000, "tpot_ms": tpot * 1000, "ttft_ms": ttft * 1000}


def point(rate: float, prompt: float = PROMPT, output: float = OUTPUT) -> OperatingPoint:
    return operating_point(
        ROUND, requests_per_second=rate, mean_prompt_tokens=prompt, mean_output_tokens=output, settings=SETTINGS
    )


@pytest.mark.parametrize(
    ("rate", "batch", "step_ms", "tpot_ms", "ttft_ms"),
    [
        # 0.5 req/s: prefill utilisation 0.035 < 0.05, so no p95 queueing wait; 1.0 % of steps carry a chunk.
        (0.5, 1.039501040, 10.135135135, 10.135135135, 248.445945946),
        # 2 req/s: utilisation 0.141, p95 wait 82.2 ms; 4.72 % of steps carry a chunk: p95 TPOT without it.
        (2.0, 4.716981132, 10.613207547, 10.613207547, 334.041542033),
        # 2.2 req/s: 5.28 % of steps carry a chunk, so p95 TPOT includes the 25.6 ms stall.
        (2.2, 5.283381364, 10.686839577, 36.286839577, 343.982586673),
        (3.0, 7.772020725, 11.010362694, 36.610362694, 381.844550206),
    ],
)
def test_operating_point_matches_the_queueing_model_worked_by_hand(
    rate: float, batch: float, step_ms: float, tpot_ms: float, ttft_ms: float
) -> None:
    result = point(rate)
    assert by_hand(rate) == pytest.approx(
        {"batch": batch, "step_ms": step_ms, "tpot_ms": tpot_ms, "ttft_ms": ttft_ms}, rel=1e-9
    )
    assert result.batch == pytest.approx(batch, rel=1e-9)
    assert result.step_time_ms == pytest.approx(step_ms, rel=1e-9)
    assert result.predicted_tpot_p95_ms == pytest.approx(tpot_ms, rel=1e-9)
    assert result.predicted_ttft_p95_ms == pytest.approx(ttft_ms, rel=1e-9)
    assert result.feasible
    # Power at the mean batch: 300 + 2 B + 10 ln B.
    assert result.power_watts == pytest.approx(300 + 2 * batch + 10 * math.log(batch), rel=1e-9)


def test_an_idle_replica_has_no_batch_and_idle_power() -> None:
    idle = point(0.0)
    assert idle.batch == 0.0
    assert idle.step_time_ms == pytest.approx(10.0)
    assert idle.predicted_tpot_p95_ms == pytest.approx(10.0)
    assert idle.predicted_ttft_p95_ms == pytest.approx(7 * 10.0 + 3550 / 20000 * 1000)  # its own p95 prompt only
    assert idle.power_watts == 100.0
    assert idle.feasible


def test_a_replica_past_saturation_is_infeasible_with_idle_power() -> None:
    # 20 req/s: prefill alone would take 100 % of the engine. No finite batch exists, so the step is the
    # bare 10 ms and the latencies are reported at a placeholder utilisation of 0.5 (flagged infeasible).
    beyond = point(20.0)
    assert not beyond.feasible
    assert beyond.batch == math.inf
    assert beyond.step_time_ms == pytest.approx(10.0)
    assert beyond.power_watts == ROUND.idle_power_watts
    service = 1000 * (0.010 / 512 + 1 / 20000)
    placeholder_wait = 0.5 / 0.5 * 0.96 * service / 0.5 * math.log(0.5 / 0.05)
    assert beyond.predicted_ttft_p95_ms == pytest.approx((placeholder_wait + 7 * 0.010 + 0.1775) * 1000, rel=1e-9)
    assert beyond.predicted_tpot_p95_ms == pytest.approx(10.0 + 25.6, rel=1e-9)  # every step carries a chunk


def test_below_one_request_per_second_power_is_the_batchs() -> None:
    assert point(0.5).power_watts == pytest.approx(300 + 2 * 1.039501040 + 10 * math.log(1.039501040), rel=1e-9)


def capacity_of(tpot: float, ttft: float, model: PerformanceModel = ROUND, **workload: float) -> ReplicaCapacity:
    return replica_capacity(
        model,
        mean_prompt_tokens=workload.get("prompt", PROMPT),
        mean_output_tokens=workload.get("output", OUTPUT),
        tpot_slo_ms=tpot,
        ttft_slo_ms=ttft,
        settings=SETTINGS,
    )


def test_a_tpot_bound_capacity_meets_the_tpot_slo_exactly() -> None:
    # TPOT 40 ms with the stall (25.6 ms) in: the step may take 14.4 ms, so g B = 4.4 ms, B = 33.85,
    # and Little's law gives rate = B (1 - 0.05 rate) / (200 x 10 ms + 200 x 0.13 ms x B) = 7.40242 req/s.
    result = capacity_of(40.0, 1e6)
    assert result.limit == CapacityLimit.TPOT
    assert result.requests_per_second == pytest.approx(7.402422611, rel=1e-9)
    assert result.output_tokens_per_second == pytest.approx(200 * 7.402422611, rel=1e-9)
    assert result.batch == pytest.approx(4.4 / 0.13, rel=1e-9)
    assert result.step_time_ms == pytest.approx(14.4, rel=1e-9)
    assert result.predicted_tpot_p95_ms == pytest.approx(40.0, rel=1e-9)
    assert by_hand(result.requests_per_second)["ttft_ms"] == pytest.approx(result.predicted_ttft_p95_ms, rel=1e-9)
    assert result.power_watts == pytest.approx(300 + 2 * result.batch + 10 * math.log(result.batch), rel=1e-9)


def test_a_ttft_bound_capacity_meets_the_ttft_slo_exactly() -> None:
    result = capacity_of(1e6, 600.0)
    assert result.limit == CapacityLimit.TTFT
    assert result.requests_per_second == pytest.approx(6.482722830, rel=1e-9)
    assert by_hand(result.requests_per_second)["ttft_ms"] == pytest.approx(600.0, rel=1e-9)
    assert by_hand(result.requests_per_second * (1 + 1e-6))["ttft_ms"] > 600.0
    assert result.predicted_ttft_p95_ms == pytest.approx(600.0, rel=1e-9)
    assert result.predicted_tpot_p95_ms == pytest.approx(by_hand(result.requests_per_second)["tpot_ms"], rel=1e-9)


def test_the_binding_limit_is_judged_just_past_the_capacity() -> None:
    # TTFT 1000 ms binds at 8.59 req/s, 0.7 req/s short of the batch cap (9.32): the label says TTFT,
    # although 1 req/s more would already exceed max_batch.
    result = capacity_of(1e6, 1000.0)
    assert result.limit == CapacityLimit.TTFT
    assert result.predicted_ttft_p95_ms == pytest.approx(1000.0, rel=1e-9)
    assert not point(result.requests_per_second + 1.0).feasible


def test_a_max_batch_bound_capacity_is_where_the_batch_reaches_it() -> None:
    # B = 64: rate = 64 (1 - 0.05 rate - 0.026 rate) / 2, i.e. 32 = rate (1 + 32 x 0.076) -> 9.32401 req/s.
    result = capacity_of(1e6, 1e9)
    assert result.limit == CapacityLimit.MAX_BATCH
    assert result.requests_per_second == pytest.approx(32 / (1 + 32 * 0.076), rel=1e-9)
    assert result.batch == pytest.approx(64.0, rel=1e-9)


def test_the_prefill_stall_sets_the_tpot_limit_where_5_percent_of_steps_carry_a_chunk() -> None:
    # TPOT 11 ms: the step alone stays below it up to B = 5 (10.65 ms), but there 5 % of steps carry a
    # chunk (2 rate x 10.65 ms / (1 - 0.05 rate) = 0.05 at rate 2.10084) and p95 TPOT jumps by 25.6 ms.
    result = capacity_of(11.0, 1e9)
    assert result.limit == CapacityLimit.TPOT
    assert result.requests_per_second == pytest.approx(2.100840336, rel=1e-9)
    assert result.predicted_tpot_p95_ms == pytest.approx(10.65, rel=1e-9)


def test_capacity_is_not_capped_before_the_decode_room_runs_out() -> None:
    # One-token prompts, long outputs, SLOs nobody misses and no batch cap: the capacity approaches the
    # decode saturation rate 1 / (P / R_pf + O g) with context 1 + 1000/2 = 501 tokens.
    model = replace(ROUND, max_batch=10**9)
    result = capacity_of(1e9, 1e12, model, prompt=1.0, output=1000.0)
    g = (1e-4 * 501 + 0.02) / 1000
    # (Within 0.1 %: prompt queueing diverges a little before the decode room is gone.)
    assert result.requests_per_second == pytest.approx(1 / (1 / 20000 + 1000 * g), rel=1e-3)


def test_capacity_below_one_request_per_second_is_reported() -> None:
    # Long prompts and outputs: feasible, but well under 1 req/s.
    result = capacity_of(60.0, 20000.0, prompt=8000.0, output=2000.0)
    assert 0.1 < result.requests_per_second < 1.0
    assert result.limit == CapacityLimit.TPOT
    assert result.predicted_tpot_p95_ms == pytest.approx(60.0, rel=1e-9)
    assert result.output_tokens_per_second == pytest.approx(2000 * result.requests_per_second)


def test_an_unreachable_slo_reports_the_first_requests_latency_and_idle_power() -> None:
    result = capacity_of(9.0, 1e6)  # below the bare 10 ms step
    assert result.limit == CapacityLimit.UNREACHABLE_SLO
    assert (result.requests_per_second, result.output_tokens_per_second, result.batch) == (0.0, 0.0, 0.0)
    assert result.step_time_ms == pytest.approx(10.0, rel=1e-9)
    assert result.predicted_tpot_p95_ms == pytest.approx(10.0, rel=1e-9)
    assert result.predicted_ttft_p95_ms == pytest.approx(70.0 + 177.5, rel=1e-9)
    assert result.power_watts == ROUND.idle_power_watts


def test_capacity_of_many_pairs_at_once_matches_one_at_a_time() -> None:
    pairs = [(40.0, 1e6), (1e6, 600.0), (1e6, 1e9), (9.0, 1e6)]
    inputs = CapacityInputs.of(
        [ROUND] * len(pairs),
        [1000, 1000, 1000, 1000],
        [200, 200, 200, 200],
        [p[0] for p in pairs],
        [p[1] for p in pairs],
    )
    measured = (
        "prompt_p95_tokens",
        "work_dispersion",
        "prompt_quantiles",
        "dispersion_curve",
        "dispersion_rate",
        "minute_miss",
        "prompt_mix_cv",
    )
    assert all(column.dtype == np.float64 for name, column in vars(inputs).items() if name not in measured)
    assert all(getattr(inputs, name) is None for name in measured)  # the settings' defaults apply
    rates = capacity_requests_per_second(inputs, SETTINGS)
    assert list(rates) == pytest.approx([capacity_of(*p).requests_per_second for p in pairs], rel=1e-12)
    assert list(batch_at(inputs, rates, SETTINGS)) == pytest.approx([point(r).batch for r in rates], rel=1e-12)


def test_power_at_follows_the_profile_over_arrays() -> None:
    batches = np.asarray([0.0, 0.5, 1.0, 4.5, 1000.0, math.inf])
    power = power_at([ROUND] * len(batches), batches)
    assert list(power) == pytest.approx(
        [
            100.0,  # idle
            300 + 2 * 0.5,  # ln is taken of max(B, 1)
            300 + 2.0,
            300 + 2 * 4.5 + 10 * math.log(4.5),
            700.0,  # capped
            100.0,  # no finite batch: idle
        ],
        rel=1e-12,
    )
    assert list(power) == pytest.approx([ROUND.power_watts(b if math.isfinite(b) else 0) for b in batches])


def test_measured_burstiness_and_prompt_tail_replace_the_defaults() -> None:
    default = point(3.0)
    same = operating_point(
        ROUND,
        requests_per_second=3.0,
        mean_prompt_tokens=PROMPT,
        mean_output_tokens=OUTPUT,
        settings=SETTINGS,
        prompt_p95_tokens=PROMPT * SETTINGS.prompt_p95_to_mean,
        work_dispersion=SETTINGS.arrival_scv + SETTINGS.prompt_length_scv,
    )
    assert same.predicted_ttft_p95_ms == pytest.approx(default.predicted_ttft_p95_ms, rel=1e-12)
    bursty = operating_point(
        ROUND,
        requests_per_second=3.0,
        mean_prompt_tokens=PROMPT,
        mean_output_tokens=OUTPUT,
        settings=SETTINGS,
        work_dispersion=5.0,
    )
    assert bursty.predicted_ttft_p95_ms > default.predicted_ttft_p95_ms
    assert bursty.predicted_tpot_p95_ms == pytest.approx(default.predicted_tpot_p95_ms)


def _flat_traffic(prompt: float, dispersion: float) -> TrafficShape:
    return TrafficShape(
        prompt_quantiles=np.full(PROMPT_QUANTILE_POINTS, prompt),
        dispersion_curve=np.full(len(DISPERSION_WINDOWS_S), dispersion),
        rate=1.0,
    )


def test_a_traffic_shape_of_the_wrong_size_or_rate_is_refused_saying_what_was_expected() -> None:
    # A measurement taken with other windows or quantile points would be read against the wrong grid: refused,
    # naming what it lacks, before any capacity is computed from it.
    good = _flat_traffic(500.0, 2.0)
    cases = [
        (dict(dispersion_curve=good.dispersion_curve[:-1]), f"{len(DISPERSION_WINDOWS_S)} dispersion windows expected"),
        (dict(prompt_quantiles=np.full(10, 500.0)), f"{PROMPT_QUANTILE_POINTS} prompt quantiles expected"),
        (dict(rate=0.0), "TrafficShape.rate must be > 0, got 0.0"),
    ]
    for change, message in cases:
        with pytest.raises(ValueError) as caught:
            replace(good, **change)
        assert message in str(caught.value), change


def test_with_measured_traffic_at_a_trickle_a_decode_step_is_one_sequence_alone() -> None:
    """At 0.01 requests/s almost no step carries a prefill chunk or another sequence, so the measured-traffic
    p95 TPOT is one sequence's step: base + KV x (prompt + output / 2) + per sequence, to the bisection's
    precision (a step carrying others, or a prefill stall counted as most steps' lot, lands well above it)."""
    prompt, output = 1000.0, 200.0
    point = operating_point(
        H100_MODEL,
        requests_per_second=0.01,
        mean_prompt_tokens=prompt,
        mean_output_tokens=output,
        settings=SETTINGS,
        traffic=_flat_traffic(prompt, 1.0),
    )
    alone = (
        H100_MODEL.step_base_ms
        + H100_MODEL.step_ms_per_kv_position * (prompt + output / 2.0)
        + H100_MODEL.step_ms_per_sequence
    )
    assert point.predicted_tpot_p95_ms == pytest.approx(alone, rel=1e-6)


@pytest.mark.parametrize(
    "measured",
    [
        {"prompt_p95_tokens": 4000.0},
        {"work_dispersion": 5.0},
        {"traffic": _flat_traffic(1000.0, 5.0)},
    ],
    ids=["prompt_p95_tokens", "work_dispersion", "traffic"],
)
def test_a_capacity_with_measured_traffic_reports_the_measured_latency_at_its_rate(measured: dict[str, object]) -> None:
    """replica_capacity reads each measured input both where it finds the rate and where it reports the operating
    point there: the binding p95 TTFT is the SLO exactly (mutation testing: a point taken with the defaults, or a
    rate found with them, went unnoticed)."""
    shared = {"mean_prompt_tokens": 1000.0, "mean_output_tokens": 250.0, "settings": SETTINGS}
    found = replica_capacity(H100_MODEL, tpot_slo_ms=50.0, ttft_slo_ms=500.0, **shared, **measured)  # type: ignore[arg-type]
    default = replica_capacity(H100_MODEL, tpot_slo_ms=50.0, ttft_slo_ms=500.0, **shared)  # type: ignore[arg-type]
    assert found.requests_per_second != pytest.approx(default.requests_per_second, rel=1e-3)
    assert found.limit is CapacityLimit.TTFT
    assert found.predicted_ttft_p95_ms == pytest.approx(500.0, rel=1e-6)
    there = operating_point(H100_MODEL, requests_per_second=found.requests_per_second, **shared, **measured)  # type: ignore[arg-type]
    assert (found.batch, found.predicted_tpot_p95_ms, found.predicted_ttft_p95_ms) == (
        there.batch,
        there.predicted_tpot_p95_ms,
        there.predicted_ttft_p95_ms,
    )


def test_the_measured_dispersion_is_read_at_its_windows_interpolated_in_log_and_held_beyond() -> None:
    """_dispersion_at: windows counted in requests (rate x DISPERSION_WINDOWS_S); the measured value at each,
    linear in log(requests) between two, the end values held outside."""
    curve = np.arange(1.0, len(DISPERSION_WINDOWS_S) + 1.0)
    rate = 3.0
    traffic = TrafficShape(prompt_quantiles=np.full(PROMPT_QUANTILE_POINTS, 500.0), dispersion_curve=curve, rate=rate)
    inputs = CapacityInputs.of([H100_MODEL], [500.0], [200.0], [50.0], [1000.0], traffic=[traffic])
    windows = np.asarray(DISPERSION_WINDOWS_S)

    def at(requests: float) -> float:
        return float(_dispersion_at(inputs, np.asarray([requests]))[0])

    for k in range(len(windows)):
        assert at(rate * windows[k]) == pytest.approx(curve[k], rel=1e-9)
    for k in range(len(windows) - 1):
        between = rate * math.sqrt(windows[k] * windows[k + 1])
        assert at(between) == pytest.approx((curve[k] + curve[k + 1]) / 2.0, rel=1e-9)
    assert at(rate * windows[0] / 10.0) == pytest.approx(curve[0])
    assert at(rate * windows[-1] * 10.0) == pytest.approx(curve[-1])


def _per_minute(prompt: float, mix: list[float] | None, allowed: float | None = 0.05) -> CapacityInputs:
    """Measured-traffic pairs with a per-minute floor (a spread of prompts, bursty work), one per entry of `mix`."""
    count = 1 if mix is None else len(mix)
    prompts = np.geomspace(prompt / 8.0, prompt * 4.0, PROMPT_QUANTILE_POINTS)
    traffic = TrafficShape(
        prompt_quantiles=prompts * prompt / prompts.mean(),
        dispersion_curve=np.linspace(1.5, 4.0, len(DISPERSION_WINDOWS_S)),
        rate=2.0,
    )
    return CapacityInputs.of(
        [H100_MODEL] * count,
        [prompt] * count,
        [200.0] * count,
        [50.0] * count,
        [1000.0] * count,
        traffic=[traffic] * count,
        minute_miss=allowed,
        prompt_mix_cv=mix,
    )


def test_a_minutes_prompt_mix_lowers_the_per_minute_capacity_and_no_mix_changes_nothing() -> None:
    """CapacityInputs.prompt_mix_cv (issue 14: conv-06 missed on the minute-to-minute spread of its mean prompt):
    the larger the spread, the lower the per-minute capacity; a spread of 0 is the capacity without one; and
    without a per-minute floor (the hour's p95 alone) the mix changes nothing."""
    plain = float(capacity_requests_per_second(_per_minute(1000.0, None), SETTINGS)[0])
    spread = capacity_requests_per_second(_per_minute(1000.0, [0.0, 0.02, 0.05, 0.1]), SETTINGS)
    assert spread[0] == pytest.approx(plain, rel=1e-12)
    assert plain > spread[1] > spread[2] > spread[3] > 0.0
    assert spread[3] < 0.97 * plain  # a 10% spread of a minute's mean prompt costs more than a few per cent
    hour = capacity_requests_per_second(_per_minute(1000.0, [0.0, 0.1], allowed=None), SETTINGS)
    assert hour[0] == pytest.approx(hour[1], rel=1e-12) and hour[0] > plain


def test_the_per_minute_capacity_under_a_mix_holds_the_mean_miss_over_the_mix_at_its_allowance() -> None:
    """At the capacity found, the minute miss averaged over the mix (a minute's prompts all scaled by 1 + cv x u,
    u standard normal) is the allowance: computed here by plain quadrature on a fine grid of u, not by the
    model's Gauss-Hermite rule, and a little above the capacity it exceeds it."""
    cv, allowed = 0.08, 0.05
    inputs = _per_minute(1000.0, [cv], allowed)
    rate = float(capacity_requests_per_second(inputs, SETTINGS)[0])
    grid = np.linspace(-6.0, 6.0, 1201)
    density = np.exp(-(grid**2) / 2.0)
    density /= density.sum()

    def mean_miss(at: float) -> float:
        total = 0.0
        for u, weight in zip(grid, density, strict=True):
            scaled = _per_minute(1000.0 * (1.0 + cv * u), None, allowed)
            latency = _latency(scaled, np.asarray([at]), SETTINGS)
            total += weight * (float(latency.minute_miss[0]) if bool(latency.stable[0]) else 1.0)
        return total

    assert mean_miss(rate) == pytest.approx(allowed, abs=0.002)
    assert mean_miss(1.02 * rate) > allowed
    assert MIX_NODES >= 5
