"""The real member adapter's memory of refused namespaces (`unreadable_namespaces`), without a cluster.

`_cached` (one namespace's watched or listed objects) is scripted; what is under test is what the adapter
remembers of a refusal from one read to the next."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from gridshift.actuation.labels import DEPLOYMENT, MANAGED_BY, MANAGED_BY_VALUE, deployment_label_value
from gridshift.actuation.members import (
    ActuationForbidden,
    ClusterUnreachable,
    ForeignObject,
    KubeMemberCluster,
    MemberError,
    NamespaceMissing,
    Owner,
    RequestStage,
)
from gridshift.actuation.render import render_workload
from tests.actuation.test_member_contract import SPEC, WORKLOADS, check_refused_listing, owner, target

KUBECONFIG = {  # a member no test reaches: port 9 (discard) on localhost
    "apiVersion": "v1",
    "kind": "Config",
    "current-context": "c",
    "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
    "users": [{"name": "u", "user": {}}],
}


def member_refusing(monkeypatch: pytest.MonkeyPatch, refused: set[str]) -> KubeMemberCluster:
    """A member whose listings of `refused` namespaces are answered 403 (the set may change later)."""
    member = KubeMemberCluster("eu-de", KUBECONFIG, watch=False)

    def cached(api_version: str, kind: str, namespace: str, label_selector: str | None, extract: Any) -> list[Any]:
        if namespace in refused:
            raise ActuationForbidden("eu-de", f"list {kind} in {namespace}: Forbidden")
        return []

    monkeypatch.setattr(member, "_cached", cached)
    return member


def test_a_namespace_refused_once_is_read_again_once_granted(monkeypatch: pytest.MonkeyPatch) -> None:
    # Found in review: a refusal was remembered until the namespace was no longer asked about, so a tenant
    # whose member Role came one cycle late was reported unread, and its replicas counted again from the
    # last cycle's list on top of those read, one more copy every cycle.
    refused = {"gs-team-b"}
    member = member_refusing(monkeypatch, refused)
    member.workloads(["gs-team-a", "gs-team-b"])
    member.owned_objects(["gs-team-a", "gs-team-b"])
    assert set(member.unreadable_namespaces()) == {"gs-team-b"}
    refused.clear()
    member.workloads(["gs-team-a", "gs-team-b"])
    member.owned_objects(["gs-team-a", "gs-team-b"])
    assert member.unreadable_namespaces() == {}


def test_a_refusal_of_companions_alone_is_still_named_after_the_deployments_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A cycle reads Deployments first, then the companions and the inventory: a refusal of any of them in
    # this cycle is named, whichever read it came from.
    refused: set[str] = set()
    member = member_refusing(monkeypatch, refused)
    member.workloads(["gs-team-b"])
    refused.add("gs-team-b")
    member.owned_objects(["gs-team-b"])
    assert set(member.unreadable_namespaces()) == {"gs-team-b"}
    # By kind: the Deployments were read, so a caller asking whose Deployments were not listed hears none
    # (observe keeps last cycle's replicas only there), whatever order it asks in.
    assert member.unreadable_namespaces("Deployment") == {}
    assert set(member.unreadable_namespaces("Service")) == {"gs-team-b"}


def test_a_deletion_lists_the_owners_objects_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # Found in review: deleting by the owner annotations among every object labelled managed-by=gridshift read
    # the whole namespace per deletion (800 objects each at 400 owners, quadratic for a bulk deletion). The
    # listing names the owner's label values: today's, and the one an earlier release wrote (row 53).
    member = KubeMemberCluster("eu-de", KUBECONFIG, watch=False)
    selectors: list[str] = []

    def listed(api_version: str, kind: str, namespace: str, selector: str) -> list[Any]:
        selectors.append(selector)
        return []

    monkeypatch.setattr(member, "_list", listed)
    monkeypatch.setattr(member, "_resource", lambda api_version, kind: None)  # no discovery: nothing is deleted
    member.delete_deployment_objects(Owner("team-a", "gamma-0123456789abcdef", "uid-1"), ["ws"])
    today = deployment_label_value("team-a", "gamma-0123456789abcdef")
    assert selectors and set(selectors) == {
        f"{MANAGED_BY}={MANAGED_BY_VALUE},{DEPLOYMENT} in ({today},team-a.gamma-0123456789abcdef)"
    }


def test_a_deletion_refused_its_listing_names_the_namespace_not_the_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Found in review: the apiserver's 403 text ("User system:serviceaccount:<ns>:<name> cannot list ...") was
    # quoted into the tenant's status and Events; and the refusal of a deletion's listing could not be told
    # from a failed deletion, so a tenant not onboarded on a cluster could never finish deleting.
    from kubernetes.client.exceptions import ApiException

    member = KubeMemberCluster("eu-de", KUBECONFIG, watch=False)

    class Refusing:
        def __init__(self, kind: str) -> None:
            self.kind = kind  # as a discovered resource: the adapter's messages name it

        def get(self, **_: Any) -> Any:
            error = ApiException(status=403, reason="Forbidden")
            error.body = json.dumps(
                {"message": 'deployments.apps is forbidden: User "system:serviceaccount:gs:gridshift" cannot list'}
            )
            raise error

    monkeypatch.setattr(member, "_resource", lambda api_version, kind: Refusing(kind))
    check_refused_listing(member, "eu-de", "gsw-team-x")


def test_an_object_gone_between_the_deletions_listing_and_its_delete_counts_as_deleted_by_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Found in review: a 404 on the delete (the sweep, or a retry, deleted it first) escaped as a raw
    # NotFoundError, which the finalizer reported as an adapter bug instead of moving on.
    from kubernetes.client.exceptions import ApiException

    member = KubeMemberCluster("eu-de", KUBECONFIG, watch=False)
    deployment = copy.deepcopy(next(m for m in render_workload(SPEC, target("alpha", 1)) if m["kind"] == "Deployment"))
    deployment["metadata"]["uid"] = "object-uid"

    class Gone:
        kind = "Deployment"

        def delete(self, **_: Any) -> Any:
            raise ApiException(status=404, reason="Not Found")

    def listed(api_version: str, kind: str, namespace: str, selector: str) -> list[Any]:
        return [deployment] if kind == "Deployment" else []

    monkeypatch.setattr(member, "_list", listed)
    monkeypatch.setattr(member, "_resource", lambda api_version, kind: Gone())
    assert member.delete_deployment_objects(owner("alpha"), [WORKLOADS]) == 0


@pytest.mark.parametrize(
    ("status", "reason", "gist"),
    [
        (422, "Unprocessable Entity", "HTTP 422 Unprocessable Entity"),
        (400, "Bad", "HTTP 400 Bad Request"),
    ],
)
def test_a_refusal_quoting_the_member_has_a_gist_without_its_words(status: int, reason: str, gist: str) -> None:
    # Found in review: a migration rolled back after a refused write quoted the member's refusal whole in its
    # Event; for a 400/422 that is the apiserver's or an admission webhook's text. The error keeps it (the log has
    # it); its gist, what Events say, is the HTTP status with its standard phrase (not the answer's own reason).
    from kubernetes.client.exceptions import ApiException

    member = KubeMemberCluster("eu-de", KUBECONFIG, watch=False)
    error = ApiException(status=status, reason=reason)
    error.body = json.dumps({"message": "admission webhook denied the request: token=s3cr3t"})

    def refused() -> None:
        raise error

    with pytest.raises(MemberError) as caught:
        member._answer(refused, "apply Deployment gsw/x", RequestStage.WRITE)
    assert "s3cr3t" in str(caught.value) and caught.value.status == status
    assert caught.value.gist == gist


def test_a_5xx_is_unreachable_with_its_status_kept() -> None:
    # Review: a 5xx answer to a write rolled back as "not sent: cluster b unreachable", its HTTP status lost; the
    # member answered, and the roll-back's reason says with what (service.migrate._not_sent).
    from kubernetes.client.exceptions import ApiException

    member = KubeMemberCluster("eu-de", KUBECONFIG, watch=False)

    def failed() -> None:
        raise ApiException(status=500, reason="Internal Server Error")

    with pytest.raises(ClusterUnreachable) as caught:
        member._answer(failed, "apply Deployment gsw/x", RequestStage.WRITE)
    assert caught.value.status == 500 and caught.value.gist == "HTTP 500 Internal Server Error"


def test_a_403_and_a_missing_namespace_keep_gridshifts_own_words_for_status_and_not_the_apiservers() -> None:
    # Review: status said only "refused (HTTP 403 Forbidden)" or "refused (workload namespace missing)", though the
    # adapter's own text (the request refused; the namespace to create, and how) is what the administrator acts on.
    # It is gridshift's alone: the apiserver's 403 text (naming the member credentials' identity) is never in it.
    from kubernetes.client.exceptions import ApiException

    member = KubeMemberCluster("eu-de", KUBECONFIG, watch=False)
    error = ApiException(status=403, reason="Forbidden")
    error.body = json.dumps({"message": 'User "system:serviceaccount:gs:gridshift" cannot patch deployments'})

    def refused() -> None:
        raise error

    with pytest.raises(ActuationForbidden) as caught:
        member._answer(refused, "apply Deployment gsw/chat-h100", RequestStage.WRITE)
    assert caught.value.own_words == "forbidden: apply Deployment gsw/chat-h100 (HTTP 403)"
    assert NamespaceMissing("eu-de", "gsw").own_words == (
        "workload namespace 'gsw' does not exist; create it with gridshift's member RBAC (docs/rbac.md)"
    )
    # An ActuationForbidden whose detail the caller did not vouch for and a bare MemberError leave status the gist
    # alone; an object in the way is named without its owner (maybe another tenant's deployment), and says it was
    # not overwritten (review: status had lost that).
    assert ActuationForbidden("eu-de", "deployments.apps is forbidden: User x").own_words == ""
    assert MemberError("eu-de", "cluster eu-de: webhook says no", status=422).own_words == ""
    foreign = ForeignObject.found("eu-de", "Deployment", "gsw", "x", ("ml", "chat", "u1"), None)
    assert foreign.own_words == "Deployment gsw/x exists and is not this deployment's; not overwritten"
    assert "chat" not in foreign.own_words and "u1" not in foreign.own_words


def test_a_refusal_without_an_http_status_is_named_by_its_kind() -> None:
    assert ActuationForbidden("eu-de", "list Deployment in gsw (HTTP 403)").gist == "HTTP 403 Forbidden"
    assert ClusterUnreachable("eu-de", "no answer").gist == "unreachable"
    assert MemberError("eu-de", "cluster eu-de: token=s3cr3t").gist == "refused"


@pytest.mark.parametrize(
    ("get", "apply", "stage", "said"),
    [
        # Review: a 503 to the GET before the apply read "failed with HTTP 503" in a roll-back, though the apply
        # never went out: the error says which request it ended (service.migrate words the roll-back by it).
        (503, None, RequestStage.READ, "get Deployment "),
        (0, None, RequestStage.READ, "get Deployment "),
        (None, 504, RequestStage.WRITE, "apply Deployment "),
        (None, 0, RequestStage.WRITE, "apply Deployment "),
    ],
)
def test_a_failed_write_says_whether_it_failed_at_the_read_before_the_apply_or_at_the_apply(
    monkeypatch: pytest.MonkeyPatch, get: int | None, apply: int | None, stage: RequestStage, said: str
) -> None:
    from kubernetes.client.exceptions import ApiException

    member = KubeMemberCluster("eu-de", KUBECONFIG, watch=False)
    manifest = next(m for m in render_workload(SPEC, target("alpha", 1)) if m["kind"] == "Deployment")

    class Resource:
        kind = "Deployment"

        def get(self, **_: Any) -> Any:
            if get is not None:
                raise ApiException(status=get, reason="Service Unavailable" if get else "")
            raise ApiException(status=404, reason="Not Found")

        def server_side_apply(self, **_: Any) -> Any:
            assert apply is not None, "applied after a failed read"
            raise ApiException(status=apply, reason="Gateway Timeout" if apply else "")

    monkeypatch.setattr(member, "_resource", lambda api_version, kind: Resource())
    with pytest.raises(ClusterUnreachable) as caught:
        member.apply([manifest])
    assert caught.value.stage is stage and said in str(caught.value)
    assert caught.value.status == (get or apply or None)


def test_an_unreachable_member_fails_before_anything_is_sent_in_the_fake_as_in_the_real_adapter() -> None:
    # Review (6 December 2026): the fake raised its ClusterUnreachable at the write stage, where the real adapter
    # fails at discovery, before any request goes out; service tests then read "it may have been applied" and set
    # status.migration[].maybeApplied where production says "not sent".
    from gridshift.testing.members import FakeMemberCluster

    manifest = next(m for m in render_workload(SPEC, target("alpha", 1)) if m["kind"] == "Deployment")
    stages = []
    for member in (KubeMemberCluster("eu-de", KUBECONFIG, watch=False), FakeMemberCluster("eu-de", reachable=False)):
        with pytest.raises(ClusterUnreachable) as caught:
            member.apply([manifest])
        stages.append(caught.value.stage)
    assert stages == [RequestStage.READ, RequestStage.READ]
