"""A Measured status.cost of a deployment some of whose replicas it cannot price (unpricedReplicas): its
usdPerMillionTokens is the priced replicas' cost over the tokens they served, or absent where no measurement
splits their tokens from the others' or a cluster of them measured none. And a cost as decided (Predicted,
Hypothetical) rewritten when unpricedReplicas changes, never for a price alone."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import pytest

from gridshift.modes import MigrationMode
from gridshift.planner.cost import SECONDS_PER_HOUR, TOKENS_PER_MILLION
from gridshift.planner.plan import CostPrediction
from gridshift.planner.snapshot import Placement
from gridshift.service.inputs import MeasuredCost
from gridshift.service.status import _cost, _measured_moved, _priced_token_rate
from gridshift.settings import OperatorSettings
from gridshift.signals.labels import DeploymentRef
from gridshift.signals.promql import Signal
from tests.service.harness import H100, T0, WORKLOADS, ServiceHarness, deployment_body, example_profile
from tests.service.test_status import PROMETHEUS, samples, settled

A100 = "NVIDIA-A100-SXM4-80GB"
TOKENS = {"a": 600.0, "b": 200.0}
"""Each cluster's measured output tokens/s."""
JOULES_PER_TOKEN = 2.0


def _offering(gpu_type: str) -> dict[str, Any]:
    return {"gpuType": gpu_type, "hourlyCost": {"amount": 2.0, "currency": "USD"}}


def _frozen_over_a_and_b_with_b_unpriced() -> ServiceHarness:
    """Frozen on H100 in `a` and A100 in `b` (minRegions 2), then `b` stops offering A100: its replicas run on,
    unpriced; each cluster measured at its TOKENS and JOULES_PER_TOKEN (one Prometheus, series told apart by a
    cluster label)."""
    world, body = _frozen_over_a_and_b()
    _b_stops_offering_a100(world)
    settled(world)
    _measure(world, body, TOKENS)
    settled(world)
    return world


def _frozen_over_a_and_b() -> tuple[ServiceHarness, dict[str, Any]]:
    """Frozen on H100 in `a` and A100 in `b` (minRegions 2), every replica priced; the world and its body."""
    h100 = example_profile()
    world = ServiceHarness(
        ["a", "b"],
        profiles=[h100, dataclasses.replace(h100, gpu_type=A100)],
        settings=OperatorSettings(
            revalidate_delay_seconds=0,
            plan_interval_seconds=60,
            prometheus_url="http://prom",
            metrics_cluster_label="cluster",
        ),
    )
    world.members["b"].gpus = {A100: 16}
    world.cluster_bodies["b"]["spec"]["offerings"] = [_offering(A100)]
    body = deployment_body(
        rps=4.0, replica={"gpuTypes": [H100, A100]}, capacity={"minReplicas": 2, "maxReplicas": 16, "minRegions": 2}
    )
    world.add(body)
    settled(world)
    assert world.ready()["a"] > 0 and world.ready()["b"] > 0, world.ready()
    body["spec"]["migration"]["mode"] = "Frozen"
    body["metadata"]["generation"] = 2
    return world, body


def _b_stops_offering_a100(world: ServiceHarness) -> None:
    world.cluster_bodies["b"]["spec"]["offerings"] = [_offering(H100)]
    world.cluster_bodies["b"]["metadata"]["resourceVersion"] = "2"


def _measure(world: ServiceHarness, body: dict[str, Any], tokens: dict[str, float]) -> None:
    """Prometheus demand (once), each cluster's output tokens/s at `tokens`, the rest as TOKENS measures them."""
    if body["spec"]["demand"] != PROMETHEUS:
        body["spec"]["demand"] = dict(PROMETHEUS)
        body["metadata"]["generation"] += 1
    for cluster, rate in tokens.items():
        ref = DeploymentRef("ml", "chat", WORKLOADS, "chat", cluster)
        for signal, value in {
            Signal.REQUEST_RATE: 2.0,
            Signal.PROMPT_TOKEN_RATE: 2000.0,
            Signal.GENERATION_TOKEN_RATE: rate,
            Signal.JOULES_PER_TOKEN: JOULES_PER_TOKEN,
        }.items():
            world.metrics.set_signal(ref, signal, value)


def _expected_usd_per_million_tokens(world: ServiceHarness, priced_tokens_per_second: float) -> float:
    gpu_usd_per_hour = 2.0 * world.ready()["a"]  # a's H100 replicas (one GPU each), the only ones priced
    energy_usd_per_million = JOULES_PER_TOKEN * TOKENS_PER_MILLION / SECONDS_PER_HOUR * 1.2 * 50.0 / 1e6
    return (
        gpu_usd_per_hour / (priced_tokens_per_second * SECONDS_PER_HOUR / TOKENS_PER_MILLION) + energy_usd_per_million
    )


def test_a_measured_cost_per_million_tokens_is_over_the_priced_replicas_tokens_alone() -> None:
    # Found in review: the priced replicas' GPU-hours over the tokens every replica served (a's 600 tokens/s and
    # b's 200), so it read a quarter below what a's replicas cost per token, with only unpricedReplicas beside it.
    world = _frozen_over_a_and_b_with_b_unpriced()
    status = world.status()
    cost = status["cost"]
    assert cost["source"] == "Measured" and cost["unpricedReplicas"] == world.ready()["b"], cost
    assert status["observedSlo"]["outputTokensPerSecond"] == sum(TOKENS.values())  # every replica's, as measured
    gpu_usd_per_hour = 2.0 * world.ready()["a"]  # a's H100 replicas (one GPU each), the only ones priced
    assert cost["usdPerHour"] * (1.0 - cost["energyShare"]) == pytest.approx(gpu_usd_per_hour, rel=0.01)
    energy_usd_per_million = JOULES_PER_TOKEN * TOKENS_PER_MILLION / SECONDS_PER_HOUR * 1.2 * 50.0 / 1e6
    tokens_millions_per_hour = TOKENS["a"] * SECONDS_PER_HOUR / TOKENS_PER_MILLION  # a's alone
    expected = gpu_usd_per_hour / tokens_millions_per_hour + energy_usd_per_million
    assert cost["usdPerMillionTokens"] == pytest.approx(expected, rel=0.05), cost  # two significant digits


def _planned(cost_unpriced: tuple[tuple[str, str, int], ...], *targets: tuple[str, str, int]) -> Any:
    """The two parts of a DeploymentPlan `_priced_token_rate` reads: the cost's unpriced pools and the targets."""
    planned = tuple(SimpleNamespace(cluster=c, gpu_type=g, replicas=n) for c, g, n in targets)
    return SimpleNamespace(cost=SimpleNamespace(unpriced=cost_unpriced), targets=planned)


def _applied(*pools: tuple[str, str, int]) -> Any:
    return SimpleNamespace(placements=tuple(Placement(c, g, n, n) for c, g, n in pools))


def test_the_priced_token_rate_leaves_out_a_cluster_of_unpriced_replicas_and_refuses_a_mixed_one() -> None:
    measured = MeasuredCost(1000.0, 2.0, tokens_by_cluster=(("a", 600.0), ("b", 400.0)))
    every = _applied(("a", H100, 2), ("b", A100, 2))
    assert _priced_token_rate(_planned(()), every, measured) == 1000.0
    assert _priced_token_rate(_planned((("b", A100, 2),)), every, measured) == 600.0
    # b also runs priced H100 replicas: its 400 tokens/s are not split by GPU type, so no figure is made up.
    mixed = _applied(("a", H100, 2), ("b", A100, 2), ("b", H100, 1))
    assert _priced_token_rate(_planned((("b", A100, 2),)), mixed, measured) is None
    # The same where the plan puts priced replicas beside them (a move starting there): they serve from b too.
    assert _priced_token_rate(_planned((("b", A100, 2),), ("a", H100, 2), ("b", H100, 1)), every, measured) is None
    assert _priced_token_rate(_planned((("b", A100, 2),), ("a", H100, 3), ("b", H100, 0)), every, measured) == 600.0


def test_a_measured_cost_is_rewritten_when_tokens_move_between_priced_and_unpriced_clusters() -> None:
    # Found in review: only the total tokens/s and J/token were checked for drift, so a's 600 tokens/s falling to
    # 200 while b's rose to 600 (800 in all) kept 0.96 USD/Mtok where a's replicas now cost 2.8.
    world = _frozen_over_a_and_b_with_b_unpriced()
    before = world.status()["cost"]
    _measure(world, world.deployments["chat"], {"a": 630.0, "b": 170.0})  # jitter: within a tenth, no write
    assert settled(world)["cost"] == before
    _measure(world, world.deployments["chat"], {"a": 200.0, "b": 600.0})
    status = settled(world)
    cost = status["cost"]
    assert status["observedSlo"]["outputTokensPerSecond"] == sum(TOKENS.values())  # the total held
    assert cost["usdPerMillionTokens"] == pytest.approx(_expected_usd_per_million_tokens(world, 200.0), rel=0.05)
    assert cost["time"] != before["time"] and before["pricedOutputTokensPerSecond"] == TOKENS["a"], before
    assert cost["pricedOutputTokensPerSecond"] == 200.0, cost


def test_a_stored_measured_cost_takes_in_a_cluster_ceasing_to_offer_a_gpu_type() -> None:
    # Found in review: with measurements steady and no spec edit, b ceasing to offer A100 left the stored Measured
    # cost pricing b's replicas, without unpricedReplicas, though Predicted figures would leave them out.
    world, body = _frozen_over_a_and_b()
    settled(world)
    _measure(world, body, TOKENS)
    every = settled(world)["cost"]
    assert every["source"] == "Measured" and "unpricedReplicas" not in every, every
    assert "pricedOutputTokensPerSecond" not in every, every  # observedSlo's rate, where every replica is priced
    _b_stops_offering_a100(world)
    cost = settled(world)["cost"]
    assert cost.get("unpricedReplicas") == world.ready()["b"], cost
    assert cost["usdPerMillionTokens"] == pytest.approx(_expected_usd_per_million_tokens(world, TOKENS["a"]), rel=0.05)
    assert cost["pricedOutputTokensPerSecond"] == TOKENS["a"], cost


def test_a_figure_left_out_while_a_cluster_mixed_both_kinds_returns_when_it_no_longer_does() -> None:
    # Found in review: a Measured cost stored without usdPerMillionTokens (b ran priced and unpriced replicas) was
    # kept once b ran only unpriced ones, the measured inputs being steady: absent for good.
    mixed = {"usdPerHour": 2.0, "joulesPerToken": 2.0, "source": "Measured", "unpricedReplicas": 1}
    old = {"cost": mixed, "observedSlo": {"outputTokensPerSecond": 800.0}}
    measured = MeasuredCost(800.0, 2.0, tokens_by_cluster=(("a", 600.0), ("b", 200.0)))
    assert not _measured_moved(measured, {"unpricedReplicas": 1}, old)
    assert _measured_moved(measured, {"unpricedReplicas": 1, "pricedOutputTokensPerSecond": 600.0}, old)
    stored = {"cost": {**mixed, "pricedOutputTokensPerSecond": 600.0}, "observedSlo": old["observedSlo"]}
    assert _measured_moved(measured, {"unpricedReplicas": 1}, stored)  # and the other way: b now mixes them
    assert not _measured_moved(measured, {"unpricedReplicas": 1, "pricedOutputTokensPerSecond": 570.0}, stored)
    assert _measured_moved(measured, {"unpricedReplicas": 2, "pricedOutputTokensPerSecond": 600.0}, stored)


def _b_offers_a100_again(world: ServiceHarness) -> None:
    world.cluster_bodies["b"]["spec"]["offerings"] = [_offering(A100)]
    world.cluster_bodies["b"]["metadata"]["resourceVersion"] = "3"


def test_a_stored_predicted_cost_takes_in_unpriced_replicas_and_nothing_else_without_a_new_decision() -> None:
    # Found in review: the stored Predicted cost was kept until a new decision, so b ceasing to offer A100 (its
    # replicas kept, Frozen, now unpriced) left 4.05 USD/h pricing them and no unpricedReplicas beside it.
    world, _ = _frozen_over_a_and_b()
    every = settled(world)
    assert every["cost"]["source"] == "Predicted" and "unpricedReplicas" not in every["cost"], every["cost"]
    _b_stops_offering_a100(world)
    status = settled(world)
    cost = status["cost"]
    assert status["lastDecision"] == every["lastDecision"]  # no new decision: the same placement is kept
    assert cost.get("unpricedReplicas") == world.ready()["b"] and cost["time"] != every["cost"]["time"], cost
    assert cost["usdPerHour"] * (1.0 - cost["energyShare"]) == pytest.approx(2.0 * world.ready()["a"], rel=0.01)
    # A price change alone is still no news (docs/status.md): neither the energy price nor the GPU-hour's.
    world.prices["a"] = 400.0
    world.cluster_bodies["a"]["spec"]["offerings"][0]["hourlyCost"]["amount"] = 3.0
    world.cluster_bodies["a"]["metadata"]["resourceVersion"] = "2"
    assert settled(world)["cost"] == cost
    assert sum(samples(world, "gridshift_deployment_predicted_cost_usd_per_hour")) > 1.4 * cost["usdPerHour"]
    # And back: priced again, rewritten (at the prices of now), unpricedReplicas gone.
    _b_offers_a100_again(world)
    again = settled(world)["cost"]
    assert "unpricedReplicas" not in again and again["time"] != cost["time"], again
    assert again["usdPerHour"] > cost["usdPerHour"]


@pytest.mark.parametrize(("mode", "source"), [("Frozen", "Predicted"), ("Advisory", "Hypothetical")])
def test_a_stored_cost_as_decided_is_rewritten_for_unpriced_replicas_only(mode: str, source: str) -> None:
    stored = {"usdPerHour": 4.05, "usdPerMillionTokens": 1.41, "source": source, "time": "2024-06-03T10:00:00Z"}
    plan = _plan_costing(mode, usd_per_hour=2.02, unpriced=())
    assert _cost(T0, plan, _applied(), None, {"cost": stored}, refresh=False) == stored  # a price change alone
    plan = _plan_costing(mode, usd_per_hour=2.02, unpriced=(("b", A100, 1),))
    cost = _cost(T0, plan, _applied(), None, {"cost": stored}, refresh=False)
    assert cost["usdPerHour"] == 2.02 and cost["unpricedReplicas"] == 1 and cost["source"] == source, cost
    assert _cost(T0, plan, _applied(), None, {"cost": cost}, refresh=False) == cost  # then kept as it is
    plan = _plan_costing(mode, usd_per_hour=2.5, unpriced=(("b", A100, 2),))
    assert _cost(T0, plan, _applied(), None, {"cost": cost}, refresh=False)["unpricedReplicas"] == 2


def _plan_costing(mode: str, usd_per_hour: float, unpriced: tuple[tuple[str, str, int], ...]) -> Any:
    """The parts of a DeploymentPlan `_cost` reads without a measured cost: its mode and its CostPrediction."""
    cost = CostPrediction(
        usd_per_hour=usd_per_hour,
        gpu_usd_per_hour=usd_per_hour,
        energy_usd_per_hour=0.0,
        usd_per_million_tokens=None,
        joules_per_token=None,
        energy_share=0.0,
        power_watts=700.0,
        unpriced=unpriced,
    )
    return SimpleNamespace(cost=cost, mode=MigrationMode(mode), targets=())


def test_a_measured_cost_per_million_tokens_is_left_out_where_a_cluster_of_priced_replicas_measured_no_tokens() -> None:
    # Found in review: b's output-token series absent (its replicas Ready and priced), the Measured usdPerMillionTokens
    # divided a's and b's GPU-hours by a's tokens alone, reading high under source Measured, with nothing saying so.
    world, body = _frozen_over_a_and_b()
    settled(world)
    _measure(world, body, TOKENS)
    every = settled(world)["cost"]
    assert every["source"] == "Measured" and every["usdPerMillionTokens"] > 0, every
    world.metrics.clear_signal(DeploymentRef("ml", "chat", WORKLOADS, "chat", "b"), Signal.GENERATION_TOKEN_RATE)
    status = settled(world)
    cost = status["cost"]
    assert world.ready()["b"] > 0 and status["observedSlo"]["outputTokensPerSecond"] == TOKENS["a"]  # as measured
    assert cost["source"] == "Measured" and "usdPerMillionTokens" not in cost, cost
    assert cost["joulesPerToken"] == JOULES_PER_TOKEN and "unpricedReplicas" not in cost, cost
    # Measured there again, though the total moves by less than a tenth: the figure returns.
    _measure(world, body, {"b": 20.0})
    back = settled(world)["cost"]
    assert back["usdPerMillionTokens"] > 0 and back["time"] != cost["time"], back
    # A failed query of it fails the cluster's whole read (a demand signal): no Measured cost at all.
    world.metrics.fail_signal(Signal.GENERATION_TOKEN_RATE, "HTTP 503")
    assert settled(world)["cost"]["source"] == "Predicted"


def test_the_priced_token_rate_is_unknown_where_a_cluster_of_ready_priced_replicas_measured_none() -> None:
    measured = MeasuredCost(600.0, 2.0, tokens_by_cluster=(("a", 600.0),))  # b: no series, or its query failed
    every = _applied(("a", H100, 2), ("b", A100, 2))
    both = _planned((), ("a", H100, 2), ("b", A100, 2))
    assert _priced_token_rate(both, every, measured) is None
    # b's replicas not Ready (a move starting there, not scraped yet): they serve nothing, a's tokens are all.
    starting = SimpleNamespace(placements=(Placement("a", H100, 2, 2), Placement("b", A100, 2, 0)))
    assert _priced_token_rate(both, starting, measured) == 600.0
    # b's replicas unpriced: its tokens are left out anyway; beside an unpriced c, b's missing ones are not.
    assert _priced_token_rate(_planned((("b", A100, 2),), ("a", H100, 2), ("b", A100, 2)), every, measured) == 600.0
    with_c = _applied(("a", H100, 2), ("b", A100, 2), ("c", A100, 1))
    assert _priced_token_rate(_planned((("c", A100, 1),), ("a", H100, 2), ("b", A100, 2)), with_c, measured) is None
    # Ready replicas where the plan prices none (drained after a move) are in neither the cost nor the question.
    assert _priced_token_rate(_planned((), ("a", H100, 2)), every, measured) == 600.0
