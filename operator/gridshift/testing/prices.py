"""`FakePriceFeed`: the PriceFeed Protocol answering what a test serves; passes the price-feed contract tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from gridshift.signals.prices import PriceInterval, PriceSeries, validated_series
from gridshift.testing.feeds import FakeFeed


class FakePriceFeed(FakeFeed[PriceInterval, PriceSeries]):
    """A price feed whose answer is set directly (FakeFeed), validated in `currency`."""

    def __init__(self, name: str, *, currency: str = "EUR") -> None:
        super().__init__(name, self._validate)
        self.currency = currency

    def _validate(self, name: str, intervals: Sequence[PriceInterval], now: datetime) -> PriceSeries:
        return validated_series(name, intervals, self.currency, now)
