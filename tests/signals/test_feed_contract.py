"""The series-feed contract, run against every price adapter, every carbon adapter and both fakes alike.

One parametrised core (signals.series is one path for both measures), with what only one measure
asserts kept beside it: a price is in the currency and unit the feed publishes and converts to
USD/kWh; an intensity is on the configured basis, within a grid's range, negative values are refused,
and forecasts are marked as forecasts. Worlds: tests/signals/price_worlds.py and carbon_worlds.py
(recorded 2024 prices and intensities, served over local HTTP where the adapter reads HTTP).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gridshift.api.regional_cluster import EnergyUnit
from gridshift.signals.carbon import CarbonDataError, CarbonFeedError
from gridshift.signals.prices import PriceDataError, PriceFeedError, PriceKind, to_usd_per_kwh
from tests.signals import carbon_worlds, price_worlds
from tests.signals.carbon_worlds import CarbonWorld
from tests.signals.conftest import LocalServer
from tests.signals.price_worlds import PRICE_NOW, PriceWorld

NOW = price_worlds.NOW
assert carbon_worlds.NOW == NOW

World = PriceWorld | CarbonWorld
WORLDS = [("price", kind) for kind in price_worlds.WORLD_KINDS] + [
    ("carbon", kind) for kind in carbon_worlds.WORLD_KINDS
]


def _make(measure: str, kind: str, server: LocalServer, shared_data: Path, tmp_path: Path) -> World:
    if measure == "price":
        return price_worlds.make_world(kind, server, shared_data, tmp_path)
    return carbon_worlds.make_world(kind, server, shared_data, tmp_path)


@pytest.fixture(params=WORLDS, ids=[f"{measure}-{kind}" for measure, kind in WORLDS])
def world(
    request: pytest.FixtureRequest, local_server: LocalServer, shared_data: Path, tmp_path: Path
) -> Iterator[World]:
    measure, kind = request.param
    yield _make(measure, kind, local_server, shared_data, tmp_path)


@pytest.fixture(params=price_worlds.WORLD_KINDS)
def price_world(
    request: pytest.FixtureRequest, local_server: LocalServer, shared_data: Path, tmp_path: Path
) -> Iterator[PriceWorld]:
    yield price_worlds.make_world(request.param, local_server, shared_data, tmp_path)


@pytest.fixture(params=carbon_worlds.WORLD_KINDS)
def carbon_world(
    request: pytest.FixtureRequest, local_server: LocalServer, shared_data: Path, tmp_path: Path
) -> Iterator[CarbonWorld]:
    yield carbon_worlds.make_world(request.param, local_server, shared_data, tmp_path)


def _noun(world: World) -> str:
    return "price feed" if isinstance(world, PriceWorld) else "carbon feed"


# ---------------------------------------------------------------------------------------- both measures


def test_fetch_gives_the_value_in_force_now_as_published(world: World) -> None:
    series: Any = world.feed.fetch(NOW)
    assert series.feed == world.feed.name
    assert series.fetched_at == NOW
    assert not series.stale
    current = series.at(NOW)
    assert current is not None
    if isinstance(world, PriceWorld):
        assert current.price == PRICE_NOW
        assert (current.currency, current.unit) == ("EUR", EnergyUnit.MWH)
    else:
        assert current.g_per_kwh == pytest.approx(world.expected_now, abs=1e-9)
        assert current.basis is world.basis
        assert all(i.basis is world.basis for i in series.intervals)


def test_intervals_are_utc_sorted_and_never_overlap(world: World) -> None:
    intervals: Any = world.feed.fetch(NOW).intervals
    assert intervals
    for interval in intervals:
        assert interval.start.utcoffset() == timedelta(0)
        assert interval.start < interval.end
        if isinstance(world, CarbonWorld):
            assert 0 <= interval.g_per_kwh < 3000
    for earlier, later in itertools.pairwise(intervals):
        assert earlier.end <= later.start


def test_the_series_is_a_function_of_now_not_of_the_wall_clock(world: World) -> None:
    # NOW is in 2024; a feed reading the wall clock would fetch or generate another window.
    first: Any = world.feed.fetch(NOW)
    second: Any = world.feed.fetch(NOW)
    if isinstance(world, PriceWorld):
        assert first == second
    assert first.intervals == second.intervals
    assert first.start <= NOW < first.end


def test_a_nan_value_upstream_is_refused_naming_feed_and_field(world: World) -> None:
    if world.corrupt is None:
        pytest.skip(f"{world.kind}: the value comes from the validated spec, it cannot be NaN")
    world.corrupt()
    error = PriceDataError if isinstance(world, PriceWorld) else CarbonDataError
    with pytest.raises(error) as caught:
        world.feed.fetch(NOW)
    assert caught.value.feed == world.feed.name
    assert caught.value.field == world.corrupt_field
    assert "finite" in caught.value.detail or "nan" in caught.value.detail.lower()
    assert str(caught.value).startswith(f"{_noun(world)} {world.feed.name!r}: ")


def test_a_failing_upstream_raises_the_measures_feed_error_naming_the_feed(world: World) -> None:
    if world.break_ is None:
        pytest.skip(f"{world.kind}: computed locally, nothing upstream to fail")
    world.break_()
    error = PriceFeedError if isinstance(world, PriceWorld) else CarbonFeedError
    with pytest.raises(error) as caught:
        world.feed.fetch(NOW)
    assert caught.value.feed == world.feed.name
    assert str(caught.value).startswith(f"{_noun(world)} {world.feed.name!r}: ")


# ---------------------------------------------------------------------------------------- prices only


def test_converts_to_usd_per_kwh_with_the_configured_fx(price_world: PriceWorld) -> None:
    points = to_usd_per_kwh(price_world.feed.fetch(NOW), fx_to_usd=1.1)
    current = [p for p in points if p.start <= NOW][-1]
    assert current.usd_per_kwh == pytest.approx(PRICE_NOW / 1000 * 1.1)  # 0.066616 USD/kWh


# ---------------------------------------------------------------------------------------- carbon only


def test_a_negative_intensity_upstream_is_refused(carbon_world: CarbonWorld) -> None:
    if carbon_world.negative is None:
        pytest.skip(f"{carbon_world.kind}: the spec refuses a negative intensity at admission")
    carbon_world.negative()
    with pytest.raises(CarbonDataError) as caught:
        carbon_world.feed.fetch(NOW)
    assert "negative intensity" in caught.value.detail
    assert caught.value.field.endswith(".gPerKwh")


def test_forecasts_are_marked_as_forecasts(carbon_world: CarbonWorld) -> None:
    series = carbon_world.feed.fetch(NOW)
    later = [i for i in series.intervals if i.start > NOW + timedelta(hours=1)]
    if carbon_world.kind in ("electricityMaps", "watttime", "gbCarbonIntensity", "gbCarbonIntensityRegional"):
        assert later and all(i.kind is PriceKind.FORECAST for i in later)
    past = [i for i in series.intervals if i.end <= NOW]
    assert all(i.kind is PriceKind.ACTUAL for i in past)
