"""GPU power sampling around the phases of a workload: the `PowerSampler` protocol and its NVML adapter.

A sampler reads the power of its GPUs every few milliseconds in a thread and their total-energy
counters at the edges of each phase; `end_phase` returns the phase's `PhaseEnergy` measured both
ways (counter delta and integrated power). `NvmlPowerSampler` reads real GPUs through nvidia-ml-py;
`gridshift.nvml.trace.TracePowerSampler` replays a power trace and honours the same contract.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Protocol, Self

from gridshift.nvml.phases import PhaseEnergy, PowerSample, summarise_phase


class NvmlUnavailable(RuntimeError):
    """NVML, its Python binding or a GPU is missing; the message names which and what to do."""


class SamplerStateError(RuntimeError):
    """A phase was begun while another was open, ended while none was, or the sampler is closed."""


class PowerReadError(RuntimeError):
    """A GPU's power or energy could not be read (NVML failed mid-sweep); the message names the error."""


@dataclass(frozen=True)
class SamplerSettings:
    """How often power is read and which GPUs are summed."""

    sample_period_ms: float = 20.0
    """Time between power reads, ms. 20 ms: NVML's instantaneous power on Hopper refreshes at about
    that rate, so faster reads repeat values while slower ones blur phases shorter than a second."""
    gpu_indices: tuple[int, ...] | None = None
    """NVML indices of the GPUs to sum (all GPUs of one replica); None: every GPU NVML sees."""
    power_reading: Literal["instant", "average"] = "instant"
    """'instant' reads NVML_FI_DEV_POWER_INSTANT where the driver has it (falls back to 'average');
    'average' reads nvmlDeviceGetPowerUsage, which Ampere and later average over the last second, so
    it lags phase edges and under-counts short phases."""

    def __post_init__(self) -> None:
        if not 1.0 <= self.sample_period_ms <= 10_000.0:
            raise ValueError(f"sample_period_ms must be within 1..10000 ms, got {self.sample_period_ms}")
        if self.gpu_indices is not None:
            if not self.gpu_indices:
                raise ValueError("gpu_indices must name at least one GPU, or be None for all GPUs")
            if any(i < 0 for i in self.gpu_indices):
                raise ValueError(f"gpu_indices must be >= 0, got {list(self.gpu_indices)}")
            if len(set(self.gpu_indices)) != len(self.gpu_indices):
                # One GPU sampled twice: its power counted twice, the replica taken for one GPU more.
                raise ValueError(f"gpu_indices must name each GPU once, got {list(self.gpu_indices)}")


class PowerSampler(Protocol):
    """Measures the energy of its GPUs over named, consecutive phases of a workload."""

    def gpu_names(self) -> tuple[str, ...]:
        """Names of the sampled GPUs, as the driver reports them."""
        ...

    def begin_phase(self, name: str) -> None:
        """Start measuring a phase now; raises SamplerStateError if one is open or the sampler is closed."""
        ...

    def end_phase(self) -> PhaseEnergy:
        """Stop measuring the open phase now and return its energy; SamplerStateError if none is open."""
        ...

    def close(self) -> None:
        """Stop sampling and release the driver; idempotent."""
        ...


@contextmanager
def measured_phase(sampler: PowerSampler, name: str) -> Iterator[list[PhaseEnergy]]:
    """`with measured_phase(s, "decode") as result:` ... then `result[0]` holds the phase's energy.

    The phase is ended even when the body raises, so the sampler can go on with the next phase.
    """
    holder: list[PhaseEnergy] = []
    sampler.begin_phase(name)
    try:
        yield holder
    finally:
        holder.append(sampler.end_phase())


class PowerReader(Protocol):
    """What a threaded sampler reads: per-GPU power and energy counters."""

    def gpu_names(self) -> tuple[str, ...]: ...

    def read_power_watts(self) -> Sequence[float]: ...

    def read_energy_millijoules(self) -> Sequence[int] | None:
        """Each GPU's total-energy counter, mJ; None where any GPU lacks one."""
        ...

    def shutdown(self) -> None: ...


_EDGE_BRACKET_S = 0.002
"""Widest clock bracket around a counter read taken at the first try, s: an NVML counter read takes
tens of microseconds, so a wider bracket means the thread was descheduled during it."""
_EDGE_ATTEMPTS = 5


class ThreadedPowerSampler:
    """A PowerSampler over any PowerReader: a daemon thread reads power on a fixed schedule.

    Power is also read synchronously at each phase edge, so every phase has samples at both ends.
    """

    def __init__(
        self,
        reader: PowerReader,
        settings: SamplerSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._period_s = settings.sample_period_ms / 1000.0
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._samples: list[PowerSample] = []
        self._phase: tuple[str, float, int | None] | None = None
        self._closed = False
        self._failure: PowerReadError | None = None
        self._names = reader.gpu_names()
        self._thread = threading.Thread(target=self._sample_forever, name="gridshift-power-sampler", daemon=True)
        self._thread.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def gpu_names(self) -> tuple[str, ...]:
        return self._names

    def _take_sample(self) -> PowerSample:
        if self._failure is not None:
            raise self._failure
        try:
            watts = float(sum(self._reader.read_power_watts()))
        except PowerReadError:
            raise
        except Exception as error:  # the reader's own error type (pynvml.NVMLError, ...): named, not a traceback
            raise PowerReadError(f"reading GPU power failed: {type(error).__name__}: {error}") from None
        return PowerSample(at_s=self._clock(), watts=watts)

    def _sample_forever(self) -> None:
        next_at = self._clock()
        while not self._stop.is_set():
            try:
                sample = self._take_sample()
            except PowerReadError as error:
                # Kept for the phase edges to raise: found in review, the thread died with a traceback of its
                # own and the main thread's next read raised another.
                self._failure = error
                return
            with self._lock:
                if self._phase is not None:
                    self._samples.append(sample)
            # A fixed schedule rather than sleep(period) after each read, so read time does not drift it.
            next_at += self._period_s
            self._stop.wait(max(0.0, next_at - self._clock()))

    def _read_edge(self) -> tuple[int | None, float]:
        """The energy counter and the time it was read: a phase edge.

        The phase's duration is taken between these times, never between the power samples beside
        them: a thread that loses the CPU (or the GIL) between reading the counter and reading the
        clock would otherwise divide the counter's energy by a shorter or longer window than it
        covers (a CI run measured 8% too much power over a 1 s phase). The read is bracketed by two
        clock reads and dated at their midpoint; a wide bracket is retried and the narrowest kept.
        """
        reads: list[tuple[float, float, Sequence[int] | None]] = []
        for _ in range(_EDGE_ATTEMPTS):
            before = self._clock()
            try:
                counters = self._reader.read_energy_millijoules()
            except Exception as error:  # as in _take_sample
                raise PowerReadError(f"reading GPU energy failed: {type(error).__name__}: {error}") from None
            after = self._clock()
            reads.append((after - before, (before + after) / 2.0, counters))
            if after - before <= _EDGE_BRACKET_S:
                break
        _, at, counters = min(reads, key=lambda read: read[0])
        return (None if counters is None else int(sum(counters))), at

    def begin_phase(self, name: str) -> None:
        if self._closed:
            raise SamplerStateError(f"cannot begin phase {name!r}: the sampler is closed")
        if self._phase is not None:
            raise SamplerStateError(f"cannot begin phase {name!r}: phase {self._phase[0]!r} is still open")
        counter, started_at = self._read_edge()
        first = self._take_sample()
        with self._lock:
            self._samples = [first]
            self._phase = (name, started_at, counter)

    def end_phase(self) -> PhaseEnergy:
        if self._phase is None:
            raise SamplerStateError("cannot end a phase: no phase is open")
        last = self._take_sample()
        counter_end, ended_at = self._read_edge()
        with self._lock:
            name, started_at, counter_start = self._phase
            samples = [*self._samples, last]
            self._samples = []
            self._phase = None
        return summarise_phase(
            name,
            samples,
            started_at_s=started_at,
            ended_at_s=ended_at,
            gpu_count=len(self._names),
            counter_start_millijoules=counter_start,
            counter_end_millijoules=counter_end,
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._reader.shutdown()


def _import_pynvml() -> Any:
    try:
        import pynvml
    except ImportError as error:
        raise NvmlUnavailable(
            "the Python package nvidia-ml-py (module pynvml) is not installed: pip install 'gridshift[nvml]'"
        ) from error
    return pynvml


class NvmlPowerReader:
    """Reads power and energy counters of GPUs through NVML (nvidia-ml-py)."""

    def __init__(self, settings: SamplerSettings) -> None:
        nvml = _import_pynvml()
        self._nvml = nvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as error:
            raise NvmlUnavailable(
                f"NVML could not start ({error}): the NVIDIA driver's libnvidia-ml.so.1 is missing or no "
                "driver is loaded on this machine; run on a node with an NVIDIA GPU and driver"
            ) from error
        try:
            count = int(nvml.nvmlDeviceGetCount())
            if count == 0:
                raise NvmlUnavailable("NVML sees no GPU on this machine (nvmlDeviceGetCount() == 0)")
            indices = settings.gpu_indices if settings.gpu_indices is not None else tuple(range(count))
            missing = [i for i in indices if i >= count]
            if missing:
                raise NvmlUnavailable(f"gpu_indices {missing} do not exist: NVML sees {count} GPU(s), 0..{count - 1}")
            self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in indices]
            names = [nvml.nvmlDeviceGetName(h) for h in self._handles]
            self._names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
            self.power_reading: Literal["instant", "average"] = (
                "instant" if settings.power_reading == "instant" and self._instant_power_works() else "average"
            )
            self._has_counter = self._counter_works()
        except BaseException:
            nvml.nvmlShutdown()
            raise

    def _instant_power_watts(self, handle: Any) -> float:
        (value,) = self._nvml.nvmlDeviceGetFieldValues(handle, [self._nvml.NVML_FI_DEV_POWER_INSTANT])
        if value.nvmlReturn != self._nvml.NVML_SUCCESS:
            raise self._nvml.NVMLError(value.nvmlReturn)
        return float(value.value.uiVal) / 1000.0

    def _instant_power_works(self) -> bool:
        if not hasattr(self._nvml, "NVML_FI_DEV_POWER_INSTANT"):
            return False
        try:
            return all(self._instant_power_watts(h) > 0 for h in self._handles)
        except self._nvml.NVMLError:
            return False

    def _counter_works(self) -> bool:
        try:
            for handle in self._handles:
                self._nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except self._nvml.NVMLError:
            return False
        return True

    def gpu_names(self) -> tuple[str, ...]:
        return self._names

    def read_power_watts(self) -> list[float]:
        if self.power_reading == "instant":
            return [self._instant_power_watts(h) for h in self._handles]
        return [float(self._nvml.nvmlDeviceGetPowerUsage(h)) / 1000.0 for h in self._handles]

    def read_energy_millijoules(self) -> list[int] | None:
        if not self._has_counter:
            return None
        return [int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(h)) for h in self._handles]

    def shutdown(self) -> None:
        self._nvml.nvmlShutdown()


class NvmlPowerSampler(ThreadedPowerSampler):
    """PowerSampler of real GPUs through NVML; raises NvmlUnavailable naming what is missing."""

    def __init__(self, settings: SamplerSettings | None = None) -> None:
        settings = settings or SamplerSettings()
        self.reader = NvmlPowerReader(settings)
        super().__init__(self.reader, settings)

    @property
    def power_reading(self) -> Literal["instant", "average"]:
        """Which NVML power reading is sampled (instant where the driver has it)."""
        return self.reader.power_reading
