"""The replicas a plan's cost leaves out (CostPrediction.unpriced): the explanation's line that names them kept short
and in a fixed order.

Found in review: the "cost excludes ..." line named every pool, in the order the clusters came in, so with many pools
it was as long as the status cut allowed and could change between cycles that changed nothing."""

from __future__ import annotations

from gridshift.planner import Cluster, Deployment, DeploymentPlan, make_plan
from tests.planner.planner_world import A100, H100, cluster, deployment, flat_prices, snapshot


def _excludes(plan: DeploymentPlan) -> list[str]:
    return [d for d in plan.explanation.details if d.startswith("cost excludes")]


def _many_pools(order: list[str]) -> tuple[Deployment, list[Cluster]]:
    """A Frozen deployment with 2 H100 replicas in each of 8 unreachable clusters that no longer offer H100 (none
    priced), placements and clusters listed in `order`."""
    d = deployment("chat", 1.0, placements=[(c, H100, 2) for c in order], mode="Frozen")
    return d, [cluster("a"), *(cluster(c, reachable=False, gpus={A100: 8}) for c in order)]


def test_the_cost_excludes_line_names_a_few_pools_in_a_fixed_order_and_counts_the_rest() -> None:
    names = [f"c{i}" for i in range(1, 9)]
    lines = []
    for order in (names, names[::-1], ["c5", "c2", "c8", "c1", "c7", "c3", "c6", "c4"]):
        d, clusters = _many_pools(order)
        plan = make_plan(snapshot([d], clusters, {c.name: flat_prices(0.1) for c in clusters}))
        cost = plan.for_deployment("ns/chat").cost
        assert cost.unpriced_replicas == 16
        assert cost.unpriced == tuple((c, H100, 2) for c in names)
        lines.append(_excludes(plan.for_deployment("ns/chat")))
    listed = ", ".join(f"c{i}/{H100} x2" for i in range(1, 6))
    said = f"cost excludes 16 replica(s), no price or power known for them: {listed}, and 3 more pool(s)"
    assert lines == [[said]] * 3, lines


def test_five_pools_are_all_named() -> None:
    d, clusters = _many_pools(["c3", "c1", "c5", "c2", "c4"])
    plan = make_plan(snapshot([d], clusters, {c.name: flat_prices(0.1) for c in clusters})).for_deployment("ns/chat")
    listed = ", ".join(f"c{i}/{H100} x2" for i in range(1, 6))
    assert _excludes(plan) == [f"cost excludes 10 replica(s), no price or power known for them: {listed}"]
