"""The hindsight bound: a hand-solved case, its agreement with the simulator's accounting, and validity."""

from __future__ import annotations

import numpy as np
import pytest

from gridshift.planner.capacity import replica_capacity
from gridshift.planner.settings import PlannerSettings
from gridshift.simulation.engine import Schedule, account, cost_rates, simulate
from gridshift.simulation.hindsight import _replica_minutes, solve_hindsight, solve_hindsight_lp
from gridshift.simulation.policies import GreedyPolicy, GridshiftPolicy, ReactivePolicy, StaticPolicy
from gridshift.simulation.settings import Scenario
from tests.simulation.sim_replay import flat_replay, hourly_prices, models, setup, shipped_replay

MINUTES = 120


def _capacity() -> float:
    model = next(m for m in models() if m.model == "meta-llama/Meta-Llama-3-8B-Instruct")
    return replica_capacity(
        model,
        mean_prompt_tokens=1155.0,
        mean_output_tokens=211.0,
        tpot_slo_ms=50.0,
        ttft_slo_ms=1000.0,
        settings=PlannerSettings(),
    ).requests_per_second


def _two_market_replay():  # type: ignore[no-untyped-def]
    # Constant load of 1.5 replicas' SLO capacity: two Ready replicas are needed in every minute.
    deployment = setup("chat", 1.5 * _capacity(), "CHEAP")
    prices = [hourly_prices("CHEAP", [50.0] * 4), hourly_prices("DEAR", [100.0] * 4)]
    return flat_replay([deployment], prices, minutes=MINUTES)


@pytest.mark.parametrize("scenario", [Scenario.RENTED, Scenario.OWNED])
def test_hand_solved_case_two_replicas_in_the_cheap_market(scenario: Scenario) -> None:
    replay = _two_market_replay()
    assert replay.deployments[0].needed.tolist() == [2] * MINUTES
    rate = replay.deployments[0].rate_rps[0]
    power = float(replay.replica_power_watts(np.asarray([0]), np.asarray([rate / 2.0]))[0])
    pue, price_usd_per_kwh, gpu_hour, idle = 1.2, 0.05, 2.5, 75.5
    # By hand: both replicas in CHEAP all the time, no start (the replay begins from a free placement).
    if scenario == Scenario.RENTED:
        per_minute = 2 * gpu_hour / 60.0 + 2 * power * pue * price_usd_per_kwh / 60_000.0
    else:
        per_minute = 2 * (power - idle) * pue * price_usd_per_kwh / 60_000.0
    expected = MINUTES * per_minute
    rates = cost_rates(replay, scenario)
    assert solve_hindsight(replay, rates).cost_usd == pytest.approx(expected, rel=1e-9)
    assert solve_hindsight_lp(replay, rates).cost_usd == pytest.approx(expected, rel=1e-7)
    # Static, homed in CHEAP and sized for the peak, runs exactly that schedule: the simulator's accounting
    # must give the bound's value to the cent, which is what makes the bound the simulator's own cost model.
    static = account(replay, simulate(replay, StaticPolicy(replay)), scenario, rates)
    assert static.cost_usd == pytest.approx(expected, rel=1e-9)
    assert static.slo_ok_pct == 100.0


def test_replica_minutes_counts_cold_starts_and_bridges_short_gaps() -> None:
    cold = 3
    # One replica all along; a second from minute 10 to 19: it must start at minute 7 (3 held minutes early).
    required = np.asarray([1] * 10 + [2] * 10 + [1] * 10)
    assert _replica_minutes(required, cold) == 30 + 10 + 3
    # A gap of 2 minutes is cheaper to hold through (2) than to restart (3).
    required = np.asarray([2] * 5 + [1] * 2 + [2] * 5)
    assert _replica_minutes(required, cold) == 12 + 5 + 5 + 2
    # A gap of 10 minutes: stop, and start again 3 minutes early.
    required = np.asarray([2] * 5 + [1] * 10 + [2] * 5)
    assert _replica_minutes(required, cold) == 20 + 5 + 5 + 3
    # Needed from minute 0: Ready at the start at no cost.
    assert _replica_minutes(np.asarray([3] * 4), cold) == 12


def test_fast_bound_is_below_the_joint_lp_which_is_below_the_integer_optimum() -> None:
    replay = shipped_replay(days=1 / 24, deployments=3)
    for scenario in (Scenario.OWNED, Scenario.RENTED):
        rates = cost_rates(replay, scenario)
        fast = solve_hindsight(replay, rates).cost_usd
        joint = solve_hindsight_lp(replay, rates).cost_usd
        exact = solve_hindsight_lp(replay, rates, integer=True).cost_usd
        assert fast <= joint + 1e-9
        assert joint <= exact + 1e-9
        # The relaxations are tight on this workload (within 2%).
        assert fast >= 0.98 * exact


@pytest.fixture(scope="module")
def short_replay():  # type: ignore[no-untyped-def]
    replay = shipped_replay(days=0.25, deployments=4)
    runs = {}
    for scenario in (Scenario.OWNED, Scenario.RENTED):
        for policy in (
            StaticPolicy(replay),
            ReactivePolicy(replay),
            GreedyPolicy(replay, scenario),
            GridshiftPolicy(replay, scenario),
        ):
            runs[(scenario, policy.name)] = simulate(replay, policy)
    return replay, runs


def _ready_totals(schedule: Schedule) -> np.ndarray:  # type: ignore[type-arg]
    return schedule.ready.sum(axis=2)


def test_hindsight_is_below_every_policy(short_replay) -> None:  # type: ignore[no-untyped-def]
    replay, runs = short_replay
    needed = np.stack([d.needed for d in replay.deployments], axis=1)
    for scenario in (Scenario.OWNED, Scenario.RENTED):
        rates = cost_rates(replay, scenario)
        bound = solve_hindsight(replay, rates).cost_usd
        for (run_scenario, name), schedule in runs.items():
            if run_scenario != scenario:
                continue
            totals = account(replay, schedule, scenario, rates)
            if totals.slo_ok_pct == 100.0:
                assert bound <= totals.cost_usd + 1e-9, (scenario, name)
            # A policy that missed the SLO in some minutes is bounded by the hindsight that may miss them too.
            met = _ready_totals(schedule) >= needed
            waived = solve_hindsight(replay, rates, required=np.where(met, needed, 0)).cost_usd
            assert waived <= totals.cost_usd + 1e-9, (scenario, name)
            assert waived <= bound + 1e-9


def test_a_replica_never_draws_less_than_its_gpus_idle_power_so_extra_replicas_never_undercut_the_bound() -> None:
    # The bound's validity for policies holding more Ready replicas than needed rests on this (module docstring).
    replay = shipped_replay(days=1 / 24, deployments=4)
    for index, deployment in enumerate(replay.deployments):
        rate = float(deployment.rate_rps.max())
        needed = int(np.ceil(rate / deployment.capacity_rps))
        counts = np.arange(needed, needed + 20)
        power = replay.replica_power_watts(np.full(len(counts), index), rate / counts)
        total = counts * power
        idle = deployment.gpus * replay.settings.gpu_idle_watts
        assert np.all(total[1:] - total[0] >= (counts[1:] - counts[0]) * idle - 1e-9)
        assert np.all(power >= idle)


@pytest.mark.parametrize("scenario", [Scenario.RENTED, Scenario.OWNED])
def test_at_negative_prices_the_bound_buys_no_phantom_replicas(scenario: Scenario) -> None:
    deployment = setup("chat", 1.5 * _capacity(), "NEG")
    prices = [hourly_prices("NEG", [-400.0] * 4), hourly_prices("POS", [50.0] * 4)]
    replay = flat_replay([deployment], prices, minutes=MINUTES)
    bound = solve_hindsight(replay, cost_rates(replay, scenario))
    # Exactly the two replicas needed serve, in the negative market; none held idle for credit.
    assert bound.serving.sum(axis=(1, 2)) == pytest.approx(np.full(MINUTES, 2.0))
    assert bound.serving[:, 0, 0] == pytest.approx(np.full(MINUTES, 2.0))


def test_the_bounds_gpu_hours_include_cold_starts() -> None:
    replay = shipped_replay(days=0.25, deployments=2)
    bound = solve_hindsight(replay, cost_rates(replay, Scenario.RENTED))
    needed = np.stack([d.needed for d in replay.deployments], axis=1)
    cold = replay.settings.cold_start_minutes
    expected = sum(_replica_minutes(needed[:, d], cold) for d in range(needed.shape[1])) / 60.0
    assert bound.gpu_hours == pytest.approx(expected)
    assert bound.gpu_hours > needed.sum() / 60.0  # starts held GPUs before they served


def test_the_request_level_bound_takes_the_fewest_passing_replicas_and_spends_the_allowance_where_it_saves_most() -> (
    None
):
    from gridshift.simulation.runner import request_level_required

    needed = np.full((200, 2), 4, dtype=np.int64)
    levels = [needed, needed + 1, needed + 2]
    passes = [np.ones((200, 2), dtype=bool) for _ in levels]
    passes[0][10:20, 0] = False  # 10 minutes need one more
    passes[0][50, 1] = passes[1][50, 1] = False  # one minute needs two more
    passes[0][60, 1] = passes[1][60, 1] = passes[2][60, 1] = False  # one minute fails even with two more
    required, ok = request_level_required(needed, levels, passes)
    # 1% of 400 deployment-minutes = 4 may miss: the two that cost two more first, then two of the +1 minutes.
    assert required[50, 1] == 4 and required[60, 1] == 4 and not ok[50, 1] and not ok[60, 1]
    assert (required[10:20, 0] == 5).sum() == 8 and (required[10:20, 0] == 4).sum() == 2
    assert ok.sum() == 400 - 4
    assert (required[:10] == 4).all() and (required[100:] == 4).all()


def test_ratios_to_a_cost_at_or_below_zero_are_null() -> None:
    # At negative prices an owned fleet's costs fall below zero, where a ratio reads backwards
    # (gridshift at -0.977 over hindsight at -0.927 gave 1.055, "5.5% above the bound").
    import numpy as np

    from gridshift.simulation.hindsight import HindsightResult
    from gridshift.simulation.runner import HindsightMethod, PolicyResult, ScenarioResult
    from gridshift.simulation.settings import Scenario

    def policy(name: str, cost: float) -> PolicyResult:
        return PolicyResult(name, cost, None, 0.0, 100.0, 100.0, 0.0, 0.0, 0.0, np.zeros((1, 1)), np.zeros(1))

    def bound(cost: float) -> HindsightResult:
        return HindsightResult(cost, np.zeros((1, 1, 1)), np.zeros((1, 1, 1)), 0.0, 0.0, 1, False, 0.0)

    costs = {"static": -0.981, "gridshift": -0.977, "hindsight": -0.927, "reactive": -0.9, "greedy": -0.95}
    policies = {n: policy(n, c) for n, c in costs.items()}
    result = ScenarioResult(
        Scenario.OWNED,
        policies,
        None,
        None,
        HindsightMethod.FAST,
        bounds={"same_information_bound": bound(-0.924), "hindsight_at_slo_allowance": bound(0.0)},
    )
    assert result.ratio("gridshift", "hindsight") is None and result.ratio("gridshift", "static") is None
    assert result.savings_captured() is None
    # The JSON's ratios to the other bounds too (found in review: -0.977 over a bound of -0.924 read 1.057).
    ratios = result.to_json()["ratios"]
    assert ratios["gridshift/same_information_bound"] is None and ratios["gridshift/hindsight_at_slo_allowance"] is None
    assert ratios["gridshift/hindsight"] is None and ratios["gridshift/static"] is None
    above = ScenarioResult(
        Scenario.OWNED, policies, None, None, HindsightMethod.FAST, bounds={"same_information_bound": bound(0.5)}
    )
    assert above.to_json()["ratios"]["gridshift/same_information_bound"] == round(-0.977 / 0.5, 4)
    positive = ScenarioResult(
        Scenario.OWNED, {"a": policy("a", 2.0), "b": policy("b", 4.0)}, None, None, HindsightMethod.FAST
    )
    assert positive.ratio("a", "b") == 0.5


def test_the_slo_allowance_lets_each_deployment_fall_one_short_in_its_busiest_one_percent_of_minutes() -> None:
    """Found in review: only minutes above the 99th percentile of the count were lowered, and a peak held for
    more than 1% of minutes (most deployments) left none."""
    from types import SimpleNamespace

    from gridshift.simulation.runner import allowance_required

    plateau = np.full(1000, 3, dtype=np.int64)
    plateau[200:400] = 5  # the peak, held for 20% of the minutes
    spike = np.full(1000, 2, dtype=np.int64)
    spike[[7, 500, 900]] = [4, 6, 4]
    floor = np.full(1000, 2, dtype=np.int64)  # at minReplicas throughout: nothing to lower
    replay = SimpleNamespace(
        deployments=[
            SimpleNamespace(needed=needed, setup=SimpleNamespace(min_replicas=minimum))
            for needed, minimum in ((plateau, 1), (spike, 1), (floor, 2))
        ]
    )
    required = allowance_required(replay)  # type: ignore[arg-type]
    # 1% of 1000 minutes: 10 per deployment, the most replicas first, ties in minute order.
    assert np.flatnonzero(required[:, 0] < plateau).tolist() == list(range(200, 210))
    assert (required[200:210, 0] == 4).all()
    lowered = np.flatnonzero(required[:, 1] < spike)
    assert lowered.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 500, 900]
    assert required[[7, 500, 900], 1].tolist() == [3, 5, 3] and (required[:7, 1] == 1).all()
    assert (required[:, 2] == 2).all()


@pytest.mark.parametrize("scenario", [Scenario.RENTED, Scenario.OWNED])
def test_the_bound_at_the_slo_allowance_never_costs_more_than_the_bound_it_relaxes(scenario: Scenario) -> None:
    """A bound that relaxes a constraint must not cost more. Found in review: on an owned fleet it did (91.54
    vs 91.53 USD on the default week): a minute one replica short is priced at the most a replica draws."""
    from gridshift.simulation.runner import allowance_required

    short_replay = shipped_replay(days=0.5, deployments=4)
    rates = cost_rates(short_replay, scenario)
    plain = solve_hindsight(short_replay, rates)
    required = allowance_required(short_replay)
    needed = np.stack([d.needed for d in short_replay.deployments], axis=1)
    assert ((needed - required).sum(axis=0) >= needed.shape[0] // 100).all()
    relaxed = solve_hindsight(short_replay, rates, required=required, relaxed=True)
    assert relaxed.cost_usd <= plain.cost_usd + 1e-9
    if scenario == Scenario.RENTED:
        # Fewer GPU-hours: strictly cheaper where GPUs are paid by the hour.
        assert relaxed.cost_usd < plain.cost_usd


@pytest.mark.parametrize("scenario", [Scenario.RENTED, Scenario.OWNED])
def test_the_bound_at_the_slo_allowance_with_no_allowance_is_the_plain_bound_exactly(scenario: Scenario) -> None:
    short_replay = shipped_replay(days=0.5, deployments=4)
    rates = cost_rates(short_replay, scenario)
    plain = solve_hindsight(short_replay, rates)
    needed = np.stack([d.needed for d in short_replay.deployments], axis=1)
    relaxed = solve_hindsight(short_replay, rates, required=needed, relaxed=True)
    assert relaxed.cost_usd == pytest.approx(plain.cost_usd, rel=1e-12, abs=1e-12)
    assert relaxed.gpu_hours == plain.gpu_hours


def test_a_schedule_one_replica_short_in_the_allowed_minutes_costs_no_less_than_the_allowance_bound() -> None:
    """Found in review: each minute was priced as every allowed deployment one replica short, each short replica
    at the most a replica draws, or none short; mixed minutes were never considered and positive prices made
    the short replica dear, so the plain bound's placement, one replica fewer in each allowed minute (99.03% of
    minutes within the SLO), cost 1.0900 USD owned against a "bound" of 1.0903. Owned: the schedule below
    starts replicas Ready, which costs an owned fleet nothing above its idle draw but would skip rented
    cold-start GPU-hours."""
    from gridshift.simulation.runner import allowance_required

    short_replay = shipped_replay(days=0.5, deployments=4)
    scenario = Scenario.OWNED
    rates = cost_rates(short_replay, scenario)
    needed = np.stack([d.needed for d in short_replay.deployments], axis=1)
    required = allowance_required(short_replay)
    plain = solve_hindsight(short_replay, rates)
    relaxed = solve_hindsight(short_replay, rates, required=required, relaxed=True)
    ready = np.rint(plain.serving).astype(np.int32)
    assert np.abs(plain.serving - ready).max() < 1e-9
    short = ready.copy()
    for t, d in zip(*np.nonzero(required < needed), strict=True):
        short[t, d, int(np.argmax(short[t, d]))] -= 1  # the market running most of the deployment's replicas
    assert (short.sum(axis=2) >= required).all()
    schedule = Schedule(held=short.copy(), ready=short.copy(), migrations=0, decisions=0)
    accounting = account(short_replay, schedule, scenario, rates)
    assert accounting.slo_ok_pct >= 99.0
    assert relaxed.cost_usd <= accounting.cost_usd + 1e-9
