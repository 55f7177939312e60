"""The label scheme tying Prometheus series to gridshift deployments: defined here, once.

The operator labels every replica pod it creates with `gridshift.dev/deployment: <ns>.<name>`
(the InferenceDeployment's namespace and name on the hub; a dot, because label values may not
contain a slash; bounded to 63 characters with a digest for long names: gridshift.api.labels).
A PodMonitor (or scrape config) copies that pod label into a target label, so
every vLLM series carries:

    namespace="<member-cluster namespace>", pod="<replica pod>", gridshift_dev_deployment="<ns>.<name>"

Prometheus turns the pod label `gridshift.dev/deployment` into
`__meta_kubernetes_pod_label_gridshift_dev_deployment`; the relabeling rule in docs/signals.md
maps it to `gridshift_dev_deployment`. vLLM's own `model_name` label (the served model name) is
the alternative selector when that relabeling is not installed.

DCGM series carry no gridshift label: dcgm-exporter's Kubernetes mapping gives them the
`namespace` and `pod` of the workload holding the GPU (when scraped with honor_labels; otherwise
Prometheus renames them `exported_namespace` and `exported_pod`). They are joined to a deployment
through the vLLM series of the same pod (`and on (namespace, pod)`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gridshift.api.labels import DEPLOYMENT, deployment_label_value

POD_LABEL_KEY = DEPLOYMENT
"""Kubernetes label the operator puts on every replica pod; value from `deployment_label_value`."""


class SelectBy(StrEnum):
    """How vLLM series of one deployment are selected."""

    DEPLOYMENT_LABEL = "deploymentLabel"
    MODEL_NAME = "modelName"


@dataclass(frozen=True)
class DeploymentRef:
    """One InferenceDeployment as seen in one member cluster's metrics."""

    namespace: str
    """Namespace of the InferenceDeployment on the hub."""
    name: str
    """Name of the InferenceDeployment on the hub."""
    workload_namespace: str
    """Namespace of the replica pods in the member cluster (RegionalCluster.workloadNamespace)."""
    served_model_name: str
    """vLLM --served-model-name, the `model_name` label of vLLM series."""
    cluster: str | None = None
    """Member cluster name, used only when one Prometheus holds several clusters (LabelScheme.cluster_label)."""

    def __str__(self) -> str:
        where = f" in cluster {self.cluster}" if self.cluster else ""
        return f"{self.namespace}/{self.name}{where}"


@dataclass(frozen=True)
class LabelScheme:
    """Prometheus label names used to select a deployment's series. Defaults match docs/signals.md."""

    select_by: SelectBy = SelectBy.DEPLOYMENT_LABEL
    """Deployment label by default: model names can be shared by two deployments, the label cannot."""
    deployment_label: str = "gridshift_dev_deployment"
    """Target label the PodMonitor copies from the pod label `gridshift.dev/deployment`."""
    model_name_label: str = "model_name"
    """vLLM's own label holding the served model name (vLLM >= 0.4)."""
    namespace_label: str = "namespace"
    """Target label with the pod's namespace (Prometheus Operator's default)."""
    pod_label: str = "pod"
    """Target label with the pod name (Prometheus Operator's default)."""
    dcgm_namespace_label: str = "namespace"
    """Label of DCGM series with the GPU's workload namespace; `exported_namespace` without honor_labels."""
    dcgm_pod_label: str = "pod"
    """Label of DCGM series with the GPU's workload pod; `exported_pod` without honor_labels."""
    cluster_label: str | None = None
    """Label naming the member cluster when one Prometheus (Thanos, Mimir) holds several; unset otherwise."""


def promql_string(value: str) -> str:
    """`value` as a double-quoted PromQL string literal (Go escaping of backslash, quote, newline)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _matchers(pairs: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{label}={promql_string(value)}" for label, value in pairs) + "}"


def vllm_selector(scheme: LabelScheme, ref: DeploymentRef) -> str:
    """Label matchers `{...}` selecting the vLLM series of `ref`'s replicas."""
    pairs = [(scheme.namespace_label, ref.workload_namespace)]
    if scheme.select_by is SelectBy.DEPLOYMENT_LABEL:
        pairs.append((scheme.deployment_label, deployment_label_value(ref.namespace, ref.name)))
    else:
        pairs.append((scheme.model_name_label, ref.served_model_name))
    if scheme.cluster_label is not None:
        pairs.append((scheme.cluster_label, _require_cluster(ref)))
    return _matchers(pairs)


def dcgm_selector(scheme: LabelScheme, ref: DeploymentRef) -> str:
    """Label matchers `{...}` narrowing DCGM series to the workload namespace of `ref`."""
    pairs = [(scheme.dcgm_namespace_label, ref.workload_namespace)]
    if scheme.cluster_label is not None:
        pairs.append((scheme.cluster_label, _require_cluster(ref)))
    return _matchers(pairs)


def join_labels(scheme: LabelScheme) -> tuple[str, ...]:
    """Labels a DCGM series and a vLLM series of the same replica pod share after renaming."""
    labels = (scheme.namespace_label, scheme.pod_label)
    return (*labels, scheme.cluster_label) if scheme.cluster_label is not None else labels


def _require_cluster(ref: DeploymentRef) -> str:
    if ref.cluster is None:
        raise ValueError(f"deployment {ref}: cluster is required when LabelScheme.cluster_label is set")
    return ref.cluster
