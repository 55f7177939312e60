"""The routing grace: a member cluster whose API server is away while its pods still serve keeps its routing weight
for operator.unreachableRoutingGraceSeconds, and loses it when the grace ends or its pods stop reporting metrics.

The rule itself (planner.migration.routing_with_grace) is pinned in tests/planner/test_routing_grace.py; here, what
the service publishes (status.routing, the HTTPRoute's source) and says (a RoutingGrace Event) through whole cycles.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from gridshift.settings import OperatorSettings
from gridshift.signals.labels import DeploymentRef
from gridshift.signals.promql import Signal
from gridshift.testing import FakeMetricsSource
from tests.service.harness import H100, WORKLOADS, ServiceHarness, deployment_body

PROMETHEUS = {"source": "Prometheus", "meanPromptTokens": 1000, "meanOutputTokens": 200}


def spread_world(grace_seconds: float = 180.0, gpus: int = 1, **settings: Any) -> ServiceHarness:
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
            **settings,
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


# Found in review (regressions of the grace; each fails on the code before the fix).


def respec(world: ServiceHarness, placement: dict[str, Any]) -> None:
    """A spec edit: the deployment's placement, and a capacity one region can meet."""
    body = world.deployments["chat"]
    body["spec"]["placement"] = placement
    body["spec"]["capacity"] = {"minReplicas": 1, "maxReplicas": 2, "minRegions": 1}
    body["metadata"]["generation"] = 2


def test_a_region_forbidden_while_away_loses_its_weight_at_once() -> None:
    world = spread_world()
    world.members["b"].reachable = False
    respec(world, {"forbiddenRegions": ["b"]})
    world.cycle()
    assert routing(world) == {"a": 100}
    assert "its weight 50% dropped to 0, the deployment may no longer run there" in grace_notes(world)[-1]


def test_a_region_no_longer_allowed_while_away_loses_its_weight_at_once() -> None:
    world = spread_world()
    world.members["b"].reachable = False
    respec(world, {"allowedRegions": ["a"]})
    world.cycle()
    assert routing(world) == {"a": 100}


def test_a_cluster_no_longer_admitting_the_namespace_while_away_loses_its_weight_at_once() -> None:
    world = spread_world()
    world.members["b"].reachable = False
    world.cluster_bodies["b"]["spec"]["tenantNamespaceSelector"] = {"matchLabels": {"team": "other"}}
    world.cluster_bodies["b"]["metadata"]["generation"] = 2
    world.cycle()
    assert routing(world) == {"a": 100}


def test_a_move_in_flight_keeps_an_unreachable_weight_only_while_the_grace_holds_it() -> None:
    """Before the grace, the weight was 0 when the move started; the move's ShiftRouting (up to readyTimeoutSeconds
    away) must not keep it longer than the grace does."""
    world = spread_world()
    world.members["b"].reachable = False
    world.cycle()
    assert routing(world) == {"a": 50, "b": 50}  # kept: nothing to rebuild in a yet
    world.members["a"].gpus[H100] = 4  # room in a (a node autoscaler): a move starts there
    world.members["a"].ready_immediately = False
    world.deployments["chat"]["spec"]["migration"]["readyTimeoutSeconds"] = 900
    pods_reporting(world, "b", 0.0)  # and b's pods stop reporting
    world.cycle()
    assert [s["action"] for s in world.status()["migration"]][:2] == ["ScaleUp", "WaitReady"]
    assert routing(world) == {"a": 100}
    assert "none of its pods reports fresh vLLM metrics" in grace_notes(world)[-1]


def test_a_move_in_flight_drops_an_unreachable_weight_when_the_grace_ends() -> None:
    world = spread_world(grace_seconds=150.0)
    world.members["b"].reachable = False
    world.cycle()
    world.members["a"].gpus[H100] = 4
    world.members["a"].ready_immediately = False
    world.deployments["chat"]["spec"]["migration"]["readyTimeoutSeconds"] = 900
    seen = []
    for _ in range(3):  # 60, 120 s into the spell: kept; 180 s, past the 150 s grace: dropped, the move still waiting
        world.cycle()
        seen.append(routing(world))
    assert seen == [{"a": 50, "b": 50}] * 2 + [{"a": 100}]
    assert any(s["state"] == "Running" for s in world.status()["migration"])


class Hanging(FakeMetricsSource):
    """A Prometheus that answers only after `seconds`."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.calls = 0

    def cluster_signals(self, refs: Any, at: Any) -> Any:
        self.calls += 1
        time.sleep(self.seconds)
        return super().cluster_signals(refs, at)


def own_prometheus_for_b(world: ServiceHarness, source: FakeMetricsSource) -> None:
    world.cluster_bodies["b"]["spec"]["prometheusUrl"] = "http://prom-b"
    shared = world.metrics
    world.service.observer._metrics_factory = lambda url: source if "prom-b" in str(url) else shared
    world.service.observer._metrics.clear()


def test_an_unreachable_prometheus_is_asked_only_while_the_grace_may_keep_a_weight() -> None:
    world = spread_world(grace_seconds=60.0, metrics_deadline_seconds=1)
    hanging = Hanging(1.5)
    own_prometheus_for_b(world, hanging)
    world.members["b"].reachable = False
    report = world.cycle()  # within the grace: asked, its silence said as the grace's, and the weight dropped
    assert hanging.calls == 1 and routing(world) == {"a": 100}
    # Said as the grace's read, not as a reachable cluster's metrics error (the deployment's demand is unknown as
    # before: b's replicas are not capacity).
    assert not [e for e in report.errors if e.startswith("metrics of cluster b")]
    assert (
        "cluster b unreachable, its Prometheus read for the routing grace only: metrics of cluster b: no answer "
        "within the 1 s deadline"
    ) in report.errors
    assert "its pods' vLLM metrics not measured (metrics of cluster b: no answer" in grace_notes(world)[-1]
    for _ in range(2):  # no weight left there, and the grace over: not asked, no stall, no error line
        started = time.monotonic()
        report = world.cycle()
        assert time.monotonic() - started < 1.0
        assert not [e for e in report.errors if "prom" in e.lower() or "metrics of cluster b" in e]
    assert hanging.calls == 1


def test_a_restarted_operator_says_the_replicas_there_are_unknown() -> None:
    world = spread_world()
    world.members["b"].reachable = False
    world.cycle()
    world.service = world.make_service("op-1")
    world.cycle()
    assert routing(world) == {"a": 100}
    assert "its pods' vLLM metrics not measured (its replicas there unknown" in grace_notes(world)[-1]
