"""CLI: python e2e/cluster/cluster.py {build,up,down,status,rss}"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="cluster.py", description="gridshift multi-region test clusters")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build (or reuse) all binaries")
    b.add_argument("--only", nargs="*")
    sub.add_parser("bin-dir", help="print the binary cache dir")
    up = sub.add_parser("up", help="start the world; kubeconfigs in .gridshift/kubeconfigs/")
    up.add_argument("--world", default=None, help="world file (default e2e/cluster/planes.yaml)")
    up.add_argument("--ready-delay", type=float, default=None, help="seconds until a scheduled pod is Ready")
    up.add_argument("--only", nargs="*", help="start only these clusters")
    up.add_argument("--serial", action="store_true", help="create clusters one after another")
    sub.add_parser("down", help="stop the world started by `up` (and any stale test worlds)")
    sub.add_parser("status", help="show the running world")
    args = ap.parse_args(argv)

    from . import build as B

    if args.cmd == "build":
        print(B.build(args.only))
        return 0
    if args.cmd == "bin-dir":
        print(B.bin_dir())
        return 0

    from . import planes as W

    if args.cmd == "up":
        old = W.planes_from_state()
        if old is not None:
            W._log(f"stopping previous world {old.workdir}")
            old.stop()
        world_file = Path(args.world) if args.world else W.DEFAULT_PLANES_FILE
        t0 = time.monotonic()
        world = W.start_planes(
            world_file,
            args.ready_delay,
            kubeconfig_dir=W.DEFAULT_KUBECONFIG_DIR,
            only=args.only,
            persistent=True,
            parallel=not args.serial,
        )
        st = world.to_json() | {"world_file": str(world_file.resolve()), "started": time.time()}
        W.STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
        W.STATE_FILE.write_text(json.dumps(st, indent=2) + "\n")
        rss, procs = world.rss_bytes()
        print(f"world up in {time.monotonic() - t0:.1f}s; {len(procs)} processes, RSS {rss / 2**20:.0f} MiB")
        for name, path in world.kubeconfigs.items():
            print(f"  {name:8s} kubectl --kubeconfig {path.relative_to(W.REPO_ROOT)} get nodes")
        print(f"  logs: {world.workdir}/clusters/<gs-name>/logs/   (cluster-down: make cluster-down)")
        print(f"  binaries (kubectl, helm): {world.bin_dir}")
        return 0
    if args.cmd == "down":
        world = W.planes_from_state()
        if world is not None:
            world.stop()
        else:
            print("no world recorded in .gridshift/world.json", file=sys.stderr)
        W.STATE_FILE.unlink(missing_ok=True)
        W.reap_stale_planes()
        return 0
    if args.cmd == "status":
        world = W.planes_from_state()
        if world is None:
            print("no world running (per .gridshift/world.json)")
            return 1
        rss, procs = world.rss_bytes()
        print(f"workdir {world.workdir}: {len(procs)} processes, RSS {rss / 2**20:.0f} MiB")
        for pid, comm, r in sorted(procs, key=lambda p: -p[2]):
            print(f"  {pid:>8} {comm:24s} {r / 2**20:8.1f} MiB")
        for name in world.names:
            out = world.kubectl(name, "get", "nodes", "--no-headers", check=False)
            n = len(out.stdout.splitlines()) if out.returncode == 0 else f"DOWN ({out.stderr.strip()[:80]})"
            print(f"  {name:8s} nodes={n} kubeconfig={world.kubeconfigs[name]}")
        return 0
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
