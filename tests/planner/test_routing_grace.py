"""planner.migration.routing_with_grace: the pure rule of the routing grace (the service's cycles: tests/service)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gridshift.planner import make_plan
from gridshift.planner.migration import (
    RouteWeight,
    Unmeasured,
    Unreachable,
    routing_as_a_move_starts,
    routing_with_grace,
)
from tests.planner.planner_world import A100, A100_MODEL, H100, cluster, deployment, flat_prices, snapshot

T0 = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)
IN_FORCE = (RouteWeight("a", 30), RouteWeight("b", 20), RouteWeight("c", 50))
PROPOSED = (RouteWeight("a", 60), RouteWeight("c", 40))  # b unreachable: the plan leaves it out
SERVING = frozenset({"a", "c"})  # the clusters with Ready replicas


def weights(routing: tuple[RouteWeight, ...]) -> dict[str, int]:
    return {r.cluster: r.weight for r in routing}


def test_kept_weight_stays_and_the_others_share_the_rest_as_proposed() -> None:
    away = {"b": Unreachable("b", T0, reporting=2)}
    routing, notes = routing_with_grace(PROPOSED, IN_FORCE, away, T0 + timedelta(seconds=60), 180, SERVING)
    assert weights(routing) == {"a": 48, "b": 20, "c": 32}
    assert notes == (
        "cluster b unreachable since 2024-06-03T10:00:00+00:00: its weight 20% kept until 2024-06-03T10:03:00+00:00 "
        "while 2 of its pods report fresh vLLM metrics",
    )


def test_grace_over_or_no_pod_reporting_gives_the_proposed_weights() -> None:
    late = routing_with_grace(
        PROPOSED, IN_FORCE, {"b": Unreachable("b", T0, 2)}, T0 + timedelta(seconds=180), 180, SERVING
    )
    silent = routing_with_grace(PROPOSED, IN_FORCE, {"b": Unreachable("b", T0, 0)}, T0, 180, SERVING)
    assert weights(late[0]) == weights(silent[0]) == {"a": 60, "c": 40}
    assert "dropped to 0, the grace ended at 2024-06-03T10:03:00+00:00" in late[1][0]
    assert "none of its pods reports fresh vLLM metrics" in silent[1][0]


def test_reachable_clusters_change_nothing_and_an_unreachable_one_gets_at_most_its_graced_weight() -> None:
    """A routing without unreachable clusters goes out as proposed. One that gives an unreachable cluster weight (the
    weights in force while a move waits to start) is held to the grace too."""
    assert routing_with_grace(PROPOSED, IN_FORCE, {}, T0, 180, SERVING) == (PROPOSED, ())
    shift = (RouteWeight("a", 50), RouteWeight("b", 50))
    for reporting, expected in ((2, {"a": 50, "b": 50}), (0, {"a": 100})):
        away = {"b": Unreachable("b", T0, reporting)}
        assert weights(routing_with_grace(shift, shift, away, T0, 180, SERVING)[0]) == expected
    alone = (RouteWeight("b", 100),)  # nowhere else to send it: as proposed
    assert routing_with_grace(alone, alone, {"b": Unreachable("b", T0, 0)}, T0, 180, SERVING)[0] == alone


def test_a_cluster_the_deployment_may_no_longer_use_loses_its_weight_at_once() -> None:
    away = {"b": Unreachable("b", T0, reporting=2, usable=False)}
    routing, notes = routing_with_grace(PROPOSED, IN_FORCE, away, T0, 180, SERVING)
    assert weights(routing) == {"a": 60, "c": 40}
    assert "its weight 20% dropped to 0, the deployment may no longer run there" in notes[0]


def test_metrics_not_measured_are_said_so_not_that_none_reports() -> None:
    away = {"b": Unreachable("b", T0, reporting=0, unmeasured=Unmeasured.NO_ANSWER)}
    routing, notes = routing_with_grace(PROPOSED, IN_FORCE, away, T0, 180, SERVING)
    assert weights(routing) == {"a": 60, "c": 40}
    assert (
        "dropped to 0, its pods' vLLM metrics not measured (its Prometheus gave no answer within the deadline)"
        in notes[0]
    )
    assert "none of its pods reports" not in notes[0]


def test_every_routed_cluster_away_keeps_the_weights_and_says_why() -> None:
    """Found in review: the weights went out as proposed while the notes said 'dropped to 0'."""
    both = (RouteWeight("a", 50), RouteWeight("b", 50))
    away = {c: Unreachable(c, T0, reporting=0) for c in ("a", "b")}
    routing, notes = routing_with_grace(both, both, away, T0, 180, SERVING)
    assert routing == both
    assert len(notes) == 2 and not [n for n in notes if "dropped" in n]
    assert notes[0] == (
        "cluster a unreachable since 2024-06-03T10:00:00+00:00: its weight 50% kept: every cluster the routing sends "
        "traffic to is unreachable, there is nowhere else to send it"
    )


def test_a_move_that_starts_keeps_a_graced_weight_and_drops_the_others() -> None:
    """Found in review: dropping every unreachable weight as a move started put the whole load on the clusters left
    for the cold start; keeping every one kept a silent cluster's weight up to readyTimeoutSeconds."""
    now = T0 + timedelta(seconds=60)
    graced = {"b": Unreachable("b", T0, reporting=2)}
    routing, notes = routing_as_a_move_starts(IN_FORCE, graced, now, 180, SERVING)
    assert routing == IN_FORCE
    assert notes == (
        "cluster b unreachable since 2024-06-03T10:00:00+00:00: its weight 20% kept into the move starting now (its "
        "pods report fresh vLLM metrics, the grace runs to 2024-06-03T10:03:00+00:00): the move's ShiftRouting sets it",
    )
    for spell, why in (
        (Unreachable("b", T0, reporting=0), "none of its pods reports"),
        (Unreachable("b", T0, reporting=2, usable=False), "may no longer run there"),
        (Unreachable("b", T0 - timedelta(seconds=600), reporting=2), "the grace ended"),
    ):
        routing, notes = routing_as_a_move_starts(IN_FORCE, {"b": spell}, now, 180, SERVING)
        assert weights(routing) == {"a": 38, "c": 62}, spell
        assert "its weight 20% dropped to 0 as a move starts, " in notes[0] and why in notes[0], notes
    assert routing_as_a_move_starts(IN_FORCE, {}, now, 180, SERVING) == (IN_FORCE, ())
    alone = (RouteWeight("b", 100),)
    routing, notes = routing_as_a_move_starts(alone, {"b": Unreachable("b", T0, 0)}, now, 180, SERVING)
    assert routing == alone and "nowhere else to send it" in notes[0]


def test_a_move_that_starts_keeps_a_weight_whose_pods_were_not_measured_and_feeds_no_cluster_without_ready() -> None:
    """Found in review: after a restart (replicas unknown, so not measured) the weight was dropped as a move started,
    where before the grace it stayed to the ShiftRouting; and a dropped share went partly to a reachable cluster
    with no Ready replica (33% -> 49%)."""
    now = T0 + timedelta(seconds=60)
    unknown = {"b": Unreachable("b", T0, reporting=0, unmeasured=Unmeasured.REPLICAS_UNKNOWN)}
    routing, notes = routing_as_a_move_starts(IN_FORCE, unknown, now, 180, SERVING)
    assert routing == IN_FORCE and "kept into the move starting now (its pods' vLLM metrics not measured" in notes[0]
    silent = {"b": Unreachable("b", T0, reporting=0)}
    routing, _ = routing_as_a_move_starts(IN_FORCE, silent, now, 180, frozenset({"a"}))  # c: no Ready replica
    assert weights(routing) == {"a": 50, "c": 50}  # b's 20% to a alone; c keeps its own 50%, gains nothing
    routing, notes = routing_as_a_move_starts(IN_FORCE, silent, now, 180, frozenset())
    assert weights(routing) == {"a": 38, "c": 62} and "none of its pods reports" in notes[0]  # none Ready: to them all


def test_a_weight_dropped_while_a_move_waits_feeds_no_cluster_without_ready_replicas() -> None:
    """Found in review (fifth): while a move waited for its revalidation (the routing in force proposed), a dropped
    share went to every reachable routed cluster, one with no Ready replica too (33% -> 49%); as a move starts it went
    to those with Ready replicas only. One rule for both (`_spread`)."""
    silent = {"b": Unreachable("b", T0, reporting=0)}
    routing, notes = routing_with_grace(IN_FORCE, IN_FORCE, silent, T0, 180, frozenset({"a"}))  # c: none Ready
    assert weights(routing) == {"a": 50, "c": 50}  # b's 20% to a alone; c keeps its own 50%, gains nothing
    assert "its weight 20% dropped to 0, none of its pods reports" in notes[0]


def test_a_weight_that_must_go_goes_even_where_no_routed_cluster_has_ready_replicas() -> None:
    """Found in review (sixth): where no reachable routed cluster had a Ready replica, the routing in force went out
    as it was, a forbidden cluster's weight (or one no longer admitting the tenant, or whose grace ended an hour ago)
    with it, with no time limit. The weight goes; its share goes to the reachable routed clusters all the same (the
    spread before the fifth review), and the note gives the real reason, with or without a move starting."""
    later = T0 + timedelta(hours=1)
    for spell, now, why in (
        (Unreachable("b", T0, reporting=2, usable=False), T0, "the deployment may no longer run there"),
        (Unreachable("b", T0, reporting=2, usable=False), later, "the deployment may no longer run there"),
        (Unreachable("b", T0, reporting=0), later, "the grace ended at 2024-06-03T10:03:00+00:00"),
        (Unreachable("b", T0, reporting=0), T0, "none of its pods reports fresh vLLM metrics"),
    ):
        for starts in (False, True):
            if starts:
                routing, notes = routing_as_a_move_starts(IN_FORCE, {"b": spell}, now, 180, frozenset())
            else:
                routing, notes = routing_with_grace(IN_FORCE, IN_FORCE, {"b": spell}, now, 180, frozenset())
            assert weights(routing) == {"a": 38, "c": 62}, (spell, starts)
            assert len(notes) == 1 and "its weight 20% dropped to 0" in notes[0] and why in notes[0], notes
            assert "no reachable cluster the routing sends traffic to has a Ready replica" in notes[0]
            assert "kept" not in notes[0]


def test_a_weight_that_must_go_as_a_move_starts_goes_to_the_clusters_kept_where_every_other_is_away() -> None:
    """Sixth review: as a move starts, a forbidden cluster's weight went on beside one the grace keeps where no
    reachable cluster was routed to. It goes to those kept (as the grace does with no move: `_shared`); only where
    none is left at all does the routing stay as it is (nowhere else to send it)."""
    both = (RouteWeight("b", 40), RouteWeight("d", 60))
    for d, to in (
        (Unreachable("d", T0, reporting=2), "goes to those the grace keeps, whose replicas serve"),
        (Unreachable("d", T0, reporting=0, unmeasured=Unmeasured.FAILED), "goes to those kept"),
    ):
        away = {"b": Unreachable("b", T0, reporting=2, usable=False), "d": d}
        routing, notes = routing_as_a_move_starts(both, away, T0, 180, frozenset())
        assert weights(routing) == {"d": 100}
        dropped = [n for n in notes if "dropped" in n]
        assert len(dropped) == 1 and "may no longer run there" in dropped[0] and to in dropped[0], notes
    graced = {"b": Unreachable("b", T0, reporting=2, usable=False), "d": Unreachable("d", T0, reporting=2)}
    assert weights(routing_with_grace(both, both, graced, T0, 180, frozenset())[0]) == {"d": 100}


def test_a_dropped_share_goes_to_a_cluster_the_grace_keeps_that_serves_before_one_with_no_ready_replica() -> None:
    """Found in review (seventh): a forbidden cluster's 30% went to a reachable cluster whose replicas had all
    crashed (30% -> 60% of requests failing) while b, unreachable but kept by the grace with its pods reporting,
    still served. b takes it; the reachable cluster with no Ready replica keeps only its own weight. `serving` is as
    the service builds it: no cluster away is in it (eighth review: the first fix read b's serving from it, so it
    never ran in the operator)."""
    in_force = (RouteWeight("a", 30), RouteWeight("b", 40), RouteWeight("c", 30))
    away = {"b": Unreachable("b", T0, reporting=2), "c": Unreachable("c", T0, reporting=2, usable=False)}
    for starts in (False, True):
        if starts:
            routing, notes = routing_as_a_move_starts(in_force, away, T0, 180, frozenset())
        else:
            routing, notes = routing_with_grace(in_force, in_force, away, T0, 180, frozenset())
        assert weights(routing) == {"a": 30, "b": 70}, starts
        dropped = [n for n in notes if "dropped" in n]
        assert len(dropped) == 1 and "goes to those the grace keeps, whose replicas serve" in dropped[0], notes


def usable_away(
    gpu_types: tuple[str, ...], placements: list[tuple[str, str, int]], b_offers: str, **kw: object
) -> bool:
    """Whether the plan judges b (away, offering `b_offers` alone) a cluster the deployment may still run in."""
    dep = deployment("chat", 5.0, placements=placements, gpu_types=gpu_types)
    a_offers = H100 if H100 in gpu_types else A100
    clusters = [cluster("a", gpus={a_offers: 16}), cluster("b", gpus={b_offers: 16}, reachable=False)]
    world = snapshot([dep], clusters, {"a": flat_prices(0.1), "b": flat_prices(0.1)}, **kw)  # type: ignore[arg-type]
    return "b" in make_plan(world).for_deployment("ns/chat").usable_away


def test_a_cluster_away_is_usable_only_on_a_gpu_type_of_the_spec_offered_and_profiled() -> None:
    """Found in review (sixth): replicas known on a GPU type removed from spec.gpuTypes counted as none known, so b was
    judged by its own rules alone and kept its weight into a move past the grace; with its replicas unknown (after a
    restart), a cluster offering no GPU type of the spec, or only one without a profile, was usable too."""
    a = ("a", H100, 1)
    assert usable_away((H100,), [a, ("b", H100, 1)], H100)  # controls: known, and unknown, on a type it may use
    assert usable_away((H100,), [a], H100)
    assert usable_away((H100,), [a, ("b", A100, 1), ("b", H100, 1)], H100)  # one type still allowed there
    assert not usable_away((H100,), [a, ("b", A100, 1)], A100)  # A100 no longer in the spec: its replicas ruled out
    assert not usable_away((H100,), [a, ("b", A100, 1)], H100)  # the same, though b offers H100 (no replica on it)
    assert not usable_away((H100,), [a], A100)  # unknown replicas: b offers no GPU type of the spec
    no_profile = (A100_MODEL,)  # unknown replicas: b's only type of the spec has no GPUProfile
    assert not usable_away((A100, H100), [("a", A100, 1)], H100, profiles=no_profile)
    assert usable_away((A100, H100), [("a", A100, 1)], A100, profiles=no_profile)


def test_a_cluster_at_one_percent_keeps_its_share_beside_a_kept_weight() -> None:
    """The smallest weight a routing gives is 1%: it is traffic like any other, neither dropped nor given away."""
    away = {"b": Unreachable("b", T0, reporting=2)}
    now = T0 + timedelta(seconds=60)
    waiting = (RouteWeight("a", 1), RouteWeight("b", 99))  # the weights in force while a move waits to start
    assert weights(routing_with_grace(waiting, waiting, away, now, 180, SERVING)[0]) == {"a": 1, "b": 99}
    planned = (RouteWeight("a", 1), RouteWeight("c", 99))  # the plan's routing, b left out
    assert weights(routing_with_grace(planned, IN_FORCE, away, now, 180, SERVING)[0]) == {"a": 1, "b": 20, "c": 79}
