"""The Hub's status-patch contract: a patch goes to the object that has the name now, merged, and one naming a
uid no object of that name has any more (deleted, or deleted and created again) is ObjectGone and changes
nothing. `check_status_contract` is run here on FakeHub and on a real kube-apiserver with KubeHub
(tests/cluster/test_crds_apiserver.py); what KubeHub sends for it is checked below with a mocked client.

Found in review: KubeHub's merge patch named the object by name alone, so a deleted deployment's late status
(its migration steps) landed on one created again under its name, which then waited out steps naming swept
replicas for readyTimeoutSeconds, and rolled back; FakeHub kept statuses by uid and hid it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from unittest import mock

import pytest
from kubernetes.client.exceptions import ApiException

from gridshift.hub.client import Hub, KubeHub, ObjectGone, ObjectRef
from gridshift.service.writes import Fenced
from gridshift.testing import FakeHub


@dataclass
class Objects:
    """One InferenceDeployment name's life on a hub: `create` makes it (returning its uid), `delete` removes
    it, `status` reads the status of the object with the name now ({} when it has none)."""

    create: Callable[[], str]
    delete: Callable[[], None]
    status: Callable[[], dict[str, Any]]


def check_status_contract(hub: Hub, objects: Objects, namespace: str, name: str) -> None:
    first = objects.create()
    ref = ObjectRef("InferenceDeployment", namespace, name, first)
    hub.patch_status(ref, {"observedGeneration": 1, "mode": "Auto"})
    hub.patch_status(ref, {"observedGeneration": 2})
    assert {k: objects.status().get(k) for k in ("observedGeneration", "mode")} == {
        "observedGeneration": 2,
        "mode": "Auto",
    }
    objects.delete()
    with pytest.raises(ObjectGone):
        hub.patch_status(ref, {"observedGeneration": 3})
    second = objects.create()
    assert second != first
    with pytest.raises(ObjectGone):  # the deleted one's late status
        hub.patch_status(ref, {"observedGeneration": 3, "mode": "Frozen"})
    assert objects.status().get("observedGeneration") is None and objects.status().get("mode") is None
    hub.patch_status(replace(ref, uid=second), {"observedGeneration": 4})
    assert objects.status().get("observedGeneration") == 4
    hub.patch_status(replace(ref, uid=""), {"mode": "Advisory"})  # no uid: whichever object has the name
    assert {k: objects.status().get(k) for k in ("observedGeneration", "mode")} == {
        "observedGeneration": 4,
        "mode": "Advisory",
    }


def test_the_fake_hub_honours_the_status_contract() -> None:
    hub = FakeHub()
    made = iter(range(1, 100))

    def create() -> str:
        uid = f"uid-{next(made)}"
        hub.deployments[("ml", "chat")] = uid
        return uid

    def status() -> dict[str, Any]:
        uid = hub.deployments[("ml", "chat")]
        return hub.statuses.get(ObjectRef("InferenceDeployment", "ml", "chat", uid), {})

    check_status_contract(hub, Objects(create, lambda: hub.deployments.pop(("ml", "chat")), status), "ml", "chat")


OLD = ObjectRef("InferenceDeployment", "ml", "chat", "uid-old")


def kube_hub_with(current: dict[str, Any]) -> tuple[KubeHub, mock.MagicMock]:
    """KubeHub whose CustomObjectsApi answers every read with `current` (a body's metadata)."""
    hub = KubeHub(mock.MagicMock())
    custom = mock.MagicMock()
    custom.get_namespaced_custom_object.return_value = {"metadata": current}
    hub._custom = custom  # type: ignore[assignment]
    return hub, custom


def test_kube_hub_sends_no_status_of_a_deleted_object_to_one_created_again_under_its_name() -> None:
    hub, custom = kube_hub_with({"name": "chat", "uid": "uid-new", "resourceVersion": "9"})
    with pytest.raises(ObjectGone, match=r"^InferenceDeployment ml/chat was deleted"):
        hub.patch_status(OLD, {"migration": [{"action": "ScaleUp"}]})
    custom.patch_namespaced_custom_object_status.assert_not_called()


def test_kube_hub_makes_a_status_patch_conditional_on_the_resource_version_of_the_object_it_names() -> None:
    # A uid in the patch is not enough: the status subresource ignores metadata (the real apiserver test).
    hub, custom = kube_hub_with({"name": "chat", "uid": "uid-old", "resourceVersion": "9"})
    hub.patch_status(OLD, {"observedGeneration": 2})
    body = custom.patch_namespaced_custom_object_status.call_args.args[5]
    assert body == {"metadata": {"resourceVersion": "9"}, "status": {"observedGeneration": 2}}
    hub.patch_status(ObjectRef("RegionalCluster", "", "eu-de"), {"reachable": True})  # no uid: no read
    assert custom.get_cluster_custom_object.call_count == 0
    assert custom.patch_cluster_custom_object_status.call_args.args[4] == {"status": {"reachable": True}}


def test_a_conflict_because_the_object_was_created_again_meanwhile_is_object_gone_not_retried() -> None:
    hub, custom = kube_hub_with({"name": "chat", "uid": "uid-old", "resourceVersion": "9"})
    reads = iter([{"metadata": {"uid": "uid-old", "resourceVersion": "9"}}, {"metadata": {"uid": "uid-new"}}])
    custom.get_namespaced_custom_object.side_effect = lambda *a, **k: next(reads)
    custom.patch_namespaced_custom_object_status.side_effect = ApiException(status=409, reason="Conflict")
    with pytest.raises(ObjectGone):
        hub.patch_status(OLD, {"observedGeneration": 2})
    assert custom.patch_namespaced_custom_object_status.call_count == 1


def test_kube_hub_reads_no_other_kind_before_its_status_patch() -> None:
    # Found in review: the read went out for every ref with a uid, and the chart grants get on
    # InferenceDeployments alone: an InvalidSpec RegionalCluster's status (its ref carries the uid) was refused
    # every cycle (StatusWriteFailed, the error never shown).
    hub, custom = kube_hub_with({"name": "eu-de", "uid": "uid-cluster", "resourceVersion": "9"})
    hub.patch_status(ObjectRef("RegionalCluster", "", "eu-de", "uid-cluster"), {"reachable": False})
    hub.patch_status(ObjectRef("GPUProfile", "", "llama", "uid-profile"), {"observedGeneration": 1})
    assert custom.get_cluster_custom_object.call_count == 0
    assert custom.patch_cluster_custom_object_status.call_args.args[4] == {"status": {"observedGeneration": 1}}


def test_the_lease_lost_while_the_version_was_read_stops_the_status_patch() -> None:
    # Found in review: the fence came before the read of the resourceVersion (up to the request timeout), and
    # the patch after it went out unchecked: a deposed leader's status landed over the new leader's.
    hub, custom = kube_hub_with({"name": "chat", "uid": "uid-old", "resourceVersion": "9"})
    leading = [True]

    def read_while_the_lease_passes(*args: Any, **kwargs: Any) -> dict[str, Any]:
        leading[0] = False
        return {"metadata": {"name": "chat", "uid": "uid-old", "resourceVersion": "9"}}

    def fence() -> None:
        if not leading[0]:
            raise Fenced("lapsed")

    custom.get_namespaced_custom_object.side_effect = read_while_the_lease_passes
    with pytest.raises(Fenced):
        hub.patch_status(OLD, {"observedGeneration": 2}, fence=fence)
    custom.patch_namespaced_custom_object_status.assert_not_called()
