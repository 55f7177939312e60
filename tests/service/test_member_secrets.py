"""engine.env valueFrom: a Secret of the member cluster reaches the replicas by reference only.

A Hugging Face token for a gated model used to have to sit in clear in the InferenceDeployment's spec
and in the member Deployment (found in review, 3 December 2026). A valueFrom.secretKeyRef is passed on
to the kubelet as it is; and since any replica in a shared workload namespace could reference any
Secret there, only clusters whose workload namespaces are per tenant (`{namespace}`) run such a
deployment (planner.problem._eligible_cluster).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from gridshift.actuation.members import ActuationForbidden, LiveObject
from tests.service.harness import ServiceHarness, deployment_body

TOKEN_REF = {"secretKeyRef": {"name": "hf-token", "key": "token"}}


def _with_secret_env(rps: float = 10.0) -> dict[str, Any]:
    body = deployment_body(rps=rps)
    body["spec"]["engine"] = {"env": [{"name": "HF_TOKEN", "valueFrom": TOKEN_REF}, {"name": "LOG", "value": "1"}]}
    return body


def _engine_env(world: ServiceHarness, cluster: str) -> list[list[dict[str, Any]]]:
    return [
        container["env"]
        for (kind, _, _), manifest in world.members[cluster].objects.items()
        if kind == "Deployment"
        for container in manifest["spec"]["template"]["spec"]["containers"]
    ]


def test_a_secret_reference_reaches_the_replicas_only_where_workload_namespaces_are_per_tenant() -> None:
    # eu-de is the cheaper region but shares one workload namespace among tenants.
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 20.0, "eu-fr": 90.0})
    world.cluster_bodies["eu-fr"]["spec"]["workloadNamespace"] = "gridshift-{namespace}"
    world.add(_with_secret_env())
    world.cycle()
    world.cycle()
    assert _engine_env(world, "eu-de") == []
    (env,) = _engine_env(world, "eu-fr")
    assert {"name": "HF_TOKEN", "valueFrom": TOKEN_REF} in env and {"name": "LOG", "value": "1"} in env
    assert all("hf-token" not in str(e) or "valueFrom" in e for e in env)
    namespaces = {ns for (kind, ns, _) in world.members["eu-fr"].objects if kind == "Deployment"}
    assert namespaces == {"gridshift-ml"}


def test_without_a_per_tenant_cluster_the_deployment_is_not_placed_and_says_why() -> None:
    world = ServiceHarness(["eu-de"])
    world.add(_with_secret_env())
    world.cycle()
    assert world.replicas()["eu-de"] == 0
    ready = next(c for c in world.status()["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and "eu-de shares one workload namespace" in ready["message"]
    assert "valueFrom" in ready["message"]


def test_a_namespace_the_member_may_not_read_costs_its_own_tenant_only() -> None:
    # Found in review: with a per-tenant workloadNamespace, any tenant's deployment added its namespace to every
    # cluster's listing; one the member's Role did not cover (not yet onboarded) was a 403 that made the whole
    # cluster unreachable, and every other tenant's replicas there counted 0 Ready.
    world = ServiceHarness(["eu-de"])
    world.cluster_bodies["eu-de"]["spec"]["workloadNamespace"] = "gridshift-{namespace}"
    world.add(deployment_body("chat"))
    world.cycle()
    world.cycle()
    member = world.members["eu-de"]
    assert sum(w.ready for w in member.workloads(["gridshift-ml"])) >= 1
    member.forbidden_namespaces = {"gridshift-team-x"}
    intruder = deployment_body("other")
    intruder["metadata"].update(namespace="team-x", uid="uid-x")
    world.add(intruder)
    report = world.cycle()
    assert not any(e.startswith("cluster eu-de: forbidden") for e in report.errors), report.errors
    assert any("namespace gridshift-team-x not read" in e for e in report.errors)
    ready = next(c for c in world.status()["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True", ready


def _refusing_services_in(world: ServiceHarness, namespace: str) -> None:
    """The member's Role covers Deployments in `namespace` but not its Services: that listing is refused."""
    member = world.members["eu-de"]
    owned = member.owned_objects

    def refusing(namespaces: Collection[str]) -> list[LiveObject]:
        found = owned(namespaces)
        member._unreadable[(namespace, "Service")] = ActuationForbidden("eu-de", f"cannot list services in {namespace}")
        return [o for o in found if o.namespace != namespace]

    member.owned_objects = refusing  # type: ignore[method-assign]


def _two_tenants(world: ServiceHarness) -> None:
    world.cluster_bodies["eu-de"]["spec"]["workloadNamespace"] = "gridshift-{namespace}"
    world.add(deployment_body("chat"))
    other = deployment_body("other")
    other["metadata"].update(namespace="team-x", uid="uid-x")
    world.add(other)
    world.cycle()
    world.cycle()


def test_replicas_kept_from_a_namespace_the_member_may_not_list_count_none_ready() -> None:
    # A mutation survived: the last-known replicas of a namespace whose Deployments could not be listed kept
    # their Ready count, so the deployment read 7/7 Ready, Ready True, for replicas nobody could see.
    world = ServiceHarness(["eu-de"])
    _two_tenants(world)
    placed = world.status()["desiredReplicas"]
    assert world.status()["readyReplicas"] == placed >= 1
    world.members["eu-de"].forbidden_namespaces = {"gridshift-ml"}
    report = world.cycle()
    assert any("namespace gridshift-ml not read" in e for e in report.errors), report.errors
    status = world.status()
    assert (status["desiredReplicas"], status["readyReplicas"]) == (placed, 0)  # kept, none counted Ready
    assert [(p["desired"], p["ready"]) for p in status["placements"]] == [(placed, 0)]
    kept = [w for w in world.service.observer._last_workloads["eu-de"] if w.namespace == "gridshift-ml"]
    assert [(w.desired, w.ready) for w in kept] == [(placed, 0)]
    assert world.status("other")["readyReplicas"] >= 1  # the other tenant's are read and counted


def test_replicas_read_in_a_namespace_named_unreadable_are_counted_once() -> None:
    # Found in review: a namespace is unreadable when any listing there is refused (a Role that covers
    # Deployments but not the companions, or a refusal the adapter remembered), yet its Deployments may have
    # been read: the last cycle's replicas were added on top of those read, one more copy every cycle, and
    # each copy held GPUs and stood as a placement of the tenant's deployment.
    world = ServiceHarness(["eu-de"])
    _two_tenants(world)
    _refusing_services_in(world, "gridshift-ml")
    for _ in range(3):
        report = world.cycle()
    assert any("namespace gridshift-ml not read" in e for e in report.errors), report.errors
    counted = [w for w in world.service.observer._last_workloads["eu-de"] if w.namespace == "gridshift-ml"]
    assert len(counted) == len({(w.namespace, w.name) for w in counted}) == 1, counted


def test_a_replica_deleted_where_only_the_companions_are_refused_is_not_kept() -> None:
    # Self-review: the last cycle's replicas were kept wherever any listing was refused, so a Deployment deleted
    # in such a namespace stayed a placement for good and was never created again.
    world = ServiceHarness(["eu-de"])
    _two_tenants(world)
    _refusing_services_in(world, "gridshift-ml")
    world.cycle()
    member = world.members["eu-de"]
    for key in [k for k in member.objects if k[0] == "Deployment" and k[1] == "gridshift-ml"]:
        del member.objects[key]
    for _ in range(3):
        world.cycle()
    assert [w.desired for w in member.workloads(["gridshift-ml"])] == [
        w.desired for w in world.service.observer._last_workloads["eu-de"] if w.namespace == "gridshift-ml"
    ]
    assert sum(w.desired for w in member.workloads(["gridshift-ml"])) >= 1


def _edit_to_name_a_secret(body: dict[str, Any]) -> None:
    body["spec"]["engine"] = {"env": [{"name": "HF_TOKEN", "valueFrom": TOKEN_REF}, {"name": "LOG", "value": "1"}]}
    body["metadata"]["generation"] = 2
    body["metadata"]["resourceVersion"] = "2"


def test_an_edit_naming_a_secret_never_reaches_replicas_already_in_a_shared_namespace() -> None:
    # Found in review: placed in a shared workload namespace without valueFrom, then edited to name a Secret
    # there (another tenant's hf-token), with nowhere else to go: the replicas stayed (Infeasible) and the
    # repair rendered the reference into the shared namespace, readable by the tenant's own image.
    world = ServiceHarness(["eu-de"])
    body = deployment_body(rps=5.0)
    world.add(body)
    world.cycle()
    world.cycle()
    assert world.replicas()["eu-de"] >= 1
    _edit_to_name_a_secret(body)
    for _ in range(3):
        world.cycle()
    envs = _engine_env(world, "eu-de")
    assert envs and all(not any("valueFrom" in e for e in env) for env in envs), envs
    assert all({"name": "LOG", "value": "1"} in env for env in envs)  # the rest of the edit is applied
    assert "hf-token" not in str(world.members["eu-de"].objects)


def test_an_edit_naming_a_secret_reaches_the_replicas_in_a_per_tenant_namespace() -> None:
    world = ServiceHarness(["eu-de"])
    world.cluster_bodies["eu-de"]["spec"]["workloadNamespace"] = "gridshift-{namespace}"
    body = deployment_body(rps=5.0)
    world.add(body)
    world.cycle()
    world.cycle()
    _edit_to_name_a_secret(body)
    for _ in range(2):
        world.cycle()
    envs = _engine_env(world, "eu-de")
    assert envs and all({"name": "HF_TOKEN", "valueFrom": TOKEN_REF} in env for env in envs), envs
