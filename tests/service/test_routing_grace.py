"""The routing grace: a member cluster whose API server is away while its pods still serve keeps its routing weight
for operator.unreachableRoutingGraceSeconds, and loses it when the grace ends or its pods stop reporting metrics.

The rule itself (planner.migration.routing_with_grace) is pinned in tests/planner/test_routing_grace.py; here, what
the service publishes (status.routing, the HTTPRoute's source) and says (a RoutingGrace Event) through whole cycles.
"""

from __future__ import annotations

from datetime import timedelta

from gridshift.settings import OperatorSettings
from gridshift.signals.labels import DeploymentRef
from gridshift.signals.promql import Signal
from tests.service.harness import WORKLOADS, ServiceHarness, deployment_body

PROMETHEUS = {"source": "Prometheus", "meanPromptTokens": 1000, "meanOutputTokens": 200}


def spread_world(grace_seconds: float = 180.0, gpus: int = 1) -> ServiceHarness:
    """A deployment serving from two clusters at 50% each, its demand measured in both (every pod reporting). With
    one GPU per cluster, nothing can be rebuilt in `a` while `b` is away: the case the grace is for."""
    world = ServiceHarness(
        ["a", "b"],
        gpus_per_cluster=gpus,
        settings=OperatorSettings(
            revalidate_delay_seconds=0,
            plan_interval_seconds=60,
            prometheus_url="http://prom",
            metrics_cluster_label="cluster",
            unreachable_routing_grace_seconds=grace_seconds,
        ),
    )
    world.add(deployment_body(capacity={"minReplicas": 2, "maxReplicas": 2, "minRegions": 2}, demand=PROMETHEUS))
    for cluster in ("a", "b"):
        ref = DeploymentRef("ml", "chat", WORKLOADS, "chat", cluster)
        world.metrics.set_signal(ref, Signal.REQUEST_RATE, 2.0)
        world.metrics.set_signal(ref, Signal.PROMPT_TOKEN_RATE, 2000.0)
        world.metrics.set_signal(ref, Signal.GENERATION_TOKEN_RATE, 400.0)
    for _ in range(3):
        world.cycle()
    assert routing(world) == {"a": 50, "b": 50}
    return world


def routing(world: ServiceHarness) -> dict[str, int]:
    return {r["cluster"]: r["weight"] for r in world.status().get("routing", [])}


def grace_notes(world: ServiceHarness) -> list[str]:
    return [event.note for event in world.hub.events if event.reason == "RoutingGrace"]


def pods_reporting(world: ServiceHarness, cluster: str, count: float) -> None:
    world.metrics.set_signal(DeploymentRef("ml", "chat", WORKLOADS, "chat", cluster), Signal.REPLICAS_REPORTING, count)


def test_one_unreachable_cycle_with_fresh_metrics_keeps_the_weight() -> None:
    world = spread_world()
    world.members["b"].reachable = False
    world.cycle()
    assert routing(world) == {"a": 50, "b": 50}
    world.members["b"].reachable = True
    world.cycle()
    assert routing(world) == {"a": 50, "b": 50}
    assert world.replicas() == {"a": 1, "b": 1}


def test_capacity_rebuilt_elsewhere_takes_the_weight_once_ready_as_usual() -> None:
    world = spread_world(gpus=16)  # room in a: minReplicas 2 starts a second replica there
    world.members["b"].reachable = False
    world.cycle()
    assert routing(world) == {"a": 50, "b": 50} and world.replicas()["a"] == 2
    world.cycle()  # Ready: the move's ShiftRouting sends b's share to a, within the grace
    assert routing(world) == {"a": 100}


def test_the_weight_drops_to_zero_once_the_grace_has_run_out() -> None:
    world = spread_world(grace_seconds=150.0)
    world.members["b"].reachable = False
    seen = []
    for _ in range(4):  # a minute apart: 0, 60, 120 s into the spell kept; 180 s past the 150 s grace
        world.cycle()
        seen.append(routing(world))
    assert seen == [{"a": 50, "b": 50}] * 3 + [{"a": 100}]
    world.cycle()
    assert routing(world) == {"a": 100}  # once dropped, not kept again while the cluster stays away


def test_no_fresh_metrics_drops_the_weight_at_once() -> None:
    world = spread_world()
    pods_reporting(world, "b", 0.0)  # its data plane is silent too
    world.members["b"].reachable = False
    world.cycle()
    assert routing(world) == {"a": 100}


def test_the_weight_drops_when_its_pods_stop_reporting_within_the_grace() -> None:
    world = spread_world()
    world.members["b"].reachable = False
    world.cycle()
    assert routing(world) == {"a": 50, "b": 50}
    pods_reporting(world, "b", 0.0)
    world.cycle()
    assert routing(world) == {"a": 100}


def test_an_event_names_the_cluster_says_unreachable_and_until_when() -> None:
    world = spread_world()
    world.members["b"].reachable = False
    world.cycle()
    began = world.now
    notes = grace_notes(world)
    assert len(notes) == 1
    until = (began + timedelta(seconds=180)).isoformat(timespec="seconds")
    assert f"cluster b unreachable since {began.isoformat(timespec='seconds')}" in notes[0]
    assert f"its weight 50% kept until {until}" in notes[0]
    pods_reporting(world, "b", 0.0)
    world.cycle()
    assert "cluster b unreachable" in grace_notes(world)[-1]
    assert "dropped to 0, none of its pods reports fresh vLLM metrics" in grace_notes(world)[-1]
