"""The engine a member Deployment runs (service.actuate): a replica the plan has no option for keeps the build
and --max-num-seqs it runs."""

from __future__ import annotations

from typing import Any

from gridshift.actuation import labels as L
from gridshift.profiles_catalog import default_performance_models
from gridshift.testing import FakeMemberCluster
from tests.service.harness import ServiceHarness, deployment_body
from tests.service.test_status import settled


def _deployment(member: FakeMemberCluster) -> dict[str, Any]:
    [obj] = [o for (kind, _, _), o in member.objects.items() if kind == "Deployment"]
    return obj


def _engine(member: FakeMemberCluster) -> tuple[str, list[str]]:
    """The image and args of the deployment's one Deployment."""
    container = _deployment(member)["spec"]["template"]["spec"]["containers"][0]
    return container["image"], list(container["args"])


def _max_num_seqs(member: FakeMemberCluster) -> int:
    args = _engine(member)[1]
    return int(args[args.index("--max-num-seqs") + 1])


def _edit(body: dict[str, Any], **spec: Any) -> None:
    body["spec"].update(spec)
    body["metadata"]["generation"] += 1


def _small_variant_on_70b() -> tuple[ServiceHarness, dict[str, Any]]:
    """A 70B deployment that runs its 8B fp8 variant (all one H100 holds), settled."""
    world = ServiceHarness(["eu-de"], profiles=list(default_performance_models()))
    body = deployment_body(rps=4.0, model={"servedName": "chat", "source": "meta-llama/Llama-3.1-70B-Instruct"})
    body["spec"]["variants"] = [
        {
            "name": "small",
            "profileModel": "meta-llama/Llama-3.1-8B-Instruct",
            "source": "meta-llama/Llama-3.1-8B-Instruct",
            "image": "registry.example/vllm:v0.11.0-small",
            "extraArgs": ["--quantization=fp8"],
        }
    ]
    world.add(body)
    settled(world)
    image, args = _engine(world.members["eu-de"])
    assert image == "registry.example/vllm:v0.11.0-small" and "--quantization=fp8" in args
    return world, body


def test_a_variant_replica_an_infeasible_plan_keeps_runs_its_build_and_batch_as_before() -> None:
    # Found in review: with no option left for the replica (an SLO nothing meets), it was re-rendered as the
    # 70B model's own build at vLLM's default batch of 256, on one 80 GB GPU it can never start on.
    world, body = _small_variant_on_70b()
    member = world.members["eu-de"]
    running = _engine(member)
    _edit(body, slo={"ttftP95Ms": 500, "tpotP95Ms": 1})

    writes = [world.cycle().member_writes for _ in range(2)]

    assert world.status()["lastDecision"]["summary"].startswith("Infeasible")
    assert _engine(member) == running and writes == [0, 0]
    assert _deployment(member)["spec"]["replicas"] == 1  # kept running, to not take the deployment down


def test_a_deployment_rendered_before_the_variant_was_written_down_keeps_its_build() -> None:
    # A Deployment of the previous version carries no variant annotation: its weights and image tell.
    world, body = _small_variant_on_70b()
    member = world.members["eu-de"]
    running = _engine(member)
    del _deployment(member)["metadata"]["annotations"][L.VARIANT]
    _edit(body, slo={"ttftP95Ms": 500, "tpotP95Ms": 1})

    world.cycle()

    assert _engine(member) == running
    assert _deployment(member)["metadata"]["annotations"][L.VARIANT] == "small"  # written with the next apply
    assert world.cycle().member_writes == 0


def test_replicas_in_a_region_forbidden_with_nowhere_else_to_go_keep_their_batch() -> None:
    world = ServiceHarness(["eu-de"])
    body = deployment_body(rps=4.0)
    world.add(body)
    settled(world)
    member = world.members["eu-de"]
    running = _engine(member)
    assert _max_num_seqs(member) < 256
    _edit(body, placement={"forbiddenRegions": ["eu-de"]})

    writes = [world.cycle().member_writes for _ in range(3)]

    assert world.status()["lastDecision"]["summary"].startswith("Infeasible")
    assert _engine(member) == running and writes == [0, 0, 0]  # was --max-num-seqs 256 and a rollout
