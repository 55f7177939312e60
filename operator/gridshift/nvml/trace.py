"""A PowerSampler without a GPU: replays a synthetic or recorded power trace against the wall clock.

The trace is piecewise constant (each sample holds until the next); the fake's energy counter is
the trace's exact integral, so its counter and its sampled power agree as a real GPU's should.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import TypedDict, Unpack

import numpy as np

from gridshift.csv_rows import csv_rows, open_csv
from gridshift.numerals import NotFinite, plain_number, shown
from gridshift.nvml.sampler import NvmlUnavailable, SamplerSettings, ThreadedPowerSampler


@dataclass(frozen=True)
class PowerTrace:
    """Power of one GPU over time: `watts[i]` holds from `offsets_s[i]` until the next offset."""

    offsets_s: tuple[float, ...]
    """Start of each sample from the trace's start, s; the first is 0, strictly increasing."""
    watts: tuple[float, ...]
    duration_s: float
    """Length of the trace, s; it repeats after this."""

    def __post_init__(self) -> None:
        if not self.offsets_s or len(self.offsets_s) != len(self.watts):
            raise ValueError("trace: offsets_s and watts must be non-empty and of equal length")
        if self.offsets_s[0] != 0.0:
            raise ValueError(f"trace: offsets_s must start at 0, got {self.offsets_s[0]}")
        if any(b <= a for a, b in zip(self.offsets_s, self.offsets_s[1:], strict=False)):
            raise ValueError("trace: offsets_s must be strictly increasing")
        if self.duration_s <= self.offsets_s[-1]:
            raise ValueError(f"trace: duration_s must exceed the last offset, got {self.duration_s}")
        if any(not w >= 0 for w in self.watts):
            raise ValueError("trace: watts must be >= 0")

    @classmethod
    def steps(cls, levels: Sequence[tuple[float, float]]) -> PowerTrace:
        """A synthetic trace of (seconds, watts) steps."""
        offsets, watts, at = [], [], 0.0
        for seconds, level in levels:
            if seconds <= 0:
                raise ValueError(f"trace: step lengths must be > 0 s, got {seconds}")
            offsets.append(at)
            watts.append(level)
            at += seconds
        return cls(tuple(offsets), tuple(watts), at)

    @classmethod
    def from_csv(cls, path: Path, *, run: str | None = None, phase: str | None = None) -> PowerTrace:
        """Read a recorded trace with columns `t_s,power_w` (and optionally `run,phase` to select rows).

        The format of shared/data/h100-llama3-8b-power/power_trace.csv (20 ms NVML samples).
        """
        times: list[float] = []
        watts: list[float] = []
        lines: list[int] = []
        try:
            with open_csv(path) as handle:
                for line, row in csv_rows(handle, ("t_s", "power_w"), str(path)):
                    if (run is not None and row.get("run") != run) or (phase is not None and row.get("phase") != phase):
                        continue
                    times.append(_finite(row.get("t_s"), f"{path}, line {line}: t_s"))
                    watts.append(_finite(row.get("power_w"), f"{path}, line {line}: power_w"))
                    lines.append(line)
                    if watts[-1] < 0:
                        # Found in review: refused later, by PowerTrace, as "trace: watts must be >= 0", no line.
                        raise ValueError(
                            f"{path}, line {line}: power_w must be >= 0 W, got {shown(row.get('power_w') or '')}"
                        )
        except UnicodeDecodeError as error:
            raise ValueError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
        except OSError as error:
            raise ValueError(f"{path}: cannot read ({error.strerror})") from None
        if len(times) < 2:
            raise ValueError(f"{path}: fewer than 2 samples match run={run!r} phase={phase!r}")
        steps = np.diff(times)
        if not (steps > 0).any():
            if (steps == 0).all():
                raise ValueError(f"{path}: every sample has the same t_s; a trace needs time to pass")
            # A step back is read as the next phase starting (below); a trace that only ever steps back has no
            # time passing in any phase. Found in review: 0.5, 0.4, 0.3 was "every sample has the same t_s".
            back = int(np.argmax(steps < 0))
            raise ValueError(
                f"{path}, line {lines[back + 1]}: t_s goes back ({times[back]:g} on line {lines[back]}, then "
                f"{times[back + 1]:g}) and never forward: t_s counts up from each phase's start, and a step back "
                "begins the next phase"
            )
        period = float(np.median(steps[steps > 0]))
        # Each phase's clock restarts at 0: phases selected together are laid end to end, a period apart.
        offsets = [0.0]
        for step in steps:
            offsets.append(offsets[-1] + (float(step) if step > 0 else period))
        return cls(tuple(offsets), tuple(watts), offsets[-1] + period)

    def mean_watts(self) -> float:
        """Time-weighted mean power over one repetition, W."""
        return self.energy_joules(self.duration_s) / self.duration_s

    def power_at(self, elapsed_s: float) -> float:
        """Power at `elapsed_s` from the start of the replay (the trace repeats), W."""
        position = elapsed_s % self.duration_s
        index = int(np.searchsorted(np.asarray(self.offsets_s), position, side="right")) - 1
        return float(self.watts[max(index, 0)])

    def energy_joules(self, elapsed_s: float) -> float:
        """Exact energy from the start of the replay to `elapsed_s`, J."""
        offsets = np.asarray(self.offsets_s)
        widths = np.diff(np.append(offsets, self.duration_s))
        per_repeat = float(np.dot(widths, self.watts))
        repeats, position = divmod(max(elapsed_s, 0.0), self.duration_s)
        index = int(np.searchsorted(offsets, position, side="right")) - 1
        partial = float(np.dot(widths[:index], self.watts[:index])) + (position - offsets[index]) * self.watts[index]
        return float(repeats * per_repeat + partial)


class TraceReplay(TypedDict, total=False):
    """How a trace is replayed (TracePowerReader's and TracePowerSampler's options)."""

    gpu_count: int
    gpu_name: str
    speed: float
    has_energy_counter: bool
    clock: Callable[[], float]


@dataclass(eq=False)
class TracePowerReader:
    """Reads power from a trace at the clock's time; `gpu_count` identical GPUs."""

    trace: PowerTrace
    _: KW_ONLY
    gpu_count: int = 1
    gpu_name: str = "Fake GPU (trace replay)"
    speed: float = 1.0
    has_energy_counter: bool = True
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        if self.gpu_count < 1:
            raise NvmlUnavailable("the fake sampler was given no GPU (gpu_count=0)")
        if self.speed <= 0:
            raise ValueError(f"speed must be > 0, got {self.speed}")
        self._origin = self.clock()
        # A real counter counts since driver load, not from zero.
        self._counter_offset_mj = 123_456_789

    def _trace_time(self) -> float:
        return (self.clock() - self._origin) * self.speed

    def gpu_names(self) -> tuple[str, ...]:
        return (self.gpu_name,) * self.gpu_count

    def read_power_watts(self) -> list[float]:
        return [self.trace.power_at(self._trace_time())] * self.gpu_count

    def read_energy_millijoules(self) -> list[int] | None:
        if not self.has_energy_counter:
            return None
        # Energy over wall time: the trace's energy over trace time, scaled back by the replay speed.
        joules = self.trace.energy_joules(self._trace_time()) / self.speed
        return [self._counter_offset_mj + int(joules * 1000.0)] * self.gpu_count

    def shutdown(self) -> None:
        return None


class TracePowerSampler(ThreadedPowerSampler):
    """PowerSampler that replays a PowerTrace (`speed` times faster than recorded) instead of reading GPUs."""

    def __init__(
        self, trace: PowerTrace, settings: SamplerSettings | None = None, **replay: Unpack[TraceReplay]
    ) -> None:
        """`replay` as TracePowerReader takes it; the settings' gpu_indices, when given, set the GPU count."""
        settings = settings or SamplerSettings()
        if settings.gpu_indices is not None:
            replay["gpu_count"] = len(settings.gpu_indices)
        super().__init__(TracePowerReader(trace, **replay), settings, replay.get("clock", time.monotonic))


def _finite(text: str | None, where: str) -> float:
    """One cell as a finite number, read strictly (gridshift.numerals) after the spaces around it (the file's
    layout); ValueError naming the file, line and column otherwise (found in review: a short row was a TypeError
    traceback, `inf` an OverflowError, `abc` named neither file nor line, float() read "1_0" and "１２")."""
    if text is None:
        raise ValueError(f"{where}: missing (the row is short)")
    try:
        return plain_number(text.strip())
    except NotFinite:  # NaN, an infinity, or 1e999 (float() reads it as inf)
        raise ValueError(f"{where}: must be a finite number, got {shown(text)}") from None
    except ValueError:
        raise ValueError(f"{where}: not a number: {shown(text)}") from None
