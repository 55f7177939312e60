"""The batched fills (gridshift.planner.batchfill) are fill.ranked_fills' lists, deployment by deployment.

Random small problems (synthetic.random_snapshot) twisted per deployment into the cases the batch must
get right: stale prices, Frozen, no options, minRegions 2 and 3, a binding maxConcurrentMoves (the
keep-only and keep-all passes), caps above batchfill.WIDE and over fill._MAX_COMBINATIONS, pools with
nothing free, ties in cost; at k 1 to 3 and zero, random, tied, LP-dual and -inf or hugely negative prices."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridshift.planner import PlannerSettings
from gridshift.planner.batchfill import WIDE, batch, ranked_fills_batch
from gridshift.planner.fill import ranked_fills
from gridshift.planner.migration import Key
from gridshift.planner.pricing import pool_prices
from gridshift.planner.problem import DeploymentProblem, Problem, build_problem
from gridshift.planner.synthetic import random_snapshot
from gridshift.profiles_catalog import default_performance_models

SETTINGS = PlannerSettings()
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TWISTS = ("none", "stale", "frozen", "no options", "regions 2", "regions 3", "moves", "wide", "huge", "ties")


def _problem(seed: int, gpu_types: int, occupancy: float) -> Problem:
    world = random_snapshot(
        default_performance_models(), deployments=24, clusters=4, gpu_types=gpu_types, seed=seed, occupancy=occupancy
    )
    return build_problem(world, SETTINGS)


def _twist(deployment: DeploymentProblem, twist: str, rng: np.random.Generator) -> DeploymentProblem:
    """`deployment` turned into one of the cases (a fresh fill cache: fill._static caches per deployment)."""
    options = deployment.options
    fields: dict[str, object] = {}
    if twist == "stale":
        options = [replace(o, stale=bool(rng.integers(0, 2))) for o in options]
    elif twist == "frozen":
        fields["frozen"] = True
    elif twist == "no options":
        options = []
    elif twist in ("regions 2", "regions 3"):
        fields["min_regions"] = int(twist[-1])
    elif twist == "moves":
        options = [replace(o, current=int(rng.integers(0, 4)), upper=max(o.upper, 4)) for o in options]
        fields["max_moves"] = int(rng.integers(0, 3))
        fields["min_regions"] = int(rng.integers(1, 3))
    elif twist == "wide":
        fields["max_replicas"] = int(rng.integers(WIDE - 2, WIDE + 6))
        options = [replace(o, upper=max(o.upper, WIDE)) for o in options]
    elif twist == "huge":
        fields["max_replicas"] = 1_000
        options = [replace(o, upper=500) for o in options]
    elif twist == "ties":
        options = [replace(o, hourly_usd=float(round(o.hourly_usd)), start_per_hour_usd=0.0) for o in options]
    return replace(deployment, options=options, fill_cache={}, **fields)  # type: ignore[arg-type]


def _prices(problem: Problem, kind: str, rng: np.random.Generator) -> dict[Key, float]:
    if kind == "duals":
        return dict(pool_prices(problem, SETTINGS).per_gpu)
    if kind == "tied":
        return {key: float(rng.integers(0, 3)) for key in problem.inventory}
    if kind == "random":
        return {key: float(rng.uniform(0.0, 3.0)) for key in problem.inventory if rng.random() < 0.8}
    if kind == "negative":
        # -inf, and prices so negative that a fill's cost overflows to -inf: no fill (the least *finite* costs).
        choices = [-np.inf, -1e308, -1e300, -50.0, 0.0, 1.0]
        return {key: float(rng.choice(choices)) for key in problem.inventory}
    return {}


def _free(problem: Problem, kind: str, rng: np.random.Generator) -> dict[Key, int]:
    if kind == "all":
        return dict(problem.inventory)
    if kind == "some":
        return {key: int(rng.integers(0, gpus + 1)) for key, gpus in problem.inventory.items() if rng.random() < 0.9}
    return {key: 0 for key in problem.inventory}


def _check(seed: int, gpu_types: int, occupancy: float, prices: str, free: str, k: int, chunk: int) -> int:
    """Batched == loop for every deployment of a twisted problem; how many fills were compared."""
    problem = _problem(seed, gpu_types, occupancy)
    rng = np.random.default_rng(seed)
    deployments = [_twist(d, str(rng.choice(TWISTS)), rng) for d in problem.deployments]
    price = _prices(problem, prices, rng)
    available = _free(problem, free, rng)
    compared = 0
    for start in range(0, len(deployments), chunk):
        part = deployments[start : start + chunk]
        got = ranked_fills_batch(batch(part, SETTINGS), available, price, SETTINGS, k)
        for deployment, fills in zip(part, got, strict=True):
            extra = [price.get(o.key, 0.0) * o.gpus for o in deployment.options]
            assert fills == ranked_fills(deployment, available, SETTINGS, extra, k), deployment.index
            compared += len(fills)
    return compared


@PROPERTY
@given(
    seed=st.integers(0, 10_000),
    gpu_types=st.integers(1, 3),
    occupancy=st.sampled_from([0.3, 0.6, 0.9]),
    prices=st.sampled_from(["zero", "random", "tied", "duals", "negative"]),
    free=st.sampled_from(["all", "some", "none"]),
    k=st.integers(1, 3),
    chunk=st.sampled_from([1, 7, 64]),
)
def test_the_batched_fills_are_the_loops(
    seed: int, gpu_types: int, occupancy: float, prices: str, free: str, k: int, chunk: int
) -> None:
    _check(seed, gpu_types, occupancy, prices, free, k, chunk)


@pytest.mark.parametrize(
    ("seed", "gpu_types", "prices", "free", "k"),
    [
        (0, 3, "duals", "all", 2),
        (1, 2, "tied", "some", 1),
        (2, 3, "zero", "all", 2),
        (3, 1, "random", "some", 3),
        (4, 3, "negative", "all", 2),
        (5, 2, "negative", "some", 3),
    ],
)
def test_pinned_problems_give_the_loops_fills(seed: int, gpu_types: int, prices: str, free: str, k: int) -> None:
    assert _check(seed, gpu_types, 0.6, prices, free, k, 64) > 0


def test_every_twist_is_met_and_some_break_the_move_limit() -> None:
    # The cases the property is about do occur (a twist that never fires would test nothing).
    problem = _problem(0, 3, 0.6)
    rng = np.random.default_rng(0)
    free = dict(problem.inventory)
    broke = 0
    for twist in TWISTS:
        for deployment in problem.deployments[:8]:
            twisted = _twist(deployment, twist, rng)
            extra = [0.0] * len(twisted.options)
            got = ranked_fills_batch(batch([twisted], SETTINGS), free, {}, SETTINGS, 2)[0]
            assert got == ranked_fills(twisted, free, SETTINGS, extra, 2)
            if twist == "moves" and twisted.limits_moves:
                broke += 1
    assert broke > 0


def _wide(cap: int, min_regions: int, copies: int) -> list[DeploymentProblem]:
    """`copies` of a three-type deployment at replica cap `cap` (its options' bounds raised to it)."""
    problem = _problem(0, 3, 0.4)
    three = next(d for d in problem.deployments if len({o.gpu_type for o in d.options}) == 3 and not d.frozen)
    options = [replace(o, upper=max(o.upper, cap)) for o in three.options]
    return [
        replace(three, max_replicas=cap, min_regions=min_regions, options=options, fill_cache={}) for _ in range(copies)
    ]


def test_deployments_with_large_enumerations_go_through_the_loop() -> None:
    # Three GPU types at a cap of 24 and minRegions 2 enumerate 25^3 vectors: batched they took twice the
    # loop's CPU and 290 MiB for 256 of them (docs/planner.md, "Ninth round"); decided by the enumeration's
    # size, not only by the cap.
    for cap, min_regions, looped in ((8, 2, False), (24, 2, True), (16, 1, False), (24, 1, True)):
        deployment = _wide(cap, min_regions, 1)[0]
        assert batch([deployment], SETTINGS).looped.tolist() == [looped], (cap, min_regions)


def test_a_batch_of_wide_deployments_keeps_its_memory_to_a_few_tens_of_mib() -> None:
    # 256 batched deployments of 20^3 vectors (minRegions 1, the most batched): 2M cells a step held 140 MiB.
    import tracemalloc

    deployments = _wide(19, 1, 256)
    problem = _problem(0, 3, 0.4)
    free = dict(problem.inventory)
    b = batch(deployments, SETTINGS)
    assert b.batched.all()
    tracemalloc.start()
    try:
        got = ranked_fills_batch(b, free, {}, SETTINGS, 2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20, peak / 2**20
    assert got[0] == ranked_fills(deployments[0], free, SETTINGS, [0.0] * len(deployments[0].options), 2)


def test_the_pricing_asks_its_budget_by_work_not_by_count() -> None:
    # 256 deployments of 25^3 vectors one by one take 0.3-0.5 CPU-s: asked only every 256 deployments, the
    # budget was overrun by 0.9 s; main asked every 64. Common deployments still go 256 to a chunk.
    import gridshift.planner.master as master_module

    class Counting:
        asked = 0

        def allows(self, seconds: float) -> bool:
            self.asked += 1
            return True

    wide = _wide(24, 2, 200)
    problem = _problem(0, 3, 0.4)
    budget = Counting()
    columns = master_module._Columns(sorted(problem.inventory))
    master_module._priced_columns(wide, columns, dict(problem.inventory), SETTINGS, {}, 1, budget)  # type: ignore[arg-type]
    assert budget.asked >= len(wide) / 64
    common = [replace(d, fill_cache={}) for d in problem.movable] * 12
    assert len(common) >= 256
    assert len(master_module._chunks(common, list(range(len(common))))[0]) == 256


def test_a_batch_on_many_clusters_keeps_its_memory_and_its_chunks_to_their_cpu() -> None:
    # 80 clusters, four GPU types: 320 options and 80 regions a deployment. _outside's options x regions
    # grid held 124 MiB for a chunk of 256, and work() (vectors only) put 256 of them, 0.1 CPU-s, in one
    # chunk where main asked its budget every 64 (0.03-0.06 s).
    import tracemalloc

    import gridshift.planner.master as master_module

    world = random_snapshot(default_performance_models(), deployments=256, clusters=80, gpu_types=4, seed=0)
    problem = build_problem(world, SETTINGS)
    movable = list(problem.movable)
    free = dict(problem.inventory)
    rng = np.random.default_rng(0)
    prices = {key: float(rng.uniform(0, 3)) for key in free}
    assert len(master_module._chunks(movable, list(range(len(movable))))[0]) < 200
    b = batch(movable, SETTINGS)
    tracemalloc.start()
    try:
        got = ranked_fills_batch(b, free, prices, SETTINGS, 2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 30 * 2**20, peak / 2**20
    for deployment, fills in list(zip(movable, got, strict=True))[:: len(movable) // 16]:
        extra = [prices.get(o.key, 0.0) * o.gpus for o in deployment.options]
        assert fills == ranked_fills(deployment, free, SETTINGS, extra, 2)
