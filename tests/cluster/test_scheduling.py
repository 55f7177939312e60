"""The real kube-scheduler places GPU pods on the fake nodes; kwok makes them Ready after the delay."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from .helpers import fresh_namespace, is_ready, kubectl_json, pod_condition, wait_for

pytestmark = pytest.mark.cluster


def deployment(name: str, product: str, replicas: int, gpus: int = 1, annotations: dict[str, str] | None = None) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}, "annotations": annotations or {}},
                    "spec": {
                        "nodeSelector": {"nvidia.com/gpu.product": product},
                        "containers": [
                            {
                                "name": "vllm",
                                "image": "vllm/vllm-openai:latest",
                                "resources": {
                                    "requests": {"nvidia.com/gpu": str(gpus), "cpu": "4", "memory": "32Gi"},
                                    "limits": {"nvidia.com/gpu": str(gpus)},
                                },
                            }
                        ],
                    },
                },
            },
        }
    )


def pods(world: Any, cluster: str, ns: str, app: str) -> list[dict[str, Any]]:
    return list(kubectl_json(world, cluster, "get", "pods", "-n", ns, "-l", f"app={app}")["items"])


def test_gpu_deployment_scheduled_and_ready(control_planes: Any) -> None:
    w = control_planes
    ns = fresh_namespace(w, "eu-fr")
    try:
        t0 = time.monotonic()
        w.kubectl("eu-fr", "apply", "-n", ns, "-f", "-", input=deployment("llama", "NVIDIA-L40S", replicas=3))
        # Deployment -> ReplicaSet -> Pods needs the real controller-manager.
        rs = wait_for(
            lambda: kubectl_json(w, "eu-fr", "get", "replicasets", "-n", ns)["items"], 30, "ReplicaSet from kcm"
        )
        assert rs[0]["metadata"]["ownerReferences"][0]["kind"] == "Deployment"

        ready = wait_for(
            lambda: (p := pods(w, "eu-fr", ns, "llama")) and len(p) == 3 and all(is_ready(x) for x in p) and p,
            60,
            "3 Ready pods",
        )
        elapsed = time.monotonic() - t0
        for p in ready:
            node = p["spec"]["nodeName"]
            assert node.startswith("eu-fr-l40s-"), node  # the real scheduler honoured the nodeSelector
            assert p["status"]["podIP"]
            assert pod_condition(p, "PodScheduled")["status"] == "True"  # type: ignore[index]
        # readiness is delayed by the world's ready delay (tests: ~2 s), not instant
        assert elapsed >= 1.5, elapsed

        dep = wait_for(
            lambda: (
                (d := kubectl_json(w, "eu-fr", "get", "deployment", "llama", "-n", ns))["status"].get("readyReplicas")
                == 3
                and d
            ),
            30,
            "deployment status readyReplicas=3",
        )
        assert dep["status"]["availableReplicas"] == 3

        # scale down: kwok removes terminating pods
        w.kubectl("eu-fr", "scale", "deployment", "llama", "-n", ns, "--replicas=1")
        wait_for(lambda: len(pods(w, "eu-fr", ns, "llama")) == 1, 60, "scale-down to 1 pod")
    finally:
        w.kubectl("eu-fr", "delete", "namespace", ns, "--wait=true", "--timeout=90s", check=False)


def test_gpu_capacity_is_enforced(control_planes: Any) -> None:
    """eu-de has 4 x 8 H100: 4 pods of 8 GPUs fit, the 5th stays Pending."""
    w = control_planes
    ns = fresh_namespace(w, "eu-de")
    try:
        w.kubectl(
            "eu-de", "apply", "-n", ns, "-f", "-", input=deployment("big", "NVIDIA-H100-80GB-HBM3", replicas=5, gpus=8)
        )

        def settled() -> list[dict[str, Any]] | None:
            p = pods(w, "eu-de", ns, "big")
            scheduled = [x for x in p if x["spec"].get("nodeName")]
            unsched = [x for x in p if (c := pod_condition(x, "PodScheduled")) and c.get("reason") == "Unschedulable"]
            return p if len(scheduled) == 4 and len(unsched) == 1 else None

        p = wait_for(settled, 60, "4 scheduled + 1 unschedulable")
        nodes = {x["spec"]["nodeName"] for x in p if x["spec"].get("nodeName")}
        assert len(nodes) == 4  # one full node each
        msg = next(pod_condition(x, "PodScheduled")["message"] for x in p if not x["spec"].get("nodeName"))  # type: ignore[index]
        assert "nvidia.com/gpu" in msg
    finally:
        w.kubectl("eu-de", "delete", "namespace", ns, "--wait=true", "--timeout=90s", check=False)


def test_unknown_gpu_product_stays_pending(control_planes: Any) -> None:
    w = control_planes
    ns = fresh_namespace(w, "us-tx")
    try:
        w.kubectl("us-tx", "apply", "-n", ns, "-f", "-", input=deployment("ghost", "NVIDIA-B200", replicas=1))
        pod = wait_for(
            lambda: next(
                (
                    x
                    for x in pods(w, "us-tx", ns, "ghost")
                    if (c := pod_condition(x, "PodScheduled")) and c.get("reason") == "Unschedulable"
                ),
                None,
            ),
            30,
            "Unschedulable condition",
        )
        assert pod["status"]["phase"] == "Pending"
        assert not pod["spec"].get("nodeName")
        assert "node affinity/selector" in pod_condition(pod, "PodScheduled")["message"]  # type: ignore[index]
        time.sleep(2)  # still pending a little later
        (again,) = pods(w, "us-tx", ns, "ghost")
        assert again["status"]["phase"] == "Pending" and not again["spec"].get("nodeName")
    finally:
        w.kubectl("us-tx", "delete", "namespace", ns, "--wait=true", "--timeout=90s", check=False)


def test_per_pod_ready_delay_annotation(control_planes: Any) -> None:
    """A pod can ask for a longer cold start than the world default (kwok stage annotation)."""
    w = control_planes
    ns = fresh_namespace(w, "eu-de")
    try:
        t0 = time.monotonic()
        w.kubectl(
            "eu-de",
            "apply",
            "-n",
            ns,
            "-f",
            "-",
            input=deployment(
                "slow",
                "NVIDIA-H100-80GB-HBM3",
                replicas=1,
                annotations={
                    "pod-ready.stage.kwok.x-k8s.io/delay": "6s",
                    "pod-ready.stage.kwok.x-k8s.io/jitter-delay": "6s",
                },
            ),
        )
        wait_for(lambda: any(x["spec"].get("nodeName") for x in pods(w, "eu-de", ns, "slow")), 30, "scheduled")
        time.sleep(3)
        assert not any(is_ready(x) for x in pods(w, "eu-de", ns, "slow"))
        wait_for(lambda: all(is_ready(x) for x in pods(w, "eu-de", ns, "slow")), 30, "Ready after 6 s")
        assert time.monotonic() - t0 >= 5.5
    finally:
        w.kubectl("eu-de", "delete", "namespace", ns, "--wait=true", "--timeout=90s", check=False)
