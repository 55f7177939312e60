"""Label keys gridshift puts on member-cluster objects; Prometheus and dcgm-exporter attribution rely on them."""

from __future__ import annotations

import hashlib
import re

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "gridshift"
DEPLOYMENT = "gridshift.dev/deployment"
DEPLOYMENT_NAMESPACE = "gridshift.dev/deployment-namespace"
GPU_TYPE = "gridshift.dev/gpu-type"
CLUSTER = "gridshift.dev/cluster"
SPEC_HASH = "gridshift.dev/spec-hash"
GPU_PRODUCT_NODE_LABEL = "nvidia.com/gpu.product"
GPU_RESOURCE = "nvidia.com/gpu"


def deployment_label_value(namespace: str, name: str) -> str:
    """`<namespace>.<name>` of the InferenceDeployment on the hub (label values may not hold a slash).

    Prometheus sees it as `gridshift_dev_deployment`, the label the signals' PromQL selects on.
    """
    return f"{namespace}.{name}"


def deployment_selector(namespace: str, name: str) -> dict[str, str]:
    """Labels that select every member-cluster object of one InferenceDeployment."""
    return {MANAGED_BY: MANAGED_BY_VALUE, DEPLOYMENT: deployment_label_value(namespace, name)}


def selector_string(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def workload_name(namespace: str, name: str, gpu_type: str) -> str:
    """A DNS-1035 name, unique per (deployment, GPU type), at most 63 characters."""
    digest = hashlib.sha256(f"{namespace}/{name}/{gpu_type}".encode()).hexdigest()[:8]
    stem = re.sub(r"[^a-z0-9-]", "-", f"{name}".lower()).strip("-")[:45] or "idep"
    if not stem[0].isalpha():
        stem = f"gs-{stem}"[:45]
    return f"{stem}-{digest}"
