"""What the world reads from (and writes to) the clusters, behind small Protocols with fakes.

- `ClusterReader`: one regional cluster's GPU nodes and gridshift-managed pods (kubernetes client,
  polled); `FakeClusterReader` holds them in memory for unit tests.
- `RoutingReader`: the routing weights the operator publishes in InferenceDeployment status on the
  hub; `FakeRoutingReader` for tests.
- `ReadinessWriter`: marks a pod NotReady and Ready again (the readiness-delay fault).
- `ClusterPower`: stops and starts a cluster's control plane (the apiserver fault).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from . import labels as L

_MAX_NUM_SEQS_DEFAULT = 256
"""vLLM's --max-num-seqs default when the pod does not pass it."""
DEFAULT_TERMINATION_GRACE_S = 30.0
"""Kubernetes' terminationGracePeriodSeconds when a pod spec does not set it."""


@dataclass(frozen=True)
class NodeInfo:
    """A node with GPUs."""

    name: str
    gpu_product: str
    gpus: int


@dataclass(frozen=True)
class PodInfo:
    """A gridshift-managed pod, reduced to what the world needs."""

    namespace: str
    name: str
    uid: str
    node: str | None
    labels: Mapping[str, str]
    gpus: int
    running: bool
    ready: bool
    created: str
    served_model_name: str
    max_num_seqs: int
    container: str = "vllm"
    model_source: str = ""
    """vLLM --model (weights' id), used to pick the GPU profile."""
    termination_grace_s: float = DEFAULT_TERMINATION_GRACE_S
    """spec.terminationGracePeriodSeconds: how long a stopping replica may drain its requests before
    it is killed (the operator renders 60, actuation/render.py)."""

    @property
    def deployment(self) -> str | None:
        return L.deployment_key_from_pod_labels(dict(self.labels))


@dataclass(frozen=True)
class ClusterSnapshot:
    nodes: tuple[NodeInfo, ...]
    pods: tuple[PodInfo, ...]


class ClusterUnavailable(Exception):
    """The cluster's apiserver did not answer."""


class ClusterReader(Protocol):
    name: str

    def snapshot(self) -> ClusterSnapshot:
        """GPU nodes and managed pods now; raises ClusterUnavailable when the apiserver is down."""
        ...


class RoutingReader(Protocol):
    def routing(self) -> dict[str, dict[str, float]]:
        """Deployment key (`ns.name`) -> cluster -> weight, for deployments whose status has routing."""
        ...


class ReadinessWriter(Protocol):
    def set_ready(self, cluster: str, namespace: str, pod: str, ready: bool) -> None: ...


class ClusterPower(Protocol):
    def stop(self, cluster: str) -> None: ...

    def start(self, cluster: str) -> None: ...


# ---------------------------------------------------------------------------------------- parsing


def _quantity_int(value: object) -> int:
    text = str(value)
    if not re.fullmatch(r"\d+", text):
        raise ValueError(f"{L.GPU_RESOURCE} quantity {text!r} is not a whole number")
    return int(text)


def _arg_value(args: Sequence[str], flag: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == flag and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def pod_from_manifest(pod: Mapping[str, Any]) -> PodInfo:
    """PodInfo from a pod as the API returns it (a dict, camelCase keys)."""
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    containers = spec.get("containers") or []
    gpus = 0
    args: list[str] = []
    container_name = "vllm"
    for container in containers:
        resources = container.get("resources") or {}
        limit = (resources.get("limits") or {}).get(L.GPU_RESOURCE) or (resources.get("requests") or {}).get(
            L.GPU_RESOURCE
        )
        if limit is not None:
            gpus += _quantity_int(limit)
            container_name = container.get("name", container_name)
            args = [*(container.get("command") or []), *(container.get("args") or [])]
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    labels = dict(metadata.get("labels") or {})
    served = _arg_value(args, "--served-model-name") or _arg_value(args, "--model") or labels.get(L.DEPLOYMENT, "")
    seqs = _arg_value(args, "--max-num-seqs")
    return PodInfo(
        namespace=str(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
        uid=str(metadata.get("uid", "")),
        node=spec.get("nodeName"),
        labels=labels,
        gpus=gpus,
        running=status.get("phase") == "Running" and metadata.get("deletionTimestamp") is None,
        ready=conditions.get("Ready") == "True",
        created=str(metadata.get("creationTimestamp", "")),
        served_model_name=served,
        max_num_seqs=int(seqs) if seqs and seqs.isdigit() else _MAX_NUM_SEQS_DEFAULT,
        container=container_name,
        model_source=_arg_value(args, "--model") or "",
        termination_grace_s=_grace_seconds(spec.get("terminationGracePeriodSeconds")),
    )


def _grace_seconds(value: object) -> float:
    """spec.terminationGracePeriodSeconds, Kubernetes' default where absent (or not a whole number >= 0)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return DEFAULT_TERMINATION_GRACE_S


def node_from_manifest(node: Mapping[str, Any]) -> NodeInfo | None:
    metadata = node.get("metadata") or {}
    capacity = (node.get("status") or {}).get("capacity") or {}
    product = (metadata.get("labels") or {}).get(L.GPU_PRODUCT_NODE_LABEL)
    gpus = capacity.get(L.GPU_RESOURCE)
    if product is None or gpus is None or _quantity_int(gpus) == 0:
        return None
    return NodeInfo(name=str(metadata["name"]), gpu_product=str(product), gpus=_quantity_int(gpus))


@dataclass(frozen=True)
class ClassRoutes:
    """One deployment's request-size classes (spec.demand.requestClasses) and the weights status.classRouting
    publishes for each: class name -> (cluster, GPU type) -> weight. A size-aware router sends a request to
    the class nearest its sizes (in log tokens), then by that class's weights."""

    sizes: tuple[tuple[str, float, float], ...]
    """(name, prompt tokens, output tokens) per class."""
    weights: Mapping[str, Mapping[tuple[str, str], float]]

    def nearest(self, prompt: Any, output: Any) -> Any:
        """Index into `sizes` of each request's class (numpy arrays in and out)."""
        import numpy as np

        centres = np.log(np.asarray([[p, o] for _, p, o in self.sizes], dtype=np.float64))
        points = np.log(np.maximum(np.stack([prompt, output], axis=1).astype(np.float64), 1.0))
        distance = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        return distance.argmin(axis=1)


def class_routing_from_deployments(items: Sequence[Mapping[str, Any]]) -> dict[str, ClassRoutes]:
    """Deployment key -> its classes and per-class weights, for deployments whose status has classRouting."""
    found: dict[str, ClassRoutes] = {}
    for item in items:
        metadata = item.get("metadata") or {}
        routes = (item.get("status") or {}).get("classRouting") or []
        classes = ((item.get("spec") or {}).get("demand") or {}).get("requestClasses") or []
        if not routes or not classes:
            continue
        weights: dict[str, dict[tuple[str, str], float]] = {}
        for route in routes:
            into = weights.setdefault(str(route.get("requestClass", "")), {})
            into[(str(route.get("cluster", "")), str(route.get("gpuType", "")))] = float(route.get("weight", 0))
        sizes = tuple((str(c["name"]), float(c["promptTokens"]), float(c["outputTokens"])) for c in classes)
        key = L.deployment_key(str(metadata.get("namespace", "")), str(metadata.get("name", "")))
        found[key] = ClassRoutes(sizes, weights)
    return found


def routing_from_deployments(items: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    routing: dict[str, dict[str, float]] = {}
    for item in items:
        metadata = item.get("metadata") or {}
        weights = (item.get("status") or {}).get("routing") or []
        if not weights:
            continue
        key = L.deployment_key(str(metadata.get("namespace", "")), str(metadata.get("name", "")))
        routing[key] = {str(w["cluster"]): float(w.get("weight", 0)) for w in weights if "cluster" in w}
    return routing


# ---------------------------------------------------------------------------------------- real adapters


def _api_client(kubeconfig: Path) -> Any:
    from kubernetes import config

    return config.new_client_from_config(config_file=str(kubeconfig))


class KubeClusterReader:
    """Lists GPU nodes and managed pods of one cluster with the kubernetes client."""

    def __init__(self, name: str, kubeconfig: Path, *, timeout_s: float = 3.0) -> None:
        from kubernetes import client

        self.name = name
        self._api = client.CoreV1Api(_api_client(kubeconfig))
        self._timeout = timeout_s

    def snapshot(self) -> ClusterSnapshot:
        try:
            nodes = self._api.list_node(_request_timeout=self._timeout)
            pods = self._api.list_pod_for_all_namespaces(
                label_selector=L.MANAGED_POD_SELECTOR, _request_timeout=self._timeout
            )
        except Exception as error:  # urllib3 and ApiException alike: the cluster is unreachable
            raise ClusterUnavailable(f"cluster {self.name}: {type(error).__name__}: {error}") from error
        serialize = self._api.api_client.sanitize_for_serialization
        node_infos = [node_from_manifest(serialize(node)) for node in nodes.items]
        return ClusterSnapshot(
            nodes=tuple(n for n in node_infos if n is not None),
            pods=tuple(pod_from_manifest(serialize(pod)) for pod in pods.items),
        )

    def set_ready(self, namespace: str, pod: str, ready: bool) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        status = "True" if ready else "False"
        body = {
            "status": {
                "conditions": [
                    {"type": "Ready", "status": status, "lastTransitionTime": now},
                    {"type": "ContainersReady", "status": status, "lastTransitionTime": now},
                ]
            }
        }
        self._api.patch_namespaced_pod_status(pod, namespace, body)


class KubeRoutingReader:
    """Reads `.status.routing` of every InferenceDeployment on the hub; no CRD means no routing."""

    def __init__(self, kubeconfig: Path, *, timeout_s: float = 3.0) -> None:
        from kubernetes import client

        self._api = client.CustomObjectsApi(_api_client(kubeconfig))
        self._timeout = timeout_s
        self.class_routes: dict[str, ClassRoutes] = {}
        """Per-class routing read with the last `routing()` call (same list, no second request)."""

    def routing(self) -> dict[str, dict[str, float]]:
        from kubernetes.client.exceptions import ApiException

        try:
            answer = self._api.list_cluster_custom_object(
                L.CRD_GROUP, L.CRD_VERSION, L.CRD_PLURAL_DEPLOYMENTS, _request_timeout=self._timeout
            )
        except ApiException as error:
            if error.status == 404:
                return {}
            raise
        items = answer.get("items", []) if isinstance(answer, dict) else []
        self.class_routes = class_routing_from_deployments(items)
        return routing_from_deployments(items)


class KubeReadinessWriter:
    def __init__(self, readers: Mapping[str, KubeClusterReader]) -> None:
        self._readers = readers

    def set_ready(self, cluster: str, namespace: str, pod: str, ready: bool) -> None:
        self._readers[cluster].set_ready(namespace, pod, ready)


class KwokctlClusterPower:
    """Stops and starts a kwokctl cluster's components (etcd, apiserver, controllers, kwok)."""

    def __init__(
        self, kwokctl: str = "kwokctl", env: Mapping[str, str] | None = None, name_prefix: str = "gs-"
    ) -> None:
        self._kwokctl = kwokctl
        self._env = dict(env) if env is not None else None
        self._prefix = name_prefix
        """e2e/cluster names kwokctl clusters `gs-<name>` (gscluster.planes.CLUSTER_PREFIX)."""

    def _run(self, verb: str, cluster: str) -> None:
        command = [self._kwokctl, verb, "cluster", "--name", self._prefix + cluster]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=self._env, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")

    def stop(self, cluster: str) -> None:
        self._run("stop", cluster)

    def start(self, cluster: str) -> None:
        self._run("start", cluster)


# ---------------------------------------------------------------------------------------- fakes


@dataclass
class FakeClusterReader:
    """An in-memory cluster: tests add nodes and pods and flip readiness."""

    name: str
    nodes: list[NodeInfo] = field(default_factory=list)
    pods: dict[tuple[str, str], PodInfo] = field(default_factory=dict)
    available: bool = True

    def snapshot(self) -> ClusterSnapshot:
        if not self.available:
            raise ClusterUnavailable(f"cluster {self.name}: stopped")
        return ClusterSnapshot(tuple(self.nodes), tuple(self.pods.values()))

    def add_pod(self, pod: PodInfo) -> None:
        self.pods[(pod.namespace, pod.name)] = pod

    def remove_pod(self, namespace: str, name: str) -> None:
        del self.pods[(namespace, name)]

    def set_ready(self, namespace: str, pod: str, ready: bool) -> None:
        current = self.pods[(namespace, pod)]
        self.pods[(namespace, pod)] = PodInfo(**{**current.__dict__, "ready": ready})


@dataclass
class FakeRoutingReader:
    weights: dict[str, dict[str, float]] = field(default_factory=dict)

    def routing(self) -> dict[str, dict[str, float]]:
        return {key: dict(value) for key, value in self.weights.items()}


@dataclass
class FakeWorldKube:
    """Readiness writer and cluster power over FakeClusterReaders."""

    clusters: dict[str, FakeClusterReader]

    def set_ready(self, cluster: str, namespace: str, pod: str, ready: bool) -> None:
        self.clusters[cluster].set_ready(namespace, pod, ready)

    def stop(self, cluster: str) -> None:
        self.clusters[cluster].available = False

    def start(self, cluster: str) -> None:
        self.clusters[cluster].available = True
