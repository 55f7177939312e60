"""Carbon in the replay: kgCO2 from the accounting's own energy, the carbon-priced gridshift, the CLI."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gridshift.api.carbon import CarbonBasis
from gridshift.cli.main import build_parser
from gridshift.simulation.carbon import co2_kg, load_replay_carbon, sweep
from gridshift.simulation.engine import account, simulate
from gridshift.simulation.policies import StaticPolicy
from gridshift.simulation.runner import _policy_result
from gridshift.simulation.settings import Scenario
from tests.simulation.sim_replay import flat_replay, hourly_prices, setup

MINUTES = 6 * 60


def two_market_replay(ercot_usd_per_mwh: float = 20.0):  # type: ignore[no-untyped-def]
    # ERCOT cheap and dirty (~430 g/kWh life-cycle in March 2024), CAISO dearer and cleaner (~200).
    prices = [hourly_prices("US-TEX-ERCO", [ercot_usd_per_mwh] * 60), hourly_prices("US-CAL-CISO", [40.0] * 60)]
    return flat_replay([setup("a", 8.0, "US-CAL-CISO"), setup("b", 8.0, "US-CAL-CISO")], prices, minutes=MINUTES)


def test_emissions_are_the_accounted_energy_times_each_markets_recorded_intensity(shared_data: Path) -> None:
    replay = two_market_replay()
    carbon = load_replay_carbon(replay, shared_data / "carbon-2024", CarbonBasis.LIFECYCLE)
    assert carbon.missing == ()
    schedule = simulate(replay, StaticPolicy(replay))
    totals = account(replay, schedule, Scenario.RENTED)
    assert totals.energy_kwh_by_minute is not None
    # The per-market split is the accounting's energy, to rounding.
    assert totals.energy_kwh_by_minute.sum() == pytest.approx(totals.energy_kwh, rel=1e-12)
    policy = _policy_result(replay, "static", schedule, totals, None)
    kg = co2_kg(replay, policy, carbon)
    # Static keeps everything in CAISO: its kWh times CAISO's hourly life-cycle intensity.
    caiso = carbon.g_per_kwh["US-CAL-CISO"][: replay.hours]
    kwh_by_hour = totals.energy_kwh_by_minute[:, 1].reshape(replay.hours, 60).sum(axis=1)
    assert totals.energy_kwh_by_minute[:, 0].sum() == 0.0
    assert kg == pytest.approx(float((kwh_by_hour * caiso).sum() / 1000.0))
    assert 150 < float(np.mean(caiso)) < 300  # CAISO, March 2024, life-cycle
    direct = load_replay_carbon(replay, shared_data / "carbon-2024", CarbonBasis.DIRECT)
    assert (direct.g_per_kwh["US-CAL-CISO"] < carbon.g_per_kwh["US-CAL-CISO"]).all()


def test_a_recording_without_the_replays_first_hour_is_refused_naming_it(shared_data: Path, tmp_path: Path) -> None:
    # Nothing before the gap to carry over: the figures would be NaN (and --json invalid JSON).
    from gridshift.simulation.data import SimulationInputError

    prices = [hourly_prices("US-CAL-CISO", [40.0] * 60)]
    replay = flat_replay([setup("a", 8.0, "US-CAL-CISO")], prices, minutes=120)
    name = "US-CAL-CISO_carbon_2024_hourly.csv"
    lines = (shared_data / "carbon-2024" / name).read_text().splitlines()
    # The recording starts after the replay's first hour: nothing at or before it.
    (tmp_path / name).write_text("\n".join([lines[0], *(x for x in lines[1:] if x[:16] > "2024-03-04 00:00")]) + "\n")
    with pytest.raises(SimulationInputError, match=r"no intensity at or before 2024-03-04 00:00Z.*2024-03-04 01:00Z"):
        load_replay_carbon(replay, tmp_path)


def test_a_missing_first_hour_takes_the_intensity_before_it_and_a_gap_counts_across_the_replays_end(
    shared_data: Path, tmp_path: Path
) -> None:
    # Found in review: only the replay's own hours were read, so a missing first hour was refused though the
    # hour before it was recorded (prices carry it), and a gap across the replay's end was counted only up to
    # the end: the planner's whole look-ahead was one stale intensity.
    from gridshift.simulation.data import SimulationInputError

    prices = [hourly_prices("US-CAL-CISO", [40.0] * 60)]
    replay = flat_replay([setup("a", 8.0, "US-CAL-CISO")], prices, minutes=24 * 60)
    name = "US-CAL-CISO_carbon_2024_hourly.csv"
    lines = (shared_data / "carbon-2024" / name).read_text().splitlines()
    (tmp_path / name).write_text("\n".join(x for x in lines if not x.startswith("2024-03-04 00:00")) + "\n")
    before = next(x for x in lines if x.startswith("2024-03-03 23:00"))
    carried = load_replay_carbon(replay, tmp_path).g_per_kwh["US-CAL-CISO"][0]
    assert str(round(carried, 2)).rstrip("0").rstrip(".") in before
    # From the replay's hour 10 to past its look-ahead (60 hours from its start): 14 hours in the replay, 50 in all.
    gone = {f"2024-03-{d:02d} {h:02d}:00" for d in (4, 5, 6) for h in range(24)} - {
        f"2024-03-04 {h:02d}:00" for h in range(10)
    }
    (tmp_path / name).write_text("\n".join(x for x in lines if x[:16] not in gone) + "\n")
    with pytest.raises(SimulationInputError, match=rf"{name}: 50 hours without an intensity from 2024-03-04 10:00Z"):
        load_replay_carbon(replay, tmp_path)


def test_a_recording_with_more_than_two_days_missing_is_refused_naming_it(shared_data: Path, tmp_path: Path) -> None:
    # Prices refuse a gap over 48 hours; the carbon recordings carried one value over any gap (read-through).
    from gridshift.simulation.data import SimulationInputError

    prices = [hourly_prices("US-CAL-CISO", [40.0] * 80)]
    replay = flat_replay([setup("a", 8.0, "US-CAL-CISO")], prices, minutes=72 * 60)
    name = "US-CAL-CISO_carbon_2024_hourly.csv"
    lines = (shared_data / "carbon-2024" / name).read_text().splitlines()
    gone = {f"2024-03-{day:02d} {hour:02d}:00" for day in (4, 5, 6) for hour in range(24)}
    gone = {stamp for stamp in gone if "2024-03-04 02:00" <= stamp < "2024-03-06 03:00"}  # 49 hours

    def kept(lines: list[str]) -> list[str]:
        return [x for x in lines if x[:16] not in gone]

    (tmp_path / name).write_text("\n".join(kept(lines)) + "\n")
    with pytest.raises(SimulationInputError, match=rf"{name}: 49 hours without an intensity from 2024-03-04 02:00Z"):
        load_replay_carbon(replay, tmp_path)
    # Within the recording's days it is a defect of the file, refused even where other days are unknown.
    with pytest.raises(SimulationInputError, match=rf"{name}: 49 hours without an intensity"):
        load_replay_carbon(replay, tmp_path, outside_unknown=True)
    gone.remove("2024-03-06 02:00")  # 48 hours: carried over, as prices are
    (tmp_path / name).write_text("\n".join(kept(lines)) + "\n")
    assert load_replay_carbon(replay, tmp_path).g_per_kwh["US-CAL-CISO"][49] == pytest.approx(
        load_replay_carbon(replay, tmp_path).g_per_kwh["US-CAL-CISO"][1]
    )


def test_a_recording_in_local_time_is_refused_and_quarter_hours_are_averaged(tmp_path: Path) -> None:
    # Found in review: naive times were read as UTC whatever the header said (a file in Berlin time was read an
    # hour off), and quarter-hourly intensities were sampled, the last of each hour standing for all of it.
    from gridshift.simulation.data import SimulationInputError

    prices = [hourly_prices("US-CAL-CISO", [40.0] * 60)]
    replay = flat_replay([setup("a", 8.0, "US-CAL-CISO")], prices, minutes=120)
    name = "US-CAL-CISO_carbon_2024_hourly.csv"
    quarters = [f"2024-03-04 {h:02d}:{m:02d}:00,{100 * (m // 15 + 1)}" for h in range(24) for m in range(0, 60, 15)]
    quarters += [f"2024-03-{5 + h // 24:02d} {h % 24:02d}:00:00,250" for h in range(40)]
    (tmp_path / name).write_text("Datetime (Europe/Berlin),Carbon Intensity gCO2eq/kWh (LCA)\n" + "\n".join(quarters))
    with pytest.raises(
        SimulationInputError, match="carries no UTC offset and the time column's header does not say"
    ) as e:
        load_replay_carbon(replay, tmp_path)
    assert "--prices" not in str(e.value) and "prices-2024" not in str(e.value)  # the price files' hints (review)
    (tmp_path / name).write_text("Datetime (UTC),Carbon Intensity gCO2eq/kWh (LCA)\n" + "\n".join(quarters))
    hourly = load_replay_carbon(replay, tmp_path).g_per_kwh["US-CAL-CISO"]
    assert hourly[:3].tolist() == [250.0, 250.0, 250.0]  # (100 + 200 + 300 + 400) / 4, not 400


def test_a_market_without_a_recording_has_no_emissions_figure(shared_data: Path) -> None:
    prices = [hourly_prices("FR", [50.0] * 60), hourly_prices("US-CAL-CISO", [40.0] * 60)]
    replay = flat_replay([setup("a", 8.0, "US-CAL-CISO")], prices, minutes=120)
    carbon = load_replay_carbon(replay, shared_data / "carbon-2024")
    assert carbon.missing == ("FR",)
    assert carbon.per_minute(replay) is None


def test_a_carbon_price_moves_gridshift_to_the_cleaner_market(shared_data: Path) -> None:
    replay = two_market_replay()
    carbon = load_replay_carbon(replay, shared_data / "carbon-2024", CarbonBasis.LIFECYCLE)
    points = sweep(replay, Scenario.RENTED, carbon, [0.0, 300.0], {})
    free, priced = points
    # At 0 USD/t ERCOT's 20 USD/MWh wins; at 300 USD/t its ~230 g/kWh more cost ~69 USD/MWh more.
    assert priced.co2_kg < 0.8 * free.co2_kg
    assert priced.cost_usd > free.cost_usd
    assert priced.slo_ok_minutes_pct == pytest.approx(free.slo_ok_minutes_pct, abs=1.0)


def test_simulate_json_reports_co2_for_every_policy_and_the_frontier(shared_data: Path, tmp_path: Path) -> None:
    parser = build_parser()
    plot = tmp_path / "frontier.png"
    args = parser.parse_args(
        [
            "simulate",
            "--days",
            "0.125",
            "--deployments",
            "3",
            "--scenario",
            "rented",
            "--prices",
            str(shared_data / "prices-2024" / "prices_2024_utc_hourly_wide.csv"),
            "--markets",
            "US-CAL-CISO,US-TEX-ERCO",
            "--gpus-per-market",
            "48",
            "--carbon",
            str(shared_data / "carbon-2024"),
            "--carbon-price",
            "0,50,100,200,400",
            "--frontier-plot",
            str(plot),
            "--json",
            "--no-progress",
            "--jobs",
            "1",
        ]
    )
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert args.handler(args) == 0
    document = json.loads(buffer.getvalue())
    for name, policy in document["policies"].items():
        assert isinstance(policy["co2_kg"], float) and policy["co2_kg"] > 0, name
        assert policy["g_co2_per_mtok"] > 0
    assert document["carbon"]["basis"] == "lifecycle"
    frontier = document["carbon_frontier"]
    priced = [p for p in frontier["points"] if p["carbon_price_usd_per_tonne"] is not None]
    assert [p["carbon_price_usd_per_tonne"] for p in priced] == [0, 50, 100, 200, 400]
    assert priced[-1]["co2_kg"] <= priced[0]["co2_kg"]
    assert {p["policy"] for p in frontier["points"]} >= {"static", "reactive", "greedy", "hindsight", "gridshift"}
    # Found in review: the frontier said 0.0 migrations for the hindsight bound, which has none to count
    # (null in the policies table); the other policies' counts are theirs.
    for point in frontier["points"]:
        if point["carbon_price_usd_per_tonne"] is None:
            assert point["migrations"] == document["policies"][point["policy"]]["migrations"], point["policy"]
    assert document["policies"]["hindsight"]["migrations"] is None
    assert plot.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("flag", "message"),
    [("-5", "within 0..10000"), ("10,lots", "'lots' is not a number")],
)
def test_a_bad_carbon_price_is_a_usage_error(flag: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    from gridshift.cli.main import main

    assert main(["simulate", "--days", "0.1", "--carbon-price", flag]) == 2
    assert message in capsys.readouterr().err


def _carbon_json(shared_data: Path, *extra: str) -> dict[str, Any]:
    parser = build_parser()
    flags = ["--days", "0.05", "--deployments", "2", "--scenario", "rented", "--json", "--no-progress", "--jobs", "1"]
    args = parser.parse_args(["simulate", *flags, "--carbon", str(shared_data / "carbon-2024"), *extra])
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert args.handler(args) == 0
    document: dict[str, Any] = json.loads(buffer.getvalue())
    return document


def test_the_default_markets_all_have_recordings_so_every_policy_reports_co2(shared_data: Path) -> None:
    """Issue 19: the defaults are markets with a real price AND a real carbon recording (the old defaults had FR
    and ES, which shared/data/carbon-2024 lacks, so co2_kg was null for every policy)."""
    document = _carbon_json(shared_data)
    assert document["markets"] == ["DE-LU", "US-TEX-ERCO", "US-CAL-CISO", "US-MIDA-PJM", "US-NY-NYIS"]
    assert document["carbon"]["markets_without_data"] == []
    for policy in document["policies"].values():
        assert policy["co2_kg"] is not None and policy["co2_kg"] > 0
        assert policy["g_co2_per_mtok"] is not None and policy["g_co2_per_mtok"] > 0


def test_markets_without_recordings_give_null_co2_and_say_what_is_known(shared_data: Path) -> None:
    document = _carbon_json(shared_data, "--markets", "DE-LU,FR,ES")
    assert document["carbon"]["markets_without_data"] == ["FR", "ES"]
    for policy in document["policies"].values():
        assert policy["co2_kg"] is None and policy["g_co2_per_mtok"] is None
        assert policy["co2_kg_markets_with_data"] >= 0 and policy["energy_kwh_without_carbon_data"] >= 0


def test_the_frontiers_cost_change_is_null_from_a_cost_at_or_below_zero() -> None:
    # Found in review: an owned fleet at negative prices went from -10 to -5 USD (5 USD dearer) and read
    # "cost_change_pct: -50.0", a saving, beside a positive price per tonne avoided; null as the ratios are.
    from gridshift.simulation.carbon import FrontierPoint, ReplayCarbon, frontier_json

    def point(price: float, cost: float, co2: float) -> FrontierPoint:
        return FrontierPoint("gridshift", price, cost, co2, 1.0, None, None, 100.0, 0.0)

    carbon = ReplayCarbon(basis=CarbonBasis.LIFECYCLE, source="x", g_per_kwh={}, missing=())
    below = frontier_json(Scenario.OWNED, carbon, [point(0.0, -10.0, 100.0), point(200.0, -5.0, 60.0)])["summary"]
    assert below["cost_change_pct"] is None and below["co2_change_pct"] == -40.0
    above = frontier_json(Scenario.OWNED, carbon, [point(0.0, 10.0, 100.0), point(200.0, 15.0, 60.0)])["summary"]
    assert above["cost_change_pct"] == 50.0


def _prices_of_2023(tmp_path: Path) -> Path:
    path = tmp_path / "DE-LU_prices_2023.csv"
    hours = [f"2023-06-{1 + h // 24:02d}T{h % 24:02d}:00:00Z,{50 + h % 24}\n" for h in range(72)]
    path.write_text("datetime_utc,DE-LU_EUR_per_MWh\n" + "".join(hours))
    return path


def _simulate_2023(tmp_path: Path, *extra: str) -> list[str]:
    flags = ["--prices", str(_prices_of_2023(tmp_path)), "--markets", "DE-LU", "--start", "2023-06-01"]
    flags += ["--days", "0.05", "--deployments", "1", "--scenario", "owned", "--json", "--no-progress", "--jobs", "1"]
    return ["simulate", *flags, *extra]


def test_prices_of_days_the_default_carbon_recordings_lack_run_with_carbon_unknown(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found in review: a 2023 --prices file was refused ("no intensity between ...") over the default 2024
    # recordings, though carbon was not asked for; a market without a recording already ran with co2 unknown.
    from gridshift.cli.main import main

    monkeypatch.setenv("GRIDSHIFT_SHARED_DATA", str(shared_data))
    assert main(_simulate_2023(tmp_path)) == 0
    out, err = capsys.readouterr()
    document = json.loads(out)
    assert document["carbon"]["markets_without_data"] == ["DE-LU"]
    assert document["carbon"]["why_without_data"] == {
        "DE-LU": "the recording covers 2024-01-01..2025-01-01, not the replayed days"
    }
    for policy in document["policies"].values():
        assert policy["co2_kg"] is None and policy["g_co2_per_mtok"] is None
    notes = [line for line in err.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and "do not cover the replayed days (DE-LU 2024-01-01..2025-01-01)" in notes[0]


def test_a_carbon_folder_given_that_lacks_the_replayed_days_is_refused_naming_carbon(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gridshift.cli.main import main

    assert main(_simulate_2023(tmp_path, "--carbon", str(shared_data / "carbon-2024"))) == 2
    err = capsys.readouterr().err
    assert "error: --carbon: " in err and "DE-LU_carbon_2024_hourly.csv: no intensity from 2023-06-01 00:00Z" in err
    assert main(_simulate_2023(tmp_path, "--carbon-price", "0,100")) == 2
    err = capsys.readouterr().err
    assert "--carbon-price: markets DE-LU have no carbon recording of the replayed days" in err


def test_a_gap_within_a_default_recording_is_refused_also_where_the_replay_reaches_past_it(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found in regression review: a replay reaching past the recording's end took a 4-day gap inside it for
    # "the recording covers 2024-01-01..2025-01-01, not the replayed days" and ran with carbon unknown.
    from gridshift.cli.main import main

    recorded = (shared_data / "carbon-2024" / "DE-LU_carbon_2024_hourly.csv").read_text().splitlines()
    holed = [r for r in recorded if not r.startswith(("2024-12-24", "2024-12-25", "2024-12-26", "2024-12-27"))]
    (tmp_path / "carbon-2024").mkdir()
    (tmp_path / "carbon-2024" / "DE-LU_carbon_2024_hourly.csv").write_text("\n".join(holed) + "\n")
    prices = tmp_path / "DE-LU_prices.csv"
    hours = [
        f"{datetime(2024, 12, 15, tzinfo=UTC) + timedelta(hours=h):%Y-%m-%dT%H:%M:%SZ},{50 + h % 24}\n"
        for h in range(600)
    ]
    prices.write_text("datetime_utc,DE-LU_EUR_per_MWh\n" + "".join(hours))
    monkeypatch.setenv("GRIDSHIFT_SHARED_DATA", str(tmp_path))
    flags = ["simulate", "--prices", str(prices), "--markets", "DE-LU", "--start", "2024-12-27T12:00", "--days"]
    rest = ["--deployments", "1", "--scenario", "owned", "--json", "--no-progress", "--jobs", "1"]
    assert main([*flags, "6", *rest]) == 2  # reaches past the recording's end (2025-01-01)
    assert "DE-LU_carbon_2024_hourly.csv: no intensity at or before 2024-12-27 12:00Z" in capsys.readouterr().err
    # Past the end alone (no gap before it): carbon unknown, as for any replay of days not recorded, once more
    # than 48 hours are past it (fewer are carried from the last row, as a gap within is).
    monkeypatch.setenv("GRIDSHIFT_SHARED_DATA", str(shared_data))
    assert main([*flags, "7", *rest]) == 0
    assert json.loads(capsys.readouterr().out)["carbon"]["markets_without_data"] == ["DE-LU"]
