"""Reading a cluster's price horizon: the price now and the mean price over a window from now.

Prices are piecewise constant. Where the horizon has a gap or ends before the window does, the
last known price carries on (a persistence forecast); before its first interval the first price
applies. A horizon with no intervals has no price: callers substitute a fallback and treat the
cluster as stale, so that an invented price never drives a move.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

from gridshift.planner.snapshot import PriceHorizon


@dataclass(frozen=True)
class PriceView:
    """What the planner uses of one horizon for one window."""

    now_usd_per_kwh: float
    window_mean_usd_per_kwh: float
    known: bool


def price_at(horizon: PriceHorizon, moment: datetime) -> float | None:
    """The price in force at `moment`, carrying the last known price forward; None without prices."""
    if not horizon.intervals:
        return None
    current = horizon.intervals[0].usd_per_kwh
    for interval in horizon.intervals:
        if interval.start > moment:
            break
        current = interval.usd_per_kwh
    return current


def window_mean(horizon: PriceHorizon, start: datetime, hours: float) -> float | None:
    """Time-weighted mean price over [start, start + hours); None without prices."""
    if not horizon.intervals:
        return None
    if hours <= 0:
        return price_at(horizon, start)
    end = start + timedelta(hours=hours)
    breakpoints = sorted({start, end, *(i.start for i in horizon.intervals if start < i.start < end)})
    total = 0.0
    for left, right in itertools.pairwise(breakpoints):
        price = price_at(horizon, left)
        assert price is not None
        total += price * (right - left).total_seconds()
    return total / (end - start).total_seconds()


def view(horizon: PriceHorizon | None, now: datetime, hours: float, fallback_usd_per_kwh: float) -> PriceView:
    if horizon is None or not horizon.intervals:
        return PriceView(fallback_usd_per_kwh, fallback_usd_per_kwh, known=False)
    now_price = price_at(horizon, now)
    mean = window_mean(horizon, now, hours)
    assert now_price is not None and mean is not None
    return PriceView(now_price, mean, known=True)
