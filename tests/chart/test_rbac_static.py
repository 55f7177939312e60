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
