"""The one-replica continuous-batching simulation against the planner's capacity model."""

from __future__ import annotations

import pytest

from gridshift.planner.capacity import operating_point
from gridshift.planner.settings import PlannerSettings
from gridshift.simulation.data import shipped_trace
from gridshift.simulation.replica import simulate_replica
from tests.simulation.sim_replay import conv_capacity, models


@pytest.mark.parametrize("share", [0.5, 0.75])
def test_below_capacity_simulated_latency_is_within_the_slo_and_near_the_prediction(share: float) -> None:
    model = next(m for m in models() if m.model == "meta-llama/Meta-Llama-3-8B-Instruct")
    trace = shipped_trace("conv")
    settings = PlannerSettings()
    capacity = conv_capacity(model)
    rate = share * capacity
    predicted = operating_point(
        model,
        requests_per_second=rate,
        mean_prompt_tokens=trace.mean_prompt_tokens,
        mean_output_tokens=trace.mean_output_tokens,
        settings=settings,
    )
    run = simulate_replica(
        model,
        trace.arrival_seconds,
        trace.prompt_tokens,
        trace.output_tokens,
        requests_per_second=rate,
        duration_seconds=400.0,
        warmup_seconds=60.0,
        poisson_seed=1,
    )
    assert run.stable
    assert run.ttft_p95_ms <= 1000.0 and run.tpot_p95_ms <= 50.0
    assert run.ttft_p95_ms == pytest.approx(predicted.predicted_ttft_p95_ms, rel=0.5)
    assert run.tpot_p95_ms == pytest.approx(predicted.predicted_tpot_p95_ms, rel=0.25)
    assert run.mean_batch == pytest.approx(predicted.batch, rel=0.6)


def test_far_beyond_capacity_the_queue_grows_and_ttft_explodes() -> None:
    model = next(m for m in models() if m.model == "meta-llama/Meta-Llama-3-8B-Instruct")
    trace = shipped_trace("conv")
    run = simulate_replica(
        model,
        trace.arrival_seconds,
        trace.prompt_tokens,
        trace.output_tokens,
        requests_per_second=20.0,
        duration_seconds=300.0,
        warmup_seconds=60.0,
        poisson_seed=1,
    )
    assert run.ttft_p95_ms > 10_000.0
