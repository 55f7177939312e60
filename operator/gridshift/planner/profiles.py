"""Performance models of one model on one GPU type: decode step time, power and prefill rate.

A `PerformanceModel` is fitted by least squares (non-negative coefficients) from measured
operating points. Step time follows the shape our H100 measurements show
(shared/data/h100-llama3-8b-power): a fixed cost per step (weights read once), a cost per KV
position read (batch x context) and a cost per sequence (compute that grows with batch):

    step_ms(B, ctx) = a + b * B * ctx + c * B

Power rises with batch and saturates near the board limit; a linear-plus-log curve capped at
the highest power measured follows both the slow rise at small batch and the flattening:

    power_W(B) = min(cap, p0 + p1 * B + p2 * ln B)

This module does no I/O and knows no API object: profiles arrive as `ProfilePoint`s (a GPUProfile is
turned into them by gridshift.profiles_catalog.performance_model).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from gridshift.arrays import FloatArray
from gridshift.planner.cost import joules_per_token_of_step
from gridshift.planner.kvmemory import KvMemory, batch_limit

# Idle power of a replica holding its weights, as a fraction of the lowest decode power seen,
# when a profile does not say: our H100 drew 126 W loaded-but-idle against 373 W at batch 8.
IDLE_TO_MIN_ACTIVE_POWER_RATIO = 126.0 / 373.4

# Values of the node label nvidia.com/gpu.product (what GPUOffering.gpu_type and
# ReplicaShape.gpu_types hold), keyed by the short names data sets use.
GPU_PRODUCT_LABELS: dict[str, str] = {
    "L4": "NVIDIA-L4",
    "A10G": "NVIDIA-A10G",
    "H100": "NVIDIA-H100-80GB-HBM3",
    "H200": "NVIDIA-H200",
    "A100-80GB": "NVIDIA-A100-SXM4-80GB",
    "A100-40GB": "NVIDIA-A100-SXM4-40GB",
    "L40S": "NVIDIA-L40S",
    "B200": "NVIDIA-B200",
}

_GPU_NAME_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"H100", "H100"),
    (r"H200", "H200"),
    (r"A10G", "A10G"),
    (r"L4(?![0-9])", "L4"),
    (r"A100.*40\s*GB", "A100-40GB"),
    (r"A100", "A100-80GB"),
    (r"L40S", "L40S"),
    (r"B200", "B200"),
)


def gpu_product_label(name: str) -> str:
    """Map a GPU name as data sets spell it ('H100', 'NVIDIA A100-SXM4-40GB') to its node label value."""
    if name in GPU_PRODUCT_LABELS.values():
        return name
    for pattern, short in _GPU_NAME_PATTERNS:
        if re.search(pattern, name, flags=re.IGNORECASE):
            return GPU_PRODUCT_LABELS[short]
    known = ", ".join(sorted(GPU_PRODUCT_LABELS))
    raise ValueError(f"gpu name {name!r} is not one of the known GPU types ({known})")


@dataclass(frozen=True)
class ProfilePoint:
    """One measured decode operating point of a replica (all its GPUs)."""

    batch: int
    context_tokens: int
    step_time_ms: float
    power_watts: float
    prefill_tokens_per_s: float | None = None


@dataclass(frozen=True)
class PerformanceModel:
    """Fitted decode step time, power and prefill rate of one (model, GPU type, GPUs per replica)."""

    model: str
    gpu_type: str
    gpus_per_replica: int
    step_base_ms: float
    step_ms_per_kv_position: float
    step_ms_per_sequence: float
    power_base_watts: float
    power_watts_per_sequence: float
    power_watts_per_log_batch: float
    power_cap_watts: float
    idle_power_watts: float
    prefill_tokens_per_s: float
    max_batch: int
    """The largest batch measured: the profile says nothing beyond it."""
    kv_memory: KvMemory | None = None
    """GPU memory and model architecture, where both are known: bounds the batch by the KV cache."""
    scaled: bool = False
    """The profile's points were scaled from another GPU type's by datasheet figures, not measured."""

    def batch_limit(self, context_tokens: float) -> int:
        """The largest batch a replica runs with sequences of `context_tokens` positions: `max_batch`,
        lowered to what the KV cache holds (gridshift.planner.kvmemory); `max_batch` without `kv_memory`."""
        return batch_limit(self.max_batch, self.kv_memory, context_tokens)

    def step_time_ms(self, batch: int | float, context_tokens: float) -> float:
        """Decode step time = time per output token at this batch and mean context, ms."""
        return (
            self.step_base_ms
            + self.step_ms_per_kv_position * batch * context_tokens
            + self.step_ms_per_sequence * batch
        )

    def power_watts(self, batch: int | float) -> float:
        """Power of the whole replica while decoding `batch` sequences, W."""
        if batch <= 0:
            return self.idle_power_watts
        raw = (
            self.power_base_watts
            + self.power_watts_per_sequence * batch
            + self.power_watts_per_log_batch * math.log(max(batch, 1.0))
        )
        return min(self.power_cap_watts, raw)

    def joules_per_token(self, batch: int | float, context_tokens: float) -> float:
        """GPU energy per output token at this batch and context, J (facility overhead excluded)."""
        if batch <= 0:
            raise ValueError(f"batch must be positive, got {batch}")
        return joules_per_token_of_step(self.power_watts(batch), self.step_time_ms(batch, context_tokens), batch)


# Contexts spanning less than this ratio cannot tell the KV-read cost from the per-sequence cost.
MIN_CONTEXT_SPREAD = 1.5


def _relative_nnls(design: FloatArray, target: FloatArray, field: str) -> list[float]:
    """Non-negative least squares on relative errors: small-batch points count as much as large ones.

    ValueError naming the point where a measured value (`field`) is so small that its weight overflows. Found in
    review: a step time of 5e-324 ms reached the solver as infinity and was refused as "array must not contain
    infs or NaNs", naming no field."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        weighted = design / target[:, None]
    overflowed = ~np.isfinite(weighted).all(axis=1)
    if overflowed.any():
        index = int(np.argmax(overflowed))
        raise ValueError(f"points[{index}].{field} is {target[index]:.3g}: too small to fit (its weight overflows)")
    scale = np.abs(weighted).max(axis=0)
    scale[scale == 0] = 1.0
    coefficients, _ = nnls(weighted / scale, np.ones_like(target))
    return [float(v) for v in coefficients / scale]


def _fit_step(points: Sequence[ProfilePoint]) -> tuple[float, float, float]:
    batch = np.array([p.batch for p in points], dtype=float)
    context = np.array([max(p.context_tokens, 1) for p in points], dtype=float)
    step = np.array([p.step_time_ms for p in points], dtype=float)
    if context.max() / context.min() < MIN_CONTEXT_SPREAD:
        # With (nearly) one context, KV positions and batch are proportional and cannot be told apart:
        # the slope per sequence is put on KV reads at the mean context. That extrapolates conservatively
        # to longer contexts and matches the memory-bound decode our H100 measurements show.
        a, slope = _relative_nnls(np.column_stack([np.ones_like(batch), batch]), step, "step_time_ms")
        return a, slope / float(context.mean()), 0.0
    a, b, c = _relative_nnls(np.column_stack([np.ones_like(batch), batch * context, batch]), step, "step_time_ms")
    return a, b, c


def _fit_power(points: Sequence[ProfilePoint]) -> tuple[float, float, float, float]:
    batch = np.array([p.batch for p in points], dtype=float)
    power = np.array([p.power_watts for p in points], dtype=float)
    p0, p1, p2 = _relative_nnls(np.column_stack([np.ones_like(batch), batch, np.log(batch)]), power, "power_watts")
    return p0, p1, p2, float(power.max())


def fit_performance_model(
    points: Sequence[ProfilePoint],
    *,
    model: str,
    gpu_type: str,
    gpus_per_replica: int = 1,
    idle_power_watts: float | None = None,
    prefill_tokens_per_s: float | None = None,
    kv_memory: KvMemory | None = None,
    scaled: bool = False,
) -> PerformanceModel:
    """Fit step time and power to measured points by non-negative least squares.

    Raises ValueError naming the problem when the points cannot determine the curves.
    """
    if len(points) < 2:
        raise ValueError(f"points: need at least 2 measured points to fit, got {len(points)}")
    for index, point in enumerate(points):
        if point.batch < 1:
            raise ValueError(f"points[{index}].batch must be >= 1, got {point.batch}")
        if point.context_tokens < 0:
            raise ValueError(f"points[{index}].context_tokens must be >= 0, got {point.context_tokens}")
        if not point.step_time_ms > 0:
            raise ValueError(f"points[{index}].step_time_ms must be > 0, got {point.step_time_ms}")
        if not point.power_watts > 0:
            raise ValueError(f"points[{index}].power_watts must be > 0, got {point.power_watts}")
    if len({p.batch for p in points}) < 2:
        raise ValueError("points: need at least two distinct batch sizes to fit how step time grows with batch")
    if gpus_per_replica < 1:
        raise ValueError(f"gpus_per_replica must be >= 1, got {gpus_per_replica}")
    if prefill_tokens_per_s is None:
        measured = [p.prefill_tokens_per_s for p in points if p.prefill_tokens_per_s is not None]
        if not measured:
            raise ValueError(
                "prefill_tokens_per_s: not given and no point carries prefill_tokens_per_s; "
                "the SLO capacity model needs the prefill rate"
            )
        prefill_tokens_per_s = float(np.mean(measured))
    if not prefill_tokens_per_s > 0:
        raise ValueError(f"prefill_tokens_per_s must be > 0, got {prefill_tokens_per_s}")
    a, b, c = _fit_step(points)
    p0, p1, p2, cap = _fit_power(points)
    if idle_power_watts is None:
        idle_power_watts = IDLE_TO_MIN_ACTIVE_POWER_RATIO * min(p.power_watts for p in points)
    if idle_power_watts < 0:
        raise ValueError(f"idle_power_watts must be >= 0, got {idle_power_watts}")
    return PerformanceModel(
        model=model,
        gpu_type=gpu_type,
        gpus_per_replica=gpus_per_replica,
        step_base_ms=a,
        step_ms_per_kv_position=b,
        step_ms_per_sequence=c,
        power_base_watts=p0,
        power_watts_per_sequence=p1,
        power_watts_per_log_batch=p2,
        power_cap_watts=cap,
        idle_power_watts=float(idle_power_watts),
        prefill_tokens_per_s=float(prefill_tokens_per_s),
        max_batch=max(p.batch for p in points),
        kv_memory=kv_memory,
        scaled=scaled,
    )
