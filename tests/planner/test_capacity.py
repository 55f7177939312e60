"""SLO capacity: the largest load a replica takes within p95 TTFT and TPOT, and what limits it."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridshift.planner.capacity import CapacityLimit, operating_point, replica_capacity
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
    assert result.tpot_p95_ms <= 50 + 1e-6
    assert result.ttft_p95_ms <= 2000 + 1e-6
    # The binding objective is met with (almost) no slack.
    if result.limit == CapacityLimit.TTFT:
        assert result.ttft_p95_ms == pytest.approx(2000, rel=1e-3)
    elif result.limit == CapacityLimit.TPOT:
        assert result.tpot_p95_ms == pytest.approx(50, rel=1e-3)


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
    from dataclasses import replace

    from gridshift.planner.capacity import replica_capacity as capacity_of

    small = replace(H100_MODEL, max_batch=4)
    result = capacity_of(
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
    assert lower.ttft_p95_ms <= result.ttft_p95_ms + 1e-9
    assert lower.tpot_p95_ms <= result.tpot_p95_ms + 1e-9
    assert lower.power_watts <= result.power_watts + 1e-9
    assert math.isfinite(lower.step_time_ms)
