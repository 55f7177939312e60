"""The operator's registry (gridshift.service.metrics): counters exposed from the start, and the
predicted cost and J/token of each deployment in each region."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gridshift.planner.solution import Solver
from gridshift.service.metrics import PLAN_OUTCOMES, OperatorMetrics
from gridshift.service.report import EventReason
from gridshift.service.state import CycleErrorReason


def samples(metrics: OperatorMetrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of `name` as (sorted labels) -> value, as Prometheus would scrape them."""
    text = generate_latest(metrics.registry).decode()
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def test_a_fresh_registry_exposes_every_labelled_counter_at_zero() -> None:
    """increase() counts from the first sample: a series born at its first increment hid that event."""
    metrics = OperatorMetrics()
    errors = samples(metrics, "gridshift_cycle_errors_total")
    assert errors == {(("reason", r.value),): 0.0 for r in CycleErrorReason}
    decisions = samples(metrics, "gridshift_decisions_total")
    assert decisions == {(("reason", r.value),): 0.0 for r in EventReason}
    plans = samples(metrics, "gridshift_plans_total")
    assert plans == {(("outcome", o), ("solver", s.value)): 0.0 for s in Solver for o in PLAN_OUTCOMES}


def test_a_cycle_failure_counts_on_the_series_already_exposed() -> None:
    metrics = OperatorMetrics()
    metrics.cycle_failed()
    errors = samples(metrics, "gridshift_cycle_errors_total")
    assert errors[(("reason", CycleErrorReason.CYCLE_FAILED.value),)] == 1.0
    assert len(errors) == len(CycleErrorReason)
