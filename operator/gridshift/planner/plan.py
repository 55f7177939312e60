"""The planner's entry point: `make_plan(snapshot, settings) -> Plan`, and the Plan it returns.

One joint problem covers every deployment, because deployments compete for GPUs in cheap regions.
It is solved by the MILP when its size allows (settings.milp_max_variables), else by the greedy
solver, started from the rounded LP relaxation up to settings.lp_max_variables; all see the same
costs, so plans differ only in optimality. The Plan carries, per
deployment, target placements, make-before-break steps, routing weights, predicted cost and an
explanation. A deployment that cannot be served gets a reason, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np

from gridshift.api import MigrationMode
from gridshift.planner.capacity import CapacityInputs, batch_at, power_at
from gridshift.planner.greedy import solve_greedy
from gridshift.planner.migration import Key, MigrationStep, RouteWeight, migration_steps, routing_weights
from gridshift.planner.milp import solve_lp_floor, solve_milp
from gridshift.planner.problem import DeploymentProblem, Option, Problem, build_problem
from gridshift.planner.settings import PlannerSettings
from gridshift.planner.snapshot import Snapshot
from gridshift.planner.solution import Solution, Solver, deployment_objective, moves, objective


@dataclass(frozen=True)
class TargetPlacement:
    """Replicas the plan wants on one GPU type in one cluster."""

    cluster: str
    region: str
    gpu_type: str
    replicas: int
    current_desired: int
    current_ready: int
    capacity_tokens_per_s_per_replica: float
    reachable: bool = True


@dataclass(frozen=True)
class CostPrediction:
    """Cost of the target placement at the observed load and the price now."""

    usd_per_hour: float
    gpu_usd_per_hour: float
    energy_usd_per_hour: float
    usd_per_million_tokens: float | None
    joules_per_token: float | None
    energy_share: float | None
    """Electricity's share of the cost; may leave [0, 1] when prices are negative."""
    power_watts: float


@dataclass(frozen=True)
class Explanation:
    reason: str
    summary: str
    details: tuple[str, ...]
    binding_constraints: tuple[str, ...]
    alternative: str | None
    alternative_usd_per_hour: float | None
    saving_usd_per_hour_vs_current: float | None


@dataclass(frozen=True)
class DeploymentPlan:
    id: str
    mode: MigrationMode
    act: bool
    """False in Advisory and Frozen modes: the plan is reported, the shell changes nothing."""
    feasible: bool
    infeasible_reason: str | None
    targets: tuple[TargetPlacement, ...]
    steps: tuple[MigrationStep, ...]
    routing: tuple[RouteWeight, ...]
    cost: CostPrediction
    explanation: Explanation
    demand_tokens_per_s: float | None
    needed_tokens_per_s: float | None
    capacity_tokens_per_s: float

    @property
    def total_replicas(self) -> int:
        return sum(t.replicas for t in self.targets if t.reachable)


@dataclass(frozen=True)
class Plan:
    now: datetime
    solver: Solver
    variable_count: int
    objective_usd: float
    deployments: tuple[DeploymentPlan, ...]

    def for_deployment(self, deployment_id: str) -> DeploymentPlan:
        for plan in self.deployments:
            if plan.id == deployment_id:
                return plan
        raise KeyError(f"no plan for deployment {deployment_id!r}")


def solve(problem: Problem, settings: PlannerSettings) -> Solution:
    """By problem size: the MILP; else the better of greedy alone and greedy completing the LP
    relaxation rounded down; else greedy alone. Greedy also whenever HiGHS returns nothing."""
    size = problem.variable_count
    if size <= settings.milp_max_variables:
        solution = solve_milp(problem, settings)
        if solution is not None:
            return solution
    elif size <= settings.lp_max_variables:
        start = solve_lp_floor(problem, settings)
        plain = solve_greedy(problem, settings)
        if start is None:
            return plain
        seeded = solve_greedy(problem, settings, start)
        # The LP start usually helps, but rounding can strand a deployment: keep the better plan.
        if objective(problem, seeded, settings) <= objective(problem, plain, settings):
            return seeded
        return plain
    return solve_greedy(problem, settings)


def make_plan(snapshot: Snapshot, settings: PlannerSettings | None = None) -> Plan:
    settings = settings or PlannerSettings()
    problem = build_problem(snapshot, settings)
    solution = solve(problem, settings)
    free = dict(problem.inventory)
    for deployment, counts in zip(problem.deployments, solution.counts, strict=True):
        for option, count in zip(deployment.options, counts, strict=True):
            free[option.key] = free.get(option.key, 0) - count * option.gpus
    powers = _load_powers(problem, solution, settings)
    plans = tuple(
        _deployment_plan(problem, deployment, list(counts), free, powers, settings)
        for deployment, counts in zip(problem.deployments, solution.counts, strict=True)
    )
    return Plan(
        now=snapshot.now,
        solver=solution.solver,
        variable_count=problem.variable_count,
        objective_usd=objective(problem, solution, settings),
        deployments=plans,
    )


def _load_powers(problem: Problem, solution: Solution, settings: PlannerSettings) -> dict[tuple[int, int], float]:
    """Power of each used option's replicas at the observed load, shared in proportion to capacity.

    Computed for all deployments in one vectorised pass. With unknown demand, power at capacity.
    """
    keys: list[tuple[int, int]] = []
    models = []
    rates: list[float] = []
    prompts: list[float] = []
    outputs: list[float] = []
    powers: dict[tuple[int, int], float] = {}
    for deployment, counts in zip(problem.deployments, solution.counts, strict=True):
        if deployment.frozen:
            counts = tuple(o.current for o in deployment.options)
        workload = deployment.workload
        capacity_rps = sum(o.capacity_rps * n for o, n in zip(deployment.options, counts, strict=True))
        served = workload.requests_per_second
        for j, (option, count) in enumerate(zip(deployment.options, counts, strict=True)):
            if count <= 0:
                continue
            if served is None or capacity_rps <= 0:
                powers[(deployment.index, j)] = option.power_at_capacity_watts
                continue
            keys.append((deployment.index, j))
            models.append(option.model)
            rates.append(option.capacity_rps * min(1.0, served / capacity_rps))
            prompts.append(workload.mean_prompt_tokens)
            outputs.append(workload.mean_output_tokens)
    if keys:
        inputs = CapacityInputs.of(models, prompts, outputs, [0.0] * len(keys), [0.0] * len(keys))
        values = power_at(models, batch_at(inputs, np.asarray(rates, dtype=np.float64), settings))
        for key, rate, value in zip(keys, rates, values, strict=True):
            option = problem.deployments[key[0]].options[key[1]]
            powers[key] = float(value) if rate > 0 else option.model.idle_power_watts
    return powers


def _cost_prediction(
    problem: Problem, deployment: DeploymentProblem, counts: list[int], powers: dict[tuple[int, int], float]
) -> CostPrediction:
    workload = deployment.workload
    capacity_rps = sum(o.capacity_rps * n for o, n in zip(deployment.options, counts, strict=True))
    served_rps = workload.requests_per_second
    gpu_cost = energy_cost = power_total = 0.0
    for j, (option, count) in enumerate(zip(deployment.options, counts, strict=True)):
        if count <= 0:
            continue
        power = powers[(deployment.index, j)]
        price = problem.price_views[option.cluster].now_usd_per_kwh
        gpu_cost += count * option.gpus * option.gpu_hour_usd
        energy_cost += count * power * option.pue * price / 1000.0
        power_total += count * power
    total = gpu_cost + energy_cost
    served_tokens = None if served_rps is None else min(served_rps, capacity_rps) * workload.mean_output_tokens
    per_million = None if not served_tokens else total / (served_tokens * 3600.0 / 1e6)
    joules = None if not served_tokens else power_total / served_tokens
    energy_share = None if total == 0 else energy_cost / total
    return CostPrediction(total, gpu_cost, energy_cost, per_million, joules, energy_share, power_total)


def _label(option: Option) -> str:
    return f"{option.cluster}/{option.gpu_type}"


def _explain(
    problem: Problem,
    deployment: DeploymentProblem,
    counts: list[int],
    free: dict[Key, int],
    settings: PlannerSettings,
    cost: CostPrediction,
    infeasible_reason: str | None,
) -> Explanation:
    options = deployment.options
    used = [(o, n) for o, n in zip(options, counts, strict=True) if n > 0]
    current = list(deployment.columns.current)
    started, stopped = moves(deployment, counts)
    details = list(deployment.notes)
    binding: list[str] = []
    hours = deployment.window_hours
    chosen_objective = deployment_objective(deployment, counts, settings)
    keep_objective = deployment_objective(deployment, current, settings)
    keep_without_shortfall = deployment_objective(deployment, current, replace(settings, shortfall_penalty_usd=0.0))
    # Against a placement that leaves demand unserved, a "saving" would only count the penalty.
    current_covers_demand = abs(keep_objective - keep_without_shortfall) < 1e-6
    saving = (keep_objective - chosen_objective) / hours if options and current_covers_demand else None
    if deployment.frozen:
        binding.append("mode Frozen: placement kept as is")
    if deployment.advisory:
        binding.append("mode Advisory: plan reported, nothing changed")
    stale_here = sorted({o.cluster for o, stale in zip(options, deployment.columns.stale, strict=True) if stale})
    if stale_here:
        binding.append(f"price stale in {', '.join(stale_here)}: no price-driven change there")
    if deployment.unreachable:
        lost = ", ".join(f"{c}/{g} x{n}" for c, g, n in deployment.unreachable)
        binding.append(f"unreachable: {lost} not counted as capacity")
    if sum(counts) >= deployment.max_replicas and not deployment.frozen:
        binding.append(f"replica cap {deployment.max_replicas} reached")
    if deployment.min_replicas and sum(counts) <= deployment.min_replicas:
        binding.append(f"minReplicas {deployment.min_replicas}")
    if deployment.min_regions >= 2:
        binding.append(f"minRegions {deployment.min_regions}")
    if min(started, stopped) >= deployment.max_moves and started and stopped:
        binding.append(f"maxConcurrentMoves {deployment.max_moves}")
    # The best alternative: the cheapest option per unit of capacity that the plan does not fill.
    alternative: str | None = None
    alternative_hourly: float | None = None
    dearest = max(used, key=lambda item: item[0].window_cost_usd / deployment.unit_capacity(item[0]), default=None)
    dearest_used = None if dearest is None else dearest[0].window_cost_usd / deployment.unit_capacity(dearest[0])
    for j in deployment.by_unit_cost:
        option = options[j]
        if counts[j] > 0:
            continue
        unit_cost = option.window_cost_usd / deployment.unit_capacity(option)
        alternative = _label(option)
        alternative_hourly = option.window_cost_usd / hours
        if dearest_used is not None and unit_cost < dearest_used:
            if free.get(option.key, 0) < option.gpus:
                binding.append(f"inventory: {alternative} has no free GPUs")
                details.append(f"not moved to cheaper {alternative}: its GPUs are all taken")
            elif option.stale:
                details.append(f"not moved to {alternative}: its price is stale")
            elif dearest is not None:
                gain = (dearest[0].window_cost_usd - option.window_cost_usd) / hours
                details.append(
                    f"not moved to {alternative}: saves {gain:.4f} USD/h per replica, but a start costs "
                    f"{option.start_cost_usd:.4f} USD, not paid back within {hours:g} h "
                    "(or a limit above binds)"
                )
        break
    placed = ", ".join(f"{_label(o)} x{n}" for o, n in used) or "nothing"
    if infeasible_reason:
        reason = "Infeasible"
    elif deployment.frozen:
        reason = "Frozen"
    elif not started and not stopped:
        reason = "NoChange"
    elif started and stopped:
        reason = "CheaperPlacement" if keep_objective < settings.bound_violation_penalty_usd else "SLOAtRisk"
    elif started:
        reason = "ScaleUp"
    else:
        reason = "ScaleDown"
    summary = f"{reason}: {placed}; {cost.usd_per_hour:.3f} USD/h"
    if cost.usd_per_million_tokens is not None:
        summary += f", {cost.usd_per_million_tokens:.4f} USD/Mtok"
    if alternative is not None and alternative_hourly is not None:
        summary += f"; best alternative {alternative} at {alternative_hourly:.3f} USD/h per replica"
    return Explanation(
        reason=reason,
        summary=summary[:1024],
        details=tuple(details),
        binding_constraints=tuple(binding),
        alternative=alternative,
        alternative_usd_per_hour=alternative_hourly,
        saving_usd_per_hour_vs_current=saving,
    )


def _infeasible_reason(deployment: DeploymentProblem, counts: list[int]) -> str | None:
    if deployment.frozen:
        return None
    if not deployment.options:
        why = "; ".join(deployment.notes) or "no cluster offers an accepted GPU type"
        return f"no eligible cluster and GPU type: {why}"
    covered = sum(n * deployment.unit_capacity(o) for n, o in zip(counts, deployment.options, strict=True))
    problems = []
    if covered < deployment.coverage_target - 1e-6:
        unit = "tokens/s" if deployment.demand_known else "replicas"
        problems.append(
            f"needs {deployment.coverage_target:.1f} {unit} within the SLO but only {covered:.1f} fit "
            "(inventory or maxReplicas binds)"
        )
    if sum(counts) < deployment.min_replicas:
        problems.append(f"only {sum(counts)} of minReplicas {deployment.min_replicas} fit in free inventory")
    regions = {o.region for n, o in zip(counts, deployment.options, strict=True) if n > 0}
    if deployment.min_regions >= 2 and len(regions) < deployment.min_regions:
        problems.append(f"spread over {len(regions)} of minRegions {deployment.min_regions}")
    if deployment.min_regions < deployment.deployment.spec.capacity.min_regions:
        problems.append(f"minRegions {deployment.deployment.spec.capacity.min_regions} exceeds the eligible regions")
    return "; ".join(problems) or None


def _deployment_plan(
    problem: Problem,
    deployment: DeploymentProblem,
    counts: list[int],
    free: dict[Key, int],
    powers: dict[tuple[int, int], float],
    settings: PlannerSettings,
) -> DeploymentPlan:
    spec = deployment.deployment.spec
    options = deployment.options
    if deployment.frozen:
        counts = [o.current for o in options]
    involved = [(o, n) for o, n in zip(options, counts, strict=True) if n or o.current or o.ready]
    unit = {o.key: deployment.unit_capacity(o) for o, _ in involved}
    target = {o.key: n for o, n in involved}
    desired = {o.key: o.current for o, _ in involved}
    ready = {o.key: o.ready for o, _ in involved}
    infeasible = _infeasible_reason(deployment, counts)
    needed = deployment.coverage_target
    steps = migration_steps(desired, ready, target, unit, needed, deployment.max_moves)
    cost = _cost_prediction(problem, deployment, counts, powers)
    targets = [
        TargetPlacement(
            cluster=o.cluster,
            region=o.region,
            gpu_type=o.gpu_type,
            replicas=n,
            current_desired=o.current,
            current_ready=o.ready,
            capacity_tokens_per_s_per_replica=o.capacity_tokens_per_s,
        )
        for o, n in zip(options, counts, strict=True)
        if n > 0 or o.current > 0
    ]
    placements = {(p.cluster, p.gpu_type): p for p in deployment.deployment.placements}
    for cluster, gpu_type, replicas in deployment.unreachable:
        placed = placements[(cluster, gpu_type)]
        targets.append(
            TargetPlacement(
                cluster=cluster,
                region=problem.clusters[cluster].region,
                gpu_type=gpu_type,
                replicas=replicas,
                current_desired=placed.desired,
                current_ready=placed.ready,
                capacity_tokens_per_s_per_replica=0.0,
                reachable=False,
            )
        )
    if deployment.frozen:
        # Frozen keeps every replica, also those the planner has no option for (no profile, SLO not
        # reachable on that GPU): they stay, uncounted as capacity.
        listed = {(t.cluster, t.gpu_type) for t in targets}
        for placed in deployment.deployment.placements:
            if (placed.cluster, placed.gpu_type) not in listed and placed.desired > 0:
                known = problem.clusters.get(placed.cluster)
                targets.append(
                    TargetPlacement(
                        cluster=placed.cluster,
                        region=known.region if known else "",
                        gpu_type=placed.gpu_type,
                        replicas=placed.desired,
                        current_desired=placed.desired,
                        current_ready=placed.ready,
                        capacity_tokens_per_s_per_replica=0.0,
                        reachable=known is not None and known.reachable,
                    )
                )
    explanation = _explain(problem, deployment, counts, free, settings, cost, infeasible)
    capacity_rps = {o.key: o.capacity_rps for o in options}
    return DeploymentPlan(
        id=deployment.deployment.id,
        mode=spec.migration.mode,
        act=spec.migration.mode == MigrationMode.AUTO,
        feasible=infeasible is None,
        infeasible_reason=infeasible,
        targets=tuple(targets),
        steps=steps,
        routing=routing_weights(target, capacity_rps),
        cost=cost,
        explanation=explanation,
        demand_tokens_per_s=deployment.workload.output_tokens_per_second,
        needed_tokens_per_s=deployment.workload.needed_tokens_per_second,
        capacity_tokens_per_s=sum(o.capacity_tokens_per_s * n for o, n in zip(options, counts, strict=True)),
    )
