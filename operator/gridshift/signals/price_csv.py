"""Recorded price CSVs: parsing, and the `csvReplay` feed that replays them on a supplied clock.

Two layouts are read (both as in ../shared/data/prices-2024):
- wide: `datetime_utc,<MARKET>_<CUR>_per_<UNIT>,...`, one UTC hourly axis, a column per market;
  an empty cell is a missing hour (skipped, leaving a gap).
- per market: `Datetime,Price (<CUR>/<UNIT>)`; timestamps with an offset are honoured, naive
  ones are read in `naive_timezone` (UTC unless told otherwise).
Each interval lasts until the next row, or the file's usual step where rows are missing.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

from gridshift.api.regional_cluster import CsvReplayFeed
from gridshift.signals.prices import (
    NoPriceDataError,
    PriceDataError,
    PriceInterval,
    PriceKind,
    PriceSeries,
    parse_unit,
    require_covers,
    validate_intervals,
    window_of,
)
from gridshift.signals.settings import PriceFeedSettings

_WIDE_COLUMN = re.compile(r"^(?P<market>.+)_(?P<currency>[A-Z]{3})_per_(?P<unit>[A-Za-z]+)$")
_MARKET_COLUMN = re.compile(r"^Price \((?P<currency>[A-Za-z]{3})/(?P<unit>[A-Za-z]+)\)$")


@dataclass(frozen=True)
class PriceColumn:
    """The column read, and the currency and unit its header declares."""

    name: str
    currency: str
    unit_text: str


def _choose_column(feed: str, header: Sequence[str], column: str | None) -> tuple[int, PriceColumn]:
    candidates = list(enumerate(header))[1:]
    if column is None:
        if len(candidates) != 1:
            names = ", ".join(name for _, name in candidates)
            raise PriceDataError(feed, "column", f"the file has {len(candidates)} price columns; name one of: {names}")
        index, name = candidates[0]
    else:
        matches = [(i, n) for i, n in candidates if n == column]
        if not matches:
            names = ", ".join(name for _, name in candidates)
            raise PriceDataError(feed, "column", f"no column {column!r}; the file has: {names}")
        index, name = matches[0]
    match = _WIDE_COLUMN.match(name) or _MARKET_COLUMN.match(name)
    if match is None:
        raise PriceDataError(
            feed, "column", f"header {name!r} does not say currency and unit ('X_EUR_per_MWh' or 'Price (EUR/MWh)')"
        )
    return index, PriceColumn(name, match.group("currency").upper(), match.group("unit"))


def _parse_time(feed: str, row_number: int, text: str, naive_timezone: tzinfo) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise PriceDataError(feed, f"row {row_number}.datetime", f"not an ISO 8601 time: {text!r}") from error
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=naive_timezone)
    return parsed.astimezone(UTC)


def parse_price_csv(
    text: str,
    *,
    feed: str = "csv",
    column: str | None = None,
    naive_timezone: tzinfo = UTC,
    kind: PriceKind = PriceKind.ACTUAL,
) -> list[PriceInterval]:
    """Every priced row of a wide or per-market price CSV, as intervals in the file's currency/unit."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or len(rows[0]) < 2:
        raise PriceDataError(feed, "header", "not a price CSV (needs a time column and a price column)")
    index, price_column = _choose_column(feed, rows[0], column)
    unit = parse_unit(feed, f"column {price_column.name!r} unit", price_column.unit_text)
    points: list[tuple[datetime, float, int]] = []
    for row_number, row in enumerate(rows[1:], start=2):
        if not row or not row[0].strip():
            continue
        if len(row) <= index:
            raise PriceDataError(feed, f"row {row_number}", f"has {len(row)} fields; column {index + 1} missing")
        cell = row[index].strip()
        if not cell:
            continue  # a missing hour upstream: a gap, not a price
        try:
            price = float(cell)
        except ValueError as error:
            raise PriceDataError(feed, f"row {row_number}.{price_column.name}", f"not a number: {cell!r}") from error
        if not math.isfinite(price):
            raise PriceDataError(feed, f"row {row_number}.{price_column.name}", f"not a finite number: {cell!r}")
        points.append((_parse_time(feed, row_number, row[0], naive_timezone), price, row_number))
    if not points:
        raise PriceDataError(feed, price_column.name, "no prices in the file")
    steps = [later[0] - earlier[0] for earlier, later in itertools.pairwise(points)]
    positive = [step for step in steps if step > timedelta(0)]
    usual_step = min(positive) if positive else timedelta(hours=1)
    intervals = []
    for position, (start, price, _) in enumerate(points):
        following = points[position + 1][0] if position + 1 < len(points) else None
        end = following if following is not None and start < following <= start + usual_step else start + usual_step
        if following is not None and following <= start:
            raise PriceDataError(
                feed,
                f"row {points[position + 1][2]}.datetime",
                f"{following:%Y-%m-%dT%H:%MZ} is not after the previous row ({start:%Y-%m-%dT%H:%MZ}): "
                "times overlap or go backwards",
            )
        intervals.append(PriceInterval(start, end, price, price_column.currency, unit, kind))
    return intervals


class CsvReplayPriceFeed:
    """Replays a recorded series: the window around the supplied `now`, shifted by offsetDays."""

    def __init__(
        self,
        name: str,
        *,
        spec: CsvReplayFeed,
        currency: str,
        settings: PriceFeedSettings | None = None,
        naive_timezone: tzinfo = UTC,
        base_directory: Path | None = None,
    ) -> None:
        self.name = name
        self.spec = spec
        self.currency = currency
        self.settings = settings or PriceFeedSettings()
        self._naive_timezone = naive_timezone
        path = Path(spec.path)
        self.path = path if path.is_absolute() or base_directory is None else base_directory / path
        self._recording: list[PriceInterval] | None = None

    def _load(self) -> list[PriceInterval]:
        if self._recording is None:
            try:
                text = self.path.read_text(encoding="utf-8")
            except OSError as error:
                raise PriceDataError(
                    self.name, "csvReplay.path", f"cannot read {self.path}: {error.strerror}"
                ) from error
            parsed = parse_price_csv(text, feed=self.name, column=self.spec.column, naive_timezone=self._naive_timezone)
            shift = timedelta(days=self.spec.offset_days)
            self._recording = [
                PriceInterval(i.start + shift, i.end + shift, i.price, i.currency, i.unit, i.kind) for i in parsed
            ]
        return self._recording

    def fetch(self, now: datetime) -> PriceSeries:
        recording = self._load()
        start = now - timedelta(hours=self.settings.lookback_hours)
        end = now + timedelta(hours=self.settings.horizon_hours)
        window = window_of(recording, start, end)
        if not window:
            raise NoPriceDataError(
                self.name,
                "csvReplay.offsetDays",
                f"no recorded prices between {start:%Y-%m-%dT%H:%MZ} and {end:%Y-%m-%dT%H:%MZ}; the recording "
                f"(shifted by {self.spec.offset_days} days) covers {recording[0].start:%Y-%m-%d}.."
                f"{recording[-1].end:%Y-%m-%d}",
            )
        checked = validate_intervals(self.name, window, expected_currency=self.currency)
        require_covers(self.name, checked, now)
        return PriceSeries(feed=self.name, intervals=checked, fetched_at=now)
