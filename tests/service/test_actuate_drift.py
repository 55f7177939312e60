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

    def apply(self, manifests: Sequence[Manifest]) -> None:
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
