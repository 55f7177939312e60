"""service.inputs: hub bodies, clusters, prices, placements and demand as the planner's Snapshot needs them.

Two fail-safes live here: missing metrics give unknown demand (never a smaller or zero one), and
stale or missing prices are flagged stale (never dropped, never taken as fresh). Demand from metrics
is finished requests plus the queue that an overloaded fleet builds.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from gridshift.actuation.members import GpuInventory, Inventory, WorkloadState
from gridshift.api import GPUProfile, InferenceDeployment, RegionalCluster
from gridshift.api.carbon import CarbonBasis
from gridshift.api.regional_cluster import EnergyUnit, Money, usd_per_gpu_hour
from gridshift.modes import MigrationMode
from gridshift.planner import snapshot as S
from gridshift.service.inputs import (
    MeasuredCost,
    ParseCache,
    Parsed,
    carbon_horizon,
    measured_cost,
    observed_demand,
    parse_bodies,
    placements_of,
    planner_cluster,
    price_horizon,
    profile_uses,
    profiles_from,
    requirements_of,
    selector_of,
)
from gridshift.signals.carbon import CarbonInterval, CarbonSeries
from gridshift.signals.carbon_service import CarbonReading
from gridshift.signals.labels import DeploymentRef
from gridshift.signals.metrics import DeploymentSignals, ImplausibleDemand, UnreportedReplicas
from gridshift.signals.price_service import PriceReading
from gridshift.signals.prices import PriceInterval, PriceKind, PriceSeries
from gridshift.signals.promql import Signal
from tests.conftest import REPO_ROOT
from tests.service.harness import H100, cluster_body, deployment_body, example_profile

REF = DeploymentRef("ml", "chat", "w", "chat")
AT = datetime(2024, 6, 3, tzinfo=UTC)


def idep(source: str = "Prometheus") -> object:
    from gridshift.api import InferenceDeployment

    body = deployment_body()
    body["spec"]["demand"] = {"source": source, "requestsPerSecond": 3.0} if source == "Static" else {}
    return InferenceDeployment.model_validate(body)


def signals(rate: float, waiting: float, prompt: float, generated: float) -> DeploymentSignals:
    return DeploymentSignals(
        REF,
        AT,
        {
            Signal.REQUEST_RATE: rate,
            Signal.REQUESTS_WAITING: waiting,
            Signal.PROMPT_TOKEN_RATE: prompt,
            Signal.GENERATION_TOKEN_RATE: generated,
        },
    )


def test_rates_add_up_over_clusters_with_token_means() -> None:
    demand = observed_demand(idep(), [signals(2.0, 0, 2000, 400), signals(1.0, 0, 1000, 200)], 300)  # type: ignore[arg-type]
    assert demand.requests_per_second == 3.0
    assert demand.mean_prompt_tokens == 1000 and demand.mean_output_tokens == 200


def test_a_queue_raises_the_demand_estimate() -> None:
    calm = observed_demand(idep(), [signals(2.0, 0, 2000, 400)], 300)  # type: ignore[arg-type]
    queued = observed_demand(idep(), [signals(2.0, 600, 2000, 400)], 300)  # type: ignore[arg-type]
    assert calm.requests_per_second == 2.0 and queued.requests_per_second == 4.0
    # Found in review: the token rates (finished requests only) were divided by the rate with the queue in
    # it, so a queue halved the mean sizes (500 and 100 here) and raised a replica's capacity.
    assert (queued.mean_prompt_tokens, queued.mean_output_tokens) == (1000, 200)
    assert (calm.mean_prompt_tokens, calm.mean_output_tokens) == (1000, 200)


def test_a_queue_never_lowers_the_replicas_it_needs() -> None:
    from gridshift.planner.capacity import replica_capacity
    from gridshift.planner.settings import PlannerSettings

    def replicas(waiting: float) -> int:
        # 20 finished req/s of 1000 prompt + 200 output tokens each.
        demand = observed_demand(prometheus_idep(), [signals(20.0, waiting, 20_000, 4000)], 300)
        assert demand.requests_per_second is not None
        capacity = replica_capacity(
            example_profile(),
            mean_prompt_tokens=demand.mean_prompt_tokens,
            mean_output_tokens=demand.mean_output_tokens,
            tpot_slo_ms=50,
            ttft_slo_ms=500,
            settings=PlannerSettings(),
        ).requests_per_second
        return math.ceil(demand.requests_per_second / capacity)

    # Before the fix: 6 replicas without a queue, 3 with 6,000 waiting (means halved, capacity 4.4x).
    counts = [replicas(w) for w in (0, 600, 6000)]
    assert counts == sorted(counts) and counts[0] < counts[-1], counts


def token_histogram(max_model_len: int, sizes: list[float]) -> dict[str, float]:
    """A replica's token histogram as vLLM exports it: edges 1, 2, 5, ... up to its --max-model-len."""
    edges = [m * 10.0**e for e in range(10) for m in (1, 2, 5) if m * 10.0**e <= max_model_len]
    return {**{str(e): float(sum(1 for s in sizes if s <= e)) for e in edges}, "+Inf": float(len(sizes))}


def histogram_cluster(max_model_len: int, prompts: list[float]) -> DeploymentSignals:
    """One cluster's 1 req/s and token histograms: `prompts`, each with 200 output tokens."""
    values: dict[Signal, Any] = {
        Signal.REQUEST_RATE: 1.0,
        Signal.PROMPT_TOKENS_BUCKETS: token_histogram(max_model_len, prompts),
        Signal.GENERATION_TOKENS_BUCKETS: token_histogram(max_model_len, [200] * len(prompts)),
    }
    return DeploymentSignals(REF, AT, values)


def two_class_body() -> dict[str, Any]:
    """A measured Llama-3.1-8B deployment planned by two request classes (short and long prompts)."""
    body = deployment_body()
    body["spec"]["model"]["source"] = "meta-llama/Llama-3.1-8B-Instruct"
    body["spec"]["demand"] = {
        "source": "Prometheus",
        "requestClasses": [
            {"name": "short", "promptTokens": 300, "outputTokens": 150, "share": 0.5},
            {"name": "long", "promptTokens": 6000, "outputTokens": 300, "share": 0.5},
        ],
    }
    return body


def test_clusters_token_histograms_with_different_edges_make_no_class_above_the_model() -> None:
    # Found in review: an L4 cluster (--max-model-len 27,632, edges to 20,000) and an H100 one (131,072,
    # edges to 100,000), summed edge by edge, made a 141,421-token class out of the H100's 30,000-token
    # prompts, above the model's 131,072 (capacity 0 on every GPU type).
    body = two_class_body()
    l4, h100 = histogram_cluster(27_632, [500] * 900), histogram_cluster(131_072, [30_000] * 100)
    demand = observed_demand(InferenceDeployment.model_validate(body), [l4, h100], 300)
    sizes = [(round(c.share, 3), c.prompt_tokens, c.prompt_p95_tokens) for c in demand.request_classes]
    assert [share for share, _, _ in sizes] == [0.9, 0.1], sizes
    # The H100's prompts are past the edges both clusters share (20,000): between 20,000 and 40,000.
    assert 20_000 < sizes[1][1] < 40_000 and sizes[1][2] == 40_000, sizes
    # Past the H100's last edge (100,000), no longer than the model's longest sequence.
    longest = observed_demand(InferenceDeployment.model_validate(body), [histogram_cluster(131_072, [120_000])], 300)
    assert [(c.prompt_p95_tokens, c.prompt_tokens < 131_072) for c in longest.request_classes] == [(131_072, True)]
    # Planning by class is opt-in: without requestClasses, no classes whatever the histograms say.
    del body["spec"]["demand"]["requestClasses"]
    assert observed_demand(InferenceDeployment.model_validate(body), [l4, h100], 300).request_classes == ()


def test_a_token_histogram_failed_in_one_cluster_leaves_the_measured_classes_unknown() -> None:
    # Found in review: the H100 cluster's prompt histogram query failed (a tenant's series over the answer cap) and
    # the classes were rebuilt from the L4's short prompts alone, the long class gone while the rate counted both.
    body = two_class_body()
    idep = InferenceDeployment.model_validate(body)
    l4, h100 = histogram_cluster(27_632, [500] * 900), histogram_cluster(131_072, [30_000] * 100)
    assert len(observed_demand(idep, [l4, h100], 300).request_classes) == 2
    for histogram in (Signal.PROMPT_TOKENS_BUCKETS, Signal.GENERATION_TOKENS_BUCKETS):
        values = {s: v for s, v in h100.values.items() if s is not histogram}
        failed = DeploymentSignals(REF, AT, values, failed={histogram: "body larger than 67108864 bytes"})
        demand = observed_demand(idep, [l4, failed], 300)
        # No classes measured (the spec's apply: planner.problem.classes_of); the rate still counts both clusters.
        assert demand.request_classes == () and demand.requests_per_second == 2.0, histogram


def test_the_longest_sequence_is_the_models_most_over_its_builds_and_unknown_for_an_unknown_model() -> None:
    from gridshift.service.inputs import longest_sequence

    body = deployment_body()
    assert longest_sequence(InferenceDeployment.model_validate(body).spec) == 8192  # Meta-Llama-3-8B-Instruct
    body["spec"]["variants"] = [{"name": "long", "profileModel": "x", "source": "meta-llama/Llama-3.1-8B-Instruct"}]
    assert longest_sequence(InferenceDeployment.model_validate(body).spec) == 131_072
    body["spec"]["variants"].append({"name": "mine", "profileModel": "x", "source": "someone/unknown-model"})
    assert longest_sequence(InferenceDeployment.model_validate(body).spec) is None


def test_the_longest_sequence_is_the_longest_max_model_len_rendered_on_the_gpu_types_it_may_run_on() -> None:
    # Found in review: the cap was the model's maximum (131,072), not the --max-model-len its replicas run: on an
    # L4 (27,632, edges to 20,000) prompts of 20,000-27,632 tokens became a class of p95 40,000, which
    # an L4 replica cannot batch (max_batch 0), so the deployment got no capacity there.
    from gridshift.profiles_catalog import kv_memory_for
    from gridshift.service.inputs import longest_sequence, max_model_len

    model, l4 = "meta-llama/Llama-3.1-8B-Instruct", "NVIDIA-L4"
    body = deployment_body()
    body["spec"]["model"]["source"] = model
    body["spec"]["replica"]["gpuTypes"] = [l4]
    body["spec"]["demand"] = {
        "source": "Prometheus",
        "requestClasses": [{"name": "all", "promptTokens": 300, "outputTokens": 150, "share": 1.0}],
    }
    spec = InferenceDeployment.model_validate(body).spec
    assert longest_sequence(spec) == max_model_len(spec, "", l4) == 27_632  # what the renderer gives vLLM
    demand = observed_demand(InferenceDeployment.model_validate(body), [histogram_cluster(27_632, [25_000] * 10)], 300)
    (long,) = demand.request_classes
    assert 20_000 < long.prompt_tokens < long.prompt_p95_tokens == 27_632
    kv = kv_memory_for(model, l4, 1)
    assert kv is not None and kv.max_batch(long.prompt_tokens + long.output_tokens) >= 1  # as the planner asks
    # A GPU type that takes the model's whole length raises the cap to it; one the weights do not fit is left out.
    body["spec"]["replica"]["gpuTypes"] = [l4, H100]
    assert longest_sequence(InferenceDeployment.model_validate(body).spec) == 131_072
    body["spec"]["model"]["source"] = "meta-llama/Llama-3.1-70B-Instruct"
    body["spec"]["replica"]["gpusPerReplica"] = 2
    assert longest_sequence(InferenceDeployment.model_validate(body).spec) == 25_808  # two H100s; two L4s: none
    body["spec"]["replica"]["gpuTypes"] = [l4]  # runs nowhere: the model's maximum, as before
    assert longest_sequence(InferenceDeployment.model_validate(body).spec) == 131_072


def test_a_variant_with_weights_of_its_own_runs_the_max_model_len_of_those_weights() -> None:
    # The base build (Llama-3 8B, 8,192 tokens) fits an L4 whole; the variant's Llama-3.1 8B (131,072) does not: its
    # replicas there get the --max-model-len of its own weights, and that caps the longest sequence.
    from gridshift.service.inputs import longest_sequence, max_model_len

    l4 = "NVIDIA-L4"
    body = deployment_body()
    body["spec"]["replica"]["gpuTypes"] = [l4]
    body["spec"]["variants"] = [{"name": "long", "profileModel": "x", "source": "meta-llama/Llama-3.1-8B-Instruct"}]
    spec = InferenceDeployment.model_validate(body).spec
    assert max_model_len(spec, "", l4) is None  # vLLM's default: the model's own 8,192
    assert max_model_len(spec, "long", l4) == 27_632
    assert longest_sequence(spec) == 27_632


def test_the_longest_sequence_is_the_users_own_max_model_len_where_their_args_set_one() -> None:
    # Found in review: the +Inf bucket was capped at the model's 131,072 tokens while the user's args ran
    # replicas of 8,192, so the long requests' class was planned longer than any replica takes.
    from gridshift.service.inputs import longest_sequence, user_max_model_len

    body = deployment_body()
    body["spec"]["model"]["source"] = "meta-llama/Llama-3.1-8B-Instruct"
    body["spec"]["replica"]["gpuTypes"] = [H100, "NVIDIA-L4"]
    assert longest_sequence(InferenceDeployment.model_validate(body).spec) == 131_072
    for args, length in (
        (["--max-model-len", "8192"], 8192),
        (["--max_model_len=16k"], 16_000),
        (["--max-model", "16K"], 16_384),  # an abbreviation vLLM's parser takes
        (["--max-model-len", "4096", "--enforce-eager", "--max-model-len=12288"], 12_288),  # the last one wins
        (["--max-model-len=1"], 1),  # the shortest length vLLM takes
    ):
        body["spec"]["engine"] = {"extraArgs": args}
        spec = InferenceDeployment.model_validate(body).spec
        assert user_max_model_len(spec, "") == length, args
        assert longest_sequence(spec) == length, args  # on the L4 too, where gridshift would render 27,632
    # What vLLM would not read as a length leaves the rendered or model maximum, never a guess.
    for args in (["--max-model-len", "-1"], ["--max-model-len", "auto"], ["--max-model-len"]):
        body["spec"]["engine"] = {"extraArgs": args}
        assert longest_sequence(InferenceDeployment.model_validate(body).spec) == 131_072, args
    # A variant's own args set its own builds' length; the base build keeps the model's.
    body["spec"]["engine"] = {}
    body["spec"]["variants"] = [
        {
            "name": "short",
            "profileModel": "x",
            "source": "meta-llama/Llama-3.1-8B-Instruct",
            "extraArgs": ["--max-model-len=2048"],
        }
    ]
    spec = InferenceDeployment.model_validate(body).spec
    assert user_max_model_len(spec, "short") == 2048 and user_max_model_len(spec, "") is None
    assert longest_sequence(spec) == 131_072


def test_with_none_finished_a_queue_keeps_the_spec_means() -> None:
    # Tokens of requests still running, none finished: no measured mean, so the spec's (700 and 150).
    queued = observed_demand(prometheus_idep(), [signals(0.0, 600, 50, 10)], 300)
    assert queued == S.ObservedDemand(2.0, 700, 150)


def test_the_means_are_held_to_the_apis_bound_over_the_finished_requests() -> None:
    # 0.5 finished req/s and a queue worth 0.5 more: 1.5e6 prompt tokens/s are a mean of 3e6 tokens over the
    # requests they were counted for (above the bound, 2e6), though only 1.5e6 over the rate with the queue.
    with pytest.raises(ImplausibleDemand, match="mean prompt length above 2,000,000"):
        observed_demand(prometheus_idep(), [signals(0.5, 150, 1.5e6, 100)], 300)
    # Exactly the bound is within it.
    at_bound = observed_demand(prometheus_idep(), [signals(0.5, 150, 1e6, 100)], 300)
    assert at_bound == S.ObservedDemand(1.0, 2e6, 200.0)


def test_no_traffic_makes_no_classes_whatever_the_histograms_hold() -> None:
    body = deployment_body()
    body["spec"]["demand"] = {
        "source": "Prometheus",
        "meanPromptTokens": 700,
        "meanOutputTokens": 150,
        "requestClasses": [
            {"name": "short", "promptTokens": 300, "outputTokens": 150, "share": 0.5},
            {"name": "long", "promptTokens": 6000, "outputTokens": 300, "share": 0.5},
        ],
    }
    quiet = DeploymentSignals(REF, AT, {**histogram_cluster(27_632, [500] * 10).values, Signal.REQUEST_RATE: 0.0})
    assert observed_demand(InferenceDeployment.model_validate(body), [quiet], 300) == S.ObservedDemand(0.0, 700, 150)


def test_missing_metrics_mean_unknown_demand_and_static_ignores_metrics() -> None:
    missing = DeploymentSignals(REF, AT, {})
    assert observed_demand(idep(), [missing], 300).requests_per_second is None  # type: ignore[arg-type]
    assert observed_demand(idep("Static"), [], 300).requests_per_second == 3.0  # type: ignore[arg-type]


def test_measured_cost_weights_joules_by_token_rate() -> None:
    from gridshift.service.inputs import measured_cost

    a = DeploymentSignals(REF, AT, {Signal.GENERATION_TOKEN_RATE: 300.0, Signal.JOULES_PER_TOKEN: 0.2})
    b = DeploymentSignals(REF, AT, {Signal.GENERATION_TOKEN_RATE: 100.0, Signal.JOULES_PER_TOKEN: 0.6})
    measured = measured_cost([a, b])
    assert measured is not None
    assert measured.generation_tokens_per_second == 400.0
    assert measured.joules_per_token == 0.3
    assert measured_cost([]) is None and measured_cost(None) is None


def test_measured_cost_by_cluster_keeps_each_clusters_token_rate_where_it_has_one() -> None:
    # status.cost's usdPerMillionTokens is over the clusters' rates whose replicas it prices (test_measured_unpriced).
    from gridshift.service.inputs import measured_cost_by_cluster

    b = DeploymentSignals(REF, AT, {Signal.GENERATION_TOKEN_RATE: 100.0, Signal.JOULES_PER_TOKEN: 0.6})
    a = DeploymentSignals(REF, AT, {Signal.GENERATION_TOKEN_RATE: 300.0, Signal.JOULES_PER_TOKEN: 0.2})
    silent = DeploymentSignals(REF, AT, {Signal.JOULES_PER_TOKEN: 0.4})  # no token rate: not listed
    measured = measured_cost_by_cluster({"b": b, "c": silent, "a": a})
    assert measured is not None and measured.tokens_by_cluster == (("a", 300.0), ("b", 100.0))
    assert measured.generation_tokens_per_second == 400.0 and measured.joules_per_token == 0.3
    assert measured_cost_by_cluster({}) is None and measured_cost_by_cluster(None) is None


# --- fail-safe: missing metrics give unknown demand, never zero -------------------------------------------


def prometheus_idep() -> InferenceDeployment:
    """Prometheus demand with token means of its own, so a fallback to them is told apart."""
    body = deployment_body()
    body["spec"]["demand"] = {"source": "Prometheus", "meanPromptTokens": 700, "meanOutputTokens": 150}
    return InferenceDeployment.model_validate(body)


def test_a_cluster_without_a_request_rate_makes_the_whole_demand_unknown_not_smaller() -> None:
    # Summing what is there would plan for less than the real load: the planner then never scales
    # below the Ready count, and status says MetricsStale.
    partial = DeploymentSignals(REF, AT, {Signal.REQUESTS_WAITING: 50.0, Signal.PROMPT_TOKEN_RATE: 900.0})
    for measured in ([signals(2.0, 0, 2000, 400), partial], [partial], []):
        assert observed_demand(prometheus_idep(), measured, 300) == S.ObservedDemand(None, 700, 150)


def reporting(measured: DeploymentSignals, pods: float) -> DeploymentSignals:
    return DeploymentSignals(measured.deployment, AT, {**measured.values, Signal.REPLICAS_REPORTING: pods})


def test_fewer_pods_reporting_than_are_ready_make_the_demand_unknown_and_say_why() -> None:
    # Found in review (a real Prometheus): one of two pods whose /metrics scrape failed (it still served) made
    # 20 req/s read 9.99, and the planner scaled 16 replicas to 10 on the half it saw.
    de, fr = reporting(signals(2.0, 0, 2000, 400), 2), reporting(signals(1.0, 0, 1000, 200), 1)
    measured = observed_demand(prometheus_idep(), [de, fr], 300)
    # Every Ready pod reports (or more: one not Ready yet, or terminating): the demand as before.
    for ready in ([("eu-de", 2), ("eu-fr", 1)], [("eu-de", 1), ("eu-fr", 0)]):
        assert observed_demand(prometheus_idep(), [de, fr], 300, ready) == measured == S.ObservedDemand(3.0, 1000, 200)
    with pytest.raises(UnreportedReplicas, match=r"^3 Ready replicas in eu-fr, 1 reporting vLLM metrics$"):
        observed_demand(prometheus_idep(), [de, fr], 300, [("eu-de", 2), ("eu-fr", 3)])
    # No pod reporting at all (every scrape failing: the rates linger over their window, the gauge does not).
    with pytest.raises(UnreportedReplicas, match=r"^2 Ready replicas in eu-de, 0 reporting"):
        observed_demand(prometheus_idep(), [signals(2.0, 0, 2000, 400)], 300, [("eu-de", 2)])
    # Static demand reads no metrics.
    static = InferenceDeployment.model_validate(deployment_body(rps=3.0))
    assert observed_demand(static, [de], 300, [("eu-de", 5)]).requests_per_second == 3.0


def test_static_demand_is_the_spec_whatever_the_metrics_say() -> None:
    body = deployment_body()
    body["spec"]["demand"] = {
        "source": "Static",
        "requestsPerSecond": 3.0,
        "meanPromptTokens": 700,
        "meanOutputTokens": 150,
    }
    static = InferenceDeployment.model_validate(body)
    assert observed_demand(static, [signals(9.0, 90, 1, 1)], 300) == S.ObservedDemand(3.0, 700, 150)
    assert observed_demand(static, [], 300) == S.ObservedDemand(3.0, 700, 150)


def test_no_traffic_at_all_is_zero_demand_with_the_spec_token_means() -> None:
    quiet = signals(0.0, 0, 0, 0)
    assert observed_demand(prometheus_idep(), [quiet, quiet], 300) == S.ObservedDemand(0.0, 700, 150)
    # Token counters rated over a window that still holds the last request: no division by zero.
    tail = signals(0.0, 0, 50, 10)
    assert observed_demand(prometheus_idep(), [tail], 300) == S.ObservedDemand(0.0, 700, 150)


def test_token_means_are_measured_tokens_per_request_and_fall_back_per_field() -> None:
    # 0.5 req/s with 0.5 prompt and 0.25 generated tokens/s: tiny, but measured, so used as they are.
    tiny = observed_demand(prometheus_idep(), [signals(0.5, 0, 0.5, 0.25)], 300)
    assert tiny == S.ObservedDemand(0.5, 1.0, 0.5)
    # A cluster that reports no token rates adds nothing to them (not one token per second).
    bare = DeploymentSignals(REF, AT, {Signal.REQUEST_RATE: 1.0})
    both = observed_demand(prometheus_idep(), [signals(1.0, 0, 1000, 200), bare], 300)
    assert both == S.ObservedDemand(2.0, 500.0, 100.0)
    # No prompt tokens measured: the spec's mean, while output tokens are measured.
    no_prompt = observed_demand(prometheus_idep(), [signals(2.0, 0, 0, 300)], 300)
    assert no_prompt == S.ObservedDemand(2.0, 700, 150.0)
    no_output = observed_demand(prometheus_idep(), [signals(2.0, 0, 1200, 0)], 300)
    assert no_output == S.ObservedDemand(2.0, 600.0, 150)


def test_the_queue_is_drained_over_the_default_drain_time() -> None:
    queued = observed_demand(prometheus_idep(), [signals(2.0, 600, 2000, 400)])
    assert queued.requests_per_second == 4.0


# --- fail-safe: stale prices are flagged, never dropped or taken as fresh -----------------------------------


def reading(*, stale: bool, series: bool = True, fx: float = 1.08) -> PriceReading:
    start = datetime(2024, 6, 3, 10, tzinfo=UTC)
    intervals = (
        PriceInterval(start, start + timedelta(hours=1), 100.0, "EUR", EnergyUnit.MWH, PriceKind.ACTUAL),
        PriceInterval(
            start + timedelta(hours=1), start + timedelta(hours=2), 0.2, "EUR", EnergyUnit.KWH, PriceKind.FORECAST
        ),
    )
    return PriceReading("eu-de", PriceSeries("eu-de", intervals, start) if series else None, stale, None, start, fx)


def test_prices_are_converted_once_to_usd_per_kwh_and_forecasts_marked() -> None:
    horizon = price_horizon(reading(stale=False))
    assert not horizon.stale
    assert [(i.start.hour, i.end.hour, i.forecast) for i in horizon.intervals] == [(10, 11, False), (11, 12, True)]
    assert [i.usd_per_kwh for i in horizon.intervals] == pytest.approx([0.108, 0.216])


def test_a_stale_reading_keeps_its_prices_and_is_flagged() -> None:
    horizon = price_horizon(reading(stale=True))
    assert horizon.stale and len(horizon.intervals) == 2


def test_no_reading_or_no_series_is_stale_with_no_prices() -> None:
    for nothing in (None, reading(stale=False, series=False), reading(stale=True, series=False)):
        assert price_horizon(nothing) == S.PriceHorizon(intervals=(), stale=True)


def carbon_reading(*, stale: bool, series: bool = True) -> CarbonReading:
    start = datetime(2024, 6, 3, 10, tzinfo=UTC)
    intervals = (
        CarbonInterval(start, start + timedelta(hours=1), 320.0, CarbonBasis.DIRECT, PriceKind.ACTUAL),
        CarbonInterval(
            start + timedelta(hours=1), start + timedelta(hours=2), 180.0, CarbonBasis.DIRECT, PriceKind.FORECAST
        ),
    )
    feed = CarbonSeries("eu-de", intervals, start) if series else None
    return CarbonReading("eu-de", feed, stale, None, start, CarbonBasis.DIRECT)


def test_carbon_intensities_are_carried_over_with_forecasts_marked_and_staleness_flagged() -> None:
    for stale in (False, True):
        horizon = carbon_horizon(carbon_reading(stale=stale))
        assert horizon.stale is stale
        assert [(i.start.hour, i.end.hour, i.g_per_kwh, i.forecast) for i in horizon.intervals] == [
            (10, 11, 320.0, False),
            (11, 12, 180.0, True),
        ]


def test_no_carbon_reading_or_no_series_is_stale_with_no_intensities() -> None:
    for nothing in (None, carbon_reading(stale=False, series=False), carbon_reading(stale=True, series=False)):
        assert carbon_horizon(nothing) == S.CarbonHorizon(intervals=(), stale=True)


# --- hub bodies, clusters, placements, profiles, measured cost ------------------------------------------------


def test_bodies_are_parsed_by_key_sorted_and_errors_name_every_field() -> None:
    bad = deployment_body("chat")
    bad["spec"]["capacity"] = {"minReplicas": -1, "maxReplicas": 0}
    good = deployment_body("alpha")
    good["status"] = {"anything": "the status is not validated here"}
    parsed = parse_bodies([bad, good], InferenceDeployment)
    assert [(p.key, p.resource is not None, p.error) for p in parsed] == [
        ("ml/alpha", True, None),
        (
            "ml/chat",
            False,
            "spec.capacity.minReplicas: Input should be greater than or equal to 0; "
            "spec.capacity.maxReplicas: Input should be greater than or equal to 1",
        ),
    ]
    assert parsed[1].body is bad and parsed[0].body is good
    assert parsed[0].resource is not None and parsed[0].resource.metadata["name"] == "alpha"
    [cluster] = parse_bodies([cluster_body("eu-de")], RegionalCluster)
    assert cluster.key == "eu-de" and cluster.resource is not None


def test_a_body_of_another_version_or_kind_is_refused_naming_the_field() -> None:
    other_version = {**deployment_body(), "apiVersion": "gridshift.dev/v2"}
    other_kind = {**deployment_body(), "kind": "GPUProfile"}
    assert parse_bodies([other_version], InferenceDeployment)[0].error == (
        "apiVersion: Input should be 'gridshift.dev/v1alpha1'"
    )
    assert parse_bodies([other_kind], InferenceDeployment)[0].error == "kind: Input should be 'InferenceDeployment'"


def test_bodies_are_validated_again_only_when_their_resource_version_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    validated: list[str] = []
    original = InferenceDeployment.model_validate.__func__  # type: ignore[attr-defined]

    def counting(cls: Any, obj: Any, *args: Any, **kwargs: Any) -> Any:
        validated.append(obj["metadata"]["name"])
        return original(cls, obj, *args, **kwargs)

    monkeypatch.setattr(InferenceDeployment, "model_validate", classmethod(counting))
    cache = ParseCache(InferenceDeployment)
    alpha, chat = deployment_body("alpha"), deployment_body("chat")
    alpha["metadata"].update(resourceVersion="7", uid="u-alpha", managedFields=[{"manager": "kubectl"}])
    first = cache.parse([alpha, chat])
    assert validated == ["alpha", "chat"]
    assert first[0].resource is not None and "managedFields" not in first[0].resource.metadata
    # The same resourceVersion: the same model, beside the body handed in this time (its status may be new).
    again = {**alpha, "status": {"observedGeneration": 1}}
    second = cache.parse([again, chat])
    assert validated == ["alpha", "chat", "chat"]  # chat has no resourceVersion: validated every time
    assert second[0].resource is first[0].resource and second[0].body is again
    # A new resourceVersion (a spec edit) or a new UID (deleted and created again) is validated again.
    edited = {**alpha, "metadata": {**alpha["metadata"], "resourceVersion": "8"}, "spec": {**alpha["spec"]}}
    edited["spec"]["capacity"] = {"minReplicas": 2, "maxReplicas": 4}
    third = cache.parse([edited])
    assert third[0].resource is not None and third[0].resource.spec.capacity.min_replicas == 2
    recreated = {**edited, "metadata": {**edited["metadata"], "uid": "u-alpha-2"}}
    cache.parse([recreated])
    assert validated[3:] == ["alpha", "alpha"]


def eu_cluster(*, max_gpus: int | None = None, labels: dict[str, Any] | None = None) -> RegionalCluster:
    body = cluster_body("eu-fr", pue=1.3)
    body["metadata"]["labels"] = labels if labels is not None else {"gridshift.dev/jurisdiction": "eu", "tier": 2}
    offering: dict[str, Any] = {
        "gpuType": H100,
        "hourlyCost": {"amount": 2.10, "currency": "EUR"},
        "idlePowerWatts": 60,
    }
    if max_gpus is not None:
        offering["maxGpus"] = max_gpus
    body["spec"]["offerings"] = [offering, {"gpuType": "NVIDIA-L40S", "hourlyCost": {"amount": 0.5, "currency": "USD"}}]
    body["spec"]["priceFeed"] = {"type": "static", "currency": "EUR", "fxToUsd": 1.08, "static": {"price": 50}}
    return RegionalCluster.model_validate(body)


def test_gpu_costs_are_converted_to_usd_once_with_the_feeds_rate() -> None:
    cluster = eu_cluster()
    fx = cluster.spec.price_feed.fx_to_usd  # the one conversion (api.regional_cluster), which admission bounds too
    assert usd_per_gpu_hour(Money(amount=1.0, currency="USD"), fx) == 1.0
    assert usd_per_gpu_hour(Money(amount=1.0, currency="EUR"), fx) == 1.08
    planned = planner_cluster("eu-fr", cluster, Inventory(), {})
    assert [o.hourly_cost_usd for o in planned.offerings] == pytest.approx([2.268, 0.5])


def test_free_gpus_are_allocatable_minus_others_plus_ours_capped_by_max_gpus() -> None:
    inventory = Inventory(
        (GpuInventory(H100, allocatable=16, used=10, used_in_namespaces=4), GpuInventory("NVIDIA-L40S", 4, 6))
    )
    planned = planner_cluster("eu-fr", eu_cluster(), inventory, {H100: 4})
    assert planned == S.Cluster(
        name="eu-fr",
        region="eu-fr",
        pue=1.3,
        offerings=(
            S.Offering(H100, 10, 2.10 * 1.08, 60.0),  # 16 - 10 used (4 of them ours) + 4
            S.Offering("NVIDIA-L40S", 0, 0.5, 75.5),  # over-committed: none, not negative
        ),
        labels={"gridshift.dev/jurisdiction": "eu", "tier": "2"},
        reachable=True,
    )
    capped = planner_cluster("eu-fr", eu_cluster(max_gpus=3), inventory, {H100: 4})
    assert capped.offerings[0].available_gpus == 3
    unlisted = planner_cluster("eu-fr", eu_cluster(), Inventory((GpuInventory(H100, 8, 0),)), {})
    assert [o.available_gpus for o in unlisted.offerings] == [8, 0]  # no L40S node: none


def test_our_replicas_hold_the_gpus_of_their_scheduled_pods_not_their_deployments_counts() -> None:
    # Found in review: held GPUs were the Deployments' replica counts, so Pending replicas (a cluster filled by
    # others since, or a Deployment scaled by hand to 1,000) counted as GPUs "free" for every tenant there.
    pending = Inventory((GpuInventory(H100, allocatable=16, used=16, used_in_namespaces=2),))
    assert planner_cluster("eu-fr", eu_cluster(), pending, {H100: 1000}).offerings[0].available_gpus == 2
    # Pods in the workload namespaces beyond what our Deployments ask for are not ours to count.
    crowded = Inventory((GpuInventory(H100, allocatable=16, used=16, used_in_namespaces=9),))
    assert planner_cluster("eu-fr", eu_cluster(), crowded, {H100: 4}).offerings[0].available_gpus == 4


def test_without_node_visibility_max_gpus_or_what_we_hold_is_the_budget() -> None:
    blind = Inventory(nodes_visible=False, others_visible=False)
    assert [o.available_gpus for o in planner_cluster("eu-fr", eu_cluster(max_gpus=5), blind, {}).offerings] == [5, 0]
    held = planner_cluster("eu-fr", eu_cluster(), blind, {H100: 2, "NVIDIA-L40S": 1})
    assert [o.available_gpus for o in held.offerings] == [2, 1]


def test_replicas_kept_but_not_planned_take_their_gpus_from_the_max_gpus_budget() -> None:
    # Found in review: a deployment being deleted or refused keeps its replicas but is not planned; without Node
    # visibility maxGpus went whole to the planned ones. Where Nodes are visible their pods are in `used` already.
    blind = Inventory(nodes_visible=False, others_visible=False)
    kept = {H100: 10}
    assert planner_cluster("eu-fr", eu_cluster(max_gpus=16), blind, {H100: 2}, kept).offerings[0].available_gpus == 6
    assert planner_cluster("eu-fr", eu_cluster(max_gpus=8), blind, {}, kept).offerings[0].available_gpus == 0
    assert planner_cluster("eu-fr", eu_cluster(), blind, {H100: 2}, kept).offerings[0].available_gpus == 2
    seen = Inventory((GpuInventory(H100, allocatable=100, used=12, used_in_namespaces=12),))
    assert planner_cluster("eu-fr", eu_cluster(), seen, {H100: 2}, kept).offerings[0].available_gpus == 90
    assert planner_cluster("eu-fr", eu_cluster(max_gpus=16), seen, {H100: 2}, kept).offerings[0].available_gpus == 6
    # Found in review: the kept replicas' scheduled pods counted among ours too, so a planned deployment whose 8
    # GPUs were all Pending held 8 of them: 14 available of 16 with 10 used, where 6 are free.
    pending = Inventory((GpuInventory(H100, allocatable=16, used=10, used_in_namespaces=10),))
    assert planner_cluster("eu-fr", eu_cluster(), pending, {H100: 8}, kept).offerings[0].available_gpus == 6
    # Ours scheduled beside them still count as held (free for us again): 2 of 12 used are ours.
    both = Inventory((GpuInventory(H100, allocatable=16, used=12, used_in_namespaces=12),))
    assert planner_cluster("eu-fr", eu_cluster(), both, {H100: 8}, kept).offerings[0].available_gpus == 6


def test_an_unreachable_cluster_keeps_its_offerings_with_no_gpus_and_no_labels_is_no_labels() -> None:
    planned = planner_cluster("eu-fr", eu_cluster(labels={}), None, {H100: 4})
    assert not planned.reachable and planned.labels == {}
    unlabelled = eu_cluster()
    del unlabelled.metadata["labels"]
    assert planner_cluster("eu-fr", unlabelled, None, {}).labels == {}
    assert [o.available_gpus for o in planned.offerings] == [0, 0]
    assert [o.gpu_type for o in planned.offerings] == [H100, "NVIDIA-L40S"]


def test_placements_are_the_deployments_workloads_per_cluster_sorted() -> None:
    def workload(ns: str, name: str, gpu: str, desired: int, ready: int) -> WorkloadState:
        return WorkloadState(ns, name, gpu, f"{name}-{gpu}", "gridshift-workloads", desired, ready)

    placements = placements_of(
        "ml",
        "chat",
        {
            "us-tx": [workload("ml", "chat", H100, 2, 1), workload("ml", "other", H100, 5, 5)],
            "eu-de": [workload("ml", "chat", "NVIDIA-L40S", 3, 3), workload("team", "chat", H100, 4, 4)],
            "gone": None,
        },
    )
    assert placements == (
        S.Placement("eu-de", "NVIDIA-L40S", 3, 3),
        S.Placement("us-tx", H100, 2, 1),
    )


def test_user_profiles_replace_shipped_ones_for_the_same_model_gpu_and_size() -> None:
    shipped = example_profile()
    doc = yaml.safe_load((REPO_ROOT / "examples" / "gpuprofile-llama3-8b-h100.yaml").read_text())
    doc["spec"]["idlePowerWatts"] = 99
    user = GPUProfile.model_validate(doc)
    other = {**doc, "spec": {**doc["spec"], "gpusPerReplica": 2}}
    broken = Parsed("bad", None, "spec: broken", {})
    chosen = profiles_from(
        profile_uses(
            [Parsed("u", user, None, doc), broken, Parsed("o", GPUProfile.model_validate(other), None, other)]
        ),
        [shipped],
    )
    assert [(p.gpus_per_replica, p.idle_power_watts) for p in chosen] == [(1, 99.0), (2, 99.0)]
    assert profiles_from(profile_uses([broken]), [shipped]) == (shipped,)
    # Valid to the schema, implausible for its GPU (idle above every point): left out, the others kept.
    implausible = {**doc, "spec": {**doc["spec"], "idlePowerWatts": 5000}}
    parsed = Parsed("i", GPUProfile.model_validate(implausible), None, implausible)
    assert profiles_from(profile_uses([parsed]), [shipped]) == (shipped,)


def test_a_profile_binds_to_the_model_source_never_to_a_served_name() -> None:
    """Found in review: a GPUProfile for `chat` (an 8B profile) sized another tenant's 72B deployment that serves
    as `chat`; the served name is a label each tenant picks, the source is the model."""
    from gridshift.planner.problem import _profile_for, _profile_index

    doc = yaml.safe_load((REPO_ROOT / "examples" / "gpuprofile-llama3-8b-h100.yaml").read_text())
    doc["spec"]["model"] = "chat"
    chosen = profiles_from(profile_uses([Parsed("chat-8b", GPUProfile.model_validate(doc), None, doc)]), [])
    body = deployment_body("chat")
    body["spec"]["model"]["source"] = "Qwen/Qwen2.5-72B-Instruct"
    required = requirements_of(InferenceDeployment.model_validate(body).spec)
    assert _profile_for(_profile_index(chosen), required, H100) is None


def test_a_user_profile_for_the_source_wins_over_the_shipped_one_whatever_the_served_name() -> None:
    from gridshift.planner.problem import _profile_for, _profile_index
    from gridshift.profiles_catalog import default_performance_models

    shipped = default_performance_models()
    source = "meta-llama/Llama-3.1-8B-Instruct"
    assert any((p.model, p.gpu_type, p.gpus_per_replica) == (source, H100, 1) for p in shipped)
    doc = yaml.safe_load((REPO_ROOT / "examples" / "gpuprofile-llama3-8b-h100.yaml").read_text())
    doc["spec"].update(model=source, prefillTokensPerSecond=1500)
    chosen = profiles_from(profile_uses([Parsed("mine", GPUProfile.model_validate(doc), None, doc)]), shipped)
    body = deployment_body("chat")
    body["spec"]["model"]["source"] = source
    required = requirements_of(InferenceDeployment.model_validate(body).spec)
    used = _profile_for(_profile_index(chosen), required, H100)
    assert used is not None and used.prefill_tokens_per_s == 1500


def _profile_doc(name: str, created: str | None = None, **spec: Any) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((REPO_ROOT / "examples" / "gpuprofile-llama3-8b-h100.yaml").read_text())
    doc["metadata"] = {"name": name, **({"creationTimestamp": created} if created else {})}
    doc["spec"].update(spec)
    return doc


def _parsed(*docs: dict[str, Any]) -> list[Parsed[GPUProfile]]:
    return [Parsed(d["metadata"]["name"], GPUProfile.model_validate(d), None, d) for d in docs]


def test_of_two_profiles_for_one_model_gpu_and_size_the_planner_uses_the_first_created_then_first_named() -> None:
    # Found in review: the one whose name sorted last was used, silently.
    first = _profile_doc("a-first", "2024-01-01T00:00:00Z", prefillTokensPerSecond=1000)
    second = _profile_doc("b-second", "2024-02-01T00:00:00Z", prefillTokensPerSecond=2000)
    assert [p.prefill_tokens_per_s for p in profiles_from(profile_uses(_parsed(first, second)), [])] == [1000]
    older = _profile_doc("z-older", "2023-12-01T00:00:00Z", prefillTokensPerSecond=3000)
    assert [p.prefill_tokens_per_s for p in profiles_from(profile_uses(_parsed(first, second, older)), [])] == [3000]
    # Created in one second (the apiserver stamps whole seconds) or unstamped: by name.
    twin = _profile_doc("a-by-name", "2024-01-01T00:00:00Z", prefillTokensPerSecond=4000)
    assert [p.prefill_tokens_per_s for p in profiles_from(profile_uses(_parsed(first, twin)), [])] == [4000]


def test_a_profile_the_fit_misses_by_more_than_twice_leaves_the_shipped_one_in_place() -> None:
    # Found in review: point 0's step time entered in seconds overstated capacity 3.6x, and the planner used it.
    shipped = example_profile()
    doc = _profile_doc("mine", idlePowerWatts=99)
    doc["spec"]["points"][0]["stepTimeMs"] /= 1000
    assert profiles_from(profile_uses(_parsed(doc)), [shipped]) == (shipped,)
    # A poor profile refused takes no place from a good one created after it.
    good = _profile_doc("later", "2024-02-01T00:00:00Z", idlePowerWatts=99)
    doc["metadata"]["creationTimestamp"] = "2024-01-01T00:00:00Z"
    assert [p.idle_power_watts for p in profiles_from(profile_uses(_parsed(doc, good)), [shipped])] == [99.0]


def test_every_shipped_and_example_profile_is_used_as_a_gpu_profile() -> None:
    """The refusal of a poor fit keeps every profile gridshift ships (Llama-3.1-8B on B200 misses by 1.9x)."""
    from gridshift.profiles_catalog import load_default_profiles
    from gridshift.service.inputs import profile_uses

    shipped = [Parsed(str(p.metadata["name"]), p, None, {}) for p in load_default_profiles()]
    examples = _parsed(_profile_doc("example"))
    for key, use in {**profile_uses(shipped), **profile_uses(examples)}.items():
        assert use.model is not None and use.refusal is None, (key, use.refusal)


def test_measured_cost_without_tokens_is_none_and_joules_skip_clusters_without_them() -> None:
    def measured(*values: tuple[float | None, float | None]) -> MeasuredCost | None:
        return measured_cost(
            [
                DeploymentSignals(
                    REF,
                    AT,
                    {
                        s: v
                        for s, v in ((Signal.GENERATION_TOKEN_RATE, t), (Signal.JOULES_PER_TOKEN, j))
                        if v is not None
                    },
                )
                for t, j in values
            ]
        )

    assert measured((0.0, 0.5)) is None  # no tokens: no cost per token
    assert measured((None, 0.5)) is None
    assert measured((0.5, 0.4)) == MeasuredCost(0.5, 0.4)
    # A cluster without J/token, or without tokens, does not dilute the others' J/token.
    assert measured((100.0, None), (300.0, 0.2)) == MeasuredCost(400.0, 0.2)
    assert measured((100.0, None), (0.0, 0.7)) == MeasuredCost(100.0, None)


# --- the spec as the planner reads it (one translation) -------------------------------------------------------


def test_requirements_carry_every_field_the_planner_reads_from_the_spec() -> None:
    body = deployment_body(
        replica={"gpuTypes": [H100, "NVIDIA-L40S"], "gpusPerReplica": 2},
        capacity={"minReplicas": 2, "maxReplicas": 9, "minRegions": 2},
        migration={"mode": "Advisory", "paybackHorizonHours": 4, "maxConcurrentMoves": 3},
        demand={"source": "Static", "requestsPerSecond": 7.5, "meanPromptTokens": 700, "meanOutputTokens": 150},
        placement={
            "allowedRegions": ["eu-de", "eu-fr"],
            "preferredRegions": ["eu-fr"],
            "forbiddenRegions": ["us-tx"],
            "clusterSelector": {
                "matchLabels": {"tier": "gold"},
                "matchExpressions": [
                    {"key": "gridshift.dev/jurisdiction", "operator": "In", "values": ["eu", "ch"]},
                    {"key": "spot", "operator": "DoesNotExist"},
                ],
            },
        },
        carbon={"priceUsdPerTonne": 120, "maxGramsPerKwh": 300, "maxGramsPerMillionTokens": 40},
    )
    body["spec"]["demand"]["headroom"] = 0.3
    # The spec's own carbon price, not the operator's default (that is for specs that set none).
    required = requirements_of(InferenceDeployment.model_validate(body).spec, default_carbon_price=80.0)
    assert required == S.Requirements(
        model_names=("meta-llama/Meta-Llama-3-8B-Instruct",),
        gpu_types=(H100, "NVIDIA-L40S"),
        gpus_per_replica=2,
        ttft_slo_ms=500,
        tpot_slo_ms=50,
        min_replicas=2,
        max_replicas=9,
        min_regions=2,
        mode=MigrationMode.ADVISORY,
        max_concurrent_moves=3,
        payback_horizon_hours=4,
        mean_prompt_tokens=700,
        mean_output_tokens=150,
        headroom=0.3,
        static_requests_per_second=7.5,
        allowed_regions=frozenset({"eu-de", "eu-fr"}),
        forbidden_regions=frozenset({"us-tx"}),
        preferred_regions=frozenset({"eu-fr"}),
        cluster_selector=S.Selector(
            match_labels={"tier": "gold"},
            match_expressions=(
                S.SelectorRequirement("gridshift.dev/jurisdiction", "In", ("eu", "ch")),
                S.SelectorRequirement("spot", "DoesNotExist", ()),
            ),
        ),
        carbon_price_usd_per_tonne=120,
        carbon_max_g_per_kwh=300,
        carbon_budget_g_per_mtok=40,
    )
    assert required.cluster_selector is not None
    assert required.cluster_selector.matches({"tier": "gold", "gridshift.dev/jurisdiction": "ch"})
    assert not required.cluster_selector.matches({"tier": "gold", "gridshift.dev/jurisdiction": "ch", "spot": "1"})


def test_measured_demand_has_no_static_rate_and_no_selector_selects_everything() -> None:
    required = requirements_of(prometheus_idep().spec)
    assert required.static_requests_per_second is None
    # A rate left in the spec of a measured deployment is not a static demand.
    body = deployment_body()
    body["spec"]["demand"] = {"source": "Prometheus", "requestsPerSecond": 5.0}
    assert requirements_of(InferenceDeployment.model_validate(body).spec).static_requests_per_second is None
    assert required.cluster_selector is None and selector_of(None) is None
    assert (required.allowed_regions, required.forbidden_regions, required.preferred_regions) == (frozenset(),) * 3


def test_measured_latency_is_the_worst_regions_p95_and_missing_when_unmeasured() -> None:
    """p95s of separate clusters do not combine into one; the SLO binds each, so status shows the worst."""

    def cluster(ttft: float | None, itl: float | None) -> DeploymentSignals:
        values = {Signal.GENERATION_TOKEN_RATE: 100.0}
        values |= {Signal.TTFT_P95: ttft} if ttft is not None else {}
        values |= {Signal.ITL_P95: itl} if itl is not None else {}
        return DeploymentSignals(REF, AT, values)

    measured = measured_cost([cluster(0.2, 0.05), cluster(0.6, 0.02), cluster(None, None)])
    assert measured is not None
    assert (measured.ttft_p95_seconds, measured.tpot_p95_seconds) == (0.6, 0.05)
    unmeasured = measured_cost([cluster(None, None)])
    assert unmeasured is not None and (unmeasured.ttft_p95_seconds, unmeasured.tpot_p95_seconds) == (None, None)


def test_a_signal_failed_in_one_cluster_is_unknown_never_the_other_clusters_figure() -> None:
    # Found in review: TTFT, ITL and J/token queries failing in one cluster (latency 5 s there) read as the other
    # cluster's 0.2 s, 20 ms and 0.5 J/token: "measured p95 latency within the SLO", and status.cost Measured.
    from gridshift.service.status import _latency_above, _slo_state

    idep = InferenceDeployment.model_validate(deployment_body())  # SLO: TTFT 500 ms, TPOT 50 ms
    demand = {Signal.REQUEST_RATE: 5.0, Signal.GENERATION_TOKEN_RATE: 1000.0}
    fast = {Signal.TTFT_P95: 0.2, Signal.ITL_P95: 0.02, Signal.JOULES_PER_TOKEN: 0.5}
    failed = dict.fromkeys((Signal.TTFT_P95, Signal.ITL_P95, Signal.JOULES_PER_TOKEN), "HTTP 503")
    a = DeploymentSignals(REF, AT, demand, failed=failed)
    measured = measured_cost([a, DeploymentSignals(REF, AT, {**demand, **fast})])
    assert measured is not None and measured.generation_tokens_per_second == 2000.0
    assert (measured.ttft_p95_seconds, measured.tpot_p95_seconds, measured.joules_per_token) == (None, None, None)
    assert _latency_above(idep, measured) is None
    _, why = _slo_state(MigrationMode.AUTO, 1000.0, 5000.0, None, measured)
    assert "within the SLO" not in why and "latency unknown" in why, why
    # What the clusters that answered show is still a floor: above the SLO there, the SLO is missed.
    slow = DeploymentSignals(REF, AT, {**demand, **fast, Signal.TTFT_P95: 0.9})
    assert _latency_above(idep, measured_cost([a, slow])) == (
        "measured p95 time to first token above the 500 ms SLO (status.observedSlo)"
    )
    # The same floor for time per output token (a mutant dropping it survived the mutation sample).
    dragging = DeploymentSignals(REF, AT, {**demand, **fast, Signal.ITL_P95: 0.08})
    assert _latency_above(idep, measured_cost([a, dragging])) == (
        "measured p95 time per output token above the 50 ms SLO (status.observedSlo)"
    )
    # A floor within the SLO says nothing either way: no message, and never "within the SLO".
    assert _latency_above(idep, measured_cost([a, DeploymentSignals(REF, AT, {**demand, **fast})])) is None
    # In one cluster, only ITL failing: the TTFT that answered does not make the latency "within the SLO".
    one = DeploymentSignals(REF, AT, {**demand, Signal.TTFT_P95: 0.2}, failed={Signal.ITL_P95: "HTTP 503"})
    alone = measured_cost([one])
    assert alone is not None and alone.ttft_p95_seconds == 0.2 and alone.tpot_p95_seconds is None
    assert "within the SLO" not in _slo_state(MigrationMode.AUTO, 1000.0, 5000.0, None, alone)[1]
    # Nothing failed: as before.
    healthy = measured_cost([DeploymentSignals(REF, AT, {**demand, **fast})])
    assert "measured p95 latency within the SLO" in _slo_state(MigrationMode.AUTO, 1000.0, 5000.0, None, healthy)[1]


def test_a_refused_fit_names_the_point_field_unit_and_the_value_it_is_drawn_to() -> None:
    # The message a user reads on Ready (service.inputs._worst_miss): the worst point by how far off, its field and
    # unit, and, where a value far below the others drew the fit down, that value with the likely unit mistake.
    from gridshift.api.conditions import ProfileReadyReason
    from gridshift.service.inputs import profile_uses

    doc = _profile_doc("mine")
    doc["spec"]["points"][0]["stepTimeMs"] /= 1000  # seconds entered as ms
    (use,) = profile_uses(_parsed(doc)).values()
    assert use.refusal is not None and use.refusal[0] is ProfileReadyReason.POOR_FIT
    said = use.refusal[1]
    worst = re.match(
        r"points\[(\d+)\]\.stepTimeMs: measured ([0-9.]+) ms, fitted ([0-9.e+-]+) ms \(([0-9.]+)x off\)", said
    )
    assert worst is not None, said
    measured, fitted, off = float(worst[2]), float(worst[3]), float(worst[4])
    assert off == pytest.approx(max(measured / fitted, fitted / measured), rel=1e-2) and off > 10
    # The worst miss of all (no other point is off by more).
    step = doc["spec"]["points"]
    assert float(step[int(worst[1])]["stepTimeMs"]) == pytest.approx(measured, rel=1e-3)
    assert use.model is not None
    ratios = [use.model.step_time_ms(p["batch"], max(p["contextTokens"], 1)) / p["stepTimeMs"] for p in step]
    assert int(worst[1]) == max(range(len(step)), key=lambda i: max(ratios[i], 1 / ratios[i]))
    assert said.endswith(
        f"; it is drawn to the smallest stepTimeMs, points[0]: {step[0]['stepTimeMs']:.4g} (seconds entered as ms?)"
    )
    # Power in kW as W: named in W, with its own hint.
    doc = _profile_doc("kw")
    doc["spec"]["points"][3]["powerWatts"] = doc["spec"]["points"][3]["powerWatts"] / 1000
    doc["spec"].pop("idlePowerWatts", None)
    (use,) = profile_uses(_parsed(doc)).values()
    assert use.refusal is not None, "a power 1,000x too small was used"
    assert re.search(r"points\[\d+\]\.powerWatts: measured [0-9.]+ W, fitted [0-9.e+-]+ W", use.refusal[1]), use.refusal
    assert use.refusal[1].endswith("(kW entered as W?)"), use.refusal[1]


def test_a_creation_time_without_an_offset_is_utc_and_orders_with_those_that_have_one() -> None:
    from gridshift.service.inputs import created_at

    naive = created_at({"metadata": {"creationTimestamp": "2024-01-01T00:00:00"}})
    assert naive == datetime(2024, 1, 1, tzinfo=UTC)
    assert naive < created_at({"metadata": {"creationTimestamp": "2024-01-01T00:00:01Z"}})
    assert created_at({"metadata": {}}) > naive  # unstamped: last


@pytest.mark.parametrize(
    ("value", "length"),
    [("8192", 8192), ("32k", 32_000), ("25.6k", 25_600), ("1m", 1_000_000), ("1g", 10**9),
     ("32K", 32_768), ("1M", 2**20), ("1G", 2**30), ("0", None), ("-5", None), ("12x", None)],
)  # fmt: skip
def test_vllm_lengths_read_as_vllm_reads_them(value: str, length: int | None) -> None:
    from gridshift.service.inputs import _vllm_length

    assert _vllm_length(value) == length
