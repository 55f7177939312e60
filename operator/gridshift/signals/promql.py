"""PromQL for each signal gridshift reads, per deployment or for every deployment of a cluster at once.

Metric names are the ones vLLM and dcgm-exporter really export (checked against recorded scrapes
by tests/signals/test_promql_names.py). Where vLLM renamed a metric, both names are queried:
the current (V1 engine) name first, the older one only when the current one has no series.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from gridshift.api.labels import deployment_label_value
from gridshift.signals.labels import (
    DeploymentRef,
    LabelScheme,
    SelectBy,
    dcgm_selector,
    join_labels,
    promql_string,
    vllm_selector,
)

# vLLM V1 engine names (vllm/v1/metrics/loggers.py), as in the recorded V1 scrape.
VLLM_REQUEST_SUCCESS = "vllm:request_success_total"
VLLM_PROMPT_TOKENS = "vllm:prompt_tokens_total"
VLLM_GENERATION_TOKENS = "vllm:generation_tokens_total"
VLLM_TTFT_HISTOGRAM = "vllm:time_to_first_token_seconds"
VLLM_ITL_HISTOGRAM = "vllm:inter_token_latency_seconds"
VLLM_REQUESTS_RUNNING = "vllm:num_requests_running"
VLLM_REQUESTS_WAITING = "vllm:num_requests_waiting"
VLLM_KV_CACHE_USAGE = "vllm:kv_cache_usage_perc"
VLLM_PROMPT_TOKENS_HISTOGRAM = "vllm:request_prompt_tokens"
"""Prompt tokens per finished request (histogram; `_bucket` series by `le`)."""
VLLM_GENERATION_TOKENS_HISTOGRAM = "vllm:request_generation_tokens"
"""Generated tokens per finished request (histogram)."""

# Names used before the V1 renames (vLLM <= 0.10 and the V0 engine); still found in the field.
VLLM_ITL_HISTOGRAM_LEGACY = "vllm:time_per_output_token_seconds"
VLLM_KV_CACHE_USAGE_LEGACY = "vllm:gpu_cache_usage_perc"
LEGACY_METRIC_NAMES = {
    VLLM_ITL_HISTOGRAM_LEGACY: VLLM_ITL_HISTOGRAM,
    VLLM_KV_CACHE_USAGE_LEGACY: VLLM_KV_CACHE_USAGE,
}
"""Older vLLM name -> the current name it was renamed to (absent from the recorded V1 scrape)."""

DCGM_POWER = "DCGM_FI_DEV_POWER_USAGE"
"""dcgm-exporter gauge, W, one series per GPU."""
DCGM_TOTAL_ENERGY = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"
"""dcgm-exporter counter, mJ since driver load, one series per GPU."""
MILLIJOULES_PER_JOULE = 1000


class Signal(StrEnum):
    """Each measured quantity, with its unit in the name."""

    REQUEST_RATE = "requests_per_second"
    PROMPT_TOKEN_RATE = "prompt_tokens_per_second"
    GENERATION_TOKEN_RATE = "generation_tokens_per_second"
    TTFT_P95 = "ttft_p95_seconds"
    ITL_P95 = "itl_p95_seconds"
    REQUESTS_RUNNING = "requests_running"
    REQUESTS_WAITING = "requests_waiting"
    KV_CACHE_USAGE = "kv_cache_usage_fraction"
    WATTS_PER_REPLICA = "watts_per_replica"
    JOULES_PER_TOKEN = "joules_per_generation_token"
    PROMPT_TOKENS_BUCKETS = "prompt_tokens_requests_by_le"
    """Requests finished over the rate window per prompt-length bucket (cumulative, by `le`)."""
    GENERATION_TOKENS_BUCKETS = "generation_tokens_requests_by_le"
    """Requests finished over the rate window per output-length bucket (cumulative, by `le`)."""
    REPLICAS_REPORTING = "replicas_reporting"
    """Replica pods whose vLLM gauge was scraped within REPORTING_SECONDS: a pod silent for longer (its
    /metrics failing while it serves) is not counted, so the rates summed over fewer pods than are Ready are
    known to be partial (service.inputs.observed_demand)."""


REPORTING_SECONDS = 35
"""A replica pod counts as reporting (Signal.REPLICAS_REPORTING) if its vLLM gauge was scraped within this, s:
two of dcgm/vllm-podmonitor.yaml's 15 s scrapes and a margin, so one failed scrape is tolerated and a pod
silent for longer is not; its share of a 300 s rate window is then at most about a tenth short."""


@dataclass(frozen=True)
class QueryWindows:
    """Range windows of the rate() and increase() calls."""

    rate_seconds: int = 300
    """5 min: at least 4 scrapes at the 30-60 s intervals usual for vLLM, and smooths request bursts."""
    energy_seconds: int = 900
    """15 min: DCGM's energy counter and token counts both grow slowly at low load; a longer window
    keeps J/token from jumping with a few requests."""
    quantile: float = 0.95
    """The SLO percentile (InferenceDeployment SLOs are p95)."""


def _dcgm(metric_expression: str, scheme: LabelScheme) -> str:
    """`metric_expression` over DCGM series with their workload labels renamed to the vLLM ones."""
    expression = metric_expression
    for dcgm_label, vllm_label in (
        (scheme.dcgm_namespace_label, scheme.namespace_label),
        (scheme.dcgm_pod_label, scheme.pod_label),
    ):
        if dcgm_label != vllm_label:
            expression = f'label_replace({expression}, "{vllm_label}", "$1", "{dcgm_label}", "(.*)")'
    return expression


PER_POD_SIGNALS = frozenset({Signal.WATTS_PER_REPLICA})
"""Signals answered with one series per replica pod; every other signal is one number (or per bucket)."""
PER_BUCKET_SIGNALS = frozenset({Signal.PROMPT_TOKENS_BUCKETS, Signal.GENERATION_TOKENS_BUCKETS})
"""Signals answered with one series per histogram bucket, keyed by its `le` label."""
BUCKET_LABEL = "le"
PLAUSIBLE_BUCKET_EDGE = r"\+Inf|[0-9][0-9.e+-]{0,31}"
"""The `le` values the by-`le` signals keep: a number as Prometheus clients write one (`1.0`, `1e+06`, `0.005`;
a float's repr is at most 24 characters) or +Inf. Their answers carry `le` through, and a replica's image is its
tenant's: found in review, 1,000 series with 70,000-character `le` values from one replica made the cluster's
prompt-tokens answer exceed the operator's 64 MiB cap, and every tenant's demand there went unknown."""
_PLAUSIBLE_EDGES = f"{BUCKET_LABEL}=~{promql_string(PLAUSIBLE_BUCKET_EDGE)}"


def _queries(scheme: LabelScheme, windows: QueryWindows, sel: str, dsel: str, by: tuple[str, ...]) -> dict[Signal, str]:
    """Every signal's PromQL over the vLLM series `sel` and DCGM series `dsel` select, aggregated `by`
    these labels: none for one deployment (build_queries), `group_labels` for a cluster (build_grouped_queries)."""
    on = ", ".join(join_labels(scheme))
    rate = f"{windows.rate_seconds}s"
    energy_window = f"{windows.energy_seconds}s"
    q = windows.quantile

    def aggregate(operator: str, expression: str, *labels: str) -> str:
        grouping = ", ".join((*by, *labels))
        return f"{operator} by ({grouping}) ({expression})" if grouping else f"{operator}({expression})"

    def renamed(current: str, legacy: str) -> str:
        # The legacy series count only where the current one is empty (per deployment when grouped), so
        # a server exporting both names during the deprecation period is not counted twice.
        return f"({current}) or (({legacy}) unless on ({', '.join(by)}) ({current}))"

    def summed(counter: str) -> str:
        return aggregate("sum", f"rate({counter}{sel}[{rate}])")

    def buckets(histogram: str) -> str:
        return aggregate("sum", f"rate({histogram}_bucket{sel}[{rate}])", BUCKET_LABEL)

    def shared_buckets(histogram: str) -> str:
        # vLLM's token histograms end at the replica's --max-model-len (build_1_2_5_buckets), which
        # gridshift sets shorter on small GPUs (27,632 on an L4: edges to 20,000; 100,000 on an H100),
        # so a sum by `le` over replicas of both was no cumulative histogram: the L4's 20k-100k prompts
        # were in no edge but +Inf. Only the edges every series has are kept (an edge's series count
        # equals the +Inf edge's, the largest), which merges the histograms on their common edges.
        increase = f"increase({histogram}_bucket{sel[:-1]},{_PLAUSIBLE_EDGES}}}[{rate}])"  # sel is "{...}"
        per_edge = aggregate("count", increase, BUCKET_LABEL)
        every = f"{per_edge} == on ({', '.join(by)}) group_left {aggregate('max', per_edge)}"
        return f"{aggregate('sum', increase, BUCKET_LABEL)} and on ({', '.join((*by, BUCKET_LABEL))}) ({every})"

    # DCGM series lack the deployment's labels: joined to vLLM's running gauge, one series per replica pod, on
    # the pod labels both share (join_labels); energy to the pods seen in its window (last_over_time), as a pod
    # stopped within it (a scale-down) had its tokens counted, not its energy (review: J/token biased low).
    # J/token's tokens are those of the pods with an energy series: a pod without DCGM series (no mapping,
    # exporter down, new) counted its tokens, not its energy (review, 7 December 2026: one of two read half).
    running = f"{VLLM_REQUESTS_RUNNING}{sel}"
    seen = f"last_over_time({running}[{energy_window}])"
    if by:
        key = by[1]
        per_pod = ", ".join((*by, scheme.pod_label))

        def on_pods(dcgm: str, pods: str = running) -> str:
            return f"{dcgm} * on ({on}) group_left ({key}) group by ({on}, {key}) ({pods})"

    else:
        per_pod = on

        def on_pods(dcgm: str, pods: str = running) -> str:
            return f"{dcgm} and on ({on}) {pods}"

    kv_current, kv_legacy = f"{VLLM_KV_CACHE_USAGE}{sel}", f"{VLLM_KV_CACHE_USAGE_LEGACY}{sel}"
    power = _dcgm(f"{DCGM_POWER}{dsel}", scheme)
    energy = _dcgm(f"increase({DCGM_TOTAL_ENERGY}{dsel}[{energy_window}])", scheme)
    tokens = aggregate("sum", f"increase({VLLM_GENERATION_TOKENS}{sel}[{energy_window}]) and on ({on}) {energy}")
    return {
        Signal.REQUEST_RATE: summed(VLLM_REQUEST_SUCCESS),
        Signal.PROMPT_TOKEN_RATE: summed(VLLM_PROMPT_TOKENS),
        Signal.GENERATION_TOKEN_RATE: summed(VLLM_GENERATION_TOKENS),
        Signal.TTFT_P95: f"histogram_quantile({q}, {buckets(VLLM_TTFT_HISTOGRAM)})",
        Signal.ITL_P95: (
            f"histogram_quantile({q}, {renamed(buckets(VLLM_ITL_HISTOGRAM), buckets(VLLM_ITL_HISTOGRAM_LEGACY))})"
        ),
        Signal.REQUESTS_RUNNING: aggregate("sum", f"{VLLM_REQUESTS_RUNNING}{sel}"),
        # Pods, not series: a vLLM server running several engines (data parallel) has one series per engine.
        # Seen within REPORTING_SECONDS, not only at the last scrape: found in regression review, one failed
        # scrape (a stale marker) dropped the pod at once while the rate over its 300 s window was 96% right.
        Signal.REPLICAS_REPORTING: aggregate(
            "count", f"group by ({per_pod}) (last_over_time({running}[{REPORTING_SECONDS}s]))"
        ),
        Signal.REQUESTS_WAITING: aggregate("sum", f"{VLLM_REQUESTS_WAITING}{sel}"),
        Signal.KV_CACHE_USAGE: aggregate("avg", renamed(kv_current, kv_legacy)),
        Signal.WATTS_PER_REPLICA: f"sum by ({per_pod}) ({on_pods(power)})",
        Signal.JOULES_PER_TOKEN: f"({aggregate('sum', on_pods(energy, seen))} / {MILLIJOULES_PER_JOULE}) / {tokens}",
        Signal.PROMPT_TOKENS_BUCKETS: shared_buckets(VLLM_PROMPT_TOKENS_HISTOGRAM),
        Signal.GENERATION_TOKENS_BUCKETS: shared_buckets(VLLM_GENERATION_TOKENS_HISTOGRAM),
    }


def build_queries(scheme: LabelScheme, ref: DeploymentRef, windows: QueryWindows) -> dict[Signal, str]:
    """Every signal's PromQL for `ref`, summed (or averaged) over its replicas."""
    return _queries(scheme, windows, vllm_selector(scheme, ref), dcgm_selector(scheme, ref), by=())


# --- Grouped queries: one query per signal per cluster, every deployment at once ------------------
#
# The per-deployment queries above cost one query per signal per deployment: 10 x 1,000 queries a
# cycle for 1,000 deployments. The grouped ones below select every gridshift series of the workload
# namespaces and aggregate `by` the labels that name a deployment (`group_labels`), so a cluster costs
# one query per signal whatever the number of deployments; the answer is split by `group_key`.
# Both are written once, in _queries, and give every deployment the same value
# (tests/signals/test_promql_semantics.py evaluates both on the real engine).


def group_labels(scheme: LabelScheme) -> tuple[str, ...]:
    """Labels that name one deployment's series in a grouped answer (namespace, deployment or model, cluster)."""
    key = scheme.deployment_label if scheme.select_by is SelectBy.DEPLOYMENT_LABEL else scheme.model_name_label
    labels = (scheme.namespace_label, key)
    return (*labels, scheme.cluster_label) if scheme.cluster_label is not None else labels


def group_key(scheme: LabelScheme, ref: DeploymentRef) -> tuple[str, ...]:
    """The values of `group_labels` on the series of `ref`."""
    if scheme.select_by is SelectBy.DEPLOYMENT_LABEL:
        value = deployment_label_value(ref.namespace, ref.name)
    else:
        value = ref.served_model_name
    key = (ref.workload_namespace, value)
    if scheme.cluster_label is not None:
        if ref.cluster is None:
            raise ValueError(f"deployment {ref}: cluster is required when LabelScheme.cluster_label is set")
        return (*key, ref.cluster)
    return key


@dataclass(frozen=True)
class GroupScope:
    """What one grouped query covers: the workload namespaces of one member cluster."""

    workload_namespaces: tuple[str, ...]
    cluster: str | None = None
    """Value of LabelScheme.cluster_label, when one Prometheus holds several clusters."""


def _namespace_matcher(label: str, namespaces: tuple[str, ...]) -> tuple[str, str, str]:
    if len(namespaces) == 1:
        return (label, "=", namespaces[0])
    # Namespaces are DNS labels ([a-z0-9-]), so the alternation needs no escaping beyond '-'.
    return (label, "=~", "|".join(re.escape(n) for n in sorted(namespaces)))


def _scope_matchers(scheme: LabelScheme, scope: GroupScope, namespace_label: str) -> list[tuple[str, str, str]]:
    if not scope.workload_namespaces:
        raise ValueError("a grouped query needs at least one workload namespace")
    matchers = [_namespace_matcher(namespace_label, scope.workload_namespaces)]
    if scheme.cluster_label is not None:
        if scope.cluster is None:
            raise ValueError("cluster is required when LabelScheme.cluster_label is set")
        matchers.append((scheme.cluster_label, "=", scope.cluster))
    return matchers


def _selector(matchers: list[tuple[str, str, str]]) -> str:
    return "{" + ",".join(f"{label}{op}{promql_string(value)}" for label, op, value in matchers) + "}"


def grouped_vllm_selector(scheme: LabelScheme, scope: GroupScope) -> str:
    """The vLLM series of every deployment in `scope` (those carrying the deployment or model label)."""
    key = group_labels(scheme)[1]
    return _selector([*_scope_matchers(scheme, scope, scheme.namespace_label), (key, "!=", "")])


def grouped_dcgm_selector(scheme: LabelScheme, scope: GroupScope) -> str:
    """The DCGM series of the GPUs held by pods of the workload namespaces of `scope`."""
    return _selector(_scope_matchers(scheme, scope, scheme.dcgm_namespace_label))


def build_grouped_queries(scheme: LabelScheme, scope: GroupScope, windows: QueryWindows) -> dict[Signal, str]:
    """Every signal's PromQL for all deployments of `scope` at once, aggregated by `group_labels`."""
    sel = grouped_vllm_selector(scheme, scope)
    return _queries(scheme, windows, sel, grouped_dcgm_selector(scheme, scope), by=group_labels(scheme))
