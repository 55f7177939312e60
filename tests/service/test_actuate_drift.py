"""Member objects changed or deleted by hand are applied again within a cycle (service.actuate): the
live objects are compared with their rendering, not with the spec-hash annotation kubectl edit keeps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gridshift.actuation.render import Manifest
from gridshift.testing import FakeMemberCluster
from tests.service.harness import H100, WORKLOADS, ServiceHarness, deployment_body


def _steady(world: ServiceHarness) -> FakeMemberCluster:
    world.add(deployment_body("chat", rps=2.0))
    for _ in range(3):
        world.cycle()
    assert world.cycle().member_writes == 0  # idle: nothing applied
    return world.members["eu-fr"]


def _deployment(member: FakeMemberCluster) -> dict[str, Any]:
    [obj] = [o for (kind, _, _), o in member.objects.items() if kind == "Deployment"]
    return obj


def test_a_hand_edited_image_security_context_and_args_are_restored_within_a_cycle() -> None:
    world = ServiceHarness(["eu-fr"])
    member = _steady(world)
    container = _deployment(member)["spec"]["template"]["spec"]["containers"][0]
    rendered = dict(container)
    # kubectl edit: the spec-hash annotation stays as it was.
    container["image"] = "evil/vllm:latest"
    del container["securityContext"]
    container["args"] = [*container["args"], "--trust-remote-code"]

    report = world.cycle()

    container = _deployment(member)["spec"]["template"]["spec"]["containers"][0]
    assert report.member_writes == 1
    assert container["image"] == rendered["image"] and container["args"] == rendered["args"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert world.cycle().member_writes == 0


def test_a_deleted_network_policy_comes_back_within_a_cycle() -> None:
    world = ServiceHarness(["eu-fr"])
    member = _steady(world)
    [key] = [k for k in member.objects if k[0] == "NetworkPolicy"]
    writes = member.writes
    del member.objects[key]

    assert world.cycle().member_writes == 1
    assert key in member.objects and member.writes == writes + 1  # the policy alone was applied
    assert world.cycle().member_writes == 0


class _KeepsOthersFields(FakeMemberCluster):
    """Server-side apply leaves what another writer added beside gridshift's fields (a sidecar)."""

    def apply(self, manifests: Sequence[Manifest], fence: Any = None) -> None:
        super().apply(manifests)
        for (kind, _, _), obj in self.objects.items():
            if kind == "Deployment":
                containers = obj["spec"]["template"]["spec"]["containers"]
                if len(containers) == 1:
                    containers.append({"name": "sidecar", "image": "proxy"})


def test_what_an_apply_cannot_undo_is_not_applied_again_every_cycle() -> None:
    world = ServiceHarness(["eu-fr"])
    world.members["eu-fr"] = _KeepsOthersFields("eu-fr", gpus={H100: 16})
    member = _steady(world)
    containers = _deployment(member)["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["vllm", "sidecar"]
    containers[0]["image"] = "evil/vllm:latest"  # repairable: applied again at once

    assert world.cycle().member_writes == 1
    assert _deployment(member)["spec"]["template"]["spec"]["containers"][0]["image"] != "evil/vllm:latest"
    # Once more, over the state the first apply left (the sidecar), then never while nothing changes.
    assert [world.cycle().member_writes for _ in range(4)] == [1, 0, 0, 0]
    assert {w.namespace for w in member.workloads([WORKLOADS])} == {WORKLOADS}


def test_a_replica_on_an_l4_starts_with_the_max_model_len_its_kv_cache_holds() -> None:
    # Found in review: Llama-3.1-8B on an L4 was rendered without --max-model-len, and vLLM refuses to start
    # when one sequence of the model's 131,072 positions does not fit the KV cache. The plan's length reaches
    # the member's Deployment; an H100 replica keeps vLLM's default.
    from gridshift.profiles_catalog import default_performance_models

    l4 = "NVIDIA-L4"
    world = ServiceHarness(["eu-fr"], profiles=list(default_performance_models()))
    world.members["eu-fr"] = FakeMemberCluster("eu-fr", gpus={l4: 16, H100: 16})
    world.cluster_bodies["eu-fr"]["spec"]["offerings"] = [
        {"gpuType": l4, "hourlyCost": {"amount": 0.5, "currency": "USD"}},
        {"gpuType": H100, "hourlyCost": {"amount": 2.0, "currency": "USD"}},
    ]
    llama = {"servedName": "chat", "source": "meta-llama/Llama-3.1-8B-Instruct"}
    slo = {"ttftP95Ms": 5000, "tpotP95Ms": 200}  # an L4 decodes a step in 55 ms at the least
    world.add(deployment_body("chat", rps=0.5, model=llama, replica={"gpuTypes": [l4]}, slo=slo))
    world.add(
        deployment_body("big", rps=0.5, model={**llama, "servedName": "big"}, replica={"gpuTypes": [H100]}, slo=slo)
    )
    for _ in range(3):
        world.cycle()
    expected = next(
        m.kv_memory.max_model_len()
        for m in default_performance_models()
        if (m.model, m.gpu_type) == ("meta-llama/Llama-3.1-8B-Instruct", l4) and m.kv_memory is not None
    )
    args = {
        obj["spec"]["template"]["spec"]["nodeSelector"]["nvidia.com/gpu.product"]: obj["spec"]["template"]["spec"][
            "containers"
        ][0]["args"]
        for (kind, _, _), obj in world.members["eu-fr"].objects.items()
        if kind == "Deployment"
    }
    assert expected is not None and args[l4][args[l4].index("--max-model-len") + 1] == str(expected)
    assert "--max-model-len" not in args[H100]
