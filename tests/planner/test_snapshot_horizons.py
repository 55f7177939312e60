"""The snapshot's price and carbon horizons: one interval check and one ordering check for both."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gridshift.planner.snapshot import CarbonHorizon, CarbonIntensity, EnergyPrice, PriceHorizon

MakeInterval = Callable[[datetime, datetime], Any]
NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)

KINDS = [
    pytest.param(PriceHorizon, lambda start, end: EnergyPrice(start, end, 0.1), id="price"),
    pytest.param(CarbonHorizon, lambda start, end: CarbonIntensity(start, end, 300.0), id="carbon"),
]


@pytest.mark.parametrize(("horizon", "interval"), KINDS)
def test_an_interval_must_end_after_it_starts(horizon: Any, interval: MakeInterval) -> None:
    kind = type(interval(NOW, NOW + HOUR)).__name__
    with pytest.raises(ValueError, match=rf"^{kind}\.end .* must be after start"):
        interval(NOW, NOW)


@pytest.mark.parametrize(("horizon", "interval"), KINDS)
def test_a_horizon_refuses_overlapping_or_unsorted_intervals(horizon: Any, interval: MakeInterval) -> None:
    first = interval(NOW, NOW + HOUR)
    overlapping = interval(NOW + HOUR / 2, NOW + 2 * HOUR)
    later = interval(NOW + HOUR, NOW + 2 * HOUR)
    for intervals in ((first, overlapping), (later, first)):
        with pytest.raises(ValueError, match=rf"^{horizon.__name__}\.intervals must be sorted and not overlap"):
            horizon(intervals)
    assert horizon((first, later)).intervals == (first, later)


@pytest.mark.parametrize(("horizon", "interval"), KINDS)
def test_interval_at_finds_the_interval_holding_an_instant(horizon: Any, interval: MakeInterval) -> None:
    first = interval(NOW, NOW + HOUR)
    later = interval(NOW + 2 * HOUR, NOW + 3 * HOUR)
    held = horizon((first, later))
    assert held.interval_at(NOW) == first
    assert held.interval_at(NOW + HOUR) is None  # the gap: nothing is carried forward here
    assert held.interval_at(NOW + 2 * HOUR + HOUR / 2) == later
    assert held.interval_at(NOW + 3 * HOUR) is None


def test_carbon_intensity_is_never_negative() -> None:
    with pytest.raises(ValueError, match=r"^CarbonIntensity\.g_per_kwh must be >= 0"):
        CarbonIntensity(NOW, NOW + HOUR, -1.0)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_price_or_demand_is_refused_at_the_snapshot(value: float) -> None:
    # Found in review, 3 December: a NaN price made every plan's cost NaN (no plan ever beat the
    # incumbent: the fleet froze) and a NaN rate raised inside build_problem for every deployment.
    from gridshift.planner.snapshot import ObservedDemand

    start = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match=r"EnergyPrice\.usd_per_kwh must be finite"):
        EnergyPrice(start, start + timedelta(hours=1), value)
    with pytest.raises(ValueError, match=r"ObservedDemand\.requests_per_second must be None or a finite"):
        ObservedDemand(requests_per_second=value)
    with pytest.raises(ValueError, match=r"ObservedDemand\.mean_output_tokens must be None or a finite"):
        ObservedDemand(requests_per_second=1.0, mean_output_tokens=value)
    assert ObservedDemand().requests_per_second is None and EnergyPrice(start, start + timedelta(hours=1), -0.02)
