"""KubeHub turns the API's 404/403/409 answers into the hub's own exceptions, messages that say what to
fix, and nothing of the API's response body; other statuses pass unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gridshift.hub.client import (
    MANAGED_ROUTE_LABEL,
    HubForbidden,
    KubeHub,
    ObjectGone,
    ObjectRef,
    RouteConflict,
    RouteMissing,
    SecretMissing,
    SecretPurpose,
)

BODY = '{"message": "secret-value-from-the-body"}'


class Answering:
    """Every API method answers with the given status (as the kubernetes client raises it)."""

    def __init__(self, status: int, reason: str = "Reason") -> None:
        self.status = status
        self.reason = reason
        self.calls: list[str] = []

    def __getattr__(self, method: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(method)
            error = ApiException(status=self.status, reason=self.reason)
            error.body = BODY
            raise error

        return call


class ReadThenConflict:
    """A managed route that reads fine and answers 409 Conflict to the patch."""

    def __init__(self, route: dict[str, Any]) -> None:
        self.route = route

    def get_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.route

    def patch_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        raise ApiException(status=409, reason="Conflict")


def hub_answering(status: int, reason: str = "Reason") -> KubeHub:
    hub = KubeHub(client.ApiClient(client.Configuration()))
    answering = Answering(status, reason)
    # The generated API classes are replaced whole: every method this test reaches answers the status.
    hub._core = hub._custom = hub._coordination = answering  # type: ignore[assignment]
    return hub


REF = ObjectRef("InferenceDeployment", "team-a", "llama")


def test_a_missing_secret_is_secret_missing_naming_it() -> None:
    with pytest.raises(SecretMissing, match=r"^Secret ops/kc not found$") as caught:
        hub_answering(404).read_secret("ops", "kc", "kubeconfig", SecretPurpose.MEMBER_KUBECONFIG)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_forbidden_secret_says_which_permission_is_missing() -> None:
    with pytest.raises(HubForbidden, match=r"cannot get Secret ops/kc \(Forbidden\); the operator's Role needs get"):
        hub_answering(403, "Forbidden").read_secret("ops", "kc", "kubeconfig", SecretPurpose.MEMBER_KUBECONFIG)


def test_status_patches_name_the_deleted_object_or_the_missing_permission() -> None:
    with pytest.raises(ObjectGone, match=r"^InferenceDeployment team-a/llama was deleted$"):
        hub_answering(404).patch_status(REF, {})
    with pytest.raises(HubForbidden, match=r"cannot patch inferencedeployments/status \(Forbidden\)"):
        hub_answering(403, "Forbidden").patch_status(REF, {})


def test_absent_objects_read_as_empty() -> None:
    hub = hub_answering(404)
    assert hub.namespace_labels("team-a") == {}
    assert hub.deployment_uid("team-a", "llama") is None
    assert hub.read_lease("gridshift-leader", "ops") is None


def test_a_missing_route_is_named() -> None:
    with pytest.raises(RouteMissing, match=r"HTTPRoute team-a/llama not found"):
        hub_answering(404).set_route_weights("team-a", "llama", {"eu": 100}, {"eu"})


def test_a_route_changed_between_read_and_write_is_a_conflict() -> None:
    hub = hub_answering(409)
    backend = {"name": "eu", "weight": 0}
    route = {"metadata": {"labels": {MANAGED_ROUTE_LABEL: "true"}}, "spec": {"rules": [{"backendRefs": [backend]}]}}
    hub._custom = ReadThenConflict(route)  # type: ignore[assignment]
    with pytest.raises(RouteConflict, match=r"HTTPRoute team-a/llama changed while being updated"):
        hub.set_route_weights("team-a", "llama", {"eu": 100}, {"eu"})


@pytest.mark.parametrize("status", [400, 403, 500])
def test_other_statuses_pass_unchanged(status: int) -> None:
    hub = hub_answering(status)
    with pytest.raises(ApiException) as caught:
        hub.namespace_labels("team-a")
    assert caught.value.status == status
    if status != 403:
        with pytest.raises(ApiException):
            hub.read_secret("ops", "kc", "kubeconfig", SecretPurpose.MEMBER_KUBECONFIG)


def test_no_translated_error_carries_the_response_body() -> None:
    for status in (403, 404):
        with pytest.raises(Exception) as caught:
            hub_answering(status).read_secret("ops", "kc", "kubeconfig", SecretPurpose.MEMBER_KUBECONFIG)
        assert "secret-value" not in str(caught.value) and "secret-value" not in repr(caught.value)
