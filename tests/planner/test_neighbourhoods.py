"""The large-neighbourhood search's groups (gridshift.planner.search._groups): one GPU type, many pools."""

from __future__ import annotations

from gridshift.planner import PlannerSettings
from gridshift.planner.problem import DeploymentProblem, Problem, build_problem
from gridshift.planner.search import _groups, search, usd_per_hour
from gridshift.planner.solution import Solution, Solver, objective
from gridshift.planner.synthetic import random_snapshot
from tests.planner.planner_world import A100_MODEL, H100_MODEL

SETTINGS = PlannerSettings()
SIZE = 5


def _world() -> tuple[Problem, Solution]:
    snapshot = random_snapshot([H100_MODEL, A100_MODEL], deployments=80, clusters=6, gpu_types=2, seed=7, occupancy=0.6)
    problem = build_problem(snapshot, SETTINGS)
    solution = search(problem, SETTINGS).solution
    # Penalty-free, so that the order of the groups is the warm start's and the shuffle's alone.
    assert objective(problem, solution, SETTINGS) == usd_per_hour(problem, solution, SETTINGS)
    return problem, solution


def _main(deployment: DeploymentProblem, counts: tuple[int, ...]) -> tuple[str, str]:
    """The pool holding most of its GPUs (the first such option); none held: its cheapest option's."""
    key, most = deployment.options[deployment.by_unit_cost[0]].key, 0
    for option, n in zip(deployment.options, counts, strict=True):
        if n * option.gpus > most:
            key, most = option.key, n * option.gpus
    return key


def test_every_movable_deployment_is_in_exactly_one_group_of_at_most_the_size() -> None:
    problem, solution = _world()
    groups = _groups(problem, solution, SIZE, SETTINGS, frozenset())
    members = [i for group in groups for i in group]
    assert sorted(members) == sorted(d.index for d in problem.movable)
    assert all(len(group) <= SIZE for group in groups)


def test_a_group_holds_one_gpu_type_in_several_pools() -> None:
    # The point of the grouping: HiGHS can only exchange deployments between pools when the group holds
    # several pools of one type. Cut from the deployments sorted by pool (the grouping before), the
    # groups of this world span 1.4 pools on average; shuffled within the type, 2.6.
    problem, solution = _world()
    groups = _groups(problem, solution, SIZE, SETTINGS, frozenset())
    pools = [{_main(problem.deployments[i], solution.counts[i]) for i in group} for group in groups]
    # One type per group, but for a group where the sorted list passes from one type to the next.
    assert sum(1 for group in pools if len({gpu_type for _, gpu_type in group}) > 1) <= 1
    by_pool = sorted(problem.movable, key=lambda d: (_main(d, solution.counts[d.index]), d.deployment.id))
    cut = [by_pool[i : i + SIZE] for i in range(0, len(by_pool), SIZE)]
    pools_by_pool = [{_main(d, solution.counts[d.index]) for d in group} for group in cut]

    def mean(spans: list[set[tuple[str, str]]]) -> float:
        return sum(len(span) for span in spans) / len(spans)

    assert mean(pools) >= mean(pools_by_pool) + 1.0


def test_the_grouping_is_deterministic_and_changes_from_round_to_round() -> None:
    problem, solution = _world()
    first = _groups(problem, solution, SIZE, SETTINGS, frozenset(), 0)
    assert first == _groups(problem, solution, SIZE, SETTINGS, frozenset(), 0)
    assert first != _groups(problem, solution, SIZE, SETTINGS, frozenset(), 1)


def test_groups_holding_unmet_demand_go_first_then_those_whose_inputs_changed() -> None:
    problem, solution = _world()
    groups = _groups(problem, solution, SIZE, SETTINGS, frozenset())
    short = groups[-1][0]
    emptied = list(solution.counts)
    emptied[short] = tuple(0 for _ in emptied[short])
    unserved = Solution(tuple(emptied), Solver.GREEDY)
    assert short in _groups(problem, unserved, SIZE, SETTINGS, frozenset())[0]
    changed = problem.deployments[groups[-1][-1]].deployment.id
    assert groups[-1][-1] in _groups(problem, solution, SIZE, SETTINGS, frozenset({changed}))[0]
