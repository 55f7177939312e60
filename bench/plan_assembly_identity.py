"""Identity check for plan assembly and problem build (issue 13): the same snapshots and ONE fixed
solution (the re-validated running placement, or the first fill from it: both deterministic, no
budget) through make_plan with the search replaced, on two trees; prints one digest per case.

Every case hashes repr() of the built Problem's parts and of the assembled Plan (floats in repr
round-trip exactly, mappings in insertion order), so two trees that print the same lines built the
same options and assembled the same plans byte for byte.

Plans hash with the fields repr leaves out (group_targets, steady); --full prints the text hashed.

Usage (repo root):
  PYTHONPATH=/path/to/old/operator .venv/bin/python bench/plan_assembly_identity.py > old.txt
  PYTHONPATH=operator .venv/bin/python bench/plan_assembly_identity.py > new.txt && cmp old.txt new.txt
  ... bench/plan_assembly_identity.py --sizes 50 200 1000 --seeds 0 1 2 3 4   (every seed at every size)
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np

import gridshift.planner.plan as plan_module
from gridshift.modes import MigrationMode
from gridshift.planner import PlannerSettings, make_plan
from gridshift.planner import snapshot as S
from gridshift.planner.firstfill import first_fill
from gridshift.planner.problem import Problem
from gridshift.planner.search import SearchResult, revalidated_current
from gridshift.planner.solution import objective
from gridshift.planner.synthetic import random_snapshot, with_synthetic_carbon
from gridshift.profiles_catalog import default_performance_models


def _decorated(snapshot: S.Snapshot, seed: int) -> S.Snapshot:
    """Modes, unknown demand, request classes, variants, carbon limits, region rules, an unreachable
    cluster, a stale price and a placement in an unknown cluster, on a random share of deployments."""
    rng = np.random.default_rng([seed, 13])
    names = sorted({(p.model, p.gpus_per_replica) for p in snapshot.profiles})
    regions = sorted({c.region for c in snapshot.clusters})
    deployments = []
    for d in snapshot.deployments:
        r, dem = d.requirements, d.demand
        draw = rng.random()
        if draw < 0.05:
            r = replace(r, mode=MigrationMode.FROZEN)
        elif draw < 0.10:
            r = replace(r, mode=MigrationMode.ADVISORY)
        elif draw < 0.15:
            dem = replace(dem, requests_per_second=None)
        elif draw < 0.25:
            classes = (
                S.RequestClass("short", 200.0, 100.0, 0.7),
                S.RequestClass("long", 3000.0, 400.0, 0.3, prompt_p95_tokens=5000.0),
            )
            dem = replace(dem, request_classes=classes)
        elif draw < 0.32:
            others = [m for m, g in names if g == r.gpus_per_replica and m != r.model_names[0]]
            if others:
                r = replace(r, variants=(S.Variant("alt", (others[int(rng.integers(len(others)))],)),))
        elif draw < 0.37:
            r = replace(r, carbon_max_g_per_kwh=300.0, carbon_price_usd_per_tonne=80.0)
        elif draw < 0.42:
            r = replace(r, preferred_regions=frozenset(regions[:2]), forbidden_regions=frozenset(regions[-1:]))
        elif draw < 0.45:
            placements = (*d.placements, S.Placement("gone", r.gpu_types[0], 2, 1))
            d = replace(d, placements=placements)
        elif draw < 0.48:
            r = replace(r, static_requests_per_second=0.0)
        deployments.append(replace(d, requirements=r, demand=dem))
    clusters = list(snapshot.clusters)
    if len(clusters) > 2:
        clusters[1] = replace(clusters[1], reachable=False)
    prices = dict(snapshot.prices)
    if len(clusters) > 3:
        name = clusters[2].name
        prices[name] = replace(prices[name], stale=True)
    return replace(snapshot, deployments=tuple(deployments), clusters=tuple(clusters), prices=prices)


def _cases(sizes: list[int] | None, seeds: list[int] | None) -> Iterator[tuple[str, S.Snapshot]]:
    models = default_performance_models()
    for size in sizes or (30, 200, 1000):
        for tightness in (0.4, 0.8):
            for seed in seeds if seeds is not None else (0, 1) if size < 1000 else (0,):
                snap = random_snapshot(
                    models, deployments=size, clusters=12, gpu_types=3, seed=seed, occupancy=tightness
                )
                name = f"n{size}-t{tightness}-s{seed}"
                yield name, snap
                yield name + "-carbon", with_synthetic_carbon(snap, 120.0, seed=seed)
                yield name + "-decorated", _decorated(with_synthetic_carbon(snap, 0.0, seed=seed), seed)


_FULL: list[bool] = [False]


def _digest(value: Any) -> str:
    text = repr(value)
    if _FULL[0]:
        print(text)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _plan_text(plan: Any) -> Any:
    """The plan with the fields its repr leaves out."""
    return (plan, dict(plan.group_targets), dict(plan.steady))


def _fixed(fill: bool, seen: dict[str, str]) -> Callable[..., SearchResult]:
    """A stand-in for the search: the re-validated running placement, or the first fill from it."""

    def fixed(problem: Problem, settings: PlannerSettings, **_: Any) -> SearchResult:
        solution = revalidated_current(problem)
        if fill:
            solution = first_fill(problem, settings, solution)
        seen["problem"] = _digest(
            (
                [(d.index, d.options, d.coverage_target, d.max_replicas, d.notes) for d in problem.deployments],
                problem.inventory,
                problem.variable_count,
                sorted(problem.stale_clusters),
                problem.price_views,
                problem.carbon_views,
            )
        )
        value = objective(problem, solution, settings)
        return SearchResult(solution, value, None, False, False, ("fixed",))

    return fixed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", help="deployments per case (default 30 200 1000)")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds at every size (default 0 1, and 0 at 1000)")
    parser.add_argument("--full", action="store_true", help="also print the text each digest hashes")
    args = parser.parse_args()
    _FULL[0] = args.full
    settings = PlannerSettings()
    for name, snap in _cases(args.sizes, args.seeds):
        for fill in (False, True):
            seen: dict[str, str] = {}
            setattr(plan_module, "search", _fixed(fill, seen))  # noqa: B010 - the stand-in, as a monkeypatch
            first = make_plan(snap, settings)
            again = make_plan(snap, settings, previous=first)
            print(
                f"{name} fill={fill} problem={seen['problem']} plan={_digest(_plan_text(first))} "
                f"with-previous={_digest(_plan_text(again))} deployments={len(first.deployments)}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
