"""The MemberCluster contract (tests/actuation/test_member_contract.py) on a real apiserver: what the
fake is checked against, KubeMemberCluster honours too (objects read back as rendered, included)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
import yaml

from gridshift.actuation import labels as L
from gridshift.actuation.members import ForeignObject, KubeMemberCluster
from gridshift.actuation.render import render_workload
from gridshift.service.inputs import planner_cluster
from tests.actuation.test_member_contract import (
    GPU,
    SPEC,
    WORKLOADS,
    check_member_contract,
    check_unowned_objects_are_not_adopted,
    owner,
    target,
)
from tests.service.test_inputs import eu_cluster

from .helpers import fresh_namespace, kubectl_json, pod_condition, wait_for

pytestmark = pytest.mark.cluster


def test_the_real_member_cluster_honours_the_contract(control_planes: Any) -> None:
    world, region = control_planes, "eu-de"
    world.kubectl(region, "create", "namespace", WORKLOADS)
    member = KubeMemberCluster(region, yaml.safe_load(world.kubeconfigs[region].read_text()))
    try:
        total = {i.gpu_type: i for i in member.gpu_inventory([WORKLOADS]).gpus}[GPU].allocatable
        check_member_contract(member, total_gpus=total)
    finally:
        member.close()
        world.kubectl(region, "delete", "namespace", WORKLOADS, "--wait=false", check=False)


def test_the_real_member_cluster_does_not_adopt_unowned_objects(control_planes: Any) -> None:
    """The contract's case, planted with kubectl: the selectors are the ones gridshift renders, so a forced apply
    over them would succeed (no 422 "field is immutable" to hide an adoption)."""
    world, region = control_planes, "eu-de"
    ns = fresh_namespace(world, region)
    member = KubeMemberCluster(region, yaml.safe_load(world.kubeconfigs[region].read_text()), watch=False)
    try:
        check_unowned_objects_are_not_adopted(member, lambda manifests: world.apply(region, manifests), ns)
    finally:
        member.close()
        world.kubectl(region, "delete", "namespace", ns, "--wait=false", check=False)


def test_gpu_quantities_the_apiserver_stores_never_fail_the_observation(control_planes: Any) -> None:
    """nvidia.com/gpu "1k" is a valid quantity: a look-alike Deployment (no owner) and a Pod bound to a node
    asking for it are read (the Pod's as 1000 GPUs in use), and nothing raises."""
    world, region = control_planes, "eu-de"
    ns = fresh_namespace(world, region)
    member = KubeMemberCluster(region, yaml.safe_load(world.kubeconfigs[region].read_text()), watch=False)
    node = kubectl_json(world, region, "get", "nodes", "-l", f"{L.GPU_PRODUCT_NODE_LABEL}={GPU}")["items"][0]
    gpus = {L.GPU_RESOURCE: "1k"}
    container = {"name": "c", "image": "busybox", "resources": {"limits": gpus, "requests": gpus}}
    lookalike = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "lookalike", "namespace": ns, "labels": {L.MANAGED_BY: L.MANAGED_BY_VALUE}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [container]}},
        },
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bound", "namespace": ns},
        "spec": {"nodeName": node["metadata"]["name"], "containers": [container]},
    }
    try:
        before = {i.gpu_type: i for i in member.gpu_inventory([ns]).gpus}[GPU].used
        world.apply(region, [lookalike, pod])
        [state] = member.workloads([ns])
        assert not state.owned and state.gpus_per_replica == 0
        used = {i.gpu_type: i for i in member.gpu_inventory([ns]).gpus}[GPU].used
        assert used == before + 1000
    finally:
        member.close()
        world.kubectl(region, "delete", "namespace", ns, "--wait=false", check=False)


def test_replicas_whose_pods_are_pending_hold_no_gpu_in_the_inventory(control_planes: Any) -> None:
    """Found in review: the GPUs our replicas hold were the Deployments' counts, so Pending replicas (a cluster
    filled by others since, or a Deployment scaled by hand far past it) made as many GPUs "free" for every
    tenant there. Here the real scheduler leaves a replica's pods Pending (a node selector no node matches:
    deterministic, where a flood past the region's GPUs raced the scheduler in CI); they hold no GPU, and the
    planner's budget is what is really free."""
    world, region = control_planes, "eu-de"
    ns = fresh_namespace(world, region)
    member = KubeMemberCluster(region, yaml.safe_load(world.kubeconfigs[region].read_text()), watch=False)
    desired = 3
    try:
        manifests = render_workload(SPEC, replace(target("stuck", desired), workload_namespace=ns))
        for manifest in manifests:
            if manifest["kind"] == "Deployment":
                manifest["spec"]["template"]["spec"]["nodeSelector"]["gridshift.dev/test-node"] = "none-has-it"
        member.apply(manifests)

        def refused() -> list[dict[str, Any]] | None:
            pods = kubectl_json(world, region, "get", "pods", "-n", ns)["items"]
            waiting = [p for p in pods if (pod_condition(p, "PodScheduled") or {}).get("status") == "False"]
            return waiting if len(waiting) == desired else None

        wait_for(refused, 180, f"{desired} pods refused by the scheduler")
        [state] = member.workloads([ns])
        assert (state.desired, state.owned) == (desired, True)
        inventory = member.gpu_inventory([ns])
        ours = {i.gpu_type: i for i in inventory.gpus}[GPU]
        assert ours.used_in_namespaces == 0, ours
        budget = planner_cluster(region, eu_cluster(), inventory, {GPU: desired}).offerings[0]
        assert budget.available_gpus == max(0, ours.allocatable - ours.used), (budget, ours)
    finally:
        member.close()
        world.kubectl(region, "delete", "namespace", ns, "--wait=false", check=False)


@dataclass
class _Raced:
    """A Deployment of ours (0 replicas: no pod outlives the test into the next one's GPU count) in a fresh
    namespace, and the member adapter that applied it."""

    world: Any
    region: str
    member: KubeMemberCluster
    ours: dict[str, Any]

    def swap(self) -> None:
        """Another owner deletes our Deployment and creates its own under the name."""
        meta = self.ours["metadata"]
        self.world.kubectl(self.region, "delete", "deployment", "-n", meta["namespace"], meta["name"])
        theirs = {**meta, "annotations": {L.OWNER: "team-b/x", L.OWNER_UID: "uid-b"}}
        self.world.apply(self.region, [{**self.ours, "metadata": theirs}])

    def owner_now(self) -> str:
        """The owner annotation of the Deployment under the name now."""
        meta = self.ours["metadata"]
        found = kubectl_json(self.world, self.region, "get", "deployment", "-n", meta["namespace"], meta["name"])
        return str(found["metadata"]["annotations"][L.OWNER])


@contextlib.contextmanager
def _raced(world: Any, name: str) -> Iterator[_Raced]:
    region = "eu-de"
    ns = fresh_namespace(world, region)
    member = KubeMemberCluster(region, yaml.safe_load(world.kubeconfigs[region].read_text()), watch=False)
    try:
        raced = _Raced(world, region, member, render_workload(SPEC, replace(target(name, 0), workload_namespace=ns))[0])
        member.apply([raced.ours])
        yield raced
    finally:
        member.close()
        world.kubectl(region, "delete", "namespace", ns, "--wait=false", check=False)


def test_an_object_another_owner_put_in_place_after_our_read_is_not_overwritten(control_planes: Any) -> None:
    """Found in review: ownership was judged on a read, then the apply went out forced and without a
    precondition, so a Deployment of ours deleted and re-created by another owner between the two was
    overwritten, its owner annotations made ours. The apply now carries the read's resourceVersion."""
    with _raced(control_planes, "raced") as raced:
        meta, member = raced.ours["metadata"], raced.member
        stale = member._get(member._resource("apps/v1", "Deployment"), meta["name"], meta["namespace"])
        raced.swap()
        reads = iter([stale])  # our read happened before their swap
        real_get = member._get
        member._get = lambda *args: next(reads, None) or real_get(*args)  # type: ignore[method-assign]
        with pytest.raises(ForeignObject):
            member.apply([raced.ours])
        assert raced.owner_now() == "team-b/x"


def test_a_deletion_leaves_an_object_another_owner_put_in_place_after_our_listing(control_planes: Any) -> None:
    """Self-review, the sibling of the apply's: objects were listed, judged ours, then deleted by name, so one
    deleted and re-created by another owner in between was deleted. The delete now carries the listed uid."""
    with _raced(control_planes, "gone") as raced:
        member, ns = raced.member, raced.ours["metadata"]["namespace"]
        listed = member._list("apps/v1", "Deployment", ns)
        raced.swap()
        real_list = member._list

        def listed_before_the_swap(api_version: str, kind: str, *rest: Any) -> list[dict[str, Any]]:
            return listed if kind == "Deployment" else real_list(api_version, kind, *rest)

        member._list = listed_before_the_swap  # type: ignore[method-assign]
        member.delete_deployment_objects(owner("gone"), [ns])
        assert raced.owner_now() == "team-b/x"


def test_a_sweep_deletion_leaves_an_object_another_owner_put_in_place_after_its_read(control_planes: Any) -> None:
    """The sweep's deletion by name (`delete_owned_object`) reads the object, judges it ours, then deletes it: one
    deleted and re-created by another owner in between (same name, new uid) is left alone, by the read's uid as
    the delete's precondition (409), as `delete_deployment_objects` leaves one put in place after its listing."""
    with _raced(control_planes, "swept") as raced:
        meta, member = raced.ours["metadata"], raced.member
        stale = member._get(member._resource("apps/v1", "Deployment"), meta["name"], meta["namespace"])
        assert stale is not None
        raced.swap()
        reads = iter([stale])  # our read happened before their swap
        real_get = member._get
        member._get = lambda *args: next(reads, None) or real_get(*args)  # type: ignore[method-assign]
        assert not member.delete_owned_object(owner("swept"), "Deployment", meta["namespace"], meta["name"])
        assert next(reads, None) is None  # the stale read was the one judged
        assert raced.owner_now() == "team-b/x"
