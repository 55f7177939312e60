"""The vLLM V1 metric families the world exports: names, help texts, types and bucket bounds.

Copied from a real vLLM V1 server's /metrics (shared/data/metrics-scrapes/
vllm_v1_metrics_qwen2.5-0.5b_idle_full_scrape.prom); tests/world/test_vllm_metrics.py checks each
against that scrape so a typo here cannot pass.
"""

from __future__ import annotations

from dataclasses import dataclass

_LATENCY_BUCKETS = (
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
    60.0,
    120.0,
    240.0,
    480.0,
    960.0,
    1920.0,
    7680.0,
)
_TOKEN_LATENCY_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
)
_TOKEN_COUNT_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0)


@dataclass(frozen=True)
class HistogramFamily:
    name: str
    help: str
    buckets: tuple[float, ...]
    """Upper bounds without +Inf."""


TTFT = HistogramFamily(
    "vllm:time_to_first_token_seconds",
    "Histogram of time to first token in seconds.",
    (
        0.001,
        0.005,
        0.01,
        0.02,
        0.04,
        0.06,
        0.08,
        0.1,
        0.25,
        0.5,
        0.75,
        1.0,
        2.5,
        5.0,
        7.5,
        10.0,
        20.0,
        40.0,
        80.0,
        160.0,
        640.0,
        2560.0,
    ),
)
ITL = HistogramFamily(
    "vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", _TOKEN_LATENCY_BUCKETS
)
TPOT_PER_REQUEST = HistogramFamily(
    "vllm:request_time_per_output_token_seconds",
    "Histogram of time_per_output_token_seconds per request.",
    _TOKEN_LATENCY_BUCKETS,
)
E2E = HistogramFamily(
    "vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", _LATENCY_BUCKETS
)
QUEUE = HistogramFamily(
    "vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.", _LATENCY_BUCKETS
)
INFERENCE = HistogramFamily(
    "vllm:request_inference_time_seconds", "Histogram of time spent in RUNNING phase for request.", _LATENCY_BUCKETS
)
PREFILL = HistogramFamily(
    "vllm:request_prefill_time_seconds", "Histogram of time spent in PREFILL phase for request.", _LATENCY_BUCKETS
)
DECODE = HistogramFamily(
    "vllm:request_decode_time_seconds", "Histogram of time spent in DECODE phase for request.", _LATENCY_BUCKETS
)
PROMPT_TOKENS_HIST = HistogramFamily(
    "vllm:request_prompt_tokens", "Number of prefill tokens processed.", _TOKEN_COUNT_BUCKETS
)
GENERATION_TOKENS_HIST = HistogramFamily(
    "vllm:request_generation_tokens", "Number of generation tokens processed.", _TOKEN_COUNT_BUCKETS
)

HISTOGRAMS: tuple[HistogramFamily, ...] = (
    TTFT,
    ITL,
    TPOT_PER_REQUEST,
    E2E,
    QUEUE,
    INFERENCE,
    PREFILL,
    DECODE,
    PROMPT_TOKENS_HIST,
    GENERATION_TOKENS_HIST,
)

NUM_REQUESTS_RUNNING = ("vllm:num_requests_running", "Number of requests in model execution batches.")
NUM_REQUESTS_WAITING = ("vllm:num_requests_waiting", "Number of requests waiting to be processed.")
KV_CACHE_USAGE = ("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.")
PROMPT_TOKENS = ("vllm:prompt_tokens", "Number of prefill tokens processed.")
GENERATION_TOKENS = ("vllm:generation_tokens", "Number of generation tokens processed.")
REQUEST_SUCCESS = ("vllm:request_success", "Count of successfully processed requests.")
"""Counters are named without `_total`: prometheus_client appends it (and writes `_created`), as in vLLM."""
FINISHED_REASONS = ("stop", "length", "abort", "error", "repetition")
"""vLLM writes every reason's series from start-up; the trace's requests all finish with `stop`."""
ENGINE = "0"
"""vLLM's `engine` label: the engine core index, 0 for a single-engine server."""
