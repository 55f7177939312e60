"""Reading a cluster's price horizon: the price now and the mean price over a window from now.

Prices are piecewise constant. Where the horizon has a gap or ends before the window does, the
last known price carries on (a persistence forecast); before its first interval the first price
applies. A horizon with no intervals has no price: callers substitute a fallback and treat the
cluster as stale, so that an invented price never drives a move.

Why persistence past the horizon's end: a review showed its worst case (one dear last hour counted for
every unknown hour of a 24-hour window: 1.104 USD/h of savings claimed where the known prices gave
0.019). The alternatives do worse on real prices: over every hour of 2024 in 17 markets, a 24-hour window
past the day-ahead horizon, the window mean's median error is 0.050 of the mean price carrying the last
hour, 0.079 carrying the known part's mean, 0.069 the last three hours' mean, 0.077 each hour's price a
day before; persistence names the cheaper of two EUR markets in 0.9955 of 80,858 cases, the known
mean in 0.9904 (bench/horizon_fill.py; both half-years agree). A day-ahead horizon ends at night, and
the unknown hours are mostly night hours like its last one.

Carbon intensity horizons are read by the same two functions (`step_at`, `step_mean`), so that
"the value now" and "the window's mean" mean one thing for money and for carbon (planner.carbon).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from gridshift.planner.snapshot import PriceHorizon


class Step(Protocol):
    @property
    def start(self) -> datetime: ...


S = TypeVar("S", bound=Step)


@dataclass(frozen=True)
class PriceView:
    """What the planner uses of one horizon for one window."""

    now_usd_per_kwh: float
    window_mean_usd_per_kwh: float
    known: bool


def step_at(intervals: Sequence[S], value: Callable[[S], float], moment: datetime) -> float | None:
    """The value in force at `moment`, carrying the last known one forward; None without intervals."""
    if not intervals:
        return None
    current = value(intervals[0])
    for interval in intervals:
        if interval.start > moment:
            break
        current = value(interval)
    return current


def step_mean(intervals: Sequence[S], value: Callable[[S], float], start: datetime, hours: float) -> float | None:
    """Time-weighted mean value over [start, start + hours); None without intervals."""
    if not intervals:
        return None
    if hours <= 0:
        return step_at(intervals, value, start)
    end = start + timedelta(hours=hours)
    breakpoints = sorted({start, end, *(i.start for i in intervals if start < i.start < end)})
    total = 0.0
    for left, right in itertools.pairwise(breakpoints):
        here = step_at(intervals, value, left)
        assert here is not None
        total += here * (right - left).total_seconds()
    return total / (end - start).total_seconds()


def price_at(horizon: PriceHorizon, moment: datetime) -> float | None:
    """The price in force at `moment`, carrying the last known price forward; None without prices."""
    return step_at(horizon.intervals, lambda i: i.usd_per_kwh, moment)


def window_mean(horizon: PriceHorizon, start: datetime, hours: float) -> float | None:
    """Time-weighted mean price over [start, start + hours); None without prices."""
    return step_mean(horizon.intervals, lambda i: i.usd_per_kwh, start, hours)


def view(horizon: PriceHorizon | None, now: datetime, hours: float, fallback_usd_per_kwh: float) -> PriceView:
    if horizon is None or not horizon.intervals:
        return PriceView(fallback_usd_per_kwh, fallback_usd_per_kwh, known=False)
    now_price = price_at(horizon, now)
    mean = window_mean(horizon, now, hours)
    assert now_price is not None and mean is not None
    return PriceView(now_price, mean, known=True)
