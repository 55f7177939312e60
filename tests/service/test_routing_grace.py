"""The routing grace: a member cluster whose API server is away while its pods still serve keeps its routing weight
for operator.unreachableRoutingGraceSeconds, and loses it when the grace ends or its pods stop reporting metrics.

The rule itself (planner.migration.routing_with_grace) is pinned in tests/planner/test_routing_grace.py; here, what
the service publishes (status.routing, the HTTPRoute's source) and says (a RoutingGrace Event) through whole cycles.
"""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import timedelta
from typing import Any

from gridshift.settings import OperatorSettings
from gridshift.signals.labels import DeploymentRef
from gridshift.signals.promql import Signal
from gridshift.testing import FakeMetricsSource
from tests.service.harness import H100, WORKLOADS, ServiceHarness, deployment_body, example_profile

PROMETHEUS = {"source": "Prometheus", "meanPromptTokens": 1000, "meanOutputTokens": 200}


def grace_settings(revalidate_seconds: float = 0, grace_seconds: float = 180.0, **settings: Any) -> OperatorSettings:
    """Cycles a minute apart, demand read per cluster from one Prometheus, the routing grace on."""
    return OperatorSettings(
        revalidate_delay_seconds=revalidate_seconds,
        plan_interval_seconds=60,
        prometheus_url="http://prom",
        metrics_cluster_label="cluster",
        unreachable_routing_grace_seconds=grace_seconds,
        **settings,
    )


def measured(world: ServiceHarness, clusters: str) -> None:
    """The chat's demand as every pod in `clusters` reports it: 2 req/s, 2,000 prompt and 400 output tok/s."""
    for cluster in clusters:
        ref = DeploymentRef("ml", "chat", WORKLOADS, "chat", cluster)
        world.metrics.set_signal(ref, Signal.REQUEST_RATE, 2.0)
        world.metrics.set_signal(ref, Signal.PROMPT_TOKEN_RATE, 2000.0)
        world.metrics.set_signal(ref, Signal.GENERATION_TOKEN_RATE, 400.0)


def spread_world(grace_seconds: float = 180.0, gpus: int = 1, **settings: Any) -> ServiceHarness:
    """A deployment serving from two clusters at 50% each, its demand measured in both (every pod reporting). With
    one GPU per cluster, nothing can be rebuilt in `a` while `b` is away: the case the grace is for."""
    world = ServiceHarness(
        ["a", "b"],
        gpus_per_cluster=gpus,
        settings=grace_settings(grace_seconds=grace_seconds, **settings),
    )
    world.add(deployment_body(capacity={"minReplicas": 2, "maxReplicas": 2, "minRegions": 2}, demand=PROMETHEUS))
    measured(world, "ab")
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


def test_a_move_that_starts_while_away_keeps_the_graced_weight_to_its_shift_routing() -> None:
    """Capacity rebuilt elsewhere is a move. Found in review: dropping b's weight as it started put b's share on a's
    one Ready replica for the whole cold start (before the grace, the weights in force stayed to the ShiftRouting).
    b's pods report, so the grace holds its weight into the move; the move's ShiftRouting, once a's new replica is
    Ready, sets the routing as before the grace."""
    world = spread_world(gpus=16)  # room in a: minReplicas 2 starts a second replica there
    world.members["a"].ready_immediately = False
    world.members["b"].reachable = False
    world.cycle()
    assert world.replicas()["a"] == 2
    assert routing(world) == {"a": 50, "b": 50}
    assert "its weight 50% kept into the move starting now" in grace_notes(world)[-1]
    world.cycle()
    assert routing(world) == {"a": 50, "b": 50}  # waiting for a's new replica: held to the ShiftRouting
    world.members["a"].mark_all_ready()
    world.cycle()
    assert routing(world) == {"a": 100}  # the ShiftRouting, once a's replicas are Ready


def test_a_move_that_starts_while_away_with_no_pod_reporting_drops_the_weight_at_once() -> None:
    world = spread_world(gpus=16)
    world.members["a"].ready_immediately = False
    pods_reporting(world, "b", 0.0)
    world.members["b"].reachable = False
    world.cycle()
    assert world.replicas()["a"] == 2
    assert routing(world) == {"a": 100}
    assert "its weight 50% dropped to 0 as a move starts, none of its pods reports" in grace_notes(world)[-1]


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


def room_in_a(world: ServiceHarness) -> None:
    """A node autoscaler adds GPUs in `a`: a move starts there, its replicas slow to get Ready."""
    world.members["a"].gpus[H100] = 4
    world.members["a"].ready_immediately = False
    world.deployments["chat"]["spec"]["migration"]["readyTimeoutSeconds"] = 900


def test_a_move_that_starts_within_the_grace_keeps_the_weight_only_while_its_pods_report() -> None:
    """Found in review: a move started while the grace kept a weight carried it to the move's ShiftRouting however
    the grace went; then, dropping every such weight as a move started overloaded the clusters left. The weight goes
    into the move only where the grace holds it as the move starts."""
    world = spread_world()
    world.members["b"].reachable = False
    world.cycle()
    assert routing(world) == {"a": 50, "b": 50}  # kept: nothing to rebuild in a yet
    room_in_a(world)  # b's pods still report
    world.cycle()
    assert [s["action"] for s in world.status()["migration"]][:2] == ["ScaleUp", "WaitReady"]
    assert routing(world) == {"a": 50, "b": 50}
    assert "its weight 50% kept into the move starting now" in grace_notes(world)[-1]

    silent = spread_world()
    silent.members["b"].reachable = False
    silent.cycle()
    pods_reporting(silent, "b", 0.0)
    room_in_a(silent)
    silent.cycle()
    assert routing(silent) == {"a": 100}


def three_clusters(world_prices: dict[str, float]) -> ServiceHarness:
    """Two replicas in a and b (50% each) of three one-GPU clusters, demand measured in all."""
    world = ServiceHarness(
        ["a", "b", "c"],
        gpus_per_cluster=1,
        settings=grace_settings(),
        prices=world_prices,
    )
    world.add(deployment_body(capacity={"minReplicas": 2, "maxReplicas": 2, "minRegions": 2}, demand=PROMETHEUS))
    measured(world, "abc")
    for _ in range(3):
        world.cycle()
    assert routing(world) == {"a": 50, "b": 50}
    world.deployments["chat"]["spec"]["migration"]["readyTimeoutSeconds"] = 900
    world.members["c"].ready_immediately = False
    return world


def test_a_one_cycle_blip_during_a_move_changes_no_routing() -> None:
    """A move in flight routes as before the grace, by its own ShiftRouting. Found in review: held to the grace there,
    one cycle of b away with its pods silent took b's weight for the rest of the move, though b was back."""
    world = three_clusters({"a": 50.0, "b": 50.0, "c": 500.0})
    world.prices.update({"a": 900.0, "c": 10.0})  # a move from a to c starts; c's replica slow to get Ready
    seen = []
    for cycle in range(7):
        if cycle == 2:
            world.members["b"].reachable = False
            pods_reporting(world, "b", 0.0)
        if cycle == 3:
            world.members["b"].reachable = True
            pods_reporting(world, "b", 1.0)
        world.cycle()
        seen.append(routing(world))
        assert any(s["state"] == "Running" for s in world.status()["migration"])
    assert seen == [{"a": 50, "b": 50}] * 7
    assert grace_notes(world) == []


def test_a_shift_routing_while_away_says_nothing_of_a_grace() -> None:
    """Found in review: a move's ShiftRouting run while b was away raised a RoutingGrace Event saying b's weight was
    kept, while the step gave b none (it has no Ready replica seen)."""
    world = three_clusters({"a": 50.0, "b": 50.0, "c": 500.0})
    world.deployments["chat"]["spec"]["capacity"] = {"minReplicas": 3, "maxReplicas": 3, "minRegions": 2}
    world.deployments["chat"]["metadata"]["generation"] = 2
    world.cycle()  # growth into c starts
    world.members["b"].reachable = False
    world.cycle()
    world.members["c"].mark_all_ready()
    world.cycle()  # the ShiftRouting
    assert routing(world) == {"a": 51, "c": 49}
    assert not [n for n in grace_notes(world) if "kept" in n]


def test_every_cluster_away_leaves_the_weights_and_says_why_once() -> None:
    """Found in review: with every routed cluster away and none graced, the weights went out as they were while the
    note said 'dropped to 0', in an Event every cycle."""
    world = spread_world()
    for cluster in ("a", "b"):
        pods_reporting(world, cluster, 0.0)
        world.members[cluster].reachable = False
    for _ in range(4):
        world.cycle()
        assert routing(world) == {"a": 50, "b": 50}
    events = [e for e in world.hub.events if e.reason == "RoutingGrace"]
    assert len(events) == 1 and events[0].occurrences == 1
    assert "dropped" not in events[0].note
    assert "kept: every cluster the routing sends traffic to is unreachable, there is nowhere else" in events[0].note


def test_a_kept_weight_is_said_once_then_its_drop() -> None:
    world = spread_world(grace_seconds=150.0)
    world.members["b"].reachable = False
    for _ in range(4):  # 0, 60, 120 s kept; 180 s dropped
        world.cycle()
    events = [e for e in world.hub.events if e.reason == "RoutingGrace"]
    assert [("kept until" in e.note, "grace ended" in e.note, e.occurrences) for e in events] == [
        (True, False, 1),
        (False, True, 1),
    ]


def test_a_static_demand_deployment_is_graced_too() -> None:
    """Found in review: Static demand is never measured, so its pods' replicas_reporting was never read and the
    grace never held (the note: 'its Prometheus was not asked'). The grace's read does not depend on demand's source."""
    world = spread_world()
    body = world.deployments["chat"]
    body["spec"]["demand"] = {**PROMETHEUS, "source": "Static", "requestsPerSecond": 4.0}
    body["metadata"]["generation"] = 2
    world.cycle()
    world.cycle()
    assert routing(world) == {"a": 50, "b": 50}
    world.members["b"].reachable = False
    world.cycle()
    assert routing(world) == {"a": 50, "b": 50}
    assert "kept until" in grace_notes(world)[-1]


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
    assert (
        "its pods' vLLM metrics not measured (its Prometheus gave no answer within the deadline)"
        in grace_notes(world)[-1]
    )
    for _ in range(2):  # no weight left there, and the grace over: not asked, no stall, no error line
        started = time.monotonic()
        report = world.cycle()
        assert time.monotonic() - started < 1.0
        assert not [e for e in report.errors if "prom" in e.lower() or "metrics of cluster b" in e]
    assert hanging.calls == 1


def test_a_failed_prometheus_is_said_in_fixed_words_to_the_tenant_its_error_to_the_operator_once() -> None:
    """Found in review: the grace note (the tenant's RoutingGrace Event) quoted the metrics error whole: the admin's
    metrics source, which tenants may not read (docs/rbac.md), and its server's answer, which can name other tenants'
    namespaces (the query covers every workload namespace of the cluster). The tenant is told why in fixed words;
    the error goes to the cycle's errors once (it was there twice: the grace note, logged as a problem, quoted it),
    the cluster named."""
    world = spread_world()
    failing = FakeMetricsSource()
    failing.name = "http://thanos-query.monitoring.svc:9090"
    body = 'HTTP 503: upstream prometheus-b-0 overloaded; query={namespace=~"gridshift-ml|gridshift-payroll"}'
    failing.fail(body, retryable=False)
    own_prometheus_for_b(world, failing)
    world.members["b"].reachable = False
    report = world.cycle()
    assert routing(world) == {"a": 100}
    tenant_texts = [e.note for e in world.hub.events] + [json.dumps(world.status())]
    assert not [t for t in tenant_texts if "thanos" in t or "payroll" in t or "prom-b" in t or "503" in t]
    assert "dropped to 0, its pods' vLLM metrics not measured (its Prometheus query failed)" in grace_notes(world)[-1]
    assert [e for e in report.errors if body in e] == [
        "cluster b unreachable, its Prometheus read for the routing grace only: metrics source "
        f"'http://thanos-query.monitoring.svc:9090', signal all: {body}"
    ]


def test_a_prometheus_past_its_own_deadline_is_said_as_no_answer_not_as_a_failed_query() -> None:
    """Found in review: the real source has the same deadline as the operator's wait (service.wiring), and when its
    own fired first (about half the time) its MetricsError was said to the tenant as "its Prometheus query failed"
    while the operator's log said no answer within the deadline."""
    world = spread_world()
    late = FakeMetricsSource()
    late.fail("no answer within the 1 s deadline", retryable=True, timed_out=True)
    own_prometheus_for_b(world, late)
    world.members["b"].reachable = False
    world.cycle()
    assert routing(world) == {"a": 100}
    assert "not measured (its Prometheus gave no answer within the deadline)" in grace_notes(world)[-1]


def test_a_restarted_operator_says_the_replicas_there_are_unknown() -> None:
    world = spread_world()
    world.members["b"].reachable = False
    world.cycle()
    world.service = world.make_service("op-1")
    world.cycle()
    assert routing(world) == {"a": 100}
    assert "its pods' vLLM metrics not measured (its replicas there unknown" in grace_notes(world)[-1]


def test_a_frozen_or_advisory_deployment_has_no_unreachable_prometheus_asked() -> None:
    """The grace applies in Auto mode only (nor to a move in flight): found in review, a Frozen or Advisory
    deployment's weight had a hanging Prometheus of an unreachable cluster asked, a stall of metrics_deadline_seconds
    each cycle, for a grace that could not apply."""
    for mode in ("Frozen", "Advisory"):
        world = spread_world(metrics_deadline_seconds=1)
        world.deployments["chat"]["spec"]["migration"]["mode"] = mode
        world.deployments["chat"]["metadata"]["generation"] = 2
        world.cycle()
        hanging = Hanging(1.5)
        own_prometheus_for_b(world, hanging)
        world.members["b"].reachable = False
        for _ in range(2):
            report = world.cycle()
            assert not [e for e in report.errors if "routing grace" in e]
        assert hanging.calls == 0, mode


def test_a_region_forbidden_while_its_pods_are_not_measured_loses_its_weight_as_a_move_starts() -> None:
    """Found in review (fifth): "not measured" (after a restart, b's replicas unknown; or b's Prometheus silent)
    overrode eligibility, so a region forbidden (or a namespace no longer admitted) while b was away kept its 50% into
    the move that started, up to readyTimeoutSeconds. Eligibility decides first; "not measured" keeps only an eligible
    cluster's weight."""

    def forbid_b(world: ServiceHarness, forbidden: list[str]) -> None:
        world.members["a"].ready_immediately = False
        world.members["b"].reachable = False
        respec(world, {"forbiddenRegions": forbidden})
        world.deployments["chat"]["spec"]["capacity"] = {"minReplicas": 2, "maxReplicas": 2, "minRegions": 1}

    restarted = spread_world(gpus=16)
    forbid_b(restarted, ["b"])
    restarted.service = restarted.make_service("op-1")
    silent = spread_world(gpus=16, metrics_deadline_seconds=1)
    own_prometheus_for_b(silent, Hanging(1.5))
    forbid_b(silent, ["b"])
    barred = spread_world(gpus=16)  # b no longer admits the namespace: its own rule, which the hub still tells
    forbid_b(barred, [])
    barred.cluster_bodies["b"]["spec"]["tenantNamespaceSelector"] = {"matchLabels": {"team": "other"}}
    barred.service = barred.make_service("op-1")
    for world in (restarted, silent, barred):
        world.cycle()
        assert [s["action"] for s in world.status()["migration"]] == ["ScaleUp", "WaitReady", "ShiftRouting"]
        assert routing(world) == {"a": 100}
        note = grace_notes(world)[-1]
        assert "its weight 50% dropped to 0 as a move starts, the deployment may no longer run there" in note
    allowed = spread_world(gpus=16)  # b still eligible: its unknown replicas' weight kept into the move, as before
    forbid_b(allowed, ["c"])
    allowed.service = allowed.make_service("op-1")
    allowed.cycle()
    assert [s["action"] for s in allowed.status()["migration"]] == ["ScaleUp", "WaitReady", "ShiftRouting"]
    assert routing(allowed) == {"a": 50, "b": 50}
    assert "kept into the move starting now (its pods' vLLM metrics not measured" in grace_notes(allowed)[-1]


def test_a_weight_dropped_while_a_move_waits_goes_only_to_clusters_with_ready_replicas() -> None:
    """Found in review (fifth): while a move waited for its revalidation, b's dropped 33% was spread over a and c,
    though c had no Ready replica left (33% -> 49%). As when a move starts, it goes to a alone."""
    world = three_way_world(revalidate_seconds=300)
    crash(world, "c")
    for cluster in "cde":
        world.members[cluster].ready_immediately = False
    world.prices.update({"c": 900.0, "d": 10.0, "e": 10.0})  # a move from c, waiting for its revalidation
    world.cycle()
    world.members["b"].reachable = False
    pods_reporting(world, "b", 0.0)
    for _ in range(2):
        world.cycle()
        assert not world.status().get("migration")
        assert routing(world) == {"a": 67, "c": 33}
    assert "its weight 33% dropped to 0, none of its pods reports" in grace_notes(world)[-1]


def test_a_count_of_pods_reporting_that_changes_raises_no_event() -> None:
    """Found in review (fifth): the Event was raised whenever its text changed, and the text counts the pods
    reporting, so a count going 2, 1, 2 raised three Events while nothing about routing changed. One Event per
    decision (cluster, unreachable since, weight, kept until or why dropped); the count stays in the cycle's log."""
    world = spread_world()
    world.members["b"].reachable = False
    logs = []
    for count in (2.0, 1.0, 2.0):
        pods_reporting(world, "b", count)
        report = world.cycle()
        assert routing(world) == {"a": 50, "b": 50}
        logs.append([e for e in report.errors if "kept until" in e])
    events = [e for e in world.hub.events if e.reason == "RoutingGrace"]
    assert [e.occurrences for e in events] == [1]
    assert "while 2 of its pods report fresh vLLM metrics" in events[0].note
    assert [len(lines) for lines in logs] == [1, 1, 1] and "while 1 of its pods report" in logs[1][0]
    world.cycle()  # 180 s into the spell: the grace ends, a decision that changes
    assert len(grace_notes(world)) == 2 and "dropped to 0, the grace ended" in grace_notes(world)[-1]


def three_way_world(revalidate_seconds: float) -> ServiceHarness:
    """Five clusters, the chat's three replicas in a, b and c (34/33/33), d and e dear and empty."""
    world = ServiceHarness(
        list("abcde"),
        gpus_per_cluster=1,
        settings=grace_settings(revalidate_seconds),
        prices={"a": 50.0, "b": 50.0, "c": 50.0, "d": 500.0, "e": 500.0},
    )
    world.add(deployment_body(capacity={"minReplicas": 3, "maxReplicas": 3, "minRegions": 3}, demand=PROMETHEUS))
    measured(world, "abcde")
    for _ in range(4):
        world.cycle()
    assert routing(world) == {"a": 34, "b": 33, "c": 33}
    return world


def crash(world: ServiceHarness, cluster: str, ready: int = 0) -> None:
    """The chat's member Deployment in `cluster` reports `ready` Ready replicas (0: its replica crashed)."""
    for (kind, _, _), body in world.members[cluster].objects.items():
        if kind == "Deployment":
            body["status"] = {"readyReplicas": ready}


def crashed_world(revalidate_seconds: float) -> ServiceHarness:
    """`three_way_world` with a's and c's replicas then crashed (none Ready), b away with its pods still reporting;
    nothing new becomes Ready."""
    world = three_way_world(revalidate_seconds)
    for cluster in "ac":
        crash(world, cluster)
    for cluster in "acde":
        world.members[cluster].ready_immediately = False
    world.members["b"].reachable = False
    return world


def test_a_cluster_no_longer_admitting_the_tenant_loses_its_weight_though_none_routed_has_ready_replicas() -> None:
    """Found in review (sixth): while a move waited for its revalidation and no reachable routed cluster had a Ready
    replica, the routing in force went out as it was: b, no longer admitting the namespace, kept its 33% with no time
    limit. It goes at once, to a and c (the spread before the fifth review), and the note says why."""
    world = crashed_world(revalidate_seconds=300)
    world.cluster_bodies["b"]["spec"]["tenantNamespaceSelector"] = {"matchLabels": {"team": "other"}}
    world.prices.update({"c": 900.0, "d": 10.0, "e": 10.0})  # a move from c, waiting for its revalidation
    for _ in range(3):
        world.cycle()
        assert not world.status().get("migration")
        assert routing(world) == {"a": 51, "c": 49}
    assert grace_notes(world) == [
        "cluster b unreachable since 2024-06-03T10:05:00+00:00: its weight 33% dropped to 0, the deployment may no "
        "longer run there (no reachable cluster the routing sends traffic to has a Ready replica: its share goes to "
        "them all)"
    ]


def test_a_region_forbidden_loses_its_weight_as_a_move_starts_though_none_routed_has_ready_replicas() -> None:
    """Sixth review: the move-start path kept b's weight the same way (forbidden, into a move that never ends)."""
    world = crashed_world(revalidate_seconds=300)
    body = world.deployments["chat"]
    body["spec"]["placement"] = {"forbiddenRegions": ["b"]}  # a move to d starts at once (a spec change)
    body["metadata"]["generation"] = 2
    for _ in range(3):
        world.cycle()
        assert [s["action"] for s in world.status()["migration"]][:2] == ["ScaleUp", "WaitReady"]
        assert routing(world) == {"a": 51, "c": 49}
    said = "its weight 33% dropped to 0 as a move starts, the deployment may no longer run there"
    assert said in grace_notes(world)[-1]


def test_a_dropped_share_goes_to_a_cluster_kept_by_the_grace_not_to_a_crashed_reachable_one() -> None:
    """Found in review (seventh, eighth): a's replicas crashed (reachable, none Ready), b away and kept by the grace
    (its pods report), c away and then forbidden: c's 33% went to a (34% -> 67% of requests failing) while b served.
    The first fix read "serves" from the Ready counts, which are never read for a cluster away; the grace's own
    evidence (pods reporting) says it now. As a move starts and while one waits."""
    for spec_change in (True, False):
        world = crashed_world(revalidate_seconds=300)
        crash(world, "c", ready=1)  # c served when it went away
        world.members["c"].reachable = False
        if spec_change:  # a move starts at once
            world.deployments["chat"]["spec"]["placement"] = {"forbiddenRegions": ["c"]}
            world.deployments["chat"]["metadata"]["generation"] = 2
        else:  # c no longer admits the tenant; a move from a waits for its revalidation
            world.cluster_bodies["c"]["spec"]["tenantNamespaceSelector"] = {"matchLabels": {"team": "other"}}
            world.prices.update({"a": 900.0, "d": 10.0, "e": 10.0})
        world.cycle()
        assert routing(world) == {"a": 34, "b": 66}, spec_change
        assert "goes to those the grace keeps, whose replicas serve" in grace_notes(world)[-1]


def test_replicas_on_a_gpu_type_removed_from_the_spec_lose_their_weight_as_a_move_starts() -> None:
    """Found in review (sixth): b's replicas ran on A100, which the spec no longer lists; the planner counted them as
    no replica known there and judged b by its own rules, so b kept its 50% into the move, past the grace's end."""
    a100 = "NVIDIA-A100-SXM4-80GB"
    h100 = example_profile()
    world = ServiceHarness(
        ["a", "b"],
        gpus_per_cluster=16,
        settings=grace_settings(),
        profiles=[h100, dataclasses.replace(h100, gpu_type=a100)],
    )
    world.members["b"].gpus = {a100: 16}
    world.cluster_bodies["b"]["spec"]["offerings"] = [
        {"gpuType": a100, "hourlyCost": {"amount": 2.0, "currency": "USD"}}
    ]
    body = deployment_body(
        capacity={"minReplicas": 2, "maxReplicas": 2, "minRegions": 2},
        demand=PROMETHEUS,
        replica={"gpuTypes": [H100, a100]},
    )
    world.add(body)
    measured(world, "ab")
    for _ in range(3):
        world.cycle()
    assert routing(world) == {"a": 50, "b": 50}
    world.members["a"].ready_immediately = False
    world.members["b"].reachable = False  # b away, its pods still reporting
    body["spec"]["capacity"] = {"minReplicas": 2, "maxReplicas": 2, "minRegions": 1}
    body["spec"]["replica"] = {"gpuTypes": [H100]}  # A100 no longer accepted
    body["metadata"]["generation"] = 2
    for _ in range(4):  # past the grace's end
        world.cycle()
        assert [s["action"] for s in world.status()["migration"]][:2] == ["ScaleUp", "WaitReady"]
        assert routing(world) == {"a": 100}
    assert (
        "its weight 50% dropped to 0 as a move starts, the deployment may no longer run there" in grace_notes(world)[-1]
    )
