"""Profiling a served model: drive an OpenAI-compatible endpoint through a concurrency sweep, measure
latency, throughput and GPU energy per level, and build the GPUProfile the planner fits."""

from gridshift.profiling.build import FitCheck, build_gpu_profile, fit_and_check, prefill_rate, profile_points
from gridshift.profiling.energy import (
    EnergyMeter,
    EnergyMeterError,
    MeasuredPhase,
    MeteredPhase,
    PrometheusEnergyMeter,
    PrometheusEnergySettings,
)
from gridshift.profiling.load import (
    EndpointError,
    StreamRecord,
    WindowError,
    WindowStats,
    endpoint_url,
    queued_requests,
    summarise_window,
)
from gridshift.profiling.settings import LoadSettings
from gridshift.profiling.sweep import (
    LevelMeasurement,
    SilentObserver,
    SweepObserver,
    SweepResult,
    SweepStopped,
    run_sweep,
)
from gridshift.profiling.workload import RequestShape, cycle_shapes, fixed_shapes, load_trace_shapes

__all__ = [
    "EndpointError",
    "EnergyMeter",
    "EnergyMeterError",
    "FitCheck",
    "LevelMeasurement",
    "LoadSettings",
    "MeasuredPhase",
    "MeteredPhase",
    "PrometheusEnergyMeter",
    "PrometheusEnergySettings",
    "RequestShape",
    "SilentObserver",
    "StreamRecord",
    "SweepObserver",
    "SweepResult",
    "SweepStopped",
    "WindowError",
    "WindowStats",
    "build_gpu_profile",
    "cycle_shapes",
    "endpoint_url",
    "fit_and_check",
    "fixed_shapes",
    "load_trace_shapes",
    "prefill_rate",
    "profile_points",
    "queued_requests",
    "run_sweep",
    "summarise_window",
]
