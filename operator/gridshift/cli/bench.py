"""`gridshift bench planner`: time the planner on a random but realistic snapshot.

The snapshot comes from gridshift.planner.synthetic with the shipped GPU profiles: deployments of
the profiled models with random SLOs, demand and current placements, clusters with random PUE,
GPU-hour costs and a day of hourly prices. Each round builds the joint problem, solves it and
assembles the plan, as the operator does once per reconcile.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from gridshift.cli.main import UsageError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="benchmark parts of gridshift (planner)",
        description="Benchmarks. `gridshift bench planner --help` for the planner benchmark.",
    )
    benches = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    planner = benches.add_parser(
        "planner",
        help="time planning rounds on a random snapshot",
        description="Plan a random but realistic snapshot repeatedly; print median and p95 seconds.",
    )
    planner.add_argument("--deployments", type=int, default=100, help="InferenceDeployments (default 100)")
    planner.add_argument("--clusters", type=int, default=12, help="RegionalClusters (default 12)")
    planner.add_argument("--gpu-types", type=int, default=3, help="GPU types per cluster, 1-4 (default 3)")
    planner.add_argument("--repeat", type=int, default=5, help="planning rounds to time (default 5)")
    planner.add_argument("--seed", type=int, default=0, help="seed of the random snapshot (default 0)")
    planner.add_argument(
        "--solver",
        choices=("auto", "milp", "greedy"),
        default="auto",
        help="auto: by problem size (default); milp or greedy: force one",
    )
    planner.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    planner.set_defaults(handler=run)


def _check(args: argparse.Namespace) -> None:
    if args.deployments < 1:
        raise UsageError(f"--deployments must be >= 1, got {args.deployments}")
    if args.clusters < 1:
        raise UsageError(f"--clusters must be >= 1, got {args.clusters}")
    if not 1 <= args.gpu_types <= 4:
        raise UsageError(f"--gpu-types must be within 1..4, got {args.gpu_types}")
    if args.repeat < 1:
        raise UsageError(f"--repeat must be >= 1, got {args.repeat}")


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def run(args: argparse.Namespace) -> int:
    _check(args)
    from gridshift.planner import PlannerSettings, make_plan
    from gridshift.planner.problem import build_problem
    from gridshift.planner.synthetic import random_snapshot
    from gridshift.profiles_catalog import default_performance_models

    unlimited = 10**12
    settings = {
        "auto": PlannerSettings(),
        "milp": PlannerSettings(milp_max_variables=unlimited),
        "lp+greedy": PlannerSettings(milp_max_variables=0, lp_max_variables=unlimited),
        "greedy": PlannerSettings(milp_max_variables=0, lp_max_variables=0),
    }[args.solver]
    snapshot = random_snapshot(
        default_performance_models(),
        deployments=args.deployments,
        clusters=args.clusters,
        gpu_types=args.gpu_types,
        seed=args.seed,
    )
    wall: list[float] = []
    cpu: list[float] = []
    plan = None
    for _ in range(args.repeat):
        started_wall, started_cpu = time.perf_counter(), time.process_time()
        plan = make_plan(snapshot, settings)
        wall.append(time.perf_counter() - started_wall)
        cpu.append(time.process_time() - started_cpu)
    assert plan is not None
    result = {
        "deployments": args.deployments,
        "clusters": args.clusters,
        "gpu_types": args.gpu_types,
        "repeat": args.repeat,
        "seed": args.seed,
        "median_s": statistics.median(wall),
        "p95_s": _percentile(wall, 0.95),
        "min_s": min(wall),
        "median_cpu_s": statistics.median(cpu),
        "solver": str(plan.solver),
        "variables": build_problem(snapshot, settings).variable_count,
        "milp_max_variables": settings.milp_max_variables,
        "lp_max_variables": settings.lp_max_variables,
        "objective_usd": plan.objective_usd,
        "infeasible_deployments": sum(1 for d in plan.deployments if not d.feasible),
        "replicas": sum(d.total_replicas for d in plan.deployments),
    }
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(
            f"planner: {args.deployments} deployments x {args.clusters} clusters x {args.gpu_types} GPU types, "
            f"{result['variables']} variables, solver {result['solver']}"
        )
        print(
            f"  median {result['median_s']:.3f} s  p95 {result['p95_s']:.3f} s  min {result['min_s']:.3f} s "
            f"(cpu median {result['median_cpu_s']:.3f} s) over {args.repeat} rounds"
        )
        print(
            f"  {result['replicas']} replicas, {result['infeasible_deployments']} deployment(s) infeasible, "
            f"objective {result['objective_usd']:.2f} USD"
        )
    return 0
