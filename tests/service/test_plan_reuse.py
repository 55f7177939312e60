"""The decide stage reuses last cycle's plan only when the planner's problem is the same
(service.decide, planner.reuse): an idle fleet is not searched again every cycle, and any
change the planner reads (a price, demand, a replica that became Ready) is planned afresh."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from unittest import mock

from gridshift.service import decide as service_decide
from tests.service.harness import ServiceHarness, deployment_body


def settled(world: ServiceHarness) -> None:
    for _ in range(6):
        if world.cycle().member_writes == 0 and not world.status().get("migration"):
            return
    raise AssertionError("the fleet did not settle")


def test_an_unchanged_problem_reuses_the_plan_and_a_price_change_replans() -> None:
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 30.0, "eu-fr": 90.0})
    world.add(deployment_body(rps=20.0))
    settled(world)
    before = world.replicas()
    with mock.patch.object(service_decide, "make_plan", wraps=service_decide.make_plan) as planner:
        idle = [world.cycle(advance=timedelta(seconds=60)) for _ in range(3)]
        assert [r.plan_reused for r in idle] == [True, True, True]
        assert all(r.planner_seconds is None for r in idle)
        assert planner.call_count == 0
        assert [(r.member_writes, r.status_writes) for r in idle] == [(0, 0)] * 3
        world.prices["eu-de"], world.prices["eu-fr"] = 300.0, 10.0
        changed = world.cycle()
        assert not changed.plan_reused and planner.call_count == 1
    assert changed.plan is not None and idle[-1].plan is not None
    assert changed.plan.targets() != idle[-1].plan.targets(), "the new prices were planned"
    for _ in range(8):
        world.cycle()
    assert world.replicas() != before, "the move the new plan asked for was carried out"


def test_demand_that_changes_is_planned_afresh() -> None:
    world = ServiceHarness(["eu-de"])
    world.add(deployment_body(rps=5.0))
    settled(world)
    assert world.cycle().plan_reused
    world.deployments["chat"]["spec"]["demand"]["requestsPerSecond"] = 60.0
    report = world.cycle()
    assert not report.plan_reused
    assert report.plan is not None
    assert sum(report.plan.targets()["ml/chat"].values()) > sum(world.replicas().values()) - 1


def test_a_plan_not_proven_optimal_is_searched_once_more_before_it_is_reused() -> None:
    world = ServiceHarness(["eu-de", "eu-fr"])
    world.add(deployment_body(rps=20.0))
    settled(world)
    last = world.service.decider.last_plan
    assert last is not None
    world.service.decider.last_plan = replace(last, proven_optimal=False)
    world.service.decider.searched_unchanged = False
    assert [world.cycle().plan_reused for _ in range(3)] == [False, True, True]
