"""The NVML adapter's handling of the driver: clear errors when something is missing, fallbacks when a reading is.

A stand-in `pynvml` module drives the adapter's decisions here; the real driver runs in the contract tests.
"""

from __future__ import annotations

import sys
import time
from types import SimpleNamespace
from typing import Any

import pytest

from gridshift.nvml import NvmlPowerSampler, NvmlUnavailable, SamplerSettings, TracePowerSampler
from gridshift.nvml.trace import PowerTrace


class _NVMLError(Exception):
    def __init__(self, value: int = 3) -> None:
        super().__init__(f"NVML error {value}")


def stand_in_pynvml(
    *,
    names: tuple[str, ...] = ("NVIDIA H100 80GB HBM3",),
    watts: float = 300.0,
    instant: bool = True,
    counter: bool = True,
    init_fails: bool = False,
) -> SimpleNamespace:
    calls: dict[str, int] = {"shutdown": 0, "instant": 0, "average": 0}
    started = time.monotonic()

    def init() -> None:
        if init_fails:
            raise _NVMLError(12)

    def field_values(handle: int, fields: list[int]) -> list[Any]:
        calls["instant"] += 1
        status = 0 if instant else 13
        return [SimpleNamespace(nvmlReturn=status, value=SimpleNamespace(uiVal=int(watts * 1000)))]

    def power_usage(handle: int) -> int:
        calls["average"] += 1
        return int(watts * 1000)

    def energy(handle: int) -> int:
        if not counter:
            raise _NVMLError(3)
        return int((time.monotonic() - started) * watts * 1000)

    def shutdown() -> None:
        calls["shutdown"] += 1

    return SimpleNamespace(
        NVMLError=_NVMLError,
        NVML_SUCCESS=0,
        NVML_FI_DEV_POWER_INSTANT=186,
        nvmlInit=init,
        nvmlShutdown=shutdown,
        nvmlDeviceGetCount=lambda: len(names),
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda h: names[h],
        nvmlDeviceGetFieldValues=field_values,
        nvmlDeviceGetPowerUsage=power_usage,
        nvmlDeviceGetTotalEnergyConsumption=energy,
        calls=calls,
    )


def test_missing_python_binding_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.raises(NvmlUnavailable, match="nvidia-ml-py"):
        NvmlPowerSampler()


def test_missing_driver_names_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", stand_in_pynvml(init_fails=True))
    with pytest.raises(NvmlUnavailable, match=r"libnvidia-ml\.so\.1"):
        NvmlPowerSampler()


def test_no_gpu_is_reported_and_nvml_released(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = stand_in_pynvml(names=())
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    with pytest.raises(NvmlUnavailable, match="no GPU"):
        NvmlPowerSampler()
    assert nvml.calls["shutdown"] == 1


def test_gpu_indices_beyond_the_machine_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", stand_in_pynvml(names=("a", "b")))
    with pytest.raises(NvmlUnavailable, match=r"gpu_indices \[2, 5\].*2 GPU"):
        NvmlPowerSampler(SamplerSettings(gpu_indices=(0, 2, 5)))


def test_instant_power_is_preferred_and_summed_over_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = stand_in_pynvml(names=("a", "b"), watts=200.0)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    with NvmlPowerSampler(SamplerSettings(sample_period_ms=5.0)) as sampler:
        assert sampler.power_reading == "instant"
        sampler.begin_phase("p")
        time.sleep(0.1)
        phase = sampler.end_phase()
    assert phase.mean_power_watts == pytest.approx(400.0)
    assert phase.counter_energy_joules == pytest.approx(400.0 * phase.duration_s, rel=0.1)
    assert nvml.calls["average"] == 0 and nvml.calls["instant"] > 0
    assert nvml.calls["shutdown"] == 1


def test_without_instant_power_or_counter_the_sampler_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = stand_in_pynvml(instant=False, counter=False, watts=150.0)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    with NvmlPowerSampler() as sampler:
        assert sampler.power_reading == "average"
        sampler.begin_phase("p")
        time.sleep(0.05)
        phase = sampler.end_phase()
    assert phase.counter_energy_joules is None
    assert phase.energy_joules == phase.integrated_energy_joules == pytest.approx(150.0 * phase.duration_s)


def test_a_fake_without_gpus_is_refused() -> None:
    with pytest.raises(NvmlUnavailable, match="no GPU"):
        TracePowerSampler(PowerTrace.steps([(1.0, 1.0)]), gpu_count=0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sample_period_ms": 0.1}, "sample_period_ms"),
        ({"gpu_indices": ()}, "gpu_indices"),
        ({"gpu_indices": (-1,)}, "gpu_indices"),
        ({"gpu_indices": (0, 0)}, "gpu_indices must name each GPU once"),
    ],
)
def test_bad_settings_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        SamplerSettings(**kwargs)
