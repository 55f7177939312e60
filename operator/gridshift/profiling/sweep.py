"""A profiling sweep: idle power, then each concurrency level's latency, throughput and energy.

Each level keeps `concurrency` streams busy back to back; after a warm-up, one energy phase covers
the measured window, and only tokens inside the window count. Streams still open when the window
closes are cancelled (vLLM aborts a request whose client disconnects). A level after the first that the
server refuses or breaks ends the sweep, which keeps the levels measured before it (`SweepStopped`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import httpx

from gridshift.profiling.energy import EnergyMeter, MeasuredPhase
from gridshift.profiling.load import (
    EndpointError,
    StreamRecord,
    WindowError,
    WindowStats,
    stream_request,
    summarise_window,
)
from gridshift.profiling.settings import LoadSettings
from gridshift.profiling.workload import PromptMaker, RequestShape


@dataclass(frozen=True)
class LevelMeasurement:
    """One concurrency level: what the clients saw and what the GPUs drew."""

    concurrency: int
    stats: WindowStats
    energy_joules: float
    """Energy of the replica's GPUs over the measured window, J."""
    power_watts: float
    """energy_joules / the energy phase's duration, W."""

    @property
    def joules_per_token(self) -> float:
        return self.energy_joules / self.stats.output_tokens if self.stats.output_tokens else float("inf")


@dataclass(frozen=True)
class SweepStopped:
    """The level at which the server refused or broke the sweep, and what it said (the error's text)."""

    concurrency: int
    error: str


@dataclass(frozen=True)
class SweepResult:
    idle_power_watts: float | None
    levels: tuple[LevelMeasurement, ...]
    stopped: SweepStopped | None = None
    """Set when a level after the first failed: `levels` holds those measured before it."""


class SweepObserver(Protocol):
    """Told what the sweep is doing, for progress output."""

    def phase_started(self, label: str, seconds: float) -> None: ...

    def phase_progress(self, label: str, elapsed_s: float, tokens: int) -> None: ...

    def level_finished(self, level: LevelMeasurement) -> None: ...


class SilentObserver:
    def phase_started(self, label: str, seconds: float) -> None:
        return None

    def phase_progress(self, label: str, elapsed_s: float, tokens: int) -> None:
        return None

    def level_finished(self, level: LevelMeasurement) -> None:
        return None


def _tokens_so_far(records: list[StreamRecord]) -> int:
    return sum(r.chunk_token_counts[-1] for r in records if r.chunk_token_counts)


async def _run_level(
    client: httpx.AsyncClient,
    settings: LoadSettings,
    meter: EnergyMeter,
    concurrency: int,
    shapes: Iterator[RequestShape],
    prompts: PromptMaker,
    observer: SweepObserver,
    clock: Callable[[], float],
) -> LevelMeasurement:
    records: list[StreamRecord] = []
    failures: list[BaseException] = []

    async def worker() -> None:
        while True:
            record = StreamRecord(shape=next(shapes), started_at=clock())
            records.append(record)
            try:
                await stream_request(client, settings, record, prompts, clock)
            except EndpointError as error:
                failures.append(error)
                return

    label = f"concurrency {concurrency}"
    observer.phase_started(label, settings.warmup_seconds + settings.measure_seconds)
    level_start = clock()
    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    try:

        async def wait_until(deadline: float) -> None:
            while (now := clock()) < deadline:
                if failures:
                    raise failures[0]
                observer.phase_progress(label, now - level_start, _tokens_so_far(records))
                await asyncio.sleep(min(0.5, deadline - now))

        await wait_until(level_start + settings.warmup_seconds)
        meter.begin_phase(f"decode_c{concurrency}")
        window_start = clock()
        await wait_until(window_start + settings.measure_seconds)
        window_end = clock()
        phase: MeasuredPhase = await asyncio.to_thread(meter.end_phase)
        if failures:
            raise failures[0]
    finally:
        for task in workers:
            task.cancel()
        for task in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    try:
        stats = summarise_window(records, window_start, window_end)
    except WindowError as error:
        raise WindowError(f"at concurrency {concurrency}: {error}") from None
    level = LevelMeasurement(
        concurrency=concurrency,
        stats=stats,
        energy_joules=phase.energy_joules,
        power_watts=phase.energy_joules / phase.duration_s,
    )
    observer.level_finished(level)
    return level


async def _measure_idle(meter: EnergyMeter, seconds: float, observer: SweepObserver) -> float:
    observer.phase_started("idle", seconds)
    meter.begin_phase("idle")
    await asyncio.sleep(seconds)
    phase = await asyncio.to_thread(meter.end_phase)
    return phase.energy_joules / phase.duration_s


async def run_sweep_async(
    settings: LoadSettings,
    meter: EnergyMeter,
    shapes: Iterator[RequestShape],
    *,
    observer: SweepObserver | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SweepResult:
    observer = observer or SilentObserver()
    prompts = PromptMaker(settings.seed)
    most = max(settings.concurrency_levels)
    limits = httpx.Limits(max_connections=most + 4, max_keepalive_connections=most + 4)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:
        idle = await _measure_idle(meter, settings.idle_seconds, observer) if settings.idle_seconds > 0 else None
        levels: list[LevelMeasurement] = []
        for concurrency in sorted(settings.concurrency_levels):
            try:
                levels.append(await _run_level(client, settings, meter, concurrency, shapes, prompts, observer, clock))
            except (EndpointError, WindowError) as error:
                # Found in review: vLLM failing at concurrency 64 (out of memory, HTTP 500) threw away the
                # levels 1-32 measured before it. The server's failure at a level ends the sweep there and
                # keeps them; with nothing measured yet there is nothing to keep, and the error is raised.
                if not levels:
                    raise
                return SweepResult(idle, tuple(levels), SweepStopped(concurrency, str(error)))
    return SweepResult(idle_power_watts=idle, levels=tuple(levels))


def run_sweep(
    settings: LoadSettings,
    meter: EnergyMeter,
    shapes: Iterator[RequestShape],
    *,
    observer: SweepObserver | None = None,
) -> SweepResult:
    """Run the whole sweep (blocking). EndpointError (the server refused or broke a request) or WindowError at
    the first level is raised; at a later level the sweep stops there and its result says so (`stopped`)."""
    return asyncio.run(run_sweep_async(settings, meter, shapes, observer=observer))
