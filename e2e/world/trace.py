"""Request traces: the Azure LLM inference traces, tiled and time-scaled to a chosen request rate.

A trace is a list of (arrival offset s, prompt tokens, output tokens). `TraceLoad` repeats it end
to end and compresses or stretches its arrival times so that the mean rate is the one asked for,
keeping the burstiness and the token-length mix of the recording.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .profiles import REPO_ROOT

SHIPPED_DATA = Path(__file__).resolve().parent / "data"


class TraceName(StrEnum):
    """The two recorded Azure traces (Patel et al., "Splitwise", ISCA 2024; CC-BY 4.0)."""

    CONVERSATION = "conv"
    CODE = "code"


def shared_data_dir() -> Path:
    return Path(os.environ.get("GRIDSHIFT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@dataclass(frozen=True)
class Trace:
    """Arrival offsets (s, from 0, sorted) and token counts of one recording."""

    name: str
    offsets_s: npt.NDArray[np.float64]
    prompt_tokens: npt.NDArray[np.int64]
    output_tokens: npt.NDArray[np.int64]
    duration_s: float
    """Length of one tile: last arrival plus one mean gap, so tiles join without a burst."""

    @property
    def mean_rate_per_s(self) -> float:
        return len(self.offsets_s) / self.duration_s


def load_trace(name: TraceName | str) -> Trace:
    """The full trace from shared/data/llm-traces when present, else the slice shipped here."""
    trace_name = TraceName(name)
    upstream = "conv" if trace_name is TraceName.CONVERSATION else "code"
    full = shared_data_dir() / "llm-traces" / f"AzureLLMInferenceTrace_{upstream}.csv"
    path = full if full.is_file() else SHIPPED_DATA / f"azure_llm_trace_{upstream}_slice.csv"
    return parse_trace_csv(path, name=trace_name.value)


def parse_trace_csv(path: Path, *, name: str) -> Trace:
    """Reads `TIMESTAMP,ContextTokens,GeneratedTokens` (timestamps with 7 fractional digits)."""
    raw = np.loadtxt(path, delimiter=",", skiprows=1, dtype=str)
    if raw.ndim != 2 or raw.shape[1] != 3 or len(raw) < 2:
        raise ValueError(f"trace {path}: expected TIMESTAMP,ContextTokens,GeneratedTokens rows, got shape {raw.shape}")
    stamps = np.array([np.datetime64(value.replace(" ", "T")[:26]) for value in raw[:, 0]])
    offsets = (stamps - stamps.min()).astype("timedelta64[us]").astype(np.float64) / 1e6
    order = np.argsort(offsets, kind="stable")
    offsets = offsets[order]
    prompt = raw[order, 1].astype(np.int64)
    output = np.maximum(raw[order, 2].astype(np.int64), 1)
    mean_gap = float(offsets[-1]) / (len(offsets) - 1)
    return Trace(name, offsets, prompt, output, float(offsets[-1]) + mean_gap)


@dataclass(frozen=True)
class Arrivals:
    """Requests arriving in one window: times in simulated seconds, token counts."""

    times_s: npt.NDArray[np.float64]
    prompt_tokens: npt.NDArray[np.int64]
    output_tokens: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.times_s)


class TraceLoad:
    """A trace tiled forever and scaled to `rate_per_s` mean arrivals per simulated second."""

    def __init__(self, trace: Trace, rate_per_s: float, *, start_s: float = 0.0) -> None:
        if not (rate_per_s >= 0 and math.isfinite(rate_per_s)):
            raise ValueError(f"load rate_per_s: must be a finite number >= 0, got {rate_per_s}")
        self.trace = trace
        self.rate_per_s = rate_per_s
        self.start_s = start_s

    def arrivals(self, t0: float, t1: float) -> Arrivals:
        """Requests arriving in [t0, t1) (simulated seconds on the world's axis)."""
        if self.rate_per_s == 0 or t1 <= t0:
            return _EMPTY
        stretch = self.trace.mean_rate_per_s / self.rate_per_s
        u0, u1 = (max(t0, self.start_s) - self.start_s) / stretch, (t1 - self.start_s) / stretch
        if u1 <= u0:
            return _EMPTY
        length = self.trace.duration_s
        times: list[npt.NDArray[np.float64]] = []
        picks: list[npt.NDArray[np.intp]] = []
        for tile in range(int(u0 // length), int(u1 // length) + 1):
            lo = np.searchsorted(self.trace.offsets_s, u0 - tile * length, side="left")
            hi = np.searchsorted(self.trace.offsets_s, u1 - tile * length, side="left")
            if hi > lo:
                index = np.arange(lo, hi)
                picks.append(index)
                times.append((self.trace.offsets_s[index] + tile * length) * stretch + self.start_s)
        if not picks:
            return _EMPTY
        index = np.concatenate(picks)
        return Arrivals(np.concatenate(times), self.trace.prompt_tokens[index], self.trace.output_tokens[index])


_EMPTY = Arrivals(np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
