"""GPU quantities of member objects are read as Kubernetes quantities, and one odd object never fails
the observation of its cluster (actuation.members.gpu_quantity)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gridshift.actuation import labels as L
from gridshift.actuation.members import (
    GpuInventory,
    NodeGpus,
    PodGpus,
    gpu_quantity,
    inventory_from,
    inventory_of,
    node_gpus,
    pod_gpus,
    state_from_deployment,
)
from tests.service.harness import H100, WORKLOADS, ServiceHarness, deployment_body


@pytest.mark.parametrize(
    ("value", "round_up", "gpus"),
    [
        ("1", False, 1),
        (8, False, 8),
        ("1k", True, 1000),
        ("2e1", False, 20),
        ("1500m", True, 2),
        ("1500m", False, 1),
        ("not a quantity", True, 0),
        ("-3", True, 0),
    ],
)
def test_gpu_quantities_are_kubernetes_quantities_in_whole_gpus(value: Any, round_up: bool, gpus: int) -> None:
    assert gpu_quantity({L.GPU_RESOURCE: value}, "Pod p", round_up=round_up) == gpus


def test_gpus_in_use_round_up_and_gpus_offered_round_down() -> None:
    requests = {L.GPU_RESOURCE: "500m"}
    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"resources": {"requests": requests}}]}}
    assert pod_gpus(pod) == PodGpus("n1", 1)
    node = {
        "metadata": {"name": "n1", "labels": {L.GPU_PRODUCT_NODE_LABEL: H100}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}], "allocatable": {L.GPU_RESOURCE: "7500m"}},
    }
    assert node_gpus(node).allocatable == 7


def test_gpus_of_a_cordoned_or_not_ready_node_are_not_offered() -> None:
    # A mutation survived: a cordoned node's (spec.unschedulable) GPUs counted as allocatable, so the planner
    # placed replicas on GPUs no new pod may be scheduled to.
    def node(name: str, *, ready: str = "True", **spec: Any) -> dict[str, Any]:
        return {
            "metadata": {"name": name, "labels": {L.GPU_PRODUCT_NODE_LABEL: H100}},
            "spec": spec,
            "status": {"conditions": [{"type": "Ready", "status": ready}], "allocatable": {L.GPU_RESOURCE: "8"}},
        }

    assert node_gpus(node("n1")) == NodeGpus("n1", H100, 8)
    assert node_gpus(node("n1", unschedulable=False)) == NodeGpus("n1", H100, 8)
    assert node_gpus(node("n2", unschedulable=True)) == NodeGpus("n2", None, 0)
    assert node_gpus(node("n3", ready="False")) == NodeGpus("n3", None, 0)
    nodes = [node("n1"), node("n2", unschedulable=True), node("n3", ready="Unknown")]
    assert inventory_from(nodes, []) == [GpuInventory(H100, 8, 0)]


def _lookalike(gpus: str, *, owned: bool) -> dict[str, Any]:
    """A Deployment labelled as gridshift's in the shared workload namespace, asking for `gpus` GPUs."""
    annotations = L.owner_annotations("ml", "x", "uid-x") if owned else {}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "lookalike",
            "namespace": WORKLOADS,
            "labels": {L.MANAGED_BY: L.MANAGED_BY_VALUE},
            "annotations": annotations,
        },
        "spec": {
            "replicas": 0,
            "template": {"spec": {"containers": [{"name": "c", "resources": {"limits": {L.GPU_RESOURCE: gpus}}}]}},
        },
    }


def test_a_foreign_deployment_s_gpus_are_not_read() -> None:
    state = state_from_deployment(_lookalike("not a quantity", owned=False))
    assert state is not None and not state.owned and state.gpus_per_replica == 0


def test_an_odd_quantity_of_one_tenant_leaves_the_cluster_and_the_other_tenants_observed() -> None:
    world = ServiceHarness(["eu-fr"])
    world.add(deployment_body("chat"))
    world.cycle()
    world.cycle()
    ready = world.status()["readyReplicas"]
    assert ready > 0
    member = world.members["eu-fr"]
    member.plant(_lookalike("1k", owned=False))
    owned = _lookalike("oops", owned=True)
    owned["metadata"]["name"] = "another"
    member.plant(copy.deepcopy(owned))

    report = world.cycle()

    assert not any("eu-fr" in e and "unreachable" in e for e in report.errors), report.errors
    assert not any("ValueError" in e for e in report.errors), report.errors
    assert world.cluster_bodies["eu-fr"]["status"]["reachable"] is True
    assert world.status()["readyReplicas"] == ready


def test_negative_replica_counts_read_as_zero() -> None:
    # Found in review (4 December 2026): the apiserver refuses them, but one that reached the snapshot raised
    # there (Placement counts must be >= 0) and ended the cycle for every deployment.
    body = _lookalike("1", owned=True)
    body["spec"]["replicas"] = -1
    body["status"] = {"readyReplicas": -3}
    state = state_from_deployment(body)
    assert state is not None and (state.desired, state.ready) == (0, 0)


def test_the_gpus_our_replicas_hold_are_those_of_gridshifts_scheduled_pods_in_the_namespaces_asked() -> None:
    # Self-review: every scheduled GPU pod of a workload namespace counted as ours, so a tenant's own pods there
    # made up for our Pending replicas, and the planner saw GPUs free that were not.
    nodes = [NodeGpus("n1", H100, 16)]
    pods = [
        PodGpus("n1", 4, "gs-ml", managed=True),
        PodGpus("n1", 8, "gs-ml", managed=False),  # the tenant's own pod beside our replicas
        PodGpus("n1", 2, "gs-other", managed=True),  # not a namespace asked about
    ]
    (inventory,) = inventory_of(nodes, pods, ["gs-ml"])
    assert (inventory.used, inventory.used_in_namespaces) == (14, 4)
    labelled = {"metadata": {"namespace": "gs-ml", "labels": {L.MANAGED_BY: L.MANAGED_BY_VALUE}}}
    spec = {"nodeName": "n1", "containers": [{"resources": {"requests": {L.GPU_RESOURCE: "1"}}}]}
    assert pod_gpus({**labelled, "spec": spec}) == PodGpus("n1", 1, "gs-ml", managed=True)
