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


def until_rolled_back(world: ServiceHarness, cycles: int = 12) -> str:
    """Cycles until a roll-back, whose MigrationRolledBack Event's note is returned; eu-de's Ready replicas
    never drop meanwhile."""
    serving = counts(world)["eu-de"][1]
    for _ in range(cycles):
        report = world.cycle()
        assert counts(world)["eu-de"][1] >= serving, "Ready capacity dropped"
        if any("not Ready within" in e for e in report.errors):
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
    world.members["eu-fr"].mark_all_ready()
    for _ in range(8):  # the first batch finishes and the second starts its replica in eu-fr
        world.cycle()
        if counts(world)["eu-fr"] == (2, 1):
            break
    assert counts(world)["eu-fr"] == (2, 1)
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
        "scaling back failed in eu-fr (refused or unreachable), left to a later wait's roll-back;"
    )
    assert "s3cr3t" not in note and "admission webhook" not in note  # the member's words stay in the log
    assert counts(world)["eu-fr"] == (1, 0)
    allow()
    note = until_rolled_back(world)  # the hold over, the next move waits on the leftover first
    assert "scaled back to the replicas Ready; the wait on eu-fr ran out (0/1 Ready)" in note
    assert counts(world)["eu-fr"] == (0, 0)
