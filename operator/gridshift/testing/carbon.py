"""`FakeCarbonFeed`: the CarbonFeed Protocol answering what a test serves; passes the carbon-feed contract tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from gridshift.api.carbon import CarbonBasis
from gridshift.signals.carbon import CarbonInterval, CarbonSeries, validated_carbon_series
from gridshift.signals.prices import PriceFeedError


class FakeCarbonFeed:
    """A carbon feed whose answer is set directly: a fixed series, a function of `now`, or an error."""

    def __init__(self, name: str, *, basis: CarbonBasis = CarbonBasis.LIFECYCLE) -> None:
        self.name = name
        self.basis = basis
        self._intervals: Callable[[datetime], Sequence[CarbonInterval]] = lambda now: ()
        self._failures: list[PriceFeedError] = []
        self.fetches: list[datetime] = []

    def serve(self, intervals: Sequence[CarbonInterval] | Callable[[datetime], Sequence[CarbonInterval]]) -> None:
        self._intervals = intervals if callable(intervals) else (lambda now: tuple(intervals))

    def fail_next(self, *errors: PriceFeedError) -> None:
        self._failures.extend(errors)

    def fetch(self, now: datetime) -> CarbonSeries:
        self.fetches.append(now)
        if self._failures:
            raise self._failures.pop(0)
        return validated_carbon_series(self.name, list(self._intervals(now)), self.basis, now)
