"""Turns what the hub, member clusters, Prometheus and price feeds say into the planner's Snapshot.

Each translation is a small pure function so the service cycle can be tested with fakes; the
I/O (who is asked, and when) is the cycle's job. Also the --max-model-len a build gets on a GPU type
(`max_model_len`): service.actuate renders it, and the measured request classes are capped by it.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from gridshift.actuation.members import Inventory, WorkloadState
from gridshift.actuation.render import model_source
from gridshift.api import GPUProfile, InferenceDeployment, InferenceDeploymentSpec, RegionalCluster
from gridshift.api.common import LabelSelector
from gridshift.api.conditions import ProfileReadyReason
from gridshift.api.inference_deployment import (
    MAX_MEAN_TOKENS,
    MAX_REQUESTS_PER_SECOND,
    DemandSource,
    PlacementStatus,
    flag_value,
)
from gridshift.api.regional_cluster import NAMESPACE_PLACEHOLDER, usd_per_gpu_hour
from gridshift.api.validation import problems_of
from gridshift.planner import snapshot as S
from gridshift.planner.classes import classes_from_histograms, merged_histograms
from gridshift.planner.profiles import PerformanceModel
from gridshift.profiles_catalog import kv_memory_for, model_architectures, performance_model
from gridshift.signals.carbon_service import CarbonReading
from gridshift.signals.metrics import DeploymentSignals, ImplausibleDemand, UnreportedReplicas
from gridshift.signals.price_service import PriceReading
from gridshift.signals.prices import PriceKind, usd_per_kwh
from gridshift.signals.promql import Signal

T = TypeVar("T")


@dataclass(frozen=True)
class Parsed(Generic[T]):
    """A hub object parsed into its model, or the reason it could not be."""

    key: str
    resource: T | None
    error: str | None
    body: Mapping[str, Any]


METADATA_READ = ("name", "namespace", "uid", "generation", "labels")
"""What the models keep of an object's metadata (gridshift.shell.handlers.essence keeps these and the
resourceVersion): managedFields and annotations stay out of the parsed models (and out of memory)."""


def parse_bodies(bodies: Iterable[Mapping[str, Any]], model: type[T]) -> list[Parsed[T]]:
    return ParseCache(model).parse(bodies)


class ParseCache(Generic[T]):
    """Hub bodies parsed into their models, each validated again only when its resourceVersion (or
    UID) changed since the last `parse`: validating 10,000 InferenceDeployments took 2.7 s of CPU a
    cycle. A body without a resourceVersion is validated every time. Bodies gone are forgotten."""

    def __init__(self, model: type[T]) -> None:
        self._model = model
        self._entries: dict[str, tuple[str, str, T | None, str | None]] = {}

    def parse(self, bodies: Iterable[Mapping[str, Any]]) -> list[Parsed[T]]:
        out: list[Parsed[T]] = []
        entries: dict[str, tuple[str, str, T | None, str | None]] = {}
        for body in bodies:
            meta = body.get("metadata") or {}
            key = f"{meta.get('namespace')}/{meta.get('name')}" if meta.get("namespace") else str(meta.get("name"))
            version, uid = str(meta.get("resourceVersion") or ""), str(meta.get("uid") or "")
            old = self._entries.get(key)
            if version and old is not None and old[0] == version and old[1] == uid:
                resource, error = old[2], old[3]
            else:
                resource, error = self._validate(body, meta)
            if version:
                entries[key] = (version, uid, resource, error)
            out.append(Parsed(key, resource, error, body))
        self._entries = entries
        return sorted(out, key=lambda p: p.key)

    def _validate(self, body: Mapping[str, Any], meta: Mapping[str, Any]) -> tuple[T | None, str | None]:
        essential = {k: v for k, v in body.items() if k in ("apiVersion", "kind", "spec")}
        essential["metadata"] = {k: meta[k] for k in METADATA_READ if k in meta}
        try:
            return self._model.model_validate(essential), None  # type: ignore[attr-defined]
        except ValidationError as error:
            return None, "; ".join(f"{path}: {msg}" for path, msg in problems_of(error))


def selector_of(selector: LabelSelector | None) -> S.Selector | None:
    """A Kubernetes label selector as the planner matches it."""
    if selector is None:
        return None
    return S.Selector(
        match_labels=dict(selector.match_labels),
        match_expressions=tuple(
            S.SelectorRequirement(r.key, r.operator, tuple(r.values)) for r in selector.match_expressions
        ),
    )


def requirements_of(spec: InferenceDeploymentSpec, *, default_carbon_price: float = 0.0) -> S.Requirements:
    """What the planner reads of an InferenceDeployment's spec: the one translation of it.

    `default_carbon_price` (USD/t, OperatorSettings.default_carbon_price_usd_per_tonne) applies when
    spec.carbon.priceUsdPerTonne is unset."""
    demand = spec.demand
    carbon = spec.carbon
    return S.Requirements(
        # The source only: servedName is a label each tenant picks for its clients, not the model's identity.
        # Found in review: matched too, a GPUProfile for `chat` (an 8B model) sized another tenant's 72B deployment
        # serving as `chat`, and a user's profile keyed by a served name was shadowed by a shipped one.
        model_names=(spec.model.source,),
        gpu_types=tuple(spec.replica.gpu_types),
        gpus_per_replica=spec.replica.gpus_per_replica,
        ttft_slo_ms=spec.slo.ttft_p95_ms,
        tpot_slo_ms=spec.slo.tpot_p95_ms,
        min_replicas=spec.capacity.min_replicas,
        max_replicas=spec.capacity.max_replicas,
        min_regions=spec.capacity.min_regions,
        mode=spec.migration.mode,
        max_concurrent_moves=spec.migration.max_concurrent_moves,
        payback_horizon_hours=spec.migration.payback_horizon_hours,
        mean_prompt_tokens=demand.mean_prompt_tokens,
        mean_output_tokens=demand.mean_output_tokens,
        headroom=demand.headroom,
        static_requests_per_second=demand.requests_per_second if demand.source is DemandSource.STATIC else None,
        allowed_regions=frozenset(spec.placement.allowed_regions),
        forbidden_regions=frozenset(spec.placement.forbidden_regions),
        preferred_regions=frozenset(spec.placement.preferred_regions),
        cluster_selector=selector_of(spec.placement.cluster_selector),
        carbon_price_usd_per_tonne=(
            carbon.price_usd_per_tonne if carbon.price_usd_per_tonne is not None else default_carbon_price
        ),
        carbon_max_g_per_kwh=carbon.max_grams_per_kwh,
        carbon_budget_g_per_mtok=carbon.max_grams_per_million_tokens,
        request_classes=tuple(
            S.RequestClass(c.name, c.prompt_tokens, c.output_tokens, c.share) for c in demand.request_classes
        ),
        variants=tuple(S.Variant(v.name, (v.profile_model,)) for v in spec.variants if v.allowed),
        member_secrets=any(e.value_from is not None for e in spec.engine.env),
    )


def planner_cluster(
    name: str,
    cluster: RegionalCluster,
    inventory: Inventory | None,
    held_by_us: Mapping[str, int],
    held_unplanned: Mapping[str, int] | None = None,
) -> S.Cluster:
    """The planner's view of a cluster. `held_by_us`: GPUs per type our planned replicas already hold there;
    `held_unplanned`: GPUs per type held by replicas kept but not planned (their InferenceDeployment is being
    deleted, or refused by the model: InvalidSpec), which the offering's maxGpus budget loses.

    GPUs gridshift may use of a type: allocatable on Ready nodes, minus what other workloads request,
    capped by the offering's maxGpus. What our replicas hold is counted as scheduled pods in the workload
    namespaces, at most `held_by_us`: a replica whose pod is Pending holds no GPU (review: a Deployment
    scaled by hand to 1,000 Pending replicas made 1,000 GPUs "free" for every tenant). Credentials that may
    not list Nodes leave allocatable unknown: then the offering's maxGpus is the budget (none without it).
    Unreachable clusters (inventory None) keep their offerings but count as unreachable: the planner neither
    counts their replicas as capacity nor places new ones there.

    Found in review: replicas kept but not planned held no GPU of maxGpus, so without Node visibility (the
    member chart's default) the whole budget went to the others: 10 GPUs of a refused tenant's replicas and
    16 more booked for another, of 16. Where Nodes are visible their scheduled pods are in `used`, and in the
    workload namespaces' pods, of which ours are then at most those beyond `held_unplanned` (found in review:
    counted as ours, a planned deployment whose replicas were all Pending borrowed the kept replicas' GPUs).
    """
    by_type = {i.gpu_type: i for i in inventory.gpus} if inventory is not None else {}
    unplanned = held_unplanned or {}
    offerings = []
    for offer in cluster.spec.offerings:
        seen = by_type.get(offer.gpu_type)
        budget = None if offer.max_gpus is None else max(0, offer.max_gpus - unplanned.get(offer.gpu_type, 0))
        if inventory is not None and not inventory.nodes_visible:
            free_for_us = budget if budget is not None else held_by_us.get(offer.gpu_type, 0)
        else:
            # The kept replicas' scheduled pods are in used_in_namespaces too: not ours to count (found in review:
            # 10 of a refused tenant's 16 GPUs, another's 8 all Pending, and 14 were reported available, not 6).
            # Taken as all scheduled, so a kept replica that is Pending costs ours what it would hold, never more.
            ours = 0 if seen is None else max(0, seen.used_in_namespaces - unplanned.get(offer.gpu_type, 0))
            held = min(held_by_us.get(offer.gpu_type, 0), ours)
            free_for_us = 0 if seen is None else max(0, seen.allocatable - seen.used + held)
            if budget is not None:
                free_for_us = min(free_for_us, budget)
        offerings.append(
            S.Offering(
                gpu_type=offer.gpu_type,
                available_gpus=free_for_us,
                hourly_cost_usd=usd_per_gpu_hour(offer.hourly_cost, cluster.spec.price_feed.fx_to_usd),
                idle_power_watts=offer.idle_power_watts,
            )
        )
    raw_labels = cluster.metadata.get("labels")
    labels = {str(k): str(v) for k, v in raw_labels.items()} if isinstance(raw_labels, Mapping) else {}
    return S.Cluster(
        name=name,
        region=cluster.spec.region,
        pue=cluster.spec.pue,
        offerings=tuple(offerings),
        labels=labels,
        reachable=inventory is not None,
        tenant_workload_namespaces=NAMESPACE_PLACEHOLDER in cluster.spec.workload_namespace,
    )


def price_horizon(reading: PriceReading | None) -> S.PriceHorizon:
    """Prices in USD/kWh from the feed's reading; stale (or never fetched) readings are flagged, not dropped."""
    if reading is None or reading.series is None:
        return S.PriceHorizon(intervals=(), stale=True)
    intervals = tuple(
        S.EnergyPrice(
            start=i.start,
            end=i.end,
            usd_per_kwh=usd_per_kwh(i, reading.fx_to_usd),
            forecast=i.kind is PriceKind.FORECAST,
        )
        for i in reading.series.intervals
    )
    return S.PriceHorizon(intervals=intervals, stale=reading.stale)


def carbon_horizon(reading: CarbonReading | None) -> S.CarbonHorizon:
    """Intensities (gCO2eq/kWh, the feed's basis) from the carbon feed's reading; stale readings are flagged."""
    if reading is None or reading.series is None:
        return S.CarbonHorizon(intervals=(), stale=True)
    intervals = tuple(
        S.CarbonIntensity(start=i.start, end=i.end, g_per_kwh=i.g_per_kwh, forecast=i.kind is PriceKind.FORECAST)
        for i in reading.series.intervals
    )
    return S.CarbonHorizon(intervals=intervals, stale=reading.stale)


def placements_of(
    namespace: str, name: str, workloads_by_cluster: Mapping[str, Sequence[WorkloadState] | None]
) -> tuple[S.Placement, ...]:
    """Where the deployment runs now, from the member clusters' Deployments.

    An unreachable cluster's replicas are reported with ready=0: they cannot be counted on.
    """
    return placements_by_deployment(workloads_by_cluster).get((namespace, name), ())


def placements_by_deployment(
    workloads_by_cluster: Mapping[str, Sequence[WorkloadState] | None],
) -> dict[tuple[str, str], tuple[S.Placement, ...]]:
    """`placements_of` every deployment at once, by (namespace, name): one pass over the workloads
    (asking per deployment read every cluster's workloads 10,000 times at 10,000 deployments)."""
    out: dict[tuple[str, str], list[S.Placement]] = {}
    for cluster, workloads in sorted(workloads_by_cluster.items()):
        for w in workloads or ():
            out.setdefault((w.deployment_namespace, w.deployment_name), []).append(
                S.Placement(cluster=cluster, gpu_type=w.gpu_type, desired=w.desired, ready=w.ready)
            )
    return {key: tuple(placements) for key, placements in out.items()}


def ready_recorded(status: Mapping[str, Any] | None) -> dict[tuple[str, str], int]:
    """The Ready replicas per (cluster, GPU type) that an InferenceDeployment's status.placements recorded at
    its last write (service.migrate's roll-back, service.observe's reporting check); an entry that does not
    parse (status edited by hand) is left out."""
    recorded: dict[tuple[str, str], int] = {}
    placements = status.get("placements") if isinstance(status, Mapping) else None
    for entry in placements if isinstance(placements, list) else []:
        try:
            placed = PlacementStatus.model_validate(entry)
        except ValidationError:
            continue
        key = (placed.cluster, placed.gpu_type)
        recorded[key] = max(recorded.get(key, 0), placed.ready)
    return recorded


def observed_demand(
    idep: InferenceDeployment,
    signals: Sequence[DeploymentSignals],
    queue_drain_seconds: float = 300.0,
    ready: Sequence[tuple[str, int]] | None = None,
) -> S.ObservedDemand:
    """Static demand from the spec, or the sum over clusters of what Prometheus measured.

    vLLM counts finished requests, so an overloaded fleet under-reports its arrivals; requests
    left waiting are added as if they had to be served within `queue_drain_seconds`, which raises
    capacity exactly when the queue says the SLO is at risk. The mean lengths are the token rates over
    the finished requests (those the tokens were counted for), so a queue adds requests of the measured
    sizes and never makes them smaller. The queue is a stock, not a flow: its
    drain time is a setting of its own (OperatorSettings.queue_drain_seconds), never the rate
    window, or a 10 s window would read 600 waiting requests as +60 req/s.
    Missing metrics give None fields: the planner then never scales below the capacity running.

    `ready`, where given, is for each of `signals` in its order the cluster's name and the deployment's Ready
    replicas there that must report (service.observe: Ready now and at the last status write): where fewer
    report (Signal.REPLICAS_REPORTING) UnreportedReplicas is raised, as the sum leaves the others' traffic out.
    Found in review (a real Prometheus): one of two pods whose /metrics failed for 22 s made 20 req/s read
    9.99, and 60 req/s read as 30 scaled 16 replicas to 10 in one cycle.
    """
    demand = idep.spec.demand
    if demand.source is DemandSource.STATIC:
        return S.ObservedDemand(demand.requests_per_second, demand.mean_prompt_tokens, demand.mean_output_tokens)
    rates = [s.scalar(Signal.REQUEST_RATE) for s in signals]
    if not signals or any(r is None for r in rates):
        return S.ObservedDemand(None, demand.mean_prompt_tokens, demand.mean_output_tokens)
    _all_reporting(signals, ready)
    waiting = sum(s.scalar(Signal.REQUESTS_WAITING) or 0.0 for s in signals)
    finished = sum(r for r in rates if r is not None)
    total_rate = finished + waiting / queue_drain_seconds
    prompt = sum(s.scalar(Signal.PROMPT_TOKEN_RATE) or 0.0 for s in signals)
    generated = sum(s.scalar(Signal.GENERATION_TOKEN_RATE) or 0.0 for s in signals)
    _believable(total_rate, finished, prompt, generated)
    if total_rate <= 0:
        return S.ObservedDemand(0.0, demand.mean_prompt_tokens, demand.mean_output_tokens)
    # The token counters count the requests served, not the queue: the means are over the finished
    # rate, and the queue adds requests of that mean size. Found in review: taken over the rate with the
    # queue in it, a queue of 2,400 halved both means, raised a replica's capacity, and scaled a
    # deployment from 3 replicas to 2. With none finished, the spec's means stand in.
    return S.ObservedDemand(
        total_rate,
        prompt / finished if prompt > 0 and finished > 0 else demand.mean_prompt_tokens,
        generated / finished if generated > 0 and finished > 0 else demand.mean_output_tokens,
        # Planning by class is opt-in (spec.demand.requestClasses); measured classes then replace the listed ones.
        request_classes=measured_classes(signals, longest_sequence(idep.spec)) if demand.request_classes else (),
    )


def _all_reporting(signals: Sequence[DeploymentSignals], ready: Sequence[tuple[str, int]] | None) -> None:
    """Raise UnreportedReplicas where a cluster's Ready replicas (`ready`: those that must report) outnumber the
    pods reporting there."""
    if ready is None:
        return
    for measured, (cluster, count) in zip(signals, ready, strict=True):
        reporting = measured.scalar(Signal.REPLICAS_REPORTING) or 0.0
        if reporting < count:
            raise UnreportedReplicas(f"{count} Ready replicas in {cluster}, {reporting:g} reporting vLLM metrics")


def _believable(total_rate: float, finished: float, prompt_tokens_per_s: float, output_tokens_per_s: float) -> None:
    """Raise ImplausibleDemand unless the rate and the mean lengths it implies are within the API's bounds.

    The means are taken over the `finished` rate; with none finished, the tokens are still held to the
    rate with the queue in it (`total_rate`), as before the means left the queue out.
    Found in review: a finished-request rate near 0 beside a queue of 1e-300 made the mean prompt length
    infinite, and that error ended every tenant's planning cycle; a rate of 1e300 froze every plan."""
    figures = (total_rate, finished, prompt_tokens_per_s, output_tokens_per_s)
    if not all(math.isfinite(f) for f in figures):
        raise ImplausibleDemand("a measured request or token rate is not a finite number")
    if total_rate > MAX_REQUESTS_PER_SECOND:
        raise ImplausibleDemand(
            f"measured request rate {total_rate:.3g} req/s is above {MAX_REQUESTS_PER_SECOND:,} (the API's bound)"
        )
    for what, tokens_per_s in (("prompt", prompt_tokens_per_s), ("output", output_tokens_per_s)):
        # Compared as products: the mean itself overflows when the request rate is near 0.
        # No mean is taken without requests (the demand is then 0, whatever tokens a long request still adds).
        requests = finished if finished > 0 else total_rate
        if requests > 0 and tokens_per_s > MAX_MEAN_TOKENS * requests:
            raise ImplausibleDemand(
                f"measured {what} tokens ({tokens_per_s:.3g}/s) over {requests:.3g} requests/s make a "
                f"mean {what} length above {MAX_MEAN_TOKENS:,} tokens (the API's bound)"
            )


def measured_classes(
    signals: Sequence[DeploymentSignals], longest_tokens: float | None = None
) -> tuple[S.RequestClass, ...]:
    """Request-size classes from vLLM's prompt and generation token histograms, summed over the
    clusters on the edges they share (planner.classes.merged_histograms, classes_from_histograms),
    no size above `longest_tokens`; empty when either histogram is missing, or its query failed in any cluster.

    A failed cluster is not left out as an empty histogram is (it may hold most of the requests): found in review,
    one cluster's prompt histogram query failing rebuilt the classes from the other cluster alone, the long-prompt
    class gone while the request rate still counted both; the spec's classes apply instead (problem.classes_of)."""
    if any(s.failed.keys() & {Signal.PROMPT_TOKENS_BUCKETS, Signal.GENERATION_TOKENS_BUCKETS} for s in signals):
        return ()

    def summed(signal: Signal) -> list[tuple[float, float]]:
        return merged_histograms([measured.buckets(signal) for measured in signals])

    return classes_from_histograms(
        summed(Signal.PROMPT_TOKENS_BUCKETS), summed(Signal.GENERATION_TOKENS_BUCKETS), longest_tokens=longest_tokens
    )


def longest_sequence(spec: InferenceDeploymentSpec) -> int | None:
    """The longest sequence any replica of the deployment takes: the largest --max-model-len among its builds on
    the GPU types it may run on (`max_model_len`, as rendered), where none is rendered the model's own maximum
    (models.yaml's max_context_tokens, vLLM's default); None where one build's model is not known. A build that
    does not fit a GPU type at all (no KV cache left beside its weights) runs nowhere there and is left out. A
    build whose extraArgs set --max-model-len themselves runs that length on every GPU type (the renderer then
    adds none: `user_max_model_len`).

    Found in review: the model's maximum alone capped the +Inf bucket, so on an L4 (Llama-3.1-8B rendered with
    --max-model-len 27,632, its edges ending at 20,000) prompts of 20,000-27,632 tokens became a class of p95
    40,000, longer than the replicas take, that no L4 replica could batch."""
    models: list[int] = []
    rendered: list[int] = []
    for variant in ("", *(v.name for v in spec.variants)):
        architecture = model_architectures().get(model_source(spec, variant))
        if architecture is None or architecture.max_context_tokens is None:
            return None
        models.append(architecture.max_context_tokens)
        own = user_max_model_len(spec, variant)
        for gpu_type in spec.replica.gpu_types:
            if _runs_nowhere(model_source(spec, variant), gpu_type, spec.replica.gpus_per_replica):
                continue
            length = own if own is not None else max_model_len(spec, variant, gpu_type)
            rendered.append(architecture.max_context_tokens if length is None else length)
    return max(rendered) if rendered else max(models)


def max_model_len(spec: InferenceDeploymentSpec, variant: str, gpu_type: str) -> int | None:
    """vLLM --max-model-len for replicas of this build on this GPU type, where the model's own maximum does
    not fit their KV cache (KvMemory.max_model_len; None: vLLM's default). A function of the weights, the
    GPU type and the GPUs per replica alone, so that every rendering carries it: a stray's, or one after a
    restart, as well as a planned replica's (found in review: taken from the plan's options, a stray kept
    through a move was re-rendered without it, and its new pods could not start). service.actuate renders
    it; `longest_sequence` caps the measured request classes with it."""
    return _max_model_len(model_source(spec, variant), gpu_type, spec.replica.gpus_per_replica)


def user_max_model_len(spec: InferenceDeploymentSpec, variant: str) -> int | None:
    """The --max-model-len a build's own extraArgs give vLLM (the spec's, then the variant's: argparse keeps
    the last), read as vLLM reads it: an integer, or one with a k/m/g (powers of 1,000) or K/M/G (powers of
    1,024, whole numbers only) suffix. None where unset, or where vLLM would not read it as a length (-1,
    "auto"): the rendered or model maximum then stands, never a length gridshift guessed.

    Found in review: the +Inf bucket was capped at the rendered or model maximum even where the user's args
    ran shorter replicas (--max-model-len 8192 on a 131,072-token model), so the long requests' class was
    planned at 131,072 tokens, longer than any replica takes."""
    build = next((v for v in spec.variants if v.name == variant), None) if variant else None
    value = flag_value([*spec.engine.extra_args, *(build.extra_args if build is not None else ())], "--max-model-len")
    return None if value is None else _vllm_length(value)


def _vllm_length(value: str) -> int | None:
    """vLLM's human_readable_int (vllm/engine/arg_utils.py): '8192', '32k' (32,000), '32K' (32,768), '25.6k'."""
    text = value.strip()
    if match := re.fullmatch(r"(\d+(?:\.\d+)?)([kmg])", text):
        length = int(float(match[1]) * {"k": 10**3, "m": 10**6, "g": 10**9}[match[2]])
    elif match := re.fullmatch(r"(\d+)([KMG])", text):
        length = int(match[1]) * {"K": 2**10, "M": 2**20, "G": 2**30}[match[2]]
    elif re.fullmatch(r"[+-]?\d+", text):
        length = int(text)
    else:
        return None
    return length if length > 0 else None


@functools.cache
def _max_model_len(model: str, gpu_type: str, gpus: int) -> int | None:
    """max_model_len by its inputs, once each: repair renders every workload every cycle, and the catalog
    behind kv_memory_for does not change while the process runs."""
    kv = kv_memory_for(model, gpu_type, gpus)
    return None if kv is None else kv.max_model_len()


@functools.cache
def _runs_nowhere(model: str, gpu_type: str, gpus: int) -> bool:
    """Whether the weights alone fill the GPUs of a replica (none of it starts there); False where unknown."""
    kv = kv_memory_for(model, gpu_type, gpus)
    return kv is not None and kv.kv_budget_bytes <= 0


def profiles_from(uses: Mapping[str, ProfileUse], defaults: Sequence[Any]) -> tuple[Any, ...]:
    """User GPUProfiles override shipped defaults for the same (model, GPU type, GPUs per replica): those the
    planner uses (`uses`, from `profile_uses`); one refused leaves the shipped one, if any, in place."""
    chosen: dict[tuple[str, str, int], Any] = {(p.model, p.gpu_type, p.gpus_per_replica): p for p in defaults}
    for use in uses.values():
        if use.model is not None and use.refusal is None:
            chosen[(use.model.model, use.model.gpu_type, use.model.gpus_per_replica)] = use.model
    return tuple(chosen[k] for k in sorted(chosen))


PROFILE_MISS_FACTOR = 10.0
"""A GPUProfile whose fitted model misses a measured step time or power by more than this factor (either way) is
not used. Found in review: one point's step time entered in seconds (0.0077 for 7.7 ms) drew the 1/measured-
weighted fit to it, and capacity was overstated 3.6x, with only PoorFit True to say so (the worst miss was 731x);
one of 1e-300 ms made the fitted decode step 1e-300 ms. A real measurement can miss by more than the status's 25%
tolerance (PoorFit True, a warning) and still be the best figure there is: the shipped profiles miss by up to
1.9x (Llama-3.1-8B on B200), and ML.ENERGY's Qwen3-Coder-480B-FP8 on 8x B200, whose step time rises to batch
~2,000 and then falls (beyond the linear step model), by 5.7x; a first limit of 2x refused it and Qwen3-235B on
4x B200 (found in review). A factor of 10 keeps every such measurement and refuses a unit mistake (1,000x).
tests/service/test_inputs.py checks every shipped profile against it."""
MIS_ENTERED_BELOW = 0.01
"""A value below this share of its field's median over the points is named as maybe mis-entered (seconds as ms,
kW as W) where the fit is drawn down to it; a 1,000x unit mistake is far below, a real small-batch step is not."""


@dataclass(frozen=True)
class ProfileUse:
    """What the planner makes of one GPUProfile: its fitted model (None where it cannot be fitted), and why it is
    not used (Ready's False reason and message), None where it is."""

    resource: GPUProfile | None
    model: PerformanceModel | None
    refusal: tuple[ProfileReadyReason, str] | None = None


def profile_uses(parsed: Sequence[Parsed[GPUProfile]]) -> dict[str, ProfileUse]:
    """Each GPUProfile by its key: used, or why not. One used per (model, GPU type, GPUs per replica): of those
    that are usable alone, the one created first (metadata.creationTimestamp, then name; as HTTPRoutes are held,
    service.actuate.route_holders); each other says which one is used. Found in review: two such profiles were
    both Ready and whichever name sorted last was used, without a word."""
    uses = {item.key: _profile_use(item) for item in parsed}
    claims: dict[tuple[str, str, int], list[tuple[datetime, str]]] = {}
    for item in parsed:
        model = uses[item.key].model
        if model is not None and uses[item.key].refusal is None:
            claim = (created_at(item.body), item.key)
            claims.setdefault((model.model, model.gpu_type, model.gpus_per_replica), []).append(claim)
    for (name, gpu_type, gpus), claimants in sorted(claims.items()):
        first = min(claimants)[1]
        for _, key in claimants:
            if key != first:
                why = (
                    f"GPUProfile {first} (created first) is used for {name} on {gpu_type} with {gpus} GPU(s) per "
                    "replica; delete one of them, or change this one's model, gpuType or gpusPerReplica"
                )
                uses[key] = replace(uses[key], refusal=(ProfileReadyReason.DUPLICATE, why))
    return uses


def _profile_use(item: Parsed[GPUProfile]) -> ProfileUse:
    if item.resource is None:
        return ProfileUse(None, None, (ProfileReadyReason.INVALID, item.error or "refused by the model"))
    try:
        model = performance_model(item.resource)
    except ValueError as error:
        return ProfileUse(item.resource, None, (ProfileReadyReason.INVALID, str(error)))
    miss = _worst_miss(model, item.resource)
    refusal = None if miss is None else (ProfileReadyReason.POOR_FIT, miss)
    return ProfileUse(item.resource, model, refusal)


def _worst_miss(model: PerformanceModel, profile: GPUProfile) -> str | None:
    """The point the fit misses most by ratio, where it is beyond PROFILE_MISS_FACTOR, named with its measured and
    fitted value; None where every step time and power is within it.

    The fit weighs each point by 1/measured, so one value far too small draws it down to itself and the worst
    miss is another point: where the fit is below that point, the smallest value of the field is named too
    (found in review: point 0 in seconds, the message named point 7 only)."""
    points = profile.spec.points
    misses: list[tuple[float, str, str, bool]] = []
    for index, p in enumerate(points):
        pairs = (
            ("stepTimeMs", "ms", p.step_time_ms, model.step_time_ms(p.batch, max(p.context_tokens, 1))),
            ("powerWatts", "W", p.power_watts, model.power_watts(p.batch)),
        )
        for field, unit, measured, fitted in pairs:
            # A fitted value of 0 or below (or not finite) is the fit's degeneracy itself: the worst miss there is.
            ratio = fitted / measured if fitted > 0 and math.isfinite(fitted) else 0.0
            off = max(ratio, 1 / ratio) if ratio > 0 else math.inf
            if off > PROFILE_MISS_FACTOR:
                text = f"points[{index}].{field}: measured {measured:.4g} {unit}, fitted {fitted:.4g} {unit}"
                misses.append((off, text, field, ratio < 1))
    if not misses:
        return None
    off, text, field, below = max(misses, key=lambda m: m[0])
    why = f"{text} ({off:.3g}x off): the fit must be within {PROFILE_MISS_FACTOR:g}x of every point"
    values = [p.step_time_ms if field == "stepTimeMs" else p.power_watts for p in points]
    least = min(range(len(values)), key=values.__getitem__)
    if below and values[least] < MIS_ENTERED_BELOW * statistics.median(values):
        # Found in review: said of a real 19.7 ms small-batch step, where the model simply fits the curve badly.
        units = "seconds entered as ms" if field == "stepTimeMs" else "kW entered as W"
        why += f"; it is drawn to the smallest {field}, points[{least}]: {values[least]:.4g} ({units}?)"
    return why


def created_at(body: Mapping[str, Any]) -> datetime:
    """metadata.creationTimestamp; one missing or unreadable sorts last (nothing is taken from an older object:
    a GPUProfile, or a member cluster another RegionalCluster names too, service.observe)."""
    stamp = (body.get("metadata") or {}).get("creationTimestamp")
    if isinstance(stamp, str):
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(stamp)  # the apiserver writes RFC 3339 in UTC ("...Z")
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class MeasuredCost:
    """What Prometheus says a deployment's replicas did over the metrics window."""

    generation_tokens_per_second: float
    joules_per_token: float | None
    ttft_p95_seconds: float | None = None
    """The worst (largest) p95 time to first token of the clusters it runs in: the SLO holds in each."""
    tpot_p95_seconds: float | None = None
    """The worst p95 inter-token latency (time per output token) of the clusters it runs in."""
    unknown: frozenset[Signal] = frozenset()
    """Signals whose query failed in a cluster the deployment runs in (DeploymentSignals.failed): their figures
    above are None, unknown rather than unmeasured, whatever the other clusters answered."""
    ttft_p95_at_least: float | None = None
    """Where TTFT_P95 is unknown, the worst p95 of the clusters that answered: the p95 is at least that, so an
    SLO it is above is missed (LatencyAboveSLO), though no figure is shown or called within the SLO."""
    tpot_p95_at_least: float | None = None
    """The same for ITL_P95."""
    tokens_by_cluster: tuple[tuple[str, float], ...] = ()
    """`generation_tokens_per_second` as each cluster measured it, (cluster, tokens/s) for those with a rate
    (measured_cost_by_cluster): vLLM's series are summed per deployment and cluster, so this is as fine as the
    measured rate splits (not by GPU type). service.status leaves out the clusters whose replicas status.cost
    cannot price."""

    @property
    def latency_unknown(self) -> bool:
        """Whether a p95 latency query failed in a cluster: no latency is then said to be within the SLO."""
        return bool(self.unknown & {Signal.TTFT_P95, Signal.ITL_P95})


def _worst(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]  # undefined quantiles are already missing (signals)
    return max(known) if known else None


def _worst_known(
    signals: Sequence[DeploymentSignals], signal: Signal, unknown: frozenset[Signal]
) -> tuple[float | None, float | None]:
    """The worst p95 over the clusters, None where `signal` failed in one; then the worst of those that answered
    where it failed (a lower bound), else None."""
    worst = _worst([s.scalar(signal) for s in signals])
    return (None, worst) if signal in unknown else (worst, None)


def measured_cost_by_cluster(by_cluster: Mapping[str, DeploymentSignals] | None) -> MeasuredCost | None:
    """measured_cost of each cluster's signals, with the token rate each measured (MeasuredCost.tokens_by_cluster)."""
    cost = measured_cost(None if by_cluster is None else list(by_cluster.values()))
    if cost is None or by_cluster is None:
        return cost
    rates = ((cluster, s.scalar(Signal.GENERATION_TOKEN_RATE)) for cluster, s in sorted(by_cluster.items()))
    return replace(cost, tokens_by_cluster=tuple((c, t) for c, t in rates if t is not None))


def measured_cost(signals: Sequence[DeploymentSignals] | None) -> MeasuredCost | None:
    """Token rate summed over clusters, J/token weighted by each cluster's token rate, and the worst
    cluster's p95 latencies (quantiles of separate clusters do not add up; the SLO binds each);
    None without data. A signal whose query failed in any cluster is unknown (MeasuredCost.unknown), never
    the other clusters' figure: found in review, a TTFT query failing where latency was 5 s read as the other
    cluster's 0.2 s, "measured p95 latency within the SLO", and its J/token as the deployment's."""
    if not signals:
        return None
    tokens = [(s.scalar(Signal.GENERATION_TOKEN_RATE), s.scalar(Signal.JOULES_PER_TOKEN)) for s in signals]
    rate = sum(t for t, _ in tokens if t is not None)
    if rate <= 0:
        return None
    unknown = frozenset(signal for s in signals for signal in s.failed)
    weighted = [(t, j) for t, j in tokens if t is not None and j is not None and t > 0]
    joules = sum(t * j for t, j in weighted) / sum(t for t, _ in weighted) if weighted else None
    ttft, ttft_at_least = _worst_known(signals, Signal.TTFT_P95, unknown)
    tpot, tpot_at_least = _worst_known(signals, Signal.ITL_P95, unknown)
    return MeasuredCost(
        rate,
        None if Signal.JOULES_PER_TOKEN in unknown else joules,
        ttft_p95_seconds=ttft,
        tpot_p95_seconds=tpot,
        unknown=unknown,
        ttft_p95_at_least=ttft_at_least,
        tpot_p95_at_least=tpot_at_least,
    )
