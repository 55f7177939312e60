"""Trace tiling and rate scaling."""

from __future__ import annotations

import numpy as np
import pytest
from e2e.world.trace import TraceLoad, load_trace


def test_full_traces_have_the_documented_shape() -> None:
    conv, code = load_trace("conv"), load_trace("code")
    assert len(conv.offsets_s) == 19_366
    assert conv.mean_rate_per_s == pytest.approx(5.5, abs=0.1)
    assert conv.prompt_tokens.mean() == pytest.approx(1155, abs=1)
    assert code.output_tokens.mean() == pytest.approx(28, abs=1)
    assert np.all(np.diff(conv.offsets_s) >= 0)


@pytest.mark.parametrize("rate", [0.5, 20.0, 300.0])
def test_load_is_scaled_to_the_rate_and_tiles_without_gaps(rate: float) -> None:
    trace = load_trace("conv")
    load = TraceLoad(trace, rate)
    span = 3 * trace.duration_s * trace.mean_rate_per_s / rate  # three tiles
    pieces = [load.arrivals(t, t + span / 50) for t in np.linspace(0, span, 51)[:-1]]
    times = np.concatenate([p.times_s for p in pieces])
    assert len(times) == 3 * len(trace.offsets_s)
    assert len(times) / span == pytest.approx(rate, rel=1e-3)
    assert np.all(np.diff(times) >= 0)
    assert np.concatenate([p.prompt_tokens for p in pieces]).mean() == pytest.approx(trace.prompt_tokens.mean())


def test_windows_partition_arrivals_and_start_offsets_them() -> None:
    load = TraceLoad(load_trace("code"), 10.0, start_s=100.0)
    assert len(load.arrivals(0, 100)) == 0
    whole = load.arrivals(100, 700)
    halves = len(load.arrivals(100, 400)) + len(load.arrivals(400, 700))
    assert len(whole) == halves
    assert whole.times_s.min() >= 100


def test_bad_rate_is_named() -> None:
    with pytest.raises(ValueError, match="rate_per_s"):
        TraceLoad(load_trace("code"), -1.0)
