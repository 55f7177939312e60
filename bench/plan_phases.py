"""CPU seconds of make_plan's phases outside the search (issue 13): building the problem, assembling
the plan, and Python's garbage collector within each, with the search replaced by a fixed solution
(the first fill from the re-validated running placement: deterministic, no budget), so the figures do
not depend on how far a budgeted search got.

The reserve make_plan keeps for assembly (planner/plan.py, _ASSEMBLY_SECONDS_PER_*) and its build
estimate (_BUILD_SECONDS_PER_*) were fitted on these figures.

Usage (repo root; one JSON line per run):
  PYTHONPATH=operator .venv/bin/python bench/plan_phases.py --deployments 10000 --clusters 12 --gpu-types 3
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from typing import Any

import gridshift.planner.plan as plan_module
from gridshift.planner import PlannerSettings
from gridshift.planner.firstfill import first_fill
from gridshift.planner.problem import Problem
from gridshift.planner.search import SearchResult, revalidated_current
from gridshift.planner.solution import objective
from gridshift.planner.synthetic import random_snapshot
from gridshift.profiles_catalog import default_performance_models


class _GcTimer:
    """CPU seconds and number of the collections Python's garbage collector runs (gc.callbacks)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.process_time()
        else:
            self.seconds += time.process_time() - self._began
            self.collections += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--clusters", type=int, default=12)
    parser.add_argument("--gpu-types", type=int, default=3)
    parser.add_argument("--tightness", type=float, default=0.4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    snapshot = random_snapshot(
        default_performance_models(),
        deployments=args.deployments,
        clusters=args.clusters,
        gpu_types=args.gpu_types,
        seed=args.seed,
        occupancy=args.tightness,
    )
    timer = _GcTimer()
    gc.callbacks.append(timer)
    marks: dict[str, Any] = {}
    build = plan_module.build_problem

    def timed_build(*a: Any, **k: Any) -> Problem:
        cpu, collected = time.process_time(), timer.seconds
        problem = build(*a, **k)
        marks["build_cpu_s"] = time.process_time() - cpu
        marks["build_gc_s"] = timer.seconds - collected
        marks["options"] = sum(len(d.options) for d in problem.deployments)
        return problem

    def fixed(problem: Problem, settings: PlannerSettings, **_: Any) -> SearchResult:
        solution = first_fill(problem, settings, revalidated_current(problem))
        value = objective(problem, solution, settings)
        marks["assembly_from"] = (time.process_time(), timer.seconds)
        return SearchResult(solution, value, None, False, False, ("fixed",))

    setattr(plan_module, "build_problem", timed_build)  # noqa: B010 - stand-ins, as a monkeypatch
    setattr(plan_module, "search", fixed)  # noqa: B010
    cpu, collected, collections = time.process_time(), timer.seconds, timer.collections
    make_plan = plan_module.make_plan
    make_plan(snapshot, PlannerSettings())
    end = time.process_time()
    assembly_cpu, assembly_gc = marks.pop("assembly_from")
    marks["assembly_cpu_s"] = end - assembly_cpu
    marks["assembly_gc_s"] = timer.seconds - assembly_gc
    marks["make_plan_cpu_s"] = end - cpu
    marks["make_plan_gc_s"] = timer.seconds - collected
    marks["gc_collections"] = timer.collections - collections
    marks["gc_enabled_after"] = gc.isenabled()
    print(
        json.dumps(
            {
                "deployments": args.deployments,
                "clusters": args.clusters,
                "gpu_types": args.gpu_types,
                "tightness": args.tightness,
                "seed": args.seed,
                **{k: round(v, 4) if isinstance(v, float) else v for k, v in marks.items()},
                "loadavg_1min": os.getloadavg()[0],
            },
            sort_keys=True,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
