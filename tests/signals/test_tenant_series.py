"""One tenant's replica exporting hostile series, on a real Prometheus (Debian's /usr/bin/prometheus): it costs that
tenant's own signals at most, never another tenant's demand.

Found in review (Prometheus 2.42): a replica (its image is its tenant's) exported 1,000 prompt-token buckets with
70,000-character `le` values, under the PodMonitor's sampleLimit; the cluster's by-`le` answer passed the operator's
64 MiB cap, and every deployment of the cluster, other tenants' in their own namespaces included, had no metrics.
Here the answers are scaled down with the cap (1 MiB), so a test takes seconds."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridshift.signals.labels import DeploymentRef
from gridshift.signals.metrics import PrometheusMetricsSource
from gridshift.signals.promql import Signal
from gridshift.signals.settings import MetricsSettings, RetryPolicy
from tests.cluster.helpers import wait_for
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.cluster

NAMESPACE = "gridshift-workloads"
VICTIM = DeploymentRef("prod", "victim", NAMESPACE, "Qwen/Qwen2.5-0.5B-Instruct")
ATTACKER = DeploymentRef("evil", "attack", NAMESPACE, "a")
CAP = 1024 * 1024


def long_edges() -> str:
    # The review's series, fewer: 100 edges of 20,000 characters, 2 MB of `le` in one answer.
    return "".join(f'vllm:request_prompt_tokens_bucket{{engine="0",le="{i}.{"9" * 20_000}"}} 0\n' for i in range(100))


def many_edges() -> str:
    # Plausible numbers, so no `le` matcher drops them: 9,000 edges (under sampleLimit 10,000), over 1 MiB.
    return "".join(
        f'vllm:request_prompt_tokens_bucket{{engine="0",le="{i}.000000000000001"}} 0\n' for i in range(9_000)
    )


def exporter(pages: dict[str, bytes]) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages[self.path]
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def replicas(shared_data: Path) -> Iterator[str]:
    """host:port serving the real vLLM scrape at /victim, hostile ones at /long and /many."""
    real = (shared_data / "metrics-scrapes" / "vllm_v1_metrics_qwen2.5-0.5b_idle_full_scrape.prom").read_bytes()
    running = b'vllm:num_requests_running{engine="0",model_name="a"} 0\n'
    server, address = exporter(
        {"/victim": real, "/long": running + long_edges().encode(), "/many": running + many_edges().encode()}
    )
    try:
        yield address
    finally:
        server.shutdown()
        server.server_close()


def scrape_job(
    name: str,
    address: str,
    path: str,
    ref: DeploymentRef,
    limits: dict[str, int],
    metric_relabel_configs: list[dict[str, Any]] | None = None,
) -> dict[str, object]:
    """What dcgm/vllm-podmonitor.yaml makes of one replica: the Prometheus Operator's target labels, the relabeled
    gridshift ones, honor_labels false, its limits and metric relabelings."""
    labels = {
        "namespace": ref.workload_namespace,
        "pod": f"{ref.name}-0",
        "container": "vllm",
        "endpoint": "http",
        "gridshift_dev_deployment": f"{ref.namespace}.{ref.name}",
        "gridshift_dev_gpu_type": "NVIDIA-H100-80GB-HBM3",
        "region": "eu-de",
    }
    return {
        "job_name": name,
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "metrics_path": path,
        "honor_labels": False,
        "static_configs": [{"targets": [address], "labels": labels}],
        "metric_relabel_configs": metric_relabel_configs or [],
        **limits,
    }


def pod_monitor_limits() -> dict[str, int]:
    spec = yaml.safe_load((REPO_ROOT / "dcgm" / "vllm-podmonitor.yaml").read_text())["spec"]
    return {
        "sample_limit": spec["sampleLimit"],
        "label_limit": spec["labelLimit"],
        "label_name_length_limit": spec["labelNameLengthLimit"],
        "label_value_length_limit": spec["labelValueLengthLimit"],
    }


def pod_monitor_metric_relabelings() -> list[dict[str, Any]]:
    """The PodMonitor's metricRelabelings as the Prometheus Operator writes them into the scrape config."""
    spec = yaml.safe_load((REPO_ROOT / "dcgm" / "vllm-podmonitor.yaml").read_text())["spec"]
    names = {"sourceLabels": "source_labels", "targetLabel": "target_label"}
    endpoint = spec["podMetricsEndpoints"][0]
    return [{names.get(k, k): v for k, v in rule.items()} for rule in endpoint.get("metricRelabelings", [])]


def scraped_twice(prom: Any, job: str) -> bool:
    # Two scrapes of the counters: rate() and increase() have a value from then on.
    answer = prom.query(f'count_over_time(up{{job="{job}"}}[1m])')["result"]
    return bool(answer) and float(answer[0]["value"][1]) >= 2


def victim_and_attacker(
    prometheus_factory: Any,
    replicas: str,
    attacker_path: str,
    limits: dict[str, int],
    relabelings: list[dict[str, Any]] | None = None,
) -> Any:
    """A Prometheus scraping the real vLLM page as the victim and `attacker_path` as the attacker, both under
    `limits`; returned once each has been scraped twice."""
    prom = prometheus_factory(
        {},
        extra_scrape_configs=[
            scrape_job("victim", replicas, "/victim", VICTIM, limits, relabelings),
            scrape_job("attacker", replicas, attacker_path, ATTACKER, limits, relabelings),
        ],
    )
    wait_for(lambda: scraped_twice(prom, "victim") and scraped_twice(prom, "attacker"), 30, "two scrapes of each")
    return prom


def measure(prom: Any) -> dict[DeploymentRef, Any]:
    settings = MetricsSettings(max_answer_bytes=CAP, retry=RetryPolicy(max_attempts=1))
    return PrometheusMetricsSource(prom.url, settings=settings).cluster_signals([VICTIM, ATTACKER], datetime.now(UTC))


def test_hostile_bucket_labels_cost_no_other_tenant_its_demand(prometheus_factory: Any, replicas: str) -> None:
    # A Prometheus without label limits (only sampleLimit, as before): the `le` matcher keeps the long edges out of
    # the answer, so no signal fails, and the victim's histogram is read as well.
    prom = victim_and_attacker(prometheus_factory, replicas, "/long", {"sample_limit": 10_000})
    assert prom.query('count(vllm:request_prompt_tokens_bucket{job="attacker"})')["result"][0]["value"][1] == "100"
    measured = measure(prom)
    victim = measured[VICTIM]
    assert victim.scalar(Signal.REQUEST_RATE) == 0.0 and victim.scalar(Signal.REPLICAS_REPORTING) == 1.0
    assert victim.buckets(Signal.PROMPT_TOKENS_BUCKETS)[-1] == (float("inf"), 0.0)
    assert not victim.failed and not measured[ATTACKER].failed


def test_an_answer_over_the_cap_leaves_only_that_signal_missing(prometheus_factory: Any, replicas: str) -> None:
    # Edges no matcher can tell from real ones, too many for the cap: the prompt histogram is missing for the
    # cluster, its error kept for the cycle's problems; every deployment's demand is still read.
    prom = victim_and_attacker(prometheus_factory, replicas, "/many", {"sample_limit": 10_000})
    measured = measure(prom)
    victim = measured[VICTIM]
    assert victim.scalar(Signal.REQUEST_RATE) == 0.0 and victim.scalar(Signal.REPLICAS_REPORTING) == 1.0
    assert Signal.PROMPT_TOKENS_BUCKETS in victim.missing
    assert set(victim.failed) == {Signal.PROMPT_TOKENS_BUCKETS}
    assert Signal.GENERATION_TOKENS_BUCKETS not in victim.missing


def test_the_pod_monitor_limits_fail_a_hostile_scrape_whole_and_pass_the_real_one(
    prometheus_factory: Any, replicas: str, shared_data: Path
) -> None:
    # With dcgm/vllm-podmonitor.yaml's limits the long `le` values fail the attacker's scrape (up == 0, none of its
    # series kept), while the real vLLM scrape, with every target label the PodMonitor adds, passes.
    prom = victim_and_attacker(
        prometheus_factory, replicas, "/long", pod_monitor_limits(), pod_monitor_metric_relabelings()
    )
    up = {r["metric"]["job"]: r["value"][1] for r in prom.query("up")["result"]}
    assert up == {"victim": "1", "attacker": "0"}
    assert not prom.query('{job="attacker",__name__=~"vllm:.*"}')["result"]
    real = (shared_data / "metrics-scrapes" / "vllm_v1_metrics_qwen2.5-0.5b_idle_full_scrape.prom").read_text()
    kept = prom.query('count({job="victim",__name__=~"vllm:.*"})')["result"][0]["value"][1]
    assert int(kept) == sum(1 for line in real.splitlines() if line.startswith("vllm:"))


def test_a_lora_replica_under_load_passes_the_pod_monitor_whole(prometheus_factory: Any, shared_data: Path) -> None:
    # Found in review: vLLM V1 with LoRA exports vllm:lora_requests_info, its waiting_lora_adapters label one
    # comma-separated list of every adapter waiting (40 adapters: 1,159 characters, longer under more load), past
    # labelValueLengthLimit: up == 0, every series of the replica dropped, its demand unknown when it mattered most.
    # The PodMonitor drops that metric (gridshift reads none of its labels) before the limits are checked: the
    # control job (limits, no relabeling) shows the limit alone would fail it, so the order is Prometheus's own.
    real = (shared_data / "metrics-scrapes" / "vllm_v1_metrics_qwen2.5-0.5b_idle_full_scrape.prom").read_bytes()
    adapters = ",".join(f"customer-{i:04d}-support-bot-v2" for i in range(40))
    lora = (
        f'vllm:lora_requests_info{{max_lora="8",running_lora_adapters="customer-0000-support-bot-v2",'
        f'waiting_lora_adapters="{adapters}"}} 1.7e+09\n'
    ).encode()
    assert len(adapters) > pod_monitor_limits()["label_value_length_limit"]
    server, address = exporter({"/lora": real + lora})
    try:
        limits = pod_monitor_limits()
        prom = prometheus_factory(
            {},
            extra_scrape_configs=[
                scrape_job("lora", address, "/lora", VICTIM, limits, pod_monitor_metric_relabelings()),
                scrape_job("control", address, "/lora", ATTACKER, limits),
            ],
        )
        wait_for(lambda: scraped_twice(prom, "lora") and scraped_twice(prom, "control"), 30, "two scrapes of each")
        up = {r["metric"]["job"]: r["value"][1] for r in prom.query("up")["result"]}
        assert up == {"lora": "1", "control": "0"}
        assert not prom.query('{__name__="vllm:lora_requests_info"}')["result"]
        kept = prom.query('count({job="lora",__name__=~"vllm:.*"})')["result"][0]["value"][1]
        assert int(kept) == sum(1 for line in real.splitlines() if line.startswith(b"vllm:"))
        settings = MetricsSettings(retry=RetryPolicy(max_attempts=1))
        measured = PrometheusMetricsSource(prom.url, settings=settings).cluster_signals([VICTIM], datetime.now(UTC))
        assert measured[VICTIM].scalar(Signal.REPLICAS_REPORTING) == 1.0 and not measured[VICTIM].failed
    finally:
        server.shutdown()
        server.server_close()
