"""Contract every MemberCluster must honour; the fake runs here, the real one in tests/cluster/."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from gridshift.actuation import labels as L
from gridshift.actuation.members import (
    ActuationForbidden,
    ClusterUnreachable,
    ForeignObject,
    ListingRefused,
    MemberCluster,
    NamespaceMissing,
    Owner,
)
from gridshift.actuation.render import WorkloadTarget, applied_digest, render_workload
from gridshift.api import InferenceDeploymentSpec
from gridshift.testing import FakeMemberCluster

SPEC = InferenceDeploymentSpec.model_validate(
    {
        "model": {"servedName": "m", "source": "org/m"},
        "replica": {"gpuTypes": ["NVIDIA-H100-80GB-HBM3"]},
        "slo": {"ttftP95Ms": 500, "tpotP95Ms": 50},
    }
)
GPU = "NVIDIA-H100-80GB-HBM3"


WORKLOADS = "gridshift-contract"


def target(name: str, replicas: int, namespace: str = "team-a") -> WorkloadTarget:
    return WorkloadTarget(namespace, name, "c1", WORKLOADS, GPU, replicas, 64, owner_uid=f"uid-{namespace}-{name}")


def owner(name: str, namespace: str = "team-a") -> Owner:
    return Owner(namespace, name, f"uid-{namespace}-{name}")


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.5)


def check_member_contract(cluster: MemberCluster, total_gpus: int) -> None:
    """Run against any MemberCluster that has `total_gpus` free GPUs of type GPU and namespace WORKLOADS."""
    before = {i.gpu_type: i for i in cluster.gpu_inventory([WORKLOADS]).gpus}
    assert before[GPU].allocatable == total_gpus

    asked = time.monotonic()
    cluster.apply(render_workload(SPEC, target("alpha", 2)))
    # The observe stage's sign of a read's progress (service.observe). Asked of a write, which always goes out:
    # a real adapter may answer a read from its watch cache, with no request to date.
    answered = cluster.answered_at()
    assert answered is not None and asked <= answered <= time.monotonic()
    cluster.apply(render_workload(SPEC, target("beta", 1)))
    wait_for(lambda: sum(w.ready for w in cluster.workloads([WORKLOADS])) == 3)
    states = {w.deployment_name: w for w in cluster.workloads([WORKLOADS])}
    assert (states["alpha"].desired, states["alpha"].gpu_type, states["alpha"].deployment_namespace) == (
        2,
        GPU,
        "team-a",
    )
    assert states["alpha"].owner_uid == "uid-team-a-alpha" and states["alpha"].owned
    # What its engine runs is read back (kept where the plan has no option for it: service.actuate); the
    # model's own build is an empty annotation, which the apiserver keeps.
    engine = (states["alpha"].variant, states["alpha"].model, states["alpha"].image, states["alpha"].max_num_seqs)
    assert engine == ("", "org/m", SPEC.engine.image, 64)
    # What is read back matches what was rendered, field for field gridshift sets (no apply needed), though
    # the apiserver added its defaults (imagePullPolicy, clusterIP, protocol, ...).
    rendered = {
        (m["kind"], m["metadata"]["name"]): applied_digest(m) for m in render_workload(SPEC, target("alpha", 2))
    }
    live = {(o.kind, o.name): o.applied for o in cluster.owned_objects([WORKLOADS])}
    assert {k: live.get(k) for k in rendered if k[0] != "Deployment"} == {
        k: d for k, d in rendered.items() if k[0] != "Deployment"
    }
    assert rendered[("Deployment", states["alpha"].name)] == states["alpha"].applied
    # Each is read with its owner, UID included: the sweep finds orphans of every kind by it (review: by the
    # Deployments alone, a Service left after its Deployment's deletion was never swept).
    owners = {(o.kind, o.name): o.owner for o in cluster.owned_objects([WORKLOADS])}
    assert {k: owners.get(k) for k in rendered if k[0] != "Deployment"} == {
        k: ("team-a", "alpha", "uid-team-a-alpha") for k in rendered if k[0] != "Deployment"
    }
    wait_for(lambda: {i.gpu_type: i for i in cluster.gpu_inventory([WORKLOADS]).gpus}[GPU].used == before[GPU].used + 3)
    # The GPUs held in the namespaces asked about are told apart (what gridshift's replicas hold); none elsewhere.
    assert {i.gpu_type: i for i in cluster.gpu_inventory([WORKLOADS]).gpus}[GPU].used_in_namespaces == 3
    assert {i.gpu_type: i for i in cluster.gpu_inventory(["gridshift-elsewhere"]).gpus}[GPU].used_in_namespaces == 0

    # Re-applying with another count scales the same object.
    cluster.apply(render_workload(SPEC, target("alpha", 1)))
    wait_for(lambda: [w.desired for w in cluster.workloads([WORKLOADS]) if w.deployment_name == "alpha"] == [1])

    # Another owner (a re-created deployment with a new UID) may not overwrite alpha's objects.
    other = WorkloadTarget("team-a", "alpha", "c1", WORKLOADS, GPU, 5, 64, owner_uid="uid-impostor")
    # The refusal names the owner's UID: "belongs to team-a/alpha" read as alpha refusing itself (review).
    earlier = r"belongs to another team-a/alpha uid uid-team-a-alpha \(this one is uid uid-impostor\)"
    with pytest.raises(ForeignObject, match=f"{earlier}.*; not overwritten"):
        cluster.apply(render_workload(SPEC, other))
    assert [w.desired for w in cluster.workloads([WORKLOADS]) if w.deployment_name == "alpha"] == [1]
    # Nor can it delete them: deletion goes by owner annotations, UID included.
    assert cluster.delete_deployment_objects(Owner("team-a", "alpha", "uid-impostor"), [WORKLOADS]) == 0

    # A namespace that does not exist is named, not created.
    with pytest.raises(NamespaceMissing, match="gridshift-nowhere"):
        cluster.apply(render_workload(SPEC, replace(target("gamma", 1), workload_namespace="gridshift-nowhere")))

    assert cluster.delete_deployment_objects(owner("alpha"), [WORKLOADS]) == 4  # Deployment, Service, PDB, policy
    assert [w.deployment_name for w in cluster.workloads([WORKLOADS])] == ["beta"]
    cluster.delete_deployment_objects(owner("beta"), [WORKLOADS])
    assert cluster.delete_deployment_objects(owner("beta"), [WORKLOADS]) == 0

    # Deletion goes by the owner annotations, not by the deployment label's value: objects an earlier release
    # labelled otherwise (security.md row 53 relabels some names) are deleted too. Found in review: listed by
    # today's value, they were never deleted, by the finalizer or the sweep. 0 replicas: no pod is left behind.
    gamma = "gamma-0123456789abcdef"  # `team-a.gamma-...` was its own label value before row 53
    assert L.deployment_label_value("team-a", gamma) != f"team-a.{gamma}"
    cluster.apply([_relabelled(m, f"team-a.{gamma}") for m in render_workload(SPEC, target(gamma, 0))])
    assert cluster.delete_deployment_objects(Owner("team-a", gamma, "uid-impostor"), [WORKLOADS]) == 0
    assert cluster.delete_deployment_objects(owner(gamma), [WORKLOADS]) == 4
    assert [w.deployment_name for w in cluster.workloads([WORKLOADS])] == []

    # An object whose label was changed after it was written (by hand, by GitOps, by a tenant) is its owner's
    # still, by its annotations, but a deletion lists by the owner's label values (review: by managed-by alone,
    # each deletion read the whole namespace): the sweep, which lists by managed-by, finds it and deletes it by
    # name, read again and deleted only if still the owner's by UID. Found in review: the sweep deleted by the
    # owner's label values, and a relabelled Deployment was found as an orphan every cycle, deleted 0, silently.
    delta = render_workload(SPEC, target("delta", 0))
    cluster.apply(delta)
    cluster.apply([_label_edited(m, "team-a.delta-edited") for m in delta])

    def found_of_delta() -> list[tuple[str, str]]:
        found = [("Deployment", w.name) for w in cluster.workloads([WORKLOADS]) if w.deployment_name == "delta"]
        return found + [
            (o.kind, o.name) for o in cluster.owned_objects([WORKLOADS]) if o.owner and o.owner[1] == "delta"
        ]

    wait_for(lambda: len(found_of_delta()) == 4)
    found = found_of_delta()
    assert cluster.delete_deployment_objects(owner("delta"), [WORKLOADS]) == 0  # not listed by its values
    impostor = Owner("team-a", "delta", "uid-impostor")
    assert [cluster.delete_owned_object(impostor, kind, WORKLOADS, name) for kind, name in found] == [False] * 4
    assert len(found_of_delta()) == 4
    assert [cluster.delete_owned_object(owner("delta"), kind, WORKLOADS, name) for kind, name in found] == [True] * 4
    assert [w.deployment_name for w in cluster.workloads([WORKLOADS])] == []
    wait_for(lambda: found_of_delta() == [])
    # Gone: nothing deleted, nothing raised (another sweep, or the finalizer's retry, was first).
    assert not cluster.delete_owned_object(owner("delta"), found[0][0], WORKLOADS, found[0][1])


def check_refused_listing(cluster: MemberCluster, name: str, refused: str) -> None:
    """Run against any MemberCluster whose credentials are refused the listing of namespace `refused` (a member
    Role that does not cover a tenant's workload namespace): a deletion there says so, naming the namespace,
    and never raises as if the owner's objects were seen (service.sweep decides what the refusal means)."""
    with pytest.raises(ListingRefused, match=f"cluster {name}: forbidden: .*{refused}") as caught:
        cluster.delete_deployment_objects(owner("alpha"), [refused])
    assert caught.value.namespace == refused
    # Whose credentials were refused is not told: the message reaches the tenant's status and Events.
    assert "serviceaccount" not in str(caught.value) and "User" not in str(caught.value)
    # In the real adapter's words, the fake's too (review: the fake's were the apiserver's, so service tests
    # could not check what a tenant reads): the first kind a deletion lists is the Deployment.
    assert str(caught.value) == f"cluster {name}: forbidden: list Deployment in {refused} (HTTP 403)"
    assert caught.value.kind == "Deployment"
    # A write there is refused at the read before it, in the same words.
    manifests = render_workload(SPEC, replace(target("alpha", 1), workload_namespace=refused))
    with pytest.raises(ActuationForbidden) as written:
        cluster.apply(manifests)
    first = manifests[0]["metadata"]["name"]
    assert str(written.value) == f"cluster {name}: forbidden: get {manifests[0]['kind']} {refused}/{first} (HTTP 403)"


def check_unowned_objects_are_not_adopted(
    cluster: MemberCluster, plant: Callable[[list[Any]], None], namespace: str = WORKLOADS
) -> None:
    """Run against any MemberCluster, `plant` putting objects in place as someone else would (the fake's
    `plant`, kubectl on a real apiserver). Objects under the names gridshift renders, with its labels and
    selectors but no owner annotations (copied by hand, a tenant's kubectl apply), are nobody's: ownership is
    the annotations, never the labels, so each kind's apply refuses them (ForeignObject), and they stay as they
    were, nobody's. Found in review: an apply that adopted them was caught only by luck, by a planted copy's
    other selector making the real apiserver answer 422."""
    manifests = render_workload(SPEC, replace(target("epsilon", 0), workload_namespace=namespace))
    unowned = copy.deepcopy(manifests)
    for manifest in unowned:
        manifest["metadata"]["annotations"] = {
            k: v for k, v in manifest["metadata"]["annotations"].items() if k not in (L.OWNER, L.OWNER_UID)
        }
    plant(unowned)
    for manifest in manifests:
        meta = manifest["metadata"]
        refusal = f"{manifest['kind']} {namespace}/{meta['name']} exists and belongs to no gridshift deployment"
        with pytest.raises(ForeignObject, match=f"{refusal}; not overwritten"):
            cluster.apply([manifest])
    [state] = [w for w in cluster.workloads([namespace]) if w.name == manifests[0]["metadata"]["name"]]
    assert (state.owner_uid, state.owned) == ("", False)
    companions = {(o.kind, o.name): o.owner for o in cluster.owned_objects([namespace])}
    rest = [(m["kind"], m["metadata"]["name"]) for m in manifests[1:]]
    assert {k: companions.get(k, "missing") for k in rest} == dict.fromkeys(rest)


def _label_edited(manifest: Any, value: str) -> Any:
    """`manifest` with its own `gridshift.dev/deployment` label set to `value` (selectors untouched), as
    `kubectl label --overwrite` leaves it."""
    edited = copy.deepcopy(manifest)
    # A new dict: the rendered metadata may share its labels with the pod template (deepcopy keeps the sharing).
    edited["metadata"]["labels"] = {**edited["metadata"]["labels"], L.DEPLOYMENT: value}
    return edited


def _relabelled(manifest: Any, value: str) -> Any:
    """`manifest` with every `gridshift.dev/deployment` label, its selectors' included, set to `value`."""
    if isinstance(manifest, dict):
        return {k: value if k == L.DEPLOYMENT else _relabelled(v, value) for k, v in manifest.items()}
    if isinstance(manifest, list):
        return [_relabelled(v, value) for v in manifest]
    return manifest


def test_fake_member_cluster_honours_the_contract() -> None:
    check_member_contract(FakeMemberCluster("c1", gpus={GPU: 16}, namespaces={WORKLOADS}), total_gpus=16)


def test_fake_member_cluster_does_not_adopt_unowned_objects() -> None:
    cluster = FakeMemberCluster("c1", gpus={GPU: 8}, namespaces={WORKLOADS})

    def plant(manifests: list[Any]) -> None:
        for manifest in manifests:
            cluster.plant(manifest)

    check_unowned_objects_are_not_adopted(cluster, plant)


def test_fake_member_cluster_refuses_a_deletion_it_may_not_list() -> None:
    # Found in review: the fake deleted nothing and answered 0 in a forbidden namespace, where the real adapter
    # raised, so service tests never saw a deletion held for good by a tenant not onboarded on a cluster.
    check_refused_listing(
        FakeMemberCluster("c1", gpus={GPU: 8}, forbidden_namespaces={"gsw-team-x"}), "c1", "gsw-team-x"
    )


def test_fake_unreachable_cluster_raises_naming_it() -> None:
    cluster = FakeMemberCluster("eu-de", gpus={GPU: 8}, reachable=False)
    with pytest.raises(ClusterUnreachable, match="eu-de"):
        cluster.workloads([WORKLOADS])


def test_fake_counts_only_real_changes_as_writes() -> None:
    cluster = FakeMemberCluster("c1", gpus={GPU: 8})
    cluster.apply(render_workload(SPEC, target("alpha", 2)))
    writes = cluster.writes
    cluster.apply(render_workload(SPEC, target("alpha", 2)))
    assert cluster.writes == writes


def test_fake_skips_a_deployment_it_cannot_read_as_the_real_adapter_does() -> None:
    # The real adapter reads object by object and skips one it does not understand (any tenant may write its
    # workload namespace); the fake failed the whole read, so service tests showed a planted object hiding
    # every tenant's replicas on the cluster, which the real one never does (review).
    cluster = FakeMemberCluster("c1", gpus={GPU: 8})
    cluster.apply(render_workload(SPEC, target("alpha", 2)))
    for name, spec in (("odd", {"replicas": "many"}), ("bare", {})):
        cluster.plant(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": WORKLOADS, "labels": {L.MANAGED_BY: L.MANAGED_BY_VALUE}},
                "spec": spec,
            }
        )
    # "bare" reads as a foreign Deployment (no owner annotations), as on a real cluster; "odd" is skipped.
    assert [w.name for w in cluster.workloads([WORKLOADS]) if w.owned] == [L.workload_name("team-a", "alpha", GPU)]
    assert "odd" not in [w.name for w in cluster.workloads([WORKLOADS])]
    assert {i.gpu_type: i.used for i in cluster.gpu_inventory([WORKLOADS]).gpus} == {GPU: 2}
