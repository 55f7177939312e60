"""Replicas a plan keeps running whose price or power the planner does not know: its cost says it leaves them out.

Found in review: status.cost read cheaper than the deployment ran, with nothing saying so, where replicas were kept in
a cluster that no longer told their offering, or (Frozen) on a GPU type no GPUProfile gives a power for."""

from __future__ import annotations

import pytest

from gridshift.planner import make_plan
from tests.planner.planner_world import A100, H100, cluster, deployment, flat_prices, snapshot


def test_replicas_kept_in_an_unreachable_cluster_that_no_longer_offers_their_gpu_are_counted_out_of_the_cost() -> None:
    # b is unreachable and no longer tells an H100 offering: the 2 replicas there are kept (a has no free GPU to
    # replace them) but nothing gives their GPU-hour price. Before: 0 USD/h, and no word of them.
    world = snapshot(
        [deployment("chat", 2.0, placements=[("b", H100, 2)])],
        [cluster("a", gpus={H100: 0}), cluster("b", reachable=False, gpus={A100: 8})],
        {"a": flat_prices(0.1), "b": flat_prices(0.1)},
    )
    plan = make_plan(world).for_deployment("ns/chat")
    assert plan.cost.usd_per_hour == 0
    assert plan.cost.unpriced == (("b", H100, 2),)
    assert plan.cost.unpriced_replicas == 2
    assert any(
        d == f"cost excludes 2 replica(s), no price or power known for them: b/{H100} x2"
        for d in plan.explanation.details
    ), plan.explanation.details


def test_a_frozen_deployments_replicas_without_a_gpuprofile_are_counted_out_of_the_cost() -> None:
    # Frozen keeps what runs: 1 H100 (priced) and 2 L40S, for which no GPUProfile gives a power.
    l40s = "NVIDIA-L40S"
    world = snapshot(
        [deployment("chat", 2.0, placements=[("a", H100, 1), ("a", l40s, 2)], gpu_types=[H100, l40s], mode="Frozen")],
        [cluster("a", gpus={H100: 8, l40s: 8})],
        {"a": flat_prices(0.1)},
    )
    plan = make_plan(world).for_deployment("ns/chat")
    assert plan.cost.usd_per_hour > 0
    assert plan.cost.unpriced == (("a", l40s, 2),)
    assert any(
        d == f"cost excludes 2 replica(s), no price or power known for them: a/{l40s} x2"
        for d in plan.explanation.details
    ), plan.explanation.details


def test_replicas_kept_outside_the_plan_are_counted_out_of_the_cost() -> None:
    # An SLO no GPU can meet: the running replica stays (nowhere else to go); the existing detail names it.
    world = snapshot(
        [deployment("d", 3.0, placements=[("a", H100, 1)], tpot_ms=1.0)], [cluster("a")], {"a": flat_prices(0.1)}
    )
    plan = make_plan(world).for_deployment("ns/d")
    assert plan.cost.unpriced == (("a", H100, 1),)


@pytest.mark.parametrize("frozen", [False, True])
def test_a_fully_priced_placement_leaves_nothing_out(frozen: bool) -> None:
    # Replicas kept in an unreachable cluster whose offering and profile are known are priced (not counted out).
    world = snapshot(
        [deployment("chat", 2.0, placements=[("b", H100, 2)], mode="Frozen" if frozen else "Auto")],
        [cluster("a", gpus={H100: 0}), cluster("b", reachable=False)],
        {"a": flat_prices(0.1), "b": flat_prices(0.1)},
    )
    plan = make_plan(world).for_deployment("ns/chat")
    assert plan.cost.usd_per_hour > 0
    assert plan.cost.unpriced == () and plan.cost.unpriced_replicas == 0
    assert not any(d.startswith("cost excludes") for d in plan.explanation.details)
