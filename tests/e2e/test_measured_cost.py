"""With the simulated fleet serving real traffic, status $/Mtok and J/token are measured and agree with Prometheus."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from e2e.world.fleet import LoadSpec
from e2e.world.prometheus import scrape_configs
from e2e.world.world import World, WorldSettings

from gridshift.signals.labels import DeploymentRef, LabelScheme
from gridshift.signals.metrics import PrometheusMetricsSource
from gridshift.signals.promql import QueryWindows, Signal
from gridshift.signals.settings import MetricsSettings
from tests.e2e.operator_env import Fleet, OperatorProcess, inference_deployment, install_hub, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]
WINDOW_S = 20


@pytest.fixture(scope="module")
def served(control_planes: Any) -> Iterator[tuple[Fleet, Any]]:
    fleet = install_hub(control_planes, {"eu-de": 40.0, "eu-fr": 90.0, "us-tx": 60.0})
    settings = WorldSettings(speed=60, default_load=LoadSpec(rate_per_s=6.0), poll_interval_s=0.5)
    world = World.from_kubeconfigs(settings, kubeconfigs=control_planes.kubeconfigs, hub=control_planes.hub).start()
    prometheus = importlib.import_module("gscluster.prometheus").start_prometheus(
        scrape_interval="1s", extra_scrape_configs=scrape_configs(world.endpoints()["exporters"])
    )
    for region in control_planes.regions:
        fleet.hub(
            "patch",
            "regionalcluster",
            region,
            "--type=merge",
            "-p",
            f'{{"spec": {{"prometheusUrl": "{prometheus.url}"}}}}',
        )
    try:
        yield fleet, prometheus
    finally:
        for region in control_planes.regions:  # later modules share these RegionalClusters
            fleet.hub("patch", "regionalcluster", region, "--type=merge", "-p", '{"spec": {"prometheusUrl": null}}')
        prometheus.stop()
        world.stop()


def test_status_cost_is_measured_and_consistent_with_prometheus(
    served: tuple[Fleet, Any], control_planes: Any, tmp_path: Path
) -> None:
    fleet, prometheus = served
    operator = OperatorProcess(
        control_planes.kubeconfigs[control_planes.hub],
        tmp_path,
        "measured",
        metrics_cluster_label="cluster",
        metrics_window_seconds=WINDOW_S,
    ).start()
    body = inference_deployment("served", rps=1.0)
    body["spec"]["demand"] = {"source": "Prometheus", "meanPromptTokens": 1155, "meanOutputTokens": 211}
    fleet.apply_hub(body)
    try:
        wait_until(
            lambda: fleet.status("served").get("cost", {}).get("source") == "Measured",
            240,
            "a measured cost in status",
            every=2,
        )
        source = PrometheusMetricsSource(
            prometheus.url,
            settings=MetricsSettings(
                labels=LabelScheme(cluster_label="cluster"), windows=QueryWindows(rate_seconds=WINDOW_S)
            ),
        )

        def compare() -> tuple[dict[str, Any], float, float]:
            """Status cost, Prometheus's mean J/token and token rate over the regions in status, read together."""
            status = fleet.status("served")
            joules: list[float] = []
            tokens = 0.0
            for region in status["regions"].split(","):
                signals = source.deployment_signals(
                    DeploymentRef("ml", "served", "gridshift-workloads", "served", cluster=region), datetime.now(UTC)
                )
                tokens += signals.scalar(Signal.GENERATION_TOKEN_RATE) or 0.0
                if (j := signals.scalar(Signal.JOULES_PER_TOKEN)) is not None:
                    joules.append(j)
            assert joules, "Prometheus has J/token for the deployment"
            return status["cost"], sum(joules) / len(joules), tokens

        readings: list[tuple[dict[str, Any], float, float]] = []

        def agrees() -> bool:
            # The first measured cycles see a rate window only partly filled by traffic, so the status
            # (one cycle old) and Prometheus (now) can differ until the load is steady: compare until
            # they agree, and fail with every reading if they never do.
            cost, joules, tokens = compare()
            readings.append((cost, joules, tokens))
            expected_usd_per_mtok = cost["usdPerHour"] / (tokens * 3600) * 1e6
            return bool(
                cost["source"] == "Measured"
                and cost["joulesPerToken"] == pytest.approx(joules, rel=0.2)
                and cost["usdPerMillionTokens"] == pytest.approx(expected_usd_per_mtok, rel=0.3)
            )

        try:
            wait_until(agrees, 120, "status cost to agree with Prometheus", every=4)
        except AssertionError as error:
            raise AssertionError(f"{error}; readings (status cost, Prometheus J/token, tokens/s): {readings}") from None
        cost = readings[-1][0]
        assert 0.02 < cost["joulesPerToken"] < 5
    finally:
        # Deleted while the operator still runs, so its finalizer is processed and nothing is left behind.
        fleet.hub("delete", "idep", "-n", "ml", "served", "--wait=true", "--timeout=60s", check=False)
        operator.stop()
