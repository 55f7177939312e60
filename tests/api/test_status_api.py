"""The status API as kubectl and admission see it: printer columns that tell health at a glance, no short name
that collides with a core resource, conditions' reasons enforced by CEL, optional maps defaulted for CEL."""

from __future__ import annotations

from typing import Any

from gridshift.api import crdgen
from gridshift.api.conditions import INFERENCE_DEPLOYMENT_CONDITIONS, conditions_rule
from gridshift.api.inference_deployment import InferenceDeployment

CORE_SHORT_NAMES = {"cs", "cm", "ep", "ev", "limits", "ns", "no", "pvc", "pv", "po", "rc", "quota", "sa", "svc"}
"""Short names of the core/v1 resources (kubectl api-resources): the core resource wins a clash."""


def columns(kind: str) -> dict[str, dict[str, Any]]:
    spec = next(k for k in crdgen.KINDS if k.kind == kind)
    return {c["name"]: c for c in crdgen.crd_for(spec)["spec"]["versions"][0]["additionalPrinterColumns"]}


def test_no_short_name_collides_with_a_core_resource() -> None:
    names = [n for k in crdgen.KINDS for n in k.short_names]
    assert not set(names) & CORE_SHORT_NAMES
    assert "rcluster" in next(k for k in crdgen.KINDS if k.kind == "RegionalCluster").short_names


def test_deployment_columns_show_health_slo_mode_and_where_the_cost_comes_from() -> None:
    found = columns("InferenceDeployment")
    assert found["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert found["Reason"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].reason'
    assert found["SLO"]["jsonPath"] == '.status.conditions[?(@.type=="SLOAtRisk")].reason'
    assert found["Mode"]["jsonPath"] == ".status.mode"  # what was acted on, not the spec's wish
    assert found["Cost"]["jsonPath"] == ".status.cost.source"  # Hypothetical in Advisory mode
    assert list(found)[:6] == ["Model", "Mode", "Ready", "Reason", "SLO", "Available"]


def test_cluster_and_profile_columns() -> None:
    assert columns("RegionalCluster")["Reason"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].reason'
    assert columns("RegionalCluster")["With PUE $/kWh"]["priority"] == 1
    assert columns("GPUProfile")["Step err"]["jsonPath"] == ".status.fit.stepTimeMaxRelativeError"


def test_condition_vocabulary_is_a_cel_rule_on_each_status() -> None:
    schema = crdgen.openapi_schema(InferenceDeployment)["properties"]["status"]
    (rule,) = schema["x-kubernetes-validations"]
    expected = conditions_rule("InferenceDeployment", INFERENCE_DEPLOYMENT_CONDITIONS)
    assert rule["rule"] == expected.cel and rule["fieldPath"] == ".conditions"
    assert "'Ready/True/Placed'" in rule["rule"] and "'Ready/False/Placed'" not in rule["rule"]
    conditions = schema["properties"]["conditions"]
    assert conditions["maxItems"] == 16  # bounds the rule's cost
    assert set(conditions["items"]["required"]) == {"type", "status", "reason", "lastTransitionTime"}
    assert conditions["items"]["properties"]["reason"]["pattern"].startswith("^[A-Za-z]")


def test_optional_maps_default_to_empty_so_cel_rules_can_read_them() -> None:
    """A selector with matchExpressions only was refused by the apiserver ('no such key: matchLabels')."""
    from gridshift.api.regional_cluster import RegionalCluster

    spec = crdgen.openapi_schema(RegionalCluster)["properties"]["spec"]["properties"]
    assert spec["tenantNamespaceSelector"]["properties"]["matchLabels"]["default"] == {}
