"""Carbon-intensity series: the data every carbon feed returns, its validation and its errors.

A `CarbonSeries` is what a feed published, in gCO2eq per kWh of grid electricity, on one basis
(direct, lifecycle or marginal: gridshift.api.carbon). It reaches the planner only after
`validate_carbon_intervals` (which refuses NaN/inf, negative or implausible intensities, a basis
other than the one configured, and intervals that overlap or go backwards) and only through
service.inputs. Units are converted once, where a feed parses its body (WattTime publishes
lbs CO2 per MWh: `LBS_PER_MWH_IN_G_PER_KWH`).

Carbon feeds are managed exactly like price feeds (signals.price_service.ManagedFeed: cache, TTL,
retries, deadline, stale state), and their errors are PriceFeedErrors that name a "carbon feed".
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from gridshift.api.carbon import CarbonBasis
from gridshift.signals.prices import NoPriceDataError, PriceDataError, PriceFeedError, PriceFetchError, PriceKind

LBS_PER_MWH_IN_G_PER_KWH = 0.45359237
"""1 lb/MWh = 453.59237 g per 1000 kWh."""

MAX_G_PER_KWH = 3000.0
"""No grid emits this much: lignite plants are about 1,100-1,200 gCO2eq/kWh life-cycle (IPCC AR5);
a value above it is a unit error (lbs/MWh read as g/kWh, or kg/MWh x 1000) and is refused."""


class CarbonFeedError(PriceFeedError):
    """A carbon feed gave no usable intensity. Names the feed and the field at fault."""

    noun = "carbon feed"


class CarbonDataError(CarbonFeedError, PriceDataError):
    """The feed answered, but what it answered is not a valid intensity series."""


class NoCarbonDataError(CarbonFeedError, NoPriceDataError):
    """The feed answered that it has no intensities for the requested window."""


class CarbonFetchError(CarbonFeedError, PriceFetchError):
    """The feed could not be reached or answered with an HTTP error."""


@contextmanager
def as_carbon_errors() -> Iterator[None]:
    """Re-raise the shared HTTP exchange's errors (signals.http, raised as price-feed errors) as
    carbon-feed errors, field and retry advice kept."""
    try:
        yield
    except CarbonFeedError:
        raise
    except PriceFetchError as error:
        raise CarbonFetchError(
            error.feed,
            error.field,
            error.detail,
            retryable=error.retryable,
            retry_after_seconds=error.retry_after_seconds,
        ) from None
    except PriceFeedError as error:
        raise CarbonDataError(error.feed, error.field, error.detail, retryable=error.retryable) from None


@dataclass(frozen=True)
class CarbonInterval:
    """Carbon intensity over [start, end), UTC, gCO2eq per kWh, on one basis."""

    start: datetime
    end: datetime
    g_per_kwh: float
    basis: CarbonBasis
    kind: PriceKind = PriceKind.ACTUAL
    """FORECAST for a value the provider predicts (and will revise)."""

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant < self.end


@dataclass(frozen=True)
class CarbonSeries:
    """A feed's validated intervals, sorted, with when they were fetched and whether they went stale."""

    feed: str
    intervals: tuple[CarbonInterval, ...]
    fetched_at: datetime
    stale: bool = False
    """Set by the managed feed once no good fetch happened for staleAfterSeconds: the planner must
    not move load on these intensities."""

    def at(self, instant: datetime) -> CarbonInterval | None:
        return next((interval for interval in self.intervals if interval.contains(instant)), None)

    def marked_stale(self) -> CarbonSeries:
        return replace(self, stale=True)

    @property
    def start(self) -> datetime:
        return self.intervals[0].start

    @property
    def end(self) -> datetime:
        return self.intervals[-1].end


class CarbonFeed(Protocol):
    """One source of carbon intensity. `now` comes from the caller's clock, never read inside."""

    @property
    def name(self) -> str: ...

    def fetch(self, now: datetime) -> CarbonSeries:
        """The intensities around `now` (at least the interval in progress); raises CarbonFeedError."""
        ...


def _utc(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def validate_carbon_intervals(
    feed: str, intervals: Sequence[CarbonInterval], *, basis: CarbonBasis, field: str = "intervals"
) -> tuple[CarbonInterval, ...]:
    """The intervals, if they can be trusted; CarbonDataError naming the first fault otherwise."""
    if not intervals:
        raise CarbonDataError(feed, field, "no intensities (empty series)")
    previous: CarbonInterval | None = None
    for index, interval in enumerate(intervals):
        where = f"{field}[{index}]"
        if interval.start.tzinfo is None or interval.end.tzinfo is None:
            raise CarbonDataError(feed, f"{where}.start", "timestamp without a UTC offset")
        if not interval.start < interval.end:
            raise CarbonDataError(feed, f"{where}.end", f"interval ends ({_utc(interval.end)}) before it starts")
        value = interval.g_per_kwh
        if not math.isfinite(value):
            raise CarbonDataError(feed, f"{where}.gPerKwh", f"not a finite number: {value!r}")
        if value < 0:
            raise CarbonDataError(feed, f"{where}.gPerKwh", f"negative intensity {value:g} gCO2eq/kWh")
        if value > MAX_G_PER_KWH:
            raise CarbonDataError(
                feed,
                f"{where}.gPerKwh",
                f"{value:g} gCO2eq/kWh is above any grid's ({MAX_G_PER_KWH:g}): a unit error upstream?",
            )
        if interval.basis is not basis:
            raise CarbonDataError(
                feed,
                f"{where}.basis",
                f"intensity is {interval.basis.value} but the feed is configured for {basis.value} (carbonFeed.basis)",
            )
        if previous is not None and interval.start < previous.end:
            problem = "goes backwards" if interval.start < previous.start else "overlaps the previous one"
            raise CarbonDataError(
                feed,
                f"{where}.start",
                f"interval starting {_utc(interval.start)} {problem} (ending {_utc(previous.end)})",
            )
        previous = interval
    return tuple(intervals)


def require_carbon_covers(feed: str, intervals: Sequence[CarbonInterval], now: datetime) -> None:
    """CarbonDataError unless some interval holds `now`: without the intensity now nothing is decided."""
    if not any(interval.contains(now) for interval in intervals):
        covered = f"{_utc(intervals[0].start)}..{_utc(intervals[-1].end)}" if intervals else "nothing"
        raise CarbonDataError(feed, "intervals", f"no intensity for now ({_utc(now)}); the series covers {covered}")


def validated_carbon_series(
    name: str, intervals: Sequence[CarbonInterval], basis: CarbonBasis, now: datetime
) -> CarbonSeries:
    """What a carbon feed returns: its intervals validated and covering `now`."""
    checked = validate_carbon_intervals(name, intervals, basis=basis)
    require_carbon_covers(name, checked, now)
    return CarbonSeries(feed=name, intervals=checked, fetched_at=now)
