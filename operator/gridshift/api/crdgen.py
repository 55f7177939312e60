"""Generates CustomResourceDefinitions from the pydantic models: the one source of the API.

pydantic emits JSON Schema; Kubernetes wants a *structural* OpenAPI v3 schema: no `$ref`,
no `anyOf` for optional fields (`nullable` instead), no `additionalProperties: false`
beside `properties`, and a description on every field for `kubectl explain`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel

from gridshift.api.base import GROUP, VERSION, ApiObject
from gridshift.api.gpu_profile import GPUProfile
from gridshift.api.inference_deployment import InferenceDeployment
from gridshift.api.regional_cluster import RegionalCluster

JsonDict = dict[str, Any]

_DROPPED_KEYS = ("title",)


@dataclass(frozen=True)
class KindSpec:
    """How one kind is published: names, scope and the columns `kubectl get` shows."""

    model: type[ApiObject]
    short_names: tuple[str, ...]
    scope: str
    printer_columns: tuple[JsonDict, ...]

    @property
    def kind(self) -> str:
        """The name the model's `kind` field defaults to."""
        return str(self.model.model_fields["kind"].default)

    @property
    def plural(self) -> str:
        return f"{self.kind.lower()}s"


ARGOCD_SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
ARGOCD_CRD_SYNC_OPTIONS = "Prune=false,Delete=false"
"""Argo CD never prunes a CRD, nor deletes it with its Application (docs/gitops/README.md)."""


def _column(name: str, type_: str, json_path: str, *, priority: int = 0) -> JsonDict:
    """One `kubectl get` column; priority 1 shows only with `-o wide`."""
    column: JsonDict = {"name": name, "type": type_, "jsonPath": json_path}
    return {**column, "priority": priority} if priority else column


def _condition(type_: str, field: str) -> str:
    """JSONPath of one field of one condition (kubectl evaluates filters in printer columns)."""
    return f'.status.conditions[?(@.type=="{type_}")].{field}'


_READY = _column("Ready", "string", _condition("Ready", "status"))
_REASON = _column("Reason", "string", _condition("Ready", "reason"))
_AGE = _column("Age", "date", ".metadata.creationTimestamp")

KINDS: tuple[KindSpec, ...] = (
    KindSpec(
        model=InferenceDeployment,
        short_names=("idep",),
        scope="Namespaced",
        printer_columns=(
            _column("Model", "string", ".spec.model.servedName"),
            _column("Mode", "string", ".status.mode"),
            _READY,
            _REASON,
            _column("SLO", "string", _condition("SLOAtRisk", "reason")),
            _column("Available", "integer", ".status.readyReplicas"),
            _column("Desired", "integer", ".status.desiredReplicas"),
            _column("Regions", "string", ".status.regions"),
            _column("$/Mtok", "number", ".status.cost.usdPerMillionTokens"),
            _column("Cost", "string", ".status.cost.source"),
            _column("J/token", "number", ".status.cost.joulesPerToken", priority=1),
            _column("gCO2/Mtok", "number", ".status.cost.gramsCo2PerMillionTokens"),
            _AGE,
        ),
    ),
    KindSpec(
        model=RegionalCluster,
        # Not `rc`: that is ReplicationController's, and the core resource wins (kubectl warns).
        short_names=("rcluster",),
        scope="Cluster",
        printer_columns=(
            _column("Region", "string", ".spec.region"),
            _READY,
            _REASON,
            _column("Price $/kWh", "number", ".status.currentPriceUsdPerKwh"),
            _column("gCO2/kWh", "number", ".status.currentCarbonIntensityGPerKwh"),
            _column("PUE", "number", ".spec.pue"),
            _column("With PUE $/kWh", "number", ".status.currentPriceWithPueUsdPerKwh", priority=1),
            _AGE,
        ),
    ),
    KindSpec(
        model=GPUProfile,
        short_names=("gprof",),
        scope="Cluster",
        printer_columns=(
            _column("Model", "string", ".spec.model"),
            _column("GPU", "string", ".spec.gpuType"),
            _column("TP", "integer", ".spec.gpusPerReplica"),
            _column("Source", "string", ".spec.source.method"),
            _READY,
            _column("Step err", "number", ".status.fit.stepTimeMaxRelativeError"),
            _column("Power err", "number", ".status.fit.powerMaxRelativeError"),
            _AGE,
        ),
    ),
)


def _resolve(node: JsonDict, defs: dict[str, JsonDict]) -> JsonDict:
    """Inline `$ref`s; keys beside a `$ref` (its description) win over the definition's."""
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
        beside = {k: v for k, v in node.items() if k != "$ref"}
        return _resolve({**target, **beside}, defs)
    if "allOf" in node and len(node["allOf"]) == 1:
        beside = {k: v for k, v in node.items() if k != "allOf"}
        return _resolve({**node["allOf"][0], **beside}, defs)
    return node


def _implied_default(prop: JsonDict) -> JsonDict | list[Any] | None:
    """The default an optional property that states none is given, or None: only a list, a map or an
    all-defaults object, never a nullable one (its absence means something)."""
    if "default" in prop or prop.get("nullable"):
        return None
    # pydantic omits defaults made by default_factory; an optional list defaults to empty so
    # CEL rules can read it without has() guards.
    if prop.get("type") == "array":
        return []
    if prop.get("type") != "object":
        return None
    # Likewise an optional map (additionalProperties, no properties) defaults to empty: a selector
    # with matchExpressions only must still pass `self.matchLabels.all(...)`.
    if "properties" not in prop:
        return {} if isinstance(prop.get("additionalProperties"), dict) else None
    # An all-defaults sub-object gets its complete default, so the apiserver fills it in and
    # the default itself passes the object's CEL rules (the apiserver checks that).
    if prop.get("required"):
        return None
    return {k: v["default"] for k, v in prop["properties"].items() if "default" in v}


def _structural(node: JsonDict, defs: dict[str, JsonDict]) -> JsonDict:
    node = _resolve(node, defs)
    out: JsonDict = {}
    any_of = node.get("anyOf")
    if any_of is not None:
        non_null = [o for o in any_of if o.get("type") != "null"]
        if len(non_null) != 1:
            raise ValueError(f"cannot express a union of {len(non_null)} types structurally: {node}")
        inner = _structural(non_null[0], defs)
        beside = {k: v for k, v in node.items() if k not in ("anyOf", *_DROPPED_KEYS)}
        out = {**inner, **beside}
        out["nullable"] = True
        if out.get("default", 0) is None:
            del out["default"]
        return out
    for key, value in node.items():
        if key in _DROPPED_KEYS or key == "$defs":
            continue
        if key == "const":
            out["enum"] = [value]
        elif key == "properties":
            out["properties"] = {name: _structural(prop, defs) for name, prop in value.items()}
        elif key == "items":
            out["items"] = _structural(value, defs)
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            # JSON Schema 2020 gives the bound; OpenAPI v3.0 (Kubernetes) wants the bound plus a flag.
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out["additionalProperties"] = _structural(value, defs) if value else {}
            # `false` beside `properties` is not structural; extra fields are pruned instead.
        else:
            out[key] = copy.deepcopy(value)
    if "properties" in out:
        required = set(out.get("required", []))
        for name, prop in out["properties"].items():
            if name not in required and (default := _implied_default(prop)) is not None:
                prop["default"] = default
    if "enum" in out and "type" not in out:
        out["type"] = "integer" if all(isinstance(v, int) for v in out["enum"]) else "string"
    return out


def openapi_schema(model: type[BaseModel]) -> JsonDict:
    """The structural openAPIV3Schema of a top-level kind."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    schema = _structural(raw, defs)
    # The apiserver allows nothing but `type` here (metadata's schema is its own).
    schema["properties"]["metadata"] = {"type": "object"}
    for field in ("apiVersion", "kind"):
        schema["properties"][field].pop("enum", None)
        schema["properties"][field].pop("default", None)
    schema["required"] = [r for r in schema.get("required", []) if r not in ("apiVersion", "kind")]
    return schema


def crd_for(spec: KindSpec) -> JsonDict:
    """A complete apiextensions.k8s.io/v1 CustomResourceDefinition."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{spec.plural}.{GROUP}",
            "annotations": {
                "gridshift.dev/generated-by": "gridshift crds (from operator/gridshift/api)",
                # Argo CD does not read Helm's keep as "never prune" (argoproj/argo-cd#17819); a pruned CRD
                # deletes every object of its kind, and the operator then removes their replicas.
                ARGOCD_SYNC_OPTIONS: ARGOCD_CRD_SYNC_OPTIONS,
            },
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": spec.kind,
                "listKind": f"{spec.kind}List",
                "plural": spec.plural,
                "singular": spec.kind.lower(),
                "shortNames": list(spec.short_names),
                "categories": ["gridshift"],
            },
            "scope": spec.scope,
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": list(spec.printer_columns),
                    "schema": {"openAPIV3Schema": openapi_schema(spec.model)},
                }
            ],
        },
    }


def render_crds() -> dict[str, str]:
    """File name -> YAML text for every kind, deterministic so `--check` can diff."""
    header = "# Generated by `gridshift crds` from operator/gridshift/api. Do not edit by hand.\n"
    return {
        f"{GROUP}_{spec.plural}.yaml": header
        + yaml.safe_dump(crd_for(spec), sort_keys=False, width=100, allow_unicode=True)
        for spec in KINDS
    }
