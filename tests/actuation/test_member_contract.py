"""Contract every MemberCluster must honour; the fake runs here, the real one in tests/cluster/."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from gridshift.actuation.members import ClusterUnreachable, MemberCluster
from gridshift.actuation.render import WorkloadTarget, render_workload
from gridshift.api import InferenceDeploymentSpec
from gridshift.testing import FakeMemberCluster

SPEC = InferenceDeploymentSpec.model_validate(
    {
        "model": {"servedName": "m", "source": "org/m"},
        "replica": {"gpuTypes": ["NVIDIA-H100-80GB-HBM3"]},
        "slo": {"ttftP95Ms": 500, "tpotP95Ms": 50},
    }
)
GPU = "NVIDIA-H100-80GB-HBM3"


def target(name: str, replicas: int, namespace: str = "team-a") -> WorkloadTarget:
    return WorkloadTarget(namespace, name, "c1", "gridshift-contract", GPU, replicas, 64)


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.5)


def check_member_contract(cluster: MemberCluster, total_gpus: int) -> None:
    """Run against any MemberCluster that has `total_gpus` free GPUs of type GPU."""
    before = {i.gpu_type: i for i in cluster.gpu_inventory()}
    assert before[GPU].allocatable == total_gpus

    cluster.apply(render_workload(SPEC, target("alpha", 2)))
    cluster.apply(render_workload(SPEC, target("beta", 1)))
    wait_for(lambda: sum(w.ready for w in cluster.workloads() if w.namespace == "gridshift-contract") == 3)
    states = {w.deployment_name: w for w in cluster.workloads() if w.namespace == "gridshift-contract"}
    assert (states["alpha"].desired, states["alpha"].gpu_type, states["alpha"].deployment_namespace) == (
        2,
        GPU,
        "team-a",
    )
    wait_for(lambda: {i.gpu_type: i for i in cluster.gpu_inventory()}[GPU].used == before[GPU].used + 3)

    # Re-applying with another count scales the same object.
    cluster.apply(render_workload(SPEC, target("alpha", 1)))
    wait_for(lambda: [w.desired for w in cluster.workloads() if w.deployment_name == "alpha"] == [1])

    assert cluster.delete_deployment_objects("team-a", "alpha") >= 3  # Deployment, Service, PDB
    assert [w.deployment_name for w in cluster.workloads() if w.namespace == "gridshift-contract"] == ["beta"]
    cluster.delete_deployment_objects("team-a", "beta")
    assert cluster.delete_deployment_objects("team-a", "beta") == 0


def test_fake_member_cluster_honours_the_contract() -> None:
    check_member_contract(FakeMemberCluster("c1", gpus={GPU: 16}), total_gpus=16)


def test_fake_unreachable_cluster_raises_naming_it() -> None:
    cluster = FakeMemberCluster("eu-de", gpus={GPU: 8}, reachable=False)
    with pytest.raises(ClusterUnreachable, match="eu-de"):
        cluster.workloads()


def test_fake_counts_only_real_changes_as_writes() -> None:
    cluster = FakeMemberCluster("c1", gpus={GPU: 8})
    cluster.apply(render_workload(SPEC, target("alpha", 2)))
    writes = cluster.writes
    cluster.apply(render_workload(SPEC, target("alpha", 2)))
    assert cluster.writes == writes
