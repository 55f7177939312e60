"""Demand from metrics: finished requests plus the queue that an overloaded fleet builds."""

from __future__ import annotations

from datetime import UTC, datetime

from gridshift.service.inputs import observed_demand
from gridshift.signals.labels import DeploymentRef
from gridshift.signals.metrics import DeploymentSignals
from gridshift.signals.promql import Signal
from tests.service.harness import deployment_body

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


def test_measured_latency_is_the_worst_regions_p95_and_missing_when_unmeasured() -> None:
    """p95s of separate clusters do not combine into one; the SLO binds each, so status shows the worst."""
    from gridshift.service.inputs import measured_cost

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
