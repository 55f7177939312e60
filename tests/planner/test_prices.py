"""Reading a horizon over a window (planner.prices): gaps carry the price before them, and a window past
the horizon's end carries its last price (persistence: bench/horizon_fill.py measured it against the
alternatives on 2024's real prices)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gridshift.planner.carbon import carbon_view
from gridshift.planner.prices import price_at, window_mean
from gridshift.planner.snapshot import CarbonHorizon, CarbonIntensity, EnergyPrice, PriceHorizon
from tests.planner.planner_world import NOW, hourly_prices


def test_a_window_inside_the_horizon_is_its_time_weighted_mean() -> None:
    horizon = hourly_prices([0.10, 0.30, 0.20])
    assert window_mean(horizon, NOW + timedelta(minutes=30), 2.0) == pytest.approx((0.05 + 0.30 + 0.10) / 2)


def test_a_window_past_the_horizons_end_carries_the_last_known_price() -> None:
    horizon = hourly_prices([0.10] * 11 + [0.40])
    assert window_mean(horizon, NOW, 24.0) == pytest.approx((11 * 0.10 + 13 * 0.40) / 24)
    assert window_mean(horizon, NOW + timedelta(hours=10), 24.0) == pytest.approx((0.10 + 23 * 0.40) / 24)


def test_a_gap_inside_the_horizon_carries_the_price_before_it() -> None:
    horizon = PriceHorizon(
        (
            EnergyPrice(NOW, NOW + timedelta(hours=1), 0.10),
            EnergyPrice(NOW + timedelta(hours=2), NOW + timedelta(hours=3), 0.40),
        )
    )
    assert window_mean(horizon, NOW, 3.0) == pytest.approx((0.10 + 0.10 + 0.40) / 3)


def test_a_horizon_ended_before_the_window_carries_its_last_price() -> None:
    horizon = hourly_prices([0.10, 0.30])
    later = NOW + timedelta(hours=5)
    assert window_mean(horizon, later, 6.0) == pytest.approx(0.30)
    assert price_at(horizon, later) == pytest.approx(0.30)


def test_carbon_intensity_is_read_over_a_window_as_prices_are() -> None:
    intensities = CarbonHorizon(
        tuple(
            CarbonIntensity(NOW + timedelta(hours=h), NOW + timedelta(hours=h + 1), g)
            for h, g in enumerate([100.0] * 11 + [900.0])
        )
    )
    view = carbon_view(intensities, NOW, 24.0, fallback_g_per_kwh=500.0)
    assert view.window_mean_g_per_kwh == pytest.approx((11 * 100.0 + 13 * 900.0) / 24)
    assert view.now_g_per_kwh == 100.0
