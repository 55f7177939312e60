"""Hysteresis comes from the switching cost: moves happen only when they pay back in time."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

from gridshift.planner import Deployment, Placement, PlannerSettings, make_plan
from gridshift.planner.snapshot import EnergyPrice, PriceHorizon
from tests.planner.planner_world import H100, NOW, cluster, deployment, snapshot


def oscillating(mean: float, amplitude: float, phase_hours: float, start_hour: int, hours: int = 24) -> PriceHorizon:
    """Day-ahead prices from `start_hour` on: a 12-hour sine around `mean`."""
    intervals = []
    for h in range(hours):
        hour = start_hour + h
        price = mean + amplitude * math.sin(2 * math.pi * (hour + phase_hours) / 12)
        begin = NOW + timedelta(hours=hour)
        intervals.append(EnergyPrice(begin, begin + timedelta(hours=1), price))
    return PriceHorizon(tuple(intervals))


def replicas_moved_over_a_day(amplitude: float, payback_hours: float = 6.0) -> int:
    """Plan every hour for 24 h, feeding each plan's targets back as the placement, and count starts."""
    current: Deployment = deployment("chat", 20.0, placements=[("a", H100, 3)], payback_hours=payback_hours)
    started = 0
    for hour in range(24):
        world = snapshot(
            [current],
            [cluster("a"), cluster("b")],
            {"a": oscillating(0.10, amplitude, 0, hour), "b": oscillating(0.10, amplitude, 6, hour)},
        )
        world = replace(world, now=NOW + timedelta(hours=hour))
        plan = make_plan(world).for_deployment("ns/chat")
        started += sum(max(0, t.replicas - t.current_desired) for t in plan.targets)
        current = replace(
            current,
            placements=tuple(
                Placement(t.cluster, t.gpu_type, t.replicas, t.replicas) for t in plan.targets if t.replicas
            ),
        )
    return started


def test_small_oscillations_that_do_not_pay_back_cause_no_moves() -> None:
    # a and b swap being cheaper every 6 hours by up to 0.02 USD/kWh: ~0.01 USD/h per replica at
    # ~400 W, far below a 3-minute cold start of a 2 USD/h GPU (0.2 USD with the move penalty).
    assert replicas_moved_over_a_day(amplitude=0.01) == 0


def test_large_oscillations_that_pay_back_do_cause_moves() -> None:
    # Up to 1 USD/kWh apart: ~0.5 USD/h per replica, a cold start pays back within the hour.
    assert replicas_moved_over_a_day(amplitude=0.5) > 0


def test_the_payback_horizon_decides_a_marginal_move() -> None:
    # b is cheaper by a constant margin that pays back a start in ~10 hours: a 6-hour payback horizon
    # keeps a, a 24-hour one moves.
    settings = PlannerSettings()
    power_kw = 0.41 * 1.2
    start_cost = settings.cold_start_seconds / 3600 * (2.0 + 0.0755 * 1.2 * 0.1) + settings.move_penalty_usd
    margin = start_cost / 10 / power_kw  # USD/kWh that saves start_cost over 10 hours
    prices = {
        "a": PriceHorizon((EnergyPrice(NOW, NOW + timedelta(hours=48), 0.10),)),
        "b": PriceHorizon((EnergyPrice(NOW, NOW + timedelta(hours=48), 0.10 - margin),)),
    }
    for hours, moves in ((6.0, False), (24.0, True)):
        world = snapshot(
            [deployment("chat", 20.0, placements=[("a", H100, 3)], payback_hours=hours)],
            [cluster("a"), cluster("b")],
            prices,
        )
        plan = make_plan(world, settings).for_deployment("ns/chat")
        moved = any(t.cluster == "b" and t.replicas > 0 for t in plan.targets)
        assert moved == moves, (hours, plan.explanation)
