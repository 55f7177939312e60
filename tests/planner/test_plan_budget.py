"""make_plan keeps to settings.time_budget_seconds as a whole (issue 13): building the problem and
assembling the plan count against the budget, not only the search."""

from __future__ import annotations

import gc
import time
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import gridshift.planner.plan as plan_module
from gridshift.planner import PlannerSettings, Snapshot, make_plan
from gridshift.planner.problem import Problem
from gridshift.planner.search import SearchResult
from gridshift.planner.synthetic import random_snapshot
from gridshift.profiles_catalog import default_performance_models
from tests.planner.test_properties import FLEET, FLEET_BUDGETS, SOLVERS, fleets


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _mid_size(deployments: int) -> Snapshot:
    return random_snapshot(
        default_performance_models(), deployments=deployments, clusters=12, gpu_types=3, seed=3, occupancy=0.4
    )


def test_the_search_gets_the_budget_less_the_build_and_the_assembly_reserve(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    build = plan_module.build_problem
    seen: dict[str, Any] = {}

    def slow_build(*args: Any, **kwargs: Any) -> Problem:
        problem = build(*args, **kwargs)
        clock.now += 0.3  # the build took 0.3 s on the caller's clock
        seen["problem"] = problem
        return problem

    search = plan_module.search

    def recording(*args: Any, **kwargs: Any) -> SearchResult:
        seen["budget"] = kwargs["budget"]
        return search(*args, **kwargs)

    monkeypatch.setattr(plan_module, "build_problem", slow_build)
    monkeypatch.setattr(plan_module, "search", recording)
    world = _mid_size(60)
    quick = PlannerSettings(time_budget_seconds=2.0, exact_search=False)  # the clock stands still
    make_plan(world, quick, clock=clock)
    reserve = plan_module.assembly_reserve(seen["problem"], 0.3)
    assert reserve > 0
    assert seen["budget"] == pytest.approx(2.0 - 0.3 - reserve)
    # Without a clock nothing is measured: the search gets the setting (its HiGHS limits add up to it).
    make_plan(world, quick)
    assert seen["budget"] == 2.0


def test_the_assembly_reserve_grows_with_size_and_with_a_slow_build() -> None:
    small = plan_module.build_problem(_mid_size(50), PlannerSettings())
    large = plan_module.build_problem(_mid_size(200), PlannerSettings())
    assert plan_module.assembly_reserve(large, 0.0) > 3 * plan_module.assembly_reserve(small, 0.0)
    # A build that ran 4x slower than its estimate (a wall clock on a loaded node): 4x the reserve.
    fast = plan_module.assembly_reserve(large, 0.0)
    estimate = plan_module._BUILD_SECONDS_PER_DEPLOYMENT * len(
        large.deployments
    ) + plan_module._BUILD_SECONDS_PER_OPTION * sum(len(d.options) for d in large.deployments)
    assert plan_module.assembly_reserve(large, 4 * estimate) == pytest.approx(4 * fast)


def _build_spends_the_budget(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A clock that the problem's build moves 5 s on, past any budget these tests give: the plan is what runs now."""
    clock = FakeClock()
    build = plan_module.build_problem

    def slow_build(*args: Any, **kwargs: Any) -> Problem:
        problem = build(*args, **kwargs)
        clock.now += 5.0
        return problem

    monkeypatch.setattr(plan_module, "build_problem", slow_build)
    return clock


def test_a_budget_spent_by_the_build_still_gives_a_valid_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _build_spends_the_budget(monkeypatch)
    plan = make_plan(_mid_size(40), PlannerSettings(time_budget_seconds=1.0), clock=clock)
    assert plan.budget_exhausted
    assert len(plan.deployments) == 40


def test_a_search_cut_short_by_the_budget_is_said_so_not_blamed_on_inventory_or_payback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Found in review: at 1,000 deployments and 0.5 s, "only 1 of minReplicas 2 fit in free inventory" with
    # 111 GPUs free in a pool, and "not moved ...: not paid back within 6 h" for 3.12 USD/h saved against a
    # 0.13 USD start. Here the build spends the budget: the plan is what runs now.
    from tests.planner.planner_world import H100, cluster, deployment, flat_prices, snapshot

    clock = _build_spends_the_budget(monkeypatch)
    world = snapshot(
        [deployment("new", 20.0, min_replicas=2), deployment("dear", 3.0, placements=[("b", H100, 2)])],
        [cluster("a", gpus={H100: 16}), cluster("b", gpus={H100: 16})],
        {"a": flat_prices(0.01), "b": flat_prices(0.90)},
    )
    plan = make_plan(world, PlannerSettings(time_budget_seconds=1.0), clock=clock)
    assert plan.budget_exhausted
    new = plan.for_deployment("ns/new")
    assert new.total_replicas == 0
    assert new.infeasible_reason == (
        f"needs more tokens/s within the SLO than fit (the search was cut short by its time budget: a/{H100} has "
        "room); only 0 of minReplicas 2 placed"
    )
    dear = plan.for_deployment("ns/dear")
    assert dear.total_replicas == 2
    (detail,) = [d for d in dear.explanation.details if d.startswith(f"not moved to a/{H100}")]
    assert detail.endswith("paid back within 6 h, but the search was cut short by its time budget"), detail
    # With the time it needs, it moves.
    assert make_plan(world).for_deployment("ns/dear").targets != dear.targets


def test_min_regions_unmet_by_a_search_cut_short_names_the_budget_and_a_pool_with_room(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The spread clause's own cause (plan._spread): the build spends the budget, so the plan is what runs now, both
    # replicas in region a, minRegions 2, while b and c (each its own region) have room. Not short of the demand nor
    # of minReplicas, no clause before it gives a cause: this one names the budget (found in review: nothing pinned
    # it; the move limit's words, or none, passed every planner test in its place).
    from tests.planner.planner_world import H100, cluster, deployment, flat_prices, snapshot

    clock = _build_spends_the_budget(monkeypatch)
    d = deployment("chat", 0.5, min_regions=2, placements=[("a", H100, 2)])
    clusters = [cluster("a", gpus={H100: 2}), cluster("b", gpus={H100: 8}), cluster("c", gpus={H100: 8})]
    world = snapshot([d], clusters, {c.name: flat_prices(0.1) for c in clusters})
    plan = make_plan(world, PlannerSettings(time_budget_seconds=1.0), clock=clock)
    assert plan.budget_exhausted
    chat = plan.for_deployment("ns/chat")
    assert {t.cluster: t.replicas for t in chat.targets} == {"a": 2}
    assert chat.infeasible_reason == (
        f"spread over 1 of minRegions 2 (the search was cut short by its time budget: b/{H100} has room)"
    )
    # With the time it needs, it spreads.
    monkeypatch.undo()
    assert make_plan(world).for_deployment("ns/chat").feasible


@pytest.mark.parametrize("spent_by", ["nothing", "the pricing LP", "re-validating the running placement"])
def test_a_budget_too_short_for_the_pricing_lp_still_fills_what_the_running_placement_leaves_short(
    monkeypatch: pytest.MonkeyPatch, spent_by: str
) -> None:
    # Less time than HiGHS is started with (min_solver_seconds), an LP that ran past the budget without
    # its optimum, or a budget spent before the LP by re-validating the running placement: in each case
    # the search began with time left, and the first fill still runs (it overruns by its own time only).
    # Before, all ended with the running placement (at 1,000 deployments and a 0.5 s budget, 642
    # deployments short where the first fill leaves 4); the third did again until 3 December 2026
    # (make_plan handed the search 0.01-0.03 s, and the re-validation took 0.04).
    import gridshift.planner.search as search_module
    from gridshift.planner.pricing import PoolPrices
    from gridshift.planner.problem import build_problem
    from gridshift.planner.search import revalidated_current, search, violations
    from gridshift.planner.solution import Solution, objective

    clock = FakeClock()
    budget = 1.0 if spent_by == "the pricing LP" else 0.03

    def overrunning(*args: Any, **kwargs: Any) -> PoolPrices:
        clock.now += 2 * budget
        return PoolPrices({}, None)

    def slow_revalidation(problem: Problem) -> Solution:
        clock.now += 2 * budget
        return revalidated_current(problem)

    monkeypatch.setattr(search_module, "pool_prices", overrunning)
    if spent_by == "re-validating the running placement":
        monkeypatch.setattr(search_module, "revalidated_current", slow_revalidation)
    settings = PlannerSettings(time_budget_seconds=budget)
    problem = build_problem(_mid_size(200), settings)
    current = objective(problem, revalidated_current(problem), settings)
    result = search(problem, settings, clock=clock)
    assert violations(problem, result.solution) == []
    assert result.budget_exhausted
    assert any(step.startswith("first fill") for step in result.steps), result.steps
    assert result.objective_usd_per_hour < current / 10, (current, result.steps)


def test_make_plan_keeps_to_its_budget_as_a_whole_at_mid_size() -> None:
    # 2,000 deployments x 12 clusters x 3 GPU types: building the problem and assembling the plan take
    # about 0.5 CPU-s each here, so a budget of 1.5 s leaves the search some 0.4 s; with only the
    # search held to the budget the call took about 2.6 CPU-s. On the CPU clock (the one the
    # benchmark injects), so other jobs on the machine do not move it.
    world = _mid_size(2_000)
    budget = 1.5
    started = time.process_time()
    plan = make_plan(world, PlannerSettings(time_budget_seconds=budget), clock=time.process_time)
    spent = time.process_time() - started
    assert plan.budget_exhausted
    # Margin as the search's own budget test: one step that cannot be interrupted may run past it.
    assert spent <= budget * 1.25 + 0.25, (spent, plan.search_steps)


def test_undoing_moves_in_one_heuristic_fill_keeps_to_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    # Found in review: the heuristic fill (where the exact fill gives up: minRegions 3) undid moves past
    # maxConcurrentMoves by pricing every (new, stopped) pair with a whole deployment_objective, per move
    # undone, and the budget is only asked between deployments: one deployment over 800 options took 16 s
    # of a 1 s budget. Here each whole objective the greedy evaluates costs 1 ms on the caller's clock
    # (about what one costs over 180 options): the old code spent 11.8 s on it, this one under 0.1 s.
    import gridshift.planner.greedy as greedy_module
    from tests.planner.planner_world import A100, H100, cluster, deployment, hourly_prices, snapshot

    clock = FakeClock()
    whole = greedy_module.deployment_objective

    def ticking(*args: Any, **kwargs: Any) -> float:
        clock.now += 0.001
        return whole(*args, **kwargs)

    monkeypatch.setattr(greedy_module, "deployment_objective", ticking)
    clusters = [cluster(f"c{i}", gpus={H100: 40, A100: 40}, gpu_hour=1.0 + 0.01 * (i % 7)) for i in range(90)]
    prices = {c.name: hourly_prices([0.05 + 0.01 * ((i * h) % 9) for h in range(24)]) for i, c in enumerate(clusters)}
    running = [(f"c{i}", H100, 5) for i in range(0, 90, 3)]
    big = deployment(
        "big", 8000.0, max_replicas=2000, min_regions=3, gpu_types=(H100, A100), placements=running, max_moves=2
    )
    started = clock.now
    plan = make_plan(snapshot([big], clusters, prices), PlannerSettings(time_budget_seconds=1.0), clock=clock)
    assert clock.now - started <= 1.0, plan.search_steps
    (chosen,) = plan.deployments
    starts = sum(max(0, t.replicas - t.current_desired) for t in chosen.targets)
    stops = sum(max(0, t.current_desired - t.replicas) for t in chosen.targets)
    assert starts > 0 and min(starts, stops) <= 2


def _with_advisory(world: Snapshot, every: int) -> Snapshot:
    from gridshift.modes import MigrationMode

    return replace(
        world,
        deployments=tuple(
            replace(d, requirements=replace(d.requirements, mode=MigrationMode.ADVISORY)) if i % every == 0 else d
            for i, d in enumerate(world.deployments)
        ),
    )


def test_with_advisory_deployments_make_plan_keeps_to_its_budget_as_a_whole() -> None:
    # Self-review, 3 December: the recommendations' search had a budget of its own on top of the acting
    # one's; one Advisory deployment in 1,000 halved the acting search's budget.
    world = _with_advisory(_mid_size(2_000), every=2)
    budget = 1.5
    started = time.process_time()
    plan = make_plan(world, PlannerSettings(time_budget_seconds=budget), clock=time.process_time)
    spent = time.process_time() - started
    assert spent <= budget * 1.25 + 0.25, (spent, plan.search_steps)


@pytest.mark.parametrize(("every", "acting_share"), [(1_000, 0.9), (2, 0.5), (1, 0.5)])
def test_the_acting_search_gets_the_budget_less_the_advisory_share(
    monkeypatch: pytest.MonkeyPatch, every: int, acting_share: float
) -> None:
    """Without a clock each search is held to its share (the HiGHS limits it hands out add up to it)."""
    budgets: list[float | None] = []
    real = plan_module.search

    def recorded(problem: Problem, settings: Any, **kwargs: Any) -> SearchResult:
        budgets.append(kwargs.get("budget"))
        return real(problem, settings, **kwargs)

    monkeypatch.setattr(plan_module, "search", recorded)
    world = _with_advisory(_mid_size(1_000), every=every)
    make_plan(world, PlannerSettings(time_budget_seconds=2.0, exact_search=False))
    assert budgets == [pytest.approx(2.0 * acting_share), pytest.approx(2.0 * (1 - acting_share))]


@FLEET
@given(world=fleets(), budget=st.sampled_from(FLEET_BUDGETS), solver=st.sampled_from(sorted(SOLVERS)))
def test_on_fleets_make_plan_keeps_to_its_budget_as_a_whole(world: Snapshot, budget: float, solver: str) -> None:
    chosen = replace(SOLVERS[solver], time_budget_seconds=budget)
    started = time.process_time()
    plan = make_plan(world, chosen, clock=time.process_time)
    spent = time.process_time() - started
    assert spent <= budget * 1.25 + 0.25, (spent, budget, plan.search_steps)


# --- make_plan pauses Python's garbage collector and restores it as it was (planner/plan.py) ---


def test_make_plan_pauses_the_collector_and_restores_it(monkeypatch: pytest.MonkeyPatch) -> None:
    search = plan_module.search
    during: list[bool] = []

    def recording(*args: Any, **kwargs: Any) -> SearchResult:
        during.append(gc.isenabled())
        return search(*args, **kwargs)

    monkeypatch.setattr(plan_module, "search", recording)
    world = _mid_size(20)
    quick = PlannerSettings(exact_search=False)
    assert gc.isenabled()
    make_plan(world, quick)
    assert during == [False]
    assert gc.isenabled()
    # A caller that turned collection off keeps it off.
    gc.disable()
    try:
        make_plan(world, quick)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_make_plan_restores_the_collector_when_it_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(*args: Any, **kwargs: Any) -> SearchResult:
        assert not gc.isenabled()
        raise RuntimeError("search failed")

    monkeypatch.setattr(plan_module, "search", failing)
    world = _mid_size(20)
    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="search failed"):
        make_plan(world)
    assert gc.isenabled()
    gc.disable()
    try:
        with pytest.raises(RuntimeError, match="search failed"):
            make_plan(world)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_reading_at_the_deadline_by_highs_clock_ends_the_search() -> None:
    """HiGHS's clock is read just before and just after its run. Found by the budget property (a clock
    stepping 0.5 s): the reading before the master's LP came at the deadline and did not end the search,
    so the reading after the run was a second one past it. Now any reading there ends it: the one after
    the run is that last reading, and the clock is not read again."""
    from gridshift.planner.search import _Deadline
    from tests.planner.test_properties import SteppingClock

    clock = SteppingClock(0.5)  # readings 0.5, 1.0, 1.5, ...
    deadline = _Deadline(clock, 1.0)  # started at 0.5: the deadline is 1.5
    assert deadline.left() == 0.5
    read = deadline.highs_clock()
    assert read is not None
    assert read() == 1.5
    assert deadline.exhausted
    assert read() == 1.5
    assert clock.readings == [0.5, 1.0, 1.5]


def test_a_run_whose_clock_span_is_one_reading_teaches_no_rate() -> None:
    """Where the reading before HiGHS's run ends the search, the reading after it is that same reading: a
    span of 0 over a run of HiGHS's seconds is no measure of the clock's rate (found in review: the rate fell
    to its floor, and the backstop of a later run grew from 0.25 s to 5)."""
    from gridshift.planner.milp import RunTime
    from gridshift.planner.search import _Deadline

    deadline = _Deadline(FakeClock(), 1.0)
    deadline.after_highs(RunTime(highs_seconds=0.5, clock_span=(101.0, 101.0)))
    assert deadline.rate == 1.0
    deadline.after_highs(RunTime(highs_seconds=0.5, clock_span=(101.0, 101.25)))
    assert deadline.rate == 0.5
