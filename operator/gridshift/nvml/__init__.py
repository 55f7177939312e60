"""GPU power and energy measurement around workload phases, through NVML or a trace-replaying fake."""

from gridshift.nvml.phases import PhaseEnergy, PowerSample, summarise_phase
from gridshift.nvml.sampler import (
    NvmlPowerSampler,
    NvmlUnavailable,
    PowerReadError,
    PowerSampler,
    SamplerSettings,
    SamplerStateError,
    ThreadedPowerSampler,
    measured_phase,
)
from gridshift.nvml.trace import PowerTrace, TracePowerSampler

__all__ = [
    "NvmlPowerSampler",
    "NvmlUnavailable",
    "PhaseEnergy",
    "PowerReadError",
    "PowerSample",
    "PowerSampler",
    "PowerTrace",
    "SamplerSettings",
    "SamplerStateError",
    "ThreadedPowerSampler",
    "TracePowerSampler",
    "measured_phase",
    "summarise_phase",
]
