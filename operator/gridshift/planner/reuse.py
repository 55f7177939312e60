"""When last cycle's plan is this cycle's plan: `same_problem(before, after, settings)`.

At 10,000 deployments a search takes seconds of CPU every cycle even when nothing changed. The
operator may hand last cycle's plan on instead, but only when the planner would be solving the very
same problem. What the planner reads of a Snapshot (planner.problem.build_problem) is:

- the deployments (requirements, placements, observed demand), the clusters and the profiles, as
  values: they must be equal;
- `now`, only through each cluster's price horizon and carbon horizon: the price in force now and
  the mean price over a window from now (`prices.view`), the same two of carbon intensity
  (`carbon.carbon_view`), and whether a horizon is stale or empty. The windows are each deployment's
  paybackHorizonHours capped at max_horizon_hours, at least a minute (problem.window_hours), and 0 (the
  price now).

So two snapshots make the same problem when the first group is equal, the same clusters have
horizons, and every horizon gives the same views at both instants for every window in use (and the
same staleness). A price horizon that slid by a few seconds but says the same price over every
window qualifies; one whose window now reaches a different price (or whose day-ahead interval just
began) does not. Equal problems need not give equal plans from a time-budgeted search (it may find
better ones given more time): the caller decides how often to search an unchanged problem again
(service.operator searches it once more, then reuses).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TypeVar

from gridshift.planner.carbon import carbon_view
from gridshift.planner.prices import view
from gridshift.planner.problem import window_hours
from gridshift.planner.settings import PlannerSettings
from gridshift.planner.snapshot import CarbonHorizon, PriceHorizon, Snapshot


def windows(snapshot: Snapshot, settings: PlannerSettings, *, carbon: bool = False) -> frozenset[float]:
    """The window lengths (hours) build_problem reads each horizon over, the price now (0) included."""
    return frozenset(
        {0.0}
        | {
            window_hours(d.requirements, settings)
            for d in snapshot.deployments
            if not carbon or d.requirements.uses_carbon
        }
    )


def same_problem(before: Snapshot, after: Snapshot, settings: PlannerSettings) -> bool:
    """True when planning `after` is planning `before` again (see the module docstring)."""
    if (before.deployments, before.clusters, before.profiles) != (after.deployments, after.clusters, after.profiles):
        return False
    prices = _same_readings(
        before.prices,
        after.prices,
        lambda h, now, hours: view(h, now, hours, settings.missing_price_usd_per_kwh),
        (before.now, after.now),
        windows(after, settings),
    )
    return prices and _same_readings(
        before.carbon,
        after.carbon,
        lambda h, now, hours: carbon_view(h, now, hours, settings.missing_carbon_g_per_kwh),
        (before.now, after.now),
        windows(after, settings, carbon=True),
    )


H = TypeVar("H", PriceHorizon, CarbonHorizon)


def _same_readings(
    before: Mapping[str, H],
    after: Mapping[str, H],
    read: Callable[[H, datetime, float], object],
    instants: tuple[datetime, datetime],
    hours: frozenset[float],
) -> bool:
    """The same clusters have horizons, each as stale and as empty, and reading the same over every window."""
    if set(before) != set(after):
        return False
    for name, old in before.items():
        new = after[name]
        if (old.stale, bool(old.intervals)) != (new.stale, bool(new.intervals)):
            return False
        if any(read(old, instants[0], h) != read(new, instants[1], h) for h in hours):
            return False
    return True
