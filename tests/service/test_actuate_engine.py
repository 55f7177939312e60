"""The engine a member Deployment runs (service.actuate): a replica the plan has no option for keeps the build
and --max-num-seqs it runs, and --max-num-seqs follows measured request sizes only past a dead band."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gridshift.actuation import labels as L
from gridshift.actuation.members import ClusterUnreachable
from gridshift.profiles_catalog import default_performance_models
from gridshift.service.actuate import MAX_NUM_SEQS_KEEP_ABOVE, MAX_NUM_SEQS_KEEP_BELOW
from gridshift.settings import OperatorSettings
from gridshift.signals.promql import Signal
from gridshift.testing import FakeMemberCluster
from tests.service.harness import ServiceHarness, deployment_body
from tests.service.test_status import PROMETHEUS, REF, settled


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
    template = _deployment(member)["spec"]["template"]
    _edit(body, slo={"ttftP95Ms": 500, "tpotP95Ms": 1})

    writes = [world.cycle().member_writes for _ in range(2)]

    assert world.status()["lastDecision"]["summary"].startswith("Infeasible")
    # The one write is the edit's GENERATION annotation: metadata, the pod template (a rollout) as it was.
    assert _engine(member) == running and writes == [1, 0]
    assert _deployment(member)["spec"]["template"] == template
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
    template = _deployment(member)["spec"]["template"]
    assert _max_num_seqs(member) < 256
    _edit(body, placement={"forbiddenRegions": ["eu-de"]})

    writes = [world.cycle().member_writes for _ in range(3)]

    assert world.status()["lastDecision"]["summary"].startswith("Infeasible")
    assert _engine(member) == running and writes == [1, 0, 0]  # was --max-num-seqs 256 and a rollout
    assert _deployment(member)["spec"]["template"] == template  # the write: the GENERATION annotation only


def _measured_world() -> tuple[ServiceHarness, dict[str, Any], FakeMemberCluster]:
    settings = OperatorSettings(revalidate_delay_seconds=0, plan_interval_seconds=60, prometheus_url="http://prom")
    world = ServiceHarness(["eu-de"], settings=settings)
    body = deployment_body(rps=4.0)
    world.add(body)
    settled(world)
    _edit(body, demand=dict(PROMETHEUS))
    return world, body, world.members["eu-de"]


def _measure(world: ServiceHarness, mean_prompt_tokens: float, advance: timedelta = timedelta(minutes=1)) -> int:
    """One cycle at 4 requests/s of `mean_prompt_tokens` and 200 output tokens, `advance` after the last; its
    member writes."""
    world.metrics.set_signal(REF, Signal.REQUEST_RATE, 4.0)
    world.metrics.set_signal(REF, Signal.PROMPT_TOKEN_RATE, 4.0 * mean_prompt_tokens)
    world.metrics.set_signal(REF, Signal.GENERATION_TOKEN_RATE, 800.0)
    return world.cycle(advance=advance).member_writes


def test_max_num_seqs_does_not_follow_a_jitter_of_the_measured_prompt_length() -> None:
    # Found in review: +/-2.5 % of mean prompt length moved --max-num-seqs 9, 8, 7, 6, 10, 11: a rollout of
    # every replica (a new pod template) nearly every cycle.
    world, _, member = _measured_world()
    assert _measure(world, 1000) == 1 and _max_num_seqs(member) == 9  # the edit's GENERATION annotation
    template = _deployment(member)["metadata"]["annotations"][L.SPEC_HASH]

    writes = [_measure(world, tokens) for tokens in (1025, 990, 1010, 975, 1000, 1020)]

    assert writes == [0] * 6 and _max_num_seqs(member) == 9
    assert _deployment(member)["metadata"]["annotations"][L.SPEC_HASH] == template


def test_max_num_seqs_follows_a_change_past_its_dead_band() -> None:
    # Each change a rollout interval after the last (OperatorSettings.max_num_seqs_interval_seconds): within it a
    # new value waits (tests/service/test_max_num_seqs_churn.py).
    interval = timedelta(seconds=OperatorSettings().max_num_seqs_interval_seconds)
    world, _, member = _measured_world()
    assert _measure(world, 1000) == 1 and _max_num_seqs(member) == 9  # the edit's GENERATION annotation
    # Longer prompts: the batch at SLO capacity falls below the band (the narrow side), and is rendered.
    assert _measure(world, 1200, interval) == 1
    lower = _max_num_seqs(member)
    assert lower < 9 * (1 - MAX_NUM_SEQS_KEEP_BELOW) - 1
    # A little shorter again: a batch one higher is within the band above the running value, kept.
    assert _measure(world, 1150) == 0 and _max_num_seqs(member) == lower
    # Back at 1000 tokens: 9 is past the band above, rendered.
    assert lower * (1 + MAX_NUM_SEQS_KEEP_ABOVE) + 1 < 9
    assert _measure(world, 1000, interval) == 1 and _max_num_seqs(member) == 9


def test_an_edited_slo_renders_its_max_num_seqs_at_once_even_within_the_band() -> None:
    world = ServiceHarness(["eu-de"])
    body = deployment_body(rps=4.0)
    world.add(body)
    settled(world)
    member = world.members["eu-de"]
    assert _max_num_seqs(member) == 9
    _edit(body, slo={"ttftP95Ms": 480, "tpotP95Ms": 50})  # a batch of 8 meets it: within the band of 9

    assert world.cycle().member_writes == 1
    assert _max_num_seqs(member) == 8
    assert world.cycle().member_writes == 0


def _edited_to_a_batch_of_8() -> tuple[ServiceHarness, dict[str, Any], FakeMemberCluster]:
    """A settled deployment at --max-num-seqs 9, its SLO just edited to one a batch of 8 meets (within the band)."""
    world = ServiceHarness(["eu-de"])
    body = deployment_body(rps=4.0)
    world.add(body)
    settled(world)
    member = world.members["eu-de"]
    assert _max_num_seqs(member) == 9
    _edit(body, slo={"ttftP95Ms": 480, "tpotP95Ms": 50})
    return world, body, member


def test_an_edited_slo_whose_apply_failed_is_rendered_the_next_cycle() -> None:
    # Found in review: the edit was told by status.observedGeneration, written also in a cycle whose member apply
    # failed; the next cycle saw no edit, and 8 sat within the band of the live 9 for good.
    world, body, member = _edited_to_a_batch_of_8()
    real = member.apply

    def times_out(manifests: list[dict[str, Any]], fence: Any = None) -> None:
        member.apply = real  # type: ignore[method-assign]
        raise ClusterUnreachable("eu-de", "apply timed out")

    member.apply = times_out  # type: ignore[method-assign]
    failed = world.cycle()
    assert failed.member_writes == 0 and failed.errors
    assert world.status()["observedGeneration"] == body["metadata"]["generation"]

    assert world.cycle().member_writes == 1
    assert _max_num_seqs(member) == 8
    assert _deployment(member)["metadata"]["annotations"][L.GENERATION] == str(body["metadata"]["generation"])
    assert world.cycle().member_writes == 0


def test_an_edited_slo_is_rendered_once_its_cluster_is_reachable_again() -> None:
    world, _, member = _edited_to_a_batch_of_8()
    member.reachable = False
    world.cycle()
    member.reachable = True

    assert [world.cycle().member_writes for _ in range(2)] == [1, 0]
    assert _max_num_seqs(member) == 8


def test_a_deployment_of_the_previous_release_is_annotated_with_its_generation_without_a_rollout() -> None:
    # No GENERATION annotation counts as another generation: the plan's value is rendered, here the value it runs,
    # so the one write is the annotation and the pod template (a rollout) stays as it was.
    world = ServiceHarness(["eu-de"])
    body = deployment_body(rps=4.0)
    world.add(body)
    settled(world)
    member = world.members["eu-de"]
    template = _deployment(member)["spec"]["template"]
    del _deployment(member)["metadata"]["annotations"][L.GENERATION]

    assert [world.cycle().member_writes for _ in range(2)] == [1, 0]
    assert _deployment(member)["metadata"]["annotations"][L.GENERATION] == str(body["metadata"]["generation"])
    assert _deployment(member)["spec"]["template"] == template


def _quantised_on_load(*names: str) -> tuple[ServiceHarness, dict[str, Any], FakeMemberCluster]:
    """A 70B deployment running a build that is the model's own weights and image with --quantization=fp8 (one
    variant per name, all alike), settled, its Deployment's VARIANT annotation removed (an earlier release's)."""
    world = ServiceHarness(["eu-de"], profiles=list(default_performance_models()))
    body = deployment_body(rps=4.0, model={"servedName": "chat", "source": "meta-llama/Llama-3.1-70B-Instruct"})
    body["spec"]["variants"] = [
        {"name": name, "profileModel": "meta-llama/Llama-3.1-8B-Instruct", "extraArgs": ["--quantization=fp8"]}
        for name in names
    ]
    world.add(body)
    settled(world)
    member = world.members["eu-de"]
    assert "--quantization=fp8" in _engine(member)[1]
    del _deployment(member)["metadata"]["annotations"][L.VARIANT]
    return world, body, member


def test_an_earlier_releases_quantise_on_load_replica_keeps_its_build() -> None:
    # Found in review: told by weights and image alone, the fp8 build read as the model's own, and a replica the
    # plan has no option for was rolled to the unquantised 70B model.
    world, body, member = _quantised_on_load("fp8")
    running = _engine(member)
    _edit(body, slo={"ttftP95Ms": 500, "tpotP95Ms": 1})

    world.cycle()

    assert world.status()["lastDecision"]["summary"].startswith("Infeasible")
    assert _engine(member) == running
    assert _deployment(member)["metadata"]["annotations"][L.VARIANT] == "fp8"
    assert world.cycle().member_writes == 0


def test_an_earlier_releases_replica_of_builds_alike_keeps_its_container_as_it_runs() -> None:
    # Two builds its weights, image and args fit equally: no guess rolled out, and none written down.
    world, body, member = _quantised_on_load("fp8", "fp8-too")
    running = _engine(member)
    template = _deployment(member)["spec"]["template"]
    _edit(body, slo={"ttftP95Ms": 500, "tpotP95Ms": 1})

    writes = [world.cycle().member_writes for _ in range(2)]

    assert world.status()["lastDecision"]["summary"].startswith("Infeasible")
    assert _engine(member) == running and _deployment(member)["spec"]["template"] == template
    assert L.VARIANT not in _deployment(member)["metadata"]["annotations"]
    assert writes == [1, 0]  # the edit's GENERATION annotation
