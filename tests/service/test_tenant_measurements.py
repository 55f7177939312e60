"""One deployment's measurements never stop or freeze another's planning.

A deployment's vLLM series come from its own replicas, whose image its owner chooses, so they may say
anything. Found in review (4 December 2026): a finished-request rate of 0 beside a queue of 1e-300 made the
mean prompt length infinite and ended every tenant's cycle; a bucket `le="abc"` did the same; a rate of
1e300 left every plan as it was, the other tenant short with GPUs idle. Now such figures are not believed:
that deployment's demand is unknown (never scaled below its Ready count), named in the cycle's problems,
and the others are planned around the replicas it holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from gridshift.service.state import CycleErrorReason
from gridshift.settings import OperatorSettings
from gridshift.signals.labels import DeploymentRef
from gridshift.signals.promql import Signal
from gridshift.testing.metrics import SignalValue
from tests.service.harness import WORKLOADS, ServiceHarness, deployment_body

PROMETHEUS = {"source": "Prometheus", "meanPromptTokens": 1000, "meanOutputTokens": 200}
CLASSES = [
    {"name": "short", "promptTokens": 100, "outputTokens": 50, "share": 0.5},
    {"name": "long", "promptTokens": 4000, "outputTokens": 200, "share": 0.5},
]
HONEST: Mapping[Signal, SignalValue] = {Signal.REQUEST_RATE: 5.0}


def run(
    values: Mapping[Signal, SignalValue],
    classes: bool = False,
    windows: Sequence[Mapping[Signal, SignalValue]] = (),
    window_seconds: int = 300,
) -> tuple[dict[str, int], list[str]]:
    """Replicas of both deployments after the attacker's series say `values` and the victim's demand grows
    to about 15 of the cluster's 16 GPUs; and the cycles' problem messages about the attacker. `windows`: what
    the attacker's series say in each of the first cycles, over `window_seconds`, on top of `values`."""
    settings = OperatorSettings(
        revalidate_delay_seconds=0,
        plan_interval_seconds=60,
        prometheus_url="http://prom",
        metrics_window_seconds=window_seconds,
    )
    world = ServiceHarness(["eu-de"], gpus_per_cluster=16, settings=settings)
    attacker, victim = deployment_body("attacker", rps=5.0), deployment_body("victim", rps=10.0)
    world.add(attacker)
    world.add(victim)
    world.cycle()
    attacker["spec"]["demand"] = {**PROMETHEUS, **({"requestClasses": CLASSES} if classes else {})}
    ref = DeploymentRef("ml", "attacker", WORKLOADS, "attacker")
    for signal, value in values.items():
        world.metrics.set_signal(ref, signal, value)
    victim["spec"]["demand"]["requestsPerSecond"] = 60.0
    victim["metadata"]["generation"] = 2
    problems = []
    for cycle in range(8):
        for signal, value in (windows[cycle] if cycle < len(windows) else {}).items():
            world.metrics.set_signal(ref, signal, value)
        report = world.cycle()
        assert not [e for e in report.errors if "cycle" in e], report.errors
        problems += [p.message for p in report.problems if p.deployment == "ml/attacker"]
        assert all(p.reason is not CycleErrorReason.CYCLE_FAILED for p in report.problems)
    replicas = {w.name.split("-")[0]: w.desired for w in world.members["eu-de"].workloads([WORKLOADS])}
    return replicas, problems


@pytest.mark.parametrize(
    ("values", "classes", "named"),
    [
        # The mean prompt length overflowed: 1e6 tokens/s over 3e-303 requests/s.
        (
            {Signal.REQUEST_RATE: 0.0, Signal.REQUESTS_WAITING: 1e-300, Signal.PROMPT_TOKEN_RATE: 1e6},
            False,
            "mean prompt length above 2,000,000 tokens",
        ),
        ({Signal.REQUEST_RATE: 1e300}, False, "request rate 1e+300 req/s is above 1,000,000"),
        ({Signal.REQUEST_RATE: 1.0, Signal.GENERATION_TOKEN_RATE: 1e300}, False, "mean output length above"),
        # Read as missing before it reaches the demand (signals drop non-finite samples): unknown, no reason given.
        ({Signal.REQUEST_RATE: float("inf")}, False, "(Prometheus): never"),
    ],
    ids=["queue-1e-300", "rate-1e300", "output-1e300", "rate-inf"],
)
def test_implausible_figures_leave_the_others_planned_as_if_honest(
    values: Mapping[Signal, SignalValue], classes: bool, named: str
) -> None:
    honest, _ = run(HONEST)
    assert honest == {"attacker": 1, "victim": 15}
    replicas, problems = run(values, classes)
    # The attacker's demand is unknown: it keeps its 2 Ready replicas (never scaled below the Ready count),
    # and the victim gets every other GPU (before: it stayed at 4 with 10 GPUs idle, or the cycle failed).
    assert replicas == {"attacker": 2, "victim": 14}, replicas
    assert any("request rate unknown" in p and named in p for p in problems), problems


def test_a_bucket_edge_that_is_no_number_is_passed_over() -> None:
    honest, _ = run(HONEST)
    values: dict[Signal, SignalValue] = {
        Signal.REQUEST_RATE: 1.0,
        Signal.PROMPT_TOKEN_RATE: 1000.0,
        Signal.GENERATION_TOKEN_RATE: 200.0,
        # 300 requests, as 1 req/s over the 300 s window counts: a mix over fewer is not planned on
        # (OperatorSettings.class_share_min_requests), and the edges passed over must reach the planner.
        Signal.PROMPT_TOKENS_BUCKETS: {"abc": 150.0, "nan": 180.0, "1000": 240.0, "+Inf": 300.0},
        Signal.GENERATION_TOKENS_BUCKETS: {"100": 150.0, "+Inf": 300.0},
    }
    replicas, _ = run(values, classes=True)
    assert replicas == honest, replicas


def test_a_vanishing_token_rate_is_planned_as_a_token_per_request() -> None:
    # Found in review: a generation rate of 5e-324 tokens/s over 1 request/s passed every check, and the
    # replica's tokens per hour rounded to 0: ZeroDivisionError in the plan's $/Mtok, every cycle, for all.
    honest, _ = run(HONEST)
    replicas, _ = run({Signal.REQUEST_RATE: 1.0, Signal.GENERATION_TOKEN_RATE: 5e-324})
    assert replicas == honest


def test_a_fault_reading_one_deployments_demand_is_logged_and_stops_no_other(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Self-review: the guard must not pass a bug off as a Prometheus problem: it is logged with its traceback.
    from gridshift.service import inputs

    real = inputs.observed_demand

    def faulty(idep, signals, drain):  # type: ignore[no-untyped-def]
        if idep.spec.model.served_name == "attacker":
            raise TypeError("a bug")
        return real(idep, signals, drain)

    monkeypatch.setattr(inputs, "observed_demand", faulty)
    with caplog.at_level("ERROR", logger="gridshift.service.observe"):
        replicas, problems = run(HONEST)
    assert replicas == {"attacker": 2, "victim": 14}
    assert any("internal error (TypeError)" in p for p in problems)
    assert any(r.exc_info and "demand of ml/attacker not computed" in r.getMessage() for r in caplog.records)


def _window(requests: float, prompt: Mapping[str, float], generation: Mapping[str, float]) -> dict[Signal, SignalValue]:
    return {
        Signal.REQUEST_RATE: requests / 60,
        Signal.PROMPT_TOKEN_RATE: requests * 300 / 60,
        Signal.GENERATION_TOKEN_RATE: requests * 150 / 60,
        Signal.PROMPT_TOKENS_BUCKETS: dict(prompt),
        Signal.GENERATION_TOKENS_BUCKETS: dict(generation),
    }


def test_histograms_that_add_up_to_no_mix_stop_no_other_deployment() -> None:
    """Found in review: two windows of 60 s, each readable alone (counts falling from le=100 to le=1000 under a
    +Inf; then no +Inf series), gathered under the floor of 100 requests and summed on their common edges into a
    class share of 6.25: the ValueError left the observe stage and ended every tenant's cycle while it lasted."""
    honest, _ = run(HONEST)
    odd = _window(99, {"100": 95.0, "1000": 10.0, "+Inf": 99.0}, {"200": 99.0, "+Inf": 99.0})
    no_inf = _window(6, {"100": 5.0, "1000": 6.0}, {"200": 6.0})
    plain = _window(6, {"100": 6.0, "1000": 6.0, "+Inf": 6.0}, {"200": 6.0, "+Inf": 6.0})
    replicas, _ = run({}, classes=True, windows=[odd, no_inf, no_inf, no_inf, plain], window_seconds=60)
    assert replicas["victim"] == honest["victim"], replicas


def test_a_fault_in_one_deployments_class_mix_is_logged_and_stops_no_other(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Whatever a class mix meets, it costs that deployment its mix (planned on its window as measured), not the cycle.
    from gridshift.service import inputs

    real = inputs.sampled_classes

    def faulty(idep, demand, signals, history, window):  # type: ignore[no-untyped-def]
        if idep.spec.model.served_name == "attacker":
            raise ValueError("a bug")
        return real(idep, demand, signals, history, window)

    honest, _ = run(HONEST, classes=True)
    monkeypatch.setattr(inputs, "sampled_classes", faulty)
    with caplog.at_level("ERROR", logger="gridshift.service.observe"):
        replicas, _ = run(HONEST, classes=True)
    assert replicas == honest, replicas
    assert any(r.exc_info and "class mix of ml/attacker not computed" in r.getMessage() for r in caplog.records)
