"""Findings 2 and 3 of issue 15: one bad cluster or one tenant never stops the others, and leaks nothing.

On the real control planes: a RegionalCluster whose kubeconfig Secret holds broken YAML (with a planted
token on the offending line), one whose kubeconfig has no current-context, and an InferenceDeployment
whose namespace and name are as long as the CRD admits. Each is reported on its own object; everything
else is planned and placed.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.operator_env import MODEL, regional_cluster
from tests.security.harness import SecureWorld, inference_deployment, kubeconfig_text, unique

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]


def _condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in (body.get("status") or {}).get("conditions", []) if c["type"] == kind)


def test_a_malformed_kubeconfig_is_reported_without_its_content_and_others_are_planned(
    world: SecureWorld, all_logs: pytest.LogCaptureFixture
) -> None:
    token = unique("planted-token")
    broken = kubeconfig_text(world.planes, "eu-de").replace("users:", f"users:\n  - {{token: {token}\n  ")
    world.secret("kubeconfig-broken", {"kubeconfig": broken}, "member-kubeconfig")
    no_context = "apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n"
    world.secret("kubeconfig-nocontext", {"kubeconfig": no_context}, "member-kubeconfig")
    for name, secret in (("aaa-broken", "kubeconfig-broken"), ("aab-nocontext", "kubeconfig-nocontext")):
        body = regional_cluster(name, 1.0)  # the cheapest: a planner that could reach it would go there
        body["spec"]["kubeconfigSecretRef"]["name"] = secret
        world.regional_cluster(body)
    idep = world.deploy(inference_deployment(unique("iso"), rps=4.0))
    name = idep["metadata"]["name"]
    service = world.service()

    world.cycles_until(
        service, lambda: sum(world.owned_replicas("ml", name).values()) > 0, "replicas in the reachable regions"
    )
    report = world.report
    clusters = {c["metadata"]["name"]: c for c in world.bodies("regionalclusters")}
    broken_message = _condition(clusters["aaa-broken"], "Reachable")["message"]
    assert "kubeconfig invalid: not valid YAML (line" in broken_message
    assert "no current-context" in _condition(clusters["aab-nocontext"], "Reachable")["message"]
    assert _condition(clusters["eu-de"], "Reachable")["status"] == "True"
    everything = "\n".join([*report.errors, *(r.getMessage() for r in all_logs.records), str(clusters)])
    assert token not in everything


def test_the_longest_names_the_crd_admits_are_placed_and_do_not_stop_later_tenants(world: SecureWorld) -> None:
    long_namespace = world.hub_namespace("t" + "x" * 56 + unique("")[:6])  # 63 characters
    assert len(long_namespace) == 63
    long_name = "d" * 240 + unique("")[:9]
    world.deploy(
        inference_deployment(long_name, rps=4.0, model={"servedName": "long", "source": MODEL})
        | {"metadata": {"name": long_name, "namespace": long_namespace}}
    )
    later = world.deploy(inference_deployment("zzz-" + unique("later"), rps=4.0))
    service = world.service()

    def both_placed() -> bool:
        return (
            sum(world.owned_replicas(long_namespace, long_name).values()) > 0
            and sum(world.owned_replicas("ml", later["metadata"]["name"]).values()) > 0
        )

    world.cycles_until(service, both_placed, "the long-named deployment and the one after it placed")
    report = world.report
    assert not [e for e in report.errors if "not acted on" in e], report.errors
    status = world.status(long_namespace, long_name)
    assert status.get("desiredReplicas", 0) > 0
