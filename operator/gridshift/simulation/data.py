"""Inputs of a replay: price CSVs and request traces, read from files or from the slices gridshift ships.

Prices are read with the csvReplay parser (gridshift.signals.price_csv.parse_price_csv_rows, handed in by
the caller: cli.simulate.price_csv_parser), so the simulator
accepts exactly the CSV layouts the operator replays: the wide UTC file of shared/data/prices-2024 and
the per-market files. They are converted to USD/kWh with explicit FX rates and put on an hourly UTC axis
that runs to the end of the file's last row; a missing hour (an empty cell, in the last rows too) carries
the previous price forward (the planner's persistence rule), at most _MAX_GAP_HOURS in a row.

Traces are the Azure LLM inference trace 2023 CSV (`TIMESTAMP,ContextTokens,GeneratedTokens`) or
JSONL with `timestamp`, `input_length`, `output_length` per line (gzip-compressed or not). They are
reduced to what the replay uses: requests per minute and mean prompt and output lengths.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from importlib import resources
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from gridshift.api.common import strip_white_space
from gridshift.arrays import FloatArray
from gridshift.numerals import TooLarge, plain_number, shown
from gridshift.signals.recorded import is_utc, says_utc

DATA_PACKAGE = "gridshift.data"
SHIPPED_PRICES = "prices/prices_2024_7markets_utc_hourly_wide.csv"
SHIPPED_TRACES: Mapping[str, str] = {
    "conv": "traces/AzureLLMInferenceTrace_conv.csv.gz",
    "code": "traces/AzureLLMInferenceTrace_code.csv.gz",
}


KWH_PER_MWH = 1000.0


class SimulationInputError(ValueError):
    """A price file, trace or setting the replay cannot use; the message names the file and field."""


class PricedInterval(Protocol):
    """One parsed CSV row: a price over [start, end) in a currency per MWh or kWh."""

    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime: ...
    @property
    def price(self) -> float: ...
    @property
    def currency(self) -> str: ...
    @property
    def unit(self) -> object: ...


class PriceCsvParser(Protocol):
    """parse_price_csv_rows's shape: a column's priced rows, and where the file's last row ends (its cell empty or
    not); raises SimulationInputError (the caller translates the parser's errors)."""

    def __call__(
        self, text: str, *, feed: str, column: str | None, naive_timezone: tzinfo
    ) -> tuple[Sequence[PricedInterval], datetime]: ...


@dataclass(frozen=True)
class MarketPrices:
    """Hourly USD/kWh of one market on a UTC axis starting at `start`; NaN where nothing is known."""

    market: str
    currency: str
    start: datetime
    usd_per_kwh: FloatArray

    def window(self, start: datetime, hours: int) -> FloatArray:
        """Prices of `hours` hours from `start`, carrying the last known price over gaps (at most
        _MAX_GAP_HOURS in a row, counted from the gap's first hour, before `start` too)."""
        offset = round((start - self.start) / timedelta(hours=1))
        if offset < 0 or offset + hours > len(self.usd_per_kwh):
            end = self.start + timedelta(hours=len(self.usd_per_kwh))
            # Ends "up to" (exclusive) and the last hour named: found in review, "covers 2024-01-01 00:00Z..
            # 2024-12-31 23:00Z" (its last hour's start) read as though it held the 2024-12-31 + 24 h it refused.
            raise SimulationInputError(
                f"prices of {self.market}: the replay needs the {hours} h from {start:%Y-%m-%d %H:%M}Z up to "
                f"{start + timedelta(hours=hours):%Y-%m-%d %H:%M}Z but the file covers the hours from "
                f"{self.start:%Y-%m-%d %H:%M}Z up to {end:%Y-%m-%d %H:%M}Z (its last hour begins "
                f"{end - timedelta(hours=1):%Y-%m-%d %H:%M}Z); choose --start and --days within them"
            )
        # A gap is measured from its first missing hour, before `start` too: found in review, only its part within
        # the window was counted, so a week without prices was replayed at a price days old whenever the window
        # fell in its last 48 hours (and a gap across the replay's end was checked in two halves, the replay's
        # and the look-ahead's, each allowed 48 hours).
        refuse_long_gap(self.usd_per_kwh, self.start, offset, offset + hours, f"prices of {self.market}", "price")
        # Fill from the whole series so that a gap at the window's start takes the price before it.
        filled = _forward_fill(self.usd_per_kwh[: offset + hours])
        window = filled[offset:]
        if np.isnan(window).any():
            raise SimulationInputError(f"prices of {self.market}: no price at or before {start:%Y-%m-%d %H:%M}Z")
        return window


_MAX_GAP_HOURS = 48
"""Longest run of hours without a price that the replay carries the last price over: two days of a
missing publication (the shipped 2024 files miss whole days: DE-LU, ES and AT 24 hours each), not a
week of one price (found in review: a market's whole March emptied was replayed at one price,
silently). A gap is counted from its first missing hour, also where that is before the hours asked."""


def refuse_long_gap(hourly: FloatArray, start: datetime, offset: int, end: int, what: str, noun: str) -> None:
    """SimulationInputError naming `what` if `hourly` (from `start`, NaN where missing) has, before `end`, a run
    of missing hours longer than the replay carries the last value over; prices and carbon intensities alike. A
    gap at `offset`, the first hour asked for, is counted from its first missing hour, before `offset` too."""
    priced = np.flatnonzero(~np.isnan(hourly[: offset + 1]))
    first = int(priced[-1]) if len(priced) else offset
    gap = _longest_gap(hourly[first:end])
    if gap is not None and gap[1] > _MAX_GAP_HOURS:
        begins = start + timedelta(hours=first + gap[0])
        raise SimulationInputError(
            f"{what}: {gap[1]} hours without a{'n' if noun[0] in 'aeiou' else ''} {noun} from "
            f"{begins:%Y-%m-%d %H:%M}Z; a missing hour carries the previous {noun}, but not more than "
            f"{_MAX_GAP_HOURS} in a row"
        )


def _longest_gap(values: FloatArray) -> tuple[int, int] | None:
    """(first index, length) of the longest run of NaN in `values`; None without one."""
    missing = np.concatenate([[False], np.isnan(values), [False]])
    edges = np.flatnonzero(missing[1:] != missing[:-1])
    if not len(edges):
        return None
    starts, ends = edges[::2], edges[1::2]
    longest = int(np.argmax(ends - starts))
    return int(starts[longest]), int(ends[longest] - starts[longest])


def _forward_fill(values: FloatArray) -> FloatArray:
    known = ~np.isnan(values)
    index = np.where(known, np.arange(len(values)), -1)
    np.maximum.accumulate(index, out=index)
    filled: FloatArray = np.where(index >= 0, values[np.maximum(index, 0)], np.nan)
    return filled


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise SimulationInputError(f"cannot read {path}: {error.strerror}") from error
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError
            raise SimulationInputError(f"{path}: not a readable gzip file ({type(error).__name__})") from error
    try:
        return raw.decode("utf-8-sig")  # a BOM (Windows editors) is not part of the header
    except UnicodeDecodeError as error:
        raise SimulationInputError(f"{path}: not UTF-8 text") from error


def shipped_text(name: str) -> str:
    raw = resources.files(DATA_PACKAGE).joinpath(name).read_bytes()
    return (gzip.decompress(raw) if name.endswith(".gz") else raw).decode("utf-8")


def price_columns(text: str) -> list[str]:
    """Price column names of a price CSV (header fields after the time column), stripped as the feeds' reader
    strips them (signals.recorded)."""
    header = next(csv.reader(io.StringIO(text)), [])
    return [strip_white_space(name) for name in header[1:]]


def market_of_file(path: str | Path) -> str:
    """A per-market file's market: its name's `<MARKET>_` prefix (DE-LU_electricity_prices_2024.csv: DE-LU)."""
    return Path(path).name.split("_", 1)[0]


def market_of_column(column: str) -> str:
    """`DE-LU_EUR_per_MWh` -> `DE-LU`; a per-market `Price (EUR/MWh)` column has no market name."""
    return column.split("_", 1)[0] if "_per_" in column else column


def parse_prices(
    text: str,
    *,
    source: str,
    fx_to_usd: Mapping[str, float],
    parser: PriceCsvParser,
    markets: Sequence[str] | None = None,
    market_name: str | None = None,
    naive_timezone: str | None = None,
    max_abs_usd_per_kwh: float = math.inf,
) -> list[MarketPrices]:
    """Hourly USD/kWh series of the chosen markets of one CSV (wide or per market).

    Timestamps without an offset are local time of `naive_timezone` (an IANA zone, e.g. Europe/Paris for the
    EU per-market files of shared/data/prices-2024; None: UTC), read as the operator's csvReplay reads them
    (signals.recorded: the spring-forward hour such files write priced no time and is left out, the
    fall-back hour may stand twice). A price beyond `max_abs_usd_per_kwh` once converted is refused,
    naming the market and hour.
    """
    columns = price_columns(text)
    if not columns:
        raise SimulationInputError(f"{source}: not a price CSV (needs a time column and price columns)")
    by_market = {market_of_column(c): c for c in columns}
    if len(by_market) < len(columns):
        # Found in review: the last of two columns for one market won, silently (DE-LU in EUR and in USD).
        twice = sorted({m for m in by_market if sum(market_of_column(c) == m for c in columns) > 1})
        raise SimulationInputError(f"{source}: more than one price column for market(s) {', '.join(twice)}")
    if len(columns) == 1 and "_per_" not in columns[0]:
        if market_name is None and "_" not in Path(source).name:
            raise SimulationInputError(
                f"{source}: one price column without a market in its name, and none in the file's name: name the "
                "file <MARKET>_<anything>.csv (e.g. DE-LU_prices.csv) or the column <MARKET>_<CUR>_per_MWh"
            )
        by_market = {market_name or market_of_file(source): columns[0]}
    chosen = list(markets) if markets else list(by_market)
    missing = [m for m in chosen if m not in by_market]
    if missing:
        raise SimulationInputError(
            f"{source}: no price column for market(s) {', '.join(missing)}; it has {', '.join(sorted(by_market))}"
        )
    result = []
    for market in chosen:
        zone = UTC if naive_timezone is None else ZoneInfo(naive_timezone)
        intervals, rows_end = parser(text, feed=source, column=by_market[market], naive_timezone=zone)
        currency = intervals[0].currency
        if currency not in fx_to_usd:
            raise SimulationInputError(
                f"{source}: market {market} quotes {currency}; give its rate with --fx {currency}=<USD per {currency}>"
            )
        rate = fx_to_usd[currency]
        spans = [(i.start, i.end) for i in intervals]
        start = min(b for b, _ in spans).replace(minute=0, second=0, microsecond=0)
        # To the end of the file's last row, priced or not: found in review, the series ended with the column's
        # last price, so the shipped file's empty DE-LU cell of 2024-12-31 23:00Z refused a replay of that day
        # instead of carrying 22:00's price over it as any other missing hour.
        hours = math.ceil((max(rows_end, *(e for _, e in spans)) - start) / timedelta(hours=1))
        converted = []
        for interval, (begin, finish) in zip(intervals, spans, strict=True):
            per_kwh = interval.price / (KWH_PER_MWH if str(interval.unit).lower().endswith("mwh") else 1.0) * rate
            if abs(per_kwh) > max_abs_usd_per_kwh:
                raise SimulationInputError(
                    f"{source}: market {market}, hour {begin:%Y-%m-%dT%H:%MZ}: {interval.price:g} "
                    f"{currency}/{interval.unit} is {per_kwh:g} USD/kWh at --fx {currency}={rate:g}, beyond any "
                    f"market's price (|price| <= {max_abs_usd_per_kwh:g} USD/kWh)"
                )
            converted.append((begin, finish, per_kwh))
        values = hourly_means(converted, start, hours)
        result.append(MarketPrices(market=market, currency=currency, start=start, usd_per_kwh=values))
    return result


def hourly_means(intervals: Iterable[tuple[datetime, datetime, float]], start: datetime, hours: int) -> FloatArray:
    """The value of each of `hours` hours from `start`: sub-hourly values (15-min markets, 5-min intensities)
    averaged into their hour, each weighted by the part of the hour it covers (an hour's own value has weight
    1, so hourly files keep theirs); NaN where nothing covers an hour. Prices and carbon intensities alike
    (found in review: intensities were sampled, the last quarter-hour of an hour standing for all of it)."""
    weighted = np.zeros(hours)
    weights = np.zeros(hours)
    hour = timedelta(hours=1)
    for begin, finish, value in intervals:
        for h in range(max(0, math.floor((begin - start) / hour)), min(hours, math.ceil((finish - start) / hour))):
            covered = (min(finish, start + (h + 1) * hour) - max(begin, start + h * hour)) / hour
            weighted[h] += value * covered
            weights[h] += covered
    known = weights > 0
    values = np.full(hours, np.nan)
    values[known] = weighted[known] / weights[known]
    return values


def _naive(text: str) -> bool:
    """Whether a timestamp has no UTC offset, as the CSV parser reads it (datetime.fromisoformat: +01,
    +01:00, +0100 and Z are offsets; found in review, +01 was taken for none). A timestamp it cannot
    read is not called naive: the parser refuses it, naming the row."""
    try:
        return datetime.fromisoformat(text.strip()).tzinfo is None
    except ValueError:
        return False


def naive_times(text: str, source: str) -> bool:
    """True when the data rows' timestamps carry no UTC offset (nor Z), False when they all do; a file
    mixing the two is refused naming the first row that differs. Found in review: only the first row was
    looked at, so a naive first row moved every offset row by the zone's offset, and a naive later row
    was read as UTC, unasked."""
    rows = csv.reader(io.StringIO(text))
    next(rows, None)
    first: bool | None = None
    for number, row in enumerate(rows, start=2):
        if not row or not row[0].strip():
            continue
        naive = _naive(row[0])
        if first is None:
            first = naive
        elif naive != first:
            raise SimulationInputError(
                f"{source}: row {number}: {row[0].strip()!r} {'has no' if naive else 'has a'} UTC offset, unlike "
                "the rows before it; write every timestamp with its offset, or none"
            )
    return bool(first)


def check_timezone(timezone: str | None, flag: str) -> None:
    """SimulationInputError naming `flag` unless `timezone` is None or an IANA zone this Python knows."""
    if timezone is None:
        return
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise SimulationInputError(f"{flag}: unknown time zone {timezone!r}") from error


def local_timezone(text: str, source: str, timezone: str | None, flag: str) -> str | None:
    """Whose local time a price CSV's timestamps are: None when they carry offsets, else `timezone`, which
    `flag` must then have given (naive_times refuses a file mixing the two)."""
    if not naive_times(text, source):
        return None
    if says_utc(next(csv.reader(io.StringIO(text.split("\n", 1)[0])), [""])[0]):
        # The time column's header says so, as the operator reads it (signals.recorded); a zone given besides
        # that is not UTC contradicts the file (found in review: it won, silently).
        if timezone is not None and not is_utc(ZoneInfo(timezone)):
            raise SimulationInputError(f"{source}: its time column says UTC, and {flag} says {timezone}")
        return "UTC"
    if timezone is None:
        raise SimulationInputError(
            f"{source}: its timestamps carry no UTC offset; say whose local time they are with {flag} "
            "(e.g. Europe/Paris for the EU files of prices-2024, UTC if they are UTC), or use the wide UTC file"
        )
    return timezone


def load_prices(
    paths: Sequence[Path],
    *,
    fx_to_usd: Mapping[str, float],
    markets: Sequence[str] | None,
    parser: PriceCsvParser,
    timezone: str | None = None,
    max_abs_usd_per_kwh: float = math.inf,
    timezones: Mapping[str, str] | None = None,
) -> list[MarketPrices]:
    """Markets from the given CSVs, or from the shipped 2024 slice when no path is given.

    A file whose timestamps carry no offset is refused unless `timezone` says whose local time they are
    (UTC included): the EU per-market files of shared/data/prices-2024 are French local time, and reading
    them as UTC shifted every price by one or two hours without a word. `timezones` gives a per-market
    file's zone by its market (the file name's `<MARKET>_` prefix), where files of several zones are
    replayed together (found in review: one zone for all read the EU files or the US ones hours off).
    """
    check_timezone(timezone, "--prices-timezone")
    by_market = dict(timezones or {})
    for market, named_zone in by_market.items():
        check_timezone(named_zone, f"--prices-timezone {market}=")
    named = {market_of_file(path) for path in paths}
    unknown = sorted(set(by_market) - named)
    if unknown:
        raise SimulationInputError(
            f"--prices-timezone: no --prices file for market(s) {', '.join(unknown)} (a file's market is its "
            "name's <MARKET>_ prefix)"
        )
    if not paths:
        return parse_prices(
            shipped_text(SHIPPED_PRICES),
            source=SHIPPED_PRICES,
            fx_to_usd=fx_to_usd,
            markets=markets,
            parser=parser,
            max_abs_usd_per_kwh=max_abs_usd_per_kwh,
        )
    found: dict[str, MarketPrices] = {}
    source_of: dict[str, Path] = {}
    for path in paths:
        text = _read_text(path)
        given = by_market.get(market_of_file(path), timezone)
        zone = local_timezone(text, str(path), given, "--prices-timezone")
        wide = len(price_columns(text)) > 1 or "_per_" in "".join(price_columns(text))
        wanted = None if markets is None or not wide else [m for m in markets if m in _markets_in(text)]
        if wide and markets is not None and not wanted:
            continue
        for series in parse_prices(
            text,
            source=str(path),
            fx_to_usd=fx_to_usd,
            markets=wanted,
            parser=parser,
            naive_timezone=zone,
            max_abs_usd_per_kwh=max_abs_usd_per_kwh,
        ):
            if series.market in found:
                # Found in review: the second file's prices were dropped without a word.
                raise SimulationInputError(
                    f"--prices: market {series.market} is in both {source_of[series.market]} and {path}; "
                    "give each market once (--markets picks from a wide file)"
                )
            found[series.market], source_of[series.market] = series, path
    chosen = list(markets) if markets else list(found)
    missing = [m for m in chosen if m not in found]
    if missing:
        raise SimulationInputError(
            f"--prices: no file has market(s) {', '.join(missing)}; found {', '.join(sorted(found)) or 'none'}"
        )
    return [found[m] for m in chosen]


def _markets_in(text: str) -> set[str]:
    return {market_of_column(c) for c in price_columns(text)}


@dataclass(frozen=True)
class TraceProfile:
    """A request trace reduced to requests per minute and mean lengths."""

    name: str
    requests_per_minute: FloatArray
    mean_prompt_tokens: float
    mean_output_tokens: float
    prompt_tokens: npt.NDArray[np.int64]
    output_tokens: npt.NDArray[np.int64]
    arrival_seconds: FloatArray

    @property
    def mean_requests_per_second(self) -> float:
        return float(self.requests_per_minute.mean()) / 60.0

    def shape(self) -> FloatArray:
        """Each minute's request count over the trace's mean: the burst pattern the replay cycles."""
        mean = float(self.requests_per_minute.mean())
        result: FloatArray = self.requests_per_minute / mean
        return result


_FRACTION = re.compile(r"\.(\d+)")


class _TimeKinds:
    """Whether a trace's times carry a UTC offset: all of them or none (a naive time is UTC), never a mix."""

    def __init__(self) -> None:
        self.naive: bool | None = None

    def parse(self, text: str, where: str) -> datetime:
        moment, naive = _parse_time(text, where)
        if self.naive is None:
            self.naive = naive
        elif naive != self.naive:
            # A naive time is read as UTC; beside times with offsets it is more likely local (review).
            raise SimulationInputError(
                f"{where}: {text.strip()!r}: the trace mixes times with and without a UTC offset"
            )
        return moment


def _parse_time(text: str, where: str) -> tuple[datetime, bool]:
    """The time in UTC (a naive one read as UTC), and whether it was naive."""
    cleaned = text.strip()
    if cleaned.endswith("Z"):
        cleaned = cleaned[:-1] + "+00:00"
    # Azure writes seven fractional digits; Python reads at most six. The fraction's own digits only: found in
    # review, the offset's digits were taken for more of it (12:00:00.5+02:00 read as 12:00:00.502 UTC).
    cleaned = _FRACTION.sub(lambda digits: f".{digits.group(1)[:6]}", cleaned, count=1)
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError as error:
        raise SimulationInputError(f"{where}: not an ISO 8601 time: {text!r}") from error
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC), True
    return parsed.astimezone(UTC), False


class _LongNumber(str):
    """A JSON whole number of more than _MAX_JSON_DIGITS digits, kept as its text: int() refuses over 4300
    digits (Python's own error, naming no file or line) and float() of a long int overflows (a traceback)."""


_MAX_JSON_DIGITS = 300
"""Most digits of a JSON whole number read as one: a float holds up to about 1.8e308. Found in review: a
401-digit timestamp ended in an OverflowError traceback, a 5000-digit one in Python's digit limit."""


def _json_int(text: str) -> int | _LongNumber:
    return _LongNumber(text) if len(text.lstrip("-")) > _MAX_JSON_DIGITS else int(text)


def _json_line(line: str) -> Any:
    return json.loads(line, parse_int=_json_int)


def _shown(value: object) -> str:
    """`value` for a message: a long number by its digit count, not thousands of digits; anything else as
    gridshift.numerals.shown quotes it."""
    if isinstance(value, _LongNumber):
        return f"a number of {len(value.lstrip('-')):,} digits"
    return shown(value)


def _parse_length(value: object, where: str) -> int:
    if isinstance(value, str) and not isinstance(value, _LongNumber):
        # A string (a CSV cell, stripped by the caller, or a JSON string) as a feed's (gridshift.numerals):
        # float() read "1_000", "١٢" and " 12 " (review).
        try:
            number = plain_number(value)
        except TooLarge:
            number = math.inf  # "1e400", 401 digits: more than any model's context, said below (review)
        except ValueError as reason:
            raise SimulationInputError(f"{where}: {reason}: {_shown(value)}") from None
    else:
        try:
            number = float(str(value))
        except ValueError as error:
            raise SimulationInputError(f"{where}: not a number: {_shown(value)}") from error
    if math.isnan(number) or number < 0:
        raise SimulationInputError(f"{where}: must be a non-negative number, got {_shown(value)}")
    if number > _MAX_REQUEST_TOKENS:
        # Found in review: 1e300 reached numpy's int64 as an OverflowError traceback; a 401-digit count (float()
        # reads it as inf) was "not a non-negative number", with every digit.
        quoted = _shown(value)
        tokens = f"{quoted} is more tokens" if isinstance(value, _LongNumber) else f"{quoted} tokens is more"
        raise SimulationInputError(f"{where}: {tokens} than any model's context ({_MAX_REQUEST_TOKENS:,} at most)")
    return round(number)


_MAX_REQUEST_TOKENS = 10_000_000
"""Most tokens one request's prompt or output may have: ten times the longest context windows offered."""


TIME_UNITS: Mapping[str, float] = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
"""Seconds per unit of a JSONL trace's numeric timestamps."""

# Numeric timestamps at or above these are Unix epochs in that unit (2001-09-09 in seconds is 1e9).
_EPOCH_FLOORS: tuple[tuple[float, str], ...] = ((1e17, "ns"), (1e14, "us"), (1e11, "ms"), (1e8, "s"))
_MAX_MEDIAN_GAP_S = 10.0
"""A trace whose median gap between requests is longer than this (under 0.1 req/s) is implausible for a
deployment worth placing; a relative millisecond clock read as seconds lands here (an hour becomes 41 days)."""


def _time_unit(stamps: Sequence[float], unit: str, source: str) -> float:
    """Seconds per unit of numeric timestamps: given, or detected (epoch magnitude, else seconds if plausible)."""
    if unit != "auto":
        if unit not in TIME_UNITS:
            raise SimulationInputError(f"--trace-time-unit: one of auto, {', '.join(TIME_UNITS)}; got {unit!r}")
        return TIME_UNITS[unit]
    largest = max(abs(value) for value in stamps)
    for floor, name in _EPOCH_FLOORS:
        if largest >= floor:
            return TIME_UNITS[name]
    ordered = np.sort(np.asarray(stamps, dtype=np.float64))
    median_gap = float(np.median(np.diff(ordered))) if len(ordered) > 1 else 0.0
    if median_gap > _MAX_MEDIAN_GAP_S:
        raise SimulationInputError(
            f"{source}: timestamp: read as seconds, the median gap between requests is {median_gap:,.0f} s "
            f"({len(ordered)} requests over {(ordered[-1] - ordered[0]) / 86400.0:,.1f} days), implausible for a "
            "trace; if they are milliseconds (or us, ns), say so with --trace-time-unit ms"
        )
    return 1.0


def _unit_name(seconds_per_unit: float) -> str:
    return next((name for name, value in TIME_UNITS.items() if value == seconds_per_unit), "s")


_Record = tuple[datetime, int, int]
"""One request: arrival time, prompt tokens, output tokens."""


def parse_trace(text: str, *, source: str, time_unit: str = "auto") -> TraceProfile:
    """An Azure-format CSV or a JSONL trace as a TraceProfile.

    Numeric JSONL timestamps are seconds, milliseconds, microseconds or nanoseconds (`time_unit`, or
    detected: a Unix epoch by its magnitude; a relative clock is seconds unless that makes the median gap
    between requests implausibly long, which is refused with a message naming the flag).
    """
    records = _jsonl_records(text, source, time_unit) if text.lstrip().startswith("{") else _csv_records(text, source)
    return _trace_profile(records, source)


def _jsonl_records(text: str, source: str, time_unit: str) -> list[_Record]:
    """The requests of a JSONL trace, numeric timestamps read in `time_unit` (or the unit detected)."""
    records: list[_Record] = []
    kinds = _TimeKinds()
    numeric: list[float] = []
    for line in text.splitlines():
        if line.strip():
            try:
                stamp = _json_line(line).get("timestamp")
            except (json.JSONDecodeError, AttributeError):
                continue
            if isinstance(stamp, int | float) and not isinstance(stamp, bool):
                numeric.append(float(stamp))
    seconds_per_unit = _time_unit(numeric, time_unit, source) if numeric else 1.0
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = _json_line(line)
        except json.JSONDecodeError as error:
            raise SimulationInputError(f"{source}: line {line_number}: not JSON ({error.msg})") from error
        if not isinstance(item, dict):
            raise SimulationInputError(f"{source}: line {line_number}: expected a JSON object")
        for field in ("timestamp", "input_length", "output_length"):
            if field not in item:
                raise SimulationInputError(f"{source}: line {line_number}: missing field {field!r}")
        where = f"{source}: line {line_number}"
        stamp = item["timestamp"]
        if isinstance(stamp, bool):
            raise SimulationInputError(f"{where}.timestamp: expected a number or an ISO time, got {stamp!r}")
        if isinstance(stamp, _LongNumber):
            raise SimulationInputError(
                f"{where}.timestamp: {_shown(stamp)} is not a date this replay can hold (see --trace-time-unit)"
            )
        if isinstance(stamp, int | float):
            try:
                moment = datetime.fromtimestamp(float(stamp) * seconds_per_unit, tz=UTC)
            except (OverflowError, OSError, ValueError) as error:
                raise SimulationInputError(
                    f"{where}.timestamp: {stamp!r} in {_unit_name(seconds_per_unit)} is not a "
                    "date this replay can hold (see --trace-time-unit)"
                ) from error
        else:
            moment = kinds.parse(str(stamp), f"{where}.timestamp")
        records.append(
            (
                moment,
                _parse_length(item["input_length"], f"{where}.input_length"),
                _parse_length(item["output_length"], f"{where}.output_length"),
            )
        )
    return records


def _csv_records(text: str, source: str) -> list[_Record]:
    """The requests of an Azure-format CSV trace (TIMESTAMP, ContextTokens, GeneratedTokens)."""
    records: list[_Record] = []
    kinds = _TimeKinds()
    rows = list(csv.reader(io.StringIO(text)))
    expected = ["TIMESTAMP", "ContextTokens", "GeneratedTokens"]
    if not rows or [c.strip() for c in rows[0][:3]] != expected:
        raise SimulationInputError(
            f"{source}: not a trace: expected an Azure CSV header {','.join(expected)} or JSONL lines with "
            "timestamp, input_length, output_length"
        )
    for row_number, row in enumerate(rows[1:], start=2):
        if not row or not row[0].strip():
            continue
        if len(row) < 3:
            raise SimulationInputError(f"{source}: row {row_number}: expected 3 fields, got {len(row)}")
        where = f"{source}: row {row_number}"
        records.append(
            (
                kinds.parse(row[0], f"{where}.TIMESTAMP"),
                _parse_length(row[1].strip(), f"{where}.ContextTokens"),  # "12, 5": the cell, not its spaces
                _parse_length(row[2].strip(), f"{where}.GeneratedTokens"),
            )
        )
    return records


def _trace_profile(records: list[_Record], source: str) -> TraceProfile:
    """Requests sorted by arrival and counted per whole minute, with their token lengths."""
    if len(records) < 2:
        raise SimulationInputError(f"{source}: the trace needs at least 2 requests, got {len(records)}")
    records.sort(key=lambda r: r[0])
    first = records[0][0]
    seconds = np.asarray([(r[0] - first).total_seconds() for r in records])
    _refuse_implausible_span(seconds, first, source)
    prompts = np.asarray([r[1] for r in records], dtype=np.int64)
    outputs = np.asarray([r[2] for r in records], dtype=np.int64)
    # Only whole minutes: the last, partial minute would read as a lull (or a burst).
    whole_minutes = int(seconds[-1] // 60)
    if whole_minutes < 1:
        raise SimulationInputError(f"{source}: the trace spans less than one minute ({seconds[-1]:.0f} s)")
    minute = (seconds // 60).astype(np.int64)
    counts = np.bincount(minute[minute < whole_minutes], minlength=whole_minutes).astype(np.float64)
    if counts.sum() <= 0 or outputs.mean() <= 0 or prompts.mean() <= 0:
        raise SimulationInputError(f"{source}: the trace has no requests with tokens")
    return TraceProfile(
        name=trace_name(source),
        requests_per_minute=counts,
        mean_prompt_tokens=float(prompts.mean()),
        mean_output_tokens=float(outputs.mean()),
        prompt_tokens=prompts,
        output_tokens=outputs,
        arrival_seconds=seconds,
    )


def trace_name(source: str) -> str:
    """A trace's name: its file's name without extensions, and without a leading dot (found in review,
    `.hidden.jsonl` was the trace '' and its deployments `-00`, `-01`); '' where no name is left."""
    return Path(source).name.lstrip(".").split(".")[0]


_MAX_TRACE_DAYS = 400
"""Longest span a trace may cover: a year of requests and then some (the replay is at most 366 days)."""


def _refuse_implausible_span(seconds: FloatArray, first: datetime, source: str) -> None:
    """Refuse a trace whose requests span implausibly long (`seconds` sorted, from `first`). Found in
    review: a CSV of requests in 0001 and 9999 asked numpy for 39 GiB."""
    days = float(seconds[-1]) / 86400.0
    if days > _MAX_TRACE_DAYS:
        raise SimulationInputError(
            f"{source}: the requests span {days:,.0f} days (from {first:%Y-%m-%d}), more than {_MAX_TRACE_DAYS}: "
            "is a timestamp wrong, or in another unit than the others?"
        )


def refuse_sparse_trace(trace: TraceProfile, source: str) -> None:
    """Refuse a trace to replay whose median gap between requests is over _MAX_MEDIAN_GAP_S, whatever its
    format (numeric JSONL was checked while its unit was detected; others were not). Found in review: a
    CSV of two requests a day apart hung the replay, which thins and copies the trace minute by minute."""
    seconds = trace.arrival_seconds
    median_gap = float(np.median(np.diff(seconds)))
    if median_gap > _MAX_MEDIAN_GAP_S:
        raise SimulationInputError(
            f"{source}: the median gap between requests is {median_gap:,.0f} s ({len(seconds)} requests over "
            f"{float(seconds[-1]) / 86400.0:,.1f} days), too sparse to replay (at most {_MAX_MEDIAN_GAP_S:g} s, "
            "0.1 requests/s): check the timestamps (numeric ones: --trace-time-unit)"
        )


def load_trace(path: Path, time_unit: str = "auto") -> TraceProfile:
    return parse_trace(_read_text(path), source=str(path), time_unit=time_unit)


def shipped_trace(name: str) -> TraceProfile:
    """One of the shipped Azure 2023 traces: 'conv' or 'code'."""
    if name not in SHIPPED_TRACES:
        raise SimulationInputError(f"no shipped trace {name!r}; shipped: {', '.join(SHIPPED_TRACES)}")
    return parse_trace(shipped_text(SHIPPED_TRACES[name]), source=SHIPPED_TRACES[name])
