"""dcgm/: the counters CSV has dcgm-exporter's format and the fields gridshift reads, which real
scrapes (../shared/data/metrics-scrapes/dcgm_*.prom) contain; the scrape configs keep the labels the
operator's queries and recording rules join on."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gridshift.signals import promql
from gridshift.signals.labels import POD_LABEL_KEY, LabelScheme
from gridshift_dev.chart import GPU_TYPE_LABEL, REGION_LABEL

from .conftest import REPO_ROOT

DCGM = REPO_ROOT / "dcgm"
FIELDS_READ = {
    "DCGM_FI_DEV_POWER_USAGE": "gauge",
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": "counter",
    "DCGM_FI_DEV_GPU_UTIL": "gauge",
    "DCGM_FI_DEV_SM_CLOCK": "gauge",
    "DCGM_FI_DEV_FB_USED": "gauge",
    "DCGM_FI_DEV_FB_FREE": "gauge",
}


def counters() -> dict[str, tuple[str, str]]:
    """Field -> (Prometheus type, help), parsed the way dcgm-exporter does: '#' comments, 3 columns."""
    rows = {}
    lines = (DCGM / "gridshift-counters.csv").read_text().splitlines()
    for row in csv.reader(line for line in lines if line.strip() and not line.startswith("#")):
        assert len(row) == 3, row
        field, kind, help_text = (cell.strip() for cell in row)
        rows[field] = (kind, help_text)
    return rows


def test_counters_csv_has_exactly_the_fields_we_read_with_their_types() -> None:
    assert {field: kind for field, (kind, _) in counters().items()} == FIELDS_READ
    assert all(help_text for _, help_text in counters().values())


def test_every_dcgm_metric_the_operator_queries_is_collected() -> None:
    queried = {value for name, value in vars(promql).items() if name.startswith("DCGM_") and isinstance(value, str)}
    assert queried and queried <= set(counters())


def test_fields_exist_in_real_scrapes_with_pod_attribution(shared_data: Path) -> None:
    scrapes = sorted((shared_data / "metrics-scrapes").glob("dcgm_*.prom"))
    assert len(scrapes) >= 4
    seen: set[str] = set()
    for scrape in scrapes:
        text = scrape.read_text()
        seen |= set(re.findall(r"^(DCGM_FI_\w+)\{", text, re.M))
    assert set(FIELDS_READ) <= seen, set(FIELDS_READ) - seen
    attributed = (shared_data / "metrics-scrapes" / "dcgm_8xH100_eks_sampled_with_vllm_pod_labels.prom").read_text()
    power = [line for line in attributed.splitlines() if line.startswith("DCGM_FI_DEV_POWER_USAGE{")]
    with_pod = [line for line in power if re.search(r'[{,]namespace="[^"]+".*[{,]pod="[^"]+"', line)]
    # With DCGM_EXPORTER_KUBERNETES=true the GPU held by the vLLM pod carries namespace and pod: the join keys.
    scheme = LabelScheme()
    assert with_pod and f'{scheme.dcgm_pod_label}="vllm-' in with_pod[0]


def test_exporter_values_turn_on_pod_attribution_and_our_counters() -> None:
    values = yaml.safe_load((DCGM / "values-dcgm-exporter.yaml").read_text())
    env = {e["name"]: e["value"] for e in values["extraEnv"]}
    assert env["DCGM_EXPORTER_KUBERNETES"] == "true"
    mount = values["extraVolumeMounts"][0]["mountPath"]
    assert values["arguments"] == ["-f", f"{mount}/gridshift-counters.csv"]
    assert values["extraConfigMapVolumes"][0]["name"] == values["extraVolumeMounts"][0]["name"]


def test_service_monitor_honours_the_workload_labels_and_adds_the_region() -> None:
    monitor = yaml.safe_load((DCGM / "servicemonitor.yaml").read_text())
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["honorLabels"] is True
    assert REGION_LABEL in {r["targetLabel"] for r in endpoint["relabelings"]}


def test_vllm_pod_monitor_copies_the_pod_labels_the_queries_select_on() -> None:
    monitor = yaml.safe_load((DCGM / "vllm-podmonitor.yaml").read_text())
    relabelings = monitor["spec"]["podMetricsEndpoints"][0]["relabelings"]
    copied = {r["targetLabel"]: r.get("sourceLabels", []) for r in relabelings}

    def meta(label_key: str) -> str:
        return "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", label_key)

    assert copied[LabelScheme().deployment_label] == [meta(POD_LABEL_KEY)]
    assert copied[GPU_TYPE_LABEL] == [meta("gridshift.dev/gpu-type")]
    assert REGION_LABEL in copied


def test_the_pod_monitor_scrapes_only_pods_that_name_their_deployment() -> None:
    # Review (4 December 2026): it selected on managed-by alone. A pod without the deployment label got no
    # target label, so a series it exported with gridshift_dev_deployment="<another tenant's>" counted as
    # that deployment's demand and power. Only labelled pods are scraped, and their own label never wins.
    monitor = yaml.safe_load((DCGM / "vllm-podmonitor.yaml").read_text())
    expressions = monitor["spec"]["selector"].get("matchExpressions", [])
    assert {"key": POD_LABEL_KEY, "operator": "Exists"} in expressions
    assert not monitor["spec"]["podMetricsEndpoints"][0].get("honorLabels", False)


@pytest.mark.parametrize("field", sorted(FIELDS_READ))
def test_readme_says_what_each_field_is_for(field: str) -> None:
    readme = (DCGM / "README.md").read_text()
    row = next((line for line in readme.splitlines() if line.startswith(f"| `{field}`")), "")
    assert len(row) > len(field) + 40, f"dcgm/README.md has no table row explaining {field}"


def test_the_pod_monitor_says_to_list_every_workload_namespace() -> None:
    # Review: it scraped gridshift-workloads only, so with the per-tenant workloadNamespace docs/security.md
    # recommends no replica was scraped (no demand, latency or energy series) and nothing said so.
    text = (DCGM / "vllm-podmonitor.yaml").read_text()
    assert "must list every workload namespace" in text and "per-tenant" in text
    assert "list every workload" in (DCGM / "README.md").read_text()


def test_the_pod_monitor_bounds_what_a_replica_may_export(shared_data: Path) -> None:
    # Found in review: a tenant's image exporting 510,000 histogram edges made one Prometheus answer of 64 MiB,
    # which took the operator from 215 to 1,340 MiB (its limit is 1 GiB). The scrape is bounded at the source,
    # far above what a real vLLM exports.
    monitor = yaml.safe_load((DCGM / "vllm-podmonitor.yaml").read_text())
    real = (shared_data / "metrics-scrapes" / "vllm_v1_metrics_qwen2.5-0.5b_idle_full_scrape.prom").read_text()
    samples = sum(1 for line in real.splitlines() if line and not line.startswith("#"))
    assert 10 * samples <= monitor["spec"]["sampleLimit"] <= 20_000


def test_the_pod_monitor_bounds_a_replicas_labels_above_the_real_scrape(shared_data: Path) -> None:
    # Found in review: 1,000 buckets with 70,000-character `le` values, under sampleLimit, made one operator answer
    # too large (Prometheus bounds no label by default). The limits leave the real scrape's labels room (a served
    # model name, 128 at most, a model source, 512, a pod name, 253) and bound a hostile one. Cluster-free; with a
    # real Prometheus: tests/signals/test_tenant_series.py.
    spec = yaml.safe_load((DCGM / "vllm-podmonitor.yaml").read_text())["spec"]
    real = (shared_data / "metrics-scrapes" / "vllm_v1_metrics_qwen2.5-0.5b_idle_full_scrape.prom").read_text()
    series = _samples(real)
    longest_value = max(len(v) for labels in series for v in labels.values())
    longest_name = max(len(k) for labels in series for k in labels)
    most_labels = max(len(labels) for labels in series)
    target_labels = 9  # namespace, pod, container, endpoint, job, instance, and the PodMonitor's three relabelings
    assert (longest_value, longest_name, most_labels) == (26, 24, 25)
    assert 512 <= spec["labelValueLengthLimit"] <= 4096
    assert 2 * longest_name <= spec["labelNameLengthLimit"] <= 256
    assert 1.5 * (most_labels + 1 + target_labels) <= spec["labelLimit"] <= 128


def test_the_pod_monitor_drops_unbounded_lora_labels_and_nothing_gridshift_reads() -> None:
    # Found in review: vllm:lora_requests_info's adapter lists (1,159 characters for 40 adapters) failed a LoRA
    # replica's whole scrape under labelValueLengthLimit. Dropped by name before the limits (a real Prometheus:
    # tests/signals/test_tenant_series.py); no name the operator's queries or the chart's rules read may match.
    endpoint = yaml.safe_load((DCGM / "vllm-podmonitor.yaml").read_text())["spec"]["podMetricsEndpoints"][0]
    drops = [r for r in endpoint["metricRelabelings"] if r["action"] == "drop"]
    assert drops and all(r["sourceLabels"] == ["__name__"] for r in drops)
    read = {m for name in vars(promql) for m in re.findall(r"vllm:\w+", str(getattr(promql, name)))}
    read |= set(
        re.findall(r"vllm:\w+", (REPO_ROOT / "charts/gridshift/files/prometheus/gridshift.rules.yaml").read_text())
    )
    assert "vllm:num_requests_running" in read and "vllm:request_success_total" in read
    dropped = [re.compile(r["regex"]) for r in drops]
    assert any(d.fullmatch("vllm:lora_requests_info") for d in dropped)
    assert not [m for m in read for d in dropped if d.fullmatch(m) or d.fullmatch(m + "_bucket")]


def _samples(text: str) -> list[dict[str, str]]:
    return [dict(s.labels) for family in text_string_to_metric_families(text) for s in family.samples]
