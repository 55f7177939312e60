"""`gridshift simulate --deployments FILE`: a user's InferenceDeployments (the operator's own API) as the replay's set.

Every document is validated by the API models (`gridshift.api.validation.validate_object`: the same
field paths as the admission webhook's); what the CR says is taken as the operator would take it:
`spec.model.source` (the model a GPU profile is matched by), `spec.replica` (GPU type and count), `spec.slo`,
`spec.capacity`, `spec.migration` and `spec.demand.headroom` (what the reactive baseline sizes with; gridshift
sizes from its forecast; left out or null, it is read off the traffic). What only a replay needs comes from the
same object:

- `spec.demand.requestsPerSecond`: the rate at the daily peak (required: a replay needs a load);
- the home market: the first of `spec.placement.preferredRegions`, as a market name or its region name
  (`de-lu` for DE-LU), else the markets in turn;
- the trace: annotation `gridshift.dev/simulate-trace` naming a `--trace` (file name without extensions) or
  a shipped one (`conv`, `code`); default `conv` when there is one, else the first `--trace`.

What the replay does not model is refused, naming the field, rather than replayed as if absent (review: a
deployment allowed only in DE-LU was moved to Texas and its "savings" reported): region rules
(`spec.placement.allowedRegions`, `forbiddenRegions`, `clusterSelector`), `spec.capacity.minRegions` above 1,
`spec.capacity.minReplicas` 0 (the replay keeps a replica), a `spec.migration.mode` other than Auto,
`spec.variants` and the carbon limits (`spec.carbon.maxGramsPerKwh`, `maxGramsPerMillionTokens`).

A `kind: List` (`kubectl get idep -o yaml`) is read item by item, as gridshift validate reads it. One
metadata.name in two namespaces is two deployments, named namespace/name where the name repeats
(`_distinct_names`); twice in one namespace, it is refused naming both.

Errors are SimulationInputError naming the file, the document (and a list's item) and the field.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from gridshift.api.common import LabelSelector
from gridshift.api.inference_deployment import InferenceDeployment, InferenceDeploymentSpec
from gridshift.api.validation import (
    DocumentsError,
    InvalidResource,
    describe,
    kubectl_objects,
    read_documents,
    validate_object,
)
from gridshift.modes import MigrationMode
from gridshift.simulation.data import SimulationInputError
from gridshift.simulation.replay import burst_headroom_for, cluster_name, trace_offset
from gridshift.simulation.settings import DeploymentSetup, SimulationSettings

TRACE_ANNOTATION = "gridshift.dev/simulate-trace"


def load_deployments(path: Path, settings: SimulationSettings, traces: Mapping[str, Any]) -> list[DeploymentSetup]:
    """The deployments of a YAML file of InferenceDeployments (one or more documents, or a `kind: List`
    of them as `kubectl get idep -o yaml` writes: each item, as gridshift validate and kubectl take it)."""
    try:
        documents = read_documents(path)
    except DocumentsError as error:
        raise SimulationInputError(f"--deployments: {error}") from None
    if not documents:
        raise SimulationInputError(f"--deployments: {path} holds no InferenceDeployment")
    setups: list[DeploymentSetup] = []
    seen: dict[tuple[str, str], str] = {}
    for at, document, problem in kubectl_objects(documents):
        where = f"--deployments: {path} {at}"
        if problem:
            raise SimulationInputError(f"{where} {problem}")
        if document.get("kind") != "InferenceDeployment":
            raise SimulationInputError(f"{where} ({describe(document)}): kind must be InferenceDeployment")
        try:
            parsed = validate_object(document)
        except InvalidResource as error:
            raise SimulationInputError(f"{where}: {error}") from None
        assert isinstance(parsed, InferenceDeployment)
        setup = _setup(parsed, where, len(setups), settings, traces)
        # No namespace is kubectl's default one (where `kubectl apply -f` puts it with a context that names
        # none): found in review, {name: chat} beside {name: chat, namespace: default} replayed twice.
        key = (str(parsed.metadata.get("namespace") or "default"), setup.name)
        if key in seen:
            raise SimulationInputError(
                f"{where}: {describe(document)} is also {seen[key]}: metadata.name repeats in one namespace "
                "(they are one object to the apiserver): rename one"
            )
        seen[key] = at
        setups.append(setup)
    return _distinct_names(setups, [namespace for namespace, _ in seen])


def _distinct_names(setups: list[DeploymentSetup], namespaces: list[str]) -> list[DeploymentSetup]:
    """Deployments of one name in different namespaces are different objects: found in review, they were
    refused as a repeated metadata.name. Those are shown as namespace/name (the planner's id); every other
    deployment keeps its bare name, so a file of distinct names reads as before."""
    counts = Counter(s.name for s in setups)
    return [
        replace(s, name=f"{namespace}/{s.name}") if counts[s.name] > 1 else s
        for s, namespace in zip(setups, namespaces, strict=True)
    ]


def _selects(selector: LabelSelector | None) -> bool:
    """Whether a label selector leaves any cluster out (an empty one matches every cluster)."""
    return selector is not None and bool(selector.match_labels or selector.match_expressions)


_NOT_REPLAYED: tuple[tuple[str, Callable[[InferenceDeploymentSpec], bool], str], ...] = (
    ("spec.placement.allowedRegions", lambda s: bool(s.placement.allowed_regions), "region rules"),
    ("spec.placement.forbiddenRegions", lambda s: bool(s.placement.forbidden_regions), "region rules"),
    ("spec.placement.clusterSelector", lambda s: _selects(s.placement.cluster_selector), "region rules"),
    ("spec.capacity.minRegions", lambda s: s.capacity.min_regions > 1, "a spread over regions"),
    ("spec.capacity.minReplicas", lambda s: s.capacity.min_replicas == 0, "scale to zero (it keeps a replica)"),
    ("spec.migration.mode", lambda s: s.migration.mode is not MigrationMode.AUTO, "modes other than Auto"),
    ("spec.variants", lambda s: bool(s.variants), "model variants"),
    # Found in review: these two were accepted and dropped (a deployment with a carbon price replayed without it).
    (
        "spec.carbon.priceUsdPerTonne",
        lambda s: s.carbon.price_usd_per_tonne is not None,
        "a price per deployment (--carbon-price prices every deployment)",
    ),
    (
        "spec.demand.requestClasses",
        lambda s: bool(s.demand.request_classes),
        "request classes (the trace gives each request's size)",
    ),
    ("spec.carbon.maxGramsPerKwh", lambda s: s.carbon.max_grams_per_kwh is not None, "carbon limits"),
    (
        "spec.carbon.maxGramsPerMillionTokens",
        lambda s: s.carbon.max_grams_per_million_tokens is not None,
        "carbon limits",
    ),
)
"""Fields whose effect the replay's policies do not model: (path, set in this spec, what is not modelled)."""


def _replayable(spec: InferenceDeploymentSpec, where: str) -> None:
    for path, is_set, what in _NOT_REPLAYED:
        if is_set(spec):
            raise _field(where, path, f"the replay does not model {what}: remove the field to replay without it")


def _field(where: str, path: str, message: str) -> SimulationInputError:
    return SimulationInputError(f"{where}: {path}: {message}")


def _home(resource: InferenceDeployment, where: str, index: int, markets: Sequence[str]) -> str:
    preferred = resource.spec.placement.preferred_regions
    if not preferred:
        return markets[index % len(markets)]
    wanted = str(preferred[0])
    for market in markets:
        if wanted in (market, cluster_name(market)):
            return market
    known = ", ".join(f"{m} ({cluster_name(m)})" for m in markets)
    raise _field(where, "spec.placement.preferredRegions[0]", f"{wanted!r} is not a simulated market; markets: {known}")


def _setup(
    resource: InferenceDeployment,
    where: str,
    index: int,
    settings: SimulationSettings,
    traces: Mapping[str, Any],
) -> DeploymentSetup:
    spec = resource.spec
    _replayable(spec, where)
    peak = spec.demand.requests_per_second
    if peak is None or peak <= 0:
        raise _field(where, "spec.demand.requestsPerSecond", "the replay needs the rate at the daily peak (> 0)")
    metadata = resource.metadata
    annotations = metadata.get("annotations") if isinstance(metadata.get("annotations"), Mapping) else {}
    assert isinstance(annotations, Mapping)
    trace = str(annotations.get(TRACE_ANNOTATION, "conv" if "conv" in traces else next(iter(traces))))
    if trace not in traces:
        raise _field(
            where, f"metadata.annotations[{TRACE_ANNOTATION}]", f"no trace {trace!r}; traces: {', '.join(traces)}"
        )
    if len(spec.replica.gpu_types) != 1:
        raise _field(where, "spec.replica.gpuTypes", "the replay simulates one GPU type: name exactly one")
    gpu_type = str(spec.replica.gpu_types[0])
    if gpu_type != settings.gpu_type:
        raise _field(
            where, "spec.replica.gpuTypes[0]", f"the replay's markets offer {settings.gpu_type}, not {gpu_type}"
        )
    name = resource.metadata.get("name")
    if not isinstance(name, str) or not name:
        raise _field(where, "metadata.name", "required")
    home = _home(resource, where, index, settings.markets)
    offset = trace_offset(settings, index, len(traces[trace].requests_per_minute))
    return DeploymentSetup(
        name=name,
        model=spec.model.source,
        gpu_type=gpu_type,
        gpus_per_replica=spec.replica.gpus_per_replica,
        trace=trace,
        peak_requests_per_second=float(peak),
        ttft_p95_ms=spec.slo.ttft_p95_ms,
        tpot_p95_ms=spec.slo.tpot_p95_ms,
        # Set as the apiserver stores it: a null is pruned as if left out (kubectl, server-side apply), so the
        # parsed object's own fields, not the raw document's keys. Found in review: `headroom: null` was taken
        # as set and replayed at the API default 0.2, where leaving it out read it off the traffic (0.1).
        headroom=spec.demand.headroom
        if "headroom" in spec.demand.model_fields_set
        else burst_headroom_for(settings, traces[trace], peak, offset, home),
        home_market=home,
        trace_offset_minutes=offset,
        min_replicas=spec.capacity.min_replicas,
        max_replicas=spec.capacity.max_replicas,
        max_concurrent_moves=spec.migration.max_concurrent_moves,
        payback_horizon_hours=spec.migration.payback_horizon_hours,
        origin=where,
    )
