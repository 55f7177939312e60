"""Where a profiling sweep reads energy: the `EnergyMeter` protocol and its DCGM-through-Prometheus adapter.

On the GPU node, gridshift.nvml's samplers are EnergyMeters as they are (the CLI passes one in);
run remotely, `PrometheusEnergyMeter` reads the increase of dcgm-exporter's
DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter (mJ) for the vLLM pod over each phase.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from gridshift.numerals import NotFinite, plain_number
from gridshift.profiling.load import endpoint_url
from gridshift.redaction import display_url

DCGM_ENERGY_METRIC = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"
SHIPPED_SCRAPE_INTERVAL_S = 15.0
"""How often dcgm/servicemonitor.yaml has Prometheus scrape dcgm-exporter, s."""
MIN_PROMETHEUS_PHASE_S = 2 * SHIPPED_SCRAPE_INTERVAL_S
"""The shortest phase read through Prometheus: increase() needs two samples inside its range, which a phase
shorter than two scrape intervals may not hold (found in review: the 10 s default idle phase read nothing)."""
SERIES_LOOKBACK_S = 600
"""How far back a phase that read nothing looks for the series at all, s: to tell a phase too short for the
scrapes from a selector that matches nothing."""


class MeasuredPhase(Protocol):
    """Energy of the replica's GPUs over one phase."""

    @property
    def name(self) -> str: ...

    @property
    def duration_s(self) -> float: ...

    @property
    def energy_joules(self) -> float: ...


class EnergyMeter(Protocol):
    """Measures the energy of a replica's GPUs over consecutive named phases."""

    def begin_phase(self, name: str) -> None: ...

    def end_phase(self) -> MeasuredPhase: ...


class EnergyMeterError(RuntimeError):
    """The energy of a phase could not be read; the message names the source and what to check."""


@dataclass(frozen=True)
class MeteredPhase:
    """A phase's energy as read from a counter outside this process."""

    name: str
    duration_s: float
    energy_joules: float


@dataclass(frozen=True)
class PrometheusEnergySettings:
    """Where dcgm-exporter's energy counter is queried."""

    url: str
    """Prometheus base URL, e.g. http://prometheus.monitoring:9090."""
    selector: str
    """PromQL label matchers of the replica's GPUs, e.g. pod="vllm-0",namespace="ml" (dcgm-exporter
    with Kubernetes mapping labels GPU series with the pod that holds them)."""
    scrape_wait_seconds: float = 30.0
    """Wait after a phase before querying, s, so the scrape that follows its end is stored:
    dcgm-exporter is commonly scraped every 15-30 s."""
    timeout_seconds: float = 10.0
    """Timeout of each query, s."""


class PrometheusEnergyMeter:
    """EnergyMeter reading increase(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION) over each phase from Prometheus.

    Phases should last several scrape intervals: increase() extrapolates between the samples it sees.
    """

    def __init__(
        self,
        settings: PrometheusEnergySettings,
        *,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        self._client = client or httpx.Client()
        self._clock = clock
        self._sleep = sleep
        self._open: tuple[str, float] | None = None

    def query(self, duration_s: float) -> str:
        """The PromQL of a phase that lasted `duration_s`."""
        window = max(1, round(duration_s))
        return f"sum(increase({DCGM_ENERGY_METRIC}{{{self._settings.selector}}}[{window}s]))"

    def begin_phase(self, name: str) -> None:
        if self._open is not None:
            raise EnergyMeterError(f"cannot begin phase {name!r}: phase {self._open[0]!r} is still open")
        self._open = (name, self._clock())

    def end_phase(self) -> MeteredPhase:
        if self._open is None:
            raise EnergyMeterError("cannot end a phase: no phase is open")
        name, started = self._open
        self._open = None
        ended = self._clock()
        duration = ended - started
        self._sleep(self._settings.scrape_wait_seconds)
        promql = self.query(duration)
        millijoules = self._ask(promql, ended)
        if millijoules is None:
            raise EnergyMeterError(self._why_empty(name, duration, ended))
        return MeteredPhase(name=name, duration_s=duration, energy_joules=millijoules / 1000.0)

    def _ask(self, promql: str, at: float) -> float | None:
        """The value of a one-element instant vector at `at`; None when the vector is empty."""
        # Under the base path, its query kept (found in review: text appended after `?token=...` lost both).
        # (httpx's `params=` would replace that query, not add to it.)
        url = endpoint_url(self._settings.url, "/api/v1/query").copy_merge_params(
            {"query": promql, "time": f"{at:.3f}"}
        )
        shown = display_url(self._settings.url)
        try:
            response = self._client.get(url, timeout=self._settings.timeout_seconds)
        except (httpx.HTTPError, UnicodeError) as error:  # UnicodeError: a host IDNA cannot encode (review)
            raise EnergyMeterError(f"Prometheus at {shown} unreachable ({type(error).__name__})") from error
        if response.status_code != 200:
            raise EnergyMeterError(f"Prometheus at {shown} answered HTTP {response.status_code} to {promql}")
        try:
            results = response.json()["data"]["result"]
            if not results:
                return None
            sample = results[0]["value"][1]
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise EnergyMeterError(f"Prometheus at {shown}: unexpected answer to {promql}") from error
        try:
            return _sample_value(sample)
        except ValueError as error:
            raise EnergyMeterError(f"Prometheus at {shown} answered {error} to {promql}") from error

    def _why_empty(self, name: str, duration: float, ended: float) -> str:
        """Why a phase's increase() was empty: too few samples inside it, or no series at all. Found in review:
        a 10 s phase against a 15 s scrape held one sample or none, and the error blamed the selector."""
        selector = f"{{{self._settings.selector}}}"
        lookback = max(SERIES_LOOKBACK_S, round(duration))
        seen = self._ask(f"count(last_over_time({DCGM_ENERGY_METRIC}{selector}[{lookback}s]))", ended)
        if seen is not None:
            return (
                f"Prometheus holds fewer than two samples of {DCGM_ENERGY_METRIC}{selector} inside phase {name!r} "
                f"({duration:.1f} s): a phase must span at least two scrape intervals (dcgm/servicemonitor.yaml "
                f"scrapes every {SHIPPED_SCRAPE_INTERVAL_S:g} s): lengthen --idle-seconds / --measure-seconds"
            )
        return (
            f"no {DCGM_ENERGY_METRIC} series matches {selector} in Prometheus at {display_url(self._settings.url)} "
            f"in the last {lookback} s: is dcgm-exporter scraped, with Kubernetes pod labels on?"
        )


_PROMETHEUS_NOT_FINITE = frozenset({"NaN", "+Inf", "-Inf"})
"""How Prometheus writes a sample that is not a finite number (Go's strconv.FormatFloat)."""


def _sample_value(sample: object) -> float:
    """An instant vector's sample value as a number; ValueError saying what is wrong with it otherwise.

    Prometheus writes every sample value as a JSON string, finite ones in Go's 'f' form, or its 'e' form
    below 1e-6 and from 1e21 ("12345", "0.001", "1e-07", "1.5e+21"): plain_number reads each of these, and
    refuses what float() took besides ("1_0", "１２", "nan", a JSON true). Found in review: float() read "NaN"
    as a NaN energy, kept in the profile without a word. The value is quoted only where it is one of
    Prometheus's own words, never text of unknown origin. Neither query asked is ever negative: a sum of
    counter increases (increase() adjusts for resets) or a count of series."""
    if not isinstance(sample, str):
        raise ValueError(f"a sample value that is no string ({type(sample).__name__})")
    if sample in _PROMETHEUS_NOT_FINITE:
        raise ValueError(f"{sample} (not a finite number)")
    try:
        number = plain_number(sample)
    except NotFinite:
        raise ValueError("a sample value that is no finite number") from None
    except ValueError:
        raise ValueError("a sample value that is no number") from None
    if number < 0:
        raise ValueError(f"a negative sample value ({number:g})")
    return number
