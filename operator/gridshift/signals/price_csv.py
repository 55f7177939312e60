"""Recorded price CSVs: their columns, parsing, and the `csvReplay` feed that replays them on a supplied clock.

Two layouts are read (both as in ../shared/data/prices-2024):
- wide: `datetime_utc,<MARKET>_<CUR>_per_<UNIT>,...`, one UTC hourly axis, a column per market;
  an empty cell is a missing hour (skipped, leaving a gap).
- per market: `Datetime,Price (<CUR>/<UNIT>)`; timestamps with an offset are honoured, naive
  ones are read in `naive_timezone` (UTC unless told otherwise).
Reading, the compact index and the replay are signals.recorded's, shared with carbon intensity;
this module says which column holds the prices and what currency and unit its header declares.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import InitVar, dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path

from gridshift.api.common import strip_white_space
from gridshift.api.regional_cluster import CsvReplayFeed
from gridshift.signals.prices import (
    PRICES,
    PriceDataError,
    PriceInterval,
    PriceKind,
    PriceSeries,
    parse_unit,
    validate_intervals,
    validated_series,
)
from gridshift.signals.recorded import CsvReplay, RecordedColumn, Recording, read_recording
from gridshift.signals.settings import ConfiguredFeed

_WIDE_COLUMN = re.compile(r"^(?P<market>.+)_(?P<currency>[A-Z]{3})_per_(?P<unit>[A-Za-z]+)$")
_MARKET_COLUMN = re.compile(r"^Price \((?P<currency>[A-Za-z]{3})/(?P<unit>[A-Za-z]+)\)$")

PriceRecording = Recording[PriceInterval]


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
        # The header's names come stripped (signals.recorded); a column named with the spaces the file writes, which
        # matched before that, still does (found in review: a stored csvReplay.column was refused after an upgrade).
        matches = [(i, n) for i, n in candidates if n == strip_white_space(column)]
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


def price_column(
    feed: str, column: str | None = None, kind: PriceKind = PriceKind.ACTUAL
) -> Callable[[Sequence[str]], RecordedColumn[PriceInterval]]:
    """How signals.recorded finds the price column of a header (`column`, or the only one) and makes its intervals."""

    def choose(header: Sequence[str]) -> RecordedColumn[PriceInterval]:
        index, chosen = _choose_column(feed, header, column)
        unit = parse_unit(feed, f"column {chosen.name!r} unit", chosen.unit_text)

        def interval(start: datetime, end: datetime, price: float) -> PriceInterval:
            return PriceInterval(start, end, price, chosen.currency, unit, kind)

        return RecordedColumn(index, chosen.name, interval)

    return choose


def read_price_csv(
    lines: Iterable[str],
    *,
    feed: str = "csv",
    column: str | None = None,
    naive_timezone: tzinfo = UTC,
    kind: PriceKind = PriceKind.ACTUAL,
) -> PriceRecording:
    """A wide or per-market price CSV read row by row (nothing but the current row in memory)."""
    return read_recording(lines, PRICES, feed, price_column(feed, column, kind), naive_timezone)


def parse_price_csv(
    text: str,
    *,
    feed: str = "csv",
    column: str | None = None,
    naive_timezone: tzinfo = UTC,
    kind: PriceKind = PriceKind.ACTUAL,
) -> list[PriceInterval]:
    """Every priced row of a wide or per-market price CSV, as intervals in the file's currency/unit, each
    within MAX_ABS_PRICE_PER_MWH (validate_intervals: found in review, a row of 1e308 EUR/MWh reached the
    simulator's bound as a solver failure, and `gridshift prices` printed it)."""
    return parse_price_csv_rows(text, feed=feed, column=column, naive_timezone=naive_timezone, kind=kind)[0]


def parse_price_csv_rows(
    text: str,
    *,
    feed: str = "csv",
    column: str | None = None,
    naive_timezone: tzinfo = UTC,
    kind: PriceKind = PriceKind.ACTUAL,
) -> tuple[list[PriceInterval], datetime]:
    """parse_price_csv's intervals, and where the file's last row ends, its cell empty or not (a file's trailing
    empty cells are missing hours up to there, not hours the file does not have)."""
    recording = read_price_csv(io.StringIO(text), feed=feed, column=column, naive_timezone=naive_timezone, kind=kind)
    intervals = recording.intervals()
    valid = list(validate_intervals(feed, intervals, expected_currency=intervals[0].currency)) if intervals else []
    return valid, datetime.fromtimestamp(recording.rows_end, UTC)


@dataclass(eq=False, kw_only=True)
class CsvReplayPriceFeed(ConfiguredFeed[CsvReplayFeed]):
    """Replays a recorded price CSV (signals.recorded.CsvReplay): the window around the supplied `now`,
    shifted by offsetDays, validated in the configured currency."""

    currency: str
    base_directory: InitVar[Path | None] = None

    def __post_init__(self, base_directory: Path | None) -> None:
        choose = price_column(self.name, self.spec.column)
        self.replay = CsvReplay(self.name, PRICES, self.spec, choose, self.settings, base_directory=base_directory)

    @property
    def path(self) -> Path:
        return self.replay.path

    def fetch(self, now: datetime) -> PriceSeries:
        return validated_series(self.name, self.replay.window(now), self.currency, now)
