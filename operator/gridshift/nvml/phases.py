"""Energy of one measured phase: the arithmetic that turns power samples and counter reads into joules.

Kept apart from the sampling threads so it can be checked on hand-made samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PowerSample:
    """Power of all sampled GPUs together at one instant."""

    at_s: float
    """Monotonic clock, seconds."""
    watts: float
    """Sum over the sampled GPUs, W."""


@dataclass(frozen=True)
class PhaseEnergy:
    """Energy and power of the sampled GPUs (together) over one named phase of a workload."""

    name: str
    duration_s: float
    """Wall time from the start to the end of the phase, s."""
    gpu_count: int
    sample_count: int
    """Power samples inside the phase, both edges included."""
    mean_power_watts: float
    """Time-weighted mean of the sampled power (integrated energy / duration), W."""
    p95_power_watts: float
    """95th percentile of the power samples, W."""
    integrated_energy_joules: float
    """Trapezoidal integral of the sampled power over the phase, J."""
    counter_energy_joules: float | None
    """Delta of the GPUs' total-energy counters over the phase, J; None where a GPU has no counter
    (before Volta) or the counter did not move forward."""

    @property
    def energy_joules(self) -> float:
        """Best estimate of the phase's energy: the hardware counter where there is one, J."""
        return self.counter_energy_joules if self.counter_energy_joules is not None else self.integrated_energy_joules

    @property
    def counter_vs_integrated(self) -> float | None:
        """(counter - integrated) / integrated: how far the two ways of measuring disagree."""
        if self.counter_energy_joules is None or self.integrated_energy_joules <= 0:
            return None
        return (self.counter_energy_joules - self.integrated_energy_joules) / self.integrated_energy_joules


def summarise_phase(
    name: str,
    samples: Sequence[PowerSample],
    *,
    started_at_s: float,
    ended_at_s: float,
    gpu_count: int,
    counter_start_millijoules: int | None,
    counter_end_millijoules: int | None,
) -> PhaseEnergy:
    """Energy of a phase from its power samples (which must cover both edges) and counter reads.

    Samples outside [started_at_s, ended_at_s] are ignored; power before the first and after the
    last inside sample is held at that sample's value, so edges that fall between samples count.
    """
    duration = ended_at_s - started_at_s
    if duration <= 0:
        raise ValueError(f"phase {name!r}: ended_at_s must be after started_at_s, got duration {duration:.6f} s")
    inside = [s for s in samples if started_at_s <= s.at_s <= ended_at_s]
    if not inside:
        raise ValueError(f"phase {name!r}: no power sample between its start and end")
    times = np.array([started_at_s] + [s.at_s for s in inside] + [ended_at_s])
    watts = np.array([inside[0].watts] + [s.watts for s in inside] + [inside[-1].watts])
    integrated = float(np.trapezoid(watts, times))
    counter: float | None = None
    if counter_start_millijoules is not None and counter_end_millijoules is not None:
        delta = counter_end_millijoules - counter_start_millijoules
        counter = delta / 1000.0 if delta > 0 else None
    sampled = np.array([s.watts for s in inside])
    return PhaseEnergy(
        name=name,
        duration_s=duration,
        gpu_count=gpu_count,
        sample_count=len(inside),
        mean_power_watts=integrated / duration,
        p95_power_watts=float(np.percentile(sampled, 95)),
        integrated_energy_joules=integrated,
        counter_energy_joules=counter,
    )
