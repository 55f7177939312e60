"""One deployment's measurements never stop or freeze another's planning.

A deployment's vLLM series come from its own replicas, whose image its owner chooses, so they may say
anything. Found in review (4 December 2026): a finished-request rate of 0 beside a queue of 1e-300 made the
mean prompt length infinite and ended every tenant's cycle; a bucket `le="abc"` did the same; a rate of
1e300 left every plan as it was, the other tenant short with GPUs idle. Now such figures are not believed:
that deployment's demand is unknown (never scaled below its Ready count), named in the cycle's problems,
and the others are planned around the replicas it holds.
"""

from __future__ import annotations

from collections.abc import Mapping

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


def run(values: Mapping[Signal, SignalValue], classes: bool = False) -> tuple[dict[str, int], list[str]]:
    """Replicas of both deployments after the attacker's series say `values` and the victim's demand grows
    to about 15 of the cluster's 16 GPUs; and the cycles' problem messages about the attacker."""
    world = ServiceHarness(
        ["eu-de"],
        gpus_per_cluster=16,
        settings=OperatorSettings(revalidate_delay_seconds=0, plan_interval_seconds=60, prometheus_url="http://prom"),
    )
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
    for _ in range(8):
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
        Signal.PROMPT_TOKENS_BUCKETS: {"abc": 5.0, "nan": 6.0, "1000": 8.0, "+Inf": 10.0},
        Signal.GENERATION_TOKENS_BUCKETS: {"100": 5.0, "+Inf": 10.0},
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
