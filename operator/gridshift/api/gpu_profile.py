"""The GPUProfile kind: measured performance and power of one model on one GPU type."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, TypeAdapter, ValidationError, ValidationInfo

from gridshift.api.base import ADMISSION, ApiModel, ApiObject, CrossFieldRule
from gridshift.api.common import Condition, GpuType, conditions_field
from gridshift.api.conditions import GPU_PROFILE_CONDITIONS, conditions_rule

MAX_PREFILL_TOKENS_PER_SECOND = 10_000_000.0
"""Prompt tokens per second a profile may state: about 80x the fastest shipped profile (120,313 on 8 GPUs).
Found in review: 1e308 (and .inf through `gridshift validate`) was admitted and made prefill free in the
capacity model, so every TTFT objective was met."""

RFC3339_PATTERN = (
    r"^([0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})-[0-9]{2}-[0-9]{2}"
    r"T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
"""RFC 3339 as both sides read it: an upper-case T, a zone (Z or +hh:mm, hours to 23, minutes to 59), year 0001
on. Found in review: the apiserver's date-time format refused `2026-11-27 00:00:00`, a time without a zone,
`T00:00`, `+0000` and "0" that pydantic read (validate said ok), and admitted `+24:00`, `-30:00`, `+05:60` and
year 0000 that pydantic refuses (the operator then refused the profile). The CRD carries the pattern; the
ranges of month, day and time are each side's date-time parser's, which agree. The pattern is admission's
only: the operator's read of a stored object does not apply it (_rfc3339)."""


_DATETIME = TypeAdapter(datetime)


def _rfc3339(value: Any, info: ValidationInfo) -> Any:
    """At admission (`gridshift validate`; the CRD carries the same pattern), a string matching
    RFC3339_PATTERN, parsed here: the strict parse takes no string once a validator has had it.

    The operator's read of a stored object leaves the string to pydantic's lax parse, as before the pattern.
    Found in review: the previous CRD (format date-time only) admitted `2026-11-27t00:00:00z` and more than
    nine fractional digits, which the operator read; with the pattern applied on read, such a stored profile
    was refused after an upgrade and the planner fell back to the default profile without a word. What the
    lax parse reads that no CRD admitted ("0" as a Unix time, a time without a zone) never reaches it."""
    if not isinstance(value, str) or not (isinstance(info.context, Mapping) and info.context.get(ADMISSION)):
        return value
    if not re.fullmatch(RFC3339_PATTERN, value):
        raise ValueError(
            f"{value[:40]!r} is not an RFC 3339 time with a zone "
            "(e.g. 2026-11-27T00:00:00Z or 2026-11-27T01:00:00+01:00)"
        )
    try:
        return _DATETIME.validate_python(value)
    except ValidationError as error:
        raise ValueError(f"{value!r} is not a time: {error.errors()[0]['msg']}") from None


Rfc3339Time = Annotated[datetime, BeforeValidator(_rfc3339), Field(json_schema_extra={"pattern": RFC3339_PATTERN})]


class ProfilePoint(ApiModel):
    """One measured operating point."""

    batch: int = Field(ge=1, le=4096, description="Sequences decoded together (running requests).")
    context_tokens: int = Field(
        ge=1,
        le=2_000_000,
        description=(
            "KV-cache positions per sequence (prompt plus tokens generated so far; at least 1: the step time "
            "is fitted per position, and 0 put a point's whole slope on one position)."
        ),
    )
    step_time_ms: float = Field(gt=0, le=600_000, description="Decode step time = time per output token, ms.")
    power_watts: float = Field(gt=0, le=10_000, description="Mean GPU power over the phase, W (all GPUs of a replica).")
    prefill_tokens_per_second: float | None = Field(
        default=None,
        gt=0,
        le=MAX_PREFILL_TOKENS_PER_SECOND,
        description="Prompt tokens per second when prefilling at this batch.",
    )


class ProfileSource(ApiModel):
    """Where the points came from, for trust and reproduction."""

    method: Literal["Measured", "Published", "Fitted"] = Field(description="How the points were obtained.")
    description: str = Field(default="", max_length=4096, description="Tool, data set, licence and attribution.")
    measured_at: Rfc3339Time | None = Field(default=None, description="When the measurement was taken.")


class GPUProfileSpec(ApiModel):
    """Measured points of one model on one GPU type and tensor-parallel size."""

    cross_field_rules = (
        CrossFieldRule(
            # What planner.profiles.fit_performance_model needs to fit step time against batch.
            cel="self.points.exists(p, p.batch != self.points[0].batch)",
            message="points need at least two distinct batch sizes to fit how step time grows with batch",
            field="points",
            holds=lambda s: len({p.batch for p in s.points}) >= 2,
        ),
        CrossFieldRule(
            # The SLO capacity model needs a prefill rate: the profile's, or the mean of its points'.
            cel="has(self.prefillTokensPerSecond) || self.points.exists(p, has(p.prefillTokensPerSecond))",
            message="prefillTokensPerSecond must be set on the profile or on at least one point",
            field="prefillTokensPerSecond",
            holds=lambda s: (
                s.prefill_tokens_per_second is not None
                or any(p.prefill_tokens_per_second is not None for p in s.points)
            ),
        ),
    )

    model: str = Field(
        min_length=1,
        max_length=256,
        description=(
            "The model measured, as InferenceDeployments name its weights: spec.model.source (a Hugging Face id, "
            "path or URI) or a variant's profileModel; never matched on servedName."
        ),
    )
    gpu_type: GpuType = Field(description="GPU type (the node label nvidia.com/gpu.product, a label value).")
    gpus_per_replica: Literal[1, 2, 4, 8] = Field(default=1, description="Tensor-parallel size measured.")
    idle_power_watts: float | None = Field(
        default=None, ge=0, le=10_000, description="Power of the replica's GPUs loaded but idle, W."
    )
    prefill_tokens_per_second: float | None = Field(
        default=None,
        gt=0,
        le=MAX_PREFILL_TOKENS_PER_SECOND,
        description="Prompt tokens per second when prefilling alone.",
    )
    points: list[ProfilePoint] = Field(min_length=2, max_length=1024, description="Measured operating points.")
    source: ProfileSource = Field(description="Provenance of the points.")


class ProfileFit(ApiModel):
    """How well the planner's performance model fits the measured points: relative residuals
    |model - measured| / measured over the points."""

    points: int = Field(ge=0, description="Points the model was fitted to.")
    step_time_rms_relative_error: float = Field(ge=0, description="Root mean square relative error of step time.")
    step_time_max_relative_error: float = Field(ge=0, description="Largest relative error of step time.")
    power_rms_relative_error: float = Field(ge=0, description="Root mean square relative error of power.")
    power_max_relative_error: float = Field(ge=0, description="Largest relative error of power.")
    tolerance: float = Field(
        gt=0, description="Largest relative error accepted before PoorFit turns True (a fraction)."
    )


class GPUProfileStatus(ApiModel):
    """What the operator made of the profile: whether it could be fitted, and how well."""

    cross_field_rules = (conditions_rule("GPUProfile", GPU_PROFILE_CONDITIONS),)

    observed_generation: int | None = Field(default=None, ge=0, description="Spec generation last checked.")
    fit: ProfileFit | None = Field(default=None, description="Residuals of the fitted model (absent when invalid).")
    conditions: list[Condition] = conditions_field(GPU_PROFILE_CONDITIONS)


class GPUProfile(ApiObject):
    """Performance and power profile of a model on a GPU type."""

    kind: Literal["GPUProfile"] = Field(default="GPUProfile", description="Kind.")
    spec: GPUProfileSpec = Field(description="The profile.")
    status: GPUProfileStatus | None = Field(default=None, description="Observed state, written by the operator.")
