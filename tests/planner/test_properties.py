"""Properties of every plan, over random small worlds (hypothesis)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridshift.planner import PlannerSettings, Snapshot, make_plan
from gridshift.planner.capacity import replica_capacity
from tests.planner.planner_world import A100, A100_MODEL, H100, H100_MODEL, cluster, deployment, flat_prices, snapshot

PROPERTY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SOLVERS = {
    "milp": PlannerSettings(),
    "neighbourhoods": PlannerSettings(milp_max_variables=0),
    "greedy": PlannerSettings(exact_search=False),
}


@st.composite
def worlds(draw: Any, ample: bool = False) -> Snapshot:
    cluster_count = draw(st.integers(2 if ample else 1, 4))
    clusters = []
    prices = {}
    for index in range(cluster_count):
        name = f"c{index}"
        gpus = {}
        offered = [H100, A100] if ample else draw(st.sampled_from([[H100], [A100], [H100, A100]]))
        for gpu_type in offered:
            gpus[gpu_type] = 64 if ample else draw(st.integers(0, 12))
        clusters.append(
            cluster(
                name,
                gpus=gpus,
                gpu_hour=draw(st.sampled_from([0.0, 1.0, 2.5])),
                pue=draw(st.sampled_from([1.1, 1.3])),
            )
        )
        prices[name] = flat_prices(draw(st.floats(-0.05, 0.5)), stale=draw(st.booleans()) and not ample)
    deployments = []
    for index in range(draw(st.integers(1, 4))):
        min_replicas = draw(st.integers(0, 2))
        max_replicas = 16 if ample else draw(st.integers(max(1, min_replicas), 6))
        placements = []
        for position, c in enumerate(clusters):
            if draw(st.booleans()):
                placements.append((c.name, c.offerings[0].gpu_type, draw(st.integers(1, 2))))
            if position > 1:
                break
        deployments.append(
            deployment(
                f"d{index}",
                draw(st.floats(0.5, 12.0)),
                placements=placements,
                gpu_types=draw(st.sampled_from([[H100], [A100], [H100, A100]])),
                min_replicas=min_replicas,
                max_replicas=max_replicas,
                min_regions=draw(st.integers(1, min(2, max_replicas))),
                max_moves=draw(st.integers(0, 3)),
                mode="Auto",
            )
        )
    return snapshot(deployments, clusters, prices)


def gpus_used(world: Snapshot, plan_settings: PlannerSettings) -> dict[tuple[str, str], int]:
    used: dict[tuple[str, str], int] = {}
    for plan in make_plan(world, plan_settings).deployments:
        for target in plan.targets:
            used[(target.cluster, target.gpu_type)] = used.get((target.cluster, target.gpu_type), 0) + target.replicas
    return used


@PROPERTY
@given(world=worlds(), solver=st.sampled_from(sorted(SOLVERS)))
def test_bounds_inventory_and_coverage_hold(world: Snapshot, solver: str) -> None:
    plan = make_plan(world, SOLVERS[solver])
    by_id = {d.id: d for d in world.deployments}
    for deployment_plan in plan.deployments:
        required = by_id[deployment_plan.id].requirements
        assert deployment_plan.total_replicas <= required.max_replicas
        if deployment_plan.feasible:
            assert deployment_plan.total_replicas >= required.min_replicas
            assert deployment_plan.capacity_tokens_per_s >= (deployment_plan.needed_tokens_per_s or 0) * (1 - 1e-9)
            regions = {t.region for t in deployment_plan.targets if t.replicas > 0}
            assert len(regions) >= min(required.min_regions, deployment_plan.total_replicas)
        else:
            assert deployment_plan.infeasible_reason
    for (name, gpu_type), replicas in gpus_used(world, SOLVERS[solver]).items():
        offering = next(c for c in world.clusters if c.name == name).offering(gpu_type)
        assert offering is not None
        assert replicas <= offering.available_gpus


@PROPERTY
@given(world=worlds(ample=True), solver=st.sampled_from(sorted(SOLVERS)))
def test_with_ample_inventory_every_deployment_is_served(world: Snapshot, solver: str) -> None:
    plan = make_plan(world, SOLVERS[solver])
    for deployment_plan in plan.deployments:
        assert deployment_plan.feasible, deployment_plan.infeasible_reason
        assert deployment_plan.capacity_tokens_per_s >= (deployment_plan.needed_tokens_per_s or 0) * (1 - 1e-9)


@PROPERTY
@given(world=worlds(), solver=st.sampled_from(sorted(SOLVERS)))
def test_plans_are_deterministic(world: Snapshot, solver: str) -> None:
    assert make_plan(world, SOLVERS[solver]) == make_plan(world, SOLVERS[solver])


@PROPERTY
@given(
    rps=st.floats(0.5, 40.0),
    price_a=st.floats(-0.05, 0.5),
    price_b=st.floats(-0.05, 0.5),
    cut=st.floats(0.001, 0.3),
    gpus_a=st.integers(0, 8),
    gpus_b=st.integers(0, 8),
    min_regions=st.integers(1, 2),
    gpu_hour=st.sampled_from([0.0, 2.0]),
)
def test_a_cheaper_region_never_loses_replicas(
    rps: float,
    price_a: float,
    price_b: float,
    cut: float,
    gpus_a: int,
    gpus_b: int,
    min_regions: int,
    gpu_hour: float,
) -> None:
    clusters = [
        cluster("a", gpus={H100: gpus_a}, gpu_hour=gpu_hour),
        cluster("b", gpus={H100: gpus_b}, gpu_hour=gpu_hour),
    ]
    deployments = [deployment("chat", rps, min_regions=min_regions, min_replicas=min_regions)]
    before = make_plan(snapshot(deployments, clusters, {"a": flat_prices(price_a), "b": flat_prices(price_b)}))
    after = make_plan(snapshot(deployments, clusters, {"a": flat_prices(price_a - cut), "b": flat_prices(price_b)}))

    def in_a(plan: Any) -> int:
        return sum(t.replicas for t in plan.deployments[0].targets if t.cluster == "a")

    assert in_a(after) >= in_a(before)
    # Otherwise-equal clusters: the strictly cheaper one holds at least as many replicas.
    if gpus_a == gpus_b:
        equal = make_plan(snapshot(deployments, clusters, {"a": flat_prices(price_b - cut), "b": flat_prices(price_b)}))
        in_b = sum(t.replicas for t in equal.deployments[0].targets if t.cluster == "b")
        assert in_a(equal) >= in_b


def test_the_world_generator_reaches_both_gpu_models() -> None:
    # The property tests are only as good as the worlds: both profiles give positive capacity.
    for model in (H100_MODEL, A100_MODEL):
        assert (
            replica_capacity(
                model,
                mean_prompt_tokens=1000,
                mean_output_tokens=250,
                tpot_slo_ms=50,
                ttft_slo_ms=2000,
                settings=PlannerSettings(),
            ).output_tokens_per_second
            > 0
        )
    assert replace(H100_MODEL, max_batch=1).max_batch == 1


@PROPERTY
@given(world=worlds(), solver=st.sampled_from(sorted(SOLVERS)))
def test_the_move_limit_always_holds(world: Snapshot, solver: str) -> None:
    plan = make_plan(world, SOLVERS[solver])
    by_id = {d.id: d for d in world.deployments}
    for deployment_plan in plan.deployments:
        limit = by_id[deployment_plan.id].requirements.max_concurrent_moves
        started = sum(max(0, t.replicas - t.current_desired) for t in deployment_plan.targets if t.reachable)
        stopped = sum(max(0, t.current_desired - t.replicas) for t in deployment_plan.targets if t.reachable)
        assert min(started, stopped) <= limit, deployment_plan.id


@PROPERTY
@given(world=worlds(), solver=st.sampled_from(sorted(SOLVERS)))
def test_the_plan_never_costs_more_than_the_revalidated_current_placement(world: Snapshot, solver: str) -> None:
    from gridshift.planner.problem import build_problem
    from gridshift.planner.search import revalidated_current, violations
    from gridshift.planner.solution import objective

    chosen = SOLVERS[solver]
    plan = make_plan(world, chosen)
    problem = build_problem(world, chosen)
    current = revalidated_current(problem)
    assert violations(problem, current) == []
    assert plan.objective_usd_per_hour <= objective(problem, current, chosen) + 1e-9


class SteppingClock:
    """A fake monotonic clock: each reading is `step` seconds after the previous one."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.readings: list[float] = []

    def __call__(self) -> float:
        self.readings.append(self.step * (len(self.readings) + 1))
        return self.readings[-1]


@PROPERTY
@given(world=worlds(), step=st.sampled_from([0.001, 0.5, 5.0, 100.0]), budget=st.sampled_from([0.01, 1.0, 10.0]))
def test_the_search_keeps_to_its_budget_on_the_injected_clock(world: Snapshot, step: float, budget: float) -> None:
    from gridshift.planner.problem import build_problem
    from gridshift.planner.search import search, violations

    chosen = replace(SOLVERS["neighbourhoods"], time_budget_seconds=budget)
    clock = SteppingClock(step)
    problem = build_problem(world, chosen)
    result = search(problem, chosen, clock=clock)
    assert violations(problem, result.solution) == []
    # The clock is read before each step and within long ones: once a reading is past the deadline
    # nothing more starts (and the clock is not read again).
    deadline = clock.readings[0] + budget
    late = [t for t in clock.readings if t > deadline]
    assert len(late) <= 1, (clock.readings, budget)
    if late:
        assert result.budget_exhausted


@PROPERTY
@given(world=worlds(), solver=st.sampled_from(["milp", "neighbourhoods"]))
def test_the_search_keeps_to_its_budget_in_real_time(world: Snapshot, solver: str) -> None:
    import time

    from gridshift.planner.problem import build_problem
    from gridshift.planner.search import search

    budget = 0.2
    chosen = replace(SOLVERS[solver], time_budget_seconds=budget)
    problem = build_problem(world, chosen)
    started = time.monotonic()
    search(problem, chosen, clock=time.monotonic)
    # Margin: the greedy step (milliseconds on these worlds) and a loaded 2-core machine.
    assert time.monotonic() - started <= budget + 0.5


# --- The same guarantees on fleet-like instances (planner.synthetic), whatever their size and tightness ---

_MODELS: list[Any] = []


def _synthetic(deployments: int, clusters: int, gpu_types: int, tightness: float, seed: int) -> Snapshot:
    from gridshift.planner.synthetic import random_snapshot
    from gridshift.profiles_catalog import default_performance_models

    if not _MODELS:
        _MODELS.extend(default_performance_models())
    return random_snapshot(
        _MODELS, deployments=deployments, clusters=clusters, gpu_types=gpu_types, seed=seed, occupancy=tightness
    )


@st.composite
def fleets(draw: Any) -> Snapshot:
    return _synthetic(
        draw(st.integers(1, 80)),
        draw(st.integers(1, 6)),
        draw(st.integers(1, 3)),
        draw(st.sampled_from([0.2, 0.6, 0.9, 1.3])),
        draw(st.integers(0, 10_000)),
    )


FLEET = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Budgets small enough to bind on most instances, so that every stage can be cut short.
FLEET_BUDGETS = [0.02, 0.1, 0.4]


def _counts_of(plan: Any, problem: Any) -> Any:
    from gridshift.planner.solution import Solution

    targets = plan.targets()
    return Solution(
        tuple(
            tuple(o.current if d.frozen else targets[d.deployment.id].get(o.key, 0) for o in d.options)
            for d in problem.deployments
        ),
        plan.solver,
    )


@FLEET
@given(world=fleets(), budget=st.sampled_from(FLEET_BUDGETS), solver=st.sampled_from(sorted(SOLVERS)))
def test_on_fleets_the_plan_is_valid_keeps_move_limits_and_never_costs_more_than_now(
    world: Snapshot, budget: float, solver: str
) -> None:
    import time

    from gridshift.planner.problem import build_problem
    from gridshift.planner.search import revalidated_current, violations
    from gridshift.planner.solution import moves, objective

    chosen = replace(SOLVERS[solver], time_budget_seconds=budget)
    plan = make_plan(world, chosen, clock=time.process_time)
    problem = build_problem(world, chosen)
    solution = _counts_of(plan, problem)
    assert violations(problem, solution) == []
    for problem_part, counts in zip(problem.deployments, solution.counts, strict=True):
        assert min(moves(problem_part, counts)) <= problem_part.max_moves, problem_part.deployment.id
    current = revalidated_current(problem)
    assert objective(problem, solution, chosen) <= objective(problem, current, chosen) * (1 + 1e-9) + 1e-9
    # A second cycle from this plan (warm start) keeps every guarantee too.
    again = make_plan(world, chosen, clock=time.process_time, previous=plan)
    assert violations(problem, _counts_of(again, problem)) == []
    assert again.objective_usd_per_hour <= objective(problem, current, chosen) * (1 + 1e-9) + 1e-9


@FLEET
@given(world=fleets(), budget=st.sampled_from(FLEET_BUDGETS))
def test_on_fleets_the_search_keeps_to_its_budget(world: Snapshot, budget: float) -> None:
    import time

    from gridshift.planner.problem import build_problem
    from gridshift.planner.search import search

    chosen = replace(SOLVERS["milp"], time_budget_seconds=budget)
    problem = build_problem(world, chosen)
    started = time.process_time()
    result = search(problem, chosen, clock=time.process_time)
    spent = time.process_time() - started
    # The search's own CPU time (the clock it was given): the budget, plus what one step that cannot
    # be interrupted may take past it on these sizes (a chunk of fills, one HiGHS interrupt check).
    assert spent <= budget * 1.25 + 0.25, (spent, budget, result.steps)


@PROPERTY
@given(world=worlds(), data=st.data())
def test_has_penalty_says_exactly_when_the_objective_holds_a_penalty(world: Snapshot, data: Any) -> None:
    # plan._has_penalty mirrors solution.deployment_objective's penalty terms (no claimed saving against a
    # placement with one): a term added to one and not the other shows here.
    from gridshift.planner.plan import _has_penalty, _without_penalties
    from gridshift.planner.problem import build_problem
    from gridshift.planner.solution import deployment_objective

    plan_settings = PlannerSettings()
    money = _without_penalties(plan_settings)
    for problem in build_problem(world, plan_settings).deployments:
        if problem.frozen:
            counts = list(problem.columns.current)
        else:
            # Empty options and full ones, so that coverage is met in one region as well as short of it.
            counts = [data.draw(st.sampled_from([0, 1, max(o.upper, 0), max(o.upper, 0) + 1])) for o in problem.options]
        value = deployment_objective(problem, counts, plan_settings)
        held = value != deployment_objective(problem, counts, money)
        assert _has_penalty(problem, counts, value) == held, (problem.deployment.id, counts)
