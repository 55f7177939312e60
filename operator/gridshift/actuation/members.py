"""Member-cluster access behind one small Protocol: apply workloads, read their state and GPU inventory.

`KubeMemberCluster` talks to a real apiserver with a kubeconfig taken from a Secret (the
kubeconfig is held in memory only: never logged, never written to status). `gridshift.testing.FakeMemberCluster`
keeps objects in memory for unit tests; both pass tests/actuation/test_member_contract.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from gridshift.actuation import labels as L
from gridshift.actuation.render import Manifest

FIELD_MANAGER = "gridshift"


class ClusterUnreachable(Exception):
    """The member cluster's apiserver did not answer (or answered 5xx)."""

    def __init__(self, cluster: str, detail: str) -> None:
        super().__init__(f"cluster {cluster} unreachable: {detail}")
        self.cluster = cluster


class ActuationForbidden(Exception):
    """The credentials lack a permission; the message names the verb and resource."""

    def __init__(self, cluster: str, detail: str) -> None:
        super().__init__(f"cluster {cluster}: forbidden: {detail}")
        self.cluster = cluster


@dataclass(frozen=True)
class WorkloadState:
    """One gridshift-managed Deployment in a member cluster."""

    deployment_namespace: str
    deployment_name: str
    gpu_type: str
    name: str
    namespace: str
    desired: int
    ready: int
    gpus_per_replica: int = 1
    spec_hash: str = ""
    """Hash of the rendered pod template and settings (annotation): re-apply only when it changes."""


@dataclass(frozen=True)
class GpuInventory:
    """GPUs of one type on Ready nodes, and how many are requested by pods."""

    gpu_type: str
    allocatable: int
    used: int


class MemberCluster(Protocol):
    """What the service needs from a member cluster."""

    name: str

    def apply(self, manifests: Sequence[Manifest]) -> None: ...

    def workloads(self) -> list[WorkloadState]: ...

    def delete_deployment_objects(self, deployment_namespace: str, deployment_name: str) -> int: ...

    def gpu_inventory(self) -> list[GpuInventory]: ...


def state_from_deployment(obj: Mapping[str, Any]) -> WorkloadState | None:
    meta = obj.get("metadata", {})
    labels = meta.get("labels") or {}
    if labels.get(L.MANAGED_BY) != L.MANAGED_BY_VALUE or L.DEPLOYMENT not in labels:
        return None
    namespace, _, name = str(labels[L.DEPLOYMENT]).partition(".")
    return WorkloadState(
        deployment_namespace=namespace,
        deployment_name=name,
        gpu_type=labels.get(L.GPU_TYPE, ""),
        name=meta["name"],
        namespace=meta["namespace"],
        desired=int((obj.get("spec") or {}).get("replicas") or 0),
        ready=int((obj.get("status") or {}).get("readyReplicas") or 0),
        gpus_per_replica=_template_gpus(obj),
        spec_hash=str((meta.get("annotations") or {}).get(L.SPEC_HASH, "")),
    )


def _template_gpus(obj: Mapping[str, Any]) -> int:
    try:
        containers = obj["spec"]["template"]["spec"]["containers"]
    except (KeyError, TypeError):
        return 0
    return sum(gpu_quantity((c.get("resources") or {}).get("limits")) for c in containers)


def gpu_quantity(resources: Mapping[str, Any] | None) -> int:
    if not resources:
        return 0
    return int(str(resources.get(L.GPU_RESOURCE, "0")))


def inventory_from(nodes: Sequence[Mapping[str, Any]], pods: Sequence[Mapping[str, Any]]) -> list[GpuInventory]:
    """Sum allocatable GPUs of Ready nodes per product label, and GPU requests of live pods on them."""
    product_of_node: dict[str, str] = {}
    allocatable: dict[str, int] = {}
    for node in nodes:
        product = (node["metadata"].get("labels") or {}).get(L.GPU_PRODUCT_NODE_LABEL)
        conditions = (node.get("status") or {}).get("conditions") or []
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        if product is None or not ready or (node.get("spec") or {}).get("unschedulable"):
            continue
        product_of_node[node["metadata"]["name"]] = product
        allocatable[product] = allocatable.get(product, 0) + gpu_quantity((node.get("status") or {}).get("allocatable"))
    used = dict.fromkeys(allocatable, 0)
    for pod in pods:
        product = product_of_node.get((pod.get("spec") or {}).get("nodeName", ""))
        if product is None or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        for container in pod["spec"].get("containers", []):
            used[product] += gpu_quantity((container.get("resources") or {}).get("requests"))
    return [GpuInventory(gpu_type=t, allocatable=allocatable[t], used=used[t]) for t in sorted(allocatable)]


class KubeMemberCluster:
    """A real member cluster, reached with a kubeconfig (text held in memory only)."""

    _KINDS: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("v1", "Namespace"),
            ("apps/v1", "Deployment"),
            ("v1", "Service"),
            ("policy/v1", "PodDisruptionBudget"),
        }
    )

    def __init__(self, name: str, kubeconfig: Mapping[str, Any], timeout_seconds: float = 10.0) -> None:
        from kubernetes import config
        from kubernetes.dynamic import DynamicClient

        self.name = name
        self._timeout = timeout_seconds
        self._api_client = config.new_client_from_config_dict(dict(kubeconfig))
        self._dynamic: DynamicClient | None = None

    def __repr__(self) -> str:  # never show credentials
        return f"KubeMemberCluster({self.name!r})"

    def _client(self) -> Any:
        from kubernetes.dynamic import DynamicClient

        if self._dynamic is None:
            self._dynamic = self._call(lambda: DynamicClient(self._api_client), "discovery")
        return self._dynamic

    def _call(self, fn: Any, what: str) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn()
        except ApiException as error:
            if error.status == 403:
                raise ActuationForbidden(self.name, f"{what}: {error.reason}: {_message(error)}") from None
            if error.status is None or error.status >= 500 or error.status == 0:
                raise ClusterUnreachable(self.name, f"{what}: HTTP {error.status} {error.reason}") from None
            raise
        except (HTTPError, OSError) as error:
            raise ClusterUnreachable(self.name, f"{what}: {type(error).__name__}") from None

    def _resource(self, api_version: str, kind: str) -> Any:
        return self._client().resources.get(api_version=api_version, kind=kind)

    def apply(self, manifests: Sequence[Manifest]) -> None:
        for manifest in manifests:
            if (manifest["apiVersion"], manifest["kind"]) not in self._KINDS:
                raise ValueError(f"gridshift does not manage {manifest['kind']} objects")
            resource = self._resource(manifest["apiVersion"], manifest["kind"])
            meta = manifest["metadata"]
            self._call(
                lambda r=resource, m=manifest, meta=meta: r.server_side_apply(
                    body=m,
                    name=meta["name"],
                    namespace=meta.get("namespace"),
                    field_manager=FIELD_MANAGER,
                    force_conflicts=True,
                    _request_timeout=self._timeout,
                ),
                f"apply {manifest['kind']} {meta.get('namespace', '')}/{meta['name']}",
            )

    def _list(self, api_version: str, kind: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        resource = self._resource(api_version, kind)
        result = self._call(
            lambda: resource.get(label_selector=label_selector, _request_timeout=self._timeout), f"list {kind}"
        )
        return [item.to_dict() for item in result.items]

    def workloads(self) -> list[WorkloadState]:
        objs = self._list("apps/v1", "Deployment", f"{L.MANAGED_BY}={L.MANAGED_BY_VALUE}")
        return sorted(
            (s for s in map(state_from_deployment, objs) if s is not None), key=lambda s: (s.namespace, s.name)
        )

    def delete_deployment_objects(self, deployment_namespace: str, deployment_name: str) -> int:
        selector = L.selector_string(L.deployment_selector(deployment_namespace, deployment_name))
        deleted = 0
        for api_version, kind in (("apps/v1", "Deployment"), ("v1", "Service"), ("policy/v1", "PodDisruptionBudget")):
            resource = self._resource(api_version, kind)
            for obj in self._list(api_version, kind, selector):
                meta = obj["metadata"]
                self._call(
                    lambda r=resource, meta=meta: r.delete(
                        name=meta["name"], namespace=meta["namespace"], _request_timeout=self._timeout
                    ),
                    f"delete {kind} {meta['namespace']}/{meta['name']}",
                )
                deleted += 1
        return deleted

    def gpu_inventory(self) -> list[GpuInventory]:
        nodes = self._list("v1", "Node")
        pods = self._list("v1", "Pod")
        return inventory_from(nodes, pods)


def _message(error: Any) -> str:
    import json

    try:
        return str(json.loads(error.body).get("message", ""))
    except (TypeError, ValueError):
        return ""
