"""The world on real control planes (e2e/cluster): a hand-scaled vLLM Deployment, read through Prometheus.

Marked `cluster`; GRIDSHIFT_SKIP_CLUSTER=1 skips it.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from e2e.world import labels as L
from e2e.world.fleet import LoadSpec
from e2e.world.kube import KwokctlClusterPower
from e2e.world.prometheus import scrape_configs
from e2e.world.world import World, WorldSettings

from gridshift.signals.labels import DeploymentRef, LabelScheme
from gridshift.signals.metrics import DeploymentSignals, PrometheusMetricsSource
from gridshift.signals.promql import PER_BUCKET_SIGNALS, PER_POD_SIGNALS, QueryWindows, Signal
from gridshift.signals.settings import MetricsSettings

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "gridshift-workloads"
DEPLOYMENT = ("ml-serving", "llama3-8b-chat")
WINDOW_S = 20
H100 = "NVIDIA-H100-80GB-HBM3"


def _wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as error:
            last = error
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def vllm_deployment(cluster: str, replicas: int, name: str = "llama3-8b-chat-h100") -> dict[str, Any]:
    labels = {
        L.MANAGED_BY: L.MANAGED_BY_VALUE,
        L.DEPLOYMENT: DEPLOYMENT[1],
        L.DEPLOYMENT_NAMESPACE: DEPLOYMENT[0],
        L.CLUSTER: cluster,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {L.DEPLOYMENT: DEPLOYMENT[1], L.CLUSTER: cluster}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {L.GPU_PRODUCT_NODE_LABEL: H100},
                    "containers": [
                        {
                            "name": "vllm",
                            "image": "vllm/vllm-openai:v0.11.0",
                            "args": [
                                "--model",
                                "meta-llama/Meta-Llama-3-8B-Instruct",
                                "--served-model-name",
                                "llama3-8b-chat",
                                "--max-num-seqs",
                                "256",
                            ],
                            "resources": {"limits": {L.GPU_RESOURCE: "1"}, "requests": {L.GPU_RESOURCE: "1"}},
                        }
                    ],
                },
            },
        },
    }


@pytest.fixture(scope="module")
def world(control_planes: Any) -> Iterator[World]:
    cluster_world = control_planes
    for cluster in ("eu-de", "eu-fr"):
        cluster_world.kubectl(cluster, "create", "namespace", NAMESPACE, check=False)
        cluster_world.apply(cluster, [vllm_deployment(cluster, 2)])
    power = KwokctlClusterPower(str(cluster_world.bin_dir / "kwokctl"), env=cluster_world.env())
    settings = WorldSettings(speed=180, default_load=LoadSpec(rate_per_s=32.0), poll_interval_s=0.5)
    simulated = World.from_kubeconfigs(
        settings, kubeconfigs=cluster_world.kubeconfigs, hub=cluster_world.hub, power=power
    ).start()
    try:
        yield simulated
    finally:
        simulated.stop()
        for cluster in ("eu-de", "eu-fr"):
            cluster_world.kubectl(cluster, "delete", "namespace", NAMESPACE, "--wait=false", check=False)


@pytest.fixture(scope="module")
def prometheus(world: World) -> Iterator[Any]:
    server = importlib.import_module("gscluster.prometheus").start_prometheus(
        scrape_interval="1s", extra_scrape_configs=scrape_configs(world.endpoints()["exporters"])
    )
    try:
        yield server
    finally:
        server.stop()


def _scalars(signals: DeploymentSignals) -> dict[Signal, float]:
    keyed = PER_POD_SIGNALS | PER_BUCKET_SIGNALS
    return {s: v for s in Signal if s not in keyed and (v := signals.scalar(s)) is not None}


def _replicas(world: World, cluster: str) -> set[str]:
    with world.fleet.lock:
        return {r.pod.name for r in world.fleet.replicas.values() if r.cluster == cluster}


def test_hand_scaled_deployment_reads_through_prometheus(world: World, prometheus: Any) -> None:
    _wait(lambda: len(_replicas(world, "eu-de")) == 2, 60, "2 eu-de replicas in the world")
    time.sleep(5)
    with world.fleet.lock:
        slots = np.array([r.slot for r in world.fleet.replicas.values() if r.cluster == "eu-de"])
        marks = world.fleet.engine.batch_marks(slots)
    time.sleep(WINDOW_S)
    windows = QueryWindows(rate_seconds=WINDOW_S, energy_seconds=WINDOW_S)
    source = PrometheusMetricsSource(
        prometheus.url, settings=MetricsSettings(labels=LabelScheme(cluster_label="cluster"), windows=windows)
    )
    ref = DeploymentRef(*DEPLOYMENT, NAMESPACE, "llama3-8b-chat", cluster="eu-de")
    signals = source.deployment_signals(ref, datetime.now(UTC))
    with world.fleet.lock:
        batch = world.fleet.engine.mean_batch(slots, marks)
    assert not signals.missing, f"no data for {signals.missing}"
    values = _scalars(signals)
    # 32 requests/s split evenly over 4 replicas in two clusters: eu-de gets half.
    assert values[Signal.REQUEST_RATE] == pytest.approx(16.0, rel=0.35)
    assert batch > 12, "the load should keep the replicas batching"
    assert values[Signal.GENERATION_TOKEN_RATE] / values[Signal.REQUEST_RATE] == pytest.approx(211, rel=0.35)
    performance = world.fleet.catalog.performance(H100, 1, "meta-llama/Meta-Llama-3-8B-Instruct")
    step = performance.model.step_time_ms(batch, 1260) / 1000
    assert step * 0.8 <= values[Signal.ITL_P95] <= step + 2048 / performance.model.prefill_tokens_per_s + 0.05
    assert 1155 / performance.model.prefill_tokens_per_s < values[Signal.TTFT_P95] < 15
    watts = signals.per_pod(Signal.WATTS_PER_REPLICA)
    assert set(watts) == _replicas(world, "eu-de")
    assert all(performance.model.idle_power_watts < w <= performance.prefill_power_watts for w in watts.values())
    expected = performance.joules_per_output_token(batch, 1260, 1155 / 211)
    assert values[Signal.JOULES_PER_TOKEN] == pytest.approx(expected, rel=0.2)


def test_scaling_by_hand_adds_and_removes_replicas(world: World, control_planes: Any, prometheus: Any) -> None:
    control_planes.kubectl("eu-de", "-n", NAMESPACE, "scale", "deployment/llama3-8b-chat-h100", "--replicas=3")
    pods = _wait(lambda: len(_replicas(world, "eu-de")) == 3 and _replicas(world, "eu-de"), 60, "a third replica")
    query = f'count(DCGM_FI_DEV_POWER_USAGE{{cluster="eu-de",namespace="{NAMESPACE}"}})'
    _wait(lambda: prometheus.query(query)["result"][0]["value"][1] == "3", 30, "3 held GPUs in Prometheus")
    control_planes.kubectl("eu-de", "-n", NAMESPACE, "scale", "deployment/llama3-8b-chat-h100", "--replicas=2")
    _wait(lambda: len(_replicas(world, "eu-de")) == 2, 60, "back to 2 replicas")
    assert _replicas(world, "eu-de") < pods


def test_routing_weights_come_from_the_hub(world: World, control_planes: Any) -> None:
    hub = control_planes.hub
    control_planes.kubectl(hub, "apply", "-f", str(REPO / "crds" / "gridshift.dev_inferencedeployments.yaml"))
    control_planes.kubectl(hub, "create", "namespace", DEPLOYMENT[0], check=False)
    _wait(
        lambda: control_planes.kubectl(
            hub, "apply", "-f", str(REPO / "examples" / "inferencedeployment-llama3-8b.yaml")
        ),
        30,
        "the InferenceDeployment to apply",
    )
    status = {"status": {"routing": [{"cluster": "eu-de", "weight": 80}, {"cluster": "eu-fr", "weight": 20}]}}
    control_planes.kubectl(
        hub,
        "-n",
        DEPLOYMENT[0],
        "patch",
        "inferencedeployment",
        DEPLOYMENT[1],
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )
    key = L.deployment_key(*DEPLOYMENT)
    _wait(lambda: world.fleet.routing.get(key) == {"eu-de": 80.0, "eu-fr": 20.0}, 20, "routing read from the hub")
    with world.fleet.lock:
        slots, weights = world.fleet.replica_weights(key)
        by_cluster: dict[str, float] = {}
        for replica in world.fleet.replicas.values():
            if replica.deployment == key:
                share = float(weights[list(slots).index(replica.slot)])
                by_cluster[replica.routing_cluster] = by_cluster.get(replica.routing_cluster, 0.0) + share
    assert by_cluster["eu-de"] / sum(by_cluster.values()) == pytest.approx(0.8)


def test_exporter_down_is_a_down_target(world: World, prometheus: Any) -> None:
    up = 'up{job="vllm-eu-fr"}'
    _wait(lambda: prometheus.query(up)["result"][0]["value"][1] == "1", 20, "target up")
    world.set_exporter_down("eu-fr", True)
    _wait(lambda: prometheus.query(up)["result"][0]["value"][1] == "0", 20, "target down")
    world.set_exporter_down("eu-fr", False)
    _wait(lambda: prometheus.query(up)["result"][0]["value"][1] == "1", 20, "target up again")


def test_readiness_delay_on_a_real_pod(world: World, control_planes: Any) -> None:
    pod = sorted(_replicas(world, "eu-fr"))[0]

    def ready() -> str:
        out = control_planes.kubectl("eu-fr", "-n", NAMESPACE, "get", "pod", pod, "-o", "json").stdout
        conditions = json.loads(out)["status"].get("conditions", [])
        return str(next(c["status"] for c in conditions if c["type"] == "Ready"))

    key = f"eu-fr/{NAMESPACE}/{pod}"

    def routable() -> bool:
        with world.fleet.lock:
            return world.fleet.replicas[key].routable

    world.delay_readiness("eu-fr", NAMESPACE, pod, sim_seconds=1800)  # 10 real s at 180x
    # The vLLM process runs on (scraped, finishing its work); it only takes no new request while NotReady.
    assert pod in _replicas(world, "eu-fr") and not routable()
    assert ready() == "False"
    _wait(lambda: ready() == "True" and routable(), 40, "the pod Ready and serving again")


def test_apiserver_stop_and_restart(world: World, control_planes: Any) -> None:
    before = _replicas(world, "eu-fr")
    world.set_apiserver_down("eu-fr", True)
    try:
        with pytest.raises(Exception):  # noqa: B017 - any client error: the apiserver is gone
            control_planes.kubectl("eu-fr", "get", "nodes", timeout=15)
        _wait(lambda: "eu-fr" in world.cluster_errors, 20, "the world to notice")
        # The data plane outlives its control plane: replicas keep serving.
        assert _replicas(world, "eu-fr") == before
        with world.fleet.lock:
            slot = world.fleet.replicas[f"eu-fr/{NAMESPACE}/{sorted(before)[0]}"].slot
            tokens = float(world.fleet.engine.generation_tokens[slot])
        _wait(lambda: float(world.fleet.engine.generation_tokens[slot]) > tokens, 20, "tokens still flowing")
    finally:
        world.set_apiserver_down("eu-fr", False)
    _wait(lambda: "eu-fr" not in world.cluster_errors, 90, "the apiserver back")
    assert httpx.get(world.control.url + "/faults").json()["apiserversDown"] == []


def test_chart_recording_rules_compute_joules_per_token_from_the_worlds_metrics(world: World) -> None:
    """The chart's recording rules, loaded into the real Prometheus, agree with the operator's own query."""
    rules = (
        Path(__file__).resolve().parents[2] / "charts" / "gridshift" / "files" / "prometheus" / "gridshift.rules.yaml"
    )
    server = importlib.import_module("gscluster.prometheus").start_prometheus(
        scrape_interval="1s", extra_scrape_configs=scrape_configs(world.endpoints()["exporters"]), rule_files=[rules]
    )
    try:
        _wait(lambda: len(_replicas(world, "eu-de")) >= 2, 60, "eu-de replicas in the world")
        selector = f'{{gridshift_dev_deployment="{DEPLOYMENT[0]}.{DEPLOYMENT[1]}",region="eu-de"}}'

        def recorded() -> float | None:
            answer = server.query(f"gridshift_deployment_region:joules_per_token:ratio_rate15m{selector}")["result"]
            return float(answer[0]["value"][1]) if answer else None

        _wait(lambda: recorded() is not None, 240, "the recording rule to produce a value")
        windows = QueryWindows(rate_seconds=WINDOW_S, energy_seconds=900)
        source = PrometheusMetricsSource(
            server.url, settings=MetricsSettings(labels=LabelScheme(cluster_label="cluster"), windows=windows)
        )
        ref = DeploymentRef(*DEPLOYMENT, NAMESPACE, "llama3-8b-chat", cluster="eu-de")
        direct = source.deployment_signals(ref, datetime.now(UTC)).scalar(Signal.JOULES_PER_TOKEN)
        value = recorded()
        assert direct is not None and value is not None
        assert value == pytest.approx(direct, rel=0.25)
        assert 0.02 < value < 5, "J/token of a batching H100 replica"
    finally:
        server.stop()
