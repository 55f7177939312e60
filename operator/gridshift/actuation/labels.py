"""Names, labels and annotations of the member-cluster objects of one InferenceDeployment.

The keys and the value rules are gridshift's API (gridshift.api.labels); this module applies them to
the objects actuation renders.
"""

from __future__ import annotations

import re

from gridshift.api.labels import (
    CLUSTER,
    DEPLOYMENT,
    DEPLOYMENT_NAMESPACE,
    GENERATION,
    GPU_PRODUCT_NODE_LABEL,
    GPU_RESOURCE,
    GPU_TYPE,
    HASH_HEX_DIGITS,
    MANAGED_BY,
    MANAGED_BY_VALUE,
    MAX_NUM_SEQS_SINCE,
    OWNER,
    OWNER_UID,
    SPEC_HASH,
    VARIANT,
    deployment_label_value,
    deployment_label_values,
    digest,
    owner_value,
)

__all__ = [
    "CLUSTER",
    "DEPLOYMENT",
    "DEPLOYMENT_NAMESPACE",
    "GENERATION",
    "GPU_PRODUCT_NODE_LABEL",
    "GPU_RESOURCE",
    "GPU_TYPE",
    "MANAGED_BY",
    "MANAGED_BY_VALUE",
    "MAX_NUM_SEQS_SINCE",
    "OWNER",
    "OWNER_UID",
    "SPEC_HASH",
    "VARIANT",
    "deployment_label_value",
    "deployment_label_values",
    "deployment_selector",
    "owner_annotations",
    "selector_string",
    "workload_name",
]

_NAME_MAX = 63
_STEM_MAX = _NAME_MAX - HASH_HEX_DIGITS - 1


def deployment_selector(namespace: str, name: str) -> dict[str, str]:
    """Labels that select every member-cluster object of one InferenceDeployment."""
    return {MANAGED_BY: MANAGED_BY_VALUE, DEPLOYMENT: deployment_label_value(namespace, name)}


def owner_annotations(namespace: str, name: str, uid: str) -> dict[str, str]:
    """The annotations that make an object gridshift's: the owning InferenceDeployment and its hub UID."""
    return {OWNER: owner_value(namespace, name), OWNER_UID: uid}


def selector_string(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def workload_name(namespace: str, name: str, gpu_type: str) -> str:
    """A DNS-1035 name, unique per (deployment, GPU type), at most 63 characters, for any name the CRD admits.

    A readable stem of the deployment's name and a 64-bit digest of (namespace, name, GPU type).
    """
    stem = re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")[:_STEM_MAX].strip("-") or "idep"
    if not stem[0].isalpha():
        stem = f"gs-{stem}"[:_STEM_MAX].strip("-")
    return f"{stem}-{digest(f'{namespace}/{name}/{gpu_type}')}"
