"""The PrometheusRule's alerts: each passes `promtool check rules`, keeps its `for` (promtool's simulated time),
and fires in a real Prometheus scraping the real operator metrics of a service that is in that trouble."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import start_http_server

from gridshift.signals.carbon import CarbonFetchError
from gridshift.signals.prices import PriceFetchError
from gridshift_dev.chart import alerts, operator_metric_names
from tests.service.harness import ServiceHarness, deployment_body

from .conftest import CHART_DIR

RULES = CHART_DIR / "files" / "prometheus" / "gridshift.rules.yaml"
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
ALERTS = {a.name: a for a in alerts()}


def expand(template: str, labels: dict[str, str]) -> str:
    """An annotation as Prometheus expands it for an alert with these labels."""
    for key, value in labels.items():
        template = template.replace(f"{{{{ $labels.{key} }}}}", value)
    assert "{{" not in template, f"an annotation refers to a label the alert does not carry: {template}"
    return template


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [r for g in groups for r in g["rules"] if "alert" in r]


def test_the_five_alerts_the_issue_asks_for_are_there_and_read_operator_metrics() -> None:
    assert set(ALERTS) >= {
        "GridshiftPriceFeedStale",
        "GridshiftClusterUnreachable",
        "GridshiftCycleErrors",
        "GridshiftSLOAtRisk",
        "GridshiftLeaderMissing",
    }
    exposed = operator_metric_names()
    for rule in alert_rules():
        alert = ALERTS[rule["alert"]]
        assert all(name in exposed and name in rule["expr"] for name in alert.reads), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical") and rule["annotations"]["description"]


@pytest.mark.skipif(PROMTOOL is None, reason="promtool missing (make system-deps installs Debian's)")
def test_alerts_keep_their_for_durations(tmp_path: Path) -> None:
    """promtool's simulated time: pending before `for` has passed, firing after, with the labels that route them."""
    operator = 'job="gridshift", instance="10.0.0.5:9090"'

    def case(alert: str, series: list[dict[str, str]], before: str, after: str, labels: dict[str, str]) -> Any:
        return [
            {"interval": "1m", "input_series": series, "alert_rule_test": [{"eval_time": before, "alertname": alert}]},
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {
                        "eval_time": after,
                        "alertname": alert,
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": ALERTS[alert].severity, **labels},
                                "exp_annotations": {
                                    "summary": expand(ALERTS[alert].summary, labels),
                                    "description": expand(ALERTS[alert].description, labels),
                                },
                            }
                        ],
                    }
                ],
            },
        ]

    where = 'cluster="eu-fr", region="eu-fr"'
    tests = [
        *case(
            "GridshiftPriceFeedStale",
            [{"series": f"gridshift_price_feed_stale{{{operator}, {where}}}", "values": "1x40"}],
            "10m",
            "20m",
            {"cluster": "eu-fr", "region": "eu-fr"},
        ),
        *case(
            "GridshiftCarbonFeedStale",
            [{"series": f"gridshift_carbon_feed_stale{{{operator}, {where}}}", "values": "1x40"}],
            "10m",
            "20m",
            {"cluster": "eu-fr", "region": "eu-fr"},
        ),
        *case(
            "GridshiftClusterUnreachable",
            [{"series": f"gridshift_cluster_reachable{{{operator}, {where}}}", "values": "0x40"}],
            "3m",
            "10m",
            {"cluster": "eu-fr", "region": "eu-fr"},
        ),
        *case(
            "GridshiftCycleErrors",
            [
                {"series": f'gridshift_cycle_errors_total{{{operator}, reason="RouteFailed"}}', "values": "0+1x40"},
                # Reasons with alerts of their own do not page twice.
                {"series": f'gridshift_cycle_errors_total{{{operator}, reason="Unreachable"}}', "values": "0+1x40"},
                {
                    "series": f'gridshift_cycle_errors_total{{{operator}, reason="CarbonFeedFailed"}}',
                    "values": "0+1x40",
                },
            ],
            "5m",
            "20m",
            {"reason": "RouteFailed"},
        ),
        *case(
            "GridshiftSLOAtRisk",
            [
                {
                    "series": f'gridshift_deployment_slo_at_risk{{{operator}, gridshift_dev_deployment="ml.chat"}}',
                    "values": "1x40",
                }
            ],
            "5m",
            "15m",
            {"gridshift_dev_deployment": "ml.chat"},
        ),
        *case(
            "GridshiftLeaderMissing",
            [{"series": f"gridshift_leader{{{operator}}}", "values": "0x40"}],
            "3m",
            "10m",
            {},
        ),
        *case(
            "GridshiftCyclesStopped",
            [
                {"series": f"gridshift_leader{{{operator}}}", "values": "1x40"},
                {"series": f"gridshift_last_cycle_timestamp_seconds{{{operator}}}", "values": "0x40"},
            ],
            "12m",
            "20m",
            {},
        ),
    ]
    test_file = tmp_path / "alerts_test.yaml"
    test_file.write_text(yaml.safe_dump({"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": tests}))
    proc = subprocess.run(
        [str(PROMTOOL), "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(PROMTOOL is None, reason="promtool missing (make system-deps installs Debian's)")
@pytest.mark.parametrize("scrape", ["15s", "30s", "1m"])
def test_a_single_cycle_error_fires_the_alert(tmp_path: Path, scrape: str) -> None:
    """Found in review: with a [10m] window and `for: 10m`, one MigrationRolledBack (or LeaseLost, CycleFailed)
    went pending and cleared before the `for` had passed. The counter is at 0 from start-up (_zero_counters),
    steps to 1 at 5 minutes and stays there: the alert fires after its `for` and resolves once the error
    is out of the window."""
    per_minute = {"15s": 4, "30s": 2, "1m": 1}[scrape]
    alert = ALERTS["GridshiftCycleErrors"]
    reason = {"reason": "MigrationRolledBack"}
    firing = {
        "exp_labels": {"severity": alert.severity, **reason},
        "exp_annotations": {"summary": expand(alert.summary, reason), "description": alert.description},
    }
    test = {
        "interval": scrape,
        "input_series": [
            {
                "series": 'gridshift_cycle_errors_total{job="gridshift", instance="10.0.0.5:9090", '
                'reason="MigrationRolledBack"}',
                "values": f"0x{5 * per_minute} 1x{60 * per_minute}",
            }
        ],
        "alert_rule_test": [
            {"eval_time": "4m", "alertname": "GridshiftCycleErrors"},
            {"eval_time": "14m", "alertname": "GridshiftCycleErrors"},  # pending
            *(
                {"eval_time": at, "alertname": "GridshiftCycleErrors", "exp_alerts": [firing]}
                for at in ("16m", "25m", "33m")
            ),
            {"eval_time": "40m", "alertname": "GridshiftCycleErrors"},
        ],
    }
    test_file = tmp_path / "one_error_test.yaml"
    test_file.write_text(yaml.safe_dump({"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": [test]}))
    proc = subprocess.run(
        [str(PROMTOOL), "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture
def served() -> Iterator[Callable[[Any], str]]:
    """Serves registries over HTTP as the operator does (prometheus_client), on free ports."""
    servers: list[Any] = []
    free_ports = importlib.import_module("gscluster.planes").free_ports  # e2e/cluster is on sys.path (conftest)

    def serve(registry: Any) -> str:
        (port,) = free_ports(1)
        server, _ = start_http_server(port, addr="127.0.0.1", registry=registry)
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield serve
    for server in servers:
        server.shutdown()


def firing(prometheus: Any) -> set[str]:
    with urllib.request.urlopen(f"{prometheus.url}/api/v1/alerts", timeout=5) as answer:
        found = json.loads(answer.read())["data"]["alerts"]
    return {a["labels"]["alertname"] for a in found if a["state"] == "firing"}


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus missing (make system-deps installs Debian's)")
def test_alerts_fire_in_a_real_prometheus_on_real_operator_metrics(
    tmp_path: Path, served: Callable[[Any], str]
) -> None:
    """Debian's Prometheus scrapes a leader and a follower service every second and evaluates the chart's alerts
    (their `for` set to 0 and their group to 1 s here; the durations are the test above's): the leader has an
    unreachable cluster, a stale price feed, a deployment short of capacity and one naming a missing HTTPRoute."""
    world = ServiceHarness(["eu-de", "eu-fr", "us-tx"], carbon={"eu-de": 300.0})
    world.add(deployment_body("short", rps=30.0, capacity={"minReplicas": 1, "maxReplicas": 2}))
    world.add(deployment_body("routed", rps=4.0, routing={"httpRouteName": "missing"}))
    world.cycle()
    world.members["eu-fr"].reachable = False
    world.feeds["us-tx"].fail_next(*[PriceFetchError("us-tx", "url", "answered 503", retryable=True)] * 5000)
    world.carbon_feeds["eu-de"].fail_next(*[CarbonFetchError("eu-de", "http", "HTTP 503", retryable=True)] * 5000)
    for _ in range(4):
        world.cycle(advance=timedelta(minutes=40))  # beyond staleAfterSeconds (2 h)
    follower = world.make_service("op-2")
    world.cycle(service=follower)
    fast = yaml.safe_load(RULES.read_text())
    for group in fast["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "0s"
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(fast))
    start = importlib.import_module("gscluster.prometheus").start_prometheus
    prometheus = start(
        {"gridshift": [served(world.service.metrics.registry), served(follower.metrics.registry)]},
        scrape_interval="1s",
        rule_files=[rules],
    )
    try:

        def wait_for(wanted: set[str], unwanted: set[str], keep_cycling: bool, seconds: float = 90) -> set[str]:
            deadline = time.monotonic() + seconds
            now: set[str] = set()
            while time.monotonic() < deadline:
                if keep_cycling:
                    world.cycle()  # errors keep counting, as every cycle of a real operator would
                now = firing(prometheus)
                if wanted <= now and not (unwanted & now):
                    return now
                time.sleep(0.5)
            raise AssertionError(f"firing {sorted(now)}; wanted {sorted(wanted)} without {sorted(unwanted)}")

        troubles = {
            "GridshiftPriceFeedStale",
            "GridshiftCarbonFeedStale",
            "GridshiftClusterUnreachable",
            "GridshiftCycleErrors",
        }
        wait_for(troubles | {"GridshiftSLOAtRisk"}, {"GridshiftLeaderMissing", "GridshiftCyclesStopped"}, True)
        # The leader's loop hangs (its Lease still renewed by its own task): cycles stop.
        world.service.metrics.last_cycle.set(time.time() - 3600)
        wait_for({"GridshiftCyclesStopped"}, {"GridshiftLeaderMissing"}, False)
        # Its renewals stop too: past the renew deadline it is no longer leading, and the follower is not.
        world.now += timedelta(minutes=10)
        wait_for({"GridshiftLeaderMissing"}, set(), False)
    finally:
        prometheus.stop()
