"""planner.migration.routing_with_grace: the pure rule of the routing grace (the service's cycles: tests/service)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gridshift.planner.migration import RouteWeight, Unreachable, routing_with_grace

T0 = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)
IN_FORCE = (RouteWeight("a", 30), RouteWeight("b", 20), RouteWeight("c", 50))
PROPOSED = (RouteWeight("a", 60), RouteWeight("c", 40))  # b unreachable: the plan leaves it out


def weights(routing: tuple[RouteWeight, ...]) -> dict[str, int]:
    return {r.cluster: r.weight for r in routing}


def test_kept_weight_stays_and_the_others_share_the_rest_as_proposed() -> None:
    away = {"b": Unreachable("b", T0, reporting=2)}
    routing, notes = routing_with_grace(PROPOSED, IN_FORCE, away, T0 + timedelta(seconds=60), 180)
    assert weights(routing) == {"a": 48, "b": 20, "c": 32}
    assert notes == (
        "cluster b unreachable since 2024-06-03T10:00:00+00:00: its weight 20% kept until 2024-06-03T10:03:00+00:00 "
        "while 2 of its pods report fresh vLLM metrics",
    )


def test_grace_over_or_no_pod_reporting_gives_the_proposed_weights() -> None:
    late = routing_with_grace(PROPOSED, IN_FORCE, {"b": Unreachable("b", T0, 2)}, T0 + timedelta(seconds=180), 180)
    silent = routing_with_grace(PROPOSED, IN_FORCE, {"b": Unreachable("b", T0, 0)}, T0, 180)
    assert weights(late[0]) == weights(silent[0]) == {"a": 60, "c": 40}
    assert "dropped to 0, the grace ended at 2024-06-03T10:03:00+00:00" in late[1][0]
    assert "none of its pods reports fresh vLLM metrics" in silent[1][0]


def test_reachable_clusters_and_weights_the_plan_gives_change_nothing() -> None:
    """Only a weight the proposal leaves out is kept: a cluster the plan routes to keeps the plan's weight."""
    assert routing_with_grace(PROPOSED, IN_FORCE, {}, T0, 180) == (PROPOSED, ())
    routed = (RouteWeight("b", 100),)
    assert routing_with_grace(routed, IN_FORCE, {"b": Unreachable("b", T0, 2)}, T0, 180) == (routed, ())
