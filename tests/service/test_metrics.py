"""The operator's registry (gridshift.service.metrics): counters exposed from the start, and the
predicted cost and J/token of each deployment in each region."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gridshift.planner.solution import Solver
from gridshift.service.metrics import PLAN_OUTCOMES, OperatorMetrics
from gridshift.service.report import DECISION_EVENTS
from gridshift.service.state import CycleErrorReason
from tests.service.harness import ServiceHarness, deployment_body


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
    assert decisions == {(("reason", r.value),): 0.0 for r in DECISION_EVENTS}
    assert "MigrationRolledBack" not in {r.value for r in DECISION_EVENTS}  # a cycle error, not a decision
    plans = samples(metrics, "gridshift_plans_total")
    assert plans == {(("outcome", o), ("solver", s.value)): 0.0 for s in Solver for o in PLAN_OUTCOMES}


def test_the_last_cycle_time_starts_at_the_operators_start() -> None:
    # Found in review: it started at 0, so GridshiftCyclesStopped (time() - it > 600, for 5m) paged "the loop is
    # stuck" 5 minutes after a fresh leader started, while its first cycle was still reading every member cold.
    import time

    before = time.time()
    metrics = OperatorMetrics()
    assert before <= samples(metrics, "gridshift_last_cycle_timestamp_seconds")[()] <= time.time()


def test_a_cycle_failure_counts_on_the_series_already_exposed() -> None:
    metrics = OperatorMetrics()
    metrics.cycle_failed()
    errors = samples(metrics, "gridshift_cycle_errors_total")
    assert errors[(("reason", CycleErrorReason.CYCLE_FAILED.value),)] == 1.0
    assert len(errors) == len(CycleErrorReason)


def test_each_region_is_charged_its_own_gpu_hours_and_energy() -> None:
    """One replica where a GPU costs 4 USD/h and one where it costs 0.5: each region's predicted cost is its
    own (both were charged the average, so measured over predicted could not be 1 in either; review)."""
    from tests.service.harness import ServiceHarness, deployment_body

    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 90.0, "eu-fr": 20.0})
    world.cluster_bodies["eu-de"]["spec"]["offerings"][0]["hourlyCost"]["amount"] = 4.0
    world.cluster_bodies["eu-fr"]["spec"]["offerings"][0]["hourlyCost"]["amount"] = 0.5
    world.add(deployment_body(capacity={"minReplicas": 2, "maxReplicas": 16, "minRegions": 2}, rps=5.0))
    world.cycle()
    cost = samples(world.service.metrics, "gridshift_deployment_predicted_cost_usd_per_hour")
    de = cost[(("gridshift_dev_deployment", "ml.chat"), ("region", "eu-de"))]
    fr = cost[(("gridshift_dev_deployment", "ml.chat"), ("region", "eu-fr"))]
    # One GPU each, plus well under a kW at 0.09 and 0.02 USD/kWh (x PUE 1.2).
    assert 4.0 < de < 4.0 + 0.09 * 1.2
    assert 0.5 < fr < 0.5 + 0.02 * 1.2
    assert de + fr == pytest.approx(world.status()["cost"]["usdPerHour"], abs=0.005)
    joules = samples(world.service.metrics, "gridshift_deployment_predicted_joules_per_token")
    assert set(joules) == set(cost)


def test_a_failing_carbon_feed_counts_as_a_cycle_error_like_a_price_feed() -> None:
    # Found in review: a carbon feed failing for 15 cycles counted no cycle error and logged nothing; only
    # its RegionalCluster condition and an unalerted gauge said so.
    from datetime import timedelta

    from gridshift.signals.carbon import CarbonFetchError
    from tests.service.harness import ServiceHarness, deployment_body

    world = ServiceHarness(["eu-de", "eu-fr"], carbon={"eu-de": 300.0, "eu-fr": 100.0})
    world.add(deployment_body())
    world.cycle()
    world.carbon_feeds["eu-de"].fail_next(*[CarbonFetchError("eu-de", "http", "HTTP 503", retryable=True)] * 500)
    for _ in range(15):
        report = world.cycle(advance=timedelta(minutes=1))
    errors = samples(world.service.metrics, "gridshift_cycle_errors_total")
    assert errors[(("reason", "CarbonFeedFailed"),)] > 0, errors
    assert [p for p in report.problems if p.reason is CycleErrorReason.CARBON_FEED_FAILED and p.cluster == "eu-de"]


def test_objects_whose_spec_is_refused_read_not_ready_and_not_reachable_instead_of_vanishing() -> None:
    # Found in review: a deployment or cluster whose spec the model refused (InvalidSpec) lost its series, so an
    # alert on gridshift_deployment_ready == 0 or gridshift_cluster_reachable == 0 went silent just then.
    world = ServiceHarness(["eu-de", "eu-fr"])
    body = deployment_body()
    world.add(body)
    for _ in range(2):
        world.cycle()
    ready = samples(world.service.metrics, "gridshift_deployment_ready")
    assert list(ready.values()) == [1.0]
    body["spec"]["capacity"] = {"minReplicas": 5, "maxReplicas": 2}
    body["metadata"]["generation"] = 2
    world.cluster_bodies["eu-fr"]["spec"]["pue"] = 0.5
    world.cluster_bodies["eu-fr"]["metadata"]["resourceVersion"] = "2"
    for _ in range(2):
        world.cycle()
    assert samples(world.service.metrics, "gridshift_deployment_ready") == dict.fromkeys(ready, 0.0)
    reachable = samples(world.service.metrics, "gridshift_cluster_reachable")
    assert reachable == {
        (("cluster", "eu-de"), ("region", "eu-de")): 1.0,
        (("cluster", "eu-fr"), ("region", "eu-fr")): 0.0,
    }


def test_a_refused_cluster_reads_not_reachable_after_a_restart_and_when_refused_from_its_creation() -> None:
    # Found in review: the region came only from the series this process had exported, so a new operator
    # process (restart, failover) or a cluster refused from the start had no gridshift_cluster_reachable at all.
    world = ServiceHarness(["eu-de", "eu-fr", "us-tx"])
    world.cluster_bodies["us-tx"]["spec"]["pue"] = 0.5  # refused from its creation
    world.add(deployment_body())
    for _ in range(2):
        world.cycle()
    world.cluster_bodies["eu-fr"]["spec"]["pue"] = 0.5
    world.cluster_bodies["eu-fr"]["metadata"]["resourceVersion"] = "2"
    world.cycle()
    world.service = world.make_service("op-1")  # the operator pod restarts: a new process, same Lease identity
    for _ in range(3):
        world.cycle()
    assert samples(world.service.metrics, "gridshift_leader") == {(): 1.0}
    assert samples(world.service.metrics, "gridshift_cluster_reachable") == {
        (("cluster", "eu-de"), ("region", "eu-de")): 1.0,
        (("cluster", "eu-fr"), ("region", "eu-fr")): 0.0,
        (("cluster", "us-tx"), ("region", "us-tx")): 0.0,
    }
    # A region that is not a region name is not made a label value: the series it last had, or none.
    world.cluster_bodies["us-tx"]["spec"]["region"] = "US TX"
    world.cluster_bodies["us-tx"]["metadata"]["resourceVersion"] = "2"
    world.cycle()
    assert (
        samples(world.service.metrics, "gridshift_cluster_reachable")[(("cluster", "us-tx"), ("region", "us-tx"))] == 0
    )


def test_a_leader_deposed_between_cycles_stops_exporting_its_plan_at_once() -> None:
    # Found in review: leader-only series were dropped only by a cycle that did not lead, so a leader deposed
    # between two cycles exported its last plan beside the new leader's until its next cycle (docs/status.md).
    world = ServiceHarness(["eu-de"])
    world.add(deployment_body(rps=30.0))
    first = world.service
    assert world.cycle(first).leader
    assert samples(first.metrics, "gridshift_cluster_reachable")
    second = world.make_service("op-2")
    world.cycle(second, advance=timedelta(seconds=1))
    first.elector._renewed_at = -1e9  # its renewals stopped succeeding: the second takes the Lease over
    assert world.cycle(second, advance=timedelta(seconds=20)).leader
    assert samples(first.metrics, "gridshift_leader") == {(): 0.0}
    # The plan's objective and gap too (found in review: the deposed one exported its last, then every standby NaN).
    leaders = ("gridshift_plan_solver_info", "gridshift_plan_objective_usd_per_hour", "gridshift_plan_gap_ratio")
    for name in ("gridshift_cluster_reachable", "gridshift_energy_price_usd_per_kwh", *leaders):
        assert not samples(first.metrics, name), name
        assert samples(second.metrics, name), name
        asked = generate_latest(first.metrics.registry.restricted_registry([name])).decode()  # a scrape with name[]
        assert name not in asked
    assert samples(first.metrics, "gridshift_cycles_total")  # what every replica exports stays


def test_a_deployment_not_acted_on_keeps_its_series_and_a_restarted_operator_reads_them_from_its_status() -> None:
    # Found in review: a deployment whose action failed (DeploymentFailed) lost every gridshift_deployment_* series
    # (not set that cycle, so dropped): GridshiftSLOAtRisk resolved just when acting on it failed.
    from tests.service.harness import ServiceHarness, deployment_body

    world = ServiceHarness(["eu-de"])
    world.add(deployment_body(rps=2000.0, capacity={"minReplicas": 1, "maxReplicas": 1}))  # short: SLO at risk
    for _ in range(3):
        world.cycle()
    names = [
        "gridshift_deployment_ready",
        "gridshift_deployment_slo_at_risk",
        "gridshift_deployment_desired_replicas",
        "gridshift_deployment_ready_replicas",
        "gridshift_deployment_predicted_cost_usd_per_hour",
        "gridshift_deployment_ttft_slo_seconds",
    ]
    before = {name: samples(world.service.metrics, name) for name in names}
    assert before["gridshift_deployment_slo_at_risk"] == {(("gridshift_dev_deployment", "ml.chat"),): 1.0}

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unexpected")

    world.service.actuator.repair_all = boom  # type: ignore[method-assign]
    report = world.cycle()
    assert [p.reason.value for p in report.problems] == ["DeploymentFailed"]
    assert {name: samples(world.service.metrics, name) for name in names} == before
    world.service = world.make_service("op-1")  # restarted: nothing exported yet, and it fails again
    world.service.actuator.repair_all = boom  # type: ignore[method-assign]
    world.cycle()
    assert samples(world.service.metrics, "gridshift_deployment_ready") == before["gridshift_deployment_ready"]
    assert (
        samples(world.service.metrics, "gridshift_deployment_slo_at_risk") == before["gridshift_deployment_slo_at_risk"]
    )
    ttft = "gridshift_deployment_ttft_slo_seconds"
    assert samples(world.service.metrics, ttft) == before[ttft]
