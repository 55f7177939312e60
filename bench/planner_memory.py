"""The planner's memory over cycles, without clusters: RSS after each `make_plan` on one synthetic fleet.

Builds the planner bench's snapshot (gridshift.planner.synthetic.random_snapshot with the shipped
profiles; default 10,000 deployments x 12 clusters x 3 GPU types) and plans it `--cycles` times the
way the operator's decide stage does (service.decide.Decider): the first plan from scratch, each
next one with `previous=` the last plan, which is then dropped (only the latest plan is kept, as
the Decider keeps it). After each cycle it reads, from /proc/self/status, VmRSS (resident now) and
VmHWM (its peak), the bytes tracemalloc traces (Python's live allocations, when --tracemalloc),
then RSS again after `gc.collect()` and glibc's `malloc_trim(0)` (what stays once the collector has
run and the allocator has handed back what it can), and where that memory sits: glibc's in-use and
free heap bytes (mallinfo2) and Python's small-object allocator's arenas, live and free bytes
(sys._debugmallocstats). RSS well above the live bytes, with the free bytes inside arenas that stay
mapped, is fragmentation: memory held at the cycle's peak, not objects kept.

`--stage` stops each cycle after one part of the planner, to find which part holds memory:
  problem  build_problem only
  prices   build_problem + the LP pricing (HiGHS simplex on the compact LP, a sample at this size)
  plan     the whole make_plan (default)
  child    the whole make_plan in a forked child process, the plan sent back (an experiment: what
           planning out of process would leave in the operator)

Environment variables worth a data point (they act on the allocators, not on the planner):
MALLOC_ARENA_MAX=2 (glibc's per-thread arenas), MALLOC_MMAP_THRESHOLD_=131072 (large blocks always
mmap'd), PYTHONMALLOC=malloc (Python's small-object arenas off, everything through glibc).

Usage (repo root):
  PYTHONPATH=operator nice -n 10 .venv/bin/python bench/planner_memory.py --deployments 1000 --json out.json
  MALLOC_ARENA_MAX=2 PYTHONPATH=operator .venv/bin/python bench/planner_memory.py --deployments 10000
Progress lines go to stderr; the figures, one JSON object, to stdout or --json FILE.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import json
import multiprocessing
import os
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from gridshift.planner.plan import Plan, make_plan
from gridshift.planner.settings import PlannerSettings
from gridshift.planner.synthetic import random_snapshot
from gridshift.profiles_catalog import default_performance_models

MIB = 1024 * 1024
ENV_OF_INTEREST = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "PYTHONMALLOC")


def status_mib() -> dict[str, float]:
    """VmRSS and VmHWM of this process, MiB."""
    out: dict[str, float] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) / 1024
    return out


def malloc_trim() -> bool:
    """glibc's malloc_trim(0); False where there is no glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "malloc_trim"):
        return False
    libc.malloc_trim(0)
    return True


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def malloc_mib() -> dict[str, float]:
    """glibc's mallinfo2: bytes malloc has handed out and not had back (in use: heap + mmapped chunks),
    and bytes it holds free in its heaps, MiB; empty where there is no mallinfo2 (not glibc >= 2.33)."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is None or not hasattr(libc, "mallinfo2"):
        return {}
    libc.mallinfo2.restype = _Mallinfo2
    info = libc.mallinfo2()
    return {"malloc_in_use_mib": (info.uordblks + info.hblkhd) / MIB, "malloc_free_mib": info.fordblks / MIB}


def pymalloc_mib() -> dict[str, float]:
    """Python's small-object allocator (pymalloc), from sys._debugmallocstats: its arenas (1 MiB each,
    given back to the system only when wholly empty), the bytes in blocks allocated in them (live
    objects) and the bytes free in them (free blocks and unused pools); empty where pymalloc is off."""
    sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+") as capture:
        saved = os.dup(2)
        try:
            os.dup2(capture.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        text = capture.read()
    fields: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition("=")
        name, value = name.strip(), value.strip().replace(",", "")
        if name == "# arenas allocated current":
            fields["pymalloc_arenas_mib"] = int(value)  # 1 MiB each (Python >= 3.10)
        elif name == "# bytes in allocated blocks":
            fields["pymalloc_live_mib"] = int(value) / MIB
        elif name == "# bytes in available blocks" or "unused pools *" in name:
            fields["pymalloc_free_mib"] = fields.get("pymalloc_free_mib", 0.0) + int(value) / MIB
    return fields


def progress(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def reading(label: str, traced: bool) -> dict[str, Any]:
    figures: dict[str, Any] = {"at": label, **{f"{k}_mib": round(v, 1) for k, v in status_mib().items()}}
    if traced:
        figures["traced_mib"] = round(tracemalloc.get_traced_memory()[0] / MIB, 1)
    gc.collect()
    figures["trimmed"] = malloc_trim()
    figures["VmRSS_after_gc_trim_mib"] = round(status_mib()["VmRSS"], 1)
    figures |= {k: round(v, 1) for k, v in (malloc_mib() | pymalloc_mib()).items()}
    progress(" ".join(f"{k}={v}" for k, v in figures.items()))
    return figures


def _plan_without_snapshot(snapshot: Any, settings: PlannerSettings, previous: Plan | None) -> Plan:
    plan = make_plan(snapshot, settings, clock=time.monotonic, previous=previous)
    return replace(plan, snapshot=None)


def one_cycle(stage: str, snapshot: Any, settings: PlannerSettings, previous: Plan | None) -> Plan | None:
    if stage == "child":
        # The experiment: plan in a forked child, so that what the search allocates goes back whole
        # when it exits; only the plan comes back (pickled, the snapshot re-attached here).
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork")) as pool:
            plan = pool.submit(_plan_without_snapshot, snapshot, settings, previous).result()
        return replace(plan, snapshot=snapshot)
    if stage == "plan":
        return make_plan(snapshot, settings, clock=time.monotonic, previous=previous)
    from gridshift.planner.problem import build_problem

    problem = build_problem(snapshot, settings)
    if stage == "prices":
        from gridshift.planner.pricing import pool_prices
        from gridshift.planner.search import _PRICING_SAMPLE

        large = len(problem.movable) > _PRICING_SAMPLE
        pool_prices(
            problem, settings, time_limit=settings.time_budget_seconds, sample=_PRICING_SAMPLE if large else None
        )
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deployments", type=int, default=10_000)
    parser.add_argument("--clusters", type=int, default=12)
    parser.add_argument("--gpu-types", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cycles", type=int, default=2, help="make_plan calls, each from the last plan (default 2)")
    parser.add_argument("--budget", type=float, default=None, help="planner time budget, s (default: the setting's)")
    parser.add_argument("--stage", choices=("problem", "prices", "plan", "child"), default="plan")
    parser.add_argument("--tracemalloc", action="store_true", help="trace Python's allocations (slows the planner)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here (default: stdout)")
    args = parser.parse_args()
    if args.tracemalloc:
        tracemalloc.start()
    settings = PlannerSettings() if args.budget is None else PlannerSettings(time_budget_seconds=args.budget)
    readings = [reading("start", args.tracemalloc)]
    snapshot = random_snapshot(
        default_performance_models(),
        deployments=args.deployments,
        clusters=args.clusters,
        gpu_types=args.gpu_types,
        seed=args.seed,
    )
    readings.append(reading("snapshot built", args.tracemalloc))
    plan: Plan | None = None
    cycles = []
    for cycle in range(1, args.cycles + 1):
        started, cpu = time.perf_counter(), time.process_time()
        plan = one_cycle(args.stage, snapshot, settings, plan)
        took: dict[str, Any] = {
            "wall_s": round(time.perf_counter() - started, 2),
            "cpu_s": round(time.process_time() - cpu, 2),
        }
        if plan is not None:
            took |= {"solver": str(plan.solver), "steps": list(plan.search_steps)}
        readings.append(reading(f"after cycle {cycle}", args.tracemalloc))
        cycles.append(took)
    out = {
        "deployments": args.deployments,
        "clusters": args.clusters,
        "gpu_types": args.gpu_types,
        "seed": args.seed,
        "stage": args.stage,
        "budget_s": settings.time_budget_seconds,
        "readings": readings,
        "cycles": cycles,
    }
    write_result(out, args.json)
    return 0


def write_result(out: dict[str, Any], path: Path | None) -> None:
    """The run's JSON, with the environment and load it ran under, to `path` (stdout when None)."""
    out |= {"env": {k: os.environ[k] for k in ENV_OF_INTEREST if k in os.environ}, "loadavg": os.getloadavg()}
    text = json.dumps(out, indent=2)
    if path is None:
        print(text)
    else:
        path.write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
