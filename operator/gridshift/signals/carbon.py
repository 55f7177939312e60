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

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gridshift.api.carbon import MAX_GRID_G_PER_KWH, CarbonBasis
from gridshift.signals import series
from gridshift.signals.prices import NoPriceDataError, PriceDataError, PriceFeedError, PriceFetchError, PriceKind
from gridshift.signals.series import Interval, IntervalCheck, Measure, Series

LBS_PER_MWH_IN_G_PER_KWH = 0.45359237
"""1 lb/MWh = 453.59237 g per 1000 kWh."""


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
class CarbonInterval(Interval):
    """Carbon intensity over [start, end), UTC, gCO2eq per kWh, on one basis."""

    g_per_kwh: float
    basis: CarbonBasis
    kind: PriceKind = PriceKind.ACTUAL
    """FORECAST for a value the provider predicts (and will revise)."""

    @property
    def value(self) -> float:
        return self.g_per_kwh


class CarbonSeries(Series[CarbonInterval]):
    """A carbon feed's validated intervals (signals.series.Series)."""


INTENSITIES: Measure[CarbonInterval] = Measure(
    one="intensity", many="intensities", field="gPerKwh", error=CarbonDataError, no_data=NoCarbonDataError
)


class CarbonFeed(Protocol):
    """One source of carbon intensity. `now` comes from the caller's clock, never read inside."""

    @property
    def name(self) -> str: ...

    def fetch(self, now: datetime) -> CarbonSeries:
        """The intensities around `now` (at least the interval in progress); raises CarbonFeedError."""
        ...


def _range_and_basis(feed: str, basis: CarbonBasis) -> IntervalCheck[CarbonInterval]:
    def check(where: str, interval: CarbonInterval) -> None:
        value = interval.g_per_kwh
        if value < 0:
            raise CarbonDataError(feed, f"{where}.gPerKwh", f"negative intensity {value:g} gCO2eq/kWh")
        if value > MAX_GRID_G_PER_KWH:
            raise CarbonDataError(
                feed,
                f"{where}.gPerKwh",
                f"{value:g} gCO2eq/kWh is above any grid's ({MAX_GRID_G_PER_KWH:g}): a unit error upstream?",
            )
        if interval.basis is not basis:
            raise CarbonDataError(
                feed,
                f"{where}.basis",
                f"intensity is {interval.basis.value} but the feed is configured for {basis.value} (carbonFeed.basis)",
            )

    return check


def validate_carbon_intervals(
    feed: str, intervals: Sequence[CarbonInterval], *, basis: CarbonBasis, field: str = "intervals"
) -> tuple[CarbonInterval, ...]:
    """The intervals, if they can be trusted (signals.series.validate_intervals: UTC, ordered, finite;
    here also within a grid's range and on `basis`); CarbonDataError naming the first fault otherwise."""
    return series.validate_intervals(INTENSITIES, feed, intervals, _range_and_basis(feed, basis), field=field)


def require_carbon_covers(feed: str, intervals: Sequence[CarbonInterval], now: datetime) -> None:
    """CarbonDataError unless some interval holds `now`: without the intensity now nothing is decided."""
    series.require_covers(INTENSITIES, feed, intervals, now)


def validated_carbon_series(
    name: str, intervals: Sequence[CarbonInterval], basis: CarbonBasis, now: datetime
) -> CarbonSeries:
    """What a carbon feed returns: its intervals validated and covering `now`."""
    checked = series.validated(INTENSITIES, name, intervals, _range_and_basis(name, basis), now)
    return CarbonSeries(feed=name, intervals=checked, fetched_at=now)
