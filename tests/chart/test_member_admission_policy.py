"""The member chart's ValidatingAdmissionPolicy: in a workload namespace, only the ReplicaSet controller
may put gridshift's replica labels on a pod (docs/security.md: the vLLM PodMonitor scrapes pods carrying
them, and the operator sums their series into that deployment's measured demand).

Rendered with the Go-built helm, then applied to a real kube-apiserver 1.36 (the hub of tests/chart,
standing in for a member cluster): a user's pod carrying the labels is refused with the policy's words,
the ReplicaSet controller's (impersonated) is admitted, and so are pods without them, pods elsewhere,
updates that leave the labels as they were, and status writes; adding or changing a label later is
refused.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from gridshift.api.labels import DEPLOYMENT, MANAGED_BY, MANAGED_BY_VALUE

from .conftest import MEMBER_CHART_DIR, Helm, Hub

REPLICASET_CONTROLLER = "system:serviceaccount:kube-system:replicaset-controller"
REFUSED = "may be set only by the ReplicaSet controller"
WHY = "sums their series into that deployment's measured demand"
GRIDSHIFT_LABELS = {MANAGED_BY: MANAGED_BY_VALUE, DEPLOYMENT: "llm.chat"}


def policy_objects(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d and d["kind"].startswith("ValidatingAdmissionPolicy")]


def test_the_policy_refuses_and_binds_to_the_workload_namespaces_only(helm: Helm) -> None:
    policy, binding = policy_objects(helm.render_member("--set", "workloadNamespaces={gs-a,gs-b}"))
    assert policy["kind"] == "ValidatingAdmissionPolicy" and binding["kind"] == "ValidatingAdmissionPolicyBinding"
    assert binding["spec"]["policyName"] == policy["metadata"]["name"] == "gridshift-member-replica-pod-labels"
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert policy["spec"]["failurePolicy"] == "Fail"
    # pods alone: the kubelet's writes go to pods/status, another resource
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["resources"] == ["pods"] and rule["operations"] == ["CREATE", "UPDATE"]
    (selector,) = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
    assert selector == {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["gs-a", "gs-b"]}


def test_the_policy_is_opt_out_and_needs_kubernetes_1_30(helm: Helm) -> None:
    off = helm.render_member("--set", "admissionPolicy.replicaPodLabels.enabled=false")
    assert policy_objects(off) == []
    old = ("template", "gridshift-member", str(MEMBER_CHART_DIR), "--kube-version", "1.29.9")
    refused = helm.run(*old, check=False)
    assert refused.returncode != 0, refused.stdout
    assert "admissionPolicy.replicaPodLabels.enabled needs Kubernetes 1.30" in refused.stderr, refused.stderr
    assert policy_objects(helm.run(*old, "--set", "admissionPolicy.replicaPodLabels.enabled=false").stdout) == []
    empty = helm.template_member("--set", "admissionPolicy.replicaPodLabels.allowedUsernames=null", check=False)
    assert empty.returncode != 0 and "allowedUsernames" in empty.stderr


# ---------------------------------------------------------------- on a real kube-apiserver


def pod(namespace: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    """A pod Pod Security `restricted` admits (the workload namespaces enforce it)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "c",
                    "image": "registry.example/vllm:v1",
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                }
            ],
        },
    }


def create(hub: Hub, body: dict[str, Any], *extra: str) -> Any:
    return hub.kubectl("create", *extra, "-f", "-", input=json.dumps(body), check=False)


@pytest.fixture(scope="module")
def guarded(hub: Hub, helm: Helm) -> Iterator[str]:
    """The member chart applied with one workload namespace; its name, once the policy refuses there (the
    apiserver loads a new policy and binding asynchronously)."""
    suffix = uuid.uuid4().hex[:6]
    namespace = f"gs-vap-{suffix}"
    text = helm.render_member(
        "--set", f"workloadNamespaces={{{namespace}}}",
        "--set", f"serviceAccount.name=gs-vap-{suffix}",
        "--set", f"serviceAccount.namespace=gs-vap-sa-{suffix}",
    )  # fmt: skip
    hub.kubectl("apply", "-f", "-", input=text)
    try:
        probe = pod(namespace, "probe", GRIDSHIFT_LABELS)
        deadline = time.monotonic() + 60
        while REFUSED not in create(hub, probe, "--dry-run=server").stderr:
            assert time.monotonic() < deadline, "the policy never refused"
            time.sleep(1)
        yield namespace
    finally:
        hub.kubectl("delete", "-f", "-", "--ignore-not-found", "--wait=false", input=text, check=False)
        for ns in (namespace, f"gs-vap-sa-{suffix}"):
            hub.kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.mark.cluster
def test_a_users_pod_labelled_as_a_replica_is_refused_the_replicaset_controllers_admitted(
    hub: Hub, guarded: str
) -> None:
    refused = create(hub, pod(guarded, "planted", GRIDSHIFT_LABELS))
    assert refused.returncode != 0, refused.stdout
    for words in (f"{DEPLOYMENT}=llm.chat", f"{MANAGED_BY}=gridshift", REFUSED, REPLICASET_CONTROLLER, WHY):
        assert words in refused.stderr, refused.stderr
    # either label alone: the deployment label names the deployment, managed-by counts its GPUs
    for labels in ({DEPLOYMENT: "llm.chat"}, {MANAGED_BY: MANAGED_BY_VALUE}, {DEPLOYMENT: ""}):
        one = create(hub, pod(guarded, "half", labels), "--dry-run=server")
        assert one.returncode != 0 and REFUSED in one.stderr, (labels, one.stderr)

    for labels in ({}, {"app": "mine"}, {MANAGED_BY: "Helm"}):
        plain = create(hub, pod(guarded, "plain", labels), "--dry-run=server")
        assert plain.returncode == 0, (labels, plain.stderr)
    elsewhere = f"gs-vap-other-{uuid.uuid4().hex[:6]}"
    hub.kubectl("create", "namespace", elsewhere)
    try:
        other = create(hub, pod(elsewhere, "planted", GRIDSHIFT_LABELS), "--dry-run=server")
        assert other.returncode == 0, other.stderr  # bound to the workload namespaces only
    finally:
        hub.kubectl("delete", "namespace", elsewhere, "--wait=false", check=False)

    admitted = create(hub, pod(guarded, "replica", GRIDSHIFT_LABELS), f"--as={REPLICASET_CONTROLLER}")
    assert admitted.returncode == 0, admitted.stderr


@pytest.mark.cluster
def test_a_label_added_or_changed_later_is_refused_other_updates_pass(hub: Hub, guarded: str) -> None:

    replica = pod(guarded, "replica-2", GRIDSHIFT_LABELS)
    assert create(hub, replica, f"--as={REPLICASET_CONTROLLER}").returncode == 0
    assert create(hub, pod(guarded, "plain-2", {"app": "mine"})).returncode == 0

    def patch(name: str, labels: dict[str, str | None], *extra: str) -> Any:
        body = json.dumps({"metadata": {"labels": labels}})
        return hub.kubectl("patch", "pod", name, "-n", guarded, "--type=merge", "-p", body, *extra, check=False)

    added = patch("plain-2", {DEPLOYMENT: "llm.chat"})
    assert added.returncode != 0 and REFUSED in added.stderr and f"{DEPLOYMENT}=llm.chat" in added.stderr, added
    managed = hub.kubectl("label", "pod", "plain-2", "-n", guarded, f"{MANAGED_BY}=gridshift", check=False)
    assert managed.returncode != 0 and REFUSED in managed.stderr, managed.stderr
    moved = patch("replica-2", {DEPLOYMENT: "llm.victim"})
    assert moved.returncode != 0 and f"{DEPLOYMENT}=llm.victim" in moved.stderr, moved.stderr

    # Updates that leave the labels as they were pass, whoever sends them: another label, an annotation,
    # a label removed, the kubelet's status (pods/status).
    assert patch("replica-2", {"team": "a"}).returncode == 0
    status = json.dumps({"status": {"conditions": [{"type": "Ready", "status": "False"}]}})
    patched = hub.kubectl(
        "patch", "pod", "replica-2", "-n", guarded, "--subresource=status", "--type=merge", "-p", status, check=False
    )
    assert patched.returncode == 0, patched.stderr
    assert patch("replica-2", {MANAGED_BY: None}).returncode == 0
    assert hub.kubectl("delete", "pod", "replica-2", "plain-2", "-n", guarded, "--wait=false").returncode == 0


@pytest.mark.cluster
def test_the_replica_set_controller_creates_the_pods_of_a_deployment_gridshift_renders(hub: Hub, guarded: str) -> None:
    """End to end: the hub's kube-controller-manager runs with --use-service-account-credentials (as kubeadm
    and managed clusters do), so the ReplicaSet controller's own username creates gridshift's replica pods."""
    from gridshift.actuation.render import WorkloadTarget, render_deployment
    from gridshift.api import InferenceDeploymentSpec

    spec = InferenceDeploymentSpec.model_validate(
        {
            "model": {"servedName": "chat", "source": "meta-llama/Meta-Llama-3-8B-Instruct"},
            "replica": {"gpuTypes": ["NVIDIA-H100-80GB-HBM3"]},
            "slo": {"ttftP95Ms": 500, "tpotP95Ms": 50},
        }
    )
    target = WorkloadTarget("llm", "chat", "c1", guarded, "NVIDIA-H100-80GB-HBM3", 1, 64, "uid-1")
    deployment = render_deployment(spec, target)
    assert create(hub, deployment).returncode == 0
    try:
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels[DEPLOYMENT] and labels[MANAGED_BY] == MANAGED_BY_VALUE
        selector = f"{DEPLOYMENT}={labels[DEPLOYMENT]}"
        deadline = time.monotonic() + 60
        while not hub.kubectl("get", "pods", "-n", guarded, "-l", selector, "-o", "name").stdout.strip():
            assert time.monotonic() < deadline, hub.kubectl("get", "events", "-n", guarded).stdout
            time.sleep(1)
    finally:
        name = deployment["metadata"]["name"]
        hub.kubectl("delete", "deployment", name, "-n", guarded, "--wait=false", check=False)
