"""Types shared by several gridshift.dev kinds: conditions, references, selectors."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field
from pydantic.config import JsonDict

from gridshift.api.base import ApiModel

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
REGION_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
CURRENCY_CODE = r"^[A-Z]{3}$"
# Conditions merge by type under server-side apply, as Kubernetes' own conditions do.
CONDITIONS_LIST_SCHEMA: JsonDict = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}
RegionName = Annotated[str, Field(min_length=1, max_length=63, pattern=REGION_NAME)]
# Kubernetes resource.Quantity, e.g. "8", "500m", "64Gi".
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"


class SecretKeyRef(ApiModel):
    """Points at one key of a Secret on the hub cluster."""

    name: str = Field(min_length=1, max_length=253, description="Name of the Secret.")
    namespace: str | None = Field(
        default=None,
        max_length=63,
        description="Namespace of the Secret. Defaults to the namespace the operator runs in.",
    )
    key: str = Field(min_length=1, max_length=253, description="Key within the Secret's data.")


class LabelSelectorRequirement(ApiModel):
    """A label selector requirement, as in Kubernetes' metav1.LabelSelectorRequirement."""

    key: str = Field(min_length=1, description="The label key the selector applies to.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(description="How the key relates to the values.")
    values: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="Values for In and NotIn; must be empty for Exists and DoesNotExist.",
    )


class LabelSelector(ApiModel):
    """Selects RegionalClusters by their labels (matchLabels AND matchExpressions)."""

    match_labels: dict[str, str] = Field(default_factory=dict, description="Labels a cluster must carry, all of them.")
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, max_length=32, description="Further requirements, all of them."
    )


class Condition(ApiModel):
    """A status condition, following Kubernetes' metav1.Condition conventions."""

    type: str = Field(min_length=1, max_length=316, description="Condition type, e.g. Ready or SLOAtRisk.")
    status: Literal["True", "False", "Unknown"] = Field(description="Whether the condition holds.")
    reason: str = Field(
        default="Unknown",
        max_length=1024,
        description="CamelCase reason for the last transition, for machines.",
    )
    message: str = Field(default="", max_length=32768, description="Human-readable details of the last transition.")
    last_transition_time: datetime | None = Field(default=None, description="When the status last changed (RFC 3339).")
    observed_generation: int | None = Field(
        default=None, ge=0, description="The spec generation this condition was computed from."
    )
