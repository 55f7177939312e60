"""The testdata that need metrics or time no e2e test has (measured latency above the SLO, a feed stale for
hours) are recorded through the service harness: the real status code, with fakes around it. Compared with
the committed testdata, or rewritten with GRIDSHIFT_RECORD_TESTDATA=1, as the e2e cases are."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gridshift.settings import OperatorSettings
from gridshift.signals.labels import DeploymentRef
from gridshift.signals.prices import PriceFetchError
from gridshift.signals.promql import Signal
from tests.gitops import health
from tests.service.harness import WORKLOADS, ServiceHarness, deployment_body
from tests.service.test_cycle import shared_route_world
from tests.service.test_failsafes import two_regions_on_one_prometheus


def with_status(body: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    return {**body, "status": status}


def test_slo_at_risk_is_recorded_from_the_service() -> None:
    world = ServiceHarness(
        ["eu-de"],
        settings=OperatorSettings(revalidate_delay_seconds=0, plan_interval_seconds=60, prometheus_url="http://prom"),
    )
    body = deployment_body("chat", rps=4.0)
    world.add(body)
    world.cycle()
    body["spec"]["demand"] = {"source": "Prometheus", "meanPromptTokens": 1000, "meanOutputTokens": 200}
    ref = DeploymentRef("ml", "chat", WORKLOADS, "chat")
    for signal, value in (
        (Signal.REQUEST_RATE, 4.0),
        (Signal.PROMPT_TOKEN_RATE, 4000.0),
        (Signal.GENERATION_TOKEN_RATE, 800.0),
        (Signal.JOULES_PER_TOKEN, 0.5),
        (Signal.TTFT_P95, 0.9),
        (Signal.ITL_P95, 0.03),
    ):
        world.metrics.set_signal(ref, signal, value)
    for _ in range(3):
        world.cycle()
    health.check_or_record(health.case("InferenceDeployment", "slo-at-risk"), body)


def test_a_route_held_by_another_deployment_is_recorded_from_the_service() -> None:
    # Found in review: a deployment whose HTTPRoute another, created first, holds was Healthy in Argo CD while
    # the route carried the other's weights; now Stalled RouteHeld, Degraded with the route and its holder named.
    world = shared_route_world()
    for _ in range(2):
        world.cycle()
    health.check_or_record(health.case("InferenceDeployment", "route-held"), world.deployments["chat"])


def test_a_stale_price_feed_is_recorded_from_the_service() -> None:
    world = ServiceHarness(["eu-de"])
    world.add(deployment_body())
    world.cycle()
    world.feeds["eu-de"].fail_next(*[PriceFetchError("eu-de", "url", "endpoint answered 503", retryable=True)] * 100)
    for _ in range(4):
        world.cycle(advance=timedelta(minutes=40))
    body = {**world.cluster_bodies["eu-de"], "metadata": {"name": "eu-de", "generation": 1}}
    health.check_or_record(health.case("RegionalCluster", "price-feed-stale"), body)


def test_clusters_whose_metrics_cannot_be_told_apart_are_recorded_from_the_service() -> None:
    # Found in review: such a cluster stayed Healthy in Argo CD (Ready=True) while the demand of every
    # deployment in it went unread, so nothing there was scaled down and nothing on the dashboard said why.
    world = two_regions_on_one_prometheus()
    world.cycle()
    body = {**world.cluster_bodies["eu-de"], "metadata": {"name": "eu-de", "generation": 1}}
    health.check_or_record(health.case("RegionalCluster", "metrics-ambiguous"), body)
