"""Carbon in the replay: each market's recorded intensity, kgCO2 per policy, and the carbon-price sweep.

- Intensities come from Electricity Maps' hourly 2024 history files (shared/data/carbon-2024,
  `<MARKET>_carbon_2024_hourly.csv`), read by the operator's own csvReplay parser
  (signals.carbon_feeds.read_carbon_csv), direct or life-cycle. A market without a file has no
  intensity: the policies' totals then carry `co2_kg: null` and the markets are named.
- kgCO2 of a policy = sum over minutes and markets of its facility energy (the accounting's own
  kWh, IT x PUE: simulation.engine.account) x the market's intensity in that hour / 1000.
- The sweep replays the gridshift policy with an internal carbon price (the planner's own carbon
  cost: planner.problem), sees the recorded intensities of the hours its prices are known for
  (a perfect forecast, like the day-ahead prices), and accounts each run at real prices: points
  of (USD, kgCO2), the cost-vs-carbon frontier. The other policies do not look at carbon, so one
  run of each is the reference.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from gridshift.api.carbon import CarbonBasis
from gridshift.arrays import FloatArray
from gridshift.planner.cost import per_million_tokens
from gridshift.planner.snapshot import CarbonHorizon, CarbonIntensity, Snapshot
from gridshift.signals.carbon import CarbonFeedError
from gridshift.signals.carbon_feeds import CarbonRecording, read_carbon_csv
from gridshift.simulation.data import (
    _MAX_GAP_HOURS,
    SimulationInputError,
    _forward_fill,
    _read_text,
    hourly_means,
    refuse_long_gap,
)
from gridshift.simulation.engine import FleetView, account, cost_rates, request_levels, simulate
from gridshift.simulation.policies import GridshiftPolicy
from gridshift.simulation.replay import Replay
from gridshift.simulation.runner import PolicyResult, ReplayResult
from gridshift.simulation.settings import Scenario

CARBON_FILE = "{market}_carbon_2024_hourly.csv"


def default_carbon_dir() -> Path:
    """shared/data/carbon-2024 next to the repository (GRIDSHIFT_SHARED_DATA overrides the data root)."""
    root = os.environ.get("GRIDSHIFT_SHARED_DATA")
    base = Path(root) if root else Path(__file__).resolve().parents[3].parent / "shared" / "data"
    return base / "carbon-2024"


@dataclass(frozen=True)
class ReplayCarbon:
    """Hourly intensity (gCO2eq/kWh) of each market that has a recording, aligned with the replay's
    price arrays (from its first hour, as far as its prices look ahead)."""

    basis: CarbonBasis
    source: str
    g_per_kwh: Mapping[str, FloatArray]
    missing: tuple[str, ...]
    """Markets of the replay without a recording (or, see `uncovered`, without one of the replayed days)."""
    uncovered: Mapping[str, str] = field(default_factory=dict)
    """Markets of `missing` whose recording does not reach the replay's days, each with the days it covers."""

    def per_minute(self, replay: Replay) -> FloatArray | None:
        """Intensity of each market in each minute, shape (minutes, markets); None if a market has none."""
        if self.missing:
            return None
        hourly = np.stack([self.g_per_kwh[m.name][: replay.hours] for m in replay.markets], axis=1)
        per_minute: FloatArray = np.repeat(hourly, 60, axis=0)[: replay.minutes]
        return per_minute


def load_replay_carbon(
    replay: Replay,
    directory: Path | None = None,
    basis: CarbonBasis = CarbonBasis.LIFECYCLE,
    *,
    outside_unknown: bool = False,
) -> ReplayCarbon:
    """The recorded intensities of the replay's markets; SimulationInputError for an unreadable file. With
    `outside_unknown`, a recording that does not span the replay's days leaves its market's intensity unknown
    (in `missing` and `uncovered`) instead of being refused: the default recordings are of 2024, and a replay
    of other prices did not ask for carbon (found in review: a 2023 price file was refused over them)."""
    folder = directory or default_carbon_dir()
    found: dict[str, FloatArray] = {}
    missing: list[str] = []
    uncovered: dict[str, str] = {}
    for market in replay.markets:
        path = folder / CARBON_FILE.format(market=market.name)
        if not path.is_file():
            missing.append(market.name)
            continue
        try:
            # Times without an offset only where the time column says UTC (Electricity Maps' "Datetime (UTC)"), as
            # the operator's csvReplay reads them: found in review, a file in local time was read as UTC.
            recording = read_carbon_csv(io.StringIO(_read_text(path)), feed=path.name, basis=basis, naive_timezone=None)
        except CarbonFeedError as error:
            raise SimulationInputError(str(error)) from error
        try:
            found[market.name] = _intensities(recording, replay, len(market.usd_per_kwh), str(path))
        except SimulationInputError:
            # Only a replay reaching outside the recording: a gap within it is a defect of the file, refused,
            # also where the replay reaches outside too (found in regression review: it was said not to cover).
            if not (outside_unknown and _outside(recording, replay)):
                raise
            _refuse_gap_within(recording, replay, str(path))
            missing.append(market.name)
            uncovered[market.name] = recording.span()
    return ReplayCarbon(basis, str(folder), found, tuple(missing), uncovered)


def _outside(recording: CarbonRecording, replay: Replay) -> bool:
    """Whether the replay's hours begin before the recording's first row or end after its last (a recording
    without a row is a defect of its file, not of other days)."""
    end = replay.start + timedelta(hours=replay.hours)
    return len(recording) > 0 and (recording.first_start() > replay.start or recording.last_end() < end)


def _refuse_gap_within(recording: CarbonRecording, replay: Replay, path: str) -> None:
    """SimulationInputError where the replay's hours the recording spans (its first row to its last) fail the
    checks of a replay within it (`_intensities`): a run of missing hours longer than carried over, counted
    from the gap's first hour, or none at or before their first hour."""
    start = max(replay.start, recording.first_start())
    end = min(replay.start + timedelta(hours=replay.hours), recording.last_end())
    minutes = int((end - start).total_seconds() // 60)
    if minutes >= 60:
        within = replace(replay, start=start, minutes=minutes)
        _intensities(recording, within, within.hours, path)


def _intensities(recording: CarbonRecording, replay: Replay, hours: int, path: str) -> FloatArray:
    """A market's hourly intensities over the replay and its look-ahead (`hours` from the replay's start): a
    missing hour carries the one before, as prices do, at most _MAX_GAP_HOURS in a row counted from the gap's
    first hour (before the replay too); past the recording's last row (the recordings stop at the end of 2024)
    the look-ahead carries the last intensity. Found in review: only the replay's own hours were read, so a
    missing first hour was refused with an intensity just before it, and a gap across the replay's end was
    counted only to the end."""
    lead = _MAX_GAP_HOURS + 1  # hours read before the replay: what a gap at its start is carried from
    begin = replay.start - timedelta(hours=lead)
    window = recording.window(begin, replay.start + timedelta(hours=hours))
    values = hourly_means(((i.start, i.end, i.g_per_kwh) for i in window), begin, lead + hours)
    if np.isnan(values[lead : lead + replay.hours]).all():
        raise SimulationInputError(
            f"{path}: no intensity from {replay.start:%Y-%m-%d %H:%M}Z up to "
            f"{replay.start + timedelta(hours=replay.hours):%Y-%m-%d %H:%M}Z (the recording covers {recording.span()})"
        )
    recorded = math.ceil((recording.rows_end - begin.timestamp()) / 3600)
    end = max(min(recorded, lead + hours), lead + replay.hours)  # through the look-ahead the recording reaches
    refuse_long_gap(values, begin, lead, end, path, "intensity")
    filled = _forward_fill(values)[lead:]
    if np.isnan(filled[: replay.hours]).any():  # a gap at the start: nothing before it to carry over
        known = int(np.argmax(~np.isnan(values[lead:])))
        raise SimulationInputError(
            f"{path}: no intensity at or before {replay.start:%Y-%m-%d %H:%M}Z; the first within the replay is "
            f"at {replay.start + timedelta(hours=known):%Y-%m-%d %H:%M}Z"
        )
    return filled


def co2_kg(replay: Replay, policy: PolicyResult, carbon: ReplayCarbon) -> float | None:
    """The policy's emissions, kgCO2eq; None without per-minute energy or a market without intensity."""
    intensity = carbon.per_minute(replay)
    if intensity is None or policy.energy_kwh_by_minute is None:
        return None
    return float((policy.energy_kwh_by_minute * intensity).sum() / 1000.0)


def _partial_co2(replay: Replay, energy: FloatArray, carbon: ReplayCarbon) -> tuple[float, float]:
    """(kgCO2 in the markets with a recording, kWh used in those without): what is known when not all is."""
    kg = unknown = 0.0
    for index, market in enumerate(replay.markets):
        hourly = carbon.g_per_kwh.get(market.name)
        if hourly is None:
            unknown += float(energy[:, index].sum())
            continue
        per_minute = np.repeat(hourly[: replay.hours], 60)[: replay.minutes]
        kg += float((energy[:, index] * per_minute).sum() / 1000.0)
    return kg, unknown


def annotate(document: dict[str, Any], result: ReplayResult, carbon: ReplayCarbon) -> dict[str, Any]:
    """Add `co2_kg` and `g_co2_per_mtok` to every policy of a replay's JSON, and what they rest on."""
    replay = result.replay
    for scenario, scenario_result in result.scenarios.items():
        policies = document["scenarios"][scenario.value]["policies"]
        for name, policy in scenario_result.policies.items():
            kg = co2_kg(replay, policy, carbon)
            policies[name]["co2_kg"] = None if kg is None else round(kg, 3)
            per_mtok = None if kg is None or policy.served_mtok <= 0 else kg * 1000.0 / policy.served_mtok
            policies[name]["g_co2_per_mtok"] = None if per_mtok is None else round(per_mtok, 3)
            if kg is None and policy.energy_kwh_by_minute is not None and carbon.g_per_kwh:
                partial, unknown_kwh = _partial_co2(replay, policy.energy_kwh_by_minute, carbon)
                policies[name]["co2_kg_markets_with_data"] = round(partial, 3)
                policies[name]["energy_kwh_without_carbon_data"] = round(unknown_kwh, 3)
    first = next(iter(result.scenarios))
    document["policies"] = document["scenarios"][first.value]["policies"]
    document["carbon"] = {
        "basis": carbon.basis.value,
        "source": "Electricity Maps 2024 hourly history (via HewlettPackard/green-dcc), " + carbon.source,
        "markets_without_data": list(carbon.missing),
        # Why each is without: a market can lack a recording, or have one of other days than the replay's.
        "why_without_data": {
            m: f"the recording covers {carbon.uncovered[m]}, not the replayed days"
            if m in carbon.uncovered
            else "no recording"
            for m in carbon.missing
        },
    }
    return document


# ---------------------------------------------------------------------------------------- the sweep


class CarbonPricedGridshiftPolicy(GridshiftPolicy):
    """The gridshift policy planning with an internal carbon price and the markets' intensities."""

    def __init__(self, replay: Replay, scenario: Scenario, carbon: ReplayCarbon, usd_per_tonne: float) -> None:
        super().__init__(replay, scenario)
        if carbon.missing:
            raise SimulationInputError(
                f"--carbon-price: markets {', '.join(carbon.missing)} have no carbon recording; "
                "choose --markets among those with one"
            )
        self.carbon = carbon
        self.usd_per_tonne = usd_per_tonne
        self.specs = tuple(replace(spec, carbon_price_usd_per_tonne=usd_per_tonne) for spec in self.specs)

    def snapshot(self, minute: int, fleet: FleetView | None) -> Snapshot:
        base = super().snapshot(minute, fleet)
        replay = self.replay
        hour = minute // 60
        hour_start = replay.start + timedelta(hours=hour)
        horizon = self.known_hours(minute)
        carbon = {}
        for market in replay.markets:
            values = self.carbon.g_per_kwh[market.name][hour : hour + horizon]
            carbon[market.cluster] = CarbonHorizon(
                tuple(
                    CarbonIntensity(
                        hour_start + timedelta(hours=offset), hour_start + timedelta(hours=offset + 1), float(value)
                    )
                    for offset, value in enumerate(values)
                    if not math.isnan(value)
                )
            )
        return replace(base, carbon=carbon)


@dataclass(frozen=True)
class FrontierPoint:
    """One replay of a policy: what it cost (real prices) and emitted."""

    policy: str
    usd_per_tonne: float | None
    """The carbon price gridshift planned with; None for the policies that ignore carbon."""
    cost_usd: float
    co2_kg: float
    energy_kwh: float
    usd_per_mtok: float | None
    g_co2_per_mtok: float | None
    slo_ok_minutes_pct: float
    migrations: float | None
    """None for the hindsight bound, which has no migrations to count (its policy row says null too; found in
    review: the frontier said 0.0, as if the bound made no moves)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "carbon_price_usd_per_tonne": self.usd_per_tonne,
            "cost_usd": round(self.cost_usd, 4),
            "co2_kg": round(self.co2_kg, 3),
            "energy_kwh": round(self.energy_kwh, 3),
            "usd_per_mtok": None if self.usd_per_mtok is None else round(self.usd_per_mtok, 6),
            "g_co2_per_mtok": None if self.g_co2_per_mtok is None else round(self.g_co2_per_mtok, 3),
            "slo_ok_minutes_pct": round(self.slo_ok_minutes_pct, 3),
            "migrations": self.migrations,
        }


def sweep(
    replay: Replay,
    scenario: Scenario,
    carbon: ReplayCarbon,
    prices: Sequence[float],
    references: Mapping[str, PolicyResult],
    progress: Callable[[str, int], None] | None = None,
) -> list[FrontierPoint]:
    """Gridshift replayed at each carbon price, plus the reference policies' single points."""
    intensity = carbon.per_minute(replay)
    if intensity is None:
        raise SimulationInputError(f"--carbon-price: no carbon recording for {', '.join(carbon.missing)}")
    rates = cost_rates(replay, scenario)
    points = []
    for name, policy in references.items():
        kg = co2_kg(replay, policy, carbon)
        assert kg is not None
        points.append(_point(name, None, policy.cost_usd, kg, policy.energy_kwh, policy.served_mtok, policy))
    schedules = []
    for price in prices:
        policy_run = CarbonPricedGridshiftPolicy(replay, scenario, carbon, price)
        label = f"gridshift at {price:g} USD/t ({scenario.value})"
        hook = None if progress is None else (lambda advance, label=label: progress(label, advance))
        schedules.append(simulate(replay, policy_run, hook, judge=False))
    # Judged together: the sweep's schedules share most (minute, replica count) pairs (engine.request_levels).
    verdicts = request_levels(replay, [s.ready.sum(axis=2).astype(np.int64) for s in schedules])
    for price, unjudged, verdict in zip(prices, schedules, verdicts, strict=True):
        schedule = replace(unjudged, latency_ok=verdict)
        totals = account(replay, schedule, scenario, rates)
        assert totals.energy_kwh_by_minute is not None
        kg = float((totals.energy_kwh_by_minute * intensity).sum() / 1000.0)
        points.append(
            FrontierPoint(
                policy="gridshift",
                usd_per_tonne=price,
                cost_usd=totals.cost_usd,
                co2_kg=kg,
                energy_kwh=totals.energy_kwh,
                usd_per_mtok=totals.usd_per_mtok,
                g_co2_per_mtok=per_million_tokens(kg * 1000.0, totals.served_tokens),
                slo_ok_minutes_pct=totals.slo_ok_pct,
                migrations=float(schedule.migrations),
            )
        )
    return points


def _point(
    name: str, price: float | None, cost: float, kg: float, kwh: float, mtok: float, policy: PolicyResult
) -> FrontierPoint:
    return FrontierPoint(
        policy=name,
        usd_per_tonne=price,
        cost_usd=cost,
        co2_kg=kg,
        energy_kwh=kwh,
        usd_per_mtok=policy.usd_per_mtok,
        g_co2_per_mtok=None if mtok <= 0 else kg * 1000.0 / mtok,
        slo_ok_minutes_pct=policy.slo_ok_minutes_pct,
        migrations=policy.migrations,
    )


def frontier_json(scenario: Scenario, carbon: ReplayCarbon, points: Sequence[FrontierPoint]) -> dict[str, Any]:
    priced = sorted((p for p in points if p.usd_per_tonne is not None), key=lambda p: p.usd_per_tonne or 0.0)
    summary = None
    if priced:
        low, high = priced[0], priced[-1]
        summary = {
            "from_usd_per_tonne": low.usd_per_tonne,
            "to_usd_per_tonne": high.usd_per_tonne,
            # As the scoreboard's ratios: none unless the base cost is positive (below zero it read backwards).
            "cost_change_pct": None if low.cost_usd <= 0 else round(100.0 * (high.cost_usd / low.cost_usd - 1), 3),
            "co2_change_pct": None if low.co2_kg == 0 else round(100.0 * (high.co2_kg / low.co2_kg - 1), 3),
            "implied_usd_per_tonne_avoided": (
                None
                if high.co2_kg >= low.co2_kg
                else round((high.cost_usd - low.cost_usd) / ((low.co2_kg - high.co2_kg) / 1000.0), 2)
            ),
        }
    return {
        "scenario": scenario.value,
        "basis": carbon.basis.value,
        "points": [p.to_json() for p in points],
        "summary": summary,
    }


def write_frontier_plot(points: Sequence[FrontierPoint], path: Path, title: str) -> None:
    """Left: cost against emissions of every policy (gridshift's points joined in carbon-price order).
    Right: gridshift alone, its cost above the 0 USD/t run against its emissions (the trade it makes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (overview, zoom) = plt.subplots(1, 2, figsize=(13, 5.5))
    priced = sorted((p for p in points if p.usd_per_tonne is not None), key=lambda p: p.usd_per_tonne or 0.0)
    markers = {"static": ("s", "tab:gray"), "reactive": ("^", "tab:blue"), "greedy": ("D", "tab:orange")}
    markers["hindsight"] = ("*", "black")
    overview.plot([p.co2_kg for p in priced], [p.cost_usd for p in priced], "-o", color="tab:green", label="gridshift")
    for p in points:
        if p.usd_per_tonne is None:
            marker, colour = markers.get(p.policy, ("x", "tab:purple"))
            overview.plot([p.co2_kg], [p.cost_usd], marker, color=colour, label=f"{p.policy} (ignores carbon)", ms=8)
    overview.set_xlabel("emissions, kgCO2eq")
    overview.set_ylabel("cost, USD (real prices)")
    # The run's description spans the figure: as the left panel's title it ran into the right one's.
    figure.suptitle(title, x=0.01, ha="left", fontsize=9)
    overview.set_title("every policy", loc="left", fontsize=9)
    overview.grid(alpha=0.3)
    overview.legend(fontsize=8)
    if priced:
        base = priced[0].cost_usd
        zoom.plot([p.co2_kg for p in priced], [p.cost_usd - base for p in priced], "-o", color="tab:green")
        for index, p in enumerate(priced):
            offset = (6, 6) if index % 2 == 0 else (6, -12)
            zoom.annotate(
                f"{p.usd_per_tonne:g} USD/t", (p.co2_kg, p.cost_usd - base), textcoords="offset points", xytext=offset
            )
        zoom.set_xlabel("emissions, kgCO2eq")
        zoom.set_ylabel(f"cost above gridshift at {priced[0].usd_per_tonne:g} USD/t, USD")
        zoom.set_title("gridshift: the carbon price's trade (cost-vs-carbon frontier)", loc="left", fontsize=9)
        zoom.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
