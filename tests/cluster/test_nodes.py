"""Regional clusters expose fake GPU nodes with the labels and capacity of the world file."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import kubectl_json

pytestmark = pytest.mark.cluster

EXPECTED = {
    "eu-de": {"NVIDIA-H100-80GB-HBM3": 4},
    "eu-fr": {"NVIDIA-H100-80GB-HBM3": 2, "NVIDIA-L40S": 4},
    "us-tx": {"NVIDIA-A100-SXM4-80GB": 8},
}


def test_world_has_hub_and_three_regions(control_planes: Any) -> None:
    assert control_planes.hub == "hub"
    assert sorted(control_planes.regions) == ["eu-de", "eu-fr", "us-tx"]
    for path in control_planes.kubeconfigs.values():
        assert path.is_file()


@pytest.mark.parametrize("region", sorted(EXPECTED))
def test_gpu_nodes_visible_with_kubectl(control_planes: Any, region: str) -> None:
    nodes = kubectl_json(control_planes, region, "get", "nodes")["items"]
    by_product: dict[str, int] = {}
    for n in nodes:
        labels = n["metadata"]["labels"]
        assert labels["topology.kubernetes.io/region"] == region
        assert labels["topology.kubernetes.io/zone"].startswith(region)
        assert labels["type"] == "kwok"
        assert n["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
        assert n["status"]["capacity"]["nvidia.com/gpu"] == "8"
        assert n["status"]["allocatable"]["nvidia.com/gpu"] == "8"
        ready = [c for c in n["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", n["metadata"]["name"]
        product = labels["nvidia.com/gpu.product"]
        by_product[product] = by_product.get(product, 0) + 1
    assert by_product == EXPECTED[region]

    # and the human-facing view works too
    out = control_planes.kubectl(
        region,
        "get",
        "nodes",
        "-L",
        "nvidia.com/gpu.product",
        "-o",
        "custom-columns=N:.metadata.name,G:.status.capacity.nvidia\\.com/gpu",
    ).stdout
    assert f"{region}-" in out


def test_hub_has_no_gpus(control_planes: Any) -> None:
    nodes = kubectl_json(control_planes, "hub", "get", "nodes")["items"]
    assert nodes, "hub should have one plain node"
    for n in nodes:
        assert "nvidia.com/gpu" not in n["status"]["capacity"]


def test_python_kubernetes_client_reads_kubeconfig(control_planes: Any) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    api = kubernetes.client.CoreV1Api(
        kubernetes.config.new_client_from_config(config_file=str(control_planes.kubeconfigs["us-tx"]))
    )
    nodes = api.list_node(label_selector="nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB").items
    assert len(nodes) == 8
    total = sum(int(n.status.allocatable["nvidia.com/gpu"]) for n in nodes)
    assert total == 64
    version = kubernetes.client.VersionApi(api.api_client).get_code()
    assert version.git_version.startswith("v1.36")
