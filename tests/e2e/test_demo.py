"""`make demo`'s own logic, without clusters: the cost ledger (priced where replicas ran, at home, and
at the cheapest allowed region), moves told apart from scaling through a make-before-break
migration, the load curves, the clock's pacing, and output readable without a terminal.
`make demo` itself (8 min, real control planes) is not part of `make test`; it exits non-zero when
the week shows no move or no scaling."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from e2e import demo

MONDAY = datetime(2024, 5, 6, tzinfo=UTC)


def test_prices_are_the_markets_own_numbers_in_usd() -> None:
    prices = demo.Prices()
    # 2024-05-09 00:00 UTC: ERCOT's day-ahead spike, and France's night price (EUR converted).
    assert prices.usd_per_kwh("us-tx", datetime(2024, 5, 9, tzinfo=UTC)) == pytest.approx(2.22148)
    assert prices.usd_per_kwh("eu-fr", datetime(2024, 5, 9, 0, 30, tzinfo=UTC)) == pytest.approx(
        prices.book.prices["FR"][datetime(2024, 5, 9, tzinfo=UTC)] * demo.EUR_USD / 1000
    )


def test_the_ledger_prices_the_same_energy_where_it_ran_at_home_and_at_the_cheapest() -> None:
    prices = demo.Prices()
    ledger = demo.Ledger(prices)
    start = datetime(2024, 5, 8, 22, 30, tzinfo=UTC)  # across an hour boundary, into the ERCOT spike
    end = start + timedelta(hours=1)
    ledger.add(start, end, {"chat": {"eu-fr": 400.0}})
    chat = ledger.costs["chat"]
    halves = [(start, 0.5), (start + timedelta(minutes=30), 0.5)]
    kwh = 0.4 * demo.PUE
    assert chat.kwh == pytest.approx(kwh)
    assert chat.gridshift == pytest.approx(sum(kwh * h * prices.usd_per_kwh("eu-fr", t) for t, h in halves))
    assert chat.home == pytest.approx(sum(kwh * h * prices.usd_per_kwh("eu-de", t) for t, h in halves))
    cheapest = [min(prices.usd_per_kwh(r, t) for r in ("eu-de", "eu-fr", "us-tx")) for t, _ in halves]
    assert chat.best == pytest.approx(sum(kwh * 0.5 * price for price in cheapest))
    assert chat.best <= chat.gridshift <= chat.home
    assert ledger.costs["support-eu"].kwh == 0


def status(
    placements: dict[str, int], migration: list[dict[str, Any]] | None = None, rps: float = 3.0
) -> dict[str, Any]:
    return {
        "metadata": {"name": "chat"},
        "status": {
            "placements": [{"cluster": c, "desired": n, "ready": n} for c, n in placements.items()],
            "migration": migration or [],
            "observedSlo": {"requestsPerSecond": rps},
        },
    }


def step(index: int, action: str, cluster: str, replicas: int, state: str) -> dict[str, Any]:
    return {"index": index, "action": action, "cluster": cluster, "replicas": replicas, "state": state}


def test_a_make_before_break_migration_is_one_move_not_a_scale_up_and_down() -> None:
    watcher = demo.Watcher()
    now = MONDAY
    assert watcher.events(now, [status({"us-tx": 1})]) == [f"{demo.clock(now)}  chat         placed: us-tx x1"]
    steps = [
        step(0, "ScaleUp", "eu-fr", 1, "Done"),
        step(1, "WaitReady", "eu-fr", 1, "Running"),
        step(2, "ScaleDown", "us-tx", 0, "Pending"),
    ]
    during = watcher.events(now, [status({"us-tx": 1, "eu-fr": 1}, steps)])
    assert "MOVE us-tx -> eu-fr, make-before-break in 3 steps:" in during[0]
    assert [line.split("   ", 1)[1].strip() for line in during[1:]] == [
        "1. start replicas in eu-fr (1 there) [Done]",
        "2. wait until they are Ready in eu-fr [Running]",
    ]
    after = watcher.events(now, [status({"eu-fr": 1})])
    assert after == [f"{demo.clock(now)}  chat         MOVED us-tx -> eu-fr: now eu-fr x1"]
    assert len(watcher.moves) == 1 and not watcher.scalings


def test_scaling_with_load_is_told_with_the_measured_load() -> None:
    watcher = demo.Watcher()
    watcher.events(MONDAY, [status({"eu-fr": 1})])
    scale_up = [step(0, "ScaleUp", "eu-fr", 3, "Done"), step(1, "WaitReady", "eu-fr", 3, "Running")]
    assert watcher.events(MONDAY, [status({"eu-fr": 3}, scale_up)]) == []  # told once done, not step by step
    lines = watcher.events(MONDAY, [status({"eu-fr": 3}, rps=9.4)])
    assert lines == [
        f"{demo.clock(MONDAY)}  chat         SCALED UP 1 -> 3 replicas with the load (9.4 req/s measured): eu-fr x3"
    ]
    assert (
        watcher.events(MONDAY, [status({"eu-fr": 2})])[0].split("chat", 1)[1].strip().startswith("SCALED DOWN 3 -> 2")
    )
    assert len(watcher.scalings) == 2 and not watcher.moves


def test_price_spikes_are_told_once_when_published_and_only_within_the_demo() -> None:
    watcher = demo.Watcher()
    prices = demo.Prices()
    before = datetime(2024, 5, 7, 16, tzinfo=UTC)  # ERCOT publishes 8 May at noon Central (17:00 UTC)
    assert not [line for line in watcher.spikes(before, MONDAY + timedelta(days=7), prices) if "us-tx" in line]
    published = watcher.spikes(datetime(2024, 5, 7, 17, 30, tzinfo=UTC), MONDAY + timedelta(days=7), prices)
    assert any("us-tx day-ahead published: 2,221 USD/MWh" in line for line in published)
    assert not watcher.spikes(datetime(2024, 5, 7, 18, tzinfo=UTC), MONDAY + timedelta(days=7), prices)
    assert not demo.Watcher().spikes(datetime(2024, 5, 7, 17, 30, tzinfo=UTC), MONDAY + timedelta(days=2), prices)


def test_load_follows_the_day_and_the_launch_ramps_up_and_down() -> None:
    chat = next(w for w in demo.WORKLOADS if w.name == "chat")
    monday = [chat.rate(MONDAY + timedelta(hours=h)) for h in range(24)]
    assert max(monday) == pytest.approx(chat.mean_rps * (1 + chat.swing), rel=0.01)
    assert monday.index(max(monday)) == 13
    assert chat.surge is not None
    start, end, factor = chat.surge
    assert chat.surge_factor(start) == 1.0 and chat.surge_factor(end) == 1.0
    assert chat.surge_factor(start + timedelta(hours=1.5)) == pytest.approx(1 + (factor - 1) / 2)
    assert chat.surge_factor(start + timedelta(hours=6)) == factor


def test_the_clock_slows_while_the_fleet_trails_it_and_recovers(monkeypatch: pytest.MonkeyPatch) -> None:
    posted: list[float] = []
    monkeypatch.setattr(demo, "get_json", lambda url, body=None: posted.append(body["speed"]) if body else None)
    pace = demo.Pace(1440.0)
    world = {"control": "http://control"}
    lines = pace.adjust(world, {"speed": 1440, "lagSimSeconds": 3600, "fleetTime": "2024-05-06T10:00:00Z"})
    assert posted == [1008] and "clock slowed to 1008x" in lines[0]
    assert pace.adjust(world, {"speed": 1008, "lagSimSeconds": 900, "fleetTime": "2024-05-06T11:00:00Z"}) == []
    assert posted == [1008], "between the thresholds the speed holds"
    pace.adjust(world, {"speed": 1008, "lagSimSeconds": 60, "fleetTime": "2024-05-06T12:00:00Z"})
    assert posted[-1] == 1260
    pace.adjust(world, {"speed": 1260, "lagSimSeconds": 0, "fleetTime": "2024-05-06T12:00:00Z"})
    assert posted[-1] == 1440 and pace.slowest == 1008
    lagging = {"speed": 1440, "lagSimSeconds": 3600, "fleetTime": "2024-05-06T13:00:00Z"}
    pace.slowed_at -= demo.Pace.SLOW_DOWN_EVERY_S  # the last slow-down was long ago
    pace.adjust(world, lagging)
    assert pace.adjust(world, lagging | {"speed": 1008}) == [] and posted[-1] == 1008, "one slow-down at a time"


def test_plain_output_is_lines_without_escape_codes_or_frames() -> None:
    screen = demo.Screen(plain=True)
    buffer = io.StringIO()
    screen.console.file = buffer
    prices = demo.Prices()
    ledger = demo.Ledger(prices)
    ideps = [status({"eu-fr": 2})]
    with screen:
        for minutes in range(0, 24 * 60, 30):
            now = MONDAY + timedelta(minutes=minutes)
            screen.update(now, prices, ideps, ledger, [f"{demo.clock(now)}  chat   event"] if minutes == 90 else [])
    text = buffer.getvalue()
    assert "\x1b[" not in text
    lines = text.splitlines()
    assert len(lines) == 3, lines  # the event and one status line per half day, never a redrawn table
    assert re.match(r"Mon 05-06 00:00  status +USD/MWh eu-de [0-9]+ \| eu-fr [0-9]+ \| us-tx [0-9]+", lines[0])


def test_the_summary_keeps_one_line_per_deployment_off_a_terminal() -> None:
    screen = demo.Screen(plain=True)
    buffer = io.StringIO()
    screen.console.file = buffer
    ledger = demo.Ledger(demo.Prices())
    ledger.add(MONDAY, MONDAY + timedelta(days=1), {"chat": {"eu-fr": 400.0}, "assist-us": {"eu-fr": 350.0}})
    table, report = demo.summary(ledger, demo.Watcher(), 1, 0.0)
    screen.console.print(table)
    rows = [line for line in buffer.getvalue().splitlines() if "support-eu" in line or "assist-us" in line]
    assert len(rows) == 2, buffer.getvalue()  # one line each: never wrapped into 80 columns
    assert "USD" in rows[1] and "%" in rows[1]
    assert report["total"]["kwh"] == pytest.approx(0.75 * 24 * demo.PUE)


def test_a_price_driven_decision_is_told_once_with_its_saving_and_scaling_decisions_are_not() -> None:
    watcher = demo.Watcher()
    cheaper = {
        "time": "2024-05-08T17:04:00Z",
        "reason": "CheaperPlacement",
        "target": "eu-fr/NVIDIA-H100-80GB-HBM3 x1",
        "summary": "CheaperPlacement: eu-fr/NVIDIA-H100-80GB-HBM3 x1",
        "estimatedSavingUsdPerHour": 0.0165,
    }
    idep = status({"us-tx": 1}) | {"status": status({"us-tx": 1})["status"] | {"lastDecision": cheaper}}
    lines = watcher.events(MONDAY, [idep])
    assert (
        f"{demo.clock(MONDAY)}  chat         decides CheaperPlacement: eu-fr/NVIDIA-H100-80GB-HBM3 x1; "
        "saves 0.017 USD/h against keeping the current placement" in lines
    )
    assert not [line for line in watcher.events(MONDAY, [idep]) if "decides" in line], "told once"
    scale = cheaper | {"time": "2024-05-08T18:00:00Z", "reason": "ScaleUp", "summary": "ScaleUp: eu-fr x2"}
    idep["status"]["lastDecision"] = scale
    assert not [line for line in watcher.events(MONDAY, [idep]) if "decides" in line]


def test_a_move_seen_as_two_placements_is_one_move() -> None:
    """Up in us-tx, then down in eu-fr, with no migration steps seen between polls: a move, not two scalings."""
    watcher = demo.Watcher()
    watcher.events(MONDAY, [status({"eu-fr": 1})])
    watcher.events(MONDAY, [status({"eu-fr": 1, "us-tx": 1})])
    lines = watcher.events(MONDAY, [status({"us-tx": 1})])
    assert lines == [f"{demo.clock(MONDAY)}  chat         MOVED eu-fr -> us-tx: now us-tx x1"]
    assert len(watcher.moves) == 1 and not watcher.scalings
    # A scale-up within a region and back down stays two scalings.
    watcher.events(MONDAY, [status({"us-tx": 2})])
    watcher.events(MONDAY, [status({"us-tx": 1})])
    assert len(watcher.moves) == 1 and len(watcher.scalings) == 2
