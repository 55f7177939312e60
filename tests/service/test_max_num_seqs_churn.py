"""--max-num-seqs (the pod template) on an unchanged spec: a new value alone is rendered at most once per
OperatorSettings.max_num_seqs_interval_seconds per member Deployment unless the live one is unsafe
(service.actuate.MAX_NUM_SEQS_UNSAFE_BELOW). Reproductions from review: tests/e2e/test_measured_cost.py rolled
eu-de's replicas six times in 30 s (10, 36, 23, 18, 15, 10, 7) as its first rate windows were measured."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gridshift.actuation import labels as L
from gridshift.actuation.members import WorkloadState, state_from_deployment
from gridshift.api import InferenceDeployment
from gridshift.service import actuate
from gridshift.settings import OperatorSettings
from gridshift.signals.promql import Signal
from gridshift.testing import FakeMemberCluster
from tests.service.harness import ServiceHarness, deployment_body
from tests.service.test_actuate_engine import _deployment, _max_num_seqs
from tests.service.test_status import REF

# (finished req/s, mean prompt, mean output) as the operator measured them, cycle by cycle, in the e2e
# tests/e2e/test_measured_cost.py run at 02:16 UTC (20 s rate window, first measured cycle onwards).
E2E = [
    (0.45, 906.2, 207.6),
    (1.68, 934.4, 252.1),
    (0.78, 899.4, 248.5),
    (1.60, 1069.2, 268.1),
    (2.14, 1171.6, 268.3),
    (2.75, 1206.1, 263.1),
]
DEMAND = {"source": "Prometheus", "meanPromptTokens": 1155, "meanOutputTokens": 211}


def _world(window: int = 300, interval: float = 1800.0) -> tuple[ServiceHarness, dict[str, Any], FakeMemberCluster]:
    settings = OperatorSettings(
        revalidate_delay_seconds=0,
        plan_interval_seconds=60,
        prometheus_url="http://prom",
        metrics_window_seconds=window,
        max_num_seqs_interval_seconds=interval,
    )
    world = ServiceHarness(["eu-de"], settings=settings)
    body = deployment_body(rps=4.0, demand=dict(DEMAND))
    world.add(body)
    for _ in range(2):  # no metrics yet: request rate unknown, the spec's means
        world.cycle()
    return world, body, world.members["eu-de"]


def _template(member: FakeMemberCluster) -> tuple[int, str]:
    return _max_num_seqs(member), _deployment(member)["metadata"]["annotations"][L.SPEC_HASH]


def _run(world: ServiceHarness, member: FakeMemberCluster, readings: list[tuple[float, float, float]]) -> list[Any]:
    history = [_template(member)]
    for rps, prompt, output in readings:
        world.metrics.set_signal(REF, Signal.REQUEST_RATE, rps)
        world.metrics.set_signal(REF, Signal.PROMPT_TOKEN_RATE, rps * prompt)
        world.metrics.set_signal(REF, Signal.GENERATION_TOKEN_RATE, rps * output)
        world.cycle()
        history.append(_template(member))
    return history


def _changes(history: list[Any]) -> int:
    return sum(a[1] != b[1] for a, b in itertools.pairwise(history))


def test_the_e2e_readings_over_its_20_s_window_keep_the_pod_template() -> None:
    # 0.45-2.75 req/s over 20 s: 9-55 finished requests a window, their means noisy; the interval holds the value.
    world, body, member = _world(window=20)
    history = _run(world, member, E2E)
    assert body["metadata"]["generation"] == 1  # the spec never changed
    assert _changes(history) == 0, history


def test_the_e2e_readings_over_a_300_s_window_roll_the_replicas_at_most_once() -> None:
    # Over 300 s most windows hold enough requests and their means move the planned value; the interval holds it.
    world, body, member = _world(window=300)
    history = _run(world, member, E2E)
    assert body["metadata"]["generation"] == 1
    assert _changes(history) <= 1, history


def test_a_first_small_window_does_not_roll_out_and_back() -> None:
    """Spec means -> a first window of ~9 finished requests (0.45/s over 20 s) -> the trace's own mean (= spec)."""
    world, body, member = _world(window=20)
    history = _run(world, member, [(0.45, 906.2, 207.6), (3.0, 1155.0, 211.0), (3.0, 1155.0, 211.0)])
    assert body["metadata"]["generation"] == 1
    assert len({h for _, h in history}) == 1, history


# ------------------------------------------------------------------ the rollout interval


def _live(max_num_seqs: int, since: datetime | None) -> WorkloadState:
    return WorkloadState(
        "team-a", "llama", "H100", "w", "ns", 1, 1, variant="", max_num_seqs=max_num_seqs, generation=1,
        max_num_seqs_since=since,
    )  # fmt: skip


def _since(member: FakeMemberCluster) -> datetime:
    stamp = _deployment(member)["metadata"]["annotations"][L.MAX_NUM_SEQS_SINCE]
    return datetime.fromisoformat(stamp)


def test_a_new_value_alone_waits_out_the_interval_and_a_restart_keeps_the_clock() -> None:
    world, body, member = _world(interval=1800)
    first, template = _template(member)
    rendered = _since(member)
    assert rendered == world.now - timedelta(minutes=1)  # the Deployment's first rendering: the first cycle
    # Shorter prompts over enough requests: the planned value rises far past the band, and waits.
    history = _run(world, member, [(4.0, 900.0, 211.0)] * 5)
    assert {h for h in history} == {(first, template)}
    world.service = world.make_service(world.identity)  # a restart: the interval is read back from the Deployment
    while world.now + timedelta(minutes=1) - rendered < timedelta(seconds=1800):
        assert _run(world, member, [(4.0, 900.0, 211.0)])[-1] == (first, template)
    later = _run(world, member, [(4.0, 900.0, 211.0)])[-1][0]
    assert later > first * 1.25 + 1  # the cycle 1800 s after the last rendering renders it
    assert _since(member) == world.now and body["metadata"]["generation"] == 1


def _from_900() -> tuple[ServiceHarness, FakeMemberCluster]:
    world, _, member = _world(interval=1800)
    world.deployments["chat"]["spec"]["demand"]["meanPromptTokens"] = 900
    world.deployments["chat"]["metadata"]["generation"] += 1
    world.cycle()
    return world, member


def test_a_planned_value_below_half_the_live_one_is_rendered_within_the_interval() -> None:
    world, member = _from_900()
    live = _max_num_seqs(member)
    history = _run(world, member, [(4.0, 1155.0, 211.0)])
    assert history[-1][0] < live * actuate.MAX_NUM_SEQS_UNSAFE_BELOW  # an unsafe live cap: rendered at once
    assert history[-1][1] != history[0][1]


def test_a_planned_value_past_the_band_but_not_below_half_is_held_within_the_interval() -> None:
    world, member = _from_900()
    live = _max_num_seqs(member)
    history = _run(world, member, [(4.0, 1000.0, 211.0)] * 3)
    assert {h for h in history} == {history[0]} and history[0][0] == live


# Boundaries of the rule itself, on the live Deployment as WorkloadState reads it.
NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


def _steady(planned: int, since: datetime | None, live: int = 20, interval: float = 1800.0, replicas: int = 1) -> int:
    body = deployment_body(rps=4.0, demand=dict(DEMAND))
    deployment: Any = type("Observed", (), {"body": body, "resource": InferenceDeployment.model_validate(body)})()
    running = WorkloadState(
        "team-a", "chat", "H100", "w", "ns", replicas, replicas, variant="", max_num_seqs=live, generation=1,
        max_num_seqs_since=since,
    )  # fmt: skip
    return actuate._steady_max_num_seqs(deployment, running, "", planned, (NOW, interval))


def test_the_interval_holds_until_its_last_second() -> None:
    just = NOW - timedelta(seconds=1799)
    assert _steady(30, just) == 20 and _steady(10, just) == 20  # above the band; below it, not below half
    assert _steady(30, NOW - timedelta(seconds=1800)) == 30 and _steady(10, NOW - timedelta(seconds=1800)) == 10


def test_half_the_live_value_is_held_and_below_half_is_not() -> None:
    assert _steady(10, NOW) == 20 and _steady(9, NOW) == 9


@pytest.mark.parametrize("since", [None, NOW + timedelta(seconds=1)])
def test_a_deployment_without_a_past_stamp_takes_one_new_value(since: datetime | None) -> None:
    # None: rendered before gridshift wrote it down (or the annotation removed); a future one: a clock set back.
    assert _steady(30, since) == 30


def test_an_interval_of_0_is_the_dead_band_alone() -> None:
    assert _steady(30, NOW, interval=0) == 30 and _steady(22, NOW, interval=0) == 20


def test_the_stamp_is_read_back_from_the_deployments_metadata_not_its_pod_template() -> None:
    world, _, member = _world()
    obj = _deployment(member)
    assert L.MAX_NUM_SEQS_SINCE not in (obj["spec"]["template"]["metadata"].get("annotations") or {})
    state = state_from_deployment(obj)
    assert state is not None and state.max_num_seqs_since == world.now - timedelta(minutes=1)
    # Found in review: a stamp out of datetime's range once converted to UTC raised OverflowError, and the whole
    # Deployment was skipped as not understood (its replicas uncounted, scaled 3 -> 1 the next cycle).
    for garbled in ("yesterday", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-13-01T00:00:00Z"):
        obj["metadata"]["annotations"][L.MAX_NUM_SEQS_SINCE] = garbled
        assert replace(state, max_num_seqs_since=None) == state_from_deployment(obj), garbled


def test_a_deployment_at_0_replicas_takes_the_new_value_within_the_interval() -> None:
    """Found in review: a Deployment kept at 0 replicas held the old value, so a migration's ScaleUp back started
    its pods with it and the interval's end restarted them 16 minutes later; at 0 a new value rolls nothing."""
    assert _steady(30, NOW, replicas=0) == 30 and _steady(30, NOW, replicas=1) == 20
    assert _steady(22, NOW, replicas=0) == 20  # the dead band still holds: no write for a hair's move
