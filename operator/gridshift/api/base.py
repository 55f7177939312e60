"""Shared building blocks of the gridshift.dev API: the base model and cross-field rules.

A cross-field rule is written once and serves twice: as a CEL `x-kubernetes-validations`
entry in the generated CRD (so the apiserver refuses bad objects) and as a Python check run
by pydantic (so `gridshift` refuses the same objects offline, with the same field path).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    ValidationInfo,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

GROUP = "gridshift.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


@dataclass(frozen=True)
class CrossFieldRule:
    """One rule over several fields of an object, with its CEL twin.

    `field` names the field the error is reported on (relative to the object), so both the
    apiserver (via `fieldPath`) and pydantic point users at the same path.
    """

    cel: str
    message: str
    field: str
    holds: Callable[[Any], bool]
    admission_only: bool = False
    """Refused where an object is admitted (the CRD's CEL, `gridshift validate`), not where the operator reads a
    stored one: a rule added in a later version leaves objects admitted before it working. The apiserver
    ratchets CEL rules the same way (an update that leaves the field unchanged is not refused, Kubernetes
    1.30+)."""
    optional_old_self: bool = False
    """The CEL rule reads `oldSelf` (an optional: none on create), so that it can let a value stored before the
    rule stay while the rest of the object changes. The apiserver ratchets a rule only on an object left
    unchanged as a whole; a rule on a field of the spec needs this to ratchet that field alone."""


ADMISSION = "gridshift.dev/admission"
"""The validation context key under which admission-only rules apply (api.validation.validate_object)."""


class ApiModel(BaseModel):
    """Base of every API object: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    cross_field_rules: ClassVar[tuple[CrossFieldRule, ...]] = ()

    @model_validator(mode="after")
    def _check_cross_field_rules(self, info: ValidationInfo) -> ApiModel:
        admission = isinstance(info.context, Mapping) and bool(info.context.get(ADMISSION))
        for rule in type(self).cross_field_rules:
            if rule.admission_only and not admission:
                continue
            if not rule.holds(self):
                raise PydanticCustomError("cross_field", rule.message, {"field": rule.field})
        return self

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        if cls.cross_field_rules:
            target = handler.resolve_ref_schema(json_schema)
            target["x-kubernetes-validations"] = [
                {"rule": r.cel, "message": r.message, "fieldPath": f".{r.field}"}
                | ({"optionalOldSelf": True} if r.optional_old_self else {})
                for r in cls.cross_field_rules
            ]
        return json_schema

    def to_wire(self) -> dict[str, Any]:
        """The object as Kubernetes stores it: camelCase keys, no unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ApiObject(ApiModel):
    """Base of the gridshift.dev kinds: the fields every Kubernetes object has, before its spec and status.

    Each kind narrows `kind` to its name (the field keeps its place, second, in the schema)."""

    api_version: Literal["gridshift.dev/v1alpha1"] = Field(default="gridshift.dev/v1alpha1", description="API version.")
    kind: str = Field(description="Kind.")
    metadata: dict[str, object] = Field(default_factory=dict, description="Standard object metadata.")


T = TypeVar("T")

SET_LIST: dict[str, Any] = {"x-kubernetes-list-type": "set"}
"""A list the apiserver treats as a set: it refuses duplicates by itself (no CEL cost)."""


def unique_items(field: str, item: str) -> AfterValidator:
    """The pydantic twin of SET_LIST: `<field> must not list <item> twice`."""

    def check(value: list[T]) -> list[T]:
        if len(set(value)) != len(value):
            raise ValueError(f"{field} must not list {item} twice")
        return value

    return AfterValidator(check)
