"""`FakeCarbonFeed`: the CarbonFeed Protocol answering what a test serves; passes the carbon-feed contract tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from gridshift.api.carbon import CarbonBasis
from gridshift.signals.carbon import CarbonInterval, CarbonSeries, validated_carbon_series
from gridshift.testing.feeds import FakeFeed


class FakeCarbonFeed(FakeFeed[CarbonInterval, CarbonSeries]):
    """A carbon feed whose answer is set directly (FakeFeed), validated on `basis`."""

    def __init__(self, name: str, *, basis: CarbonBasis = CarbonBasis.LIFECYCLE) -> None:
        super().__init__(name, self._validate)
        self.basis = basis

    def _validate(self, name: str, intervals: Sequence[CarbonInterval], now: datetime) -> CarbonSeries:
        return validated_carbon_series(name, intervals, self.basis, now)
