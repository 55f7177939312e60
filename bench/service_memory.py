"""The whole service's memory over cycles, without clusters: OperatorService on the in-memory fakes.

The service-level companion of bench/planner_memory.py. `tests/service/harness.py` wires a real
OperatorService to a fake hub, fake member clusters (one H100 pool each), fake price feeds and
metrics; this applies `--deployments` Advisory InferenceDeployments (rps 0.5-6.5, the mix of
tests/e2e/test_scale.py) over `--regions` clusters with different prices, runs `--cycles` cycles
(each a minute later: the price windows slide, so each plan is searched again, as with moving
demand) and after each reads RSS, RSS after `gc.collect()` + `malloc_trim(0)`, glibc's heap and
Python's small-object arenas (the readings of bench/planner_memory.py). The fakes hold the hub's
bodies and statuses in this process too, so the absolute figures are the service's plus the fakes';
what to read is how they move from cycle to cycle, and whether the live bytes or the free space
inside the arenas moves.

Usage (repo root; about 6 minutes at 10,000 on 2 cores):
  PYTHONPATH=operator nice -n 10 .venv/bin/python bench/service_memory.py --deployments 10000 --json out.json
Progress lines go to stderr; the figures, one JSON object, to stdout or --json FILE.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.planner_memory import progress, reading, write_result
from tests.service.harness import ServiceHarness, deployment_body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deployments", type=int, default=10_000)
    parser.add_argument("--regions", type=int, default=12)
    parser.add_argument("--cycles", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here (default: stdout)")
    args = parser.parse_args()
    regions = [f"r{i:02d}" for i in range(args.regions)]
    harness = ServiceHarness(regions, gpus_per_cluster=max(16, args.deployments // 4))
    for i, region in enumerate(regions):
        harness.prices[region] = 30.0 + 7 * i
    for i in range(args.deployments):
        harness.add(deployment_body(f"d{i:05d}", mode="Advisory", rps=0.5 + (i % 7)))
    readings = [reading("start", False)]
    cycles = []
    for cycle in range(1, args.cycles + 1):
        started, cpu = time.perf_counter(), time.process_time()
        report = harness.cycle()
        took = {
            "wall_s": round(time.perf_counter() - started, 2),
            "cpu_s": round(time.process_time() - cpu, 2),
            "planner_s": None if report.planner_seconds is None else round(report.planner_seconds, 2),
            "plan_reused": report.plan_reused,
        }
        progress(f"cycle {cycle}: {took}")
        readings.append(reading(f"after cycle {cycle}", False))
        cycles.append(took)
    out: dict[str, Any] = {
        "deployments": args.deployments,
        "regions": args.regions,
        "readings": readings,
        "cycles": cycles,
    }
    write_result(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
