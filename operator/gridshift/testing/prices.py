"""`FakePriceFeed`: the PriceFeed Protocol answering what a test serves; passes the price-feed contract tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from gridshift.signals.prices import PriceFeedError, PriceInterval, PriceSeries, validated_series


class FakePriceFeed:
    """A feed whose answer is set directly: a fixed series, a function of `now`, or an error."""

    def __init__(self, name: str, *, currency: str = "EUR") -> None:
        self.name = name
        self.currency = currency
        self._intervals: Callable[[datetime], Sequence[PriceInterval]] = lambda now: ()
        self._failures: list[PriceFeedError] = []
        self.fetches: list[datetime] = []

    def serve(self, intervals: Sequence[PriceInterval] | Callable[[datetime], Sequence[PriceInterval]]) -> None:
        """Answer with these intervals (or with what the function gives for `now`)."""
        self._intervals = intervals if callable(intervals) else (lambda now: tuple(intervals))

    def fail_next(self, *errors: PriceFeedError) -> None:
        """Raise these errors on the next fetches, in order, then serve again."""
        self._failures.extend(errors)

    def fetch(self, now: datetime) -> PriceSeries:
        self.fetches.append(now)
        if self._failures:
            raise self._failures.pop(0)
        return validated_series(self.name, list(self._intervals(now)), self.currency, now)
