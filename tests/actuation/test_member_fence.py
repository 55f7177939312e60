"""The real member adapter's fence: checked again right before the apply, after the read it follows.

Found in review: `_apply_one` was fenced before its GET (which may take the whole request timeout, 10 s by
default), then sent a forced server-side apply with no second check: a replica whose Lease passed to another
while the GET was in flight overwrote what the new leader had written."""

from __future__ import annotations

from typing import Any

import pytest

from gridshift.actuation.labels import OWNER, OWNER_UID
from gridshift.actuation.members import KubeMemberCluster
from gridshift.service.writes import Fenced
from tests.actuation.test_member_refusals import KUBECONFIG

OWNED = {OWNER: "t/chat", OWNER_UID: "u1"}


class _Answer:
    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    def to_dict(self) -> dict[str, Any]:
        return self.body


class _Resource:
    """A Deployment resource whose GET answers an object of ours after `during_get` ran; applies are recorded."""

    kind = "Deployment"

    def __init__(self, during_get: Any) -> None:
        self.during_get = during_get
        self.applied: list[dict[str, Any]] = []

    def get(self, **_: Any) -> _Answer:
        self.during_get()
        return _Answer({"metadata": {"name": "chat", "resourceVersion": "7", "annotations": OWNED}})

    def server_side_apply(self, body: dict[str, Any], **_: Any) -> Any:
        self.applied.append(body)
        return None


def test_the_lease_lost_while_the_read_was_in_flight_stops_the_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    leading = [True]

    def fence() -> None:
        if not leading[0]:
            raise Fenced("lapsed")

    def lose_the_lease() -> None:
        leading[0] = False  # the renew deadline passed while the member apiserver held the GET

    member = KubeMemberCluster("eu-de", KUBECONFIG, watch=False)
    resource = _Resource(lose_the_lease)
    monkeypatch.setattr(member, "_resource", lambda api_version, kind: resource)
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "chat", "namespace": "t", "annotations": dict(OWNED)},
    }
    with pytest.raises(Fenced):
        member.apply([manifest], fence)
    assert resource.applied == [], "force-applied after the Lease may have passed to another replica"
    leading[0] = True
    resource.during_get = lambda: None
    member.apply([manifest], fence)  # still leading after the read: sent, conditional on the version read
    assert [body["metadata"]["resourceVersion"] for body in resource.applied] == ["7"]
