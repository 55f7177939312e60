"""The scale-down band (PlannerSettings.scale_down_band): a replica stops only when the rest cover the
demand with the band's margin; scale-ups and price-driven moves are not held."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

import pytest

from gridshift.planner import Deployment, ObservedDemand, Placement, PlannerSettings, make_plan
from gridshift.planner.plan import DeploymentPlan
from gridshift.planner.problem import build_problem
from gridshift.planner.snapshot import Snapshot
from tests.planner.planner_world import H100, NOW, cluster, deployment, flat_prices, snapshot
from tests.planner.test_carbon import carbon_deployment, flat_carbon

BAND_NOTE = "scale-down band"


def world(current: Deployment, price_a: float = 0.10, price_b: float = 0.10) -> Snapshot:
    return snapshot(
        [current], [cluster("a"), cluster("b")], {"a": flat_prices(price_a, 48), "b": flat_prices(price_b, 48)}
    )


def boundary_rps(replicas: int) -> float:
    """The request rate `replicas` H100 replicas cover exactly, headroom included."""
    problem = build_problem(world(deployment("chat", 1.0)), PlannerSettings()).deployments[0]
    return replicas * problem.options[0].capacity_rps / (1.0 + problem.workload.headroom)


def plan_at(rps: float, running: int, settings: PlannerSettings, **prices: float) -> DeploymentPlan:
    current = deployment("chat", rps, placements=[("a", H100, running)])
    return make_plan(world(current, **prices), settings).for_deployment("ns/chat")


def total(plan: DeploymentPlan) -> int:
    return sum(t.replicas for t in plan.targets)


def starts_and_stops(settings: PlannerSettings, cycles: int = 40) -> tuple[int, int]:
    """The review's case: a 5-minute mean rate wobbling +-2% around the 3-replica boundary, one plan a
    minute, each plan's targets fed back as the placement."""
    rng = random.Random(1)
    base = boundary_rps(3)
    current = deployment("chat", base, placements=[("a", H100, 3)])
    started = stopped = 0
    for minute in range(cycles):
        rate = base * (1 + rng.uniform(-0.02, 0.02))
        current = replace(current, demand=ObservedDemand(rate, 1000.0, 250.0))
        snap = replace(world(current), now=NOW + timedelta(minutes=minute))
        plan = make_plan(snap, settings).for_deployment("ns/chat")
        started += sum(max(0, t.replicas - t.current_desired) for t in plan.targets)
        stopped += sum(max(0, t.current_desired - t.replicas) for t in plan.targets)
        current = replace(
            current,
            placements=tuple(
                Placement(t.cluster, t.gpu_type, t.replicas, t.replicas) for t in plan.targets if t.replicas
            ),
        )
    return started, stopped


def test_a_rate_wobbling_around_a_replica_boundary_does_not_flap() -> None:
    # Without the band this started and stopped a replica 8 times in 40 cycles (review).
    started, stopped = starts_and_stops(PlannerSettings())
    assert (started, stopped) in ((0, 0), (1, 0))


def test_without_the_band_the_same_rate_flaps() -> None:
    # The case above is one that flaps at all: with the band off, replicas start and stop.
    started, stopped = starts_and_stops(PlannerSettings(scale_down_band=0.0))
    assert started >= 3 and stopped >= 3


def test_a_drop_within_the_band_keeps_the_replica_and_says_so() -> None:
    # 3 replicas cover the demand, but not with 5% to spare: the 4th stays.
    plan = plan_at(boundary_rps(3) / 1.02, running=4, settings=PlannerSettings())
    assert total(plan) == 4
    assert any(b.startswith(BAND_NOTE) for b in plan.explanation.binding_constraints)
    assert plan.feasible


def test_a_drop_beyond_the_band_scales_down() -> None:
    plan = plan_at(boundary_rps(3) / 1.10, running=4, settings=PlannerSettings())
    assert total(plan) == 3
    assert not any(b.startswith(BAND_NOTE) for b in plan.explanation.binding_constraints)


def test_a_rise_past_what_runs_scales_up_at_once() -> None:
    plan = plan_at(boundary_rps(3) * 1.01, running=3, settings=PlannerSettings())
    assert total(plan) == 4


def test_the_band_holds_no_more_than_runs() -> None:
    # D x (1 + band) above what runs does not start a replica: the band keeps, it never adds.
    plan = plan_at(boundary_rps(3) / 1.02, running=3, settings=PlannerSettings())
    assert total(plan) == 3
    assert not any(b.startswith(BAND_NOTE) for b in plan.explanation.binding_constraints)


@pytest.mark.parametrize("rps_share", [1 / 1.02, 1 / 1.30])
def test_a_price_move_still_happens_with_the_band(rps_share: float) -> None:
    # b far cheaper: the replicas move there, the band held (1/1.02) or not (1/1.30), at the
    # coverage the band keeps (4 replicas) or the demand needs (3).
    plan = plan_at(boundary_rps(3) * rps_share, running=4, settings=PlannerSettings(), price_a=0.9, price_b=0.05)
    placed = {t.cluster: t.replicas for t in plan.targets if t.replicas}
    assert placed == {"b": 4 if rps_share > 1 / 1.05 else 3}


def test_the_band_must_be_a_fraction() -> None:
    with pytest.raises(ValueError, match="scale_down_band"):
        PlannerSettings(scale_down_band=-0.01)


def test_a_full_pool_gives_the_band_held_gpu_to_real_demand() -> None:
    # One pool of 24 H100, all held: "small" runs 4 for a demand of 2.94 replicas (the band would keep
    # the 4th), "big" runs 20 for a demand just above 20. big's real need gets small's 4th GPU: the band's
    # margin is no demand. Priced like demand (the band inside the solvers), the band kept it: big's
    # missing 0.05 replica weighed less than small's margin of 0.09.
    small = deployment("small", boundary_rps(3) / 1.02, placements=[("a", H100, 4)])
    big = deployment("big", boundary_rps(20) * 1.0025, placements=[("a", H100, 20)], max_replicas=24)
    plan = make_plan(snapshot([small, big], [cluster("a", gpus={H100: 24})], {"a": flat_prices(0.10, 48)}))
    assert total(plan.for_deployment("ns/big")) == 21
    assert plan.for_deployment("ns/big").feasible
    assert total(plan.for_deployment("ns/small")) == 3
    assert not any(b.startswith(BAND_NOTE) for b in plan.for_deployment("ns/small").explanation.binding_constraints)


def test_the_band_keeps_a_replica_where_the_pool_has_room_for_both() -> None:
    # The same two with one GPU more: big starts its 21st on the free GPU and small keeps its 4th.
    small = deployment("small", boundary_rps(3) / 1.02, placements=[("a", H100, 4)])
    big = deployment("big", boundary_rps(20) * 1.0025, placements=[("a", H100, 20)], max_replicas=24)
    plan = make_plan(snapshot([small, big], [cluster("a", gpus={H100: 25})], {"a": flat_prices(0.10, 48)}))
    assert total(plan.for_deployment("ns/big")) == 21
    assert total(plan.for_deployment("ns/small")) == 4
    assert any(b.startswith(BAND_NOTE) for b in plan.for_deployment("ns/small").explanation.binding_constraints)


def test_the_held_replica_moves_with_the_rest_only_within_max_concurrent_moves() -> None:
    # As the price move above (band held), with maxConcurrentMoves 3: moving the 4th replica too would be
    # a 4th move, so the band keeps it where it runs instead.
    current = deployment("chat", boundary_rps(3) / 1.02, placements=[("a", H100, 4)], max_moves=3)
    plan = make_plan(world(current, price_a=0.9, price_b=0.05)).for_deployment("ns/chat")
    assert {t.cluster: t.replicas for t in plan.targets if t.replicas} == {"a": 1, "b": 3}


def test_the_band_is_named_only_where_it_kept_a_replica() -> None:
    # minRegions 2 keeps a replica in each of a and b for a demand of 0.98 replicas: the band holds more
    # than the demand, but the plan meets it without the band. Judged from the counts alone, the note was
    # named here too (and in 4 of the 100 deployments of `bench planner`'s default seed).
    current = deployment("chat", boundary_rps(1) / 1.02, placements=[("a", H100, 1), ("b", H100, 1)], min_regions=2)
    plan = make_plan(world(current)).for_deployment("ns/chat")
    assert total(plan) == 2
    assert "minRegions 2" in plan.explanation.binding_constraints
    assert not any(b.startswith(BAND_NOTE) for b in plan.explanation.binding_constraints)


def test_the_band_keeps_no_replica_where_it_breaks_a_carbon_limit() -> None:
    # Found in regression review: 4 replicas in a, above the deployment's carbon limit; b is clean with room for
    # the 3 the demand needs. Without the band all move to b; the band kept one in a and the explanation said
    # "carbon limit broken in a: no capacity within the limit serves the demand".
    chat = carbon_deployment(boundary_rps(3) / 1.02, max_intensity=400.0, placements=[("a", H100, 4)])
    world = snapshot(
        [chat], [cluster("a"), cluster("b", gpus={H100: 3})], {"a": flat_prices(0.02), "b": flat_prices(0.05)}
    )
    world = replace(world, carbon={"a": flat_carbon(450.0), "b": flat_carbon(50.0)})
    plan = make_plan(world, PlannerSettings(scale_down_band=0.05)).for_deployment("ns/chat")
    assert {t.cluster: t.replicas for t in plan.targets if t.replicas} == {"b": 3}
    assert not any("carbon limit broken" in c for c in plan.explanation.binding_constraints)
