"""What a roll-back leaves behind, through the whole service (the in-memory harness): the replicas a ScaleUp's
write may have started before the member refused the rest of it (never creating objects where none went out), and
a scale-back a cluster that does not answer cannot take (said, left to a later wait's roll-back), and one written
where the namespace's Deployments are not listed since the ScaleUp (their last read count is not what runs).

Throughout, eu-de's Ready replicas (all the serving capacity) never drop: make-before-break.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gridshift.actuation.members import ActuationForbidden, ClusterUnreachable
from gridshift.service.state import CycleErrorReason, CycleReport
from tests.service.harness import ServiceHarness, deployment_body
from tests.service.test_migrate_leftovers import counts, moving_to_eu_fr
from tests.service.test_status import message

TIMEOUT = 180
"""readyTimeoutSeconds: three of the harness's one-minute cycles (as moving_to_eu_fr's)."""


def rolled_back(report: CycleReport) -> list[str]:
    return [p.message for p in report.problems if p.reason is CycleErrorReason.MIGRATION_ROLLED_BACK]


def serving_from_eu_de() -> ServiceHarness:
    """chat serving from eu-de, eu-fr away; eu-fr's replicas never get Ready once it is back."""
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 300.0, "eu-fr": 50.0})
    world.members["eu-fr"].reachable = False
    migration = {"mode": "Auto", "paybackHorizonHours": 6, "readyTimeoutSeconds": TIMEOUT}
    world.add(deployment_body(rps=4.0, migration=migration))
    world.cycle()
    world.cycle()
    world.members["eu-fr"].ready_immediately = False
    return world


def refuse_all_but_the_deployment(world: ServiceHarness, cluster: str) -> None:
    """`cluster` takes a workload's Deployment (its count) and refuses every other object (RBAC lacking services)."""
    member = world.members[cluster]
    apply = member.apply

    def refusing(manifests: Any, fence: Any = None) -> None:
        if manifests[0]["kind"] == "Deployment":
            apply(manifests, fence)
            return
        raise ActuationForbidden(cluster, f"apply {manifests[0]['kind']} gsw/x (HTTP 403)", own=True)

    member.apply = refusing  # type: ignore[method-assign]


def until_rolled_back(world: ServiceHarness, cycles: int = 12) -> str:
    serving = counts(world)["eu-de"][1]
    for _ in range(cycles):
        report = world.cycle()
        assert counts(world)["eu-de"][1] >= serving, "Ready capacity dropped"
        if roll_backs := rolled_back(report):
            return roll_backs[0]
    raise AssertionError(f"no roll-back in {cycles} cycles: {counts(world)}")


def test_a_scale_up_refused_after_its_deployment_went_out_is_scaled_back() -> None:
    # Found in review: the ScaleUp's Deployment went out (eu-fr 0 -> 1) and the rest of its write was refused until
    # the timeout; the roll-back took back only ScaleUps done, so the replica it had started stayed, never Ready.
    world = serving_from_eu_de()
    refuse_all_but_the_deployment(world, "eu-fr")
    world.members["eu-fr"].reachable = True
    world.cycle()
    assert counts(world)["eu-fr"] == (1, 0)
    error = until_rolled_back(world)
    assert error == (
        "ml/chat: ScaleUp in eu-fr refused: forbidden: apply Service gsw/x (HTTP 403); an earlier try may have been "
        f"applied; still refused after readyTimeoutSeconds={TIMEOUT}; scaled back to the counts before the move"
    )
    # The scale-back's own Deployment went out before its Service was refused again: its count is in force.
    assert counts(world)["eu-fr"] == (0, 0)


def test_a_scale_up_refused_after_its_deployment_went_out_keeps_its_ready_replicas() -> None:
    # The same rule as for a ScaleUp done: a replica it started that is Ready now keeps serving.
    world = serving_from_eu_de()
    refuse_all_but_the_deployment(world, "eu-fr")
    world.members["eu-fr"].reachable = True
    world.cycle()
    world.members["eu-fr"].mark_all_ready()
    error = until_rolled_back(world)
    assert error.endswith("; nothing was scaled back (Ready replicas kept in eu-fr)"), error
    assert counts(world)["eu-fr"] == (1, 1)


def test_a_scale_up_whose_deployment_first_went_out_in_the_cycle_it_ran_out_is_scaled_back() -> None:
    # Found in review: eu-fr refused the ScaleUp's Deployment until its last try, which sent the Deployment (1
    # replica) and was refused its Service. The roll-back read eu-fr's Deployment as not there (not observed at the
    # cycle's start) and scaled nothing back: the replica it started ran on, never Ready, uncounted by the plan.
    world = serving_from_eu_de()
    member = world.members["eu-fr"]
    apply = member.apply
    refuse_the_deployment = True

    def refusing(manifests: Any, fence: Any = None) -> None:
        if manifests[0]["kind"] == "Deployment" and not refuse_the_deployment:
            apply(manifests, fence)
            return
        raise ActuationForbidden("eu-fr", f"apply {manifests[0]['kind']} gsw/x (HTTP 403)", own=True)

    member.apply = refusing  # type: ignore[method-assign]
    member.reachable = True
    for _ in range(4):  # the ScaleUp's first cycle, then its 180 s
        assert not rolled_back(world.cycle())
    assert counts(world)["eu-fr"] == (0, 0)
    refuse_the_deployment = False
    assert rolled_back(world.cycle()) == [
        "ml/chat: ScaleUp in eu-fr refused: forbidden: apply Service gsw/x (HTTP 403); part of the write went out; "
        f"still refused after readyTimeoutSeconds={TIMEOUT}; scaled back to the counts before the move"
    ]
    assert counts(world)["eu-fr"] == (0, 0)
    assert counts(world)["eu-de"] == (2, 2)


def test_a_scale_back_of_a_scale_up_that_may_have_gone_out_is_said_refused_where_refused() -> None:
    # Its Deployment went out on the first try; then eu-fr refused every write (its RBAC revoked): the scale-back is
    # refused too, and the roll-back says so rather than "scaled back".
    world = serving_from_eu_de()
    refuse_all_but_the_deployment(world, "eu-fr")
    world.members["eu-fr"].reachable = True
    world.cycle()
    assert counts(world)["eu-fr"] == (1, 0)

    def refuse(manifests: Any, fence: Any = None) -> None:
        raise ActuationForbidden("eu-fr", "apply Deployment gsw/x (HTTP 403)", own=True)

    world.members["eu-fr"].apply = refuse  # type: ignore[method-assign]
    error = until_rolled_back(world)
    assert error.endswith(
        "; nothing was scaled back; scaling back refused in eu-fr, left to a later wait's roll-back"
    ), error
    assert counts(world)["eu-fr"] == (1, 0)


# --- a scale-back a cluster does not answer ------------------------------------------------------------------


def writes_unanswered(world: ServiceHarness, cluster: str) -> Callable[[], None]:
    """`cluster` answers reads but no write (each cut at its deadline); returns the undo."""
    member = world.members[cluster]

    def unanswered(manifests: Any, fence: Any = None) -> None:
        raise ClusterUnreachable(cluster, "apply Deployment x: no complete answer within 10 s")

    member.apply = unanswered  # type: ignore[method-assign]
    return lambda: delattr(member, "apply")


def test_a_scale_back_a_cluster_did_not_answer_is_said_in_ready_and_left_to_a_later_wait() -> None:
    # Found in review: the roll-back could not write eu-fr's scale-back (the cluster did not answer it) and Ready
    # went on as if all was rolled back. Said in the roll-back's cycle; never written again from memory (review of
    # a first version that did: a later move may have put traffic on those replicas since).
    world, _ = moving_to_eu_fr()
    answer = writes_unanswered(world, "eu-fr")
    error = until_rolled_back(world)
    assert error.startswith(
        f"ml/chat: replicas not Ready within readyTimeoutSeconds={TIMEOUT}; nothing was scaled back; roll-back not "
        "written in eu-fr (not answering), left to a later wait's roll-back"
    ), error
    assert message(world.status(), "Ready").endswith(
        "; roll-back not written in eu-fr (not answering), left to a later wait's roll-back"
    )
    answer()
    report = world.cycle()
    assert not [e for e in report.errors if "roll-back in eu-fr" in e]
    assert counts(world)["eu-fr"] == (1, 0)
    assert "roll-back not written" not in message(world.status(), "Ready")


def test_a_scale_back_not_answered_never_stops_replicas_a_later_move_put_traffic_on() -> None:
    # Found in review (SEVERE): a remembered scale-back outlived a later move that routed everything to eu-fr and
    # scaled eu-de to 0; a one-cycle readiness dip in eu-fr then wrote eu-fr 1 -> 0: no replica anywhere.
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 40.0, "eu-fr": 90.0})
    migration = {"mode": "Auto", "paybackHorizonHours": 6, "readyTimeoutSeconds": TIMEOUT}
    world.add(deployment_body(rps=2.0, migration=migration))
    world.cycle()
    world.cycle()
    world.members["eu-fr"].ready_immediately = False
    world.prices.update({"eu-de": 900.0, "eu-fr": 10.0})
    world.cycle()
    answer = writes_unanswered(world, "eu-fr")
    until_rolled_back(world)
    for _ in range(8):  # the hold runs out and a new move starts
        world.cycle()
        if world.status().get("migration"):
            break
    answer()
    world.members["eu-fr"].mark_all_ready()
    world.members["eu-fr"].ready_immediately = True
    for _ in range(8):
        world.cycle()
        if not world.status().get("migration"):
            break
    assert counts(world)["eu-fr"] == (1, 1)
    for (kind, _, _), obj in world.members["eu-fr"].objects.items():
        if kind == "Deployment":
            obj["status"] = {"readyReplicas": 0}  # one readiness dip (a pod restarting)
    world.cycle()
    assert counts(world)["eu-fr"][0] == 1


def test_a_frozen_deployment_stops_saying_a_roll_back_was_not_written() -> None:
    # Found in review: in Frozen (and Advisory) Ready kept saying "not answering" after the cluster answered.
    world, body = moving_to_eu_fr()
    answer = writes_unanswered(world, "eu-fr")
    until_rolled_back(world)
    body["spec"]["migration"]["mode"] = "Frozen"
    body["metadata"]["generation"] = body["metadata"].get("generation", 1) + 1
    answer()
    world.cycle()
    assert "not answering" not in message(world.status(), "Ready")


def test_a_scale_back_never_creates_objects_where_a_scale_up_never_applied() -> None:
    # Found in review: a ScaleUp whose every write got an HTTP 503 (maybeApplied, never applied) was scaled back to
    # its fromReplicas=0, which created a 0-replica Deployment, Service, NetworkPolicy and PDB in eu-fr.
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 40.0, "eu-fr": 90.0})
    migration = {"mode": "Auto", "paybackHorizonHours": 6, "readyTimeoutSeconds": TIMEOUT}
    world.add(deployment_body(rps=2.0, migration=migration))
    world.cycle()
    world.cycle()
    member = world.members["eu-fr"]
    apply = member.apply

    def unavailable(manifests: Any, fence: Any = None) -> None:
        if any(m["kind"] == "Deployment" and m["spec"]["replicas"] > 0 for m in manifests):
            raise ClusterUnreachable("eu-fr", "apply Deployment x: HTTP 503", status=503)
        apply(manifests, fence)

    member.apply = unavailable  # type: ignore[method-assign]
    world.prices.update({"eu-de": 900.0, "eu-fr": 10.0})
    until_rolled_back(world)
    assert member.objects == {}
    assert counts(world)["eu-de"][1] >= 1


# --- a scale-back where the namespace's listing is refused since the ScaleUp ----------------------------------

CHAT_WORKLOADS = "gridshift-ml"
"""chat's workload namespace in each cluster (a per-tenant workloadNamespace), beside team-x's."""


def chat_in(world: ServiceHarness, cluster: str) -> tuple[int, int]:
    """chat's (desired, Ready) replicas in `cluster`, as the member holds them (not as the operator read them)."""
    member = world.members[cluster]
    workloads = [w for w in type(member).workloads(member, [CHAT_WORKLOADS]) if w.deployment_name == "chat"]
    return sum(w.desired for w in workloads), sum(w.ready for w in workloads)


def second_batch_started_per_tenant() -> ServiceHarness:
    """chat (tenant ml) moving from eu-de to eu-fr as in `moving_to_eu_fr`, each tenant's replicas in a namespace
    of its own (team-x's deployment beside it): eu-fr's first replica Ready, its second just started, never Ready."""
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 40.0, "eu-fr": 90.0})
    for body in world.cluster_bodies.values():
        body["spec"]["workloadNamespace"] = "gridshift-{namespace}"
    migration = {"mode": "Auto", "paybackHorizonHours": 6, "readyTimeoutSeconds": TIMEOUT}
    world.add(deployment_body(rps=30.0, migration=migration))
    other = deployment_body("other", rps=1.0)
    other["metadata"].update(namespace="team-x", uid="uid-x")
    world.add(other)
    world.cycle()
    world.cycle()
    world.members["eu-fr"].ready_immediately = False
    world.prices.update({"eu-de": 900.0, "eu-fr": 10.0})
    world.cycle()
    assert chat_in(world, "eu-fr") == (1, 0)
    world.members["eu-fr"].mark_all_ready()
    for _ in range(8):
        world.cycle()
        if chat_in(world, "eu-fr") == (2, 1):
            return world
    raise AssertionError(f"no second batch: {chat_in(world, 'eu-fr')}")


def listing_refused(world: ServiceHarness, cluster: str, namespace: str) -> Callable[[], None]:
    """`cluster`'s member Role loses list on Deployments in `namespace` (get and apply still granted): they are not
    read there, so the operator keeps the ones it last read; returns the undo."""
    member = world.members[cluster]
    workloads = member.workloads

    def listing(namespaces: Any) -> Any:
        member.forbidden_namespaces = {namespace}
        try:
            return workloads(namespaces)
        finally:
            member.forbidden_namespaces = set()

    member.workloads = listing  # type: ignore[method-assign]
    return lambda: delattr(member, "workloads")


def test_a_scale_up_whose_namespace_is_not_listed_since_is_scaled_back_to_its_count_before() -> None:
    # Found in review: eu-fr's second batch scaled chat there 1 -> 2; from the next cycle eu-fr refused to list
    # chat's workload namespace, so the operator kept eu-fr's Deployment as last read, at 1. The roll-back's
    # scale-back to 1 was compared with that stale count: the Deployment was not written (only its Service, PDB and
    # NetworkPolicy), its never-Ready replica ran on, and the Event said "scaled back to the counts before the move".
    world = second_batch_started_per_tenant()
    listing_refused(world, "eu-fr", CHAT_WORKLOADS)
    serving = chat_in(world, "eu-de")[1]
    for _ in range(12):
        report = world.cycle()
        assert chat_in(world, "eu-de")[1] >= serving, "Ready capacity dropped"
        if roll_backs := rolled_back(report):
            break
    else:
        raise AssertionError(f"no roll-back: {chat_in(world, 'eu-fr')}")
    assert roll_backs == [
        f"ml/chat: replicas not Ready within readyTimeoutSeconds={TIMEOUT}; scaled back to the counts before the move"
    ]
    assert any(f"namespace {CHAT_WORKLOADS} not read" in e for e in report.errors), report.errors
    assert chat_in(world, "eu-fr") == (1, 1)  # the first batch's replica, Ready, serves on
