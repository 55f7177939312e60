"""The time series every signal feed returns, whatever it measures: intervals, series, and their validation.

A feed publishes values over intervals [start, end): electricity prices (signals.prices) or carbon
intensity (signals.carbon). Both reach the planner through the same checks, written once here and
parametrised by a `Measure`, which says how the errors name the value and adds the checks only that
measure has (a price's currency and unit; an intensity's range and basis):

- `validate_intervals`: a non-empty series of UTC intervals, each ending after it starts, with a
  finite value passing the measure's own checks, none overlapping the one before;
- `require_covers`: some interval holds `now` (without the value now nothing is decided);
- `validated`: both, giving the `Series` a feed returns.

Recorded series (CSV files replayed on a supplied clock) share one compact reader: signals.recorded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Generic, Self, TypeVar

FeedErrorType = Callable[[str, str, str], Exception]
"""An error class of signals.prices or signals.carbon: (feed, field, message) -> the error naming both."""


@dataclass(frozen=True)
class Interval:
    """A value's interval [start, end), UTC; subclasses add the value and what it is measured in."""

    start: datetime
    end: datetime

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant < self.end

    @property
    def value(self) -> float:
        """The value measured over the interval (a price, an intensity)."""
        raise NotImplementedError


IntervalT = TypeVar("IntervalT", bound=Interval)


@dataclass(frozen=True)
class Series(Generic[IntervalT]):
    """A feed's validated intervals, sorted, with when they were fetched and whether they went stale."""

    feed: str
    intervals: tuple[IntervalT, ...]
    fetched_at: datetime
    stale: bool = False
    """Set by the managed feed once no good fetch happened for staleAfterSeconds: the planner must
    not move load on these values."""

    def at(self, instant: datetime) -> IntervalT | None:
        """The interval holding `instant`, if any."""
        return next((interval for interval in self.intervals if interval.contains(instant)), None)

    def marked_stale(self) -> Self:
        return replace(self, stale=True)

    @property
    def start(self) -> datetime:
        return self.intervals[0].start

    @property
    def end(self) -> datetime:
        return self.intervals[-1].end


@dataclass(frozen=True)
class Measure(Generic[IntervalT]):
    """What a series measures, as its errors and checks need it."""

    one: str
    """"price", "intensity": in "no price for now", "not a price CSV"."""
    many: str
    """"prices", "intensities": in "no prices (empty series)", "no recorded prices between ..."."""
    field: str
    """How an interval's value is named in error fields (`intervals[3].price`)."""
    error: FeedErrorType
    """Raised for a value or series that cannot be trusted."""
    no_data: FeedErrorType
    """Raised when a recording has nothing for the window asked."""
    timezone_flag: str = ""
    """Where else a recording's zone is set, in a naive time's refusal: the price recordings' simulate flag."""
    local_time_example: str = ""
    """The shipped recordings of this measure written in local time, named in the same refusal."""

    @property
    def a_one(self) -> str:
        """ "a price", "an intensity"."""
        return f"{'an' if self.one[0] in 'aeiou' else 'a'} {self.one}"


IntervalCheck = Callable[[str, IntervalT], None]
"""A measure's own check of one interval, given where it stands (`intervals[3]`); raises the measure's error."""


def utc_text(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def validate_intervals(
    measure: Measure[IntervalT],
    feed: str,
    intervals: Sequence[IntervalT],
    check: IntervalCheck[IntervalT],
    *,
    field: str = "intervals",
) -> tuple[IntervalT, ...]:
    """The intervals, if they can be trusted; the measure's error naming the first fault otherwise."""
    if not intervals:
        raise measure.error(feed, field, f"no {measure.many} (empty series)")
    previous: IntervalT | None = None
    for index, interval in enumerate(intervals):
        where = f"{field}[{index}]"
        if interval.start.tzinfo is None or interval.end.tzinfo is None:
            raise measure.error(feed, f"{where}.start", "timestamp without a UTC offset")
        if not interval.start < interval.end:
            # Found in review: a zero-length interval was said to end "before it starts".
            how = "when it starts" if interval.start == interval.end else "before it starts"
            raise measure.error(feed, f"{where}.end", f"interval ends ({utc_text(interval.end)}) {how}")
        value = interval.value
        if not math.isfinite(value):
            raise measure.error(feed, f"{where}.{measure.field}", f"not a finite number: {value!r}")
        check(where, interval)
        if previous is not None and interval.start < previous.end:
            problem = "goes backwards" if interval.start < previous.start else "overlaps the previous one"
            raise measure.error(
                feed,
                f"{where}.start",
                f"interval starting {utc_text(interval.start)} {problem} (ending {utc_text(previous.end)})",
            )
        previous = interval
    return tuple(intervals)


def require_covers(measure: Measure[IntervalT], feed: str, intervals: Sequence[IntervalT], now: datetime) -> None:
    """The measure's error unless some interval holds `now`: without the value now nothing is decided."""
    if not any(interval.contains(now) for interval in intervals):
        covered = f"{utc_text(intervals[0].start)}..{utc_text(intervals[-1].end)}" if intervals else "nothing"
        raise measure.error(
            feed, "intervals", f"no {measure.one} for now ({utc_text(now)}); the series covers {covered}"
        )


def validated(
    measure: Measure[IntervalT],
    feed: str,
    intervals: Sequence[IntervalT],
    check: IntervalCheck[IntervalT],
    now: datetime,
) -> tuple[IntervalT, ...]:
    """What a feed returns, before it is wrapped in its Series: validated and covering `now`."""
    checked = validate_intervals(measure, feed, intervals, check)
    require_covers(measure, feed, checked, now)
    return checked
