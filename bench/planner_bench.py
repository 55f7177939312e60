"""Planner figures for docs/planner.md: timings at 100 / 1,000 / 10,000 deployments, and solver quality.

Usage (repo root):
  .venv/bin/python bench/planner_bench.py            # timings, 12 clusters x 3 GPU types
  .venv/bin/python bench/planner_bench.py --quality  # greedy and lp+greedy against the MILP optimum
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timings(sizes: list[int], repeat: int) -> None:
    for deployments in sizes:
        command = [
            sys.executable,
            "-c",
            "import sys; from gridshift.cli import bench; "
            "import argparse; p = argparse.ArgumentParser(); bench.register(p.add_subparsers(dest='c')); "
            "a = p.parse_args(sys.argv[1:]); sys.exit(a.handler(a))",
            "bench",
            "planner",
            "--deployments",
            str(deployments),
            "--clusters",
            "12",
            "--gpu-types",
            "3",
            "--repeat",
            str(repeat if deployments <= 1000 else 2),
            "--json",
        ]
        out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO).stdout
        result = json.loads(out)
        load = os.getloadavg()[0]
        print(
            f"| {deployments} | {result['variables']} | {result['solver']} | {result['median_s']:.3f} | "
            f"{result['p95_s']:.3f} | {result['median_cpu_s']:.3f} | {load:.1f} |"
        )


def quality() -> None:
    sys.path.insert(0, str(REPO))
    from tests.planner.planner_world import A100_MODEL, H100_MODEL

    from gridshift.planner import PlannerSettings
    from gridshift.planner.greedy import solve_greedy
    from gridshift.planner.milp import solve_lp_floor, solve_milp
    from gridshift.planner.problem import build_problem
    from gridshift.planner.solution import objective
    from gridshift.planner.synthetic import random_snapshot
    from gridshift.profiles_catalog import default_performance_models

    settings = PlannerSettings()
    cases = [(12, 4, "one model", 20), (30, 6, "one model", 5), (25, 12, "shipped", 4), (50, 12, "shipped", 4)]
    for deployments, clusters, models, seeds in cases:
        base = default_performance_models() if models == "shipped" else (H100_MODEL, A100_MODEL)
        greedy_gaps, best_gaps = [], []
        for seed in range(seeds):
            world = random_snapshot(base, deployments=deployments, clusters=clusters, gpu_types=3, seed=seed)
            problem = build_problem(world, settings)
            exact = solve_milp(problem, settings)
            assert exact is not None
            optimum = objective(problem, exact, settings)
            greedy = objective(problem, solve_greedy(problem, settings), settings)
            start = solve_lp_floor(problem, settings)
            seeded = objective(problem, solve_greedy(problem, settings, start), settings) if start else greedy
            greedy_gaps.append(greedy / optimum - 1)
            best_gaps.append(min(greedy, seeded) / optimum - 1)
        print(
            f"| {deployments} deployments, {clusters} clusters, {models} ({seeds}) | "
            f"mean {sum(greedy_gaps) / seeds:+.1%}, worst {max(greedy_gaps):+.1%} | "
            f"mean {sum(best_gaps) / seeds:+.1%}, worst {max(best_gaps):+.1%} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quality", action="store_true", help="compare the solvers instead of timing")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.quality:
        quality()
    else:
        print("| deployments | variables | solver | median s | p95 s | median CPU s | load avg |")
        print("|---|---|---|---|---|---|---|")
        timings(args.sizes, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
