"""RBAC sources: no wildcards, every rule says why, and the hub role grants exactly the operator's needs.

These read the templates and the member manifest as text, so they run without helm; test_render.py
repeats the checks on what helm renders.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import CHART_DIR, MEMBER_CHART_DIR, Helm

RBAC_TEMPLATE = CHART_DIR / "templates" / "rbac.yaml"
MEMBER_TEMPLATES = MEMBER_CHART_DIR / "templates"

HUB_CLUSTER_RULES = {
    ("gridshift.dev", "inferencedeployments"): {"get", "list", "watch", "patch"},
    ("gridshift.dev", "regionalclusters"): {"list", "watch"},
    ("gridshift.dev", "gpuprofiles"): {"list", "watch"},
    ("gridshift.dev", "inferencedeployments/status"): {"patch"},
    ("gridshift.dev", "regionalclusters/status"): {"patch"},
    ("gridshift.dev", "gpuprofiles/status"): {"patch"},  # a profile's fit (service.report.profiles)
    ("", "events"): {"create"},  # kopf posts; gridshift's own Events are events.k8s.io, patched on repeats
    ("events.k8s.io", "events"): {"create", "patch"},
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
    ("", "namespaces"): {"get"},  # kopf lists namespaces only when not cluster-wide (--all-namespaces)
    ("gateway.networking.k8s.io", "httproutes"): {"get", "patch"},
}
"""(API group, resource) -> verbs: what the operator does on the hub cluster-wide, and nothing else."""
HUB_NAMESPACE_RULES = {("", "secrets"): {"get"}, ("coordination.k8s.io", "leases"): {"get", "create", "update"}}


def rule_blocks(text: str) -> list[tuple[str, str]]:
    """(comment line just above, rule text) for every `- apiGroups:` rule in a YAML text."""
    lines = text.splitlines()
    blocks = []
    for index, line in enumerate(lines):
        if re.match(r"^\s*- apiGroups:", line):
            above = next((lines[i] for i in range(index - 1, -1, -1) if "{{" not in lines[i]), "")
            blocks.append((above.strip(), line))
    return blocks


def grants(documents: list[dict[str, Any]], kind: str) -> dict[tuple[str, str], set[str]]:
    table: dict[tuple[str, str], set[str]] = {}
    for document in documents:
        if document.get("kind") != kind:
            continue
        for rule in document["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    table.setdefault((group, resource), set()).update(rule["verbs"])
    return table


RBAC_SOURCES = [RBAC_TEMPLATE, MEMBER_TEMPLATES / "workload-namespaces.yaml", MEMBER_TEMPLATES / "inventory.yaml"]


@pytest.mark.parametrize("path", RBAC_SOURCES, ids=["hub", "member-namespaced", "member-inventory"])
def test_every_rule_has_a_why_comment(path: Path) -> None:
    blocks = rule_blocks(path.read_text())
    assert len(blocks) >= 2
    for above, rule in blocks:
        assert above.startswith("# why: ") and len(above) > 20, f"{path.name}: rule {rule!r} lacks a '# why:' comment"


@pytest.mark.parametrize("path", RBAC_SOURCES, ids=["hub", "member-namespaced", "member-inventory"])
def test_no_wildcards(path: Path) -> None:
    code = "\n".join(line.split("#", 1)[0] for line in path.read_text().splitlines())
    assert '"*"' not in code and "'*'" not in code and not re.search(r"\[\s*\*", code)


def test_member_chart_grants_nothing_cluster_wide_by_default_and_writes_only_in_workload_namespaces(
    helm: Helm,
) -> None:
    documents = [d for d in yaml.safe_load_all(helm.render_member("--set", "workloadNamespaces={gs-a,gs-b}")) if d]
    assert not [d for d in documents if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    roles = [d for d in documents if d["kind"] == "Role"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["gs-a", "gs-b"]
    namespaced = grants(roles, "Role")
    writes = {"get", "list", "watch", "create", "patch", "delete"}
    for key in (
        ("apps", "deployments"),
        ("", "services"),
        ("policy", "poddisruptionbudgets"),
        ("networking.k8s.io", "networkpolicies"),
    ):
        assert namespaced[key] == writes, key
    assert namespaced[("", "pods")] == {"list", "watch"}
    assert ("", "secrets") not in namespaced and ("", "namespaces") not in namespaced
    for namespace in (d for d in documents if d["kind"] == "Namespace" and d["metadata"]["name"].startswith("gs-")):
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_member_chart_inventory_grants_are_opt_in_and_read_only(helm: Helm) -> None:
    documents = [
        d
        for d in yaml.safe_load_all(
            helm.render_member("--set", "inventory.nodes=true", "--set", "inventory.allPods=true")
        )
        if d
    ]
    cluster = grants(documents, "ClusterRole")
    assert cluster == {("", "nodes"): {"list", "watch"}, ("", "pods"): {"list", "watch"}}


@pytest.mark.parametrize(
    ("values", "refusal"),
    [
        # Found in review: a tenant's replica could put the ServiceAccount's token in its env.
        (
            ["serviceAccount.namespace=gs-ml", "workloadNamespaces={gs-ml,gs-other}"],
            r"serviceAccount.namespace \(gs-ml\) must not be one of workloadNamespaces",
        ),
        # The code never lists Pods without the Node list: the grant exposed every pod spec for nothing.
        (["inventory.allPods=true"], r"inventory.allPods needs inventory.nodes"),
        # Typos and wrong shapes were installed silently (the member chart had no schema).
        (["inventory.node=true"], r"/inventory.*additional properties 'node' not allowed"),
        (["workloadNamespace={gridshift-ml}"], r"additional properties 'workloadNamespace' not allowed"),
        (["workloadNamespaces=gridshift-ml"], r"/workloadNamespaces"),
        (["workloadNamespaces={gs-a,gs-a}"], r"/workloadNamespaces"),
        (["workloadNamespaces={Bad_NS}"], r"/workloadNamespaces/0"),
        (["podSecurity.enforce=strict"], r"/podSecurity/enforce"),
        # Found in review: the admission policy is <name>-replica-pod-labels, and a name of 235 to 253 characters
        # (the schema's limit) made it longer than the API server's 253; the token Secret is <name>-token.
        (
            [f"serviceAccount.name={'a' * 235}"],
            r"serviceAccount.name is 235 characters: the ValidatingAdmissionPolicy .*-replica-pod-labels, 254 .*"
            r"at most 234 characters",
        ),
        (
            [f"serviceAccount.name={'a' * 248}", "admissionPolicy.replicaPodLabels.enabled=false"],
            r"serviceAccount.name is 248 characters: the token Secret .*-token, 254 .*at most 247 characters",
        ),
        ([f"serviceAccount.name={'a' * 254}", "serviceAccount.tokenSecret=false"], r"at '/serviceAccount/name'"),
        # Found in review: a null (Helm drops the key, past the key's own schema) rendered no workload
        # namespace and no Role at all, or failed with a nil-pointer template error.
        (["workloadNamespaces=null"], r"missing property 'workloadNamespaces'"),
        (["serviceAccount=null"], r"missing property 'serviceAccount'"),
        (["podSecurity=null"], r"missing property 'podSecurity'"),
        (["inventory=null"], r"missing property 'inventory'"),
    ],
)
def test_member_chart_refuses_unsafe_or_mistyped_values_naming_them(
    helm: Helm, values: list[str], refusal: str
) -> None:
    args = [arg for value in values for arg in ("--set", value)]
    result = helm.template_member(*args, check=False)
    assert result.returncode != 0 and re.search(refusal, result.stderr), result.stderr


def test_member_chart_namespaces_outlive_the_release(helm: Helm) -> None:
    # Found in review: leaving a tenant out of workloadNamespaces on upgrade, or uninstalling, deleted its
    # Namespace with the running replicas and the tenant's own Secrets in it. Helm keeps an object
    # annotated helm.sh/resource-policy=keep on uninstall and when an upgrade no longer renders it.
    documents = [d for d in yaml.safe_load_all(helm.render_member("--set", "workloadNamespaces={gs-a,gs-b}")) if d]
    namespaces = [d for d in documents if d["kind"] == "Namespace"]
    assert sorted(n["metadata"]["name"] for n in namespaces) == ["gridshift-system", "gs-a", "gs-b"]
    for namespace in namespaces:
        assert namespace["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep", namespace


def test_member_chart_leaves_an_existing_service_account_namespace_alone(helm: Helm) -> None:
    # Found in review: on a hub that is also a member, the hub release owns gridshift-system and the
    # documented member install failed ("cannot be imported into the current release").
    args = ("--set", "workloadNamespaces={gs-a}", "--set", "serviceAccount.createNamespace=false")
    documents = [d for d in yaml.safe_load_all(helm.render_member(*args)) if d]
    assert [d["metadata"]["name"] for d in documents if d["kind"] == "Namespace"] == ["gs-a"]
    account = next(d for d in documents if d["kind"] == "ServiceAccount")
    assert account["metadata"]["namespace"] == "gridshift-system"


def test_two_member_releases_on_one_cluster_share_no_rbac_object_name(helm: Helm) -> None:
    # Found in review: the ClusterRole, ClusterRoleBinding, Role and RoleBinding had fixed names, so a second
    # release on one member cluster (a prod hub and a staging hub sharing GPU clusters) failed to install.
    def names(account: str, namespace: str) -> set[tuple[str, str, str]]:
        text = helm.render_member(
            "--set",
            f"serviceAccount.name={account}",
            "--set",
            "serviceAccount.createNamespace=false",
            "--set",
            f"workloadNamespaces={{{namespace}}}",
            "--set",
            "inventory.nodes=true",
        )
        kinds = {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
        return {
            (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])
            for d in yaml.safe_load_all(text)
            if d and d["kind"] in kinds
        }

    prod, staging = names("gs-prod", "gridshift-workloads"), names("gs-staging", "gridshift-workloads")
    assert len(prod) == len(staging) == 4
    assert not prod & staging
    # The default release keeps the names it always had (an upgrade renames nothing).
    assert ("ClusterRole", "", "gridshift-member-inventory") in names("gridshift-member", "gridshift-workloads")
    assert ("Role", "gridshift-workloads", "gridshift-member") in names("gridshift-member", "gridshift-workloads")


def test_the_member_charts_version_label_is_a_valid_label_value(helm: Helm, tmp_path: Path) -> None:
    # Found in review: a chart version with build metadata (0.1.0+g1a2b3c) put "+" in helm.sh/chart.
    import shutil

    chart = tmp_path / "gridshift-member"
    shutil.copytree(MEMBER_CHART_DIR, chart)
    meta = chart / "Chart.yaml"
    meta.write_text(re.sub(r"(?m)^version: .*$", "version: 0.1.0+g1a2b3c", meta.read_text()))
    text = helm.run("template", "m", str(chart)).stdout
    labels = [d["metadata"]["labels"]["helm.sh/chart"] for d in yaml.safe_load_all(text) if d]
    assert labels and all(re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?", v) for v in labels), labels
