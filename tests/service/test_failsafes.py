"""The fail-safes through the whole service, cluster-free (the same on real control planes: tests/security).

Missing demand metrics give unknown demand, never zero: replicas are not scaled below what runs and
MetricsStale says why. A price feed without a good fetch for staleAfterSeconds is flagged on its
RegionalCluster and on every deployment, and no price-driven move is made while it is stale.
Translations (observed_demand, price_horizon) are pinned in test_inputs.py; here, what the service
does with them.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gridshift.api.common import CONDITION_MESSAGE_MAX
from gridshift.api.conditions import PriceFeedReason
from gridshift.api.labels import deployment_label_value
from gridshift.hub.client import HubForbidden, ObjectRef
from gridshift.planner import PlannerSettings
from gridshift.planner.capacity import replica_capacity
from gridshift.service import report as report_module
from gridshift.service.state import CycleErrorReason
from gridshift.service.status import _Conditions
from gridshift.settings import OperatorSettings
from gridshift.signals.labels import DeploymentRef, LabelScheme
from gridshift.signals.metrics import PrometheusMetricsSource
from gridshift.signals.prices import PriceFetchError
from gridshift.signals.promql import Signal
from gridshift.testing import FakeMetricsSource
from tests.service.harness import H100, WORKLOADS, ServiceHarness, deployment_body, example_profile
from tests.signals.conftest import LocalServer, Reply, local_server

__all__ = ["local_server"]

PROMETHEUS = {"source": "Prometheus", "meanPromptTokens": 1000, "meanOutputTokens": 200}
REF = DeploymentRef("ml", "chat", WORKLOADS, "chat")


def condition(status: dict[str, Any], kind: str) -> tuple[str, str, str]:
    found = next(c for c in status["conditions"] if c["type"] == kind)
    return found["status"], found["reason"], found["message"]


def test_missing_demand_metrics_never_trade_fast_gpus_for_slow_ones() -> None:
    # Found in review: with Prometheus down, a replica counted 1 whatever its GPU, and H100 x4 went step
    # by step to A100 x4 (a ninth of the capacity) under "never scaling below the Ready count".
    h100 = example_profile()
    slow = 1.675
    a100 = dataclasses.replace(
        h100,
        gpu_type="NVIDIA-A100-SXM4-80GB",
        step_base_ms=h100.step_base_ms * slow,
        step_ms_per_kv_position=h100.step_ms_per_kv_position * slow,
        step_ms_per_sequence=h100.step_ms_per_sequence * slow,
        prefill_tokens_per_s=h100.prefill_tokens_per_s / slow,
    )
    world = ServiceHarness(
        ["a", "b"],
        settings=OperatorSettings(
            revalidate_delay_seconds=15,
            plan_interval_seconds=60,
            prometheus_url="http://prom",
            metrics_cluster_label="cluster",
        ),
        profiles=[h100, a100],
    )
    world.members["b"].gpus = {a100.gpu_type: 16}
    offering = {"gpuType": a100.gpu_type, "hourlyCost": {"amount": 0.5, "currency": "USD"}}
    world.cluster_bodies["b"]["spec"]["offerings"] = [offering]
    rps = {
        model.gpu_type: replica_capacity(
            model,
            mean_prompt_tokens=1000,
            mean_output_tokens=200,
            tpot_slo_ms=50,
            ttft_slo_ms=500,
            settings=PlannerSettings(),
        ).requests_per_second
        for model in (h100, a100)
    }
    body = deployment_body(rps=10.0, replica={"gpuTypes": [H100, a100.gpu_type]})
    world.add(body)
    for _ in range(3):
        world.cycle()
    body["spec"]["demand"] = PROMETHEUS  # its series, then Prometheus goes down: the rate is unknown
    in_a = DeploymentRef("ml", "chat", WORKLOADS, "chat", "a")
    for signal, value in ((Signal.REQUEST_RATE, 10.0), (Signal.PROMPT_TOKEN_RATE, 10000.0)):
        world.metrics.set_signal(in_a, signal, value)
    world.metrics.set_signal(in_a, Signal.GENERATION_TOKEN_RATE, 2000.0)
    world.metrics.fail("prometheus down", retryable=True)

    def ready_rps() -> float:
        ready = world.ready()
        return ready.get("a", 0) * rps[H100] + ready.get("b", 0) * rps[a100.gpu_type]

    held = ready_rps()
    assert world.replicas().get("a", 0) > 0
    for _ in range(8):
        world.cycle()
        assert ready_rps() >= held - 1e-6, (world.ready(), world.status().get("lastDecision"))
    assert condition(world.status(), "MetricsStale")[0] == "True"


def test_missing_demand_metrics_never_scale_below_what_runs_and_say_so() -> None:
    world = ServiceHarness(
        ["eu-de"],
        settings=OperatorSettings(revalidate_delay_seconds=0, plan_interval_seconds=60, prometheus_url="http://prom"),
    )
    body = deployment_body(rps=30.0)
    world.add(body)
    world.cycle()
    placed = world.replicas()["eu-de"]
    assert placed > 1
    assert condition(world.status(), "MetricsStale") == ("False", "MetricsFresh", "")  # Static: no metrics needed
    # Demand is now read from Prometheus, which has no series for it: unknown, not zero.
    body["spec"]["demand"] = PROMETHEUS
    for _ in range(3):
        world.cycle()
        assert world.replicas()["eu-de"] >= placed
    status = world.status()
    assert condition(status, "MetricsStale") == (
        "True",
        "NoDemandMetrics",
        "request rate unknown: never scaling below the capacity running",
    )
    assert "observedSlo" not in status
    # Metrics arrive: a small measured load is believed, and the fleet shrinks to it.
    for signal, value in ((Signal.REQUEST_RATE, 1.0), (Signal.PROMPT_TOKEN_RATE, 1000.0)):
        world.metrics.set_signal(REF, signal, value)
    world.metrics.set_signal(REF, Signal.GENERATION_TOKEN_RATE, 200.0)
    for _ in range(3):
        world.cycle()
    status = world.status()
    assert condition(status, "MetricsStale") == ("False", "MetricsFresh", "")
    assert status["observedSlo"]["requestsPerSecond"] == 1.0
    shrunk = world.replicas()["eu-de"]
    assert shrunk < placed
    # Prometheus stops answering: unknown again, and nothing is scaled down on it.
    world.metrics.fail("connection refused", retryable=True)
    world.metrics.set_signal(REF, Signal.REQUEST_RATE, 0.0)
    for _ in range(3):
        world.cycle()
        assert world.replicas()["eu-de"] >= shrunk
    assert condition(world.status(), "MetricsStale")[:2] == ("True", "NoDemandMetrics")


def test_a_failed_signal_demand_is_not_made_of_is_reported_once_and_demand_still_read() -> None:
    # Found in review: one tenant's replica made the cluster's prompt-token histogram answer too large, and every
    # deployment of the cluster, other tenants' included, read MetricsStale. Only that signal is missing now.
    world = ServiceHarness(
        ["eu-de"],
        settings=OperatorSettings(revalidate_delay_seconds=0, plan_interval_seconds=60, prometheus_url="http://prom"),
    )
    body = deployment_body(rps=30.0)
    body["spec"]["demand"] = PROMETHEUS
    world.add(body)
    for signal, value in ((Signal.REQUEST_RATE, 1.0), (Signal.PROMPT_TOKEN_RATE, 1000.0)):
        world.metrics.set_signal(REF, signal, value)
    world.metrics.set_signal(REF, Signal.GENERATION_TOKEN_RATE, 200.0)
    world.metrics.fail_signal(Signal.PROMPT_TOKENS_BUCKETS, "body larger than 67108864 bytes")
    for _ in range(3):  # replicas placed, then measured
        report = world.cycle()
    status = world.status()
    assert condition(status, "MetricsStale") == ("False", "MetricsFresh", "")
    assert status["observedSlo"]["requestsPerSecond"] == 1.0
    assert [e for e in report.errors if "67108864" in e] == [
        "metrics source 'fake', signal prompt_tokens_requests_by_le: body larger than 67108864 bytes"
    ]
    # One of the signals demand is made of fails the cluster, as before: demand unknown, MetricsStale.
    world.metrics.fail_signal(Signal.REQUESTS_WAITING, "scripted failure")
    world.cycle()
    assert condition(world.status(), "MetricsStale")[:2] == ("True", "NoDemandMetrics")


def stale_home_feed(*, fail: bool) -> ServiceHarness:
    """eu-de runs the deployment; its price jumps tenfold and eu-fr's falls, which pays back a move.

    The deployment is Frozen while eu-de's feed publishes the jump, so no move starts then. With
    `fail`, eu-de's feed answers 503 from then on: its last good prices (the jump) are what the
    planner has, and they go stale after staleAfterSeconds (7200 s). Then the deployment is Auto again.
    """
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 40.0, "eu-fr": 60.0})
    body = deployment_body(rps=30.0)
    world.add(body)
    world.cycle()
    world.cycle()
    assert world.replicas() == {"eu-de": 10, "eu-fr": 0}
    body["spec"]["migration"]["mode"] = "Frozen"
    world.prices.update({"eu-de": 400.0, "eu-fr": 10.0})
    world.cycle()
    if fail:
        errors = [PriceFetchError("eu-de", "url", "endpoint answered 503", retryable=True) for _ in range(100)]
        world.feeds["eu-de"].fail_next(*errors)
    world.cycle(advance=timedelta(minutes=40))
    # Failing, but within staleAfterSeconds: not stale yet, the error is on the RegionalCluster.
    stale = ("False", "Fresh", "price feed 'eu-de': url: endpoint answered 503" if fail else "")
    assert condition(world.cluster_bodies["eu-de"]["status"], "PriceFeedStale") == stale
    for _ in range(3):
        world.cycle(advance=timedelta(minutes=40))
    body["spec"]["migration"]["mode"] = "Auto"
    return world


def test_a_stale_price_feed_is_flagged_where_it_matters_and_moves_nothing() -> None:
    world = stale_home_feed(fail=True)
    for _ in range(6):
        world.cycle()
        assert world.replicas() == {"eu-de": 10, "eu-fr": 0}
    cluster = world.cluster_bodies["eu-de"]["status"]
    assert condition(cluster, "PriceFeedStale") == ("True", "Stale", "price feed 'eu-de': url: endpoint answered 503")
    assert condition(world.cluster_bodies["eu-fr"]["status"], "PriceFeedStale")[:2] == ("False", "Fresh")
    assert condition(world.status(), "PriceFeedStale") == (
        "True",
        "Stale",
        "no fresh prices from: eu-de; no price-driven moves",
    )
    # Control: the same prices from a feed that works move the replicas to eu-fr.
    control = stale_home_feed(fail=False)
    for _ in range(6):
        control.cycle()
    assert control.replicas()["eu-fr"] > 0
    assert condition(control.status(), "PriceFeedStale") == ("False", "Fresh", "")


def measured_world(count: int, *, settings: OperatorSettings | None = None) -> ServiceHarness:
    """`count` Prometheus-demand deployments over three clusters, placed by a first (Static) cycle."""
    world = ServiceHarness(
        ["eu-de", "eu-fr", "us-tx"],
        gpus_per_cluster=64,
        settings=settings
        or OperatorSettings(revalidate_delay_seconds=0, plan_interval_seconds=60, prometheus_url="http://prom"),
    )
    # A Prometheus each (one for all, without operator.metricsClusterLabel, reads none: see below).
    for name, cluster in world.cluster_bodies.items():
        cluster["spec"]["prometheusUrl"] = f"http://prom-{name}"
    for index in range(count):
        world.add(deployment_body(f"chat-{index:03d}", rps=2.0))
    world.cycle()
    for body in world.deployments.values():
        body["spec"]["demand"] = PROMETHEUS
    return world


def test_prometheus_queries_per_cycle_do_not_grow_with_the_deployments() -> None:
    queries = {}
    for count in (2, 40):
        world = measured_world(count)
        clusters = {c for c, n in world.replicas().items() if n > 0}
        world.metrics.queries = 0
        world.cycle()
        queries[count] = world.metrics.queries
        assert queries[count] == len(Signal) * len(clusters), (count, clusters)
    # 40 deployments (400 queries one by one) still cost one query per signal per cluster.
    assert queries[40] <= len(Signal) * 3, queries


def test_a_prometheus_slower_than_the_deadline_leaves_demand_unknown_and_the_cycle_goes_on() -> None:
    import threading
    import time

    settings = OperatorSettings(
        revalidate_delay_seconds=0, plan_interval_seconds=60, prometheus_url="http://prom", metrics_deadline_seconds=0.5
    )
    world = measured_world(3, settings=settings)
    release = threading.Event()
    answer = world.metrics.cluster_signals

    def slow(refs: Any, at: Any) -> Any:
        release.wait(30)
        return answer(refs, at)

    world.metrics.cluster_signals = slow  # type: ignore[method-assign]
    started = time.monotonic()
    try:
        report = world.cycle()
    finally:
        release.set()
    assert time.monotonic() - started < 10, "the cycle waited past the metrics deadline"
    assert any("no answer within the 0.5 s deadline" in e for e in report.errors), report.errors
    assert condition(world.status("chat-000"), "MetricsStale")[:2] == ("True", "NoDemandMetrics")


def test_a_prometheus_answering_each_query_well_within_its_timeout_is_read_within_the_deadline(
    local_server: LocalServer,
) -> None:
    # Found in review: a cluster's 12 queries went one after another, so at 1.8 s each (a fifth of the
    # 10 s query timeout) the cluster missed the 20 s deadline and every deployment was MetricsStale, every
    # cycle. Here at a tenth of the scale: 0.25 s a query, a 1.5 s deadline (12 x 0.25 = 3 s one by one).
    settings = OperatorSettings(
        revalidate_delay_seconds=0, plan_interval_seconds=60, prometheus_url="http://prom", metrics_deadline_seconds=1.5
    )
    world = measured_world(2, settings=settings)
    names = [body["metadata"]["name"] for body in world.deployments.values()]
    labels = LabelScheme()
    result = [
        {
            "metric": {
                labels.namespace_label: WORKLOADS,
                labels.deployment_label: deployment_label_value("ml", name),
                labels.pod_label: f"{name}-pod",
                "le": "+Inf",
            },
            "value": [0, "1"],
        }
        for name in names
    ]
    body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()
    local_server.respond = lambda request: (time.sleep(0.25), Reply(body=body))[1]
    world.metrics = PrometheusMetricsSource(local_server.url)
    report = world.cycle()
    assert not [e for e in report.errors if "metrics" in e], report.errors
    assert local_server.requests
    for name in names:
        assert condition(world.status(name), "MetricsStale")[:2] == ("False", "MetricsFresh"), name
        assert world.status(name)["observedSlo"]["requestsPerSecond"] > 0, name


def two_regions_on_one_prometheus(fr_workloads: str = WORKLOADS, **settings: Any) -> ServiceHarness:
    """chat in eu-de and eu-fr (a replica each), its demand then read from the operator's one Prometheus."""
    world = ServiceHarness(
        ["eu-de", "eu-fr"],
        gpus_per_cluster=8,
        # A query string the messages never show (a credential in it is refused: OperatorSettings.prometheus_url).
        settings=OperatorSettings(
            revalidate_delay_seconds=0,
            plan_interval_seconds=60,
            prometheus_url="http://prom/?tenant=s3cr3t",
            **settings,
        ),
    )
    world.cluster_bodies["eu-fr"]["spec"]["workloadNamespace"] = fr_workloads
    world.add(deployment_body("chat", rps=4.0, capacity={"minReplicas": 2, "maxReplicas": 16, "minRegions": 2}))
    world.cycle()
    placed = {c: sum(w.desired for w in m.workloads([WORKLOADS, fr_workloads])) for c, m in world.members.items()}
    assert placed == {"eu-de": 1, "eu-fr": 1}
    world.deployments["chat"]["spec"]["demand"] = PROMETHEUS
    return world


def test_clusters_sharing_a_prometheus_without_a_cluster_label_are_not_read_and_say_why() -> None:
    # Found in review: without a cluster label each cluster's queries select by namespace alone, so each got
    # the whole fleet's series from the shared Prometheus: 4 req/s reported as 8, with no error.
    world = two_regions_on_one_prometheus()
    world.metrics.set_signal(REF, Signal.REQUEST_RATE, 4.0)  # what either cluster's query would answer
    world.metrics.queries = 0
    report = world.cycle()
    assert world.metrics.queries == 0, "a shared Prometheus without a cluster label was read"
    assert "observedSlo" not in world.status()
    assert condition(world.status(), "MetricsStale")[:2] == ("True", "NoDemandMetrics")
    for cluster, other in (("eu-de", "eu-fr"), ("eu-fr", "eu-de")):
        ambiguous, reason, message = condition(world.cluster_bodies[cluster]["status"], "MetricsAmbiguous")
        assert (ambiguous, reason) == ("True", "SharedWithoutClusterLabel")
        assert f"is also that of {other}" in message and "operator.metricsClusterLabel" in message
        assert "prometheusUrl" in message and "s3cr3t" not in message
        assert message in report.errors
        assert (CycleErrorReason.METRICS_UNAVAILABLE, message) in [
            (p.reason, p.message) for p in report.problems if p.cluster == cluster
        ]
    # Either remedy reads the demand again, each cluster's series once.
    labelled = two_regions_on_one_prometheus(metrics_cluster_label="cluster")
    for cluster in ("eu-de", "eu-fr"):
        labelled.metrics.set_signal(
            DeploymentRef("ml", "chat", WORKLOADS, "chat", cluster=cluster), Signal.REQUEST_RATE, 2.0
        )
    labelled.cycle()
    assert labelled.status()["observedSlo"]["requestsPerSecond"] == 4.0
    assert condition(labelled.cluster_bodies["eu-de"]["status"], "MetricsAmbiguous") == ("False", "Distinct", "")
    own = two_regions_on_one_prometheus()
    own.cluster_bodies["eu-fr"]["spec"]["prometheusUrl"] = "http://prom-fr"
    own.metrics.set_signal(REF, Signal.REQUEST_RATE, 2.0)
    own.cycle()
    assert own.status()["observedSlo"]["requestsPerSecond"] == 4.0
    assert condition(own.cluster_bodies["eu-fr"]["status"], "MetricsAmbiguous") == ("False", "Distinct", "")


def _measured_chat(rps: float) -> tuple[ServiceHarness, Callable[[float], None]]:
    """ml/chat placed in eu-de for `rps` (Static for two cycles), then on Prometheus demand, and `measure(rate)`,
    which sets its measured rates (1,000 prompt and 200 output tokens a request)."""
    world = ServiceHarness(
        ["eu-de"],
        settings=OperatorSettings(revalidate_delay_seconds=0, plan_interval_seconds=60, prometheus_url="http://prom"),
    )
    world.add(deployment_body("chat", rps=rps))
    for _ in range(2):
        world.cycle()
    world.deployments["chat"]["spec"]["demand"] = PROMETHEUS

    def measure(rate: float) -> None:
        world.metrics.set_signal(REF, Signal.REQUEST_RATE, rate)
        world.metrics.set_signal(REF, Signal.PROMPT_TOKEN_RATE, rate * 1000)
        world.metrics.set_signal(REF, Signal.GENERATION_TOKEN_RATE, rate * 200)

    return world, measure


def test_pods_whose_metrics_are_not_scraped_leave_the_demand_unknown_not_smaller() -> None:
    # Found in review (a real Prometheus): a replica whose /metrics scrape fails still serves, and drops out of
    # the sum; half the pods unscraped read 60 req/s as 30 and scaled 16 replicas to 10 in one cycle.
    world, measure = _measured_chat(60.0)
    measure(60.0)
    for _ in range(3):
        world.cycle()
    placed, ready = world.replicas(), world.ready()["eu-de"]
    assert ready == placed["eu-de"] > 2, placed
    measure(30.0)
    world.metrics.set_signal(REF, Signal.REPLICAS_REPORTING, ready // 2)
    for _ in range(3):
        report = world.cycle()
        assert world.replicas() == placed, "scaled on the pods that reported"
    reason = f"{ready} Ready replicas in eu-de, {ready // 2} reporting vLLM metrics"
    assert condition(world.status(), "MetricsStale")[:2] == ("True", "NoDemandMetrics")
    assert [p.message for p in report.problems] == [
        f"ml/chat: request rate unknown (Prometheus: {reason}): never scaling below the capacity running"
    ]
    # Every Ready pod reports again: the measured 30 req/s is believed.
    world.metrics.set_signal(REF, Signal.REPLICAS_REPORTING, ready)
    for _ in range(3):
        world.cycle()
    assert condition(world.status(), "MetricsStale")[:2] == ("False", "MetricsFresh")
    assert world.replicas()["eu-de"] < placed["eu-de"]


def test_one_of_two_clusters_prometheus_failing_leaves_the_demand_unknown_not_the_others_share() -> None:
    # A mutation survived: a failed cluster's signals skipped (not unknown) made the other cluster's share the
    # whole demand, 16 replicas scaled to 2 with MetricsStale False.
    world = ServiceHarness(["eu-de", "eu-fr"])
    world.cluster_bodies["eu-de"]["spec"]["prometheusUrl"] = "http://prom-de"
    world.cluster_bodies["eu-fr"]["spec"]["prometheusUrl"] = "http://prom-fr"
    world.add(deployment_body("chat", rps=60.0, capacity={"minReplicas": 2, "maxReplicas": 16, "minRegions": 2}))
    for _ in range(3):
        world.cycle()
    placed = world.replicas()
    assert placed["eu-de"] > 0 and placed["eu-fr"] > 0 and sum(placed.values()) > 2, placed
    down = FakeMetricsSource()
    down.fail("connection refused", retryable=True)
    world.service.observer._metrics_factory = lambda url: world.metrics if url == "http://prom-de" else down
    # eu-de's Prometheus answers a small load for its replicas; eu-fr's answers nothing.
    for signal, value in ((Signal.REQUEST_RATE, 1.0), (Signal.PROMPT_TOKEN_RATE, 1000.0)):
        world.metrics.set_signal(REF, signal, value)
    world.metrics.set_signal(REF, Signal.GENERATION_TOKEN_RATE, 200.0)
    world.deployments["chat"]["spec"]["demand"] = PROMETHEUS
    for _ in range(4):
        world.cycle()
        assert world.replicas() == placed, "scaled on one cluster's share of the demand"
    assert condition(world.status(), "MetricsStale") == (
        "True",
        "NoDemandMetrics",
        "request rate unknown: never scaling below the capacity running",
    )
    assert "observedSlo" not in world.status()


def test_clusters_sharing_a_prometheus_in_different_workload_namespaces_are_read() -> None:
    # Their series differ by namespace, which every query selects on: nothing to tell apart.
    world = two_regions_on_one_prometheus("gridshift-fr")
    world.metrics.set_signal(REF, Signal.REQUEST_RATE, 2.0)
    world.metrics.set_signal(DeploymentRef("ml", "chat", "gridshift-fr", "chat"), Signal.REQUEST_RATE, 2.0)
    world.cycle()
    assert condition(world.cluster_bodies["eu-fr"]["status"], "MetricsAmbiguous")[:2] == ("False", "Distinct")
    assert world.status()["observedSlo"]["requestsPerSecond"] == 4.0


def test_clusters_sharing_a_prometheus_admitting_different_tenants_to_their_own_namespaces_are_read() -> None:
    # Found in review: each cluster's namespaces were worked out from every tenant on the hub, so with
    # per-tenant namespaces (gs-{namespace}) two clusters admitting different tenants, no namespace in common,
    # were both MetricsAmbiguous and their deployments' demand was never read (never scaled down).
    world = ServiceHarness(
        ["eu-de", "eu-fr"],
        gpus_per_cluster=8,
        settings=OperatorSettings(revalidate_delay_seconds=0, plan_interval_seconds=60, prometheus_url="http://prom"),
    )
    for cluster, team in (("eu-de", "a"), ("eu-fr", "b")):
        world.cluster_bodies[cluster]["spec"]["workloadNamespace"] = "gs-{namespace}"
        world.cluster_bodies[cluster]["spec"]["tenantNamespaceSelector"] = {"matchLabels": {"team": team}}
    world.hub.namespaces = {"ta": {"team": "a"}, "tb": {"team": "b"}}
    for name, tenant in (("chat", "ta"), ("chat2", "tb")):
        body = deployment_body(name, rps=4.0)
        body["metadata"].update(namespace=tenant, uid=f"uid-{name}")
        world.add(body)
    world.cycle()
    placed = {c: {w.namespace for w in m.workloads(["gs-ta", "gs-tb"]) if w.desired} for c, m in world.members.items()}
    assert placed == {"eu-de": {"gs-ta"}, "eu-fr": {"gs-tb"}}
    for name, tenant in (("chat", "ta"), ("chat2", "tb")):
        world.deployments[name]["spec"]["demand"] = PROMETHEUS
        world.metrics.set_signal(DeploymentRef(tenant, name, f"gs-{tenant}", name), Signal.REQUEST_RATE, 2.0)
    world.cycle()
    for cluster in ("eu-de", "eu-fr"):
        assert condition(world.cluster_bodies[cluster]["status"], "MetricsAmbiguous")[:2] == ("False", "Distinct")
    for name in ("chat", "chat2"):
        assert condition(world.status(name), "MetricsStale")[0] == "False"
        assert world.status(name)["observedSlo"]["requestsPerSecond"] == 2.0
    # A tenant both admit can have replicas in gs-tb on each: their series are then ambiguous again.
    world.hub.namespaces["tb"] = {"team": "a"}
    world.cluster_bodies["eu-de"]["spec"]["tenantNamespaceSelector"] = {"matchLabels": {"team": "a"}}
    world.cluster_bodies["eu-fr"]["spec"]["tenantNamespaceSelector"] = {"matchLabels": {"team": "a"}}
    world.cycle()
    for cluster in ("eu-de", "eu-fr"):
        assert condition(world.cluster_bodies[cluster]["status"], "MetricsAmbiguous")[:2] == (
            "True",
            "SharedWithoutClusterLabel",
        )


def test_an_invalid_regional_cluster_is_a_named_problem_and_the_others_still_serve() -> None:
    world = ServiceHarness(["eu-de", "eu-fr"])
    world.cluster_bodies["eu-fr"]["spec"]["pue"] = 99  # beyond the API's 3.0
    world.add(deployment_body(rps=4.0))
    report = world.cycle()
    invalid = [p for p in report.problems if p.reason is CycleErrorReason.INVALID_RESOURCE]
    assert [p.cluster for p in invalid] == ["eu-fr"]
    assert "RegionalCluster eu-fr is invalid, not used" in invalid[0].message
    assert world.members["eu-de"].workloads([WORKLOADS]) and not world.members["eu-fr"].workloads([WORKLOADS])


def test_a_regional_cluster_status_that_cannot_be_written_stops_nothing_else() -> None:
    world = ServiceHarness(["eu-de", "eu-fr"], gpus_per_cluster=8)
    world.add(deployment_body(rps=5.0))
    patch_status = world.hub.patch_status

    def refused_for_eu_de(ref: ObjectRef, status: dict[str, Any], fence: Any = None) -> Any:
        if ref.kind == "RegionalCluster" and ref.name == "eu-de":
            raise HubForbidden("forbidden: cannot patch regionalclusters/status")
        return patch_status(ref, status, fence)

    world.hub.patch_status = refused_for_eu_de  # type: ignore[method-assign]
    report = world.cycle()
    assert ObjectRef("RegionalCluster", "", "eu-fr") in world.hub.statuses
    assert world.service.last_report is report
    assert [(p.reason, p.cluster) for p in report.problems if p.cluster == "eu-de"] == [
        (CycleErrorReason.STATUS_WRITE_FAILED, "eu-de")
    ]


def test_an_inference_deployments_status_that_cannot_be_written_is_reported_as_such() -> None:
    # Found in review: a refused InferenceDeployment status patch was reported as DeploymentFailed, "not acted on
    # this cycle", although its replicas had been written to the member cluster in the same cycle.
    world = ServiceHarness(["eu-de"])
    world.add(deployment_body("chat", rps=5.0))
    patch_status = world.hub.patch_status

    def refused_for_deployments(ref: ObjectRef, status: dict[str, Any], fence: Any = None) -> Any:
        if ref.kind == "InferenceDeployment":
            raise HubForbidden("forbidden: cannot patch inferencedeployments/status")
        return patch_status(ref, status, fence)

    world.hub.patch_status = refused_for_deployments  # type: ignore[method-assign]
    report = world.cycle()
    assert report.member_writes and world.members["eu-de"].workloads([WORKLOADS])
    assert [(p.reason, p.deployment) for p in report.problems] == [(CycleErrorReason.STATUS_WRITE_FAILED, "ml/chat")], (
        report.problems
    )
    assert report.problems[0].message == (
        "InferenceDeployment ml/chat: status not written: forbidden: cannot patch inferencedeployments/status"
    )
    assert report.status_writes == 1  # the RegionalCluster's: the deployment's is not counted as written


def test_a_metrics_adapter_bug_is_reported_without_its_message() -> None:
    world = ServiceHarness(
        ["eu-de"],
        settings=OperatorSettings(revalidate_delay_seconds=0, plan_interval_seconds=60, prometheus_url="http://prom"),
    )
    body = deployment_body(rps=30.0)
    world.add(body)
    world.cycle()  # replicas run: their metrics are asked for from now on
    body["spec"]["demand"] = PROMETHEUS

    def broken(refs: Any, at: Any) -> Any:
        raise RuntimeError("GET https://prom.example/api?token=s3cr3t failed")

    world.metrics.cluster_signals = broken  # type: ignore[method-assign]
    report = world.cycle()
    quoted = [e for e in report.errors if "metrics of cluster eu-de" in e]
    assert quoted and all("s3cr3t" not in e and "RuntimeError" in e for e in quoted)


def test_a_member_factory_failing_unexpectedly_is_reported_without_the_kubeconfig_it_quotes() -> None:
    # A mutation survived: quoting an error the member factory raised unexpectedly put the kubeconfig text it
    # held in the cluster's error, its status and the cycle's report (tests/security, cluster-only, covers a
    # malformed kubeconfig through the real adapter).
    world = ServiceHarness(["eu-de", "eu-fr"])
    kubeconfig = "users: [{name: u, user: {token: s3cr3t-token}}]"
    world.hub.secrets[("gridshift-system", "kc-eu-de")] = {"kubeconfig": kubeconfig}
    make = world.service.observer._member_factory

    def factory(name: str, text: str) -> Any:
        if name == "eu-de":
            raise RuntimeError(f"cannot use {text}")
        return make(name, text)

    world.service.observer._member_factory = factory
    world.add(deployment_body(rps=30.0))
    for _ in range(2):
        report = world.cycle()
    quoted = json.dumps(
        [report.errors, [p.message for p in report.problems], {str(k): v for k, v in world.hub.statuses.items()}],
        default=str,
    )
    assert "s3cr3t" not in quoted and "users:" not in quoted
    message = "cluster eu-de: kubeconfig invalid: cannot be used (RuntimeError)"
    assert [e for e in report.errors if "eu-de" in e] == [message], report.errors
    assert [(p.reason, p.cluster) for p in report.problems] == [(CycleErrorReason.KUBECONFIG_INVALID, "eu-de")]
    assert condition(world.cluster_bodies["eu-de"]["status"], "Ready") == ("False", "KubeconfigInvalid", message)
    assert world.replicas() == {"eu-de": 0, "eu-fr": 10}  # the other cluster is planned


def test_a_metrics_source_is_built_once_per_url_and_one_that_cannot_be_built_stops_nothing_else() -> None:
    built: list[str] = []
    for url in ("http://prom", "http://prom-de/?tenant=s3cr3t"):
        world = ServiceHarness(
            ["eu-de"],
            settings=OperatorSettings(revalidate_delay_seconds=0, plan_interval_seconds=60, prometheus_url=url),
        )
        body = deployment_body(rps=60.0)
        world.add(body)
        world.cycle()
        body["spec"]["demand"] = PROMETHEUS

        def factory(url: str, world: ServiceHarness = world) -> Any:
            built.append(url)
            if "s3cr3t" in url:
                raise ValueError(f"cannot build a source for {url}")
            return world.metrics

        world.service.observer._metrics_factory = factory
        for _ in range(3):
            report = world.cycle()
            assert condition(world.status(), "Ready")[0] == "True", "the deployment stopped being served"
    # A source holds connection pools: built once per URL and kept; one that cannot be built is tried
    # again next cycle, and its cluster's demand is unknown meanwhile (the others' are not touched).
    assert built == ["http://prom"] + ["http://prom-de/?tenant=s3cr3t"] * 3
    assert [e for e in report.errors if "metrics of cluster" in e] == [
        "metrics of cluster eu-de: source not created: internal error (ValueError)"
    ]
    assert condition(world.status(), "MetricsStale")[:2] == ("True", "NoDemandMetrics")


def test_an_invalid_inference_deployment_is_a_named_problem_and_the_others_still_serve() -> None:
    world = ServiceHarness(["eu-de"])
    world.add(deployment_body("good", rps=5.0))
    bad = deployment_body("bad", rps=5.0)
    bad["spec"]["capacity"] = {"minReplicas": 4, "maxReplicas": 2}  # admission refuses it; here it got through
    world.add(bad)
    report = world.cycle()
    assert world.replicas()["eu-de"] > 0
    named = [p for p in report.problems if p.deployment == "ml/bad"]
    assert [p.reason for p in named] == [CycleErrorReason.INVALID_RESOURCE]
    assert "spec.capacity" in named[0].message and "not planned" in named[0].message


def test_an_invalid_inference_deployment_says_so_in_its_status_and_keeps_what_runs() -> None:
    world = ServiceHarness(["eu-de"])
    body = deployment_body("chat", rps=5.0)
    world.add(body)
    world.cycle()
    running = world.replicas()["eu-de"]
    before = {c["type"]: c for c in world.status()["conditions"]}
    assert running > 0 and before["Ready"]["reason"] != "InvalidSpec"
    body["spec"]["capacity"] = {"minReplicas": 4, "maxReplicas": 2}  # admission refuses it; here it got through
    body["metadata"]["generation"] = 2
    world.cycle()
    status = world.status()
    ready, reason, message = condition(status, "Ready")
    assert (ready, reason) == ("False", "InvalidSpec")
    assert "spec.capacity" in message and "replicas are left as they run" in message
    assert condition(status, "Stalled")[:2] == ("True", "InvalidSpec")
    assert condition(status, "Reconciling")[:2] == ("False", "Stalled")
    assert status["observedGeneration"] == 2
    # What was learnt before stays as it was: the other conditions and the placements.
    assert next(c for c in status["conditions"] if c["type"] == "SLOAtRisk") == before["SLOAtRisk"]
    assert status["placements"] and world.replicas()["eu-de"] == running
    writes = world.hub.status_writes
    world.cycle()
    assert world.hub.status_writes == writes, "an unchanged refusal is written again every cycle"
    body["spec"]["capacity"] = {"minReplicas": 1, "maxReplicas": 4}  # mended
    body["metadata"]["generation"] = 3
    world.cycle()
    assert condition(world.status(), "Ready")[1] != "InvalidSpec"
    assert condition(world.status(), "Stalled")[1] != "InvalidSpec"


def test_an_invalid_regional_cluster_says_so_in_its_status() -> None:
    world = ServiceHarness(["eu-de", "eu-fr"])
    world.cluster_bodies["eu-fr"]["spec"]["pue"] = 99  # beyond the API's 3.0
    world.add(deployment_body(rps=4.0))
    world.cycle()
    status = world.cluster_bodies["eu-fr"]["status"]
    assert condition(status, "Ready")[:2] == ("False", "InvalidSpec")
    assert "spec.pue" in condition(status, "Ready")[2] and "not used" in condition(status, "Ready")[2]
    assert condition(status, "Stalled")[:2] == ("True", "InvalidSpec")
    assert condition(world.cluster_bodies["eu-de"]["status"], "Ready")[:2] == ("True", "Reachable")


def test_a_refused_objects_status_that_cannot_be_written_stops_nothing_else() -> None:
    world = ServiceHarness(["eu-de"])
    world.add(deployment_body("good", rps=5.0))
    bad = deployment_body("bad", rps=5.0)
    bad["spec"]["capacity"] = {"minReplicas": 4, "maxReplicas": 2}
    world.add(bad)
    patch_status = world.hub.patch_status

    def refused_for_bad(ref: ObjectRef, status: dict[str, Any], fence: Any = None) -> Any:
        if ref.name == "bad":
            raise HubForbidden("forbidden: cannot patch inferencedeployments/status")
        return patch_status(ref, status, fence)

    world.hub.patch_status = refused_for_bad  # type: ignore[method-assign]
    report = world.cycle()
    assert [p.reason for p in report.problems if p.deployment == "ml/bad"] == [
        CycleErrorReason.INVALID_RESOURCE,
        CycleErrorReason.STATUS_WRITE_FAILED,
    ]
    assert world.status("good")["conditions"] and ObjectRef("RegionalCluster", "", "eu-de") in world.hub.statuses


def test_a_transport_errors_text_is_not_quoted_by_describe_or_a_member_error() -> None:
    # The Kubernetes client wraps a transport failure as ApiException(status=0, reason=<urllib3's text>),
    # which names the host, the request path and whatever its query held.
    from kubernetes.client.exceptions import ApiException

    from gridshift.actuation.members import ClusterUnreachable, KubeMemberCluster
    from gridshift.service.errors import describe

    leak = "SSLError\nHTTPSConnectionPool(host='hub', port=443): /api/v1/secrets?token=s3cr3t"
    assert describe(ApiException(status=0, reason=leak)) == "ApiException: HTTP 0"
    assert describe(ApiException(status=500, reason=leak)) == "ApiException: HTTP 500 Internal Server Error"
    member = KubeMemberCluster.__new__(KubeMemberCluster)
    member.name = "eu-de"
    member._timeout = 10.0  # each call runs under its total deadline (gridshift.deadline)

    def fail() -> None:
        raise ApiException(status=0, reason=leak)

    with pytest.raises(ClusterUnreachable) as caught:
        member._call(fail, "list Deployments")
    assert "s3cr3t" not in str(caught.value) and "list Deployments: no answer" in str(caught.value)


def test_a_feed_error_of_any_length_reaches_its_cluster_cut_and_stops_nothing() -> None:
    """A feed may quote a hostile body at length; the CRD stores condition messages up to 32,768 characters.
    The error is cut (price feed errors at 1,024 characters, any condition at the CRD's limit) and every
    other object's status is still written in the same cycle."""
    world = ServiceHarness(["eu-de", "eu-fr"], gpus_per_cluster=8)
    world.add(deployment_body(rps=5.0))
    world.cycle()
    quoted = PriceFetchError("eu-de", "url", "x" * 50_000, retryable=True)
    world.feeds["eu-de"].fail_next(quoted, quoted, quoted)
    report = world.cycle(advance=timedelta(minutes=10))
    message = condition(world.cluster_bodies["eu-de"]["status"], "PriceFeedStale")[2]
    assert message.startswith("price feed 'eu-de': url: xxx") and message.endswith("...") and len(message) < 1_100
    assert not [p for p in report.problems if p.reason is CycleErrorReason.STATUS_WRITE_FAILED], report.problems


def test_a_condition_message_is_cut_to_what_the_crd_stores() -> None:
    build = _Conditions(datetime(2026, 1, 1, tzinfo=UTC), {}, generation=1)
    assert build("PriceFeedStale", True, PriceFeedReason.STALE, "y" * 50_000)["message"] == "y" * CONDITION_MESSAGE_MAX


def test_a_status_that_cannot_be_built_is_its_objects_problem_only(monkeypatch: pytest.MonkeyPatch) -> None:
    world = ServiceHarness(["eu-de", "eu-fr"], gpus_per_cluster=8)
    world.add(deployment_body(rps=5.0))
    world.cycle()
    build = report_module.cluster_status

    def broken_for_eu_de(now: Any, view: Any) -> Any:
        if view.name == "eu-de":
            raise ValueError("eu-de's status does not validate")
        return build(now, view)

    monkeypatch.setattr(report_module, "cluster_status", broken_for_eu_de)
    failing = PriceFetchError("eu-fr", "url", "endpoint answered 503", retryable=True)
    world.feeds["eu-fr"].fail_next(failing, failing, failing)  # eu-fr's status changes this cycle
    report = world.cycle(advance=timedelta(minutes=10))
    failed = [p for p in report.problems if p.reason is CycleErrorReason.STATUS_WRITE_FAILED]
    assert [p.cluster for p in failed] == ["eu-de"], report.problems
    assert "does not validate" not in failed[0].message  # described by type, as every write failure
    fr = condition(world.cluster_bodies["eu-fr"]["status"], "PriceFeedStale")
    assert fr[2] == "price feed 'eu-fr': url: endpoint answered 503"
    assert world.service.last_report is report  # the cycle ended: health and metrics see it


def test_a_member_adapter_bug_is_its_clusters_problem_only_and_not_quoted() -> None:
    # A bug in one member's adapter (here a KeyError from workloads(), on an object it did not expect) must not
    # stop the cycle for the tenants of every other cluster, and its message (the adapter's input: a key, a value
    # of the member's objects) is not quoted in the report or any status, only its type.
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 40.0, "eu-fr": 90.0})

    def broken(namespaces: Any) -> Any:
        raise KeyError("token-s3cr3t")

    world.members["eu-de"].workloads = broken  # type: ignore[method-assign]
    world.add(deployment_body(rps=30.0))
    for _ in range(2):
        report = world.cycle()
    # eu-de, the cheaper, is not read: the deployment is planned and placed in eu-fr, nothing written to eu-de.
    placed = sum(w.desired for w in world.members["eu-fr"].workloads([WORKLOADS]))
    assert placed > 0 and condition(world.status(), "Ready")[0] == "True", world.status()
    assert not world.members["eu-de"].objects
    message = "cluster eu-de: internal error (KeyError)"
    assert [e for e in report.errors if "eu-de" in e] == [message], report.errors
    quoted = json.dumps(
        [report.errors, [p.message for p in report.problems], {str(k): v for k, v in world.hub.statuses.items()}],
        default=str,
    )
    assert "s3cr3t" not in quoted
    assert condition(world.cluster_bodies["eu-de"]["status"], "Ready")[2] == message


def test_one_deployments_unexpected_error_stops_none_of_the_others_and_is_not_quoted() -> None:
    # The per-deployment guard takes any exception, not gridshift's own (MemberError) alone: a bug met acting on
    # one deployment (here a KeyError from its repair stage, on a field it did not expect) leaves the deployments
    # after it acted on, and is that deployment's DeploymentFailed, by its type only (its message may quote what
    # it read). Before: caught only by test_parallel_migrations, through a RuntimeError of the migrate stage.
    world = ServiceHarness(["eu-de"])
    for name in ("a", "b"):
        body = deployment_body(name, rps=5.0)
        body["metadata"]["uid"] = f"uid-{name}"
        world.add(body)
    repair_all = world.service.actuator.repair_all

    def broken_for_a(deployment: Any, *args: Any) -> Any:
        if deployment.id == "ml/a":
            raise KeyError("token-s3cr3t")
        return repair_all(deployment, *args)

    world.service.actuator.repair_all = broken_for_a  # type: ignore[method-assign]
    for _ in range(2):
        report = world.cycle()
    message = "ml/a: not acted on this cycle: internal error (KeyError)"
    assert [e for e in report.errors if "not acted on" in e] == [message], report.errors
    assert [(p.reason, p.deployment) for p in report.problems] == [(CycleErrorReason.DEPLOYMENT_FAILED, "ml/a")]
    assert "s3cr3t" not in json.dumps([report.errors, [p.message for p in report.problems]])
    # b, after a in the cycle's order, is acted on and reported.
    assert "b" in {w.deployment_name for w in world.members["eu-de"].workloads([WORKLOADS])}
    assert condition(world.status("b"), "Ready")[0] == "True", world.status("b")


def test_pods_just_turned_ready_need_not_report_yet() -> None:
    # Found in regression review: the pods a scale-up started turned Ready before Prometheus first scraped them
    # (up to one scrape interval), and each such cycle read as metrics unavailable: MetricsStale, a cycle error,
    # the GridshiftCycleErrors alert after every scale-up. Only pods Ready at the last status write must report.
    world, measure = _measured_chat(20.0)
    measure(20.0)
    for _ in range(3):
        world.cycle()
    steady = world.ready()["eu-de"]
    world.metrics.set_signal(REF, Signal.REPLICAS_REPORTING, steady)  # the new pods are not scraped yet
    world.members["eu-de"].ready_immediately = False
    measure(60.0)
    world.cycle()
    assert world.replicas()["eu-de"] > steady
    world.members["eu-de"].mark_all_ready()
    report = world.cycle()
    assert world.ready()["eu-de"] > steady
    assert condition(world.status(), "MetricsStale")[:2] == ("False", "MetricsFresh")
    assert report.problems == []
    # A cycle later they were Ready at the last status write: each must report by now.
    report = world.cycle()
    assert [p.reason for p in report.problems] == [CycleErrorReason.METRICS_UNAVAILABLE]


def test_a_fenced_write_is_described_by_its_own_message() -> None:
    # Found in regression review: Fenced was not among gridshift's own errors, so a write cut at the end of the
    # Lease's write window read "internal error (Fenced)" in the deployment's error, the sweep and the finalizer.
    from gridshift.service.errors import describe
    from gridshift.service.writes import Fenced, LeaseWindow

    error = LeaseWindow(lambda: 0.0).refused("cluster eu-de: apply Deployment ns/chat: not sent, 0.0 s left")
    assert isinstance(error, Fenced)
    assert describe(error).startswith("cluster eu-de: apply Deployment ns/chat: not sent, 0.0 s left")
