"""Fencing between the writes of one cycle: once the Lease may have lapsed, nothing more goes out.

The write pool fenced status patches and Events one by one; the member writes of an Auto migration
(several per deployment: a ScaleUp in each cluster, a ScaleDown, the next batch) and the orphan
sweep's deletions were fenced once, at their start, and the Lease was handed over on shutdown before
this replica stopped acting (found in review, 2 December 2026). Each write is now fenced, what an
Auto task wrote is counted even when the cycle stops acting, and shutdown stops acting first.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import types
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
import yaml

from gridshift.actuation.members import Owner
from gridshift.actuation.render import Manifest
from gridshift.hub.client import LeaseRecord, ObjectRef
from gridshift.hub.lease import LeaderElector, LeaseTiming
from gridshift.service.state import CycleErrorReason
from gridshift.service.writes import Fenced
from gridshift.settings import OperatorSettings
from gridshift.testing import FakeHub, FakeMemberCluster
from tests.conftest import REPO_ROOT
from tests.service.harness import H100, ServiceHarness, deployment_body


def _lapse(world: ServiceHarness) -> None:
    """The Lease lapses now: the last renewal is older than the renew deadline (a slow apiserver answer)."""
    world.service.elector._renewed_at = -1e9


def test_an_auto_migration_sends_no_member_write_once_the_lease_lapsed_and_counts_those_it_sent() -> None:
    world = ServiceHarness(["eu-de", "eu-fr"], gpus_per_cluster=2)
    sent: list[tuple[str, bool]] = []

    class Lapsing(FakeMemberCluster):
        def apply(self, manifests: Sequence[Manifest], fence: Any = None) -> None:
            sent.append((self.name, world.service.elector.leading()))
            super().apply(manifests)
            _lapse(world)  # during this write

    for name in world.clusters:
        world.members[name] = Lapsing(name, gpus={H100: 2})
    world.add(deployment_body("chat", rps=60.0))  # needs both clusters: two applies in one migration
    report = world.cycle()
    assert sent and all(leading for _, leading in sent), f"a member write went out after the Lease lapsed: {sent}"
    assert len(sent) == 1
    assert report.member_writes == len(sent)


def test_the_orphan_sweep_stops_when_the_lease_lapses() -> None:
    world = ServiceHarness(["eu-de"], gpus_per_cluster=8)
    for name in ("a", "b"):
        world.add(deployment_body(name, rps=5.0))
    world.cycle()
    for name in ("a", "b"):  # deleted on the hub while no finalizer ran: their objects are orphans
        del world.deployments[name]
        del world.hub.deployments[("ml", name)]
    member = world.members["eu-de"]
    sent: list[tuple[str, bool]] = []
    delete = member.delete_owned_object

    def lapsing(owner: Owner, kind: str, namespace: str, name: str) -> bool:
        sent.append((owner.name, world.service.elector.leading()))
        deleted = delete(owner, kind, namespace, name)
        _lapse(world)
        return deleted

    member.delete_owned_object = lapsing  # type: ignore[method-assign]
    world.cycle()
    assert len(sent) == 1 and sent[0][1]


class _WatchedHub(FakeHub):
    """Records, at each Lease write, whether the elector still said it was leading."""

    def __init__(self) -> None:
        super().__init__()
        self.elector: LeaderElector | None = None
        self.leading_at_write: list[tuple[str, bool]] = []

    def write_lease(self, name: str, namespace: str, record: LeaseRecord, timeout_seconds: float | None = None) -> bool:
        assert self.elector is not None
        self.leading_at_write.append((record.holder or "", self.elector.leading()))
        return super().write_lease(name, namespace, record)


def test_release_stops_acting_before_it_hands_the_lease_over() -> None:
    hub = _WatchedHub()
    hub.leave_released_lease("lease", "ns")  # an absent one is taken only after the lease duration
    elector = LeaderElector(hub, "lease", "ns", "me", LeaseTiming(), monotonic=lambda: 100.0)
    hub.elector = elector
    assert elector.try_acquire_or_renew() and elector.leading()
    elector.release()
    assert hub.leading_at_write[-1] == ("", False), "the Lease was cleared while this replica still acted"
    assert not elector.leading()
    assert not elector.try_acquire_or_renew() and not elector.leading()  # no renewal after the release


def test_a_renewal_in_flight_when_leading_stops_does_not_restore_it() -> None:
    hub = FakeHub()
    hub.leave_released_lease("lease", "ns")  # an absent one is taken only after the lease duration
    elector = LeaderElector(hub, "lease", "ns", "me", LeaseTiming(), monotonic=lambda: 100.0)
    assert elector.try_acquire_or_renew()
    write = hub.write_lease

    def stopped_meanwhile(name: str, namespace: str, record: LeaseRecord, timeout_seconds: float | None = None) -> bool:
        won = write(name, namespace, record)
        elector.stop_leading()  # shutdown began while the renewal was on the wire
        return won

    hub.write_lease = stopped_meanwhile  # type: ignore[method-assign]
    assert not elector.try_acquire_or_renew()
    assert not elector.leading()


def test_on_shutdown_the_lease_is_handed_over_only_after_the_write_in_flight_ended() -> None:
    world = ServiceHarness(["eu-de"])
    events: list[str] = []
    applying, release = threading.Event(), threading.Event()
    member = world.members["eu-de"]
    apply = member.apply

    def slow_apply(manifests: Sequence[Manifest], fence: Any = None) -> None:
        applying.set()
        assert release.wait(10)
        apply(manifests)
        events.append("member write done")

    member.apply = slow_apply  # type: ignore[method-assign]
    write_lease = world.hub.write_lease

    def recorded(name: str, namespace: str, record: LeaseRecord, timeout_seconds: float | None = None) -> bool:
        if not record.holder:
            events.append("lease handed over")
        return write_lease(name, namespace, record)

    world.hub.write_lease = recorded  # type: ignore[method-assign]
    world.add(deployment_body(rps=5.0))

    async def run_then_stop() -> None:
        loop = world.service.run_forever(list(world.deployments.values()), list(world.cluster_bodies.values()), [])
        task = asyncio.create_task(loop)
        while not applying.is_set():
            await asyncio.sleep(0.01)
        task.cancel()  # kopf stops the operator while a cycle is writing
        await asyncio.sleep(0.3)
        assert "lease handed over" not in events
        release.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run_then_stop())
    assert events == ["member write done", "lease handed over"]
    assert not world.service.elector.leading()


def test_a_replica_that_takes_the_lease_plans_at_once_not_a_plan_interval_later() -> None:
    # Found in review: the loop slept planIntervalSeconds (60 s by default) after its standby cycle, so a first
    # install, or a failover, acted that long after the Lease was taken (the docs say the lease duration).
    settings = OperatorSettings(
        revalidate_delay_seconds=0,
        plan_interval_seconds=60,
        planner_time_budget_seconds=1,
        # 1.5 s apart at least: a member write started just inside the renew deadline lands before a standby acts.
        lease_duration_seconds=3,
        lease_renew_deadline_seconds=1.5,
        lease_retry_period_seconds=0.25,
    )
    world = ServiceHarness(["eu-de"], settings=settings)
    del world.hub.leases[(world.settings.namespace, "gridshift-leader")]  # a first install: no Lease yet
    world.service.elector._monotonic = time.monotonic  # real time: the loop sleeps on asyncio's clock
    world.add(deployment_body(rps=5.0))
    cycles: list[bool] = []
    run_cycle = world.service.run_cycle

    def recorded(*args: Any) -> Any:
        report = run_cycle(*args)
        cycles.append(report.leader)
        return report

    world.service.run_cycle = recorded  # type: ignore[method-assign]

    async def run_a_while() -> None:
        loop = world.service.run_forever(list(world.deployments.values()), list(world.cluster_bodies.values()), [])
        task = asyncio.create_task(loop)
        for _ in range(100):  # 10 s at most: the Lease is taken after 3 s, the next cycle must follow
            await asyncio.sleep(0.1)
            if True in cycles:
                break
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run_a_while())
    assert cycles[0] is False and True in cycles, f"cycles led: {cycles}"


def test_a_fractional_lease_duration_never_lets_two_replicas_lead() -> None:
    # Found in review: the Lease stored int(10.9) = 10 s, so another replica took over at 10.2 s while
    # this one, with a renew deadline of 10.5 s, still led.
    hub = FakeHub()
    hub.leave_released_lease("lease", "ns")  # an absent one is taken only after the lease duration
    timing = LeaseTiming(duration_seconds=10.9, renew_deadline_seconds=10.5, retry_period_seconds=2.0)
    now = {"a": 0.0, "b": 0.0}
    a = LeaderElector(hub, "lease", "ns", "a", timing, monotonic=lambda: now["a"])
    b = LeaderElector(hub, "lease", "ns", "b", timing, monotonic=lambda: now["b"])
    assert a.try_acquire_or_renew() and not b.try_acquire_or_renew()
    for t in (10.2, 10.6, 10.95, 11.2):  # a renews no more; both clocks run alike
        now["a"] = now["b"] = t
        assert not (a.leading() and b.try_acquire_or_renew()), f"both lead at {t} s"
    assert b.try_acquire_or_renew()  # past the stored duration, as rounded up, b takes over


def test_an_event_name_cut_after_a_dash_or_dot_is_still_a_dns_subdomain() -> None:
    import re

    from gridshift.hub.client import ObjectRef, event_name

    subdomain = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
    for cut in ("-", ".", "-."):
        name = event_name(ObjectRef("RegionalCluster", "", "a" * (200 - len(cut)) + cut + "b" * 40))
        assert re.fullmatch(subdomain, name) and len(name) <= 253, name


def test_each_object_of_a_workload_is_fenced_on_its_own() -> None:
    # Found in review: the four objects of a new workload (Deployment, Service, PodDisruptionBudget,
    # NetworkPolicy) went out under one fence check, each taking up to a read, an apply and retries: the last
    # landed while another replica led.
    world = ServiceHarness(["eu-de"])
    sent: list[tuple[str, bool]] = []

    class Lapsing(FakeMemberCluster):
        def apply(self, manifests: Sequence[Manifest], fence: Any = None) -> None:
            for manifest in manifests:
                sent.append((manifest["kind"], world.service.elector.leading()))
                super().apply([manifest])
                _lapse(world)  # during this object's write

    world.members["eu-de"] = Lapsing("eu-de", gpus={H100: 16})
    world.add(deployment_body("chat", rps=5.0))
    world.cycle()
    assert sent == [("Deployment", True)]


def test_a_lapse_right_after_the_deployment_went_out_still_counts_the_write() -> None:
    # Found in review: the fence was read twice per object, so a lapse between the two reads raised Fenced
    # after the Deployment went out: the write was neither counted nor remembered.
    world = ServiceHarness(["eu-de"])
    reads: list[bool] = []
    answers = iter([True, True, False])  # the Deployment's read, then a lapse at the Service's

    def fence() -> bool:
        leading = next(answers, False)
        reads.append(leading)
        return leading

    world.service.actuator._fence = fence
    world.add(deployment_body("chat", rps=5.0))
    report = world.cycle()
    assert report.member_writes == 1, (reads, report.errors)
    assert [k for k, _, _ in world.members["eu-de"].objects if k == "Deployment"] == ["Deployment"]


def test_gpuprofile_and_invalid_spec_status_patches_are_fenced_one_by_one() -> None:
    # Found in review: GPUProfile fits and InvalidSpec statuses were fenced once, before the first patch, and
    # written outside the write pool: one slow patch past the renew deadline let the rest go out from a
    # replica that no longer led, and no LeaseLost was reported.
    world = ServiceHarness(["eu-de"])
    world.add(deployment_body("chat", rps=10.0))
    doc = yaml.safe_load((REPO_ROOT / "examples" / "gpuprofile-llama3-8b-h100.yaml").read_text())
    profiles = [{**doc, "metadata": {"name": f"p{i}", "generation": 1}} for i in range(3)]
    broken = deployment_body("broken")
    broken["spec"]["capacity"] = {"minReplicas": 5, "maxReplicas": 1}
    world.hub.deployments[("ml", "broken")] = broken["metadata"]["uid"]  # on the hub, not in the cycles' list
    sent: list[tuple[str, str, bool]] = []
    patch_status = world.hub.patch_status

    def lapsing(ref: ObjectRef, status: dict[str, Any], fence: Any = None) -> None:
        sent.append((ref.kind, ref.name, world.service.elector.leading()))
        patch_status(ref, status, fence)
        if ref.kind == "GPUProfile":
            _lapse(world)  # this patch took past the renew deadline

    world.hub.patch_status = lapsing  # type: ignore[method-assign]
    report = world.service.run_cycle(
        [*world.deployments.values(), broken], list(world.cluster_bodies.values()), profiles
    )
    assert [(kind, name) for kind, name, _ in sent if kind == "GPUProfile" or name == "broken"] == [
        ("GPUProfile", "p0")
    ]
    assert all(leading for *_, leading in sent), sent
    assert [p.reason for p in report.problems].count(CycleErrorReason.LEASE_LOST) == 1
    # Leading again (a renewal), the next cycle writes what was left.
    world.hub.patch_status = patch_status  # type: ignore[method-assign]
    world.now += timedelta(minutes=1)
    world.service.run_cycle([*world.deployments.values(), broken], list(world.cluster_bodies.values()), profiles)
    written = {(ref.kind, ref.name) for ref in world.hub.statuses}
    assert {("GPUProfile", "p1"), ("GPUProfile", "p2"), ("InferenceDeployment", "broken")} <= written


def test_a_regional_cluster_status_sent_again_on_409_is_fenced_before_each_send() -> None:
    # Found in review: RegionalCluster statuses were patched without a fence, so KubeHub's resend on 409 Conflict
    # went out after the Lease lapsed, over the status the new leader had written, and no LeaseLost was reported.
    from kubernetes.client.exceptions import ApiException

    from gridshift.hub.client import KubeHub

    world = ServiceHarness(["eu-de"])
    world.add(deployment_body("chat", rps=5.0))
    world.cycle()
    sent: list[tuple[str, bool]] = []
    patch_status = world.hub.patch_status

    def send(ref: ObjectRef, status: dict[str, Any], fence: Any = None) -> None:
        sent.append((ref.kind, world.service.elector.leading()))
        if ref.kind == "RegionalCluster" and sent.count(("RegionalCluster", True)) == 1:
            _lapse(world)  # the apiserver's answer came after the renew deadline
            raise ApiException(status=409, reason="Conflict")
        patch_status(ref, status)

    def conflicting(ref: ObjectRef, status: dict[str, Any], fence: Any = None) -> None:
        # KubeHub's own loop: sent again on 409, `fence` checked before each send.
        KubeHub._patch_status_retrying(types.SimpleNamespace(_patch_status=send), ref, status, fence)  # type: ignore[arg-type]

    world.hub.patch_status = conflicting  # type: ignore[method-assign]
    world.cluster_bodies["eu-de"]["status"] = {}  # a RegionalCluster status patch is due
    report = world.cycle()
    assert [send for send in sent if send[0] == "RegionalCluster"] == [("RegionalCluster", True)]
    assert [p.reason for p in report.problems] == [CycleErrorReason.LEASE_LOST]


def test_a_deployments_events_follow_its_status_patch_even_when_the_patch_outlasted_the_lease() -> None:
    # Found in review of a fence tried on the Events: the patch had stored lastDecision, so the next leader saw no
    # new decision and the Event was never sent (and gridshift_decisions counted it). The Events of a patch that
    # went out follow it: they change nothing and tell what that status says.
    world = ServiceHarness(["eu-de"])
    sent: list[tuple[str, bool]] = []
    patch_status = world.hub.patch_status

    def slow_patch(ref: ObjectRef, status: dict[str, Any], fence: Any = None) -> None:
        sent.append((ref.kind, world.service.elector.leading()))
        patch_status(ref, status, fence)
        if ref.kind == "InferenceDeployment":
            _lapse(world)  # sent while leading, answered after the renew deadline

    world.hub.patch_status = slow_patch  # type: ignore[method-assign]
    world.add(deployment_body("chat", rps=5.0))
    report = world.cycle()
    assert sent == [("InferenceDeployment", True)]  # no RegionalCluster status after the lapse
    assert [e.reason for e in world.hub.events] == ["ScaleUp"] and report.events == 1
    assert world.status("chat")["lastDecision"]["reason"] == "ScaleUp"
    assert [p.reason for p in report.problems] == [CycleErrorReason.LEASE_LOST]


def test_a_leader_that_lost_the_lease_between_cycles_reports_lease_lost_once_not_a_quiet_standby() -> None:
    # Found in review: a holder past its renew deadline stopped leading, and its next cycle looked like a
    # standby's: no LeaseLost in the log or the metrics.
    world = ServiceHarness(["eu-de"])
    world.add(deployment_body(rps=30.0))
    first = world.service
    assert world.cycle(first).leader
    second = world.make_service("op-2")
    standby = world.cycle(second, advance=timedelta(seconds=1))
    assert not standby.leader and not standby.problems  # never led: a standby, nothing lost
    _lapse(world)  # the first replica's renewals stopped succeeding: the second takes the Lease over
    assert world.cycle(second, advance=timedelta(seconds=20)).leader
    lost = world.cycle(first)
    assert not lost.leader
    assert [p.reason for p in lost.problems] == [CycleErrorReason.LEASE_LOST]
    again = world.cycle(first, advance=timedelta(seconds=1))
    assert not again.leader and not again.problems  # reported once; a standby from now on


def test_member_applies_carry_the_fence_for_their_retries() -> None:
    # KubeMemberCluster sends an apply again on 409 Conflict: the actuator hands it the fence to check before each
    # send (found in review: fenced once, a retry went out after the Lease lapsed).
    world = ServiceHarness(["eu-de"])
    fences: list[Any] = []

    class Recording(FakeMemberCluster):
        def apply(self, manifests: Sequence[Manifest], fence: Any = None) -> None:
            fences.append(fence)
            super().apply(manifests, fence)

    world.members["eu-de"] = Recording("eu-de", gpus={H100: 8})
    world.add(deployment_body(rps=5.0))
    world.cycle()
    assert fences and all(fence is not None for fence in fences)
    _lapse(world)
    with pytest.raises(Fenced):
        fences[0]()
