"""Carbon through the whole service: feed -> snapshot -> plan -> member clusters, status and metrics."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import generate_latest

from gridshift.signals.carbon import CarbonFetchError
from tests.service.harness import ServiceHarness, deployment_body


def conditions(status: dict[str, object]) -> dict[str, dict[str, str]]:
    return {c["type"]: c for c in status.get("conditions", [])}  # type: ignore[union-attr,index,misc]


def harness() -> ServiceHarness:
    # a: cheap and, at first, clean enough; b: dearer and clean.
    h = ServiceHarness(["a", "b"], prices={"a": 20.0, "b": 400.0}, carbon={"a": 250.0, "b": 40.0})
    h.add(deployment_body(rps=20.0, carbon={"maxGramsPerKwh": 300}))
    return h


def settle(h: ServiceHarness, cycles: int = 8) -> None:
    for _ in range(cycles):
        h.cycle()


def test_a_carbon_limit_moves_replicas_out_make_before_break_and_back() -> None:
    h = harness()
    settle(h)
    assert h.replicas()["a"] > 0 and h.replicas()["b"] == 0
    status = h.status()
    assert status["cost"]["gramsCo2PerMillionTokens"] > 0 and status["cost"]["kgCo2PerHour"] > 0
    serving = h.ready()["a"]
    h.carbon["a"] = 450.0  # a's grid got dirtier than the limit
    seen = []
    for _ in range(30):  # one replica at a time (maxConcurrentMoves 1), each waiting to be Ready
        h.cycle()
        seen.append((h.ready()["a"], h.ready()["b"]))
        # Make-before-break: Ready capacity never drops below what was serving.
        assert sum(seen[-1]) >= serving
    assert seen[-1][0] == 0 and seen[-1][1] >= serving
    assert any(a > 0 and b > 0 for a, b in seen), "both ran at once while the new replicas came up"
    assert "carbon limit" in " ".join(h.status()["lastDecision"]["explanation"].split("\n"))
    h.carbon["a"] = 200.0  # clean again: the cheaper cluster takes them back
    settle(h, 30)
    assert h.replicas()["a"] > 0 and h.replicas()["b"] == 0


def test_a_stale_carbon_feed_never_triggers_a_move_and_says_so() -> None:
    h = harness()
    settle(h)
    before = h.replicas()
    h.carbon["a"] = 900.0  # the grid did get dirty, but the feed fails from now on
    h.carbon_feeds["a"].fail_next(
        *[CarbonFetchError("a", "http.status", "HTTP 503: server error", retryable=True)] * 200
    )
    for _ in range(15):  # 15 min: past staleAfterSeconds (600 s)
        h.cycle()
    assert h.replicas() == before
    cluster = h.cluster_bodies["a"]["status"]
    stale = conditions(cluster)["CarbonFeedStale"]
    assert stale["status"] == "True" and stale["reason"] == "Stale"
    assert "HTTP 503" in stale["message"]
    metrics = generate_latest(h.service.metrics.registry).decode()
    assert 'gridshift_carbon_feed_stale{cluster="a",region="a"} 1.0' in metrics
    # A limit that the last (stale) intensity breaks is not enforced on it either.
    body = h.deployments["chat"]
    body["spec"]["carbon"] = {"maxGramsPerKwh": 100}
    body["metadata"]["generation"] = 2
    for _ in range(5):
        h.cycle()
    assert h.replicas() == before


def test_cluster_status_and_metrics_carry_the_intensity() -> None:
    h = harness()
    settle(h, 2)
    cluster = h.cluster_bodies["a"]["status"]
    assert cluster["currentCarbonIntensityGPerKwh"] == 250.0
    assert cluster["carbonBasis"] == "lifecycle"
    assert conditions(cluster)["CarbonFeedStale"]["reason"] == "Fresh"
    metrics = generate_latest(h.service.metrics.registry).decode()
    assert 'gridshift_carbon_intensity_grams_per_kwh{cluster="a",region="a"} 250.0' in metrics
    assert "gridshift_deployment_predicted_co2_kg_per_hour{" in metrics
    assert "gridshift_deployment_predicted_co2_grams_per_million_tokens{" in metrics
    h.cycle(advance=timedelta(minutes=1))
    assert conditions(h.cluster_bodies["b"]["status"])["CarbonFeedStale"]["status"] == "False"


def test_without_carbon_feeds_nothing_carbon_appears() -> None:
    h = ServiceHarness(["a", "b"], prices={"a": 20.0, "b": 120.0})
    h.add(deployment_body(rps=20.0))
    settle(h, 2)
    assert "gramsCo2PerMillionTokens" not in h.status()["cost"]
    cluster = h.cluster_bodies["a"]["status"]
    assert "currentCarbonIntensityGPerKwh" not in cluster
    assert "CarbonFeedStale" not in conditions(cluster)
