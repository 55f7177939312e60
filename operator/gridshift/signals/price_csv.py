"""Recorded price CSVs: parsing, and the `csvReplay` feed that replays them on a supplied clock.

Two layouts are read (both as in ../shared/data/prices-2024):
- wide: `datetime_utc,<MARKET>_<CUR>_per_<UNIT>,...`, one UTC hourly axis, a column per market;
  an empty cell is a missing hour (skipped, leaving a gap).
- per market: `Datetime,Price (<CUR>/<UNIT>)`; timestamps with an offset are honoured, naive
  ones are read in `naive_timezone` (UTC unless told otherwise).
Each interval lasts the file's usual step (the smallest gap between rows; rows missing leave a gap).
A replayed file is read once, row by row, into a compact index, and is capped in size
(`PriceFeedSettings.max_csv_bytes`): a 50 MB CSV once took 279 s and 1.38 GB as interval objects.
"""

from __future__ import annotations

import bisect
import csv
import io
import math
import re
import stat
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TextIO

from gridshift.api.regional_cluster import CsvReplayFeed, EnergyUnit
from gridshift.signals.prices import (
    NoPriceDataError,
    PriceDataError,
    PriceInterval,
    PriceKind,
    PriceSeries,
    parse_unit,
    require_covers,
    validate_intervals,
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


@dataclass(frozen=True)
class PriceRecording:
    """A parsed price CSV, kept compact: each row's start (UTC epoch seconds) and price, in arrays.

    Every interval lasts the file's usual step (the smallest gap between rows): rows are strictly
    increasing, so the next row starts exactly one step later, or later still where rows are
    missing (a gap). 16 bytes a row instead of a PriceInterval object; intervals are made only for
    the window asked.
    """

    column: PriceColumn
    unit: EnergyUnit
    kind: PriceKind
    starts: array[float]
    prices: array[float]
    step: timedelta

    def __len__(self) -> int:
        return len(self.starts)

    def _interval(self, index: int, shift: timedelta) -> PriceInterval:
        start = datetime.fromtimestamp(self.starts[index], UTC) + shift
        return PriceInterval(start, start + self.step, self.prices[index], self.column.currency, self.unit, self.kind)

    def intervals(self, shift: timedelta = timedelta(0)) -> list[PriceInterval]:
        """Every row as an interval, moved by `shift`."""
        return [self._interval(i, shift) for i in range(len(self))]

    def window(self, start: datetime, end: datetime, shift: timedelta = timedelta(0)) -> list[PriceInterval]:
        """Intervals (moved by `shift`) overlapping [start, end), found by bisection."""
        low = bisect.bisect_right(self.starts, (start - shift - self.step).timestamp())
        high = bisect.bisect_left(self.starts, (end - shift).timestamp())
        out = [self._interval(i, shift) for i in range(low, high)]
        return [i for i in out if i.end > start and i.start < end]

    def first_start(self, shift: timedelta = timedelta(0)) -> datetime:
        return datetime.fromtimestamp(self.starts[0], UTC) + shift

    def last_end(self, shift: timedelta = timedelta(0)) -> datetime:
        return datetime.fromtimestamp(self.starts[-1], UTC) + self.step + shift


def read_price_csv(
    lines: Iterable[str],
    *,
    feed: str = "csv",
    column: str | None = None,
    naive_timezone: tzinfo = UTC,
    kind: PriceKind = PriceKind.ACTUAL,
) -> PriceRecording:
    """A wide or per-market price CSV read row by row (nothing but the current row in memory)."""
    rows = csv.reader(lines)
    header = next(rows, None)
    if header is None or len(header) < 2:
        raise PriceDataError(feed, "header", "not a price CSV (needs a time column and a price column)")
    index, price_column = _choose_column(feed, header, column)
    unit = parse_unit(feed, f"column {price_column.name!r} unit", price_column.unit_text)
    starts: array[float] = array("d")
    prices: array[float] = array("d")
    step: float | None = None
    previous: tuple[datetime, int] | None = None
    for row_number, row in enumerate(rows, start=2):
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
        start = _parse_time(feed, row_number, row[0], naive_timezone)
        if previous is not None:
            if start <= previous[0]:
                raise PriceDataError(
                    feed,
                    f"row {row_number}.datetime",
                    f"{start:%Y-%m-%dT%H:%MZ} is not after the previous row ({previous[0]:%Y-%m-%dT%H:%MZ}): "
                    "times overlap or go backwards",
                )
            gap = (start - previous[0]).total_seconds()
            step = gap if step is None else min(step, gap)
        starts.append(start.timestamp())
        prices.append(price)
        previous = (start, row_number)
    if not starts:
        raise PriceDataError(feed, price_column.name, "no prices in the file")
    return PriceRecording(
        price_column, unit, kind, starts, prices, timedelta(seconds=step) if step is not None else timedelta(hours=1)
    )


def parse_price_csv(
    text: str,
    *,
    feed: str = "csv",
    column: str | None = None,
    naive_timezone: tzinfo = UTC,
    kind: PriceKind = PriceKind.ACTUAL,
) -> list[PriceInterval]:
    """Every priced row of a wide or per-market price CSV, as intervals in the file's currency/unit."""
    recording = read_price_csv(io.StringIO(text), feed=feed, column=column, naive_timezone=naive_timezone, kind=kind)
    return recording.intervals()


def _bounded_lines(handle: TextIO, *, feed: str, path: Path, max_bytes: int, max_line: int) -> Iterator[str]:
    """The file's lines, refusing one longer than `max_line` or a total past `max_bytes` (a file that
    grew, or a device whose size says nothing), so no read is unbounded."""
    total = 0
    while True:
        line = handle.readline(max_line + 1)
        if not line:
            return
        total += len(line)
        if len(line) > max_line:
            raise PriceDataError(feed, "csvReplay.path", f"{path} has a line longer than {max_line} characters")
        if total > max_bytes:
            raise PriceDataError(feed, "csvReplay.path", _too_large(path, max_bytes))
        yield line


def _too_large(path: Path, max_bytes: int) -> str:
    return (
        f"{path} is larger than the {max_bytes}-byte cap on local price files "
        f"(PriceFeedSettings.max_csv_bytes, {max_bytes / 2**20:g} MiB): keep only the dates the replay needs"
    )


class CsvReplayPriceFeed:
    """Replays a recorded series: the window around the supplied `now`, shifted by offsetDays.

    The file is read once, row by row, into a compact index (`PriceRecording`); each fetch makes
    intervals for its window only. Files over `PriceFeedSettings.max_csv_bytes` are refused before
    reading, naming `csvReplay.path` and the cap.
    """

    MAX_LINE_CHARS = 64 * 1024
    """No price CSV row is near this (the wide file's rows are ~150 characters)."""

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
        self._recording: PriceRecording | None = None

    def _load(self) -> PriceRecording:
        if self._recording is None:
            cap = self.settings.max_csv_bytes
            try:
                info = self.path.stat()
                if not stat.S_ISREG(info.st_mode):
                    raise PriceDataError(self.name, "csvReplay.path", f"{self.path} is not a regular file")
                if info.st_size > cap:
                    raise PriceDataError(
                        self.name, "csvReplay.path", _too_large(self.path, cap) + f"; it has {info.st_size} bytes"
                    )
                with self.path.open(encoding="utf-8-sig", newline="") as handle:
                    self._recording = read_price_csv(
                        _bounded_lines(
                            handle, feed=self.name, path=self.path, max_bytes=cap, max_line=self.MAX_LINE_CHARS
                        ),
                        feed=self.name,
                        column=self.spec.column,
                        naive_timezone=self._naive_timezone,
                    )
            except OSError as error:
                raise PriceDataError(
                    self.name, "csvReplay.path", f"cannot read {self.path}: {error.strerror}"
                ) from error
            except UnicodeDecodeError as error:
                raise PriceDataError(
                    self.name, "csvReplay.path", f"{self.path} is not UTF-8 text (byte {error.start})"
                ) from None
        return self._recording

    def fetch(self, now: datetime) -> PriceSeries:
        recording = self._load()
        shift = timedelta(days=self.spec.offset_days)
        start = now - timedelta(hours=self.settings.lookback_hours)
        end = now + timedelta(hours=self.settings.horizon_hours)
        window = recording.window(start, end, shift)
        if not window:
            raise NoPriceDataError(
                self.name,
                "csvReplay.offsetDays",
                f"no recorded prices between {start:%Y-%m-%dT%H:%MZ} and {end:%Y-%m-%dT%H:%MZ}; the recording "
                f"(shifted by {self.spec.offset_days} days) covers {recording.first_start(shift):%Y-%m-%d}.."
                f"{recording.last_end(shift):%Y-%m-%d}",
            )
        checked = validate_intervals(self.name, window, expected_currency=self.currency)
        require_covers(self.name, checked, now)
        return PriceSeries(feed=self.name, intervals=checked, fetched_at=now)
