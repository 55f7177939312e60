"""A member apiserver (or an auth proxy in front of it) that echoes the credential it refused.

The real kubeconfig parsing and member adapter (`parse_kubeconfig`, `KubeMemberCluster`) talk to a local
HTTP server answering 401/403 with a Status message that quotes the request's Authorization header.
Found in review: the member's text reached the RegionalCluster's Ready condition, the cycle's errors, the
log and kopf's TemporaryError (stored on the tenant's InferenceDeployment) with the kubeconfig's token, or
a username/password kubeconfig's "Basic ..." header, in it."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import os
import textwrap
import uuid
from collections.abc import Iterator
from typing import Any

import kopf
import pytest

from gridshift import redaction
from gridshift.actuation.members import ActuationForbidden, KubeMemberCluster, Owner, WorkloadState
from gridshift.hub.client import SecretMissing
from gridshift.planner.migration import StepAction
from gridshift.service import report as report_module
from gridshift.service.migrate import StepRecord, StepState
from gridshift.service.report import log_problems
from gridshift.service.sweep import CleanupIncomplete, delete_everywhere
from gridshift.service.wiring import parse_kubeconfig
from gridshift.shell import handlers
from gridshift.testing import FakeMemberCluster
from tests.service.harness import H100, ServiceHarness, deployment_body
from tests.signals.conftest import LocalServer, Reply, Request, local_server

__all__ = ["local_server"]


def _echoing(server: LocalServer, status: int) -> None:
    """Every request is refused with `status`, the Status message quoting the Authorization header sent."""

    def respond(request: Request) -> Reply:
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "code": status,
            "reason": "Forbidden" if status == 403 else "Unauthorized",
            "message": f"token rejected by gateway: {request.headers.get('authorization', '')}",
        }
        return Reply(status=status, body=json.dumps(body).encode())

    server.respond = respond


def _kubeconfig(url: str, user: str) -> str:
    return f"""
apiVersion: v1
kind: Config
current-context: c
clusters: [{{name: c, cluster: {{server: "{url}"}}}}]
users: [{{name: u, user: {user}}}]
contexts: [{{name: c, context: {{cluster: c, user: u}}}}]
"""


def _world(server: LocalServer, user: str) -> ServiceHarness:
    world = ServiceHarness(["eu"])
    world.hub.secrets[("gridshift-system", "kc-eu")] = {"kubeconfig": _kubeconfig(server.url, user)}

    def member(name: str, text: str) -> KubeMemberCluster:
        return KubeMemberCluster(name, parse_kubeconfig(name, text), 3.0, watch=False)

    world.service.observer._member_factory = member
    world.add(deployment_body("chat"))
    return world


@pytest.fixture
def redacted_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """The log as the operator writes it: every record through the redaction net (shell.logs installs it)."""
    redaction.install_log_redaction()
    try:
        with caplog.at_level(logging.WARNING):
            yield caplog
    finally:
        redaction.uninstall_log_redaction()


def _texts(world: ServiceHarness, errors: list[str], log: str) -> dict[str, str]:
    return {
        "statuses": json.dumps({str(k): v for k, v in world.hub.statuses.items()}, default=str),
        "events": json.dumps([e._asdict() for e in world.hub.events], default=str),
        "report.errors": json.dumps(errors),
        "log": log,
    }


@pytest.mark.parametrize("status", [403, 401])
@pytest.mark.parametrize("credential", ["token", "basic"])
def test_a_member_echoing_the_credential_it_refused_is_quoted_without_it(
    local_server: LocalServer, redacted_log: pytest.LogCaptureFixture, status: int, credential: str
) -> None:
    secret = f"planted-{uuid.uuid4()}"
    if credential == "token":
        user, sent, forms = f'{{token: "{secret}"}}', f"Bearer {secret}", [secret]
    else:
        basic = base64.b64encode(f"ops:{secret}".encode()).decode()
        user, sent, forms = f'{{username: ops, password: "{secret}"}}', f"Basic {basic}", [basic, secret]
    _echoing(local_server, status)
    world = _world(local_server, user)
    report = world.cycle()
    log_problems(report)
    assert local_server.requests and local_server.requests[0].headers["authorization"] == sent
    ready = next(c for c in world.cluster_bodies["eu"]["status"]["conditions"] if c["type"] == "Ready")
    # A 401's text is quoted (redacted); a 403's is not at all: an apiserver's names the member credentials'
    # identity, and 403s reach tenants' status and Events (found in review). Either way the cause is named.
    quoted = "token rejected by gateway" if status == 401 else "forbidden: discovery (HTTP 403)"
    assert ready["status"] == "False" and quoted in ready["message"], ready
    assert status == 401 or "gateway" not in ready["message"], ready
    leaks = [
        (where, form)
        for where, text in _texts(world, report.errors, redacted_log.text).items()
        for form in forms
        if form in text
    ]
    assert not leaks, leaks


def test_a_member_quoting_the_client_key_of_a_certificate_kubeconfig_is_quoted_without_it(
    redacted_log: pytest.LogCaptureFixture,
) -> None:
    # A kubeconfig authenticating with a client certificate holds its private key as client-key-data (base64
    # of the PEM): parse_kubeconfig remembers it, so a member's text quoting it (a TLS gateway echoing the
    # credentials it was configured with, say) reaches no condition, error or log line.
    body = textwrap.fill(base64.b64encode(os.urandom(1190)).decode(), 64)
    key = base64.b64encode(f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n".encode()).decode()
    cert = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()
    world = ServiceHarness(["eu"])
    kubeconfig = _kubeconfig(
        "https://eu.example:6443", f'{{client-certificate-data: "{cert}", client-key-data: "{key}"}}'
    )
    world.hub.secrets[("gridshift-system", "kc-eu")] = {"kubeconfig": kubeconfig}

    class Echoing(FakeMemberCluster):
        def workloads(self, namespaces: Any) -> list[WorkloadState]:
            raise ActuationForbidden(self.name, f"client key {key} not accepted")

    def member(name: str, text: str) -> FakeMemberCluster:
        parse_kubeconfig(name, text)
        return Echoing(name, gpus={H100: 16})

    world.service.observer._member_factory = member
    world.add(deployment_body("chat"))
    report = world.cycle()
    log_problems(report)
    ready = next(c for c in world.cluster_bodies["eu"]["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and "client key <redacted> not accepted" in ready["message"], ready
    leaks = [where for where, text in _texts(world, report.errors, redacted_log.text).items() if key in text]
    assert not leaks, leaks


def test_a_deletion_refused_by_an_echoing_member_retries_without_the_token(local_server: LocalServer) -> None:
    secret = f"planted-{uuid.uuid4()}"
    _echoing(local_server, 403)
    world = _world(local_server, f'{{token: "{secret}"}}')
    with pytest.raises(CleanupIncomplete) as incomplete:
        delete_everywhere(world.hub, world.service.observer, Owner("ml", "chat", "uid-chat"))
    assert "forbidden" in str(incomplete.value) and secret not in str(incomplete.value), str(incomplete.value)


def test_the_finalizers_temporary_error_never_quotes_a_remembered_secret() -> None:
    # kopf stores the TemporaryError's text in the tenant's InferenceDeployment (status.kopf): the net under every
    # error the cleanup may quote.
    secret = f"planted-{uuid.uuid4()}"
    redaction.remember(secret)

    class Service:
        async def delete_everywhere(self, namespace: str, name: str, uid: str, recorded: Any = None) -> None:
            raise CleanupIncomplete(f"ml/chat: not cleaned up yet: cluster eu: {secret}")

    memo = kopf.Memo()
    memo.service = Service()
    with pytest.raises(kopf.TemporaryError) as retried:
        asyncio.run(handlers.deleted(namespace="ml", name="chat", uid="uid-chat", memo=memo))
    assert "cluster eu: <redacted>" in str(retried.value) and secret not in str(retried.value)


def test_conditions_and_events_never_quote_a_remembered_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    # The net under each error's own redaction, at the one place each is written: a condition message
    # (service.status._Conditions) and an Event note (service.report).
    secret = f"planted-{uuid.uuid4()}"
    redaction.remember(secret)
    world = ServiceHarness(["eu"])

    def read_secret(*args: Any) -> str:
        raise SecretMissing(f"Secret gridshift-system/kc-eu: the hub answered {secret}")

    monkeypatch.setattr(world.hub, "read_secret", read_secret)
    world.add(deployment_body("chat"))
    decision_event = report_module._decision_event
    monkeypatch.setattr(
        report_module,
        "_decision_event",
        lambda decision: dataclasses.replace(decision_event(decision), note=f"{decision.summary} ({secret})"),
    )
    report = world.cycle()
    ready = next(c for c in world.cluster_bodies["eu"]["status"]["conditions"] if c["type"] == "Ready")
    assert "the hub answered <redacted>" in ready["message"], ready
    assert world.hub.events and all(secret not in e.note for e in world.hub.events), world.hub.events
    assert secret not in json.dumps({str(k): v for k, v in world.hub.statuses.items()}, default=str)
    assert report.errors


def test_a_migration_steps_message_never_quotes_a_remembered_secret() -> None:
    # A step's message quotes a member's refusal of the step (status.migration[].message); redacted before it is
    # cut, so no part of a secret at the cut is left either.
    secret = f"planted-{uuid.uuid4()}"
    redaction.remember(secret)
    step = StepRecord(0, StepAction.SCALE_UP, "eu", "H100", 2, StepState.FAILED, message="x" * 4085 + secret)
    assert secret[:8] not in step.to_wire()["message"]
    step = StepRecord(0, StepAction.SCALE_UP, "eu", "H100", 2, StepState.FAILED, message=f"refused: {secret}")
    assert step.to_wire()["message"] == "refused: <redacted>"
