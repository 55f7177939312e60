"""Command line of the simulated world: `python -m e2e.world run|bench` from the repository root.

run    the world over the clusters of `make cluster-up` (.gridshift/kubeconfigs), optionally with
       a private Prometheus scraping it; endpoints go to .gridshift/sim-world.json; runs until
       SIGINT/SIGTERM. `make world-up` / `make world-down` wrap it (e2e/world/world.mk).
bench  how much faster than real time the fleet simulates N replicas under load.
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "e2e.world"

from .fleet import LoadSpec
from .profiles import H100, REPO_ROOT
from .trace import TraceName

STATE_FILE = REPO_ROOT / ".gridshift" / "sim-world.json"
CLUSTER_STATE_FILE = REPO_ROOT / ".gridshift" / "world.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m e2e.world", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the world over the clusters of `make cluster-up`")
    run.add_argument("--kubeconfigs", type=Path, default=REPO_ROOT / ".gridshift" / "kubeconfigs")
    run.add_argument("--hub", default="hub", help="name of the hub's kubeconfig (default: hub)")
    run.add_argument("--speed", type=float, default=360.0, help="simulated seconds per real second")
    run.add_argument(
        "--tick",
        type=float,
        default=None,
        help="simulation step, simulated seconds (default speed/180 within [0.25, 2]); coarser steps cost less CPU",
    )
    run.add_argument(
        "--no-catch-up",
        action="store_true",
        help="keep the step when the simulation trails the clock (slow the clock instead: POST /clock)",
    )
    run.add_argument("--start", default="2024-06-03T00:00:00Z", help="simulated start time (UTC, 2024)")
    run.add_argument("--trace", choices=[t.value for t in TraceName], default="conv")
    run.add_argument("--rate", type=float, default=10.0, help="requests per simulated second per deployment")
    run.add_argument("--control-port", type=int, default=0)
    run.add_argument("--price-port", type=int, default=0)
    run.add_argument("--prometheus", action="store_true", help="also start a private Prometheus scraping the world")
    run.add_argument("--state", type=Path, default=STATE_FILE, help="where to write the endpoints (JSON)")
    bench = commands.add_parser("bench", help="simulation speed of N replicas under load")
    bench.add_argument("--replicas", type=int, default=20)
    bench.add_argument("--rate", type=float, default=160.0, help="requests per simulated second, whole fleet")
    bench.add_argument("--sim-seconds", type=float, default=1800.0)
    bench.add_argument("--speed", type=float, default=360.0, help="the clock speed whose tick size to use")
    return parser


def _cluster_power() -> Any:
    """kwokctl with the environment of the running `make cluster-up` world, if any."""
    from .kube import KwokctlClusterPower

    if not CLUSTER_STATE_FILE.exists():
        return None
    sys.path.insert(0, str(REPO_ROOT / "e2e" / "cluster"))
    control_planes = importlib.import_module("gscluster.planes").planes_from_state(CLUSTER_STATE_FILE)
    if control_planes is None:
        return None
    return KwokctlClusterPower(str(control_planes.bin_dir / "kwokctl"), env=control_planes.env())


def run(args: argparse.Namespace) -> int:
    from .prometheus import scrape_configs
    from .world import World, WorldSettings

    try:
        start = datetime.fromisoformat(args.start.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        print(f"--start: not an ISO 8601 time: {args.start!r}", file=sys.stderr)
        return 2
    settings = WorldSettings(
        start=start,
        speed=args.speed,
        tick_sim_seconds=args.tick,
        catch_up=not args.no_catch_up,
        default_load=LoadSpec(TraceName(args.trace), args.rate),
        control_port=args.control_port,
        price_port=args.price_port,
    )
    world = World.from_kubeconfigs(settings, kubeconfig_dir=args.kubeconfigs, hub=args.hub, power=_cluster_power())
    world.start()
    prometheus = None
    state: dict[str, Any] = dict(world.endpoints())
    if args.prometheus:
        sys.path.insert(0, str(REPO_ROOT / "e2e" / "cluster"))
        start_prometheus = importlib.import_module("gscluster.prometheus").start_prometheus
        prometheus = start_prometheus(
            scrape_interval="1s", extra_scrape_configs=scrape_configs(state["exporters"]), retention="24h"
        )
        state["prometheus"] = prometheus.url
    args.state.parent.mkdir(parents=True, exist_ok=True)
    args.state.write_text(json.dumps(state, indent=2) + "\n")
    print(json.dumps(state, indent=2), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    if prometheus is not None:
        prometheus.stop()
    world.stop()
    args.state.unlink(missing_ok=True)
    return 0


def bench(args: argparse.Namespace) -> int:
    import numpy as np

    from .engine import FleetEngine, ReplicaParams
    from .profiles import ProfileCatalog
    from .trace import TraceLoad, load_trace
    from .world import WorldSettings

    performance = ProfileCatalog().performance(H100, 1)
    engine = FleetEngine(seed=1)
    slots = np.array([engine.add_replica(f"r{i}", ReplicaParams(performance)) for i in range(args.replicas)])
    load = TraceLoad(load_trace("conv"), args.rate)
    tick = WorldSettings(speed=args.speed).tick()
    t, started = 0.0, time.thread_time()
    while t < args.sim_seconds:
        engine.route(slots, np.ones(len(slots)), load.arrivals(t, t + tick))
        engine.advance(t, t + tick, counter_scale=1 / args.speed)
        t += tick
    cpu = time.thread_time() - started
    result = {
        "replicas": args.replicas,
        "requestsPerSecond": args.rate,
        "tickSimSeconds": tick,
        "cpuSeconds": round(cpu, 3),
        "simulatedPerCpuSecond": round(args.sim_seconds / cpu, 1),
        "cpuShareAtSpeed": round(args.speed * cpu / args.sim_seconds, 3),
        "meanBatch": round(float(engine.batch[slots].mean()), 1),
    }
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run(args) if args.command == "run" else bench(args)


if __name__ == "__main__":
    raise SystemExit(main())
