"""The chart's admission policy: an unpinned engine image gets a kubectl warning, never a refusal.

Rendered with the Go-built helm, then installed on a real kube-apiserver 1.36 (the hub of
tests/chart), where `kubectl apply` must print the warning for `:latest`, a missing tag, or (with
requireDigest) a tag without digest, and print nothing for an image pinned by digest.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from .conftest import Helm, Hub, Release

NOT_PINNED = "is not pinned: with no tag or :latest"
TAG_ONLY = "is pinned by tag only"
DIGEST = "sha256:" + "0123456789abcdef" * 4


def policies(objects: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return (
        [o for o in objects if o["kind"] == "ValidatingAdmissionPolicy"],
        [o for o in objects if o["kind"] == "ValidatingAdmissionPolicyBinding"],
    )


def test_the_policy_warns_and_never_denies(rendered: list[dict[str, Any]]) -> None:
    (policy,), (binding,) = policies(rendered)
    assert binding["spec"]["validationActions"] == ["Warn"]
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert policy["spec"]["failurePolicy"] == "Ignore"
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert (rule["apiGroups"], rule["resources"]) == (["gridshift.dev"], ["inferencedeployments"])
    assert len(policy["spec"]["validations"]) == 2


def test_values_turn_the_policy_or_its_digest_rule_off(helm: Helm) -> None:
    assert policies(helm.render("--set", "admissionPolicy.engineImage.warnUnpinned=false")) == ([], [])
    (policy,), _ = policies(helm.render("--set", "admissionPolicy.engineImage.requireDigest=false"))
    assert len(policy["spec"]["validations"]) == 1


def idep(namespace: str, name: str, image: str | None) -> str:
    engine = {"engine": {"image": image}} if image is not None else {}
    return yaml.safe_dump(
        {
            "apiVersion": "gridshift.dev/v1alpha1",
            "kind": "InferenceDeployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "model": {"servedName": "m", "source": "org/m"},
                "replica": {"gpuTypes": ["NVIDIA-H100-80GB-HBM3"]},
                "slo": {"ttftP95Ms": 500, "tpotP95Ms": 50},
                **engine,
            },
        }
    )


def apply(hub: Hub, manifest: str, *extra: str) -> str:
    """kubectl apply; the warnings it printed (it must succeed: a warning never refuses)."""
    proc = hub.kubectl("apply", *extra, "-f", "-", input=manifest)
    return "\n".join(line for line in proc.stderr.splitlines() if line.startswith("Warning:"))


@pytest.mark.cluster
def test_kubectl_apply_warns_about_an_unpinned_engine_image(hub: Hub, installed_chart: Release) -> None:
    ns = installed_chart.namespace
    # The apiserver loads a new policy and binding asynchronously: wait for the first warning.
    deadline = time.monotonic() + 60
    warnings = ""
    while NOT_PINNED not in warnings and time.monotonic() < deadline:
        warnings = apply(hub, idep(ns, "latest", "vllm/vllm-openai:latest"), "--dry-run=server")
        time.sleep(1)
    assert f"spec.engine.image vllm/vllm-openai:latest {NOT_PINNED}" in warnings, warnings

    # A real apply (not a dry run) is warned and accepted.
    warnings = apply(hub, idep(ns, "no-tag", "registry.example:5000/vllm/vllm-openai"))
    try:
        assert f"registry.example:5000/vllm/vllm-openai {NOT_PINNED}" in warnings, warnings
        assert hub.kubectl("get", "inferencedeployment", "no-tag", "-n", ns).returncode == 0
    finally:
        hub.kubectl("delete", "inferencedeployment", "no-tag", "-n", ns, "--wait=false", check=False)

    tag_only = apply(hub, idep(ns, "tag", "vllm/vllm-openai:v0.11.0"), "--dry-run=server")
    assert TAG_ONLY in tag_only and NOT_PINNED not in tag_only, tag_only
    defaulted = apply(hub, idep(ns, "default-image", None), "--dry-run=server")
    assert f"vllm/vllm-openai:v0.11.0 {TAG_ONLY}" in defaulted, defaulted  # checked after defaulting
    for pinned in (f"vllm/vllm-openai@{DIGEST}", f"vllm/vllm-openai:v0.11.0@{DIGEST}"):
        assert apply(hub, idep(ns, "pinned", pinned), "--dry-run=server") == "", pinned
