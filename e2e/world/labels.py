"""Every label key and label value convention the world shares with the operator, in one place.

Pod labels are the ones the operator's actuation layer puts on replica pods
(gridshift.actuation.labels); the Prometheus label names are the ones its signals layer queries
(gridshift.signals.labels). They are restated here rather than imported so the world keeps
working while those modules change; tests/world/test_labels.py fails when the two drift apart.
"""

from __future__ import annotations

import re

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "gridshift"
DEPLOYMENT = "gridshift.dev/deployment"
"""Pod label: `<namespace>.<name>` of the InferenceDeployment on the hub (gridshift.actuation.labels)."""
DEPLOYMENT_NAMESPACE = "gridshift.dev/deployment-namespace"
"""Pod label: the InferenceDeployment's namespace on the hub."""
GPU_TYPE = "gridshift.dev/gpu-type"
"""Pod label: the GPU product the replica runs on (gridshift.api.labels.GPU_TYPE)."""
CLUSTER = "gridshift.dev/cluster"
"""Pod label: the RegionalCluster name, when the operator sets it (else the kubeconfig name is used)."""
GPU_PRODUCT_NODE_LABEL = "nvidia.com/gpu.product"
GPU_RESOURCE = "nvidia.com/gpu"

MANAGED_POD_SELECTOR = f"{MANAGED_BY}={MANAGED_BY_VALUE}"
"""Label selector of the pods the world serves as vLLM replicas."""

PROM_DEPLOYMENT_LABEL = "gridshift_dev_deployment"
"""Target label a PodMonitor copies from the pod label `gridshift.dev/deployment` (docs/signals.md)."""
PROM_GPU_TYPE_LABEL = "gridshift_dev_gpu_type"
"""Target label a PodMonitor copies from the pod label `gridshift.dev/gpu-type` (dcgm/vllm-podmonitor.yaml)."""
PROM_CLUSTER_LABEL = "cluster"
PROM_REGION_LABEL = "region"

CRD_GROUP = "gridshift.dev"
CRD_VERSION = "v1alpha1"
CRD_PLURAL_DEPLOYMENTS = "inferencedeployments"
CRD_PLURAL_CLUSTERS = "regionalclusters"


def deployment_key(namespace: str, name: str) -> str:
    """The world's key of one InferenceDeployment, also the Prometheus `gridshift_dev_deployment` value."""
    return f"{namespace}.{name}"


def deployment_key_from_pod_labels(labels: dict[str, str]) -> str | None:
    """`<ns>.<name>` from a replica pod's labels; None when the pod names no deployment.

    The operator's label already holds `<ns>.<name>`; a bare name (a hand-made pod) is completed
    with the deployment-namespace label when present.
    """
    value = labels.get(DEPLOYMENT)
    if not value:
        return None
    namespace = labels.get(DEPLOYMENT_NAMESPACE)
    return deployment_key(namespace, value) if namespace and "." not in value else value


def dcgm_model_name(gpu_product: str) -> str:
    """dcgm-exporter's `modelName` (NVML's name) for a node label value such as NVIDIA-H100-80GB-HBM3.

    GPU feature discovery replaces spaces by dashes; NVML names keep dashes inside part numbers
    (e.g. 'NVIDIA A100-SXM4-80GB'), so known products are mapped and others de-dashed.
    """
    known = {
        "NVIDIA-H100-80GB-HBM3": "NVIDIA H100 80GB HBM3",
        "NVIDIA-H200": "NVIDIA H200",
        "NVIDIA-A100-SXM4-80GB": "NVIDIA A100-SXM4-80GB",
        "NVIDIA-A100-SXM4-40GB": "NVIDIA A100-SXM4-40GB",
        "NVIDIA-L40S": "NVIDIA L40S",
        "NVIDIA-L4": "NVIDIA L4",
        "Tesla-T4": "Tesla T4",
    }
    return known.get(gpu_product, re.sub(r"-", " ", gpu_product))
