"""The PriceFeed contract, run against every adapter and the fake alike."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from gridshift.api.regional_cluster import EnergyUnit
from gridshift.signals.prices import PriceDataError, PriceFeedError, to_usd_per_kwh
from tests.signals.conftest import LocalServer
from tests.signals.price_worlds import NOW, PRICE_NOW, WORLD_KINDS, PriceWorld, make_world


@pytest.fixture(params=WORLD_KINDS)
def world(
    request: pytest.FixtureRequest, local_server: LocalServer, shared_data: Path, tmp_path: Path
) -> Iterator[PriceWorld]:
    yield make_world(request.param, local_server, shared_data, tmp_path)


def test_fetch_gives_the_price_in_force_now_as_published(world: PriceWorld) -> None:
    series = world.feed.fetch(NOW)
    assert series.feed == world.feed.name
    assert series.fetched_at == NOW
    assert not series.stale
    current = series.at(NOW)
    assert current is not None
    assert current.price == PRICE_NOW
    assert (current.currency, current.unit) == ("EUR", EnergyUnit.MWH)


def test_intervals_are_utc_sorted_and_never_overlap(world: PriceWorld) -> None:
    intervals = world.feed.fetch(NOW).intervals
    assert intervals
    for interval in intervals:
        assert interval.start.utcoffset() == timedelta(0)
        assert interval.start < interval.end
    for earlier, later in itertools.pairwise(intervals):
        assert earlier.end <= later.start


def test_the_series_is_a_function_of_now_not_of_the_wall_clock(world: PriceWorld) -> None:
    # NOW is in 2024; a feed reading the wall clock would fetch or generate another window.
    first, second = world.feed.fetch(NOW), world.feed.fetch(NOW)
    assert first == second
    assert first.start <= NOW < first.end


def test_converts_to_usd_per_kwh_with_the_configured_fx(world: PriceWorld) -> None:
    points = to_usd_per_kwh(world.feed.fetch(NOW), fx_to_usd=1.1)
    current = [p for p in points if p.start <= NOW][-1]
    assert current.usd_per_kwh == pytest.approx(PRICE_NOW / 1000 * 1.1)  # 0.066616 USD/kWh


def test_a_nan_price_upstream_is_refused_naming_feed_and_field(world: PriceWorld) -> None:
    if world.corrupt is None:
        pytest.skip(f"{world.kind}: the price comes from the validated spec, it cannot be NaN")
    world.corrupt()
    with pytest.raises(PriceDataError) as caught:
        world.feed.fetch(NOW)
    assert caught.value.feed == world.feed.name
    assert caught.value.field == world.corrupt_field
    assert "finite" in caught.value.detail or "nan" in caught.value.detail.lower()


def test_a_failing_upstream_raises_price_feed_error_naming_the_feed(world: PriceWorld) -> None:
    if world.break_ is None:
        pytest.skip(f"{world.kind}: computed locally, nothing upstream to fail")
    world.break_()
    with pytest.raises(PriceFeedError) as caught:
        world.feed.fetch(NOW)
    assert caught.value.feed == world.feed.name
    assert str(caught.value).startswith(f"price feed {world.feed.name!r}: ")
