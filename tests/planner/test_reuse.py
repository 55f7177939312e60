"""planner.reuse.same_problem: when last cycle's plan is this cycle's plan.

The property that matters: whenever same_problem says two snapshots are the same problem, planning
either gives the same plan (checked on fleets small enough for the search to prove its plan optimal,
so that the plan is a function of the problem). And it must say "changed" for each thing the planner
reads: deployments' demand and placements, clusters, prices over any window in use, staleness, carbon.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from gridshift.planner import PlannerSettings, make_plan
from gridshift.planner.problem import MIN_WINDOW_HOURS
from gridshift.planner.reuse import same_problem, windows
from gridshift.planner.snapshot import CarbonHorizon, CarbonIntensity, EnergyPrice, Placement, PriceHorizon, Snapshot
from gridshift.planner.synthetic import random_snapshot, with_synthetic_carbon
from gridshift.profiles_catalog import default_performance_models

SETTINGS = PlannerSettings()


def fleet(seed: int, *, deployments: int = 8) -> Snapshot:
    return random_snapshot(default_performance_models(), deployments=deployments, clusters=3, gpu_types=1, seed=seed)


def flat(snapshot: Snapshot) -> Snapshot:
    """Every cluster's price horizon flattened to its first price, 10 days long: the same at any instant."""
    prices = {}
    for name, horizon in snapshot.prices.items():
        first = horizon.intervals[0]
        prices[name] = PriceHorizon((EnergyPrice(first.start, first.start + timedelta(days=10), first.usd_per_kwh),))
    return replace(snapshot, prices=prices)


def later(snapshot: Snapshot, **delta: float) -> Snapshot:
    return replace(snapshot, now=snapshot.now + timedelta(**delta))


def targets(snapshot: Snapshot) -> dict[str, dict[tuple[str, str], int]]:
    plan = make_plan(snapshot, SETTINGS)
    assert plan.proven_optimal, "the property is checked where the plan is a function of the problem"
    return plan.targets()


@pytest.mark.parametrize("seed", range(4))
def test_flat_prices_seconds_later_are_the_same_problem_and_give_the_same_plan(seed: int) -> None:
    before = flat(fleet(seed))
    after = later(before, seconds=90)
    assert same_problem(before, after, SETTINGS)
    assert targets(before) == targets(after)


@pytest.mark.parametrize("seed", range(4))
def test_hourly_prices_a_minute_later_are_another_problem(seed: int) -> None:
    # The window's mean slides over prices that differ hour to hour.
    before = fleet(seed)
    assert same_problem(before, before, SETTINGS)
    assert not same_problem(before, later(before, minutes=1), SETTINGS)


def test_an_hour_boundary_inside_a_window_is_a_change_even_when_the_price_now_is_the_same() -> None:
    before = flat(fleet(0))
    name = next(iter(before.prices))
    only = before.prices[name].intervals[0]
    window = max(windows(before, SETTINGS))
    # The price changes `window` hours after the old instant: still ahead of the old window's end, inside the new one.
    end = before.now + timedelta(hours=window, seconds=30)
    split = PriceHorizon(
        (
            EnergyPrice(only.start, end, only.usd_per_kwh),
            EnergyPrice(end, end + timedelta(days=10), only.usd_per_kwh * 3),
        )
    )
    before = replace(before, prices={**before.prices, name: split})
    assert same_problem(before, later(before, seconds=10), SETTINGS)
    assert not same_problem(before, later(before, seconds=60), SETTINGS)


def test_what_the_planner_reads_of_deployments_clusters_staleness_and_carbon_is_compared() -> None:
    before = flat(fleet(1))
    after = later(before, seconds=30)
    assert same_problem(before, after, SETTINGS)
    first = after.deployments[0]
    demand = replace(first.demand, requests_per_second=(first.demand.requests_per_second or 1.0) * 1.01)
    site = after.clusters[0]
    moved = () if first.placements else (Placement(site.name, site.offerings[0].gpu_type, 1, 1),)
    changed = [
        replace(after, deployments=(replace(first, demand=demand), *after.deployments[1:])),
        replace(after, deployments=(replace(first, placements=moved), *after.deployments[1:])),
        replace(after, deployments=after.deployments[1:]),
        replace(after, clusters=(replace(after.clusters[0], pue=after.clusters[0].pue + 0.01), *after.clusters[1:])),
        replace(
            after,
            prices={**after.prices, after.clusters[0].name: replace(after.prices[after.clusters[0].name], stale=True)},
        ),
        replace(after, prices={k: v for k, v in after.prices.items() if k != after.clusters[0].name}),
        with_synthetic_carbon(after, 100.0, seed=1),
    ]
    for index, snapshot in enumerate(changed):
        assert not same_problem(before, snapshot, SETTINGS), index


def test_carbon_horizons_are_read_over_the_windows_of_deployments_that_price_carbon() -> None:
    base = with_synthetic_carbon(flat(fleet(2)), 100.0, seed=2)
    carbon = {
        name: CarbonHorizon((CarbonIntensity(h.intervals[0].start, h.intervals[0].start + timedelta(days=10), 300.0),))
        for name, h in base.carbon.items()
    }
    before = replace(base, carbon=carbon)
    assert same_problem(before, later(before, minutes=5), SETTINGS)
    assert targets(before) == targets(later(before, minutes=5))
    hourly = with_synthetic_carbon(flat(fleet(2)), 100.0, seed=2)
    assert not same_problem(hourly, later(hourly, minutes=5), SETTINGS)


def test_a_horizon_of_a_fraction_of_a_second_is_compared_over_the_planners_shortest_window() -> None:
    # Found in review: windows() had no floor where build_problem has one (problem.MIN_WINDOW_HOURS), so a
    # paybackHorizonHours of 1e-10 (admitted: any above 0) made a zero window here, and the price mean divided
    # by it ended the planning cycle of every tenant on the cycle after the first.
    base = fleet(3)
    first = base.deployments[0]
    tiny = replace(first, requirements=replace(first.requirements, payback_horizon_hours=1e-10))
    snapshot = replace(base, deployments=(tiny, *base.deployments[1:]))
    assert same_problem(snapshot, snapshot, SETTINGS)
    assert not same_problem(snapshot, later(snapshot, hours=2), SETTINGS)
    assert min(w for w in windows(snapshot, SETTINGS) if w > 0) == MIN_WINDOW_HOURS
