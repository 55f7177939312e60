"""Findings 4 and 7 of issue 15: deletion that cannot orphan, and objects recognised by owner, not labels.

On the real control planes:
- a process that has never run a cycle (fresh, or not the leader) deletes an InferenceDeployment's
  objects from every member cluster: it reads the RegionalClusters from the hub itself;
- replicas whose owner is gone (deleted while no operator ran) are swept by the next leader cycle;
- a Deployment planted with the victim's labels, in another namespace or without owner annotations,
  is never counted as the victim's replicas, and one planted under the victim's object name is
  never overwritten.
"""

from __future__ import annotations

import copy
import json

import pytest

from gridshift.actuation import labels as L
from tests.e2e.operator_env import H100
from tests.security.harness import MEMBER_WORKLOADS, SecureWorld, inference_deployment, unique, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]


def test_a_fresh_process_deletes_everywhere_before_the_finalizer_goes(world: SecureWorld) -> None:
    name = unique("del")
    world.deploy(inference_deployment(name, rps=30.0, capacity={"minReplicas": 2, "maxReplicas": 8, "minRegions": 2}))
    leader = world.service()
    world.cycles_until(
        leader,
        lambda: sum(1 for n in world.owned_replicas("ml", name).values() if n > 0) >= 2,
        "replicas in two regions",
    )
    uid = json.loads(world.fleet.hub("get", "idep", "-n", "ml", name, "-o", "json"))["metadata"]["uid"]

    # A fresh process that took the Lease over (the finalizer cleans on the leader only, service.sweep
    # require_leader, and a member write ends before another replica may act: a process holding no Lease
    # sends none): it never ran a cycle, so no member clients are cached.
    leader.elector.release()
    fresh = world.service(identity="fresh-leader")
    assert fresh.elector.try_acquire_or_renew()
    deleted = fresh.delete_from_members("ml", name, uid)
    assert deleted >= 8  # Deployment, Service, PDB and NetworkPolicy in each of two regions
    for region in world.planes.regions:
        leftovers = world.planes.kubectl(
            region,
            "get",
            "deployments,services,poddisruptionbudgets,networkpolicies",
            "-n",
            MEMBER_WORKLOADS,
            "-l",
            f"{L.DEPLOYMENT}=ml.{name}",
            "-o",
            "name",
        ).stdout.strip()
        assert leftovers == "", f"{region}: {leftovers}"


def test_replicas_of_a_deployment_deleted_while_no_operator_ran_are_swept(world: SecureWorld) -> None:
    name = unique("orphan")
    world.deploy(inference_deployment(name, rps=4.0))
    service = world.service()
    world.cycles_until(service, lambda: sum(world.owned_replicas("ml", name).values()) > 0, "replicas placed")
    # Deleted with its finalizer removed by hand, as a user might while the operator is down.
    world.fleet.hub("patch", "idep", "-n", "ml", name, "--type=merge", "-p", '{"metadata": {"finalizers": null}}')
    world.fleet.hub("delete", "idep", "-n", "ml", name)
    world.cycles_until(
        world.service(), lambda: sum(world.owned_replicas("ml", name).values()) == 0, "the orphans swept"
    )


def test_planted_deployments_are_neither_counted_nor_overwritten(world: SecureWorld) -> None:
    victim = unique("victim")
    world.deploy(inference_deployment(victim, rps=4.0, capacity={"minReplicas": 1, "maxReplicas": 4}))
    service = world.service()
    world.cycles_until(service, lambda: sum(world.owned_replicas("ml", victim).values()) > 0, "the victim placed")
    region = next(r for r, n in world.owned_replicas("ml", victim).items() if n > 0)
    (ours,) = [
        d
        for d in world.member_deployments(region)
        if (d["metadata"].get("annotations") or {}).get(L.OWNER) == f"ml/{victim}"
    ]

    # 1. A copy with the victim's labels and 50 replicas in another namespace of the member cluster.
    world.planes.kubectl(region, "create", "namespace", "intruder", check=False)
    planted = copy.deepcopy(ours)
    for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation"):
        planted["metadata"].pop(key, None)
    planted.pop("status", None)
    planted["metadata"]["namespace"] = "intruder"
    planted["spec"]["replicas"] = 50
    world.planes.apply(region, [planted])
    # 2. A copy in the workload namespace with the labels but no owner annotations.
    unowned = copy.deepcopy(planted)
    unowned["metadata"]["namespace"] = MEMBER_WORKLOADS
    unowned["metadata"]["name"] = "unowned-" + ours["metadata"]["name"][:40]
    unowned["metadata"]["annotations"] = {}
    unowned["spec"]["replicas"] = 2
    world.planes.apply(region, [unowned])
    squatted = unique("squatted")
    try:
        report = world.cycle(service)
        status = world.status("ml", victim)
        assert status["desiredReplicas"] == sum(world.owned_replicas("ml", victim).values()) < 50
        assert any("no owner annotations" in e for e in report.errors)
        clusters = {c["metadata"]["name"]: c for c in world.bodies("regionalclusters")}
        foreign = next(c for c in clusters[region]["status"]["conditions"] if c["type"] == "ForeignObjects")
        assert foreign["status"] == "True" and unowned["metadata"]["name"] in foreign["message"]

        # 3. Someone else's object already under the name gridshift would give a new deployment's replicas:
        #    gridshift must not overwrite it, and says so on the deployment.
        squatter = copy.deepcopy(planted)
        squatter["metadata"]["namespace"] = MEMBER_WORKLOADS
        squatter["metadata"]["name"] = L.workload_name("ml", squatted, H100)
        squatter["metadata"]["annotations"] = {"owner": "someone else"}
        squatter["spec"]["replicas"] = 3
        # With the selector gridshift renders for `squatted`: the victim's, copied, would make a forced apply over
        # it a 422 ("field is immutable"), which refused an adoption by itself (review: an apply that adopted
        # objects without owner annotations failed here only by that luck). The owner annotations alone refuse it.
        value = L.deployment_label_value("ml", squatted)
        for labels in (
            squatter["metadata"]["labels"],
            squatter["spec"]["selector"]["matchLabels"],
            squatter["spec"]["template"]["metadata"]["labels"],
        ):
            labels[L.DEPLOYMENT] = value
        for other in world.planes.regions:
            world.planes.apply(other, [squatter])
        world.deploy(inference_deployment(squatted, rps=4.0))

        def refused() -> str | None:
            world.cycle(service)
            ready = next(c for c in world.status("ml", squatted).get("conditions", []) if c["type"] == "Ready")
            return ready["message"] if ready["reason"] == "ActuationFailed" else None

        message = wait_until(refused, 60, "the refusal to overwrite reported on the deployment")
        assert "not overwritten" in message
        for other in world.planes.regions:
            kept = json.loads(
                world.planes.kubectl(
                    other, "get", "deployment", "-n", MEMBER_WORKLOADS, squatter["metadata"]["name"], "-o", "json"
                ).stdout
            )
            assert L.OWNER_UID not in kept["metadata"]["annotations"] and kept["spec"]["replicas"] == 3
    finally:
        world.planes.kubectl(region, "delete", "namespace", "intruder", "--wait=false", check=False)
        world.planes.kubectl(
            region, "delete", "deployment", "-n", MEMBER_WORKLOADS, unowned["metadata"]["name"], check=False
        )
        for other in world.planes.regions:
            world.planes.kubectl(
                other, "delete", "deployment", "-n", MEMBER_WORKLOADS, "-l", f"{L.DEPLOYMENT}=ml.{victim}", check=False
            )
            squatters = f"{L.DEPLOYMENT}={L.deployment_label_value('ml', squatted)}"
            world.planes.kubectl(other, "delete", "deployment", "-n", MEMBER_WORKLOADS, "-l", squatters, check=False)
