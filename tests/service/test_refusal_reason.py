"""Ready's reason for a refused write (service.status.refusal_reason), told by the error raised, through the
whole service (the in-memory harness)."""

from __future__ import annotations

from typing import Any

import pytest

from gridshift.actuation.members import ActuationForbidden, ForeignObject, MemberError, NamespaceMissing
from gridshift.hub.client import HubForbidden, RouteConflict
from gridshift.service.status import refusal_reason
from tests.service.harness import ServiceHarness, deployment_body
from tests.service.test_migrate import Fleet
from tests.service.test_status import conditions


def refusing(error: MemberError) -> ServiceHarness:
    """chat placed in eu-de, whose every write is refused with `error`: its first ScaleUp waits, retried."""
    world = ServiceHarness(["eu-de"])

    def refuse(manifests: Any, fence: Any = None) -> None:
        raise error

    world.members["eu-de"].apply = refuse  # type: ignore[method-assign]
    world.add(deployment_body())
    world.cycle()
    world.cycle()
    return world


WEBHOOK = (
    "cluster eu-de: apply Deployment gsw/chat: HTTP 400 Bad Request: admission webhook denied the request: "
    "forbidden: images from docker.io"
)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        # Found in review: the member's words (an admission webhook's "forbidden: ...", an HTTP 400) read Forbidden,
        # which tells the administrator to grant a permission gridshift does not lack: the spec is what is refused.
        (MemberError("eu-de", WEBHOOK, status=400), "ActuationFailed"),
        (ActuationForbidden("eu-de", "apps/deployments create: Forbidden"), "Forbidden"),
        (NamespaceMissing("eu-de", "gridshift-workloads"), "Forbidden"),
        (ForeignObject("eu-de", "Deployment", "gridshift-workloads", "chat-h100", "other/one"), "ActuationFailed"),
    ],
)
def test_a_refused_write_is_told_forbidden_by_the_error_raised_not_its_words(error: MemberError, reason: str) -> None:
    world = refusing(error)
    assert conditions(world.status())["Ready"] == ("False", reason)
    assert conditions(world.status())["Stalled"] == ("True", reason)
    # The cycle-error metric's reason is told by the same rule (review: status said ActuationFailed while
    # gridshift_cycle_errors_total counted the webhook's HTTP 400 as Forbidden, read from its words).
    report = world.cycle()
    assert [p.reason.value for p in report.problems if p.deployment] == [reason]


def test_weights_the_hub_refuses_are_forbidden_and_a_route_it_did_not_take_is_not() -> None:
    # A move that scales down after its ShiftRouting holds there while the hub refuses the weights (service.migrate).
    for refusal, reason in (
        (HubForbidden("forbidden: cannot patch httproutes (Forbidden); the ClusterRole needs it"), "Forbidden"),
        (RouteConflict("HTTPRoute ml/chat changed since read"), "ActuationFailed"),
    ):
        fleet = Fleet.of(a=2)
        fleet.route_refused = refusal
        plan = fleet.plan({"b": 2})
        for _ in range(4):
            progress, _ = fleet.cycle(plan)
            fleet.make_ready()
        assert progress.failure is refusal and progress.error is not None
        assert refusal_reason(progress) == reason
