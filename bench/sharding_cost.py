"""What sharding the operator would cost: plans of K shards (deployments split by namespace hash, each
shard given a quota of every GPU pool) against the joint plan of the whole fleet, same snapshot.

The design in docs/scale.md runs several operator replicas, each owning the deployments of the
namespaces that hash to its shard and a share of each (cluster, GPU type) pool. A shard cannot use
GPUs left idle in another shard's quota, so its plans can only cost more than the joint plan (or
leave demand unserved). This prints that cost as a ratio against the joint plan solved in the same
run, with the planner's CPU seconds, on the planner bench's synthetic fleets (gridshift.planner.synthetic):

  quota `deployments`: a shard gets the share of every pool its deployment count is of the fleet's;
  quota `demand`: a shard gets the share its deployments' current replicas' GPUs are of the fleet's
  (what a coordinator that sees last cycle's placements would hand out).

Usage (repo root): PYTHONPATH=operator .venv/bin/python bench/sharding_cost.py --deployments 1000 --shards 2 4
  [--seeds 2] [--tenants 50] [--budget 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from dataclasses import replace
from pathlib import Path

from gridshift.planner.plan import Plan, make_plan
from gridshift.planner.settings import PlannerSettings
from gridshift.planner.snapshot import Cluster, Deployment, Snapshot
from gridshift.planner.synthetic import random_snapshot
from gridshift.profiles_catalog import default_performance_models


def shard_of(namespace: str, shards: int) -> int:
    """The shard owning a namespace: a stable hash (CRC-32), the same in every operator replica."""
    return zlib.crc32(namespace.encode()) % shards


def with_tenants(snapshot: Snapshot, tenants: int) -> Snapshot:
    """The synthetic fleet spread over `tenants` namespaces (it is generated in one)."""
    deployments = tuple(replace(d, namespace=f"tenant-{i % tenants:03d}") for i, d in enumerate(snapshot.deployments))
    return replace(snapshot, deployments=deployments)


def held_gpus(deployment: Deployment) -> int:
    return sum(p.desired for p in deployment.placements) or 1


def shard_snapshots(snapshot: Snapshot, shards: int, quota: str) -> list[Snapshot]:
    """The snapshot each shard's operator would see: its deployments, and its quota of every pool."""
    members: list[list[Deployment]] = [[] for _ in range(shards)]
    for deployment in snapshot.deployments:
        members[shard_of(deployment.namespace, shards)].append(deployment)
    weight = (lambda ds: len(ds)) if quota == "deployments" else (lambda ds: sum(held_gpus(d) for d in ds))
    total = sum(weight(ds) for ds in members) or 1
    out = []
    for index, deployments in enumerate(members):
        share = weight(deployments) / total

        def quota_of(cluster: Cluster, share: float = share, first: bool = index == 0) -> Cluster:
            offerings = []
            for offering in cluster.offerings:
                given = int(offering.available_gpus * share)
                if first:  # what rounding leaves goes to shard 0, so no GPU is lost
                    others = sum(int(offering.available_gpus * (weight(ds) / total)) for ds in members[1:])
                    given = offering.available_gpus - others
                offerings.append(replace(offering, available_gpus=given))
            return replace(cluster, offerings=tuple(offerings))

        out.append(
            replace(snapshot, deployments=tuple(deployments), clusters=tuple(quota_of(c) for c in snapshot.clusters))
        )
    return out


def planned(snapshot: Snapshot, settings: PlannerSettings) -> tuple[Plan, float]:
    started = time.process_time()
    plan = make_plan(snapshot, settings, clock=time.monotonic)
    return plan, time.process_time() - started


def infeasible(plan: Plan) -> int:
    return sum(1 for d in plan.deployments if not d.feasible)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--shards", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--quota", choices=["deployments", "demand"], nargs="+", default=["deployments", "demand"])
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--tenants", type=int, default=50, help="namespaces the fleet is spread over")
    parser.add_argument("--budget", type=float, default=20.0, help="planner time budget per plan, s")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.deployments < 1 or min(args.shards) < 1 or args.tenants < 1:
        parser.error("--deployments, --shards and --tenants must be at least 1")
    settings = PlannerSettings(time_budget_seconds=args.budget)
    models = default_performance_models()
    rows = []
    print("| seed | shards | quota | sharded / joint cost | infeasible joint -> sharded | CPU s joint | shard max |")
    print("|---|---|---|---|---|---|---|")
    for seed in range(args.seed, args.seed + args.seeds):
        snapshot = with_tenants(
            random_snapshot(models, deployments=args.deployments, clusters=12, gpu_types=3, seed=seed), args.tenants
        )
        joint, joint_cpu = planned(snapshot, settings)
        bound = f", bound {joint.bound_usd_per_hour:.2f}" if joint.bound_usd_per_hour is not None else ""
        proven = " (proven optimal)" if joint.proven_optimal else bound
        print(
            f"  seed {seed}: joint {joint.objective_usd_per_hour:.2f} USD/h{proven} in {joint_cpu:.1f} s",
            file=sys.stderr,
        )
        for shards in args.shards:
            for quota in args.quota:
                parts = [planned(s, settings) for s in shard_snapshots(snapshot, shards, quota)]
                cost = sum(p.objective_usd_per_hour for p, _ in parts)
                row = {
                    "seed": seed,
                    "deployments": args.deployments,
                    "shards": shards,
                    "quota": quota,
                    "joint_usd_per_hour": joint.objective_usd_per_hour,
                    "sharded_usd_per_hour": cost,
                    "ratio": cost / joint.objective_usd_per_hour,
                    "joint_proven_optimal": joint.proven_optimal,
                    "joint_bound_usd_per_hour": joint.bound_usd_per_hour,
                    "joint_infeasible": infeasible(joint),
                    "sharded_infeasible": sum(infeasible(p) for p, _ in parts),
                    "joint_cpu_s": joint_cpu,
                    "shard_cpu_s_max": max(c for _, c in parts),
                }
                rows.append(row)
                print(
                    f"| {seed} | {shards} | {quota} | {row['ratio']:.4f} | "
                    f"{row['joint_infeasible']} -> {row['sharded_infeasible']} | {joint_cpu:.1f} | "
                    f"{row['shard_cpu_s_max']:.1f} |",
                    flush=True,
                )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
