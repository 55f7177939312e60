"""The real member adapter against an apiserver that never answers or drips its answer, without a cluster.

A local HTTP server stands in for the member apiserver: discovery answered or not, the Deployment list
answered a byte at a time, each well within the client's per-read timeout. Every call must end within
the adapter's timeout, whole answer included (gridshift.deadline), raising ClusterUnreachable naming the
cluster and what it asked; before, the calls never ended and held the planning cycle of every cluster
(found in review)."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gridshift.actuation.members import ClusterUnreachable, KubeMemberCluster
from tests.dripping_apiserver import ended

TIMEOUT = 0.5
"""The adapter's timeout in these tests, s."""

DRIP = 0.1
"""Seconds between the bytes of a dripped answer: each read gets one well within TIMEOUT."""

BOUND = 5.0
"""How long a test waits for a call that must end within TIMEOUT, s (a call that never ends fails it)."""

DISCOVERY: dict[str, Any] = {
    "/version": {"major": "1", "minor": "30", "gitVersion": "v1.30.0"},
    "/api": {"kind": "APIVersions", "versions": ["v1"]},
    "/apis": {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": "apps",
                "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
            }
        ],
    },
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": []},
    "/apis/apps/v1": {
        "kind": "APIResourceList",
        "groupVersion": "apps/v1",
        "resources": [
            {
                "name": "deployments",
                "singularName": "deployment",
                "namespaced": True,
                "kind": "Deployment",
                "verbs": ["list", "watch", "get", "patch", "create", "delete"],
            }
        ],
    },
}


class _Apiserver(http.server.ThreadingHTTPServer):
    daemon_threads = True
    mode = "answer"
    """silent: accept and never answer; drip: send headers, then the body a byte every DRIP s; answer: discovery
    answered at once, anything else dripped."""
    stop = threading.Event()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # kept alive: the list goes over the connection discovery opened
    server: _Apiserver

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if self.server.mode == "silent":
            self.server.stop.wait(30)
            return
        if self.server.mode == "answer" and path in DISCOVERY:
            body = json.dumps(DISCOVERY[path]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            while not self.server.stop.wait(DRIP):
                self.wfile.write(b" ")
                self.wfile.flush()
        except OSError:
            pass  # the adapter gave up: its socket is shut


@pytest.fixture
def apiserver() -> Iterator[_Apiserver]:
    server = _Apiserver(("127.0.0.1", 0), _Handler)
    server.stop = threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.stop.set()
    server.shutdown()
    server.server_close()


def member_of(server: _Apiserver) -> KubeMemberCluster:
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}],
        "users": [{"name": "u", "user": {"token": "abcdefgh12345678"}}],
    }
    return KubeMemberCluster("eu-de", kubeconfig, timeout_seconds=TIMEOUT, watch=False)


@pytest.mark.parametrize("mode", ["silent", "drip"])
def test_discovery_that_never_answers_or_drips_ends_within_the_timeout(apiserver: _Apiserver, mode: str) -> None:
    # Found in review: discovery (DynamicClient) had no timeout, so a member apiserver that accepted and never
    # answered held the call, and the cycle of every cluster, for good; one dripping held it as long as it did.
    apiserver.mode = mode
    error, seconds = ended(lambda: member_of(apiserver).workloads(["gridshift-workloads"]), BOUND)
    assert isinstance(error, ClusterUnreachable), error
    # Silent, discovery's own timeout and the deadline are due together: either may say so.
    assert str(error).startswith("cluster eu-de unreachable: discovery: "), error
    if mode == "drip":
        assert str(error) == f"cluster eu-de unreachable: discovery: no complete answer within {TIMEOUT:g} s"
    assert seconds < TIMEOUT + 1.5, seconds


def test_a_list_dripped_over_a_kept_alive_connection_ends_within_the_timeout(apiserver: _Apiserver) -> None:
    # Discovery answered; the list's answer comes a byte at a time. The client's timeout limits each read, so
    # before, the list went on as long as the bytes came (found in review). The list reuses the connection
    # discovery opened: a kept-alive socket is under the deadline of the call that uses it.
    error, seconds = ended(lambda: member_of(apiserver).workloads(["gridshift-workloads"]), BOUND)
    assert isinstance(error, ClusterUnreachable), error
    assert str(error) == (
        f"cluster eu-de unreachable: list Deployment in gridshift-workloads: no complete answer within {TIMEOUT:g} s"
    )
    assert seconds < TIMEOUT + 1.5, seconds


def test_only_complete_answers_count_as_the_members_progress(apiserver: _Apiserver) -> None:
    # The observe stage waits on a cluster's read while its calls keep answering (MemberCluster.answered_at):
    # a call cut at its deadline, dripped or never answered, is no answer, or a dripping member would hold the
    # cycle of every cluster up to the cap.
    apiserver.mode = "silent"
    member = member_of(apiserver)
    error, _ = ended(lambda: member.workloads(["gridshift-workloads"]), BOUND)
    assert isinstance(error, ClusterUnreachable) and member.answered_at() is None
    apiserver.mode = "answer"  # discovery answered at once, the list dripped
    member = member_of(apiserver)
    error, _ = ended(lambda: member.workloads(["gridshift-workloads"]), BOUND)
    assert isinstance(error, ClusterUnreachable), error
    answered = member.answered_at()
    assert answered is not None  # discovery's answer; the list, cut at its deadline after it, is none
    assert time.monotonic() - answered >= TIMEOUT - 0.05


def test_discovery_is_asked_of_each_client_and_written_nowhere(
    apiserver: _Apiserver, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found as a CI flake, then in review: the client's default discovery cache, /tmp/osrcp-<md5 of URL>.json,
    # was shared by every process and kept, so a member was "discovered" from whatever answered at its URL
    # before; a file per client instead piled up with each kubeconfig rotation in the chart's 64 MiB /tmp.
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    asked: list[str] = []
    monkeypatch.setattr(_Handler, "log_message", lambda self, *args: asked.append(self.path.split("?")[0]))
    for _ in range(2):  # a second client for the same URL (a rotated kubeconfig) discovers afresh
        error, _seconds = ended(lambda: member_of(apiserver).workloads(["gridshift-workloads"]), BOUND)
        assert isinstance(error, ClusterUnreachable) and " list Deployment " in str(error), error
    assert asked.count("/apis") == 2, asked
    assert list(tmp_path.iterdir()) == []
