"""End-to-end: a deployment whose demand is two request-size classes, on real control planes.

The operator process places it on two GPU types of one cluster (eu-fr offers H100 and L40S at
their list prices): the long prompts on H100, the short ones mostly on L40S; status carries the
per-class routing weights, and the world's member apiservers run the workloads of both types.
The planner test for the same world is tests/planner/test_classes.py; here the whole path runs:
CRD validation of requestClasses (CEL on the apiserver), the service's translation, the plan,
actuation per GPU type and status.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.operator_env import (
    H100,
    WORKLOADS,
    Fleet,
    OperatorProcess,
    inference_deployment,
    install_hub,
    regional_cluster,
    wait_until,
)

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

L40S = "NVIDIA-L40S"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
"""Shipped profiles on H100 (measured) and L40S (scaled): gridshift/data/profiles."""
LIST_PRICES = {H100: 12.29, L40S: 1.861, "NVIDIA-A100-SXM4-80GB": 5.12}
"""USD per GPU-hour, gridshift/data/gpu_prices.yaml."""
CLASSES = [
    {"name": "short", "promptTokens": 300, "outputTokens": 150, "share": 0.8},
    {"name": "long", "promptTokens": 4000, "outputTokens": 300, "share": 0.2},
]


@pytest.fixture(scope="module")
def fleet(control_planes: Any) -> Fleet:
    fleet = install_hub(control_planes, {"eu-de": 40.0, "eu-fr": 40.0, "us-tx": 40.0})
    clusters = []
    for name in control_planes.regions:
        cluster = regional_cluster(name, 40.0)
        for offering in cluster["spec"]["offerings"]:
            offering["hourlyCost"]["amount"] = LIST_PRICES[offering["gpuType"]]
        clusters.append(cluster)
    fleet.apply_hub(*clusters)
    return fleet


@pytest.fixture(scope="module")
def operator(fleet: Fleet, control_planes: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    logs = tmp_path_factory.mktemp("operator-logs")
    process = OperatorProcess(control_planes.kubeconfigs[control_planes.hub], logs, "classes").start()
    yield process
    process.stop()
    print(f"operator log: {process.log_path}")


def _mixed(name: str, classes: list[dict[str, Any]]) -> dict[str, Any]:
    body = inference_deployment(
        name,
        rps=8.0,
        model={"servedName": name, "source": MODEL},
        replica={"gpuTypes": [H100, L40S], "cpu": "1", "memory": "1Gi"},
        slo={"ttftP95Ms": 1000, "tpotP95Ms": 100},
        placement={"allowedRegions": ["eu-fr"]},
    )
    body["spec"]["demand"]["requestClasses"] = classes
    return body


def gpu_types_running(fleet: Fleet, name: str) -> dict[str, int]:
    """Desired replicas per GPU type of one InferenceDeployment's workloads in eu-fr."""
    found: dict[str, int] = {}
    for workload in fleet.workloads("eu-fr"):
        if workload["metadata"]["labels"].get("gridshift.dev/deployment") != f"{WORKLOADS}.{name}":
            continue
        selector = workload["spec"]["template"]["spec"].get("nodeSelector") or {}
        gpu = selector.get("nvidia.com/gpu.product", "?")
        found[gpu] = found.get(gpu, 0) + int(workload["spec"].get("replicas", 0))
    return found


def test_a_mixed_deployment_runs_on_two_gpu_types_with_per_class_weights(
    fleet: Fleet, operator: OperatorProcess
) -> None:
    fleet.apply_hub(_mixed("mixed", CLASSES))
    try:
        wait_until(lambda: len(fleet.status("mixed").get("classRouting") or []) >= 2, 120, "per-class routing")
        wait_until(
            lambda: len([n for n in gpu_types_running(fleet, "mixed").values() if n > 0]) >= 2, 120, "two GPU types"
        )
        status = fleet.status("mixed")
        weights: dict[str, dict[str, int]] = {}
        for route in status["classRouting"]:
            weights.setdefault(route["requestClass"], {})[route["gpuType"]] = route["weight"]
        assert set(weights) == {"short", "long"}, status["classRouting"]
        assert all(sum(w.values()) == 100 for w in weights.values())
        assert max(weights["long"], key=lambda t: weights["long"][t]) == H100, weights
        assert max(weights["short"], key=lambda t: weights["short"][t]) == L40S, weights
        running = gpu_types_running(fleet, "mixed")
        assert running.get(H100, 0) >= 1 and running.get(L40S, 0) >= 1, (running, operator.log()[-3000:])
    finally:
        fleet.hub("delete", "idep", "-n", WORKLOADS, "mixed", "--wait=true", "--timeout=60s", check=False)


def test_shares_that_do_not_add_up_are_refused_naming_the_field(fleet: Fleet) -> None:
    bad = _mixed("badshares", [CLASSES[0], {**CLASSES[1], "share": 0.5}])
    result = fleet.world.kubectl(
        fleet.world.hub, "apply", "--server-side", "-f", "-", input=json.dumps(bad), check=False
    )
    assert result.returncode != 0
    assert "requestClasses" in result.stderr and "add up to 1" in result.stderr, result.stderr
