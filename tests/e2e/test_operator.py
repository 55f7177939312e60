"""End-to-end: the operator process on real control planes (hub + eu-de + eu-fr + us-tx, kwok GPU nodes).

Demand is Static here so the tests are about placement and safety; the simulated world's
metrics are exercised by tests/world. Pods turn Ready 2 s after scheduling (GRIDSHIFT_READY_DELAY).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.operator_env import (
    NAMESPACE,
    WORKLOADS,
    Fleet,
    OperatorProcess,
    inference_deployment,
    install_hub,
    wait_until,
)

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]


@pytest.fixture(scope="module")
def fleet(control_planes: Any) -> Fleet:
    return install_hub(control_planes, {"eu-de": 40.0, "eu-fr": 90.0, "us-tx": 60.0})


@pytest.fixture(scope="module")
def operator(fleet: Fleet, control_planes: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    logs = tmp_path_factory.mktemp("operator-logs")
    process = OperatorProcess(control_planes.kubeconfigs[control_planes.hub], logs, "main").start()
    yield process
    process.stop()
    print(f"operator log: {process.log_path}")


def ready_total(fleet: Fleet, name: str) -> int:
    return sum(ready for _, ready in fleet.replicas(name).values())


def delete(fleet: Fleet, name: str) -> None:
    fleet.hub("delete", "idep", "-n", WORKLOADS, name, "--wait=true", "--timeout=60s", check=False)


def test_new_deployment_runs_ready_in_the_cheapest_region(fleet: Fleet, operator: OperatorProcess) -> None:
    fleet.set_price("eu-de", 40.0)
    fleet.set_price("eu-fr", 90.0)
    fleet.apply_hub(inference_deployment("cheapest", rps=4.0))
    try:
        wait_until(lambda: fleet.status("cheapest").get("readyReplicas", 0) >= 1, 90, "Ready replicas")
        replicas = fleet.replicas("cheapest")
        assert replicas["eu-de"][1] >= 1 and replicas["eu-fr"] == (0, 0), (replicas, operator.log()[-3000:])
        status = fleet.status("cheapest")
        assert status["regions"] == "eu-de"
        assert status["cost"]["usdPerMillionTokens"] > 0 and 0 < status["cost"]["joulesPerToken"] < 5
        assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
        table = fleet.hub("get", "idep", "-n", WORKLOADS, "cheapest")
        assert "eu-de" in table and "$/MTOK" in table.upper()
        events = fleet.hub(
            "get", "events.events.k8s.io", "-n", WORKLOADS, "--field-selector", "regarding.name=cheapest", "-o", "json"
        )
        assert any(e["reason"] == "ScaleUp" for e in json.loads(events)["items"]), events
    finally:
        delete(fleet, "cheapest")


def test_price_change_moves_replicas_make_before_break(fleet: Fleet, operator: OperatorProcess) -> None:
    fleet.set_price("eu-de", 40.0)
    fleet.set_price("eu-fr", 90.0)
    fleet.apply_hub(inference_deployment("mover", rps=12.0))
    try:
        wait_until(lambda: fleet.status("mover").get("readyReplicas", 0) >= 2, 90, "initial placement")
        wait_until(lambda: not fleet.status("mover").get("migration"), 60, "initial steps done")
        before = fleet.replicas("mover")
        needed = sum(ready for _, ready in before.values())
        assert before["eu-de"][0] == needed and before["eu-fr"][0] == 0
        fleet.set_price("eu-de", 900.0)
        fleet.set_price("eu-fr", 5.0)
        samples = []
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            now = fleet.replicas("mover")
            samples.append(sum(r for _, r in now.values()))
            if now["eu-de"][0] == 0 and now["eu-fr"][1] >= needed:
                break
            time.sleep(0.5)
        after = fleet.replicas("mover")
        assert after["eu-de"] == (0, 0) and after["eu-fr"][1] >= needed, (after, operator.log()[-4000:])
        assert min(samples) >= needed, f"Ready replicas fell below {needed}: {samples}"
        assert fleet.status("mover")["lastDecision"]["reason"]
    finally:
        delete(fleet, "mover")


def test_advisory_changes_nothing_but_reports_the_plan(fleet: Fleet, operator: OperatorProcess) -> None:
    fleet.apply_hub(inference_deployment("advisor", rps=4.0, mode="Advisory"))
    try:
        status = wait_until(
            lambda: fleet.status("advisor").get("lastDecision") and fleet.status("advisor"), 60, "advisory status"
        )
        assert "would run" in status["lastDecision"]["summary"]
        assert status["mode"] == "Advisory" and status["cost"]["source"] == "Hypothetical"
        assert {c["type"]: c["reason"] for c in status["conditions"]}["Ready"] == "Advisory"
        time.sleep(5)
        assert all(d == (0, 0) for d in fleet.replicas("advisor").values())
    finally:
        delete(fleet, "advisor")


def test_deleting_the_resource_cleans_every_member_cluster(fleet: Fleet, operator: OperatorProcess) -> None:
    fleet.apply_hub(
        inference_deployment("spread", rps=4.0, capacity={"minReplicas": 2, "maxReplicas": 6, "minRegions": 2})
    )
    wait_until(lambda: sum(1 for d, _ in fleet.replicas("spread").values() if d > 0) >= 2, 90, "two regions")
    delete(fleet, "spread")
    wait_until(lambda: all(d == (0, 0) for d in fleet.replicas("spread").values()), 60, "cleanup")
    for region in fleet.world.regions:
        services = fleet.world.kubectl(
            region, "get", "svc,pdb", "-A", "-l", "gridshift.dev/deployment=ml.spread", "-o", "name"
        ).stdout
        assert services.strip() == "", f"left in {region}: {services}"


def test_restart_during_a_migration_completes_it_without_duplicates(
    fleet: Fleet, operator: OperatorProcess, control_planes: Any, tmp_path: Path
) -> None:
    fleet.set_price("eu-de", 40.0)
    fleet.set_price("eu-fr", 90.0)
    fleet.apply_hub(inference_deployment("restart", rps=12.0))
    try:
        wait_until(lambda: fleet.status("restart").get("readyReplicas", 0) >= 2, 90, "initial placement")
        wait_until(lambda: not fleet.status("restart").get("migration"), 60, "initial steps done")
        needed = ready_total(fleet, "restart")
        fleet.set_price("eu-de", 900.0)
        fleet.set_price("eu-fr", 5.0)
        kills = 0
        deadline = time.monotonic() + 180
        seen_steps: set[str] = set()
        while time.monotonic() < deadline:
            steps = fleet.status("restart").get("migration") or []
            running = [s for s in steps if s["state"] in ("Running", "Pending")]
            if running and running[0]["action"] + str(running[0]["index"]) not in seen_steps and kills < 4:
                seen_steps.add(running[0]["action"] + str(running[0]["index"]))
                operator.kill()
                kills += 1
                operator.start()
            now = fleet.replicas("restart")
            if now["eu-de"][0] == 0 and now["eu-fr"][1] >= needed and not steps:
                break
            time.sleep(0.3)
        assert kills >= 1, "the migration finished before the operator could be killed"
        after = fleet.replicas("restart")
        assert after["eu-de"] == (0, 0) and after["eu-fr"][0] == after["eu-fr"][1] >= needed, after
        names = [
            d["metadata"]["name"]
            for r in fleet.world.regions
            for d in fleet.workloads(r)
            if d["metadata"]["labels"]["gridshift.dev/deployment"] == "ml.restart" and d["spec"]["replicas"] > 0
        ]
        assert len(names) == len(set(names)) == 1, f"duplicate workloads: {names}"
    finally:
        delete(fleet, "restart")


def test_two_operator_processes_only_one_acts(
    fleet: Fleet, operator: OperatorProcess, control_planes: Any, tmp_path: Path
) -> None:
    second = OperatorProcess(control_planes.kubeconfigs[control_planes.hub], tmp_path, "second").start()
    try:
        lease = wait_until(
            lambda: json.loads(fleet.hub("get", "lease", "-n", NAMESPACE, "gridshift-leader", "-o", "json")),
            90,
            "the leader lease",
        )
        holder = lease["spec"]["holderIdentity"]
        fleet.apply_hub(inference_deployment("single", rps=4.0))
        wait_until(lambda: fleet.status("single").get("readyReplicas", 0) >= 1, 90, "placement")
        time.sleep(6)
        lease = json.loads(fleet.hub("get", "lease", "-n", NAMESPACE, "gridshift-leader", "-o", "json"))
        assert lease["spec"]["holderIdentity"] == holder, "leadership flapped between two healthy operators"
        writers = set()
        for region in fleet.world.regions:
            for d in fleet.workloads(region):
                for entry in d["metadata"].get("managedFields", []):
                    writers.add(entry["manager"])
        assert writers == {"gridshift", "kube-controller-manager"} or writers == {"gridshift"}, writers
        assert "leader=True" in (operator.log() + second.log())
        assert not ("leader=True" in operator.log()[-2000:] and "leader=True" in second.log()[-2000:])
    finally:
        second.stop()
        delete(fleet, "single")


def test_operator_metrics_are_served(fleet: Fleet, operator: OperatorProcess) -> None:
    import urllib.request

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5) as answer:
            return str(answer.read().decode())

    price = 'gridshift_energy_price_usd_per_kwh{cluster="eu-de",region="eu-de"}'
    text = wait_until(lambda: price in (body := scrape()) and body, 60, "operator metrics with prices")
    assert "gridshift_cycle_duration_seconds_count" in text and "gridshift_planner_duration_seconds_count" in text
    assert "gridshift_leader 1.0" in text
    assert 'gridshift_cluster_reachable{cluster="eu-de",region="eu-de"} 1.0' in text


# A stand-in for the Gateway API's HTTPRoute CRD (not reachable offline): same group, kind and version.
HTTPROUTE_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {
        "name": "httproutes.gateway.networking.k8s.io",
        "annotations": {"api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/gateway-api/pull/1538"},
    },
    "spec": {
        "group": "gateway.networking.k8s.io",
        "names": {"kind": "HTTPRoute", "plural": "httproutes", "singular": "httproute", "listKind": "HTTPRouteList"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }
        ],
    },
}


def test_routing_weights_land_on_the_named_httproute(fleet: Fleet, operator: OperatorProcess) -> None:
    fleet.set_price("eu-de", 40.0)
    fleet.set_price("eu-fr", 90.0)
    fleet.apply_hub(HTTPROUTE_CRD)
    fleet.hub("wait", "--for=condition=Established", "crd/httproutes.gateway.networking.k8s.io", "--timeout=60s")
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "routed", "namespace": WORKLOADS, "labels": {"gridshift.dev/managed-route": "true"}},
        "spec": {
            "rules": [{"backendRefs": [{"name": r, "port": 8000, "weight": 1} for r in ("eu-de", "eu-fr", "us-tx")]}]
        },
    }
    fleet.apply_hub(route)
    fleet.apply_hub(inference_deployment("routed", rps=4.0, routing={"httpRouteName": "routed"}))
    try:

        def weights() -> dict[str, int] | None:
            routing = {r["cluster"]: r["weight"] for r in fleet.status("routed").get("routing", [])}
            got = json.loads(fleet.hub("get", "httproute", "-n", WORKLOADS, "routed", "-o", "json"))
            found = {r["name"]: r["weight"] for r in got["spec"]["rules"][0]["backendRefs"]}
            expected = {c: routing.get(c, 0) for c in ("eu-de", "eu-fr", "us-tx")}
            return found if routing and found == expected else None

        try:
            found = wait_until(weights, 90, "the HTTPRoute's weights to follow status.routing")
        except AssertionError as error:
            route_now = fleet.hub("get", "httproute", "-n", WORKLOADS, "routed", "-o", "json")
            raise AssertionError(f"{error}\nstatus: {fleet.status('routed')}\nroute: {route_now}") from None
        assert sum(found.values()) == 100
        assert {c for c, w in found.items() if w > 0} == set(fleet.status("routed")["regions"].split(","))
    finally:
        delete(fleet, "routed")


def test_a_lost_region_moves_capacity_and_leaves_nothing_orphaned_when_it_returns(
    fleet: Fleet, operator: OperatorProcess, control_planes: Any
) -> None:
    fleet.set_price("eu-de", 40.0)
    fleet.set_price("eu-fr", 90.0)
    fleet.apply_hub(inference_deployment("survivor", rps=8.0))
    stopped = False
    try:
        wait_until(lambda: fleet.status("survivor").get("readyReplicas", 0) >= 1, 90, "initial placement")
        wait_until(lambda: not fleet.status("survivor").get("migration"), 60, "initial steps done")
        needed = fleet.status("survivor")["readyReplicas"]
        assert fleet.replicas("survivor")["eu-de"][0] == needed
        control_planes.stop_cluster("eu-de")
        stopped = True

        def elsewhere_ready() -> bool:
            ready = 0
            for region in ("eu-fr", "us-tx"):
                for d in fleet.workloads(region):
                    if d["metadata"]["labels"].get("gridshift.dev/deployment") == "ml.survivor":
                        ready += (d.get("status") or {}).get("readyReplicas", 0) or 0
            return ready >= needed

        wait_until(elsewhere_ready, 120, "capacity raised outside the lost region")
        ready_condition = next(c for c in fleet.status("survivor")["conditions"] if c["type"] == "Ready")
        assert "eu-de" in ready_condition["message"]
        control_planes.start_cluster("eu-de")
        stopped = False

        def settled() -> bool:
            status = fleet.status("survivor")
            total_desired = sum(d for d, _ in fleet.replicas("survivor").values())
            return not status.get("migration") and total_desired == status.get("desiredReplicas") == needed

        wait_until(settled, 180, "no replicas beyond the plan once the region is back", every=2)
    finally:
        if stopped:
            control_planes.start_cluster("eu-de")
        delete(fleet, "survivor")
