"""Contract every PowerSampler honours: the trace-replaying fakes run everywhere, NVML where a GPU is."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from gridshift.nvml import (
    NvmlPowerSampler,
    NvmlUnavailable,
    PowerSampler,
    PowerTrace,
    SamplerSettings,
    SamplerStateError,
    TracePowerSampler,
    measured_phase,
)
from tests.conftest import SHARED_DATA

SETTINGS = SamplerSettings(sample_period_ms=20.0)
RECORDED_TRACE = SHARED_DATA / "h100-llama3-8b-power" / "power_trace.csv"
PHASE_SECONDS = 1.5


def _real_sampler() -> PowerSampler:
    try:
        return NvmlPowerSampler(SETTINGS)
    except NvmlUnavailable as error:
        # `make gpu-check` sets GRIDSHIFT_REQUIRE_GPU so that a GPU machine cannot pass by skipping.
        if os.environ.get("GRIDSHIFT_REQUIRE_GPU"):
            pytest.fail(f"GRIDSHIFT_REQUIRE_GPU is set but NVML is unavailable: {error}")
        pytest.skip(f"no GPU here: {error}")


def _recorded_sampler() -> PowerSampler:
    if not RECORDED_TRACE.is_file():
        pytest.skip(f"recorded trace not found at {RECORDED_TRACE}")
    # The whole recorded run 1 (idle, prefill, decode phases), replayed 8x faster so phases cross edges.
    return TracePowerSampler(PowerTrace.from_csv(RECORDED_TRACE, run="run1"), SETTINGS, speed=8.0)


def _synthetic_sampler() -> PowerSampler:
    trace = PowerTrace.steps([(0.3, 120.0), (0.4, 650.0), (0.2, 380.0)])
    return TracePowerSampler(trace, SETTINGS, gpu_count=2)


@pytest.fixture(params=["fake_synthetic", "fake_recorded", "real_gpu"])
def sampler(request: pytest.FixtureRequest) -> Iterator[PowerSampler]:
    factory = {
        "fake_synthetic": _synthetic_sampler,
        "fake_recorded": _recorded_sampler,
        "real_gpu": _real_sampler,
    }[request.param]
    made = factory()
    yield made
    made.close()


def test_phase_energy_is_consistent_with_its_duration_and_samples(sampler: PowerSampler) -> None:
    assert sampler.gpu_names() and all(sampler.gpu_names())
    wall_start = time.monotonic()
    with measured_phase(sampler, "steady") as result:
        time.sleep(PHASE_SECONDS)
    wall = time.monotonic() - wall_start
    (phase,) = result
    assert phase.name == "steady"
    assert phase.gpu_count == len(sampler.gpu_names())
    assert PHASE_SECONDS <= phase.duration_s <= wall
    # A 20 ms period gives ~75 samples over 1.5 s; a loaded CI machine may delay the thread.
    assert phase.sample_count >= 0.5 * PHASE_SECONDS / (SETTINGS.sample_period_ms / 1000)
    assert phase.mean_power_watts > 0
    assert phase.integrated_energy_joules == pytest.approx(phase.mean_power_watts * phase.duration_s)
    assert phase.p95_power_watts >= 0.5 * phase.mean_power_watts
    if phase.counter_energy_joules is not None:
        # The hardware counter and the integral of sampled power measure the same energy.
        assert phase.counter_vs_integrated is not None
        assert abs(phase.counter_vs_integrated) < 0.10, phase
        assert phase.energy_joules == phase.counter_energy_joules


def test_consecutive_phases_are_measured_separately(sampler: PowerSampler) -> None:
    sampler.begin_phase("first")
    time.sleep(0.3)
    first = sampler.end_phase()
    sampler.begin_phase("second")
    time.sleep(0.6)
    second = sampler.end_phase()
    assert (first.name, second.name) == ("first", "second")
    assert second.duration_s == pytest.approx(2 * first.duration_s, rel=0.25)
    assert first.integrated_energy_joules > 0 and second.integrated_energy_joules > 0


def test_phase_misuse_is_refused_naming_the_phase(sampler: PowerSampler) -> None:
    with pytest.raises(SamplerStateError, match="no phase is open"):
        sampler.end_phase()
    sampler.begin_phase("decode_b8")
    with pytest.raises(SamplerStateError, match="decode_b8"):
        sampler.begin_phase("decode_b16")
    time.sleep(0.05)
    sampler.end_phase()
    sampler.close()
    sampler.close()
    with pytest.raises(SamplerStateError, match="closed"):
        sampler.begin_phase("after")


def test_a_phase_ends_when_its_body_raises(sampler: PowerSampler) -> None:
    with pytest.raises(KeyError), measured_phase(sampler, "failing") as result:
        time.sleep(0.1)
        raise KeyError("workload failed")
    assert result[0].name == "failing"
    sampler.begin_phase("next")
    sampler.end_phase()
