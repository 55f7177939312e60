"""The exporters speak exactly the metric names, types, buckets and labels of the real systems."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e.world import labels as L
from e2e.world import vllm_metrics as vm
from e2e.world.fleet import LoadSpec
from e2e.world.profiles import H100
from e2e.world.world import World, WorldSettings
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from .conftest import fake_cluster, managed_pod


def _families(text: str) -> dict[str, tuple[str, str, list[Sample]]]:
    return {f.name: (f.type, f.documentation, f.samples) for f in text_string_to_metric_families(text)}


@pytest.fixture(scope="module")
def real_vllm(shared_data: Path) -> dict[str, tuple[str, str, list[Sample]]]:
    path = next((shared_data / "metrics-scrapes").glob("vllm_v1_metrics_*.prom"))
    return _families(path.read_text())


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    cluster = fake_cluster("eu-de", nodes=2, gpus_per_node=4)
    cluster.add_pod(managed_pod("chat-a", node="gpu-0"))
    cluster.add_pod(managed_pod("chat-b", node="gpu-1", gpus=2, created="2024-06-03T00:00:01Z"))
    settings = WorldSettings(speed=360, default_load=LoadSpec(rate_per_s=8))
    with World(settings, readers={"eu-de": cluster}) as running:
        running.advance_to(running.sim_seconds())
        yield running


def _scrape(world: World, path: str) -> str:
    return httpx.get(world.exporters["eu-de"].url + path, timeout=5).text


def test_vllm_families_match_the_real_scrape(world: World, real_vllm: dict[str, tuple[str, str, list[Sample]]]) -> None:
    ours = _families(_scrape(world, "/metrics/vllm"))
    names = [
        vm.NUM_REQUESTS_RUNNING[0],
        vm.NUM_REQUESTS_WAITING[0],
        vm.KV_CACHE_USAGE[0],
        vm.PROMPT_TOKENS[0],
        vm.GENERATION_TOKENS[0],
        vm.REQUEST_SUCCESS[0],
        *(h.name for h in vm.HISTOGRAMS),
    ]
    for name in names:
        assert name in real_vllm, f"{name} is not in the real vLLM scrape"
        kind, doc, real_samples = real_vllm[name]
        our_kind, our_doc, our_samples = ours[name]
        assert (our_kind, our_doc) == (kind, doc), name
        real_suffixes = {s.name for s in real_samples}
        assert {s.name for s in our_samples} == real_suffixes, name
        # vLLM's labels plus the per-pod target labels, nothing else.
        real_labels = {k for s in real_samples for k in s.labels}
        our_labels = {k for s in our_samples for k in s.labels}
        assert our_labels == real_labels | {"namespace", "pod", L.PROM_DEPLOYMENT_LABEL, L.PROM_GPU_TYPE_LABEL}, name
        real_le = [s.labels["le"] for s in real_samples if "le" in s.labels]
        our_le = [s.labels["le"] for s in our_samples if "le" in s.labels and s.labels["pod"] == "chat-a"]
        assert our_le == real_le, name
    finished = {s.labels["finished_reason"] for s in ours[vm.REQUEST_SUCCESS[0]][2]}
    assert finished == {s.labels["finished_reason"] for s in real_vllm[vm.REQUEST_SUCCESS[0]][2]}


def test_vllm_series_carry_the_pod_and_deployment(world: World) -> None:
    samples = _families(_scrape(world, "/metrics/vllm"))["vllm:num_requests_running"][2]
    assert {
        (s.labels["namespace"], s.labels["pod"], s.labels[L.PROM_DEPLOYMENT_LABEL], s.labels["model_name"])
        for s in samples
    } == {("workloads", "chat-a", "default.chat", "llama-3-8b"), ("workloads", "chat-b", "default.chat", "llama-3-8b")}
    # The GPU type the PodMonitor copies from the pod label (here the node's product: these pods lack the label).
    assert {s.labels[L.PROM_GPU_TYPE_LABEL] for s in samples} == {H100}


def test_dcgm_series_match_the_real_exporter(world: World, shared_data: Path) -> None:
    real_text = (shared_data / "metrics-scrapes" / "dcgm_8xH100_eks_sampled_with_vllm_pod_labels.prom").read_text()
    real = [
        s for f in text_string_to_metric_families(real_text) for s in f.samples if s.name == "DCGM_FI_DEV_POWER_USAGE"
    ]
    real_held = {k for s in real if "pod" in s.labels for k in s.labels}
    real_idle = {k for s in real if "pod" not in s.labels for k in s.labels}
    text = _scrape(world, "/metrics/dcgm")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["DCGM_FI_DEV_POWER_USAGE"].type == "gauge"
    assert families["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"].type == "counter"
    # No `_total` suffix on dcgm-exporter's counter, unlike prometheus_client's.
    assert re.search(r"^DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION\{", text, flags=re.M)
    power = families["DCGM_FI_DEV_POWER_USAGE"].samples
    assert len(power) == 8  # every GPU of both nodes
    held = [s for s in power if "pod" in s.labels]
    assert {k for s in held for k in s.labels} == real_held
    assert {k for s in power if "pod" not in s.labels for k in s.labels} == real_idle
    assert sorted(s.labels["pod"] for s in held) == ["chat-a", "chat-b", "chat-b"]
    assert {s.labels["modelName"] for s in power} == {"NVIDIA H100 80GB HBM3"}
    assert len({s.labels["UUID"] for s in power}) == 8


def test_idle_gpus_draw_idle_power_and_busy_ones_follow_the_replica(world: World) -> None:
    text = _scrape(world, "/metrics/dcgm")
    power = {f.name: f for f in text_string_to_metric_families(text)}["DCGM_FI_DEV_POWER_USAGE"].samples
    idle = [s.value for s in power if "pod" not in s.labels]
    assert idle and all(v == pytest.approx(75.5) for v in idle)
    with world.fleet.lock:
        replica = world.fleet.replicas["eu-de/workloads/chat-b"]
        replica_watts = float(world.fleet.engine.power_w[replica.slot])
    chat_b = [s.value for s in power if s.labels.get("pod") == "chat-b"]
    # A two-GPU replica's power is split over its GPUs (read at slightly different ticks).
    assert sum(chat_b) == pytest.approx(replica_watts, rel=0.5)
    assert chat_b[0] == pytest.approx(chat_b[1])


def test_labels_agree_with_the_operator() -> None:
    actuation = pytest.importorskip("gridshift.actuation.labels")
    signals = pytest.importorskip("gridshift.signals.labels")
    assert (L.MANAGED_BY, L.MANAGED_BY_VALUE) == (actuation.MANAGED_BY, actuation.MANAGED_BY_VALUE)
    assert (L.DEPLOYMENT, L.DEPLOYMENT_NAMESPACE) == (actuation.DEPLOYMENT, actuation.DEPLOYMENT_NAMESPACE)
    assert (L.GPU_PRODUCT_NODE_LABEL, L.GPU_RESOURCE) == (actuation.GPU_PRODUCT_NODE_LABEL, actuation.GPU_RESOURCE)
    assert signals.LabelScheme().deployment_label == L.PROM_DEPLOYMENT_LABEL
    api_labels = pytest.importorskip("gridshift.api.labels")
    metrics = pytest.importorskip("gridshift.service.metrics")
    assert (L.GPU_TYPE, L.PROM_GPU_TYPE_LABEL) == (api_labels.GPU_TYPE, metrics.GPU_TYPE_LABEL)
    assert L.deployment_key("ns", "name") == signals.deployment_label_value("ns", "name")
