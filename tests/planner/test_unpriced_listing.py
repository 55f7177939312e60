"""The replicas a plan's cost leaves out (CostPrediction.unpriced): all of them counted, and the explanation's lines
that name them kept short and in a fixed order.

Found in review: a deployment's replicas on a GPU type since dropped from spec.gpuTypes, in a cluster that cannot
be reached, were neither priced nor counted (Frozen; then Auto and Advisory with nothing reachable to replace them:
status.cost read low, or 0 USD/h, with nothing saying so); the
"cost excludes ..." line named every pool, in the order the snapshot listed them, so with many pools it was as long
as the status cut allowed and could change between cycles that changed nothing; and so did its sibling, "still
running outside the plan, and not in its cost: ..."."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from gridshift.planner import Cluster, Deployment, DeploymentPlan, Offering, PlannerSettings, make_plan
from gridshift.planner.snapshot import Placement, RequestClass
from tests.planner.planner_world import A100, H100, cluster, deployment, flat_prices, snapshot


def _excludes(plan: DeploymentPlan) -> list[str]:
    return [d for d in plan.explanation.details if d.startswith("cost excludes")]


def test_a_frozen_deployments_replicas_on_a_dropped_gpu_type_in_an_unreachable_cluster_are_counted_out() -> None:
    # Frozen keeps both: 1 H100 in a (priced) and 2 A100 in b, a type since dropped from gpuTypes, b unreachable.
    # Before: the A100 replicas were in neither `unreachable` (spec.gpuTypes only) nor the reachable Frozen
    # placements, so the cost left them out and unpriced was ().
    d = deployment("chat", 1.0, placements=[("a", H100, 1), ("b", A100, 2)], gpu_types=[H100], mode="Frozen")
    clusters = [cluster("a"), cluster("b", reachable=False, gpus={H100: 8, A100: 8})]
    plan = make_plan(snapshot([d], clusters, {"a": flat_prices(0.1), "b": flat_prices(0.1)})).for_deployment("ns/chat")
    assert plan.cost.usd_per_hour > 0
    assert plan.cost.unpriced == (("b", A100, 2),)
    assert plan.cost.unpriced_replicas == 2
    said = f"cost excludes 2 replica(s), no price or power known for them: b/{A100} x2"
    assert _excludes(plan) == [said], plan.explanation.details


def test_a_dropped_gpu_type_in_an_unreachable_cluster_is_counted_once_beside_a_listed_one() -> None:
    # b is unreachable and offers no H100 any more: its H100 replica (in `unreachable`) and its A100 one (a type
    # dropped from gpuTypes) are both left out, each counted once.
    placements = [("a", H100, 1), ("b", H100, 1), ("b", A100, 3)]
    d = deployment("chat", 1.0, placements=placements, gpu_types=[H100], mode="Frozen")
    clusters = [cluster("a"), cluster("b", reachable=False, gpus={A100: 8})]
    plan = make_plan(snapshot([d], clusters, {"a": flat_prices(0.1), "b": flat_prices(0.1)})).for_deployment("ns/chat")
    assert plan.cost.unpriced == (("b", A100, 3), ("b", H100, 1))
    assert plan.cost.unpriced_replicas == 4


def _plan_of(d: Deployment, clusters: list[Cluster]) -> DeploymentPlan:
    return make_plan(snapshot([d], clusters, {c.name: flat_prices(0.1) for c in clusters})).for_deployment("ns/chat")


@pytest.mark.parametrize("mode", ["Auto", "Advisory"])
def test_a_dropped_gpu_type_in_an_unreachable_cluster_nothing_replaces_is_counted_out_in_any_mode(mode: str) -> None:
    # b is unreachable with 2 A100 replicas, a type since dropped from gpuTypes; a, the one reachable cluster, offers
    # no H100, so nothing replaces them: they run on, kept as `unreachable`'s would be. Before: in neither
    # `unreachable` nor the Frozen branch, so the plan read "Infeasible: nothing; 0.000 USD/h" with unpriced ().
    d = deployment("chat", 1.0, placements=[("b", A100, 2)], gpu_types=[H100], mode=mode)
    plan = _plan_of(d, [cluster("a", gpus={A100: 8}), cluster("b", reachable=False, gpus={H100: 8, A100: 8})])
    assert plan.cost.usd_per_hour == 0.0
    assert plan.cost.unpriced == (("b", A100, 2),)
    assert plan.cost.unpriced_replicas == 2
    said = f"cost excludes 2 replica(s), no price or power known for them: b/{A100} x2"
    assert _excludes(plan) == [said], plan.explanation.details


@pytest.mark.parametrize("mode", ["Auto", "Advisory"])
def test_a_dropped_gpu_type_beside_a_kept_priced_one_is_counted_once_and_not_priced(mode: str) -> None:
    # b keeps 1 H100 (an accepted type b still offers: priced as the option it was, DeploymentProblem.away) and 2
    # A100 (dropped: no price known) with nothing reachable to replace them: the H100 is priced, the A100 counted.
    clusters = [cluster("a", gpus={A100: 8}), cluster("b", reachable=False, gpus={H100: 8, A100: 8})]
    d = deployment("chat", 1.0, placements=[("b", H100, 1), ("b", A100, 2)], gpu_types=[H100], mode=mode)
    plan = _plan_of(d, clusters)
    h100_alone = _plan_of(deployment("chat", 1.0, placements=[("b", H100, 1)], gpu_types=[H100], mode=mode), clusters)
    assert plan.cost.usd_per_hour > 0
    assert plan.cost.usd_per_hour == pytest.approx(h100_alone.cost.usd_per_hour)  # the H100's price alone
    assert plan.cost.unpriced == (("b", A100, 2),)


def test_a_dropped_gpu_type_and_an_unoffered_one_in_an_unreachable_cluster_are_each_counted_once() -> None:
    # b no longer offers H100: its H100 replica (in `unreachable`, no price) and its A100 ones (dropped) both run on,
    # nothing reachable replacing them; each pool counted once.
    placements = [("b", H100, 1), ("b", A100, 3)]
    d = deployment("chat", 1.0, placements=placements, gpu_types=[H100])
    plan = _plan_of(d, [cluster("a", gpus={A100: 8}), cluster("b", reachable=False, gpus={A100: 8})])
    assert plan.cost.unpriced == (("b", A100, 3), ("b", H100, 1))
    assert plan.cost.unpriced_replicas == 4


@pytest.mark.parametrize("mode", ["Auto", "Advisory"])
def test_a_dropped_gpu_type_in_an_unreachable_cluster_the_plan_replaces_is_left_out_as_an_accepted_one_is(
    mode: str,
) -> None:
    # a can run the deployment: the plan replaces b's replicas (stopped as strays once b answers again), so they are
    # not in its cost, neither the accepted type's (H100) nor the dropped one's (A100), nor counted as unpriced.
    d = deployment("chat", 1.0, placements=[("b", H100, 1), ("b", A100, 2)], gpu_types=[H100], mode=mode)
    plan = _plan_of(d, [cluster("a"), cluster("b", reachable=False, gpus={H100: 8, A100: 8})])
    assert any(t.cluster == "a" and t.replicas > 0 for t in plan.targets)
    assert plan.cost.unpriced == ()
    assert not _excludes(plan)


def _many_pools(order: list[str]) -> tuple[Deployment, list[Cluster]]:
    """A Frozen deployment with 2 H100 replicas in each of 8 unreachable clusters that no longer offer H100 (none
    priced), placements and clusters listed in `order`."""
    d = deployment("chat", 1.0, placements=[(c, H100, 2) for c in order], mode="Frozen")
    return d, [cluster("a"), *(cluster(c, reachable=False, gpus={A100: 8}) for c in order)]


def _planned_in_three_orders(build: Callable[[list[str]], tuple[Deployment, list[Cluster]]]) -> list[DeploymentPlan]:
    """The plan of ns/chat for 8 pools c1..c8 built by `build` with placements and clusters in three orders: the
    names', reversed, and shuffled (before: lines followed the snapshot's order, c5, c2, c8, ... for the last)."""
    names = [f"c{i}" for i in range(1, 9)]
    plans = []
    for order in (names, names[::-1], ["c5", "c2", "c8", "c1", "c7", "c3", "c6", "c4"]):
        d, clusters = build(order)
        plans.append(
            make_plan(snapshot([d], clusters, {c.name: flat_prices(0.1) for c in clusters})).for_deployment("ns/chat")
        )
    return plans


def test_the_cost_excludes_line_names_a_few_pools_in_a_fixed_order_and_counts_the_rest() -> None:
    plans = _planned_in_three_orders(_many_pools)
    assert all(p.cost.unpriced_replicas == 16 for p in plans)
    assert all(p.cost.unpriced == tuple((f"c{i}", H100, 2) for i in range(1, 9)) for p in plans)
    listed = ", ".join(f"c{i}/{H100} x2" for i in range(1, 6))
    said = f"cost excludes 16 replica(s), no price or power known for them: {listed}, and 3 more pool(s)"
    assert [_excludes(p) for p in plans] == [[said]] * 3


def test_five_pools_are_all_named() -> None:
    d, clusters = _many_pools(["c3", "c1", "c5", "c2", "c4"])
    plan = make_plan(snapshot([d], clusters, {c.name: flat_prices(0.1) for c in clusters})).for_deployment("ns/chat")
    listed = ", ".join(f"c{i}/{H100} x2" for i in range(1, 6))
    assert _excludes(plan) == [f"cost excludes 10 replica(s), no price or power known for them: {listed}"]


def _outside(plan: DeploymentPlan) -> list[str]:
    return [d for d in plan.explanation.details if d.startswith("still running outside the plan")]


def _strays(order: list[str]) -> tuple[Deployment, list[Cluster]]:
    """A deployment with 1 H100 replica in each of 8 reachable clusters and an SLO no GPU meets: none is an option,
    nothing can replace them, so the plan keeps them all outside it. Placements and clusters listed in `order`."""
    d = deployment("chat", 3.0, placements=[(c, H100, 1) for c in order], tpot_ms=1.0)
    return d, [cluster(c) for c in order]


def test_the_still_running_outside_line_names_a_few_pools_in_a_fixed_order_and_counts_the_rest() -> None:
    plans = _planned_in_three_orders(_strays)
    assert all(p.cost.unpriced_replicas == 8 for p in plans)
    assert not any(_excludes(p) for p in plans)  # the strays are said once, on their own line
    listed = ", ".join(f"c{i}/{H100} x1" for i in range(1, 6))
    said = f"still running outside the plan, and not in its cost: {listed}, and 3 more pool(s)"
    assert [_outside(p) for p in plans] == [[said]] * 3


def test_five_strays_pools_are_all_named_in_order() -> None:
    d, clusters = _strays(["c3", "c1", "c5", "c2", "c4"])
    plan = make_plan(snapshot([d], clusters, {c.name: flat_prices(0.1) for c in clusters})).for_deployment("ns/chat")
    listed = ", ".join(f"c{i}/{H100} x1" for i in range(1, 6))
    assert _outside(plan) == [f"still running outside the plan, and not in its cost: {listed}"]


def _excludes_in_groups(plan: DeploymentPlan) -> list[str]:
    return [d for d in plan.explanation.details if d.startswith("[") and "] cost excludes" in d]


def test_a_class_planned_deployments_unpriced_pools_are_sorted_across_its_groups() -> None:
    # Two class groups (short+long at home on A100, the group listed first, and long on H100), nothing free in the
    # one reachable cluster, and each group's replicas in an unreachable cluster that no longer offers their type:
    # z/A100 (the first group's) and c/H100 (the second's), both kept and unpriced. Merged group by group, the
    # deployment's CostPrediction.unpriced would read z before c, against the order the type promises (by cluster,
    # then GPU type; as one group's does). Status reads only its count; the groups' own lines are sorted apart.
    chat = deployment("chat", 20.0, gpu_types=(H100, A100))
    classes = (RequestClass("short", 200.0, 100.0, 0.7), RequestClass("long", 6000.0, 400.0, 0.3))
    running = (Placement("c", H100, 2, 2), Placement("z", A100, 3, 3))
    d = replace(chat, requirements=replace(chat.requirements, request_classes=classes), placements=running)
    full = Cluster("a", "a", 1.2, (Offering(H100, 0, 2.0, 75.5), Offering(A100, 0, 0.9, 75.5)), {}, reachable=True)
    clusters = [full, cluster("c", reachable=False, gpus={A100: 8}), cluster("z", reachable=False, gpus={H100: 8})]
    world = snapshot([d], clusters, {c.name: flat_prices(0.1) for c in clusters})
    plan = make_plan(world, PlannerSettings(time_budget_seconds=2.0)).for_deployment("ns/chat")
    groups = [line.split("]")[0] for line in _excludes_in_groups(plan)]
    assert groups == ["[short+long", "[long"], plan.explanation.details  # two groups, the A100 one first
    assert plan.cost.unpriced == (("c", H100, 2), ("z", A100, 3))
    assert plan.cost.unpriced_replicas == 5
