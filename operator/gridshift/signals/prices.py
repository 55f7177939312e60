"""Electricity price series: the data every price feed returns, its validation, and USD/kWh.

A `PriceSeries` is what a feed published, as published (currency and unit included); it reaches
the planner only through `validate_intervals` (which refuses NaN/inf, unknown currencies or
units, and intervals that overlap or go backwards) and `to_usd_per_kwh`. Negative prices are
valid: markets clear below zero when renewables exceed demand.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import ClassVar, Protocol

from gridshift import redaction
from gridshift.api.regional_cluster import KWH_PER_MWH, EnergyUnit, PricePoint, usd_per_kwh_of
from gridshift.api.regional_cluster import MAX_ABS_USD_PER_KWH as MAX_ABS_USD_PER_KWH
from gridshift.signals import series
from gridshift.signals.series import Interval, IntervalCheck, Measure, Series

CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")


class PriceKind(StrEnum):
    """Whether a price is the one that will be (or was) charged, or an estimate of it."""

    ACTUAL = "actual"
    """Cleared or tariffed: day-ahead auction results, fixed tariffs, recorded market prices."""
    FORECAST = "forecast"
    """An estimate that the market has not fixed yet."""


MAX_DETAIL_CHARS = 1024
"""The longest detail a feed error carries; a feed's own words (an ENTSO-E reason, a quoted value) may be longer."""


class PriceFeedError(Exception):
    """A feed gave no usable prices. Names the feed and the field at fault."""

    noun: ClassVar[str] = "price feed"
    """How messages name the feed (signals.carbon's errors say "carbon feed")."""

    def __init__(self, feed: str, field: str, message: str, *, retryable: bool = False) -> None:
        # Messages reach status conditions: a remembered secret (gridshift.redaction) never does, and a
        # hostile body quoted at length is cut (after redaction, so no part of a secret is left).
        message = redaction.redact(message)
        if len(message) > MAX_DETAIL_CHARS:
            message = f"{message[: MAX_DETAIL_CHARS - 3]}..."
        super().__init__(f"{self.noun} {feed!r}: {field}: {message}")
        self.feed = feed
        self.field = field
        self.detail = message
        self.retryable = retryable


class PriceDataError(PriceFeedError):
    """The feed answered, but what it answered is not a valid price series."""


class NoPriceDataError(PriceFeedError):
    """The feed answered that it has no prices for the requested window."""


class PriceFetchError(PriceFeedError):
    """The feed could not be reached or answered with an HTTP error."""

    def __init__(
        self, feed: str, field: str, message: str, *, retryable: bool, retry_after_seconds: float | None = None
    ) -> None:
        super().__init__(feed, field, message, retryable=retryable)
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True)
class PriceInterval(Interval):
    """One priced interval [start, end), UTC, in the currency and unit the feed publishes."""

    price: float
    currency: str
    unit: EnergyUnit
    kind: PriceKind = PriceKind.ACTUAL

    @property
    def value(self) -> float:
        return self.price

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def resolution(self) -> str:
        """ISO 8601 duration of the interval, as ENTSO-E writes it (PT15M, PT60M)."""
        return iso_duration(self.duration)


class PriceSeries(Series[PriceInterval]):
    """A price feed's validated intervals (signals.series.Series)."""


PRICES: Measure[PriceInterval] = Measure(
    one="price",
    many="prices",
    field="price",
    error=PriceDataError,
    no_data=NoPriceDataError,
    timezone_flag=" (gridshift simulate --prices: --prices-timezone)",
    local_time_example=" (Europe/Paris for the EU per-market files of prices-2024)",
)


class PriceFeed(Protocol):
    """One source of electricity prices. `now` comes from the caller's clock, never read inside."""

    name: str

    def fetch(self, now: datetime) -> PriceSeries:
        """The prices around `now` (at least the interval in progress); raises PriceFeedError."""
        ...


def iso_duration(duration: timedelta) -> str:
    """`PT15M`, `PT60M`, `PT30M`; minutes as ENTSO-E writes them (PT60M, not PT1H)."""
    seconds = duration.total_seconds()
    if seconds > 0 and seconds % 60 == 0:
        return f"PT{int(seconds // 60)}M"
    return f"PT{seconds:g}S"


# [0-9], not \d: \d matches every Unicode digit, and int() reads them ("PT１５M" was 15 minutes).
_ISO_DURATION = re.compile(r"^P(?:([0-9]+)D)?(?:T(?:([0-9]+)H)?(?:([0-9]+)M)?)?$")


def parse_iso_duration(text: str) -> timedelta:
    """`PT15M`, `PT60M`, `PT1H`, `P1D` as a timedelta; ValueError otherwise."""
    match = _ISO_DURATION.match(text.strip())
    if match is None or not any(match.groups()):
        raise ValueError(f"not an ISO 8601 duration of days, hours or minutes: {text!r}")
    days, hours, minutes = (int(group or 0) for group in match.groups())
    try:
        duration = timedelta(days=days, hours=hours, minutes=minutes)
    except OverflowError:
        raise ValueError(f"duration too long to be a resolution: {text.strip()[:40]!r}") from None
    if duration <= timedelta(0):
        raise ValueError(f"duration must be positive: {text!r}")
    return duration


def parse_unit(feed: str, field: str, text: str) -> EnergyUnit:
    """`MWh`, `MWH`, `kWh`, `KWH` (any case) as an EnergyUnit; PriceDataError for anything else."""
    for unit in EnergyUnit:
        if text.strip().lower() == unit.value.lower():
            return unit
    raise PriceDataError(feed, field, f"unknown energy unit {text!r}; expected one of MWh, kWh")


MAX_ABS_PRICE_PER_MWH = 1e9
"""Largest price magnitude accepted, per MWh in any currency: above any market's in any currency (1e9
VND/MWh is about 40,000 USD/MWh, ten times the highest price caps), far below where sums overflow. A
document pricing 1e305 made the planner's window mean infinite (found in review, 3 December 2026)."""


def _currency_and_unit(
    feed: str, expected_currency: str, fx_to_usd: float | None = None
) -> IntervalCheck[PriceInterval]:
    def check(where: str, interval: PriceInterval) -> None:
        if not CURRENCY_CODE.match(interval.currency):
            raise PriceDataError(feed, f"{where}.currency", f"not an ISO 4217 code: {interval.currency!r}")
        if interval.currency != expected_currency:
            raise PriceDataError(
                feed,
                f"{where}.currency",
                f"prices are in {interval.currency} but the feed is configured for {expected_currency} "
                "(set priceFeed.currency and fxToUsd to match)",
            )
        if not isinstance(interval.unit, EnergyUnit):
            raise PriceDataError(feed, f"{where}.unit", f"unknown energy unit {interval.unit!r}")
        per_mwh = interval.price * (KWH_PER_MWH if interval.unit is EnergyUnit.KWH else 1.0)
        if abs(per_mwh) > MAX_ABS_PRICE_PER_MWH:
            raise PriceDataError(
                feed,
                f"{where}.price",
                f"{interval.price:g} {interval.currency}/{interval.unit.value} is beyond any market's price "
                f"(|price| <= {MAX_ABS_PRICE_PER_MWH:g} per MWh)",
            )
        if fx_to_usd is not None and abs(usd := usd_per_kwh(interval, fx_to_usd)) > MAX_ABS_USD_PER_KWH:
            raise PriceDataError(
                feed,
                f"{where}.price",
                f"{interval.price:g} {interval.currency}/{interval.unit.value} is {usd:g} USD/kWh with fxToUsd "
                f"{fx_to_usd:g}: beyond any market's price (|price| <= {MAX_ABS_USD_PER_KWH:g} USD/kWh; check the "
                "feed's unit and fxToUsd)",
            )

    return check


def validate_intervals(
    feed: str, intervals: Sequence[PriceInterval], *, expected_currency: str, field: str = "intervals"
) -> tuple[PriceInterval, ...]:
    """The intervals, if they can be trusted (signals.series.validate_intervals: UTC, ordered, finite);
    PriceDataError naming the first fault otherwise.

    `expected_currency` is the one the feed is configured with (its fxToUsd converts that one), so
    a document quoting any other currency cannot be converted and is refused.
    """
    return series.validate_intervals(PRICES, feed, intervals, _currency_and_unit(feed, expected_currency), field=field)


def usd_per_kwh(interval: PriceInterval, fx_to_usd: float) -> float:
    """The interval's price in USD per kWh, with `fx_to_usd` USD per unit of its currency."""
    return usd_per_kwh_of(interval.price, interval.unit, fx_to_usd)


def to_usd_per_kwh(series: PriceSeries, fx_to_usd: float) -> list[PricePoint]:
    """The series as the API's PricePoints (start, USD/kWh)."""
    if not (math.isfinite(fx_to_usd) and fx_to_usd > 0):
        raise PriceDataError(series.feed, "fxToUsd", f"must be a positive number, got {fx_to_usd!r}")
    return [PricePoint(start=i.start, usd_per_kwh=usd_per_kwh(i, fx_to_usd)) for i in series.intervals]


def floor_to(instant: datetime, step: timedelta) -> datetime:
    """`instant` rounded down to a multiple of `step` since the Unix epoch (UTC)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((instant - epoch) // step) * step


def window_of(intervals: Iterable[PriceInterval], start: datetime, end: datetime) -> list[PriceInterval]:
    """Intervals overlapping [start, end)."""
    return [interval for interval in intervals if interval.end > start and interval.start < end]


def validated_series(
    name: str, intervals: Sequence[PriceInterval], currency: str, now: datetime, fx_to_usd: float | None = None
) -> PriceSeries:
    """What a feed returns: its intervals validated (validate_intervals) and covering `now` (series.require_covers);
    with the site's `fx_to_usd` (the managed feed knows it, the feed adapters do not), also within
    MAX_ABS_USD_PER_KWH once converted."""
    checked = series.validated(PRICES, name, intervals, _currency_and_unit(name, currency, fx_to_usd), now)
    return PriceSeries(feed=name, intervals=checked, fetched_at=now)
