"""Recorded series: a CSV of values read once into a compact index, and replayed on a supplied clock.

One reader and one replay for every measure (prices: signals.price_csv; carbon intensity:
signals.carbon_feeds). A file is `<time>,<value>,...`: the caller picks the value column from the
header (a price column declares its currency and unit; an intensity column its basis); timestamps
with an offset are honoured, naive ones are read in `naive_timezone` (UTC unless told otherwise).
An empty cell is a missing interval (a gap). Each interval lasts the resolution of the rows around it
(`row_ends`), so a file whose resolution changes (ENTSO-E's day-ahead went from 60 to 15 minutes on
1 October 2025) is read at each part's own. A replayed file is read once, row by row, and is capped in size
(`PriceFeedSettings.max_csv_bytes`): a 50 MB price CSV once took 279 s and 1.38 GB as interval objects.
"""

from __future__ import annotations

import bisect
import csv
import math
import re
import stat
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Generic, TextIO, TypeAlias
from zoneinfo import ZoneInfo

from gridshift.api.carbon import CsvReplayCarbonFeed
from gridshift.api.common import WHITE_SPACE, strip_white_space
from gridshift.api.regional_cluster import CsvReplayFeed
from gridshift.signals.fields import finite_number, utc_within_range
from gridshift.signals.series import IntervalT, Measure
from gridshift.signals.settings import PriceFeedSettings

MakeInterval = Callable[[datetime, datetime, float], IntervalT]
"""(start, end, value) -> the measure's interval, in what the column declares (currency and unit, basis)."""


@dataclass(frozen=True)
class RecordedColumn(Generic[IntervalT]):
    """The column a recording reads: its index in each row, its header, and how its values become intervals."""

    index: int
    name: str
    interval: MakeInterval[IntervalT]


@dataclass(frozen=True)
class Recording(Generic[IntervalT]):
    """A parsed CSV, kept compact: each row's start and end (UTC epoch seconds) and value, in arrays.

    An interval ends where the next row starts, or earlier where rows are missing (a gap:
    `row_ends`). 24 bytes a row instead of an interval object; intervals are made only for
    the window asked.
    """

    column: RecordedColumn[IntervalT]
    starts: array[float]
    ends: array[float]
    values: array[float]
    longest: float
    """The longest interval, s (how far before a window a row may start and still overlap it)."""
    rows_end: float
    """Where the file's last row ends (UTC epoch s), its cell empty or not: the end of the time axis the file's
    columns share (the simulator keeps a column's trailing empty cells as missing hours up to it)."""

    def __len__(self) -> int:
        return len(self.starts)

    def _interval(self, index: int, shift: timedelta) -> IntervalT:
        start = datetime.fromtimestamp(self.starts[index], UTC) + shift
        end = datetime.fromtimestamp(self.ends[index], UTC) + shift
        return self.column.interval(start, end, self.values[index])

    def intervals(self, shift: timedelta = timedelta(0)) -> list[IntervalT]:
        """Every row as an interval, moved by `shift`."""
        return [self._interval(i, shift) for i in range(len(self))]

    def window(self, start: datetime, end: datetime, shift: timedelta = timedelta(0)) -> list[IntervalT]:
        """Intervals (moved by `shift`) overlapping [start, end), found by bisection."""
        low = bisect.bisect_right(self.starts, (start - shift).timestamp() - self.longest)
        high = bisect.bisect_left(self.starts, (end - shift).timestamp())
        out = [self._interval(i, shift) for i in range(low, high)]
        return [i for i in out if i.end > start and i.start < end]

    def first_start(self, shift: timedelta = timedelta(0)) -> datetime:
        return datetime.fromtimestamp(self.starts[0], UTC) + shift

    def last_end(self, shift: timedelta = timedelta(0)) -> datetime:
        return datetime.fromtimestamp(self.ends[-1], UTC) + shift

    def span(self, shift: timedelta = timedelta(0)) -> str:
        """`2024-01-01..2025-01-01`: the days the recording (moved by `shift`) covers."""
        return f"{self.first_start(shift):%Y-%m-%d}..{self.last_end(shift):%Y-%m-%d}"


ReplaySpec: TypeAlias = CsvReplayFeed | CsvReplayCarbonFeed
"""A csvReplay block, of a price feed or a carbon feed: the file, its shift and whose local time it writes."""


ChooseColumn = Callable[[Sequence[str]], RecordedColumn[IntervalT]]
"""The header -> the column to read; raises the measure's error naming `column` when none fits."""


def _parse_time(
    measure: Measure[IntervalT],
    feed: str,
    row_number: int,
    text: str,
    naive_timezone: tzinfo | None,
    previous: datetime | None = None,
) -> datetime | None:
    """The row's start in UTC; None for a local time that does not exist (see read_recording). A local time
    that occurs twice (the fall-back hour) is its first occurrence, or its second when the previous row
    already took the first: files in local time write that hour twice, or once."""
    where = f"row {row_number}.datetime"
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise measure.error(feed, where, f"not an ISO 8601 time: {text!r}") from None
    if parsed.tzinfo is not None:
        return utc_within_range(feed, where, parsed, repr(text.strip()), measure.error)
    if naive_timezone is None:
        # The flag and the example are the measure's (found in review: a carbon recording's refusal named
        # --prices-timezone, which a carbon file does not read).
        raise measure.error(
            feed,
            where,
            f"{text.strip()!r} carries no UTC offset and the time column's header does not say UTC: set "
            f"csvReplay.timezone{measure.timezone_flag} to whose local time the file's times are"
            f"{measure.local_time_example}, or write the offsets, or name the time column 'Datetime (UTC)' if they "
            "are UTC",
        )
    moment = utc_within_range(feed, where, parsed, repr(text.strip()), measure.error, naive_timezone)
    if moment.astimezone(naive_timezone).replace(tzinfo=None) != parsed:
        return None  # the spring-forward hour the EU per-market files write: it priced no time
    if previous is not None and moment <= previous:
        second = parsed.replace(tzinfo=naive_timezone, fold=1).astimezone(UTC)
        if second > previous:
            return second
    return moment


_SPACE = re.escape(WHITE_SPACE)
_UTC_HEADER = re.compile(rf"(?i)(^|[{_SPACE}_(\[])utc($|[{_SPACE}_)\]])")
"""A time column's header that declares UTC: "Datetime (UTC)", "datetime_utc", "UTC". Not one that names an
offset from it ("Time (UTC+01:00)", "MTU (UTC+1)": found in review, they were read as UTC). Words are parted by
Unicode White_Space (api.common.WHITE_SPACE), where the header's names end (strip_white_space), not by `\\s`,
which also holds U+001C..U+001F: found in review, "Datetime<U+001F>UTC" and "UTC<U+001F>" were read as UTC while
the reader and admission take U+001F for part of a name, as they would a letter."""


def says_utc(name: str) -> bool:
    """Whether a time column's header declares UTC itself (_UTC_HEADER)."""
    return _UTC_HEADER.search(strip_white_space(name)) is not None


def is_utc(zone: tzinfo) -> bool:
    """Whether `zone` is UTC all year: no offset in January nor in July (Europe/London is +0 in winter only)."""
    return all(zone.utcoffset(datetime(2024, month, 1)) == timedelta(0) for month in (1, 7))


def read_recording(
    lines: Iterable[str],
    measure: Measure[IntervalT],
    feed: str,
    choose_column: ChooseColumn[IntervalT],
    naive_timezone: tzinfo | None = UTC,
) -> Recording[IntervalT]:
    """A CSV read row by row (nothing but the current row in memory); the measure's error naming
    the row and column at the first fault.

    Timestamps without an offset are local time of `naive_timezone`; when it is None, UTC if the time column's
    header says so ("Datetime (UTC)"), else refused (found in
    review: the operator read the EU per-market files, French local time, as UTC, one or two hours off);
    a row at a local time that does not exist (the spring-forward hour) is skipped."""
    rows = csv.reader(lines)
    header = next(rows, None)
    if header is None or len(header) < 2:
        raise measure.error(feed, "header", f"not {measure.a_one} CSV (needs a time column and {measure.a_one} column)")
    # Names without the spaces around them, as the simulator lists a file's markets: found in review,
    # `time, DE-LU_EUR_per_MWh ,...` was refused as "no column 'DE-LU_EUR_per_MWh'; the file has:  DE-LU_EUR_per_MWh ".
    # Stripped of Unicode White_Space only, as admission reads a csvReplay.column (api.common.strip_white_space).
    header = [strip_white_space(name) for name in header]
    column = choose_column(header)
    if says_utc(header[0]):
        if naive_timezone is not None and not is_utc(naive_timezone):
            # Found in review: a zone given besides a header saying UTC won, silently an hour or two off.
            raise measure.error(
                feed, "header", f"the time column {header[0]!r} says UTC; the zone given is {naive_timezone}"
            )
        naive_timezone = UTC  # the file says so itself: Electricity Maps' "Datetime (UTC)"
    starts: array[float] = array("d")
    values: array[float] = array("d")
    previous: datetime | None = None
    for row_number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        if not row[0].strip():
            # Found in review: a row with a price and no time was dropped without a word.
            raise measure.error(feed, f"row {row_number}.datetime", "empty: every row needs its time")
        if len(row) <= column.index:
            raise measure.error(feed, f"row {row_number}", f"has {len(row)} fields; column {column.index + 1} missing")
        cell = row[column.index].strip()
        # An empty cell is a missing interval upstream: a gap, not a value. Its row is kept (NaN) until the rows'
        # ends are known, so that it still tells the resolution: found in review, dropped at once, an hourly
        # file's one missing price made the rows around it two hours long, the last one past the file's end.
        value = finite_number(feed, f"row {row_number}.{column.name}", cell, measure.error) if cell else math.nan
        start = _parse_time(measure, feed, row_number, row[0], naive_timezone, previous)
        if start is None:
            continue
        if previous is not None and start <= previous:
            raise measure.error(
                feed,
                f"row {row_number}.datetime",
                f"{start:%Y-%m-%dT%H:%MZ} is not after the previous row ({previous:%Y-%m-%dT%H:%MZ}): "
                "times overlap or go backwards",
            )
        starts.append(start.timestamp())
        values.append(value)
        previous = start
    ends, longest = row_ends(starts)
    missing = sum(1 for value in values if math.isnan(value))
    if missing == len(values):
        raise measure.error(feed, column.name, f"no {measure.many} in the file")
    rows_end = ends[-1]
    if missing:  # without a list of indices: a file may hold millions of rows
        kept = [
            array("d", (x for x, v in zip(series, values, strict=True) if not math.isnan(v)))
            for series in (starts, ends)
        ]
        starts, ends = kept
        values = array("d", (v for v in values if not math.isnan(v)))
    return Recording(column, starts, ends, values, longest, rows_end)


def row_ends(starts: array[float]) -> tuple[array[float], float]:
    """Where each row ends (s), and the longest row: each lasts the resolution of the rows before it or
    of those after it, whichever is longer, and never past the next row's start.

    With g_i the gap from row i to the next, row i's resolution looking back is min(g_{i-2}, g_{i-1},
    g_i) and looking forward min(g_i, g_{i+1}, g_{i+2}); the first row looks forward only, two gaps, and
    the last but one back only, two gaps (each sees just its own gap the other way, `_resolution`): a missing row or
    two is a gap (the gaps beside it are shorter both ways), while at a change of resolution each side
    keeps its own (60 -> 15 minutes: the last hourly row still sees hours looking back). Three equal
    longer gaps in a row are read as a coarser resolution there: ENTSO-E's sporadic missing hours come
    one or two at a time. The last row lasts as its resolution looking back; a single row, an hour. One pass
    with five gaps in hand: a list of gaps for a 1.85-million-row file cost 85 MiB."""
    count = len(starts)
    ends = array("d", starts)
    if count < 2:
        for i in range(count):
            ends[i] += 3600.0
        return ends, 3600.0

    def gap(j: int) -> float:
        return starts[j + 1] - starts[j] if 0 <= j < count - 1 else math.inf

    before2, before1, own, after1, after2 = math.inf, math.inf, gap(0), gap(1), gap(2)
    longest = 0.0
    for i in range(count - 1):
        duration = _resolution(before2, before1, own, after1, after2)
        ends[i] += duration
        longest = max(longest, duration)
        before2, before1, own, after1, after2 = before1, own, after1, after2, gap(i + 3)
    last = min(before2, before1)  # the gaps ending at the last row (own is past the end)
    ends[count - 1] += last
    return ends, max(longest, last)


def _resolution(before2: float, before1: float, own: float, after1: float, after2: float) -> float:
    """A row's duration from the five gaps around it (math.inf past the file's ends). A side that sees
    only the row's own gap tells nothing of the resolution. Found in review: the first row, looking back
    at its own gap alone, stretched over a missing second row (00:00, 02:00, 03:00 read 00:00 -> 02:00 at
    the first row's price), and the last row but one likewise over a row missing just before the last.
    So those two look one way only, over two gaps as the last row does: over three, an hourly row beside a
    change to quarter-hours at the file's start or end was read as a quarter-hour (found in review of that
    fix: 22:00, 23:00, then quarter-hours from 00:00 read 22:00 -> 22:15, 45 minutes unpriced). Two rows
    alone last their one gap."""
    if before1 == math.inf:
        return min(own, after1)
    if after1 == math.inf:
        return min(before1, own)
    return max(min(before2, before1, own), min(own, after1, after2))


def bounded_lines(
    handle: TextIO, measure: Measure[IntervalT], feed: str, path: Path, max_bytes: int, max_line: int
) -> Iterator[str]:
    """The file's lines, refusing one longer than `max_line` or a total past `max_bytes` (a file that
    grew, or a device whose size says nothing), so no read is unbounded."""
    total = 0
    while True:
        line = handle.readline(max_line + 1)
        if not line:
            return
        total += len(line)
        if len(line) > max_line:
            raise measure.error(feed, "csvReplay.path", f"{path} has a line longer than {max_line} characters")
        if total > max_bytes:
            raise measure.error(feed, "csvReplay.path", _too_large(measure, path, max_bytes))
        yield line


def _too_large(measure: Measure[IntervalT], path: Path, max_bytes: int) -> str:
    return (
        f"{path} is larger than the {max_bytes}-byte cap on local {measure.one} files "
        f"(PriceFeedSettings.max_csv_bytes, {max_bytes / 2**20:g} MiB): keep only the dates the replay needs"
    )


class CsvReplay(Generic[IntervalT]):
    """A recorded file replayed: the window around the supplied `now`, shifted by offsetDays.

    The file is read once, row by row, into a compact index (`Recording`); each fetch makes
    intervals for its window only. Files over `PriceFeedSettings.max_csv_bytes` are refused before
    reading, naming `csvReplay.path` and the cap. The feeds (signals.price_csv.CsvReplayPriceFeed,
    signals.carbon_feeds.CsvReplayCarbonIntensityFeed) validate the window as any other fetch.
    """

    MAX_LINE_CHARS = 64 * 1024
    """No recorded CSV row is near this (the wide price file's rows are ~150 characters)."""

    def __init__(
        self,
        name: str,
        measure: Measure[IntervalT],
        spec: ReplaySpec,
        choose_column: ChooseColumn[IntervalT],
        settings: PriceFeedSettings,
        *,
        base_directory: Path | None = None,
    ) -> None:
        self.name, self.measure, self.settings = name, measure, settings
        self.offset_days = spec.offset_days
        self._choose_column = choose_column
        # Naive timestamps are refused unless the spec, or the time column's header, says whose time they are.
        # Found in review: a file in local time was read as UTC, shifting each hour's intensity.
        self._naive_timezone = None if spec.timezone is None else ZoneInfo(spec.timezone)
        relative = Path(spec.path)
        self.path = relative if relative.is_absolute() or base_directory is None else base_directory / relative
        self._recording: Recording[IntervalT] | None = None

    def recording(self) -> Recording[IntervalT]:
        """The file, read at the first call; the measure's error naming `csvReplay.path` if it cannot be."""
        if self._recording is None:
            self._recording = self._read()
        return self._recording

    def _read(self) -> Recording[IntervalT]:
        cap, error = self.settings.max_csv_bytes, self.measure.error
        try:
            info = self.path.stat()
            if not stat.S_ISREG(info.st_mode):
                raise error(self.name, "csvReplay.path", f"{self.path} is not a regular file")
            if info.st_size > cap:
                too_large = _too_large(self.measure, self.path, cap)
                raise error(self.name, "csvReplay.path", f"{too_large}; it has {info.st_size} bytes")
            with self.path.open(encoding="utf-8-sig", newline="") as handle:
                lines = bounded_lines(handle, self.measure, self.name, self.path, cap, self.MAX_LINE_CHARS)
                return read_recording(lines, self.measure, self.name, self._choose_column, self._naive_timezone)
        except OSError as failure:
            raise error(self.name, "csvReplay.path", f"cannot read {self.path}: {failure.strerror}") from failure
        except UnicodeDecodeError as failure:
            raise error(self.name, "csvReplay.path", f"{self.path} is not UTF-8 text (byte {failure.start})") from None

    def window(self, now: datetime) -> list[IntervalT]:
        """The recorded intervals around `now` (the settings' lookback and horizon); the measure's no-data
        error naming `csvReplay.offsetDays` if there are none."""
        recording = self.recording()
        shift = timedelta(days=self.offset_days)
        start = now - timedelta(hours=self.settings.lookback_hours)
        end = now + timedelta(hours=self.settings.horizon_hours)
        window = recording.window(start, end, shift)
        if not window:
            between = f"between {start:%Y-%m-%dT%H:%MZ} and {end:%Y-%m-%dT%H:%MZ}"
            covers = f"the recording (shifted by {self.offset_days} days) covers {recording.span(shift)}"
            raise self.measure.no_data(
                self.name, "csvReplay.offsetDays", f"no recorded {self.measure.many} {between}; {covers}"
            )
        return window
