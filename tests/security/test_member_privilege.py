"""Finding 6 of issue 15: the operator places replicas with only what charts/gridshift-member grants.

On a real member cluster: the gridshift-member chart (a ServiceAccount, a workload namespace with Pod
Security `restricted` enforced, a namespaced Role, no cluster-wide rights), a kubeconfig for that
ServiceAccount in a Secret on the hub, and a RegionalCluster whose offering declares maxGpus (the
credentials may not list Nodes). The deployment is placed; the pods pass `restricted`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridshift.service.sweep import CleanupIncomplete
from tests.conftest import REPO_ROOT
from tests.e2e.operator_env import regional_cluster
from tests.security.harness import SecureWorld, inference_deployment, kubeconfig_text, unique, with_token

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

KUBE_VERSION = "1.36.3"


def render_member_chart(planes: Any, namespace: str, account_namespace: str) -> str:
    return subprocess.run(
        [
            str(planes.bin_dir / "helm"),
            "template",
            "gridshift-member",
            str(REPO_ROOT / "charts" / "gridshift-member"),
            "--kube-version",
            KUBE_VERSION,
            "--set",
            f"workloadNamespaces={{{namespace}}}",
            "--set",
            "serviceAccount.name=gridshift-least",
            "--set",
            f"serviceAccount.namespace={account_namespace}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={"HOME": str(Path.home()), "PATH": "/usr/bin:/bin"},
    ).stdout


def least_member(world: SecureWorld, region: str, chart_namespace: str, workload_namespace: str) -> str:
    """RegionalCluster `least` on `region` with only the member chart's namespaced Role (chart rendered for
    `chart_namespace`, workloads in `workload_namespace`, 4 GPUs declared: its credentials may not list
    Nodes); returns the chart's manifests, for the caller to delete."""
    account = unique("gs-account")
    manifests = render_member_chart(world.planes, chart_namespace, account)
    world.planes.kubectl(region, "apply", "-f", "-", input=manifests)
    token = world.planes.kubectl(
        region, "create", "token", "gridshift-least", "-n", account, "--duration", "1h"
    ).stdout.strip()
    world.secret(
        "kubeconfig-least",
        {"kubeconfig": with_token(kubeconfig_text(world.planes, region), token)},
        "member-kubeconfig",
    )
    body = regional_cluster("least", 1.0)  # the cheapest region: the planner wants it
    body["spec"].update(region="least", workloadNamespace=workload_namespace)
    body["spec"]["kubeconfigSecretRef"]["name"] = "kubeconfig-least"
    body["spec"]["offerings"] = [dict(body["spec"]["offerings"][0], maxGpus=4)]
    world.regional_cluster(body)
    return manifests


def test_placement_with_only_the_member_charts_namespaced_role(world: SecureWorld) -> None:
    region = "eu-de"  # where H100 nodes are
    namespace = unique("gs-least")
    manifests = least_member(world, region, namespace, namespace)
    try:
        name = unique("least")
        world.deploy(inference_deployment(name, rps=4.0, placement={"allowedRegions": ["least"]}))
        service = world.service()

        def placed() -> int:
            out = world.planes.kubectl(region, "get", "deployments", "-n", namespace, "-o", "yaml").stdout
            items = yaml.safe_load(out)["items"]
            return sum(int(d["status"].get("readyReplicas") or 0) for d in items if d.get("status"))

        world.cycles_until(service, placed, "Ready replicas placed with the namespaced Role only", 120)
        report = world.report
        assert not [e for e in report.errors if "least" in e and "forbidden" in e.lower()], report.errors
        pods = yaml.safe_load(world.planes.kubectl(region, "get", "pods", "-n", namespace, "-o", "yaml").stdout)
        assert pods["items"], "no replica pod was admitted"
        for pod in pods["items"]:
            assert pod["spec"]["automountServiceAccountToken"] is False
    finally:
        world.planes.kubectl(region, "delete", "-f", "-", "--wait=false", input=manifests, check=False)


def test_a_tenant_namespace_the_member_role_does_not_cover_stops_no_other_tenant(world: SecureWorld) -> None:
    # Found in review: with workloadNamespace "gsw-{namespace}", a deployment in any hub namespace added
    # gsw-<its namespace> to every cluster's listing; the member chart's Role did not cover it (a tenant not
    # yet onboarded), the 403 failed the whole cluster, and tenant A's Ready replicas there counted 0.
    region = "eu-de"
    ns_a = world.hub_namespace(unique("team-a"))
    manifests = least_member(world, region, f"gsw-{ns_a}", "gsw-{namespace}")
    try:
        a = inference_deployment(unique("a"), rps=4.0, placement={"allowedRegions": ["least"]})
        a["metadata"]["namespace"] = ns_a
        world.deploy(a)
        service = world.service()

        def ready_in_a() -> int:
            out = world.planes.kubectl(region, "get", "deployments", "-n", f"gsw-{ns_a}", "-o", "json").stdout
            return sum(int((d.get("status") or {}).get("readyReplicas") or 0) for d in json.loads(out)["items"])

        world.cycles_until(service, ready_in_a, "tenant A placed in its namespace", 120)
        ns_x = world.hub_namespace(unique("team-x"))
        x = inference_deployment(unique("x"), rps=1.0, placement={"allowedRegions": ["eu-fr"]})
        x["metadata"]["namespace"] = ns_x
        world.deploy(x)
        for _ in range(3):
            world.cycle(service)
        errors = world.report.errors
        assert not any(e.startswith("cluster least: forbidden") for e in errors), errors
        assert any(f"namespace gsw-{ns_x} not read" in e for e in errors), errors
        ready = next(c for c in world.status(ns_a, a["metadata"]["name"])["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True", ready
    finally:
        world.planes.kubectl(region, "delete", "-f", "-", "--wait=false", input=manifests, check=False)


def test_a_tenant_namespace_granted_late_is_read_and_counted_once(world: SecureWorld) -> None:
    # Found in review: the member adapter remembered a 403 until the namespace was no longer asked about, so
    # a tenant whose Role came one cycle after its deployment stayed "not read" for good, and the service added
    # the last cycle's replicas on top of those it did read, one more copy every cycle.
    region = "eu-de"
    ns_a = world.hub_namespace(unique("team-a"))
    manifests = least_member(world, region, f"gsw-{ns_a}", "gsw-{namespace}")
    account = next(
        d["metadata"]["namespace"] for d in yaml.safe_load_all(manifests) if d and d["kind"] == "ServiceAccount"
    )
    grant = ""
    try:
        a = inference_deployment(unique("a"), rps=4.0, placement={"allowedRegions": ["least"]})
        a["metadata"]["namespace"] = ns_a
        world.deploy(a)
        service = world.service()
        world.cycles_until(service, lambda: _ready(world, region, f"gsw-{ns_a}"), "tenant A placed", 120)
        ns_x = world.hub_namespace(unique("team-x"))
        x = inference_deployment(unique("x"), rps=1.0, placement={"allowedRegions": ["least"]})
        x["metadata"]["namespace"] = ns_x
        world.deploy(x)
        world.cycle(service)
        assert any(f"namespace gsw-{ns_x} not read" in e for e in world.report.errors), world.report.errors
        grant = render_member_chart(world.planes, f"gsw-{ns_x}", account)
        world.planes.kubectl(region, "apply", "-f", "-", input=grant)
        world.cycles_until(service, lambda: _ready(world, region, f"gsw-{ns_x}"), "tenant X placed once granted", 120)
        for _ in range(2):
            world.cycle(service)
        assert not any(f"gsw-{ns_x} not read" in e for e in world.report.errors), world.report.errors
        counted = [(w.namespace, w.name) for w in service.observer._last_workloads["least"]]
        assert len(counted) == len(set(counted)) == 2, counted
    finally:
        for text in (grant, manifests):
            if text:
                world.planes.kubectl(region, "delete", "-f", "-", "--wait=false", input=text, check=False)


def _ready(world: SecureWorld, region: str, namespace: str) -> int:
    out = world.planes.kubectl(region, "get", "deployments", "-n", namespace, "-o", "json", check=False).stdout
    items = json.loads(out)["items"] if out.strip() else []
    return sum(int((d.get("status") or {}).get("readyReplicas") or 0) for d in items)


def test_deleting_a_deployment_of_a_tenant_not_onboarded_on_a_member_completes(world: SecureWorld) -> None:
    # Found in review, on real apiservers: the member's Role covering gsw-<team-a> only, the deletion of a
    # team-x deployment listed gsw-<team-x> there, got 403, and kept its finalizer for good (Terminating, retried
    # every 30 s), though gridshift never placed anything there; the 403 quoted the member ServiceAccount.
    region = "eu-de"
    ns_a = world.hub_namespace(unique("team-a"))
    ns_x = world.hub_namespace(unique("team-x"))
    manifests = least_member(world, region, f"gsw-{ns_a}", "gsw-{namespace}")
    try:
        service = world.service()
        assert service.delete_from_members(ns_x, "x", "uid-never-placed", frozenset()) == 0  # nothing recorded
        events = world.planes.kubectl("hub", "get", "events.events.k8s.io", "-n", ns_x, "-o", "json").stdout
        notes = [e.get("note", "") for e in json.loads(events)["items"] if e.get("reason") == "CleanupSkipped"]
        assert any(f"cluster least: workload namespace gsw-{ns_x}" in note for note in notes), notes
        # Where the status records replicas in that cluster, the finalizer stays, saying why and how out.
        with pytest.raises(CleanupIncomplete) as kept:
            service.delete_from_members(ns_x, "x", "uid-placed", frozenset({"least"}))
        message = str(kept.value)
        assert f"cluster least: forbidden (HTTP 403) to list workload namespace gsw-{ns_x}" in message, message
        assert "serviceaccount" not in message and "gridshift-least" not in message, message
        assert service.delete_from_members(ns_a, "a", "uid-a", frozenset()) == 0  # an onboarded tenant's: listed
    finally:
        world.planes.kubectl(region, "delete", "-f", "-", "--wait=false", input=manifests, check=False)
