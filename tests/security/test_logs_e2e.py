"""Finding 1 of issue 15, and its "done when": planted secrets appear in no log line, Event, status or metric.

The operator runs as users run it (`kopf run`, here at --verbose, the most detailed level) against the
real control planes, with two planted, unique secret values:
- an ENTSO-E securityToken in a price-feed Secret; the feed's endpoint is a local server that records
  what it receives (it gets the token, which is the point, and answers 500 so every refresh retries);
- a member kubeconfig whose bearer token the member apiserver refuses (401), so the token rides on every
  request and every failure of that cluster.
After several cycles, the log, every Event, every status and the metrics page are scanned: zero
occurrences. The control: the local endpoint did receive the feed token, so it was in use throughout.
"""

from __future__ import annotations

import http.server
import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.operator_env import NAMESPACE, OperatorProcess, inference_deployment, install_hub, regional_cluster
from tests.security.harness import kubeconfig_text, unique, wait_until, with_token

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]


@pytest.fixture
def entsoe_endpoint() -> Iterator[tuple[str, list[str]]]:
    received: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.append(self.path)
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"upstream down")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api", received
    finally:
        server.shutdown()


def test_planted_secrets_never_reach_logs_events_status_or_metrics(
    control_planes: Any, tmp_path: Path, entsoe_endpoint: tuple[str, list[str]]
) -> None:
    url, received = entsoe_endpoint
    feed_token = unique("FEEDTOKEN")
    member_token = unique("MEMBERTOKEN")
    fleet = install_hub(control_planes, {"eu-de": 40.0, "eu-fr": 90.0, "us-tx": 60.0})

    def secret(name: str, key: str, value: str, purpose: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"gridshift.dev/secret-purpose": purpose}},
            "stringData": {key: value},
        }

    leaky = regional_cluster("leaky", 30.0)
    leaky["spec"]["kubeconfigSecretRef"]["name"] = "kubeconfig-leaky"
    leaky["spec"]["priceFeed"] = {
        "type": "entsoe",
        "currency": "EUR",
        "fxToUsd": 1.08,
        "refreshSeconds": 10,
        "entsoe": {
            "areaEic": "10Y1001A1001A82H",
            "endpoint": url,
            "tokenSecretRef": {"name": "entsoe-token-leaky", "namespace": NAMESPACE, "key": "token"},
        },
    }
    fleet.apply_hub(
        secret("entsoe-token-leaky", "token", feed_token, "price-feed-token"),
        secret(
            "kubeconfig-leaky",
            "kubeconfig",
            with_token(kubeconfig_text(control_planes, "eu-de"), member_token),
            "member-kubeconfig",
        ),
        leaky,
    )
    name = unique("scan")
    fleet.apply_hub(inference_deployment(name, rps=4.0))
    operator = OperatorProcess(control_planes.kubeconfigs[control_planes.hub], tmp_path, "scan").start(verbose=True)
    try:
        wait_until(lambda: fleet.status(name).get("readyReplicas", 0) >= 1, 120, "placement beside the leaky cluster")
        wait_until(lambda: len(received) >= 3, 90, "the feed to be fetched (and retried) with its token")
        wait_until(lambda: operator.log().count("cycle leader=True") >= 5, 120, "five cycles")
        assert any(feed_token in path for path in received), "control: the token must have been in use"

        metrics = urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=10).read()
        surfaces = {
            "log": operator.log(),
            "events": fleet.hub("get", "events", "-A", "-o", "json"),
            "events.k8s.io": fleet.hub("get", "events.events.k8s.io", "-A", "-o", "json"),
            "InferenceDeployments": fleet.hub("get", "idep", "-A", "-o", "json"),
            "RegionalClusters": fleet.hub("get", "regionalclusters", "-o", "json"),
            "metrics": metrics.decode(errors="replace"),
        }
        leaks = {
            where: [token for token in (feed_token, member_token) if token in text] for where, text in surfaces.items()
        }
        assert {k: v for k, v in leaks.items() if v} == {}, f"secrets leaked; log at {operator.log_path}"
        # The scan saw real content: the leaky cluster's failure and the feed's failure are both reported.
        clusters = json.loads(surfaces["RegionalClusters"])["items"]
        leaky_status = next(c for c in clusters if c["metadata"]["name"] == "leaky")["status"]
        assert any(c["type"] == "Reachable" and c["status"] == "False" for c in leaky_status["conditions"])
    finally:
        # The leaky cluster first: while a RegionalCluster cannot be confirmed clean, the finalizer stays.
        fleet.hub("delete", "regionalcluster", "leaky", check=False)
        fleet.hub("delete", "idep", "-n", "ml", name, "--wait=false", check=False)
        wait_until(lambda: name not in fleet.hub("get", "idep", "-n", "ml", "-o", "name"), 60, "cleanup")
        operator.stop()
        fleet.hub("delete", "secret", "-n", NAMESPACE, "entsoe-token-leaky", "kubeconfig-leaky", check=False)
