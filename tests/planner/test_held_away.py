"""Replicas an Auto or Advisory deployment holds in a cluster that cannot be reached, on a GPU type since dropped from
spec.gpuTypes (DeploymentPlan.held_away): the plan names them, for status to count as desired, and decides nothing
for them.

Found in review: named nowhere (`unreachable` lists spec.gpuTypes' types alone; Frozen alone listed the rest among
its targets), so status read desiredReplicas 0 while they ran on. Listing them as unreachable targets (a431c88) was
reverted: the decision then flipped between "b/A100 x2" and "nothing" with each change of b's reachability. So
the fix must change no decision: the plan of the same snapshot, targets included, is the one made without the held
replicas (which the plan never counted), and, b's own pools aside, the one made with b reachable."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gridshift.planner import Cluster, Deployment, DeploymentPlan, Offering, make_plan
from gridshift.planner.snapshot import RequestClass
from tests.planner.planner_world import A100, H100, cluster, deployment, flat_prices, snapshot

NOTHING_REPLACES = {A100: 8}
"""The one reachable cluster's offerings where it cannot run the deployment (spec.gpuTypes is H100 alone)."""
REPLACES = {H100: 16}
L4 = "NVIDIA-L4"


def _plan_of(d: Deployment, clusters: list[Cluster]) -> DeploymentPlan:
    return make_plan(snapshot([d], clusters, {c.name: flat_prices(0.1) for c in clusters})).for_deployment("ns/chat")


def _world(
    mode: str,
    a_gpus: dict[str, int],
    *,
    placements: list[tuple[str, str, int]] | None = None,
    b_gpus: dict[str, int] | None = None,
    b_reachable: bool = False,
) -> tuple[Deployment, list[Cluster]]:
    """`placements` (b holds 2 A100 replicas, a type dropped from gpuTypes, by default); a offers `a_gpus`, b
    `b_gpus` (H100 and A100 by default)."""
    held = placements if placements is not None else [("b", A100, 2)]
    d = deployment("chat", 1.0, placements=held, gpu_types=[H100], mode=mode)
    b = cluster("b", reachable=b_reachable, gpus=b_gpus or {H100: 8, A100: 8})
    return d, [cluster("a", gpus=a_gpus), b]


@pytest.mark.parametrize("a_gpus", [NOTHING_REPLACES, REPLACES], ids=["nothing replaces", "a replaces"])
@pytest.mark.parametrize("mode", ["Auto", "Advisory"])
def test_replicas_on_a_dropped_gpu_type_in_an_unreachable_cluster_are_held_away_not_targets(
    mode: str, a_gpus: dict[str, int]
) -> None:
    # Before: named nowhere, so status counted none of b's 2 replicas desired (counts_as_desired).
    plan = _plan_of(*_world(mode, a_gpus))
    assert plan.held_away == {("b", A100): 2}
    assert not [t for t in plan.targets if t.cluster == "b"], plan.targets  # no target: the decision leaves them out


@pytest.mark.parametrize("mode", ["Auto", "Advisory"])
def test_beside_an_accepted_gpu_type_in_the_same_unreachable_cluster_only_the_dropped_one_is_held_away(
    mode: str,
) -> None:
    plan = _plan_of(*_world(mode, NOTHING_REPLACES, placements=[("b", H100, 1), ("b", A100, 2)]))
    assert plan.held_away == {("b", A100): 2}
    assert [(t.gpu_type, t.replicas, t.reachable) for t in plan.targets] == [(H100, 1, False)]  # `unreachable`'s
    assert plan.cost.unpriced == (("b", A100, 2),)  # as the cost already said: H100 priced, A100 not


def test_none_are_held_away_in_frozen_mode_nor_where_the_cluster_answers() -> None:
    # Frozen keeps them among its targets (decided: "Frozen: keeps b/A100 x2"); reachable, they are strays.
    frozen = _plan_of(*_world("Frozen", NOTHING_REPLACES))
    assert frozen.held_away == {} and [(t.cluster, t.replicas, t.reachable) for t in frozen.targets] == [
        ("b", 2, False)
    ]
    back = _plan_of(*_world("Auto", REPLACES, b_reachable=True))
    assert back.held_away == {} and ("b", A100) in back.strays


def test_a_class_planned_deployment_holds_them_away_once() -> None:
    # Planned by request class in two groups (A100 and H100 homes), the L4 replicas held in b (a type dropped from
    # gpuTypes) are the main group's, no group's home: named once in the merged plan.
    classes = (RequestClass("short", 200.0, 100.0, 0.7), RequestClass("long", 6000.0, 400.0, 0.3))
    d = deployment("chat", 20.0, placements=[("a", H100, 2), ("b", L4, 3)], gpu_types=[H100, A100])
    d = replace(d, requirements=replace(d.requirements, request_classes=classes))
    a = Cluster("a", "a", 1.2, (Offering(H100, 16, 2.0, 75.5), Offering(A100, 16, 0.9, 75.5)), {}, reachable=True)
    plan = _plan_of(d, [a, cluster("b", reachable=False, gpus={L4: 8})])
    assert any(line.startswith("[") for line in plan.explanation.details)  # planned by class group
    assert plan.held_away == {("b", L4): 3}
    assert {t.cluster for t in plan.targets} == {"a"}


def _decisions(plan: DeploymentPlan) -> tuple[object, ...]:
    """What the plan does: targets, steps, routing, feasibility, capacity, engine settings, strays, reason and cost
    (not its words, nor the replicas its cost leaves out: those name b's replicas, as they did before)."""
    return (
        plan.targets,
        plan.steps,
        plan.routing,
        plan.class_routing,
        plan.feasible,
        plan.total_replicas,
        plan.capacity_tokens_per_s,
        plan.max_num_seqs,
        plan.variants,
        plan.strays,
        plan.replaces_strays,
        plan.explanation.reason,
        plan.cost.usd_per_hour,
    )


@pytest.mark.parametrize(
    ("a_gpus", "a_placed"),
    [(NOTHING_REPLACES, []), (REPLACES, []), (REPLACES, [("a", H100, 1)]), (REPLACES, [("a", H100, 3)])],
    ids=["nothing replaces", "a replaces", "a holds 1", "a holds more than needed"],
)
@pytest.mark.parametrize("mode", ["Auto", "Advisory"])
def test_holding_them_away_changes_no_decision(
    mode: str, a_gpus: dict[str, int], a_placed: list[tuple[str, str, int]]
) -> None:
    # b offers A100 alone: reachable, it could run nothing of the spec either.
    placements, b_gpus = [*a_placed, ("b", A100, 2)], {A100: 8}
    d, away = _world(mode, a_gpus, placements=placements, b_gpus=b_gpus)
    plan = _plan_of(d, away)
    without = _plan_of(replace(d, placements=tuple(p for p in d.placements if p.cluster != "b")), away)
    # What it does is what the same snapshot without b's replicas makes (the plan never counted them: no option, no
    # stray), targets included.
    assert _decisions(plan) == _decisions(without)
    assert plan.held_away == {("b", A100): 2} and without.held_away == {}
    # And b's own pools aside (once it answers its A100 replicas are strays, stopped or kept outside the plan), the
    # targets are those made with b reachable.
    back = _plan_of(*_world(mode, a_gpus, placements=placements, b_gpus=b_gpus, b_reachable=True))
    assert [t for t in plan.targets if t.cluster != "b"] == [t for t in back.targets if t.cluster != "b"]
    assert (plan.total_replicas, plan.feasible, plan.capacity_tokens_per_s) == (
        back.total_replicas,
        back.feasible,
        back.capacity_tokens_per_s,
    )
