"""`FakeFeed`: a series feed answering what a test serves; FakePriceFeed and FakeCarbonFeed are its two measures."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Generic, TypeVar

from gridshift.signals.prices import PriceFeedError
from gridshift.signals.series import IntervalT

SeriesT = TypeVar("SeriesT")


class FakeFeed(Generic[IntervalT, SeriesT]):
    """A feed whose answer is set directly: a fixed series, a function of `now`, or an error.

    What it serves is validated as a real adapter's answer is (`validated`), so the fakes pass the
    same contract tests as the adapters."""

    def __init__(self, name: str, validated: Callable[[str, Sequence[IntervalT], datetime], SeriesT]) -> None:
        self.name = name
        self._validated = validated
        self._intervals: Callable[[datetime], Sequence[IntervalT]] = lambda now: ()
        self._failures: list[PriceFeedError] = []
        self.fetches: list[datetime] = []

    def serve(self, intervals: Sequence[IntervalT] | Callable[[datetime], Sequence[IntervalT]]) -> None:
        """Answer with these intervals (or with what the function gives for `now`)."""
        self._intervals = intervals if callable(intervals) else (lambda now: tuple(intervals))

    def fail_next(self, *errors: PriceFeedError) -> None:
        """Raise these errors on the next fetches, in order, then serve again."""
        self._failures.extend(errors)

    def fetch(self, now: datetime) -> SeriesT:
        self.fetches.append(now)
        if self._failures:
            raise self._failures.pop(0)
        return self._validated(self.name, list(self._intervals(now)), now)
