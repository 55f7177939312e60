"""`FakeMemberCluster`: the MemberCluster Protocol in memory; passes tests/actuation/test_member_contract.py."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

from gridshift.actuation import labels as L
from gridshift.actuation.members import (
    ClusterUnreachable,
    GpuInventory,
    WorkloadState,
    gpu_quantity,
    state_from_deployment,
)
from gridshift.actuation.render import Manifest


@dataclass
class FakeMemberCluster:
    """In-memory member cluster: stores applied objects; Deployments become Ready at once unless told not to."""

    name: str
    gpus: dict[str, int] = field(default_factory=dict)
    reachable: bool = True
    ready_immediately: bool = True
    objects: dict[tuple[str, str, str], Manifest] = field(default_factory=dict)
    writes: int = 0

    def _check(self) -> None:
        if not self.reachable:
            raise ClusterUnreachable(self.name, "fake cluster marked unreachable")

    def apply(self, manifests: Sequence[Manifest]) -> None:
        self._check()
        for manifest in manifests:
            meta = manifest["metadata"]
            key = (manifest["kind"], meta.get("namespace", ""), meta["name"])
            stored = copy.deepcopy(manifest)
            previous = self.objects.get(key)
            if manifest["kind"] == "Deployment":
                ready = stored["spec"]["replicas"] if self.ready_immediately else 0
                if previous is not None and not self.ready_immediately:
                    ready = min(previous.get("status", {}).get("readyReplicas", 0), stored["spec"]["replicas"])
                stored["status"] = {"readyReplicas": ready}
            if previous != stored:
                self.writes += 1
            self.objects[key] = stored

    def mark_all_ready(self) -> None:
        for (kind, _, _), obj in self.objects.items():
            if kind == "Deployment":
                obj["status"] = {"readyReplicas": obj["spec"]["replicas"]}

    def workloads(self) -> list[WorkloadState]:
        self._check()
        states = [state_from_deployment(o) for (k, _, _), o in self.objects.items() if k == "Deployment"]
        return sorted((s for s in states if s is not None), key=lambda s: (s.namespace, s.name))

    def delete_deployment_objects(self, deployment_namespace: str, deployment_name: str) -> int:
        self._check()
        selector = L.deployment_selector(deployment_namespace, deployment_name)
        doomed = [
            key
            for key, obj in self.objects.items()
            if key[0] != "Namespace"
            and all((obj["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
        ]
        for key in doomed:
            del self.objects[key]
        self.writes += len(doomed)
        return len(doomed)

    def gpu_inventory(self) -> list[GpuInventory]:
        self._check()
        used = dict.fromkeys(self.gpus, 0)
        for (kind, _, _), obj in self.objects.items():
            if kind != "Deployment":
                continue
            pod = obj["spec"]["template"]["spec"]
            product = pod.get("nodeSelector", {}).get(L.GPU_PRODUCT_NODE_LABEL)
            if product in used:
                per_pod = gpu_quantity(pod["containers"][0]["resources"]["requests"])
                used[product] += per_pod * obj["spec"]["replicas"]
        return [GpuInventory(gpu_type=t, allocatable=n, used=used[t]) for t, n in sorted(self.gpus.items())]
