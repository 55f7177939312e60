"""Phase energy arithmetic and trace replay, checked against hand-made samples and the recorded H100 run."""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from gridshift.nvml import (
    PowerReadError,
    PowerSample,
    PowerTrace,
    SamplerSettings,
    ThreadedPowerSampler,
    TracePowerSampler,
    measured_phase,
    summarise_phase,
)
from tests.conftest import SHARED_DATA

H100_DIR = SHARED_DATA / "h100-llama3-8b-power"


def test_integrated_energy_of_a_linear_ramp_is_exact() -> None:
    # 100 W rising to 300 W over 1 s: 200 J, mean 200 W.
    samples = [PowerSample(at_s=t, watts=100.0 + 200.0 * t) for t in np.linspace(0.0, 1.0, 11)]
    phase = summarise_phase(
        "ramp",
        samples,
        started_at_s=0.0,
        ended_at_s=1.0,
        gpu_count=1,
        counter_start_millijoules=5_000_000,
        counter_end_millijoules=5_210_000,
    )
    assert phase.integrated_energy_joules == pytest.approx(200.0)
    assert phase.mean_power_watts == pytest.approx(200.0)
    assert phase.counter_energy_joules == pytest.approx(210.0)
    assert phase.counter_vs_integrated == pytest.approx(0.05)
    assert phase.energy_joules == pytest.approx(210.0)
    assert phase.p95_power_watts == pytest.approx(290.0)


def test_edges_between_samples_hold_the_nearest_sample_and_outside_samples_are_ignored() -> None:
    samples = [
        PowerSample(0.0, 999.0),
        PowerSample(0.2, 100.0),
        PowerSample(0.8, 100.0),
        PowerSample(1.5, 999.0),
    ]
    phase = summarise_phase(
        "hold",
        samples,
        started_at_s=0.1,
        ended_at_s=1.1,
        gpu_count=1,
        counter_start_millijoules=None,
        counter_end_millijoules=None,
    )
    assert phase.sample_count == 2
    assert phase.integrated_energy_joules == pytest.approx(100.0)
    assert phase.counter_energy_joules is None and phase.counter_vs_integrated is None
    assert phase.energy_joules == phase.integrated_energy_joules


def test_a_counter_that_did_not_advance_is_not_trusted() -> None:
    phase = summarise_phase(
        "stuck",
        [PowerSample(0.0, 50.0), PowerSample(1.0, 50.0)],
        started_at_s=0.0,
        ended_at_s=1.0,
        gpu_count=1,
        counter_start_millijoules=7,
        counter_end_millijoules=7,
    )
    assert phase.counter_energy_joules is None


@pytest.mark.parametrize(
    ("start", "end", "samples", "message"),
    [
        (1.0, 1.0, [PowerSample(1.0, 1.0)], "ended_at_s must be after started_at_s"),
        (0.0, 1.0, [PowerSample(2.0, 1.0)], "no power sample"),
    ],
)
def test_bad_phases_are_refused(start: float, end: float, samples: list[PowerSample], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        summarise_phase(
            "bad",
            samples,
            started_at_s=start,
            ended_at_s=end,
            gpu_count=1,
            counter_start_millijoules=None,
            counter_end_millijoules=None,
        )


def test_trace_energy_matches_a_fine_numerical_integral() -> None:
    trace = PowerTrace.steps([(0.25, 100.0), (0.5, 400.0), (0.25, 200.0)])
    assert trace.duration_s == pytest.approx(1.0)
    assert trace.mean_watts() == pytest.approx(275.0)
    for elapsed in (0.1, 0.6, 0.99, 1.0, 2.37):
        grid = np.linspace(0.0, elapsed, 20001)
        numeric = float(np.mean([trace.power_at(t) for t in grid[:-1]])) * elapsed
        assert trace.energy_joules(elapsed) == pytest.approx(numeric, rel=2e-3)
    assert trace.power_at(1.3) == trace.power_at(0.3) == 400.0


@pytest.mark.parametrize(
    ("offsets", "watts", "duration", "message"),
    [
        ((), (), 1.0, "non-empty"),
        ((0.1,), (5.0,), 1.0, "start at 0"),
        ((0.0, 0.0), (5.0, 5.0), 1.0, "strictly increasing"),
        ((0.0, 0.5), (5.0, 5.0), 0.5, "duration_s must exceed"),
        ((0.0,), (-1.0,), 1.0, "watts must be >= 0"),
    ],
)
def test_bad_traces_are_refused(
    offsets: tuple[float, ...], watts: tuple[float, ...], duration: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        PowerTrace(offsets, watts, duration)


def _recorded_rows() -> list[dict[str, str]]:
    with (H100_DIR / "measurements.csv").open(newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["kind"] == "decode"]


def test_recorded_decode_traces_average_to_the_published_phase_power(shared_data: object) -> None:
    rows = [r for r in _recorded_rows() if r["run"] == "run1"]
    assert len(rows) >= 5
    for row in rows:
        trace = PowerTrace.from_csv(H100_DIR / "power_trace.csv", run=row["run"], phase=row["phase"])
        assert trace.mean_watts() == pytest.approx(float(row["avg_power_w"]), rel=0.02), row["phase"]


def test_the_fake_replays_a_recorded_phase_at_its_recorded_power(shared_data: object) -> None:
    trace = PowerTrace.from_csv(H100_DIR / "power_trace.csv", run="run1", phase="decode_b128_ctx2048")
    speed = 10.0
    sampler = TracePowerSampler(trace, SamplerSettings(sample_period_ms=5.0), speed=speed)
    with sampler, measured_phase(sampler, "replay") as result:
        time.sleep(trace.duration_s / speed)
    (phase,) = result
    assert phase.mean_power_watts == pytest.approx(trace.mean_watts(), rel=0.03)
    assert phase.counter_energy_joules == pytest.approx(trace.mean_watts() * phase.duration_s, rel=0.03)


def test_the_fake_sums_its_gpus() -> None:
    trace = PowerTrace.steps([(1.0, 250.0)])
    sampler = TracePowerSampler(trace, SamplerSettings(gpu_indices=(0, 1, 2, 3)))
    assert len(sampler.gpu_names()) == 4
    with sampler, measured_phase(sampler, "four") as result:
        time.sleep(0.2)
    assert result[0].mean_power_watts == pytest.approx(1000.0)
    assert result[0].counter_energy_joules == pytest.approx(1000.0 * result[0].duration_s, rel=0.02)


class _DescheduledClock:
    """A monotonic clock that jumps 40 ms at every read, as if the thread lost the CPU after each call."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.now += 0.04
            return self.now


def test_counter_energy_is_divided_by_the_window_the_counter_covers() -> None:
    # Counter reads, power reads and clock reads each lose 40 ms here; the counter's energy over the phase
    # must still be divided by the time between the two counter reads, whatever happened between them.
    clock = _DescheduledClock()
    trace = PowerTrace.steps([(10.0, 300.0)])
    sampler = TracePowerSampler(trace, SamplerSettings(sample_period_ms=10_000.0), clock=clock)
    with sampler:
        time.sleep(0.2)  # the sampling thread's first read is done; it now waits 10 s of real time
        sampler.begin_phase("jumpy")
        clock.now += 1.0
        phase = sampler.end_phase()
    assert phase.counter_energy_joules is not None
    assert phase.counter_energy_joules / phase.duration_s == pytest.approx(300.0, rel=1e-3)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"t_s,power_w\n0.00,300\n0.02\n", r"line 3: power_w: missing \(the row is short\)"),
        (b"t_s,power_w\n0.00,300\n0.02,inf\n", r"line 3: power_w: must be a finite number, got 'inf'"),
        (b"t_s,power_w\n0.00,300\n0.02,nan\n", r"line 3: power_w: must be a finite number, got 'nan'"),
        (b"t_s,power_w\n0.00,300\n0.02,abc\n", r"line 3: power_w: not a number: 'abc'"),
        (b"t_s,power_w\n0.00,300\n\n\n0.02,abc\n", r"line 5: power_w: not a number"),  # blank lines count
        (b"t_s,power_w\n0.00,300\n0.00,310\n", r"every sample has the same t_s"),
        # Found in review: "trace: watts must be >= 0", naming neither file nor line; and a t_s that only ever
        # steps back (each step back begins a phase) was "every sample has the same t_s".
        (b"t_s,power_w\n0.00,300\n0.02,-5\n", r"line 3: power_w must be >= 0 W, got '-5'"),
        (
            b"t_s,power_w\n0.00,300\n0.02,-1." + b"0" * 100_000 + b"\n",
            r"must be >= 0 W, got '-1\.0{16}\.\.\. \(100,003 characters\)$",
        ),
        (
            b"t_s,power_w\n0.5,300\n0.4,310\n0.3,320\n",
            r"line 3: t_s goes back \(0.5 on line 2, then 0.4\) and never forward: .* a step back begins the next",
        ),
        (b"t_s,power_w\n0.00,300\n0.02,\xff\n", r"not UTF-8 text"),
        # float() read each of these (review): "1_0" as 10, full-width digits as ASCII ones, 1e999 as inf.
        (b"t_s,power_w\n0.00,300\n0.02,3_10\n", r"line 3: power_w: not a number: '3_10'$"),
        ("t_s,power_w\n0.00,300\n0.02,３１０\n".encode(), r"line 3: power_w: not a number: '３１０'$"),
        ("t_s,power_w\n0.00,300\n٠.٠٢,310\n".encode(), r"line 3: t_s: not a number: '٠.٠٢'$"),
        ("t_s,power_w\n0.00,300\n0.0２,310\n".encode(), r"line 3: t_s: not a number: '0.0２'$"),
        (b"t_s,power_w\n0.00,300\n0.02,1e999\n", r"line 3: power_w: must be a finite number, got '1e999'$"),
        # A broken cell of 100,000 characters went whole into the message (review).
        (
            b"t_s,power_w\n0.00,300\n0.02," + b"3" * 50_000 + b"x" * 50_000 + b"\n",
            r"power_w: not a number: '3{19}\.\.\. \(100,000 characters\)$",
        ),
    ],
)
def test_a_bad_power_trace_is_refused_naming_file_and_line(tmp_path: Path, body: bytes, message: str) -> None:
    # Found in review: a short row was a TypeError traceback, inf an OverflowError, equal times a NaN
    # ValueError, and `abc` or a non-UTF-8 byte named neither the file nor the line.
    path = tmp_path / "power.csv"
    path.write_bytes(body)
    with pytest.raises(ValueError, match=message) as caught:
        PowerTrace.from_csv(path)
    assert str(path) in str(caught.value)


def test_a_power_trace_with_spaces_around_its_cells_reads_as_without(tmp_path: Path) -> None:
    # The spaces are the file's layout (float() stripped them; the strict reading strips them first).
    tight, spaced = tmp_path / "tight.csv", tmp_path / "spaced.csv"
    tight.write_text("t_s,power_w\n0,300\n0.02,310.5\n0.04,1e2\n")
    spaced.write_text("t_s,power_w\n 0 ,300\n0.02,\t310.5\n0.04 , 1e2 \n")
    expected = PowerTrace((0.0, 0.02, 0.04), (300.0, 310.5, 100.0), 0.06)
    assert PowerTrace.from_csv(spaced) == PowerTrace.from_csv(tight) == expected


def test_a_power_trace_saved_with_a_bom_is_read(tmp_path: Path) -> None:
    # Review: a file saved by Excel starts with a BOM, and "missing column(s) ['t_s']" was the answer.
    path = tmp_path / "power.csv"
    path.write_text("\ufefft_s,power_w\n0,300\n0.02,310\n", encoding="utf-8")
    assert PowerTrace.from_csv(path).mean_watts() == pytest.approx(305.0)


class _FailingReader:
    """A PowerReader whose power reads fail after the first few (a GPU fell off the bus mid-sweep)."""

    def __init__(self, good_reads: int) -> None:
        self.left = good_reads

    def gpu_names(self) -> tuple[str, ...]:
        return ("NVIDIA H100 80GB HBM3",)

    def read_power_watts(self) -> list[float]:
        self.left -= 1
        if self.left < 0:
            raise OSError("NVML error 15: GPU is lost")
        return [300.0]

    def read_energy_millijoules(self) -> list[int] | None:
        return None

    def shutdown(self) -> None:
        return None


def test_a_power_read_that_fails_mid_sweep_is_one_named_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # Found in review: the sampling thread died with a traceback of its own, and the main thread's next read
    # raised pynvml's error as a second traceback.
    escaped: list[object] = []
    monkeypatch.setattr(threading, "excepthook", escaped.append)
    sampler = ThreadedPowerSampler(_FailingReader(good_reads=3), SamplerSettings(sample_period_ms=5))
    try:
        sampler.begin_phase("decode_c1")
        time.sleep(0.1)
        with pytest.raises(PowerReadError, match="reading GPU power failed: OSError: NVML error 15: GPU is lost"):
            sampler.end_phase()
    finally:
        sampler.close()
    assert escaped == []
