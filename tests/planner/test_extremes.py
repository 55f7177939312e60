"""Inputs the API admits, at its bounds: one deployment's never stops or freezes another's plan.

Found in review (4 December 2026), each reproduced before its fix:
- a deployment no GPU can serve put its shortfall penalties (3e10 USD/h) in the objective, and the search
  kept its incumbent unless a candidate improved the objective by 1e-9 of that: another deployment's
  saving of a few USD/h was never taken (search._Best._take);
- a paybackHorizonHours of 1e-10 made the planning window zero long (ZeroDivisionError);
- a demand of 5e-324 req/s, or a mean output of 5e-324 tokens, made a replica's tokens per hour 0
  (ZeroDivisionError): each of these ended the planning cycle for every tenant;
- (5 December) the first of these again, on the cycle after the first: planner.reuse read the horizons over
  the deployment's window without build_problem's floor.
"""

from __future__ import annotations

import math

import pytest

from gridshift.planner import PlannerSettings, make_plan
from gridshift.planner.plan import Plan
from gridshift.planner.reuse import same_problem
from tests.planner.planner_world import A100, H100, cluster, deployment, flat_prices, snapshot

SOLVERS = [PlannerSettings(), PlannerSettings(milp_max_variables=0), PlannerSettings(exact_search=False)]


def placed(plan: Plan, name: str) -> dict[str, int]:
    (chosen,) = [d for d in plan.deployments if d.id == f"ns/{name}"]
    return {t.cluster: t.replicas for t in chosen.targets if t.replicas}


@pytest.mark.parametrize("settings", SOLVERS, ids=["default", "greedy", "no-exact"])
@pytest.mark.parametrize("other_rps", [None, 10_000.0], ids=["alone", "beside-unmet"])
def test_a_deployment_short_of_gpus_elsewhere_freezes_no_saving_move(
    settings: PlannerSettings, other_rps: float | None
) -> None:
    # The victim runs 4 A100 replicas in b (2 USD/GPU-h); c sells A100 at 1 USD/GPU-h: about 4 USD/h saved.
    # The other deployment needs H100s only (cluster a), about 1,100 replicas more than a has.
    clusters = [
        cluster("a", gpus={H100: 16}),
        cluster("b", gpus={A100: 16}, gpu_hour=2.0),
        cluster("c", gpus={A100: 16}, gpu_hour=1.0),
    ]
    deployments = [deployment("victim", 4.0, placements=[("b", A100, 4)], gpu_types=[A100])]
    if other_rps is not None:
        deployments.append(deployment("other", other_rps, placements=[("a", H100, 16)], gpu_types=[H100]))
    plan = make_plan(snapshot(deployments, clusters, {n: flat_prices(0.1) for n in "abc"}), settings)
    assert placed(plan, "victim") == {"c": 4}


def test_an_unservable_deployment_leaves_no_other_under_served() -> None:
    clusters = [cluster("a", gpus={H100: 16}), cluster("b", gpus={A100: 16})]
    deployments = [
        deployment("victim", 4.0, placements=[("b", A100, 1)], gpu_types=[A100]),
        deployment("other", 1_000_000.0, prompt=1000.0, output=2e6, gpu_types=[H100]),
    ]
    plan = make_plan(snapshot(deployments, clusters, {"a": flat_prices(0.1), "b": flat_prices(0.1)}))
    assert placed(plan, "victim") == {"b": 4}


def victim_alone() -> dict[str, int]:
    clusters = [cluster("a", gpus={H100: 16})]
    plan = make_plan(
        snapshot([deployment("victim", 4.0, placements=[("a", H100, 1)])], clusters, {"a": flat_prices(0.1)})
    )
    return placed(plan, "victim")


def test_a_payback_horizon_near_zero_plans() -> None:
    clusters = [cluster("a", gpus={H100: 16})]
    deployments = [
        deployment("victim", 4.0, placements=[("a", H100, 1)]),
        deployment("other", 1.0, payback_hours=1e-10),
    ]
    planned = snapshot(deployments, clusters, {"a": flat_prices(0.1)})
    plan = make_plan(planned)
    assert placed(plan, "victim") == victim_alone()
    assert placed(plan, "other") == {"a": 1}
    # The operator's other path from a snapshot: whether last cycle's plan still serves (found in review: it
    # divided by the zero window build_problem's floor avoids, ending every tenant's cycle after the first).
    assert same_problem(planned, planned, PlannerSettings())


@pytest.mark.parametrize(("rps", "output"), [(1.0, 5e-324), (5e-324, 1.0), (1e-310, 1.0)])
def test_vanishing_demand_figures_plan_with_finite_figures(rps: float, output: float) -> None:
    clusters = [cluster("a", gpus={H100: 16})]
    deployments = [deployment("victim", 4.0, placements=[("a", H100, 1)]), deployment("other", rps, output=output)]
    planned = snapshot(deployments, clusters, {"a": flat_prices(0.1)})
    plan = make_plan(planned)
    assert placed(plan, "victim") == victim_alone()
    assert same_problem(planned, planned, PlannerSettings())
    for d in plan.deployments:
        for figure in (d.cost.usd_per_million_tokens, d.cost.joules_per_token):
            assert figure is None or math.isfinite(figure), (d.id, d.cost)


def test_per_token_figures_are_none_where_no_finite_figure_exists() -> None:
    from gridshift.planner.cost import grams_per_million_tokens, joules_per_token, usd_per_million_tokens

    for figure in (usd_per_million_tokens, joules_per_token, grams_per_million_tokens):
        assert figure(1.0, 5e-324) is None  # rounds to 0 tokens per hour, or overflows
        assert figure(1.0, 0.0) is None and figure(1.0, None) is None
    assert usd_per_million_tokens(3.6, 1000.0) == pytest.approx(1.0)  # 3.6 million tokens an hour
