"""Through Prometheus, with the operator's own PromQL: the world's series answer as a real fleet's would.

No clusters: fake regions, the real exporters, a private Prometheus (/usr/bin/prometheus).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from e2e.world.fleet import LoadSpec
from e2e.world.prometheus import scrape_configs
from e2e.world.world import World, WorldSettings

from gridshift.signals.labels import DeploymentRef, LabelScheme
from gridshift.signals.metrics import PrometheusMetricsSource
from gridshift.signals.promql import PER_BUCKET_SIGNALS, PER_POD_SIGNALS, QueryWindows, Signal
from gridshift.signals.settings import MetricsSettings

from .conftest import fake_cluster, managed_pod

WINDOW_S = 20


def test_operator_signals_follow_the_profile(local_prometheus: Callable[..., Any]) -> None:
    regions = {name: fake_cluster(name, nodes=1) for name in ("eu-de", "eu-fr", "us-tx")}
    for index in range(3):
        regions["eu-de"].add_pod(managed_pod(f"chat-{index}", created=f"2024-06-03T00:00:0{index}Z"))
    regions["eu-fr"].add_pod(managed_pod("chat-fr"))
    # ~8 requests/s per replica of the conversation trace: an H100 near its prefill limit, batch 15-40.
    settings = WorldSettings(speed=180, default_load=LoadSpec(rate_per_s=32.0))
    with World(settings, readers=regions) as world:
        prometheus = local_prometheus(
            scrape_interval="1s", extra_scrape_configs=scrape_configs(world.endpoints()["exporters"])
        )
        windows = QueryWindows(rate_seconds=WINDOW_S, energy_seconds=WINDOW_S)
        source = PrometheusMetricsSource(
            prometheus.url, settings=MetricsSettings(labels=LabelScheme(cluster_label="cluster"), windows=windows)
        )
        ref = DeploymentRef("default", "chat", "workloads", "llama-3-8b", cluster="eu-de")
        time.sleep(8)
        with world.fleet.lock:
            slots = np.array([r.slot for r in world.fleet.replicas.values() if r.cluster == "eu-de"])
            marks = world.fleet.engine.batch_marks(slots)
            real0, sim0 = time.monotonic(), world.fleet.now_s
        time.sleep(WINDOW_S)
        with world.fleet.lock:
            batch = world.fleet.engine.mean_batch(slots, marks)
        signals = source.deployment_signals(ref, datetime.now(UTC))
        # Counters advance by the real time each step took to simulate, so rates read right even when
        # a busy machine makes the simulation run slower than the clock.
        pace = (world.fleet.now_s - sim0) / ((time.monotonic() - real0) * world.clock.speed)
        status = world.status()
        pods = {r["pod"] for r in status["replicas"] if r["cluster"] == "eu-de"}

    assert pace > 0.7, f"the simulation ran at {pace:.0%} of the clock"
    keyed = PER_POD_SIGNALS | PER_BUCKET_SIGNALS
    values = {s: v for s in Signal if s not in keyed and (v := signals.scalar(s)) is not None}
    assert not signals.missing, f"signals without data: {signals.missing}"
    # vLLM's token histograms, read per bucket: every request counted once in the +Inf bucket.
    prompt_buckets = signals.buckets(Signal.PROMPT_TOKENS_BUCKETS)
    assert prompt_buckets[-1][0] == float("inf") and prompt_buckets[-1][1] > 0
    assert [count for _, count in prompt_buckets] == sorted(count for _, count in prompt_buckets)
    # eu-de holds 3 of the 4 replicas, so ~3/4 of 36 requests per simulated second; rate() per real
    # second equals the rate per simulated second, whatever the simulation's pace.
    assert values[Signal.REQUEST_RATE] == pytest.approx(24.0, rel=0.25)
    assert values[Signal.PROMPT_TOKEN_RATE] / values[Signal.REQUEST_RATE] == pytest.approx(1155, rel=0.25)
    assert values[Signal.GENERATION_TOKEN_RATE] / values[Signal.REQUEST_RATE] == pytest.approx(211, rel=0.3)
    catalog_perf = world.fleet.catalog.performance("NVIDIA-H100-80GB-HBM3", 1)
    step = catalog_perf.model.step_time_ms(batch, 1155 + 105) / 1000
    # p95 inter-token latency: between the plain decode step and a step carrying a full prefill
    # chunk (vLLM's chunked prefill, 2048 prompt tokens per step), bucket edges allowing.
    chunk = settings.max_num_batched_tokens / catalog_perf.model.prefill_tokens_per_s
    assert step * 0.9 <= values[Signal.ITL_P95] <= (step + chunk) * 1.3
    # p95 time to first token: at least one mean prompt's prefill; queueing behind the trace's
    # bursts near saturation adds seconds, as it would on a real replica.
    assert 1155 / catalog_perf.model.prefill_tokens_per_s < values[Signal.TTFT_P95] < 15.0
    assert set(signals.per_pod(Signal.WATTS_PER_REPLICA)) == pods
    for watts in signals.per_pod(Signal.WATTS_PER_REPLICA).values():
        assert catalog_perf.model.idle_power_watts < watts <= catalog_perf.prefill_power_watts
    expected = catalog_perf.joules_per_output_token(batch, 1155 + 105, 1155 / 211)
    assert values[Signal.JOULES_PER_TOKEN] == pytest.approx(expected, rel=0.2)
    assert batch > 16
