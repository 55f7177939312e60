"""Each field of a built Option holds what its name says.

`problem._option` passes Option's fields positionally (keywords cost three times as much at 10,000
deployments), so a field added, removed or reordered in Option without the call would shift values
into the wrong fields silently. Every value below is distinct from its neighbours', so a shift fails here.
"""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from gridshift.planner import PlannerSettings
from gridshift.planner.problem import Option, build_problem
from gridshift.planner.snapshot import Placement, Variant
from tests.planner.planner_world import H100, H100_MODEL, MODEL, cluster, deployment, flat_prices, snapshot

SETTINGS = PlannerSettings()
PAYBACK_HOURS = 6.0
FP8 = "fp8-build-of-" + MODEL


def _options() -> dict[str, Option]:
    chat = deployment("chat", 4.0, preferred=("west",), max_replicas=5, payback_hours=PAYBACK_HOURS)
    chat = replace(chat, placements=(Placement("eu", H100, 3, 2),))
    world = snapshot(
        [chat],
        [
            cluster("eu", region="west", gpus={H100: 16}, gpu_hour=2.5, pue=1.3),
            cluster("us", region="east", gpus={H100: 3}, gpu_hour=1.5, pue=1.1),
        ],
        {"eu": flat_prices(0.1), "us": flat_prices(0.2, stale=True)},
    )
    (problem,) = build_problem(world, SETTINGS).deployments
    return {o.cluster: o for o in problem.options}


def test_every_field_of_a_built_option_holds_its_own_value() -> None:
    options = _options()
    eu, us = options["eu"], options["us"]
    assert (eu.deployment, eu.cluster, eu.region, eu.gpu_type, eu.gpus) == (0, "eu", "west", H100, 1)
    assert (us.cluster, us.region, us.key, eu.key) == ("us", "east", ("us", H100), ("eu", H100))
    assert eu.capacity_rps > 0
    assert eu.capacity_tokens_per_s == pytest.approx(eu.capacity_rps * 250.0)
    assert H100_MODEL.power_base_watts <= eu.power_at_capacity_watts <= H100_MODEL.power_cap_watts
    assert (eu.pue, us.pue, eu.gpu_hour_usd, us.gpu_hour_usd) == (1.3, 1.1, 2.5, 1.5)
    eu_hourly = 2.5 + eu.power_at_capacity_watts * 1.3 * 0.1 / 1000
    assert eu.hourly_cost_now_usd == pytest.approx(eu_hourly)
    # Preferred: the window cost scaled toward zero by the discount.
    assert eu.window_cost_usd == pytest.approx(PAYBACK_HOURS * eu_hourly * (1 - SETTINGS.preferred_region_discount))
    eu_start = SETTINGS.cold_start_seconds / 3600 * (2.5 + 75.5 * 1.3 * 0.1 / 1000) + SETTINGS.move_penalty_usd
    assert eu.start_cost_usd == pytest.approx(eu_start)
    assert eu.hourly_usd == pytest.approx(eu.window_cost_usd / PAYBACK_HOURS)
    assert eu.start_per_hour_usd == pytest.approx(eu_start / PAYBACK_HOURS)
    us_hourly = 1.5 + us.power_at_capacity_watts * 1.1 * 0.2 / 1000
    assert us.window_cost_usd == pytest.approx(PAYBACK_HOURS * us_hourly)
    assert (eu.current, eu.ready, eu.upper) == (3, 2, 5)
    assert (us.current, us.ready, us.upper) == (0, 0, 3)
    assert (eu.stale, eu.preferred, us.stale, us.preferred) == (False, True, True, False)
    assert eu.model is H100_MODEL
    assert isinstance(eu.max_num_seqs, int) and eu.max_num_seqs > 1
    assert (eu.carbon_usd_per_hour, eu.carbon_limit, eu.carbon_penalty_usd, eu.variant) == (0.0, None, 0.0, "")


def test_a_built_option_carries_its_variant() -> None:
    fp8 = replace(H100_MODEL, model=FP8, step_base_ms=H100_MODEL.step_base_ms * 0.6)
    chat = deployment("chat", 12.0)
    chat = replace(chat, requirements=replace(chat.requirements, variants=(Variant("fp8", (FP8,)),)))
    world = snapshot([chat], [cluster("eu")], {"eu": flat_prices(0.1)}, profiles=(H100_MODEL, fp8))
    (problem,) = build_problem(world, SETTINGS).deployments
    (option,) = problem.options
    assert (option.variant, option.model.model) == ("fp8", FP8)


def test_option_fields_are_the_ones_the_build_passes() -> None:
    # The positional call in problem._option lists these, in this order: change both together.
    assert [f.name for f in fields(Option) if f.init] == [
        "deployment",
        "cluster",
        "region",
        "gpu_type",
        "gpus",
        "capacity_rps",
        "capacity_tokens_per_s",
        "power_at_capacity_watts",
        "pue",
        "gpu_hour_usd",
        "window_cost_usd",
        "hourly_cost_now_usd",
        "start_cost_usd",
        "hourly_usd",
        "start_per_hour_usd",
        "current",
        "ready",
        "upper",
        "stale",
        "preferred",
        "model",
        "max_num_seqs",
        "carbon_usd_per_hour",
        "carbon_limit",
        "carbon_penalty_usd",
        "variant",
        "carbon_stale",
        "carbon_start_per_hour_usd",
        "carbon_limit_on_start",
    ]
