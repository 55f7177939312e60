"""End-to-end: what the operator process writes for each case on the real control planes, as users see it.

Each case (healthy, starting, migrating, capacity-short, infeasible, forbidden, Advisory, Frozen, and a
RegionalCluster reachable or with a bad kubeconfig) produces the documented conditions, the columns of
`kubectl get idep`, Argo CD's health (docs/gitops/resource_customizations) and kstatus' classification.
The statuses are compared with the testdata of the Argo CD health checks, or written there with
GRIDSHIFT_RECORD_TESTDATA=1 (tests/gitops/health.py). The operator logs JSON here (logFormat json).

Named to run before test_operator.py, whose last test restarts a region with kwokctl (after which that
region may not turn new pods Ready in this world).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.operator_env import (
    NAMESPACE,
    WORKLOADS,
    Fleet,
    OperatorProcess,
    inference_deployment,
    install_hub,
    regional_cluster,
    wait_until,
)
from tests.gitops import health

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]
H100 = "NVIDIA-H100-80GB-HBM3"
DENIED = "ml-denied"
"""A hub namespace no RegionalCluster admits (tenantNamespaceSelector) in the forbidden case."""


@pytest.fixture(scope="module")
def fleet(control_planes: Any) -> Fleet:
    return install_hub(control_planes, {"eu-de": 40.0, "eu-fr": 90.0, "us-tx": 60.0})


@pytest.fixture(scope="module")
def operator(fleet: Fleet, control_planes: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    logs = tmp_path_factory.mktemp("operator-logs")
    process = OperatorProcess(control_planes.kubeconfigs[control_planes.hub], logs, "status", log_format="json")
    yield process.start()
    process.stop()
    print(f"operator log: {process.log_path}")


def conditions(obj: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in (obj.get("status") or {}).get("conditions", [])}


def get(fleet: Fleet, name: str, namespace: str = WORKLOADS) -> dict[str, Any]:
    return dict(json.loads(fleet.hub("get", "idep", "-n", namespace, name, "-o", "json")))


def table(fleet: Fleet, name: str, namespace: str = WORKLOADS) -> dict[str, str]:
    """The row of `kubectl get idep NAME` by column header (kubectl aligns each value under its header; an
    empty value is blank)."""
    header, row = fleet.hub("get", "idep", "-n", namespace, name).splitlines()[:2]
    names = header.split()
    starts = [header.index(f" {n} ") + 1 if i else 0 for i, n in enumerate(names[:-1])] + [header.rindex(names[-1])]
    ends = [*starts[1:], None]
    return {n: row[s:e].strip() for n, s, e in zip(names, starts, ends, strict=True)}


def reaching(fleet: Fleet, name: str, reason: str, namespace: str = WORKLOADS, timeout: float = 120) -> Any:
    """Polls (fast: some states last one or two cycles) until Ready carries `reason` for the current spec."""

    def there() -> dict[str, Any] | None:
        obj = get(fleet, name, namespace)
        status = obj.get("status") or {}
        current = status.get("observedGeneration") == obj["metadata"]["generation"]
        return obj if current and conditions(obj).get("Ready", ("", ""))[1] == reason else None

    return wait_until(there, timeout, f"{namespace}/{name} Ready reason {reason}", every=0.2)


def delete(fleet: Fleet, name: str, namespace: str = WORKLOADS) -> None:
    fleet.hub("delete", "idep", "-n", namespace, name, "--wait=true", "--timeout=90s", check=False)


def judged(item: health.Case, obj: dict[str, Any]) -> None:
    """The live object against its testdata, and as Argo CD and kstatus see it."""
    health.check_or_record(item, obj)
    for interpreter in health.INTERPRETERS:
        assert health.argo_health(interpreter, item.kind, obj)["status"] == item.argo, (item.name, obj.get("status"))
    (classified,) = health.kstatus([obj])
    assert classified["status"] == item.kstatus, (item.name, classified)


def placed(fleet: Fleet, name: str) -> Callable[[], bool]:
    return lambda: conditions(get(fleet, name)).get("Ready") == ("True", "Placed")


def test_healthy_deployment(fleet: Fleet, operator: OperatorProcess) -> None:
    fleet.apply_hub(inference_deployment("healthy", rps=4.0))
    try:
        obj = reaching(fleet, "healthy", "Placed")
        assert conditions(obj) == {
            "Ready": ("True", "Placed"),
            "Reconciling": ("False", "Reconciled"),
            "Stalled": ("False", "Reconciled"),
            "SLOAtRisk": ("False", "WithinSLO"),
            "PriceFeedStale": ("False", "Fresh"),
            "MetricsStale": ("False", "MetricsFresh"),
        }
        row = table(fleet, "healthy")
        assert (row["MODE"], row["READY"], row["REASON"], row["SLO"], row["COST"]) == (
            "Auto",
            "True",
            "Placed",
            "WithinSLO",
            "Predicted",
        )
        assert row["AVAILABLE"] == row["DESIRED"] != "0" and row["REGIONS"] == "eu-de" and float(row["$/MTOK"]) > 0
        judged(health.case("InferenceDeployment", "healthy"), obj)
        for name, made in health.derived(obj).items():
            judged(health.case("InferenceDeployment", name), made)
        # Its decision is one events.k8s.io Event, from gridshift's reporting controller.
        events = [
            e
            for e in json.loads(fleet.hub("get", "events.events.k8s.io", "-n", WORKLOADS, "-o", "json"))["items"]
            if e["regarding"]["name"] == "healthy"
        ]
        ours = [e for e in events if e.get("reportingController") == "gridshift.dev/operator"]
        assert [(e["reason"], e["action"], e["type"]) for e in ours] == [("ScaleUp", "Place", "Normal")], events
        assert ours[0]["note"] == f"ScaleUp: eu-de/{H100} x{row['DESIRED']}" and ours[0]["reportingInstance"]
        # Idle cycles on the real stack: no status write (resourceVersion unchanged), no Event.
        version = get(fleet, "healthy")["metadata"]["resourceVersion"]
        time.sleep(8)  # four 2-second cycles
        assert get(fleet, "healthy")["metadata"]["resourceVersion"] == version
        again = json.loads(fleet.hub("get", "events.events.k8s.io", "-n", WORKLOADS, "-o", "json"))["items"]
        assert len([e for e in again if e["regarding"]["name"] == "healthy"]) == len(events)
        # JSON logs: every line the operator wrote after start-up is one object; problems name their object.
        lines = [line for line in operator.log().splitlines() if line.startswith("{")]
        assert lines and all(json.loads(line)["message"] is not None for line in lines)
        assert any(json.loads(line).get("deployment") == "ml/healthy" for line in lines), lines[-5:]
    finally:
        delete(fleet, "healthy")


def test_starting_deployment(fleet: Fleet, operator: OperatorProcess) -> None:
    # 200 CPUs per replica: scheduled on no node, so its replicas stay Pending (not Ready) for this test.
    replica = {"gpuTypes": [H100], "cpu": "200", "memory": "1Gi"}
    fleet.apply_hub(inference_deployment("starting", rps=4.0, replica=replica))
    try:
        obj = reaching(fleet, "starting", "Starting")
        assert conditions(obj)["Reconciling"] == ("True", "Starting")
        assert conditions(obj)["SLOAtRisk"] == ("True", "CapacityShort")
        row = table(fleet, "starting")
        assert (row["READY"], row["REASON"], row["AVAILABLE"]) == ("False", "Starting", "0")
        judged(health.case("InferenceDeployment", "starting"), obj)
    finally:
        delete(fleet, "starting")


def test_migrating_deployment(fleet: Fleet, operator: OperatorProcess) -> None:
    fleet.set_price("eu-de", 40.0)
    fleet.set_price("eu-fr", 90.0)
    fleet.apply_hub(inference_deployment("mover", rps=12.0))
    try:
        wait_until(placed(fleet, "mover"), 120, "initial placement")
        fleet.set_price("eu-de", 900.0)
        fleet.set_price("eu-fr", 5.0)
        obj = reaching(fleet, "mover", "Migrating")
        assert conditions(obj)["Reconciling"] == ("True", "Migrating") and obj["status"]["migration"]
        assert table(fleet, "mover")["REASON"] == "Migrating"
        judged(health.case("InferenceDeployment", "migrating"), obj)
        wait_until(lambda: placed(fleet, "mover")() and not get(fleet, "mover")["status"].get("migration"), 150, "done")
    finally:
        fleet.set_price("eu-de", 40.0)
        fleet.set_price("eu-fr", 90.0)
        delete(fleet, "mover")


def test_deployment_short_of_capacity(fleet: Fleet, operator: OperatorProcess) -> None:
    fleet.apply_hub(inference_deployment("short", rps=12.0, capacity={"minReplicas": 1, "maxReplicas": 1}))
    try:
        obj = reaching(fleet, "short", "InsufficientCapacity")
        assert obj["status"]["desiredReplicas"] == 1
        assert conditions(obj)["Stalled"] == ("True", "InsufficientCapacity")
        row = table(fleet, "short")
        assert (row["READY"], row["REASON"], row["SLO"]) == ("False", "InsufficientCapacity", "CapacityShort")
        judged(health.case("InferenceDeployment", "capacity-short"), obj)
    finally:
        delete(fleet, "short")


def test_infeasible_deployment(fleet: Fleet, operator: OperatorProcess) -> None:
    # B200 has a shipped profile but no cluster here offers it.
    fleet.apply_hub(inference_deployment("nowhere", rps=4.0, replica={"gpuTypes": ["NVIDIA-B200"], "cpu": "1"}))
    try:
        obj = reaching(fleet, "nowhere", "Infeasible")
        assert conditions(obj)["Stalled"] == ("True", "Infeasible")
        row = table(fleet, "nowhere")
        assert (row["READY"], row["REASON"], row["DESIRED"]) == ("False", "Infeasible", "0")
        judged(health.case("InferenceDeployment", "infeasible"), obj)
    finally:
        delete(fleet, "nowhere")


def test_deployment_in_a_namespace_no_cluster_admits(fleet: Fleet, operator: OperatorProcess) -> None:
    fleet.hub("create", "namespace", DENIED, check=False)
    selector = {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [DENIED]}]}
    regions = fleet.world.regions
    body = inference_deployment("denied", rps=4.0)
    body["metadata"]["namespace"] = DENIED
    try:
        for region in regions:
            patch = json.dumps({"spec": {"tenantNamespaceSelector": selector}})
            fleet.hub("patch", "regionalcluster", region, "--type=merge", "-p", patch)
        fleet.apply_hub(body)
        obj = reaching(fleet, "denied", "Forbidden", namespace=DENIED)
        assert f"no RegionalCluster admits namespace {DENIED}" in next(
            c["message"] for c in obj["status"]["conditions"] if c["type"] == "Ready"
        )
        assert table(fleet, "denied", DENIED)["REASON"] == "Forbidden"
        judged(health.case("InferenceDeployment", "forbidden"), obj)
    finally:
        delete(fleet, "denied", DENIED)
        for region in regions:
            patch = json.dumps({"spec": {"tenantNamespaceSelector": None}})
            fleet.hub("patch", "regionalcluster", region, "--type=merge", "-p", patch)


def test_advisory_deployment(fleet: Fleet, operator: OperatorProcess) -> None:
    fleet.apply_hub(inference_deployment("advice", rps=4.0, mode="Advisory"))
    try:
        obj = reaching(fleet, "advice", "Advisory")
        assert obj["status"]["mode"] == "Advisory" and obj["status"]["cost"]["source"] == "Hypothetical"
        assert conditions(obj)["SLOAtRisk"] == ("Unknown", "NotServed")
        row = table(fleet, "advice")
        assert (row["MODE"], row["READY"], row["REASON"], row["SLO"], row["AVAILABLE"], row["COST"]) == (
            "Advisory",
            "True",
            "Advisory",
            "NotServed",
            "0",
            "Hypothetical",
        )
        assert all(d == (0, 0) for d in fleet.replicas("advice").values())
        judged(health.case("InferenceDeployment", "advisory"), obj)
    finally:
        delete(fleet, "advice")


def test_frozen_deployment(fleet: Fleet, operator: OperatorProcess) -> None:
    fleet.apply_hub(inference_deployment("frozen", rps=4.0))
    try:
        wait_until(placed(fleet, "frozen"), 120, "placement before freezing")
        patch = json.dumps({"spec": {"migration": {"mode": "Frozen"}}})
        fleet.hub("patch", "idep", "-n", WORKLOADS, "frozen", "--type=merge", "-p", patch)
        obj = reaching(fleet, "frozen", "Frozen")
        row = table(fleet, "frozen")
        assert (row["MODE"], row["READY"], row["REASON"]) == ("Frozen", "True", "Frozen")
        judged(health.case("InferenceDeployment", "frozen"), obj)
    finally:
        delete(fleet, "frozen")


def test_regional_clusters(fleet: Fleet, operator: OperatorProcess) -> None:
    def cluster(name: str) -> dict[str, Any]:
        return dict(json.loads(fleet.hub("get", "regionalcluster", name, "-o", "json")))

    reachable = wait_until(
        lambda: conditions(cluster("eu-de")).get("Ready") == ("True", "Reachable") and cluster("eu-de"), 60, "eu-de"
    )
    assert reachable["status"]["observedGeneration"] == reachable["metadata"]["generation"]
    assert reachable["status"]["currentPriceWithPueUsdPerKwh"] == pytest.approx(
        reachable["status"]["currentPriceUsdPerKwh"] * 1.2, rel=1e-3
    )
    rows = [row.split() for row in fleet.hub("get", "rcluster").splitlines()]
    assert rows[0][:4] == ["NAME", "REGION", "READY", "REASON"], rows
    assert ["eu-de", "eu-de", "True", "Reachable"] in [row[:4] for row in rows], rows
    judged(health.case("RegionalCluster", "reachable"), reachable)
    broken = regional_cluster("broken-kubeconfig", 50.0)
    broken["spec"]["kubeconfigSecretRef"] = {"name": "no-such-secret", "namespace": NAMESPACE, "key": "kubeconfig"}
    fleet.apply_hub(broken)
    try:
        obj = wait_until(
            lambda: (
                conditions(cluster("broken-kubeconfig")).get("Ready") == ("False", "KubeconfigInvalid")
                and cluster("broken-kubeconfig")
            ),
            60,
            "the broken RegionalCluster's status",
        )
        assert conditions(obj)["Stalled"] == ("True", "KubeconfigInvalid")
        judged(health.case("RegionalCluster", "kubeconfig-invalid"), obj)
    finally:
        fleet.hub("delete", "regionalcluster", "broken-kubeconfig", "--wait=false", check=False)
