"""What a decision's explanation (status.lastDecision.explanation: its details) says of an Infeasible plan and of
the replicas running where the deployment may no longer run (found in review).

An Infeasible decision's explanation was empty (maxReplicas cut below the demand, minRegions unmet, the only
cluster unreachable) while Ready's message said why: it opens with that reason now, in the same words. A running
placement's gaps counted only the replicas where the deployment may run ("breaks minReplicas 1 (0 running)") while
the replicas in a region since forbidden ran and served: they are counted apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from gridshift.planner import PlannerSettings, make_plan
from gridshift.planner import snapshot as S
from gridshift.planner.plan import _joined_reasons
from tests.planner.planner_world import A100, H100, H100_MODEL, cluster, deployment, flat_prices, snapshot


def _max_replicas_cut() -> S.Snapshot:
    d = deployment("chat", 40.0, max_replicas=1, placements=[("a", H100, 1)])
    return snapshot([d], [cluster("a")], {"a": flat_prices(0.1)})


def _min_regions_unmet() -> S.Snapshot:
    # b is an eligible region with no GPU free: the plan spreads over one region of the two asked for.
    d = deployment("chat", 1.0, min_regions=2, placements=[("a", H100, 1)])
    return snapshot([d], [cluster("a"), cluster("b", gpus={H100: 0})], {"a": flat_prices(0.1), "b": flat_prices(0.1)})


def _only_cluster_unreachable() -> S.Snapshot:
    d = deployment("chat", 1.0, placements=[("a", H100, 1)])
    return snapshot([d], [cluster("a", reachable=False)], {"a": flat_prices(0.1)})


def _min_replicas_above_inventory() -> S.Snapshot:
    d = deployment("chat", 1.0, min_replicas=4, placements=[("a", H100, 1)])
    return snapshot([d], [cluster("a", gpus={H100: 2})], {"a": flat_prices(0.1)})


@pytest.mark.parametrize(
    "world",
    [_max_replicas_cut, _min_regions_unmet, _only_cluster_unreachable, _min_replicas_above_inventory],
    ids=["maxReplicas", "minRegions", "unreachable", "minReplicas"],
)
def test_an_infeasible_decision_explains_why_in_the_words_of_ready(world: Callable[[], S.Snapshot]) -> None:
    plan = make_plan(world()).for_deployment("ns/chat")
    assert not plan.feasible and plan.explanation.reason == "Infeasible"
    assert plan.infeasible_reason
    # The reason Ready's message gives (service.status._plan_problem), first, and said once.
    assert plan.explanation.details[:1] == (plan.infeasible_reason,), plan.explanation.details
    assert plan.explanation.details.count(plan.infeasible_reason) == 1


def test_a_deployment_with_nowhere_to_run_says_each_note_once() -> None:
    # Its infeasible reason holds the problem's notes (the clusters ruled out): the details do not repeat them.
    d = deployment("chat", 1.0, forbidden=["a"], placements=[("a", H100, 1)])
    plan = make_plan(snapshot([d], [cluster("a")], {"a": flat_prices(0.1)})).for_deployment("ns/chat")
    assert plan.infeasible_reason and "a in forbiddenRegions" in plan.infeasible_reason
    assert plan.explanation.details[:1] == (plan.infeasible_reason,), plan.explanation.details
    assert "\n".join(plan.explanation.details).count("a in forbiddenRegions") == 1, plan.explanation.details


def test_a_feasible_plan_has_no_infeasible_reason_in_its_details() -> None:
    d = deployment("chat", 1.0, placements=[("a", H100, 1)])
    plan = make_plan(snapshot([d], [cluster("a")], {"a": flat_prices(0.1)})).for_deployment("ns/chat")
    assert plan.feasible and plan.explanation.reason == "NoChange"
    assert plan.explanation.details == ()


@pytest.mark.parametrize(
    ("spec", "placements", "said"),
    [
        (
            {"forbidden": ["b"]},
            [("b", H100, 1)],
            "the running placement breaks minReplicas 1 (0 running where it may run; 1 where it may no longer run)",
        ),
        (
            {"gpu_types": [H100]},
            [("b", A100, 2)],
            "the running placement breaks minReplicas 1 (0 running where it may run; 2 where it may no longer run)",
        ),
        (
            {"forbidden": ["c"], "min_replicas": 2, "min_regions": 2},
            [("a", H100, 1), ("c", H100, 1)],
            "the running placement breaks minReplicas 2 (1 running where it may run; 1 where it may no longer run), "
            "minRegions 2 (1 region(s) running where it may run)",
        ),
    ],
    ids=["region forbidden", "GPU type dropped", "minRegions"],
)
def test_replicas_where_it_may_no_longer_run_are_counted_apart_not_as_none_running(
    spec: dict[str, object], placements: list[tuple[str, str, int]], said: str
) -> None:
    # Status counts the Ready ones as serving until the move replacing them is done (docs/status.md): "0 running"
    # beside them read as a deployment down.
    d = deployment("chat", 1.0, placements=placements, **spec)
    clusters = [cluster("a"), cluster("b", gpus={H100: 16, A100: 16}), cluster("c")]
    plan = make_plan(snapshot([d], clusters, {c: flat_prices(0.1) for c in "abc"})).for_deployment("ns/chat")
    assert plan.replaces_strays and plan.explanation.reason == "PlacementRules", plan.explanation.summary
    assert said in plan.explanation.details, plan.explanation.details


def test_minregions_above_the_eligible_regions_is_said_once() -> None:
    # Found in review: "minRegions 3 exceeds the eligible regions", then the problem's note "minRegions 3 cannot be
    # met: only 2 eligible region(s) can run it". Ready's reason says the count now; the note is not repeated.
    d = deployment("chat", 1.0, min_regions=3, placements=[("a", H100, 1)])
    clusters = [cluster("a"), cluster("b")]
    plan = make_plan(snapshot([d], clusters, {c: flat_prices(0.1) for c in "ab"})).for_deployment("ns/chat")
    assert plan.infeasible_reason == "minRegions 3 exceeds the 2 eligible region(s)"
    assert plan.explanation.details[:1] == (plan.infeasible_reason,), plan.explanation.details
    assert [x for x in plan.explanation.details if "minRegions" in x] == [plan.infeasible_reason]


def _classed(running: list[tuple[str, str, int, int]], rps: float = 20.0, **spec: object) -> S.Deployment:
    chat = deployment("chat", rps, gpu_types=(H100, A100), **spec)
    classes = (S.RequestClass("short", 200.0, 100.0, 0.7), S.RequestClass("long", 6000.0, 400.0, 0.3))
    placements = tuple(S.Placement(*p) for p in running)
    return replace(chat, requirements=replace(chat.requirements, request_classes=classes), placements=placements)


def _offers(name: str, h100: float, a100: float, gpus: int = 8) -> S.Cluster:
    offerings = (S.Offering(H100, gpus, h100, 75.5), S.Offering(A100, gpus, a100, 75.5))
    return S.Cluster(name=name, region=name, pue=1.2, offerings=offerings, labels={}, reachable=True)


@pytest.mark.parametrize(
    ("running", "spec"),
    [([("a", H100, 1, 1)], {"max_replicas": 2}), ([("a", H100, 7, 7), ("b", A100, 1, 1)], {"min_regions": 3})],
    ids=["maxReplicas", "minRegions"],
)
def test_a_class_planned_infeasible_decision_opens_with_its_reason(
    running: list[tuple[str, str, int, int]], spec: dict[str, object]
) -> None:
    # Found in review: the groups' details in group order, "[short] b/A100 wins ..." before "[long] needs more
    # tokens/s ...", and a group serving every class said the deployment's reason again under its label.
    clusters = [_offers("a", 2.0, 0.9), _offers("b", 2.2, 0.8)]
    world = snapshot([_classed(running, **spec)], clusters, {c.name: flat_prices(0.1) for c in clusters})
    plan = make_plan(world, PlannerSettings(time_budget_seconds=2.0)).for_deployment("ns/chat")
    assert plan.infeasible_reason and plan.explanation.reason == "Infeasible"
    assert plan.explanation.details[:1] == (plan.infeasible_reason,), plan.explanation.details
    repeated = [x for x in plan.explanation.details[1:] if x.endswith(f"] {plan.infeasible_reason}")]
    assert all(not x.startswith("[short+long]") for x in repeated), plan.explanation.details


def test_replicas_kept_in_an_unreachable_cluster_it_may_use_are_not_said_to_be_none() -> None:
    # Found in review: "(0 running where it may run; 1 where it may no longer run)" with 1 replica in unreachable a,
    # a cluster the deployment may still run in.
    d = deployment("chat", 1.0, min_replicas=2, forbidden=["b"], placements=[("a", H100, 1), ("b", H100, 1)])
    clusters = [cluster("a", reachable=False), cluster("b"), cluster("c")]
    plan = make_plan(snapshot([d], clusters, {c: flat_prices(0.1) for c in "abc"})).for_deployment("ns/chat")
    assert plan.explanation.reason == "PlacementRules", plan.explanation.summary
    said = (
        "the running placement breaks minReplicas 2 (0 running where it may run, 1 in unreachable a; "
        "1 where it may no longer run)"
    )
    assert said in plan.explanation.details, plan.explanation.details


def test_minregions_is_qualified_only_where_the_replicas_apart_hold_another_region() -> None:
    # Found in review: "(1 region(s) running where it may run)" beside a stray on a dropped GPU type in region a,
    # the one region counted: it adds no region, so the count needs no qualifier.
    d = deployment("chat", 1.0, min_regions=2, gpu_types=[H100], placements=[("a", H100, 1), ("a", A100, 1)])
    clusters = [cluster("a", gpus={H100: 16, A100: 16}), cluster("b")]
    plan = make_plan(snapshot([d], clusters, {c: flat_prices(0.1) for c in "ab"})).for_deployment("ns/chat")
    assert plan.explanation.reason == "PlacementRules", plan.explanation.summary
    assert "the running placement breaks minRegions 2 (1 region(s) running)" in plan.explanation.details, (
        plan.explanation.details
    )


def test_class_groups_short_in_the_same_words_say_it_once() -> None:
    # Found in review: both groups short of the demand in the same words, Ready's reason read "X; X" and the
    # explanation said X four times ("X; X", "[short] X", "[long] X").
    clusters = [_offers("a", 2.0, 0.9, gpus=1), _offers("b", 2.2, 0.8, gpus=1)]
    world = snapshot([_classed([("a", H100, 1, 1)], rps=200.0)], clusters, {c.name: flat_prices(0.1) for c in clusters})
    plan = make_plan(world, PlannerSettings(time_budget_seconds=2.0)).for_deployment("ns/chat")
    said = "needs more tokens/s within the SLO than fit (inventory or maxReplicas binds)"
    assert plan.infeasible_reason == said
    assert plan.explanation.details == (said,), plan.explanation.details


def test_replicas_in_an_unreachable_cluster_are_judged_per_gpu_type() -> None:
    # Found in review: a replica on A100, no GPUProfile for it, in unreachable a counted where the deployment may
    # run because H100 in a may be used: "(1 running, 2 in unreachable a)".
    d = deployment(
        "chat", 1.0, min_replicas=4, gpu_types=[H100, A100], placements=[("a", H100, 1), ("a", A100, 1), ("b", H100, 1)]
    )
    clusters = [cluster("a", reachable=False, gpus={H100: 16, A100: 16}), cluster("b"), cluster("c")]
    world = snapshot([d], clusters, {c: flat_prices(0.1) for c in "abc"}, profiles=[H100_MODEL])
    plan = make_plan(world).for_deployment("ns/chat")
    said = (
        "the running placement breaks minReplicas 4 (1 running where it may run, 1 in unreachable a; "
        "1 where it may no longer run, 1 of them in unreachable a)"
    )
    assert said in plan.explanation.details, plan.explanation.details


def test_replicas_on_a_dropped_gpu_type_in_an_unreachable_cluster_count_where_it_may_no_longer_run() -> None:
    # Found in review: counted nowhere, neither in the unreachable clusters (spec.gpuTypes only) nor as strays
    # (reachable clusters only): "(1 running where it may run; 1 where it may no longer run)" beside 3 running.
    placements = [("a", A100, 1), ("b", H100, 1), ("c", H100, 1)]
    d = deployment("chat", 1.0, min_replicas=3, gpu_types=[H100], forbidden=["c"], placements=placements)
    clusters = [cluster("a", reachable=False, gpus={H100: 16, A100: 16}), cluster("b"), cluster("c"), cluster("d")]
    plan = make_plan(snapshot([d], clusters, {c: flat_prices(0.1) for c in "abcd"})).for_deployment("ns/chat")
    said = (
        "the running placement breaks minReplicas 3 (1 running where it may run; "
        "2 where it may no longer run, 1 of them in unreachable a)"
    )
    assert said in plan.explanation.details, plan.explanation.details


def test_the_groups_reasons_are_joined_clause_by_clause_in_order() -> None:
    # A shortfall's cause in parentheses may hold "; " itself (_short_because): it stays one clause.
    short = "needs 5 more tokens/s (a roll-back holds a/H100; the search was cut short)"
    joined = _joined_reasons([f"{short}; only 1 of minReplicas 2 placed", None, short])
    assert joined == f"{short}; only 1 of minReplicas 2 placed"
    assert _joined_reasons([None, None]) is None
