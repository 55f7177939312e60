"""A member cluster that does not answer costs its own cluster this cycle, never the others' planning.

Found in review: one hung or dripping member apiserver stopped the planning cycle of every cluster and
tenant, with no time limit (discovery had no timeout, the per-read timeouts never end a dripped answer,
and the observe stage waited for every cluster's read). Now each member call ends within
apiTimeoutSeconds (tests/actuation/test_member_deadlines.py), and the observe stage waits for each
cluster's read while its calls keep answering, up to `cluster_read_deadline_seconds` without an answer
(and `cluster_read_cap_seconds` in all): a cluster late then is unreachable this cycle, named in a problem,
and the other clusters are planned. A healthy member whose cold read takes longer than that deadline, each
call answering, is not late. Every cycle here runs on a thread of its own,
so a cycle that never ends fails its test instead of holding it.
"""

from __future__ import annotations

import hashlib
import json
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import wait
from pathlib import Path
from typing import Any

import pytest

from gridshift.actuation.members import KubeMemberCluster
from gridshift.service.state import CycleErrorReason, CycleReport
from gridshift.service.wiring import parse_kubeconfig
from gridshift.settings import OperatorSettings
from tests.service.harness import WORKLOADS, ServiceHarness, cluster_body, deployment_body

API_TIMEOUT = 0.2
"""apiTimeoutSeconds here, s: a cluster's read is late once none of its calls answered for 3 times this, 0.6 s."""

BOUND = 10.0
"""How long a test waits for a cycle that must end after about the read deadline, s."""


def world_with(api_timeout: float = API_TIMEOUT) -> ServiceHarness:
    settings = OperatorSettings(revalidate_delay_seconds=0, plan_interval_seconds=60, api_timeout_seconds=api_timeout)
    world = ServiceHarness(["eu-de", "us-tx"], settings=settings)
    world.add(deployment_body(rps=5.0))
    return world


def cycle_within(world: ServiceHarness, bound: float = BOUND) -> tuple[CycleReport, float]:
    """One cycle and its seconds; fails the test if it has not ended within `bound`."""
    outcome: list[CycleReport] = []
    started = time.monotonic()
    thread = threading.Thread(target=lambda: outcome.append(world.cycle()), daemon=True)
    thread.start()
    thread.join(bound)
    assert outcome, f"the cycle had not ended after {bound:g} s"
    return outcome[0], time.monotonic() - started


def unreachable(report: CycleReport, cluster: str) -> list[str]:
    return [p.message for p in report.problems if p.reason is CycleErrorReason.UNREACHABLE and p.cluster == cluster]


def eu_de_replicas(world: ServiceHarness) -> int:
    return sum(w.desired for w in world.members["eu-de"].workloads([WORKLOADS]))


@pytest.fixture
def silent_apiserver() -> Iterator[int]:
    """The port of a server that accepts every connection and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    stop.set()
    server.close()
    for connection in held:
        connection.close()


def test_a_member_apiserver_that_never_answers_stops_no_other_clusters_planning(silent_apiserver: int) -> None:
    world = world_with()
    kubeconfig = f"""apiVersion: v1
kind: Config
current-context: c
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{silent_apiserver}"}}}}]
users: [{{name: u, user: {{token: abcdefgh12345678}}}}]
contexts: [{{name: c, context: {{cluster: c, user: u}}}}]
"""
    world.members["us-tx"] = KubeMemberCluster(  # type: ignore[assignment]
        "us-tx", parse_kubeconfig("us-tx", kubeconfig), timeout_seconds=API_TIMEOUT
    )
    report, seconds = cycle_within(world)
    assert seconds < 3 * API_TIMEOUT + 3, seconds
    assert eu_de_replicas(world) > 0
    # Discovery's own timeout and the call's deadline are due together: either may end it.
    (problem,) = unreachable(report, "us-tx")
    assert problem.startswith("cluster us-tx unreachable: discovery: "), problem
    assert "abcdefgh12345678" not in repr(report.problems)


def test_a_discovery_cache_another_process_left_at_the_members_url_is_not_read(silent_apiserver: int) -> None:
    """Found as a CI flake: the Kubernetes client's default discovery cache is /tmp/osrcp-<md5 of the URL>.json,
    shared by every process and kept for good. A file left there by whatever answered at that URL before (here
    an apps/v1 Deployment) was read instead of asking the member, so discovery "passed" without one request."""
    import kubernetes
    from kubernetes.dynamic.discovery import CacheEncoder, ResourceGroup
    from kubernetes.dynamic.resource import Resource

    url = f"http://127.0.0.1:{silent_apiserver}"
    left = Path(tempfile.gettempdir()) / f"osrcp-{hashlib.md5(url.encode()).hexdigest()}.json"
    deployment = Resource(
        prefix="apis",
        group="apps",
        api_version="v1",
        kind="Deployment",
        namespaced=True,
        verbs=["list", "get", "patch"],
        name="deployments",
        preferred=True,
    )
    cache = {
        "library_version": kubernetes.__version__,
        "version": {"kubernetes": {"major": "1", "minor": "30", "gitVersion": "v1.30.0"}},
        "resources": {"apis": {"apps": {"v1": ResourceGroup(True, resources={"Deployment": [deployment]})}}},
    }
    left.write_text(json.dumps(cache, cls=CacheEncoder))
    try:
        test_a_member_apiserver_that_never_answers_stops_no_other_clusters_planning(silent_apiserver)
    finally:
        left.unlink(missing_ok=True)


class Hung:
    """Makes a fake member's reads block until `release` (a hang no per-call timeout ends), counting them."""

    def __init__(self, world: ServiceHarness, cluster: str) -> None:
        self.release = threading.Event()
        self.answered = threading.Event()
        self.calls = 0
        member = world.members[cluster]
        answer = member.workloads

        def workloads(namespaces: Any) -> Any:
            self.calls += 1
            try:
                self.release.wait(60)
                return answer(namespaces)
            finally:
                self.answered.set()

        member.workloads = workloads  # type: ignore[method-assign]


def test_a_cluster_read_late_at_the_deadline_is_unreachable_and_the_others_are_planned() -> None:
    world = world_with()
    hung = Hung(world, "us-tx")
    try:
        report, seconds = cycle_within(world)
    finally:
        hung.release.set()
    assert seconds < BOUND / 2, seconds  # the 0.6 s deadline, and the planner's time
    assert eu_de_replicas(world) > 0
    assert unreachable(report, "us-tx") == [
        "cluster us-tx unreachable: none of its calls answered for 0.6 s, 3 x apiTimeoutSeconds; planned without it "
        "this cycle"
    ], report.problems
    assert world.cluster_bodies["us-tx"]["status"]["reachable"] is False
    assert world.cluster_bodies["eu-de"]["status"]["reachable"] is True


def test_a_late_read_holds_one_thread_and_its_answer_is_dropped() -> None:
    world = world_with()
    cycle_within(world)
    hung = Hung(world, "us-tx")
    try:
        cycle_within(world)
        # The next cycle starts no second read of a cluster whose read is still running: hung members hold at
        # most one thread each, and one member client is never read by two cycles at once.
        report, _ = cycle_within(world)
        assert hung.calls == 1
        assert unreachable(report, "us-tx") == [
            "cluster us-tx unreachable: its read begun by an earlier cycle has not ended; planned without it this cycle"
        ], report.problems
        assert eu_de_replicas(world) > 0
        # Its RegionalCluster deleted meanwhile: the cluster is forgotten ...
        del world.cluster_bodies["us-tx"]
        cycle_within(world)
    finally:
        hung.release.set()
    assert hung.answered.wait(5)
    wait([world.service.observer._reads["us-tx"]], timeout=5)  # the read's thread returns its view
    # ... and the late answer does not bring back its last known replicas (which a RegionalCluster of that name
    # created again would have counted while unreachable).
    assert "us-tx" not in world.service.observer._last_workloads
    # A read that ended is started again by the next cycle.
    world.cluster_bodies["us-tx"] = cluster_body("us-tx")
    report, _ = cycle_within(world)
    assert hung.calls == 2 and not unreachable(report, "us-tx"), report.problems


CALL = 0.03
"""One member list call in the cold-read tests, s: 15% of apiTimeoutSeconds."""


class Cold:
    """Makes a fake member's reads as long as a large member's first read after a restart: with no watch cache
    yet, KubeMemberCluster lists each kind in each namespace, one call after another, each answered in CALL s
    here (the fake's `answered_at` moves on each answer). `release` makes the calls left answer at once."""

    def __init__(self, world: ServiceHarness, cluster: str, namespaces: int = 10) -> None:
        self.release = threading.Event()
        self.calls = 0
        member = self.member = world.members[cluster]
        self.original = {m: getattr(member, m) for m in ("workloads", "owned_objects", "gpu_inventory")}
        # Deployments, then Services, PodDisruptionBudgets and NetworkPolicies, per namespace; Nodes and Pods.
        for method, calls in (("workloads", namespaces), ("owned_objects", 3 * namespaces), ("gpu_inventory", 2)):
            setattr(member, method, self._slowed(self.original[method], calls))

    def _slowed(self, answer: Any, calls: int) -> Any:
        def slowed(namespaces: Any) -> Any:
            for _ in range(calls):
                if self.release.is_set():
                    break
                time.sleep(CALL)
                self.calls += 1
                self.member.last_answer = time.monotonic()
            return answer(namespaces)

        return slowed

    def restore(self) -> None:
        self.release.set()
        for method, answer in self.original.items():
            setattr(self.member, method, answer)


def test_a_healthy_members_cold_read_longer_than_the_deadline_is_waited_for() -> None:
    # Found in review: the read deadline (3 x apiTimeoutSeconds) was for a cluster's whole read, so a healthy
    # member of many tenant namespaces, read cold after a restart or failover (42 list calls one after another,
    # each well within its timeout), was Unreachable; its replicas, none counted Ready, were planned again in
    # the other cluster, and doubled. It is late now only when none of its calls answered for the deadline.
    settings = OperatorSettings(revalidate_delay_seconds=0, plan_interval_seconds=60, api_timeout_seconds=API_TIMEOUT)
    world = ServiceHarness(["eu-de", "us-tx"], settings=settings, prices={"eu-de": 200.0, "us-tx": 20.0})
    world.add(deployment_body(rps=20.0))
    for _ in range(3):
        world.cycle()
        for member in world.members.values():
            member.mark_all_ready()
    before = world.replicas()
    assert before["eu-de"] == 0 and before["us-tx"] > 0, before
    cold = Cold(world, "us-tx")
    world.service = world.make_service("op-1")  # a restart, or the standby's first cycle: caches cold
    try:
        report, seconds = cycle_within(world)
    finally:
        cold.restore()
    assert not unreachable(report, "us-tx"), report.problems
    assert cold.calls == 42 and seconds >= 42 * CALL > 2 * settings.cluster_read_deadline_seconds, seconds
    assert world.replicas() == before
    assert world.cluster_bodies["us-tx"]["status"]["reachable"] is True


def test_a_member_that_keeps_answering_is_late_at_the_cap() -> None:
    # However steadily its calls answer, a cluster's read holds the cycle of every cluster at most
    # cluster_read_cap_seconds (planIntervalSeconds, 2 s here): then it is unreachable as one gone quiet.
    settings = OperatorSettings(
        revalidate_delay_seconds=0, plan_interval_seconds=2, planner_time_budget_seconds=1, api_timeout_seconds=0.2
    )
    assert settings.cluster_read_cap_seconds == 2
    world = ServiceHarness(["eu-de", "us-tx"], settings=settings)
    world.add(deployment_body(rps=5.0))
    cold = Cold(world, "us-tx", namespaces=10_000)  # 40,000 calls: 20 minutes
    try:
        report, seconds = cycle_within(world)
    finally:
        cold.restore()
    assert 2 <= seconds < BOUND / 2, seconds
    assert unreachable(report, "us-tx") == [
        "cluster us-tx unreachable: not read within 2 s (planIntervalSeconds), though its calls were answered; "
        "planned without it this cycle"
    ], report.problems
    assert eu_de_replicas(world) > 0
