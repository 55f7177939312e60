"""Simulation steps: a coarse step chosen for a fast clock (make demo: 10 s at 1,440x) is never
shortened while the simulation catches up, the default step still grows to 5 s to catch up, and a
world told not to catch up (make demo: its clock slows instead) keeps its step."""

from __future__ import annotations

import pytest
from e2e.world.kube import FakeRoutingReader, FakeWorldKube
from e2e.world.world import World, WorldSettings

from .conftest import fake_cluster


def world(**settings: float) -> World:
    clusters = {"eu-fr": fake_cluster("eu-fr")}
    kube = FakeWorldKube(clusters)
    return World(WorldSettings(**settings), readers=clusters, routing=FakeRoutingReader(), readiness=kube, power=kube)


def test_a_coarse_step_stays_coarse_while_catching_up() -> None:
    coarse = world(speed=1440, tick_sim_seconds=10)
    ticks = coarse.advance_to(1000.0)
    assert ticks <= 100, f"{ticks} steps for 1,000 s: steps shorter than the chosen 10 s"
    assert coarse.fleet.now_s == pytest.approx(1000.0, abs=20.0)


def test_the_default_step_grows_to_catch_up_and_no_further() -> None:
    default = world(speed=360)
    assert default.tick_s == 2.0
    ticks = default.advance_to(1000.0)
    assert 200 <= ticks <= 220, f"{ticks} steps for 1,000 s: 5 s steps while far behind, 2 s ones near the clock"


def test_a_world_that_does_not_catch_up_keeps_its_step() -> None:
    """Longer steps starve a full batch (a waiting request is admitted only at a step's start), so
    make demo slows its clock when the fleet trails instead of lengthening the steps."""
    steady = world(speed=1440, catch_up=False)
    assert steady.advance_to(1000.0) == 500


def test_counters_grow_by_the_real_time_each_step_took(monkeypatch: pytest.MonkeyPatch) -> None:
    """rate() reads the simulated rate even when the simulation trails or catches up with the clock."""
    import e2e.world.world as world_module

    clock = iter([100.0, 100.2, 100.2005, 150.0])
    monkeypatch.setattr(world_module.time, "perf_counter", lambda: next(clock))
    paced = world(speed=360)
    assert paced._counter_scale(2.0) == pytest.approx(1 / 360), "the first step: the clock's pace"
    assert paced._counter_scale(2.0) == pytest.approx(0.2 / 2.0), "trailing: 0.2 real s for 2 simulated s"
    assert paced._counter_scale(2.0) == pytest.approx(0.0005 / 2.0), "catching up: a burst of steps"
    assert paced._counter_scale(2.0) == pytest.approx(world_module.MAX_REAL_SECONDS_PER_TICK / 2.0)
