"""Writes with bounded concurrency (`WritePool`), fenced, and retried on 409 Conflict (KubeHub, KubeMemberCluster).

Cluster-free: a local HTTP server answers as the apiserver would. Against the real apiservers, the
request counts per cycle are in tests/e2e/test_scale_writes.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gridshift.actuation.members import APPLY_CONFLICT_ATTEMPTS, KubeMemberCluster, MemberError
from gridshift.hub.client import CONFLICT_ATTEMPTS, KubeHub, ObjectRef
from gridshift.hub.requests import RequestCounter
from gridshift.service.writes import Fenced, WritePool
from tests.actuation.test_member_refusals import KUBECONFIG
from tests.signals.conftest import LocalServer, Reply, Request, local_server

__all__ = ["local_server"]


def test_the_pool_keeps_at_most_its_concurrency_in_flight_and_folds_results_in_order() -> None:
    pool = WritePool(3, fence=lambda: True)
    in_flight, peak, lock = [0], [0], threading.Lock()

    def write(index: int) -> int:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.02)
        with lock:
            in_flight[0] -= 1
        return index

    folded: list[int | BaseException] = []
    for index in range(30):
        pool.submit(lambda i=index: write(i), folded.append)
    assert folded == [], "results are folded in by drain(), in the cycle's thread"
    pool.drain()
    assert folded == list(range(30))
    assert peak[0] == 3 and pool.peak_in_flight == 3
    pool.close()


def test_a_write_queued_after_the_lease_lapsed_is_not_sent() -> None:
    leading = threading.Event()
    leading.set()
    pool = WritePool(1, fence=leading.is_set)
    sent: list[int] = []
    gate = threading.Event()

    def first() -> None:
        gate.wait(5)
        sent.append(1)

    folded: list[Any] = []
    pool.submit(first, folded.append)
    pool.submit(lambda: sent.append(2), folded.append)
    leading.clear()  # the Lease lapses while the second write waits behind the first
    gate.set()
    pool.drain()
    assert sent == [1]
    assert folded[0] is None and isinstance(folded[1], Fenced)
    pool.close()


def test_a_failing_write_is_handed_to_its_callback_not_raised() -> None:
    pool = WritePool(2, fence=lambda: True)
    folded: list[Any] = []

    def boom() -> None:
        raise RuntimeError("apiserver said no")

    pool.submit(boom, folded.append)
    pool.submit(lambda: "ok", folded.append)
    pool.drain()
    assert isinstance(folded[0], RuntimeError) and folded[1] == "ok"
    pool.close()


CONFLICT = json.dumps({"kind": "Status", "code": 409, "reason": "Conflict", "message": "modified"}).encode()
PATCHED = json.dumps({"apiVersion": "gridshift.dev/v1alpha1", "kind": "InferenceDeployment", "metadata": {}}).encode()
CURRENT = json.dumps({"metadata": {"name": "chat", "uid": "uid-chat", "resourceVersion": "7"}}).encode()


@pytest.fixture
def apiserver_factory(local_server: LocalServer) -> Iterator[Any]:
    """`make(statuses)`: the local server answers each status patch with the next status (then 200), and
    each read of the object (what a patch naming a uid is made conditional on) with the object."""

    def make(statuses: list[int]) -> LocalServer:
        left = list(statuses)

        def respond(request: Request) -> Reply:
            if not request.path.endswith("/status"):
                return Reply(body=CURRENT)
            status = left.pop(0) if left else 200
            return Reply(status=status, body=CONFLICT if status == 409 else PATCHED)

        local_server.respond = respond
        return local_server

    yield make


def hub_at(url: str, counter: RequestCounter) -> KubeHub:
    from kubernetes import client

    api_client = client.ApiClient(client.Configuration(host=url))
    counter.attach(api_client)
    return KubeHub(api_client)


REF = ObjectRef("InferenceDeployment", "ml", "chat", "uid-chat")


def test_a_status_patch_answered_409_is_sent_again(apiserver_factory: Any) -> None:
    server, counter = apiserver_factory([409, 409]), RequestCounter()
    hub_at(server.url, counter).patch_status(REF, {"phase": "Placed"})
    assert len(server.requests) == 6
    # Each try reads the object again: the patch is conditional on its resourceVersion (hub.client).
    assert counter.counts == {("GET", "inferencedeployments"): 3, ("PATCH", "inferencedeployments/status"): 3}


def test_a_status_patch_still_conflicting_after_the_last_attempt_raises(apiserver_factory: Any) -> None:
    from kubernetes.client.exceptions import ApiException

    server = apiserver_factory([409] * (CONFLICT_ATTEMPTS + 1))
    with pytest.raises(ApiException) as caught:
        hub_at(server.url, RequestCounter()).patch_status(REF, {"phase": "Placed"})
    assert caught.value.status == 409
    assert len([r for r in server.requests if r.path.endswith("/status")]) == CONFLICT_ATTEMPTS


def test_a_status_patch_sent_again_on_409_is_fenced_before_each_send(apiserver_factory: Any) -> None:
    # Found in review: the pool fenced the write once, before its first send; KubeHub then read the object again
    # and sent the patch again on 409 after the Lease had lapsed, over the status the new leader wrote meanwhile.
    server, leading = apiserver_factory([409, 409]), [True]
    respond = server.respond

    def lapsing(request: Request) -> Reply:
        if request.path.endswith("/status"):
            leading[0] = False  # the first patch was answered past the renew deadline
        return respond(request)

    server.respond = lapsing
    pool, hub, folded = WritePool(1, fence=lambda: leading[0]), hub_at(server.url, RequestCounter()), []
    pool.submit(lambda: hub.patch_status(REF, {"phase": "Placed"}, fence=pool.check), folded.append)
    pool.drain()
    pool.close()
    assert isinstance(folded[0], Fenced)
    assert len([r for r in server.requests if r.path.endswith("/status")]) == 1


def conflict() -> Exception:
    from kubernetes.client.exceptions import ApiException

    return ApiException(status=409, reason="Conflict")


def member_with_scripted_apply(monkeypatch: pytest.MonkeyPatch, failures: int) -> tuple[KubeMemberCluster, list[int]]:
    member = KubeMemberCluster("eu-de", KUBECONFIG)
    tries: list[int] = []

    def apply_one(manifest: Any, fence: Any = None) -> None:
        tries.append(1)
        if len(tries) <= failures:
            raise conflict()

    monkeypatch.setattr(member, "_apply_one", apply_one)
    return member, tries


MANIFEST = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "chat", "namespace": "w"}}


def test_a_member_apply_answered_409_is_read_and_applied_again(monkeypatch: pytest.MonkeyPatch) -> None:
    member, tries = member_with_scripted_apply(monkeypatch, failures=APPLY_CONFLICT_ATTEMPTS - 1)
    member.apply([MANIFEST])
    assert len(tries) == APPLY_CONFLICT_ATTEMPTS


def test_a_member_apply_conflicting_every_time_is_a_member_error_naming_the_object(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    member, tries = member_with_scripted_apply(monkeypatch, failures=APPLY_CONFLICT_ATTEMPTS)
    with pytest.raises(MemberError, match=r"apply Deployment w/chat: HTTP 409 Conflict 3 times"):
        member.apply([MANIFEST])
    assert len(tries) == APPLY_CONFLICT_ATTEMPTS


def test_a_member_apply_sent_again_on_409_is_fenced_before_each_send(monkeypatch: pytest.MonkeyPatch) -> None:
    # Found in review: the actuator fenced the apply once, before its first send; a 409 answered past the renew
    # deadline was read and force-applied again after the Lease lapsed, over what the new leader had written.
    member, leading = KubeMemberCluster("eu-de", KUBECONFIG), [True]
    tries: list[bool] = []

    def apply_one(manifest: Any, fence: Any = None) -> None:
        tries.append(leading[0])
        leading[0] = False  # answered past the renew deadline
        raise conflict()

    def fence() -> None:
        if not leading[0]:
            raise Fenced("leader Lease not renewed within the renew deadline: member write not sent")

    monkeypatch.setattr(member, "_apply_one", apply_one)
    with pytest.raises(Fenced):
        member.apply([MANIFEST], fence=fence)
    assert tries == [True]
