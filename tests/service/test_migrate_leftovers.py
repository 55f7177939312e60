"""Replicas a move leaves behind not Ready, through the whole service (the in-memory harness).

A move abandoned mid-way (its cluster did not answer one cycle, a Frozen spell) keeps the replicas it had
started: the next plan waits on them first. When they never get Ready, that wait's roll-back takes them back
to the replicas Ready there, as the same move uninterrupted does at its own timeout; and a scale-back the
member refuses is said to have failed, not to have been done, and is taken back by a later roll-back.
Throughout, eu-de's Ready replicas (all the serving capacity) never drop: make-before-break.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gridshift.actuation.members import ActuationForbidden
from gridshift.service.state import CycleErrorReason, CycleReport
from tests.service.harness import WORKLOADS, ServiceHarness, deployment_body

TIMEOUT = 180
"""readyTimeoutSeconds: three of the harness's one-minute cycles."""


def counts(world: ServiceHarness) -> dict[str, tuple[int, int]]:
    """(desired, Ready) replicas per member, read even while it does not answer the operator."""
    out = {}
    for name, member in world.members.items():
        answering, member.reachable = member.reachable, True
        try:
            workloads = member.workloads([WORKLOADS])
        finally:
            member.reachable = answering
        out[name] = (sum(w.desired for w in workloads), sum(w.ready for w in workloads))
    return out


def moving_to_eu_fr() -> tuple[ServiceHarness, dict[str, Any]]:
    """chat serving from eu-de, moving to eu-fr (prices turned); eu-fr's replicas never get Ready."""
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 40.0, "eu-fr": 90.0})
    migration = {"mode": "Auto", "paybackHorizonHours": 6, "readyTimeoutSeconds": TIMEOUT}
    body = deployment_body(rps=30.0, migration=migration)
    world.add(body)
    world.cycle()
    world.cycle()
    world.members["eu-fr"].ready_immediately = False
    world.prices.update({"eu-de": 900.0, "eu-fr": 10.0})
    world.cycle()
    assert counts(world)["eu-fr"] == (1, 0)  # the move's first replica started, not Ready
    return world, body


def second_batch_started(world: ServiceHarness) -> None:
    """eu-fr's first replica Ready (the first batch done), its second started and never Ready."""
    world.members["eu-fr"].mark_all_ready()
    for _ in range(8):
        world.cycle()
        if counts(world)["eu-fr"] == (2, 1):
            break
    assert counts(world)["eu-fr"] == (2, 1)


def rolled_back(report: CycleReport) -> list[str]:
    """The cycle's roll-backs, told by their MIGRATION_ROLLED_BACK problem, not their words: a write given up
    after the timeout is rolled back too and says so otherwise than "not Ready within" (review)."""
    return [p.message for p in report.problems if p.reason is CycleErrorReason.MIGRATION_ROLLED_BACK]


def until_rolled_back(world: ServiceHarness, cycles: int = 12) -> str:
    """Cycles until a roll-back, whose MigrationRolledBack Event's note is returned; eu-de's Ready replicas
    never drop meanwhile."""
    serving = counts(world)["eu-de"][1]
    for _ in range(cycles):
        report = world.cycle()
        assert counts(world)["eu-de"][1] >= serving, "Ready capacity dropped"
        if rolled_back(report):
            return [e for e in world.hub.events if e.reason == "MigrationRolledBack"][-1].note
    raise AssertionError(f"no roll-back in {cycles} cycles: {counts(world)}")


def unreachable_one_cycle(world: ServiceHarness, body: dict[str, Any]) -> None:
    world.members["eu-fr"].reachable = False
    assert "ml/chat: migration abandoned, a cluster it needs is unreachable" in world.cycle().errors
    world.members["eu-fr"].reachable = True


def frozen_one_cycle(world: ServiceHarness, body: dict[str, Any]) -> None:
    for mode in ("Frozen", "Auto"):
        body["spec"]["migration"]["mode"] = mode
        body["metadata"]["generation"] += 1
        if mode == "Frozen":
            world.cycle()


@pytest.mark.parametrize("interrupt", [unreachable_one_cycle, frozen_one_cycle])
def test_a_never_ready_replica_left_by_an_abandoned_move_is_scaled_back_when_the_next_wait_runs_out(
    interrupt: Callable[[ServiceHarness, dict[str, Any]], None],
) -> None:
    # Found in review: the next plan waited on eu-fr's leftover replica, ran out, scaled nothing back and held
    # eu-fr; after each hold the same, so a GPU that never served stayed started for an hour and more.
    world, body = moving_to_eu_fr()
    serving = counts(world)["eu-de"]
    interrupt(world, body)
    assert counts(world)["eu-fr"] == (1, 0)  # abandoned: the replica it started stays, and is waited on
    note = until_rolled_back(world)
    assert note.startswith(
        f"replicas not Ready within readyTimeoutSeconds={TIMEOUT}; scaled back to the replicas Ready; "
        "the wait on eu-fr ran out (0/1 Ready); no replica starts again in eu-fr"
    )
    assert counts(world) == {"eu-de": serving, "eu-fr": (0, 0)}


def test_a_leftover_replica_that_is_part_ready_keeps_its_ready_ones() -> None:
    # eu-fr's first replica got Ready before the move was abandoned, its second never does: the roll-back takes
    # eu-fr back to its one Ready replica, not to the count before the move (nothing Ready stops).
    world, body = moving_to_eu_fr()
    second_batch_started(world)
    unreachable_one_cycle(world, body)
    note = until_rolled_back(world)
    assert "scaled back to the replicas Ready; the wait on eu-fr ran out (1/2 Ready)" in note
    assert counts(world)["eu-fr"] == (1, 1)


def refuse_writes(world: ServiceHarness, cluster: str) -> Callable[[], None]:
    """Make `cluster` refuse every write, with a refusal that quotes something secret; returns the undo."""
    member = world.members[cluster]

    def refuse(manifests: Any, fence: Any = None) -> None:
        raise ActuationForbidden(cluster, "admission webhook denied the request: token=s3cr3t")

    member.apply = refuse  # type: ignore[method-assign]
    return lambda: delattr(member, "apply")


def test_a_refused_scale_back_is_said_to_have_failed_and_a_later_roll_back_takes_it_back() -> None:
    # Found in review: the Event said "scaled back to the counts before the move" though eu-fr refused the write
    # and its replica stayed, not Ready.
    world, _ = moving_to_eu_fr()
    allow = refuse_writes(world, "eu-fr")
    note = until_rolled_back(world)
    assert note.startswith(
        f"replicas not Ready within readyTimeoutSeconds={TIMEOUT}; nothing was scaled back; "
        "scaling back refused in eu-fr, left to a later wait's roll-back;"
    )
    assert "s3cr3t" not in note and "admission webhook" not in note  # the member's words stay in the log
    assert counts(world)["eu-fr"] == (1, 0)
    allow()
    note = until_rolled_back(world)  # the hold over, the next move waits on the leftover first
    assert "scaled back to the replicas Ready; the wait on eu-fr ran out (0/1 Ready)" in note
    assert counts(world)["eu-fr"] == (0, 0)


# --- a kept cluster that carries traffic ---------------------------------------------------------------


def set_ready(world: ServiceHarness, cluster: str, ready: int) -> None:
    """`cluster`'s pods read `ready` Ready (at most its desired), as its kubelet reports them."""
    for (kind, _, _), body in world.members[cluster].objects.items():
        if kind == "Deployment":
            body["status"] = {"readyReplicas": min(ready, body["spec"]["replicas"])}


def moving_past_a_kept_eu_de() -> ServiceHarness:
    """chat serving from eu-de (40% of the traffic), eu-fr and eu-nl, moving eu-nl's replicas to eu-se (prices
    turned); the move keeps eu-de, whose 4 replicas it waits on first. New replicas are Ready once marked."""
    prices = {"eu-de": 40.0, "eu-fr": 50.0, "eu-nl": 60.0, "eu-se": 500.0}
    world = ServiceHarness(["eu-de", "eu-fr", "eu-nl", "eu-se"], prices=prices, gpus_per_cluster=4)
    migration = {"mode": "Auto", "paybackHorizonHours": 6, "readyTimeoutSeconds": TIMEOUT}
    world.add(deployment_body(rps=30.0, migration=migration))
    world.cycle()
    world.cycle()
    for member in world.members.values():
        member.ready_immediately = False
    world.prices.update({"eu-nl": 900.0, "eu-se": 10.0})
    assert counts(world)["eu-de"] == (4, 4)
    assert {"cluster": "eu-de", "weight": 40} in world.status()["routing"]
    return world


def roll_back_of_the_wait_on_eu_de(world: ServiceHarness, ready_at: Callable[[int], int]) -> str:
    """Cycles with eu-de's pods `ready_at(cycle)` Ready until the wait on them runs out (the fifth cycle, the
    timeout being three); eu-de keeps its 4 replicas and its traffic throughout. The roll-back's error."""
    for cycle in range(5):
        set_ready(world, "eu-de", ready_at(cycle))
        report = world.cycle()
        assert counts(world)["eu-de"][0] == 4, f"eu-de scaled to {counts(world)['eu-de']} in cycle {cycle}"
        assert {"cluster": "eu-de", "weight": 40} in world.status()["routing"]
        if roll_backs := rolled_back(report):
            assert cycle == 4, f"rolled back in cycle {cycle}"
            return roll_backs[0]
    raise AssertionError(f"no roll-back: {counts(world)}")


def test_a_kept_cluster_with_traffic_recovering_from_a_node_failure_is_not_scaled_back() -> None:
    # Found in review of the leftover scale-back: eu-de's 4 pods restarted after a node failure and took longer
    # than the timeout to load the model; the wait on them ran out and eu-de went 4 -> 0 desired while the route
    # still sent it 40% of the requests. Its replicas carry traffic: nothing is scaled back, eu-de is held.
    world = moving_past_a_kept_eu_de()
    error = roll_back_of_the_wait_on_eu_de(world, lambda cycle: 0)
    assert error == (
        f"ml/chat: replicas not Ready within readyTimeoutSeconds={TIMEOUT}; nothing was scaled back; "
        "the wait on eu-de ran out (0/4 Ready)"
    )
    set_ready(world, "eu-de", 4)  # the model loaded
    world.cycle()
    assert counts(world)["eu-de"] == (4, 4)
    assert {"cluster": "eu-de", "weight": 40} in world.status()["routing"]


def test_a_readiness_dip_at_the_timeout_stops_no_replica_of_a_kept_cluster_with_traffic() -> None:
    # Found in review of the leftover scale-back: eu-de had 3 of 4 Ready (one pod stuck); in the cycle the wait
    # on its 4 ran out two of them failed a readiness probe (overloaded), and eu-de went 4 -> 1 desired: three
    # serving replicas stopped, with 40% of the traffic still routed there.
    world = moving_past_a_kept_eu_de()
    error = roll_back_of_the_wait_on_eu_de(world, lambda cycle: 1 if cycle == 4 else 3)
    assert "nothing was scaled back; the wait on eu-de ran out (1/4 Ready)" in error
    set_ready(world, "eu-de", 3)
    world.cycle()
    assert counts(world)["eu-de"] == (4, 3)


def test_a_leftover_without_traffic_keeps_the_replicas_ready_before_a_dip_at_the_timeout() -> None:
    # eu-fr's leftover (2 desired, 1 Ready) carries no traffic; in the cycle the wait on it runs out its Ready pod
    # fails a readiness probe. The roll-back takes back only the replica never Ready: not the one Ready the cycle
    # before, which the next move can route to.
    world, body = moving_to_eu_fr()
    second_batch_started(world)
    unreachable_one_cycle(world, body)
    for _ in range(5):  # eu-de takes the traffic back, then the next move's wait on eu-fr's 2 runs its 180 s
        assert not rolled_back(world.cycle())
    assert not any(r["cluster"] == "eu-fr" and r["weight"] > 0 for r in world.status()["routing"])
    set_ready(world, "eu-fr", 0)
    report = world.cycle()
    assert any("scaled back to the replicas Ready; the wait on eu-fr ran out (0/2 Ready)" in e for e in report.errors)
    assert counts(world)["eu-fr"][0] == 1


def test_a_leftover_whose_deployment_was_deleted_by_hand_is_not_started_again_by_its_roll_back() -> None:
    # eu-fr's leftover (2 desired, 1 Ready last cycle, no traffic) has its Deployment deleted by hand in the cycle
    # the wait on it runs out. Its Ready replica of last cycle is capped at the count there now, none: the
    # roll-back scales nothing up, and its Event counts no Ready replica where none is. Found in review: its
    # scale-back wrote eu-fr's count, 0, and so created the Deployment again, and said it "scaled back".
    world, body = moving_to_eu_fr()
    second_batch_started(world)
    unreachable_one_cycle(world, body)
    for _ in range(5):  # as above: the next move's wait on eu-fr's 2 runs its 180 s
        assert not rolled_back(world.cycle())
    recorded = [(p["desired"], p["ready"]) for p in world.status()["placements"] if p["cluster"] == "eu-fr"]
    assert recorded == [(2, 1)]  # what the roll-back reads as Ready last cycle
    objects = world.members["eu-fr"].objects
    for deployment in [k for k in objects if k[0] == "Deployment"]:
        del objects[deployment]
    report = world.cycle()
    assert any("; nothing was scaled back; the wait on eu-fr ran out (0/2 Ready)" in e for e in report.errors)
    assert counts(world)["eu-fr"] == (0, 0)
    assert not [k for k in objects if k[0] == "Deployment"]


def test_a_done_scale_up_whose_deployment_was_deleted_by_hand_is_not_started_again_by_its_roll_back() -> None:
    # The second batch's ScaleUp of eu-fr (1 -> 2) is done and its wait runs; eu-fr's Deployment is deleted by hand.
    # When the wait runs out, the roll-back takes nothing back there: no Deployment is created, no replica started.
    # Found in review: a done ScaleUp's scale-back was written without asking whether its Deployment was there, so
    # it applied eu-fr's count before the batch, 1, creating the Deployment and starting a GPU replica the user had
    # removed, and said "scaled back to the counts before the move".
    world, _ = moving_to_eu_fr()
    second_batch_started(world)
    objects = world.members["eu-fr"].objects
    for deployment in [k for k in objects if k[0] == "Deployment"]:
        del objects[deployment]
    said = ""
    for _ in range(8):
        said = " ".join(rolled_back(world.cycle()))
        if said:
            break
    assert said and "scaled back to the counts before the move" not in said, said
    assert not [k for k in objects if k[0] == "Deployment"], objects.keys()
    assert counts(world)["eu-fr"] == (0, 0)
