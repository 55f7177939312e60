"""Every metric name and label the PromQL builders use exists in real vLLM and DCGM scrapes.

The scrapes are the recorded /metrics bodies in ../shared/data/metrics-scrapes, parsed with
prometheus_client's own exposition parser. Labels that only Prometheus adds (the target labels
`namespace`, `pod` and the relabeled deployment label, see gridshift.signals.labels) are allowed
on vLLM series; DCGM's `namespace`/`pod` must come from the exporter itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gridshift.signals.labels import DeploymentRef, LabelScheme, SelectBy
from gridshift.signals.promql import LEGACY_METRIC_NAMES, QueryWindows, build_queries

SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"')
GROUPING = re.compile(r"\b(?:by|on)\s*\(([^)]*)\)")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

REF = DeploymentRef("prod", "llama", "gridshift-workloads", "Qwen/Qwen2.5-0.5B-Instruct", cluster="eu-de")
SCHEMES = {
    "deployment-label": LabelScheme(),
    "model-name": LabelScheme(select_by=SelectBy.MODEL_NAME),
    "federated": LabelScheme(cluster_label="cluster"),
}


def scrape_samples(path: Path) -> Iterator[tuple[str, frozenset[str]]]:
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            yield sample.name, frozenset(sample.labels)


@pytest.fixture(scope="module")
def vllm_labels(shared_data: Path) -> dict[str, frozenset[str]]:
    labels: dict[str, frozenset[str]] = {}
    for path in (shared_data / "metrics-scrapes").glob("vllm_*.prom"):
        for name, names in scrape_samples(path):
            labels[name] = labels.get(name, frozenset()) | names
    assert labels, "no vLLM scrape found"
    return labels


@pytest.fixture(scope="module")
def dcgm_labels(shared_data: Path) -> dict[str, frozenset[str]]:
    labels: dict[str, frozenset[str]] = {}
    for path in (shared_data / "metrics-scrapes").glob("dcgm_*.prom"):
        for name, names in scrape_samples(path):
            labels[name] = labels.get(name, frozenset()) | names
    assert labels, "no DCGM scrape found"
    return labels


def referenced(scheme: LabelScheme) -> list[tuple[str, frozenset[str], frozenset[str]]]:
    """(metric, matcher labels, labels grouped/joined on in the same query) for every selector."""
    found = []
    for query in build_queries(scheme, REF, QueryWindows()).values():
        grouped = frozenset(
            label.strip() for group in GROUPING.findall(query) for label in group.split(",") if label.strip()
        )
        for metric, matchers in SELECTOR.findall(query):
            found.append((metric, frozenset(MATCHER.findall(matchers)), grouped))
    return found


def test_the_builders_reference_vllm_and_dcgm_metrics() -> None:
    metrics = {metric for metric, _, _ in referenced(LabelScheme())}
    assert any(m.startswith("vllm:") for m in metrics)
    assert {"DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"} <= metrics


@pytest.mark.parametrize("scheme_name", SCHEMES)
def test_every_vllm_metric_and_label_exists_in_the_real_scrape(
    scheme_name: str, vllm_labels: dict[str, frozenset[str]]
) -> None:
    scheme = SCHEMES[scheme_name]
    added_by_prometheus = {scheme.namespace_label, scheme.pod_label, scheme.deployment_label, scheme.cluster_label}
    for metric, matchers, grouped in referenced(scheme):
        if not metric.startswith("vllm:"):
            continue
        base = metric.removesuffix("_bucket")
        if base in LEGACY_METRIC_NAMES:
            # Older name (vLLM <= 0.10); the recorded V1 server exports the name it was renamed to.
            current = LEGACY_METRIC_NAMES[base]
            assert any(name.startswith(current) for name in vllm_labels), f"{current} not in the V1 scrape"
            continue
        assert metric in vllm_labels, f"{metric} is not exported by vLLM (recorded V1 scrape)"
        exported = vllm_labels[metric]
        for label in matchers | (grouped & {"le"}):
            assert label in exported or label in added_by_prometheus, f"{metric} has no label {label!r}"
        if scheme.select_by is SelectBy.MODEL_NAME:
            assert scheme.model_name_label in exported


@pytest.mark.parametrize("scheme_name", SCHEMES)
def test_every_dcgm_metric_and_join_label_exists_in_the_real_scrapes(
    scheme_name: str, dcgm_labels: dict[str, frozenset[str]]
) -> None:
    scheme = SCHEMES[scheme_name]
    # Kubernetes pod mapping (namespace, pod) is applied by dcgm-exporter to every field alike; the
    # H100 scrape shows it on DCGM_FI_DEV_POWER_USAGE.
    mapped = dcgm_labels["DCGM_FI_DEV_POWER_USAGE"]
    for metric, matchers, grouped in referenced(scheme):
        if not metric.startswith("DCGM_"):
            continue
        assert metric in dcgm_labels, f"{metric} is not exported by dcgm-exporter (recorded scrapes)"
        for label in matchers | (grouped - {"le"}):
            if label == scheme.cluster_label:
                continue  # added by a federating Prometheus, by definition not in a scrape
            assert label in mapped, f"DCGM series have no label {label!r}"


def test_the_recorded_h100_scrape_maps_a_gpu_to_a_vllm_pod(shared_data: Path) -> None:
    path = shared_data / "metrics-scrapes" / "dcgm_8xH100_eks_sampled_with_vllm_pod_labels.prom"
    for family in text_string_to_metric_families(path.read_text()):
        if family.name == "DCGM_FI_DEV_POWER_USAGE":
            bound = [s for s in family.samples if s.labels.get("pod", "").startswith("vllm-")]
            assert len(bound) == 1 and bound[0].value == pytest.approx(113.611)
            assert bound[0].labels["namespace"] == "dynamo-workload"
            return
    pytest.fail("no DCGM_FI_DEV_POWER_USAGE family in the H100 scrape")


def test_docs_show_the_queries_the_builders_produce(repo_root: Path) -> None:
    docs = (repo_root / "docs" / "signals.md").read_text()
    ref = DeploymentRef("prod", "llama", "gridshift-workloads", "meta-llama/Llama-3.1-8B-Instruct")
    for signal, query in build_queries(LabelScheme(), ref, QueryWindows()).items():
        assert f"`{signal.value}`\n\n```promql\n{query}\n```" in docs, f"docs/signals.md is stale for {signal}"
