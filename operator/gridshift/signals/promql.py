"""PromQL for each signal gridshift reads, one builder per signal, per deployment and cluster.

Metric names are the ones vLLM and dcgm-exporter really export (checked against recorded scrapes
by tests/signals/test_promql_names.py). Where vLLM renamed a metric, both names are queried:
the current (V1 engine) name first, the older one only when the current one has no series.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from gridshift.signals.labels import DeploymentRef, LabelScheme, dcgm_selector, join_labels, vllm_selector

# vLLM V1 engine names (vllm/v1/metrics/loggers.py), as in the recorded V1 scrape.
VLLM_REQUEST_SUCCESS = "vllm:request_success_total"
VLLM_PROMPT_TOKENS = "vllm:prompt_tokens_total"
VLLM_GENERATION_TOKENS = "vllm:generation_tokens_total"
VLLM_TTFT_HISTOGRAM = "vllm:time_to_first_token_seconds"
VLLM_ITL_HISTOGRAM = "vllm:inter_token_latency_seconds"
VLLM_REQUESTS_RUNNING = "vllm:num_requests_running"
VLLM_REQUESTS_WAITING = "vllm:num_requests_waiting"
VLLM_KV_CACHE_USAGE = "vllm:kv_cache_usage_perc"

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


def _histogram_quantile(quantile: float, histogram: str, selector: str, window: str) -> str:
    return f"histogram_quantile({quantile}, sum by (le) (rate({histogram}_bucket{selector}[{window}])))"


def _renamed(current: str, legacy: str) -> str:
    # The legacy result is kept only when the current one is empty, so a server exporting both
    # names during the deprecation period is not counted twice.
    return f"({current}) or (({legacy}) unless on () ({current}))"


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


def _replica_pods(scheme: LabelScheme, ref: DeploymentRef) -> str:
    """One series per replica pod of `ref` (vLLM's running gauge, present as soon as vLLM serves)."""
    return f"{VLLM_REQUESTS_RUNNING}{vllm_selector(scheme, ref)}"


def request_rate(scheme: LabelScheme, ref: DeploymentRef, windows: QueryWindows) -> str:
    """Finished requests per second (every finished_reason), summed over replicas."""
    return f"sum(rate({VLLM_REQUEST_SUCCESS}{vllm_selector(scheme, ref)}[{windows.rate_seconds}s]))"


def prompt_token_rate(scheme: LabelScheme, ref: DeploymentRef, windows: QueryWindows) -> str:
    """Prefill tokens per second, summed over replicas."""
    return f"sum(rate({VLLM_PROMPT_TOKENS}{vllm_selector(scheme, ref)}[{windows.rate_seconds}s]))"


def generation_token_rate(scheme: LabelScheme, ref: DeploymentRef, windows: QueryWindows) -> str:
    """Generated (output) tokens per second, summed over replicas."""
    return f"sum(rate({VLLM_GENERATION_TOKENS}{vllm_selector(scheme, ref)}[{windows.rate_seconds}s]))"


def ttft_quantile(scheme: LabelScheme, ref: DeploymentRef, windows: QueryWindows) -> str:
    """p95 time to first token, s, from the histogram pooled over replicas."""
    window = f"{windows.rate_seconds}s"
    return _histogram_quantile(windows.quantile, VLLM_TTFT_HISTOGRAM, vllm_selector(scheme, ref), window)


def itl_quantile(scheme: LabelScheme, ref: DeploymentRef, windows: QueryWindows) -> str:
    """p95 inter-token latency, s, from `inter_token_latency_seconds` or its older name."""
    window = f"{windows.rate_seconds}s"
    selector = vllm_selector(scheme, ref)
    buckets = f"sum by (le) (rate({VLLM_ITL_HISTOGRAM}_bucket{selector}[{window}]))"
    legacy_buckets = f"sum by (le) (rate({VLLM_ITL_HISTOGRAM_LEGACY}_bucket{selector}[{window}]))"
    return f"histogram_quantile({windows.quantile}, {_renamed(buckets, legacy_buckets)})"


def requests_running(scheme: LabelScheme, ref: DeploymentRef, windows: QueryWindows) -> str:
    """Requests in the running batches now, summed over replicas."""
    return f"sum({VLLM_REQUESTS_RUNNING}{vllm_selector(scheme, ref)})"


def requests_waiting(scheme: LabelScheme, ref: DeploymentRef, windows: QueryWindows) -> str:
    """Requests queued now, summed over replicas."""
    return f"sum({VLLM_REQUESTS_WAITING}{vllm_selector(scheme, ref)})"


def kv_cache_usage(scheme: LabelScheme, ref: DeploymentRef, windows: QueryWindows) -> str:
    """Mean KV-cache usage over replicas, as a fraction (1 = full)."""
    selector = vllm_selector(scheme, ref)
    current = f"{VLLM_KV_CACHE_USAGE}{selector}"
    legacy = f"{VLLM_KV_CACHE_USAGE_LEGACY}{selector}"
    return f"avg({_renamed(current, legacy)})"


def watts_per_replica(scheme: LabelScheme, ref: DeploymentRef, windows: QueryWindows) -> str:
    """GPU power, W, summed per replica pod (one series per pod)."""
    on = ", ".join(join_labels(scheme))
    power = _dcgm(f"{DCGM_POWER}{dcgm_selector(scheme, ref)}", scheme)
    return f"sum by ({on}) ({power} and on ({on}) {_replica_pods(scheme, ref)})"


def joules_per_token(scheme: LabelScheme, ref: DeploymentRef, windows: QueryWindows) -> str:
    """GPU energy per generated token over the energy window, J/token, for the whole deployment."""
    on = ", ".join(join_labels(scheme))
    window = f"{windows.energy_seconds}s"
    energy = _dcgm(f"increase({DCGM_TOTAL_ENERGY}{dcgm_selector(scheme, ref)}[{window}])", scheme)
    tokens = f"sum(increase({VLLM_GENERATION_TOKENS}{vllm_selector(scheme, ref)}[{window}]))"
    energy_joules = f"sum({energy} and on ({on}) {_replica_pods(scheme, ref)}) / {MILLIJOULES_PER_JOULE}"
    return f"({energy_joules}) / {tokens}"


QueryBuilder = Callable[[LabelScheme, DeploymentRef, QueryWindows], str]

BUILDERS: dict[Signal, QueryBuilder] = {
    Signal.REQUEST_RATE: request_rate,
    Signal.PROMPT_TOKEN_RATE: prompt_token_rate,
    Signal.GENERATION_TOKEN_RATE: generation_token_rate,
    Signal.TTFT_P95: ttft_quantile,
    Signal.ITL_P95: itl_quantile,
    Signal.REQUESTS_RUNNING: requests_running,
    Signal.REQUESTS_WAITING: requests_waiting,
    Signal.KV_CACHE_USAGE: kv_cache_usage,
    Signal.WATTS_PER_REPLICA: watts_per_replica,
    Signal.JOULES_PER_TOKEN: joules_per_token,
}
"""The PromQL builder of every signal."""

PER_POD_SIGNALS = frozenset({Signal.WATTS_PER_REPLICA})
"""Signals answered with one series per replica pod; every other signal is one number."""


def build_queries(scheme: LabelScheme, ref: DeploymentRef, windows: QueryWindows) -> dict[Signal, str]:
    """Every signal's PromQL for `ref`."""
    return {signal: builder(scheme, ref, windows) for signal, builder in BUILDERS.items()}
