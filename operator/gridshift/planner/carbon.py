"""Reading a cluster's carbon horizon, and what carbon adds to one replica's cost and limits.

Intensities are read exactly like prices (planner.prices.step_at / step_mean: piecewise constant,
the last value carried forward over gaps and past the end). The carbon price uses the mean over
the deployment's window, like the electricity price, so a forecast of a cleaner night counts;
the limits (maxGramsPerKwh, maxGramsPerMillionTokens) hold *now*: they say where replicas may run
while the grid is as it is.

Fail-safe: where a carbon feed is stale (or answered nothing usable), no change is made on carbon
grounds, and its limits are not enforced on stale numbers (a stale feed never triggers a move). Only
the carbon terms are held (planner.problem._option): the replicas running there count as clean as the
deployment's cleanest site, a replica started there as dirty as its dirtiest (and pays the penalty of a
limit the last known figures break), so price-driven changes go on. Found in review: the whole cluster
was stale for deployments that use carbon, and a price spike there moved nothing. A cluster with no
carbon feed at all is assumed to emit `PlannerSettings.missing_carbon_g_per_kwh`, a dirty grid, so
that an unmeasured cluster never looks clean.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gridshift.planner.cost import grams_co2_per_hour, grams_per_million_tokens
from gridshift.planner.prices import step_at, step_mean
from gridshift.planner.snapshot import CarbonHorizon, Requirements


@dataclass(frozen=True)
class CarbonView:
    """What the planner uses of one carbon horizon for one window."""

    now_g_per_kwh: float
    window_mean_g_per_kwh: float
    measured: bool
    """False: the cluster has no carbon feed and the fallback intensity applies."""
    stale: bool
    """The feed is configured but gave nothing fresh: no change on carbon grounds there."""


def carbon_view(horizon: CarbonHorizon | None, now: datetime, hours: float, fallback_g_per_kwh: float) -> CarbonView:
    if horizon is None:
        return CarbonView(fallback_g_per_kwh, fallback_g_per_kwh, measured=False, stale=False)
    if not horizon.intervals:
        return CarbonView(fallback_g_per_kwh, fallback_g_per_kwh, measured=False, stale=True)
    now_value = step_at(horizon.intervals, lambda i: i.g_per_kwh, now)
    mean = step_mean(horizon.intervals, lambda i: i.g_per_kwh, now, hours)
    assert now_value is not None and mean is not None
    return CarbonView(now_value, mean, measured=True, stale=horizon.stale)


def limit_broken(
    required: Requirements,
    carbon: CarbonView,
    *,
    power_watts: float,
    pue: float,
    capacity_tokens_per_s: float,
) -> str | None:
    """Which carbon limit a replica here breaks now (power at SLO capacity), or None.

    Never on stale numbers: the fail-safe keeps what runs there instead (see the module docstring)."""
    if carbon.stale:
        return None
    if required.carbon_max_g_per_kwh is not None and carbon.now_g_per_kwh > required.carbon_max_g_per_kwh:
        return f"intensity {carbon.now_g_per_kwh:.0f} gCO2/kWh above maxGramsPerKwh {required.carbon_max_g_per_kwh:g}"
    budget = required.carbon_budget_g_per_mtok
    if budget is not None:
        per_mtok = grams_per_million_tokens(
            grams_co2_per_hour(power_watts, pue, carbon.now_g_per_kwh), capacity_tokens_per_s
        )
        if per_mtok is None or per_mtok > budget:
            shown = "unbounded" if per_mtok is None else f"{per_mtok:.0f}"
            return f"{shown} gCO2/Mtok at SLO capacity above maxGramsPerMillionTokens {budget:g}"
    return None
