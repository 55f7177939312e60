"""The InferenceDeployment kind: one served model, its SLO, and where it may run.

Users own `spec` (GitOps tools apply it); the operator writes `status` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field
from pydantic.config import JsonDict

from gridshift.api.base import SET_LIST, ApiModel, ApiObject, CrossFieldRule, unique_items
from gridshift.api.carbon import CarbonSpec
from gridshift.api.common import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    NO_SPACE,
    QUANTITY,
    SECRET_KEY,
    VLLM_OPTION_VALUE,
    Condition,
    GpuType,
    LabelSelector,
    Port,
    RegionName,
    conditions_field,
    quantity_value,
)
from gridshift.api.conditions import INFERENCE_DEPLOYMENT_CONDITIONS, conditions_rule
from gridshift.modes import MigrationMode

# Pinned so that every cluster runs the same engine build; users override it per deployment.
DEFAULT_VLLM_IMAGE = "vllm/vllm-openai:v0.11.0"

OPERATOR_OWNED_VLLM_FLAGS = (
    "--model",
    "--revision",
    "--served-model-name",
    "--tensor-parallel-size",
    "-tp",
    "--pipeline-parallel-size",
    "-pp",
    "--data-parallel-size",
    "-dp",
    "--data-parallel-size-local",
    "-dpl",
    "--max-num-seqs",
    "--port",
)
"""vLLM flags the operator sets from the spec (actuation.render.vllm_args), or must keep at their default
because the pod requests only gpusPerReplica GPUs (pipeline and data parallelism multiply the GPUs a
replica needs: it would crash-loop while the planner counts it as capacity). Refused in extraArgs, and
so are their abbreviations (vLLM's parser takes --por for --port); the rendered flags also come last,
so that whatever admission missed does not win (argparse keeps the last value)."""


def _flag(arg: str) -> str:
    """The flag an argument sets, as vLLM reads it: its parser takes --max_num_seqs for --max-num-seqs."""
    return arg.split("=", 1)[0].replace("_", "-")


def _sets_owned_flag(arg: str) -> bool:
    """An owned flag, or a prefix of one: argparse (allow_abbrev) reads --max-num-seq as --max-num-seqs.
    A prefix that vLLM finds ambiguous would not start at all: refusing it loses nothing."""
    flag = _flag(arg)
    return flag.startswith("-") and any(owned.startswith(flag) for owned in OPERATOR_OWNED_VLLM_FLAGS)


def _names(arg: str, flag: str) -> bool:
    """Whether `arg` sets `flag` as vLLM reads it: with '_' for '-' and abbreviated (allow_abbrev)."""
    return len(f := _flag(arg)) > 2 and f.startswith("-") and flag.startswith(f)


def sets_flag(extra_args: Sequence[str], flag: str) -> bool:
    """Whether `extra_args` set `flag`, as vLLM reads them: with '_' for '-' and abbreviated (allow_abbrev)."""
    return any(_names(arg, flag) for arg in extra_args)


def flag_value(extra_args: Sequence[str], flag: str) -> str | None:
    """The value `extra_args` give `flag` as vLLM reads them (`--flag=v` or `--flag v`; argparse keeps the
    last); None where they do not set it or it has no value."""
    value = None
    for index, arg in enumerate(extra_args):
        if _names(arg, flag):
            if "=" in arg:
                value = arg.split("=", 1)[1]
            else:
                value = extra_args[index + 1] if index + 1 < len(extra_args) else None
    return value


def _no_owned_flags(extra_args: list[str]) -> bool:
    return not any(_sets_owned_flag(arg) for arg in extra_args)


VllmArgument = Annotated[str, Field(min_length=1, max_length=4096)]
"""One vLLM command-line argument; an empty one is refused (vLLM would not start: no flag is named "")."""


_UNMOUNTED_SCHEMES = ("pvc://", "file://")
"""Weight URIs vLLM cannot open in gridshift's replicas: it has no pvc:// scheme, and gridshift mounts no
volume a file:// path could name (found in review: such a replica crash-looped until the ready timeout)."""
_MOUNTED_CEL = " && ".join(f"!self.source.startsWith('{scheme}')" for scheme in _UNMOUNTED_SCHEMES)
_MOUNTED_MESSAGE = (
    "source must not be a pvc:// or file:// URI: gridshift mounts no volume for weights; use a Hugging Face "
    "id, a path inside the image, or s3://, gs://, az:// (vLLM's Run:ai streamer, "
    "engine.extraArgs --load-format runai_streamer)"
)


def _mounted(source: str | None) -> bool:
    return source is None or not source.startswith(_UNMOUNTED_SCHEMES)


def _mounted_rule(*, optional: bool) -> CrossFieldRule:
    """The rule on a model `source` (spec.model's, a variant's): a URI vLLM can open in gridshift's replicas.
    `optional`: the CEL lets a source that is not set pass."""
    return CrossFieldRule(
        cel=f"!has(self.source) || ({_MOUNTED_CEL})" if optional else _MOUNTED_CEL,
        message=_MOUNTED_MESSAGE,
        field="source",
        holds=lambda model: _mounted(model.source),
    )


class ModelSource(ApiModel):
    """Which model weights the replicas serve."""

    cross_field_rules = (_mounted_rule(optional=False),)

    served_name: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$",
        description="Model name clients ask for (vLLM --served-model-name).",
    )
    source: str = Field(
        min_length=1,
        max_length=512,
        pattern=VLLM_OPTION_VALUE,
        description=(
            "Hugging Face id (org/name), a path inside the image, or an s3://, gs:// or az:// URI (vLLM's Run:ai "
            "streamer) of the weights; not pvc:// or file:// (gridshift mounts no volume for them)."
        ),
    )
    revision: str = Field(
        default="main",
        min_length=1,
        max_length=128,
        pattern=VLLM_OPTION_VALUE,
        description="Revision (branch, tag or commit) of the weights; pin a commit for reproducibility.",
    )


NAME_KEYED_LIST: JsonDict = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}
"""A list of objects keyed by name: the apiserver refuses a name listed twice."""


def _unique_names(field: str, item: str) -> AfterValidator:
    """The pydantic twin of NAME_KEYED_LIST: `<field> must not list a <item> name twice`."""

    def check(value: list[Any]) -> list[Any]:
        names = [v.name for v in value]
        if len(set(names)) != len(names):
            raise ValueError(f"{field} must not list a {item} name twice")
        return value

    return AfterValidator(check)


class MemberSecretKeyRef(ApiModel):
    """One key of a Secret in the member cluster, in the replicas' own workload namespace."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN, description="Name of the Secret.")
    key: str = Field(min_length=1, max_length=253, pattern=SECRET_KEY, description="Key within the Secret's data.")


class EnvVarSource(ApiModel):
    """Where a variable's value comes from instead of the spec."""

    secret_key_ref: MemberSecretKeyRef = Field(
        description=(
            "A Secret the member cluster's administrator keeps in the workload namespace (a Hugging Face token "
            "for a gated model, say): the value never passes through the hub, gridshift or its logs. Only "
            "clusters whose workloadNamespace is per tenant (`{namespace}`) are used (docs/security.md)."
        )
    )


class EnvVar(ApiModel):
    """An environment variable for the engine container: a value, or a Secret's key (valueFrom)."""

    cross_field_rules = (
        CrossFieldRule(
            cel="!has(self.valueFrom) || !has(self.value) || self.value == ''",
            message="set value or valueFrom, not both",
            field="valueFrom",
            holds=lambda e: e.value_from is None or e.value == "",
        ),
        CrossFieldRule(
            cel="!self.name.startsWith('NVIDIA_')",
            message=(
                "env must not set NVIDIA_* variables: the NVIDIA container toolkit reads NVIDIA_VISIBLE_DEVICES "
                "from the container to pick the GPUs it sees, which the device plugin sets to those the pod "
                "was given (another tenant's GPUs on the node otherwise)"
            ),
            field="name",
            holds=lambda e: not e.name.startswith("NVIDIA_"),
        ),
    )

    name: str = Field(min_length=1, max_length=256, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Variable name.")
    value: str = Field(
        default="",
        max_length=32768,
        description="Variable value, in clear in this spec and in the member Deployment: no credentials here.",
    )
    value_from: EnvVarSource | None = Field(default=None, description="The value from a Secret in the member cluster.")


_OWNED_FLAGS_CEL = "[" + ", ".join(f"'{flag}'" for flag in OPERATOR_OWNED_VLLM_FLAGS) + "]"
_NO_OWNED_FLAGS_CEL = (
    "self.extraArgs.map(a, a.split('=', 2)[0].replace('_', '-'))"
    f".all(f, !(f.startsWith('-') && {_OWNED_FLAGS_CEL}.exists(o, o.startsWith(f))))"
)
"""The CEL twin of `_no_owned_flags`; each flag is read once (map), which keeps the estimated cost
within the apiserver's budget for 8 variants x 64 arguments."""
_LEADS_WITH_FLAG_CEL = "self.extraArgs.size() == 0 || self.extraArgs[0].startsWith('-')"
"""The CEL twin of `_leads_with_flag`."""
_LEADS_WITH_FLAG_MESSAGE = (
    "extraArgs must begin with a flag (-x or --name, a value after it): nothing precedes the first item, so "
    "vLLM would read a bare first item as the model to serve (vllm serve) or refuse to start"
)


def _leads_with_flag(extra_args: list[str]) -> bool:
    """Whether the first argument is a flag. A bare word in first place has no flag to be the value of:
    `vllm serve` takes it as its positional model tag, which replaces --model (the planner would size
    and price one model while the replica loads another), and the api_server entry point refuses it."""
    return not extra_args or extra_args[0].startswith("-")


_OWNED_FLAGS_MESSAGE = (
    "extraArgs must not set a flag the operator sets from the spec, nor an abbreviation of one "
    f"({', '.join(OPERATOR_OWNED_VLLM_FLAGS)})"
)


def _extra_args_rules(instead: str, *, optional: bool) -> tuple[CrossFieldRule, CrossFieldRule]:
    """The rules on vLLM `extraArgs` (the engine's, a variant's): they set no flag the operator sets (the message
    ends with what to set `instead`), and they begin with a flag. `optional`: the CEL lets an absent list pass."""
    absent = "!has(self.extraArgs) || " if optional else ""
    return (
        CrossFieldRule(
            cel=f"{absent}{_NO_OWNED_FLAGS_CEL}",
            message=f"{_OWNED_FLAGS_MESSAGE}: {instead}",
            field="extraArgs",
            holds=lambda engine: _no_owned_flags(engine.extra_args),
        ),
        CrossFieldRule(
            cel=f"{absent}{_LEADS_WITH_FLAG_CEL}",
            message=_LEADS_WITH_FLAG_MESSAGE,
            field="extraArgs",
            holds=lambda engine: _leads_with_flag(engine.extra_args),
        ),
    )


class EngineSpec(ApiModel):
    """The serving engine (vLLM) each replica runs."""

    cross_field_rules = _extra_args_rules("use the spec's fields instead", optional=False)

    image: str = Field(
        default=DEFAULT_VLLM_IMAGE,
        min_length=1,
        max_length=512,
        pattern=rf"^{NO_SPACE}+$",
        description=(
            "vLLM OpenAI-compatible server image; pinned by default so every region runs the same build. "
            "Pin a digest (image@sha256:...): the chart's admission policy warns about an unpinned image."
        ),
    )
    extra_args: list[VllmArgument] = Field(
        default_factory=list,
        max_length=64,
        description=(
            "Extra command-line arguments for vLLM (not the flags the operator sets from the spec), first of "
            "all a flag: --name=value or --name then value."
        ),
    )
    env: Annotated[list[EnvVar], _unique_names("env", "variable")] = Field(
        default_factory=list,
        max_length=64,
        json_schema_extra=NAME_KEYED_LIST,
        description=(
            "Extra environment variables for vLLM; one named HOME, HF_HOME, TORCHINDUCTOR_CACHE_DIR, USER or "
            "LOGNAME replaces the operator's (the first three point into the replica's scratch volume; USER "
            "and LOGNAME name its user, which has no passwd entry in most images)."
        ),
    )
    port: Port = Field(default=8000, description="Port vLLM listens on (HTTP and /metrics).")


class ReplicaShape(ApiModel):
    """What one replica needs: GPUs (= tensor-parallel size), GPU types it may use, CPU and memory."""

    cross_field_rules = (
        CrossFieldRule(
            cel="quantity(self.memory).compareTo(quantity('1Gi')) >= 0",
            message=(
                "memory must be at least 1Gi: it is the replica's request and limit, and 0 means no limit and "
                "nothing reserved, so a replica loading tens of GB pressed other tenants' pods on its node"
            ),
            field="memory",
            holds=lambda r: quantity_value(r.memory) >= 2**30,
        ),
    )

    gpus_per_replica: Literal[1, 2, 4, 8] = Field(
        default=1, description="GPUs per replica, which is also vLLM's --tensor-parallel-size (1, 2, 4 or 8)."
    )
    gpu_types: Annotated[list[GpuType], unique_items("gpuTypes", "a GPU type")] = Field(
        min_length=1,
        max_length=16,
        json_schema_extra=SET_LIST,
        description="Accepted GPU types (values of the node label nvidia.com/gpu.product, e.g. NVIDIA-H100-80GB-HBM3).",
    )

    cpu: str = Field(
        default="8", max_length=32, pattern=QUANTITY, description="CPU request per replica (Kubernetes quantity)."
    )
    memory: str = Field(
        default="64Gi",
        max_length=32,
        pattern=QUANTITY,
        description=(
            "Memory request and limit per replica (Kubernetes quantity, at least 1Gi: vLLM loads the weights "
            "through host memory)."
        ),
    )


class SLOSpec(ApiModel):
    """Latency objectives every replica must meet at the load it is given."""

    ttft_p95_ms: float = Field(gt=0, le=600_000, description="95th-percentile time to first token, in milliseconds.")
    tpot_p95_ms: float = Field(
        gt=0,
        le=60_000,
        description="95th-percentile time per output token (inter-token latency), in milliseconds.",
    )


class CapacitySpec(ApiModel):
    """Bounds on the replica count, summed over all clusters."""

    cross_field_rules = (
        CrossFieldRule(
            cel="self.minReplicas <= self.maxReplicas",
            message="minReplicas must not exceed maxReplicas",
            field="minReplicas",
            holds=lambda s: s.min_replicas <= s.max_replicas,
        ),
        CrossFieldRule(
            cel="self.minRegions <= self.maxReplicas",
            message="minRegions must not exceed maxReplicas (each region needs a replica)",
            field="minRegions",
            holds=lambda s: s.min_regions <= s.max_replicas,
        ),
    )

    min_replicas: int = Field(default=1, ge=0, le=10_000, description="Fewest replicas, whatever the demand.")
    max_replicas: int = Field(default=8, ge=1, le=10_000, description="Most replicas, whatever the demand.")
    min_regions: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Spread replicas over at least this many regions (for resilience).",
    )


class PlacementSpec(ApiModel):
    """Where replicas may and should run. Empty allowedRegions means every registered region."""

    cross_field_rules = (
        CrossFieldRule(
            cel="self.allowedRegions.all(r, !(r in self.forbiddenRegions))",
            message="a region cannot be both allowed and forbidden",
            field="forbiddenRegions",
            holds=lambda s: not set(s.allowed_regions) & set(s.forbidden_regions),
        ),
    )

    allowed_regions: Annotated[list[RegionName], unique_items("allowedRegions", "a region")] = Field(
        json_schema_extra=SET_LIST,
        default_factory=list,
        max_length=32,
        description="Regions replicas may run in; empty means all registered regions.",
    )
    preferred_regions: Annotated[list[RegionName], unique_items("preferredRegions", "a region")] = Field(
        json_schema_extra=SET_LIST,
        default_factory=list,
        max_length=64,
        description="Regions that win ties in cost (e.g. data residency preferences).",
    )
    forbidden_regions: Annotated[list[RegionName], unique_items("forbiddenRegions", "a region")] = Field(
        default_factory=list,
        max_length=32,
        json_schema_extra=SET_LIST,
        description="Regions replicas must never run in.",
    )
    cluster_selector: LabelSelector | None = Field(
        default=None, description="Only RegionalClusters whose labels match this selector are used."
    )


class MigrationSpec(ApiModel):
    """How replicas are moved between clusters."""

    mode: MigrationMode = Field(
        default=MigrationMode.AUTO,
        description="Auto acts on plans; Advisory plans and reports but changes nothing; Frozen keeps placement as is.",
    )
    max_concurrent_moves: int = Field(
        default=1,
        ge=0,
        le=64,
        description=(
            "Most replicas being moved at once (make-before-break); 0: no moves, replicas are only added or removed."
        ),
    )
    payback_horizon_hours: float = Field(
        default=6.0,
        gt=0,
        le=168,
        description="A move must pay back its cold-start cost within this many hours, else it is not made.",
    )
    ready_timeout_seconds: int = Field(
        default=1200,
        ge=30,
        le=86_400,
        description=(
            "How long a new replica may take to become Ready before the move is rolled back; moves that start "
            "replicas there are then held for as long, doubled at each roll-back in a row (8 times at most)."
        ),
    )


STEP_MESSAGE_MAX = 4096
"""Longest status.migration.steps[].message stored; longer texts (a member's admission webhook) are cut to it."""
DECISION_TARGET_MAX = 4096
"""Longest status.lastDecision.target stored."""

MAX_REQUESTS_PER_SECOND = 1_000_000
"""The largest request rate a deployment may state (Static), and the largest measured one the operator believes."""
MAX_MEAN_TOKENS = 2_000_000
"""The longest mean prompt or output a deployment may state, and the longest measured one the operator believes."""


class DemandSource(StrEnum):
    """Where the request rate the planner sizes for comes from."""

    PROMETHEUS = "Prometheus"
    STATIC = "Static"


class RequestClass(ApiModel):
    """Requests of about one size: one bucket of the demand's prompt x output histogram (docs/heterogeneous.md)."""

    name: str = Field(
        min_length=1, max_length=63, pattern=DNS_LABEL, description="Class name, unique within requestClasses."
    )
    prompt_tokens: float = Field(gt=0, le=MAX_MEAN_TOKENS, description="Mean prompt length of the class, tokens.")
    output_tokens: float = Field(gt=0, le=MAX_MEAN_TOKENS, description="Mean output length of the class, tokens.")
    share: float = Field(gt=0, le=1, description="Share of requests in this class (the shares add up to 1).")


_SHARE_SUM_MIN, _SHARE_SUM_MAX = 0.99, 1.01
"""The shares must add up to 1 within these bounds, compared as the CEL rule compares them (the same
literals and a left-to-right sum): |sum - 1| <= 0.01 refused 0.49 + 0.5, which the apiserver admitted."""


def _shares_add_up(classes: list[RequestClass]) -> bool:
    # Added left to right, as the CEL rule does: Python 3.12's sum() of floats compensates rounding, so that
    # [0.3, 0.59, 0.1] passed `gridshift validate` there while the apiserver refused it (review).
    total = 0.0
    for c in classes:
        total += c.share
    return not classes or _SHARE_SUM_MIN <= total <= _SHARE_SUM_MAX


class DemandSpec(ApiModel):
    """The load to size for."""

    cross_field_rules = (
        CrossFieldRule(
            cel="self.source != 'Static' || has(self.requestsPerSecond)",
            message="requestsPerSecond is required when source is Static",
            field="requestsPerSecond",
            holds=lambda s: s.source != DemandSource.STATIC or s.requests_per_second is not None,
        ),
        CrossFieldRule(
            cel=(
                "!has(self.requestClasses) || size(self.requestClasses) == 0"
                f" || (self.requestClasses.map(c, c.share).sum() >= {_SHARE_SUM_MIN}"
                f" && self.requestClasses.map(c, c.share).sum() <= {_SHARE_SUM_MAX})"
            ),
            message="requestClasses shares must add up to 1 (within 0.01)",
            field="requestClasses",
            holds=lambda s: _shares_add_up(s.request_classes),
        ),
    )

    source: DemandSource = Field(
        default=DemandSource.PROMETHEUS,
        description="Prometheus: observed vLLM request rate; Static: the figures below (capacity planning).",
    )
    requests_per_second: float | None = Field(
        default=None, ge=0, le=MAX_REQUESTS_PER_SECOND, description="Request rate for source Static."
    )
    mean_prompt_tokens: float = Field(
        default=1024, gt=0, le=MAX_MEAN_TOKENS, description="Mean prompt length, used until metrics say otherwise."
    )
    mean_output_tokens: float = Field(
        default=256, gt=0, le=MAX_MEAN_TOKENS, description="Mean output length, used until metrics say otherwise."
    )
    headroom: float = Field(
        default=0.2,
        ge=0,
        le=5,
        description="Extra capacity over observed demand, as a fraction (0.2 = 20%), to absorb bursts.",
    )
    request_classes: Annotated[list[RequestClass], _unique_names("requestClasses", "class")] = Field(
        default_factory=list,
        max_length=32,
        json_schema_extra=NAME_KEYED_LIST,
        description=(
            "Request-size classes (prompt x output buckets) with their shares of requests, used until vLLM's "
            "token histograms are measured; two or more let the planner serve classes on different GPU types."
        ),
    )


class ModelVariant(ApiModel):
    """Another build of the same model (e.g. fp8 or int4 weights) the planner may run instead."""

    cross_field_rules = (
        *_extra_args_rules("set the variant's source and revision instead of --model", optional=True),
        _mounted_rule(optional=True),
    )

    name: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL, description="Variant name, e.g. fp8.")
    profile_model: str = Field(
        min_length=1,
        max_length=512,
        description="The model name GPUProfiles carry for this build (its capacity and power come from them).",
    )
    source: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        pattern=VLLM_OPTION_VALUE,
        description="Model to load for this build; default spec.model.source.",
    )
    revision: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=VLLM_OPTION_VALUE,
        description=(
            "Revision (branch, tag or commit) of this build's source; default spec.model.revision when the "
            "build keeps spec.model.source, else the source's default branch (spec.model.revision names a "
            "commit of another repository)."
        ),
    )
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        pattern=rf"^{NO_SPACE}+$",
        description="vLLM image for this build; default spec.engine.image.",
    )
    extra_args: list[VllmArgument] = Field(
        default_factory=list,
        max_length=64,
        description="vLLM arguments added for this build (e.g. --quantization=fp8).",
    )
    allowed: bool = Field(default=True, description="Whether the planner may choose this build (false: never).")


class RoutingSpec(ApiModel):
    """Where the operator publishes routing weights besides status."""

    http_route_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description=(
            "Gateway API HTTPRoute (same namespace) whose backendRef weights the operator sets. One route, one "
            "deployment: where several name it, the one created first sets its weights and the others report "
            "RouteHeld."
        ),
    )


class InferenceDeploymentSpec(ApiModel):
    """Desired state of an InferenceDeployment."""

    cross_field_rules = (
        CrossFieldRule(
            cel=(
                "size(self.placement.allowedRegions) == 0"
                " || self.capacity.minRegions <= size(self.placement.allowedRegions)"
            ),
            message="minRegions must not exceed the number of allowedRegions",
            field="capacity.minRegions",
            holds=lambda s: (
                not s.placement.allowed_regions or s.capacity.min_regions <= len(set(s.placement.allowed_regions))
            ),
        ),
    )

    model: ModelSource = Field(description="The model to serve.")
    engine: EngineSpec = Field(default_factory=EngineSpec, description="The serving engine.")
    replica: ReplicaShape = Field(description="Resources of one replica.")
    slo: SLOSpec = Field(description="Latency objectives.")
    capacity: CapacitySpec = Field(default_factory=CapacitySpec, description="Replica count bounds.")
    placement: PlacementSpec = Field(default_factory=PlacementSpec, description="Region constraints.")
    migration: MigrationSpec = Field(default_factory=MigrationSpec, description="Migration behaviour.")
    demand: DemandSpec = Field(default_factory=DemandSpec, description="Demand to size for.")
    routing: RoutingSpec = Field(default_factory=RoutingSpec, description="Routing weight publication.")
    carbon: CarbonSpec = Field(default_factory=CarbonSpec, description="Carbon price and limits (docs/carbon.md).")
    variants: Annotated[list[ModelVariant], _unique_names("variants", "variant")] = Field(
        default_factory=list,
        max_length=8,
        json_schema_extra=NAME_KEYED_LIST,
        description=(
            "Interchangeable builds of the model the user accepts besides spec.model itself; the planner picks "
            "per cluster and GPU type the one that meets the SLO at the lowest cost (docs/heterogeneous.md)."
        ),
    )


# ---------------------------------------------------------------- status


class PlacementStatus(ApiModel):
    """Replicas of this deployment in one cluster."""

    cluster: str = Field(description="RegionalCluster name.")
    region: str = Field(description="Region of that cluster.")
    gpu_type: str = Field(description="GPU type the replicas run on.")
    desired: int = Field(
        ge=0,
        description=(
            "Replicas the operator wants there; in a cluster it cannot reach, the count last applied "
            "(counted in desiredReplicas only while the plan replaces them nowhere else)."
        ),
    )
    ready: int = Field(ge=0, description="Replicas Ready there.")


class RoutingWeight(ApiModel):
    """Share of traffic sent to one cluster."""

    cluster: str = Field(description="RegionalCluster name.")
    weight: int = Field(ge=0, le=100, description="Percent of requests (weights sum to 100).")


class ClassRoutingWeight(ApiModel):
    """Share of one request-size class sent to one GPU type in one cluster (for a size-aware router)."""

    request_class: str = Field(description="spec.demand.requestClasses name (or a measured bucket's).")
    cluster: str = Field(description="RegionalCluster name.")
    gpu_type: str = Field(description="GPU type of the replicas.")
    weight: int = Field(ge=0, le=100, description="Percent of the class's requests (a class's weights sum to 100).")


class CostSource(StrEnum):
    """Where the figures of status.cost come from."""

    PREDICTED = "Predicted"
    MEASURED = "Measured"
    HYPOTHETICAL = "Hypothetical"


class CostStatus(ApiModel):
    """Cost of serving this deployment, as of `time`.

    The figures are those of the placement as decided: they are refreshed when the decision or the
    spec changes, or when measured energy or throughput moves by more than a tenth, never for a price
    change alone (the live figures are the operator's metrics, docs/status.md).
    """

    usd_per_hour: float | None = Field(default=None, description="Total cost rate, USD per hour.")
    usd_per_million_tokens: float | None = Field(
        default=None,
        description=(
            "USD per million output tokens served. A Measured one is absent where no measured token rate covers "
            "the replicas it prices (see pricedOutputTokensPerSecond)."
        ),
    )
    joules_per_token: float | None = Field(default=None, description="GPU energy per output token, joules.")
    grams_co2_per_million_tokens: float | None = Field(
        default=None,
        description=(
            "Emissions per million output tokens, gCO2eq: power (measured when the source is Measured) x PUE x "
            "grid intensity now; absent unless every cluster used has a carbon feed."
        ),
    )
    kg_co2_per_hour: float | None = Field(default=None, description="Emissions rate of the placement, kgCO2eq/h.")
    carbon_usd_per_hour: float | None = Field(
        default=None,
        description="Internal carbon cost at spec.carbon's price, USD/h (not in usdPerHour, which is money spent).",
    )
    energy_share: float | None = Field(
        default=None, ge=0, le=1, description="Share of the cost that is electricity (the rest is GPU-hours)."
    )
    unpriced_replicas: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Replicas kept running that the figures above leave out, their price or power unknown (kept in a "
            "cluster that cannot be reached and no longer tells their offering, on a GPU type no GPUProfile gives a "
            "power for, or outside the plan where nothing can replace them): the cost is that of the rest, and "
            "status.lastDecision.explanation names them when a decision is made (an edit that keeps the decision "
            "updates this count, not the explanation). Absent when every replica is priced."
        ),
    )
    priced_output_tokens_per_second: float | None = Field(
        default=None,
        ge=0,
        description=(
            "Where a Measured cost leaves unpricedReplicas out: the measured output tokens/s of the replicas it "
            "prices (those of the clusters running no unpriced ones), the tokens usdPerMillionTokens is over. "
            "Absent when every replica is priced; and where a cluster runs both (vLLM's token rate is not split "
            "by GPU type) or a cluster of Ready priced replicas measured no token rate, usdPerMillionTokens then "
            "absent too."
        ),
    )
    source: CostSource | None = Field(
        default=None,
        description=(
            "Predicted by the planner for the placement; Measured through Prometheus (J/token and tokens "
            "served); Hypothetical in Advisory mode: the cost the plan would have, for replicas that do not exist."
        ),
    )
    time: datetime | None = Field(default=None, description="When these figures were computed (RFC 3339).")


class ObservedSLO(ApiModel):
    """Latency and load as measured through Prometheus over the metrics window (absent for Static demand)."""

    ttft_p95_ms: float | None = Field(
        default=None, description="Observed p95 time to first token, ms (the worst of the regions it runs in)."
    )
    tpot_p95_ms: float | None = Field(
        default=None,
        description="Observed p95 time per output token (inter-token latency), ms (the worst of its regions).",
    )
    requests_per_second: float | None = Field(default=None, description="Observed request rate, summed over regions.")
    output_tokens_per_second: float | None = Field(
        default=None, description="Observed output token rate, summed over regions."
    )


class Decision(ApiModel):
    """The last planning decision and why it was taken."""

    time: datetime = Field(description="When the decision was made (RFC 3339).")
    reason: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z][A-Za-z0-9]*$",
        description=(
            "The planner's CamelCase reason: NoChange, ScaleUp, ScaleDown, CheaperPlacement, LowerCarbon, MakesRoom, "
            "PlacementRules, SLOAtRisk, Infeasible or Frozen (docs/status.md)."
        ),
    )
    target: str = Field(
        default="",
        max_length=DECISION_TARGET_MAX,
        description="The placement decided: cluster/GPU type xN, comma-separated ('nothing' when none).",
    )
    summary: str = Field(
        max_length=1024,
        description="The decision in one stable line: its reason and target placement (no figures).",
    )
    explanation: str = Field(
        default="",
        max_length=16384,
        description="Chosen option versus the best alternative, binding constraints, with the figures as decided.",
    )
    estimated_saving_usd_per_hour: float | None = Field(
        default=None, description="Saving of the chosen plan over keeping the current placement, as decided."
    )


class MigrationStepStatus(ApiModel):
    """One make-before-break step of a migration in flight (persisted so a restarted operator resumes)."""

    index: int = Field(ge=0, description="Order of the step within the migration.")
    action: Literal["ScaleUp", "WaitReady", "ShiftRouting", "ScaleDown"] = Field(description="What the step does.")
    cluster: str = Field(description="RegionalCluster the step acts on ('*' for ShiftRouting).")
    gpu_type: str = Field(default="", description="GPU type of the replicas the step acts on.")
    replicas: int = Field(ge=0, description="Replica count of (cluster, GPU type) after the step.")
    from_replicas: int | None = Field(
        default=None, ge=0, description="Replica count before a ScaleUp, restored if the move is rolled back."
    )
    routing: list[RoutingWeight] = Field(default_factory=list, description="Weights a ShiftRouting step sets.")
    state: Literal["Pending", "Running", "Done", "Failed", "RolledBack"] = Field(description="Progress of the step.")
    started_at: datetime | None = Field(default=None, description="When the step started.")
    maybe_applied: bool = Field(
        default=False,
        description="A try of this ScaleUp's or ScaleDown's write may have gone out (and been applied) though it "
        "failed: its messages never say it was not sent.",
    )
    message: str = Field(default="", max_length=STEP_MESSAGE_MAX, description="Details, e.g. why it was rolled back.")


class InferenceDeploymentStatus(ApiModel):
    """Observed state of an InferenceDeployment, written by the operator only."""

    cross_field_rules = (conditions_rule("InferenceDeployment", INFERENCE_DEPLOYMENT_CONDITIONS),)

    observed_generation: int | None = Field(default=None, ge=0, description="Spec generation last acted on.")
    mode: MigrationMode | None = Field(
        default=None, description="The migration mode acted on (spec.migration.mode at observedGeneration)."
    )
    regions: str | None = Field(default=None, description="Comma-separated regions with replicas (for kubectl get).")
    ready_replicas: int | None = Field(default=None, ge=0, description="Ready replicas over all clusters.")
    desired_replicas: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Desired replicas: in reachable clusters, and in unreachable ones while nothing replaces them "
            "(always in Advisory, which replaces nothing)."
        ),
    )
    placements: list[PlacementStatus] = Field(default_factory=list, description="Replicas per cluster.")
    routing: list[RoutingWeight] = Field(default_factory=list, description="Traffic weights per cluster.")
    class_routing: list[ClassRoutingWeight] = Field(
        default_factory=list,
        description="Per request-size class, traffic weights per cluster and GPU type (empty unless planned by class).",
    )
    cost: CostStatus | None = Field(default=None, description="Cost of serving, as decided.")
    observed_slo: ObservedSLO | None = Field(default=None, description="Measured latency and load.")
    last_decision: Decision | None = Field(default=None, description="Most recent planning decision.")
    migration: list[MigrationStepStatus] = Field(
        default_factory=list, description="Steps of the migration in flight (empty when none)."
    )
    conditions: list[Condition] = conditions_field(INFERENCE_DEPLOYMENT_CONDITIONS)


class InferenceDeployment(ApiObject):
    """An LLM served by vLLM replicas that gridshift places across regional clusters."""

    kind: Literal["InferenceDeployment"] = Field(default="InferenceDeployment", description="Kind.")
    spec: InferenceDeploymentSpec = Field(description="Desired state, owned by the user.")
    status: InferenceDeploymentStatus | None = Field(default=None, description="Observed state, owned by the operator.")
