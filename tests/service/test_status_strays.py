"""What status says of Ready replicas where the deployment may no longer run (plan.strays) whose GPU type it no
longer has as an option anywhere: a type dropped from gpuTypes, or no longer offered."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tests.service.harness import H100, ServiceHarness, deployment_body, example_profile
from tests.service.test_status import conditions, message, samples, settled

A100 = "NVIDIA-A100-SXM4-80GB"


def _offering(gpu_type: str) -> dict[str, Any]:
    return {"gpuType": gpu_type, "hourlyCost": {"amount": 2.0, "currency": "USD"}}


def _on_a100_in_b(
    rps: float = 30.0, classes: list[dict[str, Any]] | None = None
) -> tuple[ServiceHarness, dict[str, Any], int]:
    """A deployment Ready on A100 in `b` (the only A100 cluster), `a` offering H100: world, body, replicas in b;
    planned by request class where `classes` are given (spec.demand.requestClasses)."""
    h100 = example_profile()
    world = ServiceHarness(["a", "b"], profiles=[h100, dataclasses.replace(h100, gpu_type=A100)])
    world.members["b"].gpus = {A100: 16}
    world.cluster_bodies["b"]["spec"]["offerings"] = [_offering(A100)]
    body = deployment_body(rps=rps, replica={"gpuTypes": [A100]})
    if classes is not None:
        body["spec"]["demand"]["requestClasses"] = classes
    world.add(body)
    world.cycle()
    world.cycle()
    placed = world.ready()
    assert placed["a"] == 0 and placed["b"] > 0, placed
    assert conditions(world.status())["SLOAtRisk"] == ("False", "WithinSLO")
    return world, body, placed["b"]


def _drop_a100_from_the_spec(world: ServiceHarness, body: dict[str, Any]) -> None:
    body["spec"]["replica"] = {"gpuTypes": [H100]}
    body["metadata"]["generation"] = 2


def _b_stops_offering_a100(world: ServiceHarness, body: dict[str, Any]) -> None:
    # The RegionalCluster no longer lists A100 (retired from the offer); the replicas on it run on meanwhile.
    body["spec"]["replica"] = {"gpuTypes": [H100, A100]}
    body["metadata"]["generation"] = 2
    world.cluster_bodies["b"]["spec"]["offerings"] = [_offering(H100)]
    world.cluster_bodies["b"]["metadata"]["resourceVersion"] = "2"


@pytest.mark.parametrize("revoke", [_drop_a100_from_the_spec, _b_stops_offering_a100], ids=["gpuTypes", "offerings"])
def test_ready_strays_on_a_gpu_type_no_longer_an_option_count_their_capacity_while_they_serve(revoke: Any) -> None:
    # Found in review: a stray's capacity was that of an option of its GPU type, 0 where none is left (its type
    # dropped from gpuTypes, or no longer offered): SLOAtRisk read CapacityShort, "Ready capacity 0 tokens/s",
    # while its Ready replicas took all the traffic until the move replaced them.
    world, body, running = _on_a100_in_b()
    for member in world.members.values():
        member.ready_immediately = False
    revoke(world, body)
    for _ in range(3):
        world.cycle()
        status = world.status()
        assert world.ready()["b"] == running
        assert conditions(status)["SLOAtRisk"] == ("False", "WithinSLO"), message(status, "SLOAtRisk")
        assert conditions(status)["Ready"] == ("True", "Migrating"), message(status, "Ready")
        assert samples(world, "gridshift_deployment_slo_at_risk") == [0.0]


@pytest.mark.parametrize("revoke", [_drop_a100_from_the_spec, _b_stops_offering_a100], ids=["gpuTypes", "offerings"])
def test_ready_strays_of_a_deployment_planned_by_request_class_count_their_profiles_capacity(revoke: Any) -> None:
    # Found in review: a class group's capacities were built on the GPU types of gpuTypes only, so with A100 dropped
    # from them its strays there counted 0: CapacityShort "Ready capacity 0 tokens/s ... not counted: Ready replicas
    # ... whose capacity no GPUProfile gives", while the A100 profile gave it. They count the group's mix on A100.
    classes = [
        {"name": "short", "promptTokens": 300, "outputTokens": 150, "share": 0.8},
        {"name": "long", "promptTokens": 6000, "outputTokens": 300, "share": 0.2},
    ]
    world, body, running = _on_a100_in_b(rps=5.0, classes=classes)
    before = message(world.status(), "SLOAtRisk")
    for member in world.members.values():
        member.ready_immediately = False
    revoke(world, body)
    for _ in range(2):
        world.cycle()
        status = world.status()
        assert world.ready()["b"] == running
        assert conditions(status)["SLOAtRisk"] == ("False", "WithinSLO"), message(status, "SLOAtRisk")
        assert message(status, "SLOAtRisk") == before
        assert conditions(status)["Ready"] == ("True", "Migrating"), message(status, "Ready")


def test_ready_strays_whose_capacity_no_profile_gives_are_named_not_claimed_to_serve_nothing() -> None:
    # The operator restarted with a catalog that has no A100 profile, and A100 dropped from gpuTypes: nothing gives
    # the capacity of the replicas still running on A100. They count 0, and CapacityShort says it leaves them out.
    world, body, running = _on_a100_in_b()
    world.profiles = [example_profile()]
    world.service = world.make_service(world.identity)
    for member in world.members.values():
        member.ready_immediately = False
    _drop_a100_from_the_spec(world, body)
    world.cycle()
    status = world.status()
    assert world.ready()["b"] == running
    assert conditions(status)["SLOAtRisk"] == ("True", "CapacityShort")
    assert (
        f"not counted: Ready replicas where it may no longer run, whose capacity no GPUProfile gives (b/{A100} "
        f"x{running}), serving until the move replaces them" in message(status, "SLOAtRisk")
    ), message(status, "SLOAtRisk")


def test_ready_strays_whose_profile_gives_no_capacity_at_the_slo_are_not_named_as_unknown() -> None:
    # Found in review: the SLO tightened until A100's profile gives no capacity (the decision explains "A100 cannot
    # meet the SLO even at batch 1"), while the replicas on A100 run on as strays. They count 0, rightly, but
    # CapacityShort named them as replicas "whose capacity no GPUProfile gives": a profile gives it, and it is 0.
    h100 = example_profile()
    slow = dataclasses.replace(h100, gpu_type=A100, step_base_ms=h100.step_base_ms + 60.0)
    world = ServiceHarness(["a", "b"], profiles=[h100, slow])
    world.members["b"].gpus = {A100: 16}
    world.cluster_bodies["b"]["spec"]["offerings"] = [_offering(A100)]
    body = deployment_body(rps=5.0, replica={"gpuTypes": [A100]})
    body["spec"]["slo"] = {"ttftP95Ms": 5000, "tpotP95Ms": 500}
    world.add(body)
    world.cycle()
    world.cycle()
    running = world.ready()["b"]
    assert running > 0 and conditions(world.status())["SLOAtRisk"] == ("False", "WithinSLO")
    for member in world.members.values():
        member.ready_immediately = False
    body["spec"]["slo"] = {"ttftP95Ms": 500, "tpotP95Ms": 50}
    body["spec"]["replica"] = {"gpuTypes": [H100, A100]}
    body["metadata"]["generation"] = 2
    world.cycle()
    status = world.status()
    assert world.ready()["b"] == running
    assert f"{A100} cannot meet the SLO even at batch 1" in status["lastDecision"]["explanation"]
    assert conditions(status)["SLOAtRisk"] == ("True", "CapacityShort")
    said = message(status, "SLOAtRisk")
    assert "no GPUProfile gives" not in said, said
    assert (
        f"counted as 0: Ready replicas on a GPU type whose GPUProfile gives it no capacity for this deployment's "
        f"spec (b/{A100} x{running}: the SLO, memory, or a request class it cannot serve)" in said
    ), said


def test_a_frozen_deployments_replicas_on_a_gpu_type_no_longer_offered_are_counted_out_of_its_cost() -> None:
    # Frozen keeps them running, but with b's offering gone nothing gives their GPU-hour price: status.cost leaves them
    # out and says so (found in review: it read 0 USD/h, cheaper than the deployment ran, with nothing saying so).
    world, body, running = _on_a100_in_b()
    assert "unpricedReplicas" not in world.status()["cost"]
    _b_stops_offering_a100(world, body)
    body["spec"]["migration"]["mode"] = "Frozen"
    status = settled(world)
    assert world.ready()["b"] == running
    assert status["cost"]["unpricedReplicas"] == running, status["cost"]
    said = f"cost excludes {running} replica(s), no price or power known for them: b/{A100} x{running}"
    assert said in status["lastDecision"]["explanation"], status["lastDecision"]
