"""The CarbonFeed contract, run against every adapter and the fake alike, on recorded 2024 intensities."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from gridshift.signals.carbon import CarbonDataError, CarbonFeedError
from gridshift.signals.prices import PriceKind
from tests.signals.carbon_worlds import NOW, WORLD_KINDS, CarbonWorld, make_world
from tests.signals.conftest import LocalServer


@pytest.fixture(params=WORLD_KINDS)
def world(
    request: pytest.FixtureRequest, local_server: LocalServer, shared_data: Path, tmp_path: Path
) -> Iterator[CarbonWorld]:
    yield make_world(request.param, local_server, shared_data, tmp_path)


def test_fetch_gives_the_recorded_intensity_now_on_the_configured_basis(world: CarbonWorld) -> None:
    series = world.feed.fetch(NOW)
    assert series.feed == world.feed.name
    assert series.fetched_at == NOW
    assert not series.stale
    current = series.at(NOW)
    assert current is not None
    assert current.g_per_kwh == pytest.approx(world.expected_now, abs=1e-9)
    assert current.basis is world.basis
    assert all(i.basis is world.basis for i in series.intervals)


def test_intervals_are_utc_sorted_and_never_overlap(world: CarbonWorld) -> None:
    intervals = world.feed.fetch(NOW).intervals
    assert intervals
    for interval in intervals:
        assert interval.start.utcoffset() == timedelta(0)
        assert interval.start < interval.end
        assert 0 <= interval.g_per_kwh < 3000
    for earlier, later in itertools.pairwise(intervals):
        assert earlier.end <= later.start


def test_the_series_is_a_function_of_now_not_of_the_wall_clock(world: CarbonWorld) -> None:
    first, second = world.feed.fetch(NOW), world.feed.fetch(NOW)
    assert first.intervals == second.intervals
    assert first.start <= NOW < first.end


def test_a_nan_intensity_upstream_is_refused_naming_feed_and_field(world: CarbonWorld) -> None:
    if world.corrupt is None:
        pytest.skip(f"{world.kind}: the intensity comes from the validated spec, it cannot be NaN")
    world.corrupt()
    with pytest.raises(CarbonDataError) as caught:
        world.feed.fetch(NOW)
    assert caught.value.feed == world.feed.name
    assert caught.value.field == world.corrupt_field
    assert "finite" in caught.value.detail or "nan" in caught.value.detail.lower()
    assert str(caught.value).startswith(f"carbon feed {world.feed.name!r}: ")


def test_a_negative_intensity_upstream_is_refused(world: CarbonWorld) -> None:
    if world.negative is None:
        pytest.skip(f"{world.kind}: the spec refuses a negative intensity at admission")
    world.negative()
    with pytest.raises(CarbonDataError) as caught:
        world.feed.fetch(NOW)
    assert "negative intensity" in caught.value.detail
    assert caught.value.field.endswith(".gPerKwh")


def test_a_failing_upstream_raises_carbon_feed_error_naming_the_feed(world: CarbonWorld) -> None:
    if world.break_ is None:
        pytest.skip(f"{world.kind}: computed locally, nothing upstream to fail")
    world.break_()
    with pytest.raises(CarbonFeedError) as caught:
        world.feed.fetch(NOW)
    assert caught.value.feed == world.feed.name
    assert str(caught.value).startswith(f"carbon feed {world.feed.name!r}: ")


def test_forecasts_are_marked_as_forecasts(world: CarbonWorld) -> None:
    series = world.feed.fetch(NOW)
    later = [i for i in series.intervals if i.start > NOW + timedelta(hours=1)]
    if world.kind in ("electricityMaps", "watttime", "gbCarbonIntensity", "gbCarbonIntensityRegional"):
        assert later and all(i.kind is PriceKind.FORECAST for i in later)
    past = [i for i in series.intervals if i.end <= NOW]
    assert all(i.kind is PriceKind.ACTUAL for i in past)
