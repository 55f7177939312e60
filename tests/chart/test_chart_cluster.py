"""The chart on a real hub kube-apiserver (built from Go modules by e2e/cluster): server-side dry
run, install, upgrade, schema refusal, and least-privilege RBAC proven with impersonation and with
the operator's own hub adapter running as the chart's ServiceAccount."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import CHART_DIR, KUBE_VERSION, REPO_ROOT, Helm, Hub, Release

pytestmark = pytest.mark.cluster

MEMBER_RBAC = CHART_DIR / "member-rbac" / "gridshift-member.yaml"


def can_i(hub: Hub, user: str, verb: str, resource: str, namespace: str | None = None, subresource: str = "") -> bool:
    """The API server's own answer (a SubjectAccessReview, what `kubectl auth can-i --as` asks).

    Unlike `can-i`, it needs no discovery of the resource (Gateway API CRDs are not installed on the
    hub) and it carries the ServiceAccount's groups, as a real token would.
    """
    plural, _, group = resource.partition(".")
    groups = ["system:authenticated"]
    if user.startswith("system:serviceaccount:"):
        groups += ["system:serviceaccounts", f"system:serviceaccounts:{user.split(':')[2]}"]
    attributes = {"verb": verb, "group": group, "resource": plural, "subresource": subresource}
    if namespace:
        attributes["namespace"] = namespace
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": groups, "resourceAttributes": attributes},
    }
    answer = json.loads(hub.kubectl("create", "-f", "-", "-o", "json", input=json.dumps(review)).stdout)
    return bool(answer["status"].get("allowed"))


def test_template_applies_with_server_side_dry_run(helm: Helm, hub: Hub) -> None:
    namespace = f"gs-dry-{uuid.uuid4().hex[:6]}"
    hub.kubectl("create", "namespace", namespace)
    try:
        manifest = helm.run(
            "template",
            "gridshift",
            str(CHART_DIR),
            "--namespace",
            namespace,
            "--kube-version",
            KUBE_VERSION,
            "--set",
            "networkPolicy.enabled=true",
        ).stdout
        objects = len([d for d in yaml.safe_load_all(manifest) if d])
        # Client-side apply as in `helm template | kubectl apply --dry-run=server -f -`, then server-side
        # apply, whose typed patch also checks every field against the API's schema. Its cluster-scoped
        # objects have the names of the release `installed_chart` may have made already (other suites
        # install it first): taking their fields over is fine in a dry run, and not what is tested here.
        for mode in ([], ["--server-side", "--force-conflicts"]):
            proc = hub.kubectl("apply", "--dry-run=server", *mode, "-f", "-", input=manifest)
            applied = [line for line in proc.stdout.splitlines() if "(server dry run)" in line]
            assert len(applied) == objects, mode
            assert any("customresourcedefinition" in line for line in applied)
    finally:
        hub.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_install_creates_every_object_and_working_crds(hub: Hub, installed_chart: Release) -> None:
    ns = installed_chart.namespace
    for kind in ("deployment", "serviceaccount", "role", "rolebinding", "service", "poddisruptionbudget"):
        assert hub.kubectl("get", kind, "gridshift", "-n", ns, check=False).returncode == 0 or kind == "service"
    assert hub.kubectl("get", "service", "gridshift-metrics", "-n", ns).returncode == 0
    for name in ("inferencedeployments", "regionalclusters", "gpuprofiles"):
        hub.kubectl("wait", "--for=condition=Established", f"crd/{name}.gridshift.dev", "--timeout=60s")
    # A real object of each kind is accepted by the templated CRDs.
    example = (REPO_ROOT / "examples" / "gpuprofile-llama3-8b-h100.yaml").read_text()
    hub.kubectl("apply", "--dry-run=server", "-f", "-", input=example)


def test_upgrade_changes_the_settings_and_keeps_the_crds(helm: Helm, hub: Hub, installed_chart: Release) -> None:
    ns = installed_chart.namespace
    helm.run(
        "upgrade",
        installed_chart.name,
        str(CHART_DIR),
        "--namespace",
        ns,
        "--reuse-values",
        "--set",
        "operator.planIntervalSeconds=30",
        kubeconfig=hub.kubeconfig,
    )
    deployment = yaml.safe_load(hub.kubectl("get", "deployment", "gridshift", "-n", ns, "-o", "yaml").stdout)
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["GRIDSHIFT_PLAN_INTERVAL_SECONDS"] == "30"
    history = yaml.safe_load(
        helm.run("history", installed_chart.name, "-n", ns, "-o", "yaml", kubeconfig=hub.kubeconfig).stdout
    )
    assert [h["status"] for h in history][-1] == "deployed" and len(history) >= 2
    crd = yaml.safe_load(hub.kubectl("get", "crd", "inferencedeployments.gridshift.dev", "-o", "yaml").stdout)
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_install_with_a_typo_is_refused(helm: Helm, hub: Hub) -> None:
    proc = helm.run(
        "install",
        "typo",
        str(CHART_DIR),
        "--namespace",
        "default",
        "--set",
        "operator.planIntervalSecs=3",
        kubeconfig=hub.kubeconfig,
        check=False,
    )
    assert proc.returncode != 0
    assert "additional properties 'planIntervalSecs' not allowed" in proc.stderr
    assert "typo" not in helm.run("list", "-n", "default", "-q", kubeconfig=hub.kubeconfig).stdout.split()


ALLOWED = [
    ("list", "inferencedeployments.gridshift.dev", None, ""),
    ("watch", "inferencedeployments.gridshift.dev", None, ""),
    ("watch", "regionalclusters.gridshift.dev", None, ""),
    ("watch", "gpuprofiles.gridshift.dev", None, ""),
    ("patch", "inferencedeployments.gridshift.dev", "llm", ""),
    ("patch", "inferencedeployments.gridshift.dev", "llm", "status"),
    ("get", "inferencedeployments.gridshift.dev", "llm", "status"),
    ("patch", "regionalclusters.gridshift.dev", None, "status"),
    ("create", "events", "llm", ""),
    ("create", "events.events.k8s.io", "llm", ""),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io", None, ""),
    ("watch", "namespaces", None, ""),
    ("patch", "httproutes.gateway.networking.k8s.io", "llm", ""),
]
DENIED = [
    ("list", "secrets", None, ""),
    ("list", "secrets", "RELEASE", ""),
    ("get", "secrets", "kube-system", ""),
    ("create", "secrets", "RELEASE", ""),
    ("create", "deployments.apps", "RELEASE", ""),
    ("create", "pods", "llm", ""),
    ("update", "inferencedeployments.gridshift.dev", "llm", ""),
    ("delete", "inferencedeployments.gridshift.dev", "llm", ""),
    ("create", "inferencedeployments.gridshift.dev", "llm", ""),
    ("patch", "regionalclusters.gridshift.dev", None, ""),
    ("patch", "gpuprofiles.gridshift.dev", None, ""),
    ("patch", "gpuprofiles.gridshift.dev", None, "status"),
    ("create", "leases.coordination.k8s.io", "kube-system", ""),
    ("delete", "leases.coordination.k8s.io", "RELEASE", ""),
    ("create", "customresourcedefinitions.apiextensions.k8s.io", None, ""),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io", None, ""),
    ("delete", "events", "llm", ""),
    ("get", "nodes", None, ""),
]


def test_service_account_can_do_what_the_operator_does(hub: Hub, installed_chart: Release) -> None:
    user = installed_chart.username
    ns = installed_chart.namespace
    checks = [
        *ALLOWED,
        ("get", "secrets", ns, ""),
        ("create", "leases.coordination.k8s.io", ns, ""),
        ("update", "leases.coordination.k8s.io", ns, ""),
        ("get", "leases.coordination.k8s.io", ns, ""),
    ]
    refused = [c for c in checks if not can_i(hub, user, c[0], c[1], c[2], c[3])]
    assert refused == []


def test_service_account_cannot_do_anything_else(hub: Hub, installed_chart: Release) -> None:
    user = installed_chart.username
    checks = [(v, r, installed_chart.namespace if n == "RELEASE" else n, s) for v, r, n, s in DENIED]
    granted = [c for c in checks if can_i(hub, user, c[0], c[1], c[2], c[3])]
    assert granted == []


def test_can_i_list_has_no_wildcards(hub: Hub, installed_chart: Release) -> None:
    rows = hub.kubectl("auth", "can-i", "--list", "--as", installed_chart.username, "-n", installed_chart.namespace)
    ours = [
        line for line in rows.stdout.splitlines() if "gridshift.dev" in line or "secrets" in line or "leases" in line
    ]
    assert ours and not [line for line in ours if "[*]" in line]
    secrets = next(line for line in ours if line.startswith("secrets "))
    assert secrets.split()[-1] == "[get]"


def test_hub_adapter_works_as_the_chart_service_account(
    hub: Hub, installed_chart: Release, chart_sa_api_client: Any
) -> None:
    """gridshift's own hub adapter (secrets, status patches, events, the leader Lease) as the chart's SA."""
    from gridshift.hub.client import KubeHub, ObjectRef

    ns = installed_chart.namespace
    workload_ns = f"gs-idep-{uuid.uuid4().hex[:6]}"
    hub.kubectl("create", "namespace", workload_ns)
    try:
        example = yaml.safe_load((REPO_ROOT / "examples" / "inferencedeployment-llama3-8b.yaml").read_text())
        example["metadata"]["namespace"] = workload_ns
        hub.kubectl("apply", "-f", "-", input=yaml.safe_dump(example))
        hub.kubectl(
            "create", "secret", "generic", "eu-de-kubeconfig", "-n", ns, "--from-literal=kubeconfig=apiVersion: v1"
        )
        adapter = KubeHub(chart_sa_api_client)
        assert adapter.read_secret(ns, "eu-de-kubeconfig", "kubeconfig") == "apiVersion: v1"
        ref = ObjectRef("InferenceDeployment", workload_ns, example["metadata"]["name"])
        adapter.patch_status(
            ref,
            {
                "readyReplicas": 0,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "False",
                        "reason": "ReplicasStarting",
                        "message": "0/2",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    }
                ],
            },
        )
        adapter.emit_event(ref, "Planned", "2 replicas in eu-de")
        assert adapter.hold_lease("gridshift-leader", ns, "replica-a", 30, datetime.now(UTC)) is True
        assert adapter.hold_lease("gridshift-leader", ns, "replica-b", 30, datetime.now(UTC)) is False
        stored = yaml.safe_load(hub.kubectl("get", "idep", ref.name, "-n", workload_ns, "-o", "yaml").stdout)
        assert stored["status"]["conditions"][0]["reason"] == "ReplicasStarting"
        assert stored["spec"] == example["spec"] | stored["spec"], "spec untouched"
        events = hub.kubectl("get", "events", "-n", workload_ns, "-o", "yaml").stdout
        assert "2 replicas in eu-de" in events
        # ... and the same client is refused what the chart does not grant.
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        with pytest.raises(ApiException) as refused:
            client.CoreV1Api(chart_sa_api_client).list_namespaced_secret(ns)
        assert refused.value.status == 403
    finally:
        hub.kubectl("delete", "namespace", workload_ns, "--wait=false", check=False)


@pytest.fixture(scope="module")
def member_rbac(hub: Hub) -> Iterator[str]:
    """The member-side manifest applied to the hub API server, standing in for a member cluster."""
    text = MEMBER_RBAC.read_text()
    hub.kubectl("apply", "-f", "-", input=text)
    yield "system:serviceaccount:gridshift-system:gridshift-member"
    hub.kubectl("delete", "-f", "-", "--ignore-not-found", "--timeout=60s", input=text, check=False)


def test_member_role_allows_actuation_in_the_workload_namespace_only(hub: Hub, member_rbac: str) -> None:
    allowed = [
        ("list", "nodes", None),
        ("list", "pods", None),
        ("create", "namespaces", None),
        ("patch", "namespaces", None),
        ("list", "deployments.apps", None),
        ("list", "services", None),
        ("list", "poddisruptionbudgets.policy", None),
    ] + [
        (verb, kind, "gridshift-workloads")
        for verb in ("get", "create", "patch", "delete")
        for kind in ("deployments.apps", "services", "poddisruptionbudgets.policy")
    ]
    denied = [
        ("create", "deployments.apps", "default"),
        ("delete", "services", "kube-system"),
        ("get", "secrets", None),
        ("list", "secrets", "gridshift-workloads"),
        ("delete", "namespaces", None),
        ("create", "pods", "gridshift-workloads"),
        ("patch", "nodes", None),
        ("create", "clusterroles.rbac.authorization.k8s.io", None),
    ]
    assert [c for c in allowed if not can_i(hub, member_rbac, *c)] == []
    assert [c for c in denied if can_i(hub, member_rbac, *c)] == []


def test_member_adapter_works_with_the_member_role(hub: Hub, member_rbac: str, tmp_path: Path) -> None:
    """gridshift's member-cluster adapter (server-side apply, list, delete, GPU inventory) with only that Role."""
    from gridshift.actuation.members import KubeMemberCluster

    token = hub.kubectl("create", "token", "gridshift-member", "-n", "gridshift-system", check=False).stdout.strip()
    if not token:
        pytest.skip("the API server issues no ServiceAccount tokens")
    config = yaml.safe_load(hub.kubeconfig.read_text())
    config["users"] = [{"name": config["users"][0]["name"], "user": {"token": token}}]
    member = KubeMemberCluster("stand-in", config)
    labels = {"app.kubernetes.io/managed-by": "gridshift", "gridshift.dev/deployment": "llm.chat"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "chat-h100", "namespace": "gridshift-workloads", "labels": labels},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.11.0"}]},
            },
        },
    }
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "gridshift-workloads", "labels": {"app.kubernetes.io/managed-by": "gridshift"}},
    }
    member.apply([namespace, deployment])
    assert [w.name for w in member.workloads()] == ["chat-h100"]
    assert isinstance(member.gpu_inventory(), list)
    assert member.delete_deployment_objects("llm", "chat") == 1
