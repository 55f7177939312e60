"""What one status write costs the hub apiserver: CPU seconds per patch, read from /proc.

Starts a hub and one region (real etcd + kube-apiserver, bench/operator_scale's world), applies N
Advisory InferenceDeployments, runs the operator service's first cycle (N status patches from an
empty status: what a new leader over a fresh fleet writes) and reads the hub kube-apiserver's and
etcd's CPU time (utime + stime) before and after. Then it sends variants of the same writes with the
service's own hub client (KubeHub.patch_status), each N times, and prints the apiserver CPU per patch:

- full:     the whole status again after it was cleared (every field new, as in a first cycle);
- noop:     the stored status sent again unchanged (the apiserver decodes, validates, finds no change);
- one:      one field changed (status.desiredReplicas), the rest of the status stored;
- clear:    every status field removed (null), the other half of `full`'s round.

Usage: PYTHONPATH=operator .venv/bin/python bench/hub_patch_cost.py --deployments 1000 [--json out.json]
The machine's load changes the figures little (CPU seconds of the apiserver's process, not wall time),
but a loaded machine raises them somewhat (cache misses, scheduling).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "e2e" / "cluster")]

from bench.operator_scale import (  # noqa: E402
    apply_chunks,
    component_pids,
    counting_prometheus,
    cpu_seconds,
    renew_beside,
    world_file,
)
from gscluster import start_planes  # noqa: E402
from tests.e2e.operator_env import NAMESPACE, inference_deployment, install_hub  # noqa: E402

from gridshift.hub.client import ObjectRef  # noqa: E402
from gridshift.service.wiring import real_service  # noqa: E402
from gridshift.settings import OperatorSettings  # noqa: E402
from gridshift.shell.handlers import essence  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--pprof", type=Path, help="folder for the hub apiserver's CPU profile per variant")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="gridshift-patchcost-"))
    world = start_planes(world_file(1, 1, workdir / "world.yaml"), ready_delay_s=1)
    figures: dict[str, Any] = {"deployments": args.deployments}
    try:
        install_hub(world, {r: 40.0 for r in world.regions})
        objects = []
        for index in range(args.deployments):
            body = inference_deployment(f"cost-{index:05d}", rps=0.5 + index % 7, mode="Advisory")
            body["spec"]["demand"] = {"source": "Prometheus", "meanPromptTokens": 1000, "meanOutputTokens": 200}
            objects.append(body)
        apply_chunks(world, world.hub, objects)
        pids = component_pids(world, world.hub)
        apiserver, etcd = pids["kube-apiserver"], pids["etcd"]
        from kubernetes import client, config

        custom = client.CustomObjectsApi(config.new_client_from_config(str(world.kubeconfigs[world.hub])))

        def listed(plural: str) -> list[dict[str, Any]]:
            return list(custom.list_cluster_custom_object("gridshift.dev", "v1alpha1", plural)["items"])

        prometheus = counting_prometheus()
        os.environ["KUBECONFIG"] = str(world.kubeconfigs[world.hub])
        settings = OperatorSettings(
            namespace=NAMESPACE,
            prometheus_url=prometheus.url,
            # The one stand-in is every region's Prometheus: without a cluster label none would be read.
            metrics_cluster_label="cluster",
            write_concurrency=args.concurrency,
        )
        service = real_service(settings, identity="patchcost")
        stop = threading.Event()
        renew_beside(service, stop)  # as the operator process does, beside the cycle
        time.sleep(3)  # the apply's aftermath (watch fan-out) out of the window
        before = cpu_seconds(apiserver), cpu_seconds(etcd), time.process_time()
        hub_bodies = (
            [essence(b) for b in listed("inferencedeployments")],
            listed("regionalclusters"),
            listed("gpuprofiles"),
        )
        report = service.run_cycle(*hub_bodies)
        after = cpu_seconds(apiserver), cpu_seconds(etcd), time.process_time()
        writes = report.status_writes
        figures["first_cycle"] = {
            "status_writes": writes,
            "apiserver_ms_per_write": round(1000 * (after[0] - before[0]) / max(writes, 1), 2),
            "etcd_ms_per_write": round(1000 * (after[1] - before[1]) / max(writes, 1), 2),
            "operator_ms_per_write": round(1000 * (after[2] - before[2]) / max(writes, 1), 2),
            "errors": report.errors[:3],
        }
        print(f"first cycle: {figures['first_cycle']}", flush=True)
        stored = [b for b in listed("inferencedeployments") if b.get("status")]
        sample = stored[0]
        figures["status_bytes"] = len(json.dumps(sample["status"], separators=(",", ":")))
        figures["object_bytes"] = len(json.dumps(sample, separators=(",", ":")))
        figures["managed_fields_bytes"] = len(
            json.dumps(sample["metadata"].get("managedFields"), separators=(",", ":"))
        )
        print(
            f"sizes: status {figures['status_bytes']} B, object {figures['object_bytes']} B, "
            f"managedFields {figures['managed_fields_bytes']} B",
            flush=True,
        )
        hub = service.hub

        def profile(name: str) -> None:
            kubectl = [str(world.bin_dir / "kubectl"), "--kubeconfig", str(world.kubeconfigs[world.hub])]
            answer = subprocess.run(
                [*kubectl, "get", "--raw", "/debug/pprof/profile?seconds=4"], capture_output=True, env=world.env()
            )
            (args.pprof / f"{name}.pprof").write_bytes(answer.stdout)

        def send(name: str, patches: list[tuple[ObjectRef, dict[str, Any]]]) -> None:
            time.sleep(2)
            if args.pprof:
                # the apiserver's CPU profile over the variant's first seconds (needs profiling=true:
                # GSCLUSTER_APISERVER_ARGS, e2e/cluster/gscluster/planes.py)
                threading.Thread(target=profile, args=(name,), daemon=True).start()
            start = cpu_seconds(apiserver), cpu_seconds(etcd), time.process_time(), time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                list(pool.map(lambda p: hub.patch_status(*p), patches))
            end = cpu_seconds(apiserver), cpu_seconds(etcd), time.process_time(), time.perf_counter()
            n = len(patches)
            figures[name] = {
                "patches": n,
                "apiserver_ms_per_patch": round(1000 * (end[0] - start[0]) / n, 2),
                "etcd_ms_per_patch": round(1000 * (end[1] - start[1]) / n, 2),
                "client_ms_per_patch": round(1000 * (end[2] - start[2]) / n, 2),
                "wall_s": round(end[3] - start[3], 1),
            }
            print(f"{name}: {figures[name]}", flush=True)

        refs = [
            (ObjectRef("InferenceDeployment", b["metadata"]["namespace"], b["metadata"]["name"]), b["status"])
            for b in stored
        ]
        send("noop", [(ref, status) for ref, status in refs])
        bumped = []
        for ref, status in refs:
            changed = copy.deepcopy(status)
            changed["desiredReplicas"] = int(changed.get("desiredReplicas") or 0) + 1
            bumped.append((ref, {"desiredReplicas": changed["desiredReplicas"]}))
        send("one", bumped)
        send("clear", [(ref, dict.fromkeys(status, None)) for ref, status in refs])
        send("full", [(ref, status) for ref, status in refs])
        figures["load_average"] = os.getloadavg()
        stop.set()
        service.writes.close()
    finally:
        world.stop()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
