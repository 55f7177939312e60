"""A price swing at fleet scale: N Auto InferenceDeployments x R regions, make-before-break, the leader killed.

Starts a hub and R regional clusters (real control planes, kwok GPU nodes: e2e/cluster), installs N
Auto InferenceDeployments with Static demand (one replica each serves it), gives each its replica in
region i mod R at equal prices (where the planner keeps it: a move would gain nothing), and runs two
operator processes, each the service with its real adapters (`gridshift.service.wiring.real_service`)
in a loop, renewing the leader Lease from a thread as the operator does; one leads, one stands by.

Then the swing: the price of the first `--swing-regions` regions goes from `--price` to
`--swing-price` USD/MWh, so every deployment there should move. Meanwhile a sampler lists every
member cluster's Deployments (in parallel) about once a second and records, per deployment, the Ready
replicas summed over regions. Once `--kill-after` moves have started (a replica in a region where the
deployment had none), the leader process is killed with SIGKILL, mid-cycle; the standby takes the
Lease when it expires and carries on from what the first one persisted (status.migration) and what
the member clusters show.

Figures and checks (printed as a table, and JSON with --json):
- moved: deployments whose regions changed, against those in the swung regions (the reference);
- make-before-break: for each deployment, the least Ready replicas over every sample from the swing
  to the end, against its demand (its Ready replicas before the swing); a sample below is a violation;
- the leader killed with moves in flight (started, not finished), the new leader's takeover time;
- after the swing: no duplicate (no deployment holds more replicas than its demand, nor any in a
  swung region) and no orphan (every member Deployment with replicas belongs to a live
  InferenceDeployment, and every member's pods are its Deployments' replicas);
- the wall time of the swing, of each operator's cycles (loaded machine: CPU seconds beside them).

Usage (repo root): PYTHONPATH=operator .venv/bin/python -m bench.operator_swing --deployments 1000 --regions 12
  [--swing-regions 2] [--nodes 16] [--json out.json]
or `bench/operator_scale.py --auto ...` with the same flags. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "e2e" / "cluster")]

from bench.operator_scale import aligned, apply_chunks, member_replicas, phase, world_file  # noqa: E402
from gscluster import start_planes  # noqa: E402
from tests.e2e.operator_env import NAMESPACE, inference_deployment, install_hub  # noqa: E402

from gridshift.actuation.members import state_from_deployment  # noqa: E402
from gridshift.settings import OperatorSettings  # noqa: E402

SELECTOR = "app.kubernetes.io/managed-by=gridshift"
Key = tuple[str, str]
"""(namespace, name) of an InferenceDeployment."""


# ---------------------------------------------------------------------------------------- the operator


def serve(args: argparse.Namespace) -> None:
    """One operator replica: the service in a loop, its Lease renewed by a thread; one JSON line per cycle."""
    from kubernetes import client

    from gridshift.service.wiring import hub_api_client, real_service

    settings = OperatorSettings(
        namespace=NAMESPACE,
        write_concurrency=args.write_concurrency,
        planner_time_budget_seconds=args.planner_budget,
        revalidate_delay_seconds=args.revalidate_delay,
    )
    service = real_service(settings, identity=args.identity)
    lister = client.CustomObjectsApi(hub_api_client(2))
    stop = threading.Event()
    threading.Thread(target=service.elector.run, args=(stop,), name="lease", daemon=True).start()

    def bodies(plural: str) -> list[dict[str, Any]]:
        answer = lister.list_cluster_custom_object("gridshift.dev", "v1alpha1", plural, _request_timeout=120)
        return list(answer["items"])

    print(json.dumps({"identity": args.identity, "pid": os.getpid(), "started": time.time()}), flush=True)
    parent = os.getppid()
    while os.getppid() == parent:  # a bench killed outright leaves no operator behind
        if not service.elector.leading():
            time.sleep(0.5)  # a standby: the Lease thread tries every retry period
            continue
        wall, cpu = time.perf_counter(), time.process_time()
        started = time.time()
        report = service.run_cycle(bodies("inferencedeployments"), bodies("regionalclusters"), bodies("gpuprofiles"))
        line = {
            "identity": args.identity,
            "started": started,
            "leader": report.leader,
            "wall_s": round(time.perf_counter() - wall, 3),
            "cpu_s": round(time.process_time() - cpu, 3),
            "planner_s": round(report.planner_seconds or 0.0, 3),
            "member_writes": report.member_writes,
            "status_writes": report.status_writes,
            "errors": len(report.errors),
            "first_errors": report.errors[:3],
        }
        print(json.dumps(line), flush=True)
        time.sleep(args.interval)


class OperatorReplica:
    """`python -m bench.operator_swing serve` as a process of its own, killed with SIGKILL like a lost node."""

    def __init__(self, identity: str, hub_kubeconfig: Path, logs: Path, args: argparse.Namespace) -> None:
        self.identity = identity
        self.log_path = logs / f"operator-{identity}.log"
        env = dict(os.environ, KUBECONFIG=str(hub_kubeconfig), PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "operator"), str(REPO), env.get("PYTHONPATH", "")])
        command = [
            sys.executable,
            "-m",
            "bench.operator_swing",
            "serve",
            f"--identity={identity}",
            f"--write-concurrency={args.write_concurrency}",
            f"--planner-budget={args.planner_budget}",
            f"--revalidate-delay={args.revalidate_delay}",
            f"--interval={args.interval}",
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)

    def cycles(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"wall_s"' in line:
                out.append(json.loads(line))
        return out

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


# ---------------------------------------------------------------------------------------- the sampler


@dataclass(frozen=True)
class Replicas:
    """One deployment's replicas in one sample: desired and Ready per region."""

    desired: Mapping[str, int]
    ready: Mapping[str, int]

    @property
    def total_ready(self) -> int:
        return sum(self.ready.values())

    @property
    def total_desired(self) -> int:
        return sum(self.desired.values())

    @property
    def regions(self) -> frozenset[str]:
        return frozenset(r for r, n in self.desired.items() if n > 0)


class Members:
    """Every member cluster's gridshift Deployments (and pods), listed in parallel."""

    def __init__(self, kubeconfigs: Mapping[str, Path]) -> None:
        from kubernetes import client, config

        self.apis = {
            name: (
                client.AppsV1Api(config.new_client_from_config(str(path))),
                client.CoreV1Api(config.new_client_from_config(str(path))),
            )
            for name, path in kubeconfigs.items()
        }
        self._pool = ThreadPoolExecutor(max_workers=len(self.apis))

    def _deployments(self, region: str) -> list[dict[str, Any]]:
        apps = self.apis[region][0]
        answer = apps.list_deployment_for_all_namespaces(label_selector=SELECTOR, _preload_content=False)
        return list(json.loads(answer.data)["items"])

    def deployments(self) -> dict[str, list[dict[str, Any]]]:
        regions = sorted(self.apis)
        return dict(zip(regions, self._pool.map(self._deployments, regions), strict=True))

    def sample(self) -> dict[Key, Replicas]:
        """Per InferenceDeployment, desired and Ready replicas per region (owned member Deployments only)."""
        desired: dict[Key, dict[str, int]] = {}
        ready: dict[Key, dict[str, int]] = {}
        for region, items in self.deployments().items():
            for item in items:
                state = state_from_deployment(item)
                if state is None or not state.owned:
                    continue
                key = (state.deployment_namespace, state.deployment_name)
                desired.setdefault(key, {})[region] = desired.get(key, {}).get(region, 0) + state.desired
                ready.setdefault(key, {})[region] = ready.get(key, {}).get(region, 0) + state.ready
        return {k: Replicas(desired[k], ready.get(k, {})) for k in desired}

    def pods(self, region: str) -> list[dict[str, Any]]:
        core = self.apis[region][1]
        answer = core.list_pod_for_all_namespaces(label_selector=SELECTOR, _preload_content=False)
        return list(json.loads(answer.data)["items"])

    def health(self, region: str) -> str:
        """One line on a region's nodes and gridshift pods, for a failure message."""
        core = self.apis[region][1]
        nodes = json.loads(core.list_node(_preload_content=False).data)["items"]
        ready_nodes = sum(1 for n in nodes if _condition(n, "Ready"))
        pods = self.pods(region)
        ready_pods = sum(1 for p in pods if _condition(p, "Ready"))
        phases = Counter((pod.get("status") or {}).get("phase", "?") for pod in pods)
        shown = ", ".join(f"{k} {v}" for k, v in sorted(phases.items()))
        return f"{region}: {ready_nodes}/{len(nodes)} nodes Ready, {ready_pods}/{len(pods)} pods Ready ({shown})"

    def close(self) -> None:
        self._pool.shutdown()


def _condition(item: dict[str, Any], kind: str) -> bool:
    return any(
        c.get("type") == kind and c.get("status") == "True" for c in (item.get("status") or {}).get("conditions") or []
    )


@dataclass
class Watch:
    """What the sampler saw from the swing on: the least Ready replicas per deployment, and when."""

    samples: int = 0
    longest_sample_s: float = 0.0
    least_ready: dict[Key, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    started_moves: int = 0
    finished_moves: int = 0


class Sampler(threading.Thread):
    def __init__(self, members: Members, before: Mapping[Key, Replicas], demand: Mapping[Key, int]) -> None:
        super().__init__(name="sampler", daemon=True)
        self.members, self.before, self.demand = members, before, demand
        self.watch = Watch()
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                now = self.members.sample()
            except Exception as error:  # an apiserver busy under the load: the next sample is taken
                print(f"  sample failed: {type(error).__name__}: {error}", file=sys.stderr)
                continue
            self.record(now, time.monotonic() - started)
            self.stopping.wait(max(0.0, 1.0 - (time.monotonic() - started)))

    def record(self, now: Mapping[Key, Replicas], seconds: float) -> None:
        with self.lock:
            watch = self.watch
            watch.samples += 1
            watch.longest_sample_s = max(watch.longest_sample_s, seconds)
            started = finished = 0
            for key, demand in self.demand.items():
                replicas = now.get(key, Replicas({}, {}))
                least = watch.least_ready.get(key)
                watch.least_ready[key] = replicas.total_ready if least is None else min(least, replicas.total_ready)
                if replicas.total_ready < demand and len(watch.violations) < 50:
                    watch.violations.append(
                        f"sample {watch.samples}: {key[0]}/{key[1]} Ready {dict(replicas.ready)} < demand {demand}"
                    )
                old = self.before[key].regions
                if replicas.regions - old:
                    started += 1
                    if not replicas.regions & old:
                        finished += 1
            watch.started_moves, watch.finished_moves = started, finished


# ---------------------------------------------------------------------------------------- the run


@dataclass
class SwingResult:
    deployments: int
    regions: int
    swing_regions: list[str]
    setup_s: dict[str, float] = field(default_factory=dict)
    in_swung_regions: int = 0
    """Deployments with their replica in a swung region before the swing: the moves expected."""
    moved: int = 0
    samples: int = 0
    longest_sample_s: float = 0.0
    violations: list[str] = field(default_factory=list)
    least_ready_over_demand: float = 0.0
    """min over deployments of (least Ready replicas sampled) / demand: 1.0 or more is make-before-break."""
    killed_at_started_moves: int = 0
    killed_at_finished_moves: int = 0
    takeover_s: float = 0.0
    """From the kill to the new leader's first cycle's start."""
    swing_s: float = 0.0
    """From the price change to the last move finished (every deployment out of the swung regions)."""
    duplicates: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    left_in_swung: list[str] = field(default_factory=list)
    migrations_left: int = 0
    cycles: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def holds(self) -> bool:
        return (
            not self.violations
            and not self.duplicates
            and not self.orphans
            and not self.left_in_swung
            and self.migrations_left == 0
            and self.moved >= self.in_swung_regions
            and self.killed_at_started_moves > self.killed_at_finished_moves
            and self.takeover_s > 0
        )


def wait_for(condition: Any, timeout: float, what: str, every: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def not_ready(members: Members, expected: int, dead: Mapping[str, list[str]]) -> str:
    """Why replicas are not Ready: how many are missing where, and which control-plane processes died."""
    sample = members.sample()
    unready = Counter(region for replicas in sample.values() if replicas.total_ready < 1 for region in replicas.desired)
    where = ", ".join(f"{region}: {count}" for region, count in sorted(unready.items())) or "none"
    if unready:
        where += f" ({'; '.join(members.health(region) for region in sorted(unready))})"
    died = "; ".join(f"{cluster}: {', '.join(gone)}" for cluster, gone in sorted(dead.items())) or "none"
    return f"{len(sample)} of {expected} deployments seen; without a Ready replica by region: {where}; dead: {died}"


def deployments(n: int) -> list[dict[str, Any]]:
    """N Auto deployments whose Static demand one H100 replica serves (1-4 requests/s)."""
    out = []
    for index in range(n):
        body = inference_deployment(f"swing-{index:05d}", rps=1.0 + index % 4)
        body["spec"]["capacity"] = {"minReplicas": 1, "maxReplicas": 4}
        out.append(body)
    return out


def hub_lister(kubeconfig: Path) -> Any:
    from kubernetes import client, config

    return client.CustomObjectsApi(config.new_client_from_config(str(kubeconfig)))


def list_ideps(lister: Any) -> list[dict[str, Any]]:
    answer = lister.list_cluster_custom_object(
        "gridshift.dev", "v1alpha1", "inferencedeployments", _request_timeout=120, _preload_content=False
    )
    return list(json.loads(answer.data)["items"])


def in_flight(ideps: list[dict[str, Any]]) -> int:
    return sum(1 for d in ideps if (d.get("status") or {}).get("migration"))


def run(args: argparse.Namespace) -> SwingResult:
    swung = [f"r{i:02d}" for i in range(args.swing_regions)]
    result = SwingResult(args.deployments, args.regions, swung)
    workdir = Path(tempfile.mkdtemp(prefix="gridshift-swing-"))
    with phase(result, "start planes"):
        world = start_planes(world_file(args.regions, args.nodes, workdir / "world.yaml"), ready_delay_s=1)
    replicas: list[OperatorReplica] = []
    members: Members | None = None
    try:
        with phase(result, "install hub"):
            fleet = install_hub(world, {r: args.price for r in world.regions})
        hub_kubeconfig = world.kubeconfigs[world.hub]
        lister = hub_lister(hub_kubeconfig)
        with phase(result, "apply deployments"):
            apply_chunks(world, world.hub, deployments(args.deployments))
        with phase(result, "member replicas"):
            for region, manifests in member_replicas(list_ideps(lister), world.regions).items():
                apply_chunks(world, region, manifests)
        members = Members({r: world.kubeconfigs[r] for r in world.regions})
        with phase(result, "replicas Ready"):
            try:
                wait_for(
                    lambda: (
                        (s := members.sample())
                        and len(s) == args.deployments
                        and all(r.total_ready >= 1 for r in s.values())
                    ),
                    600,
                    "every pre-placed replica Ready",
                )
            except TimeoutError as timeout:
                raise TimeoutError(f"{timeout}; {not_ready(members, args.deployments, world.dead())}") from None
        replicas = [OperatorReplica(name, hub_kubeconfig, workdir, args) for name in ("a", "b")]
        with phase(result, "operator settles"):
            # Settled: every deployment has its status, no migration runs, and a cycle wrote no member object.
            def settled() -> bool:
                ideps = list_ideps(lister)
                cycles = [c for r in replicas for c in r.cycles()]
                return (
                    all((d.get("status") or {}).get("lastDecision") for d in ideps)
                    and in_flight(ideps) == 0
                    and len(cycles) >= 2
                    and cycles[-1]["member_writes"] == 0
                )

            wait_for(settled, 900, "the operator to settle at equal prices", every=3.0)
        before = members.sample()
        leader = next(r for r in replicas if r.cycles())
        standby = next(r for r in replicas if r is not leader)
        demand = {k: r.total_ready for k, r in before.items()}
        result.in_swung_regions = sum(1 for r in before.values() if r.regions & set(swung))
        print(
            f"  settled: {len(before)} deployments, {result.in_swung_regions} in {swung}; leader {leader.identity}",
            file=sys.stderr,
            flush=True,
        )
        sampler = Sampler(members, before, demand)
        sampler.start()
        swing_at = time.monotonic()
        for region in swung:
            fleet.set_price(region, args.swing_price)
        kill_after = max(1, int(args.kill_after * result.in_swung_regions))
        with phase(result, f"leader killed after {kill_after} moves started"):
            wait_for(lambda: sampler.watch.started_moves >= kill_after, 900, "moves to start", every=0.5)
            with sampler.lock:
                result.killed_at_started_moves = sampler.watch.started_moves
                result.killed_at_finished_moves = sampler.watch.finished_moves
            killed_at = time.time()
            leader.kill()
        print(
            f"  killed {leader.identity}: {result.killed_at_started_moves} moves started, "
            f"{result.killed_at_finished_moves} finished",
            file=sys.stderr,
            flush=True,
        )
        with phase(result, "new leader finishes the swing"):

            def done() -> bool:
                if any(r.regions & set(swung) for r in members.sample().values()):
                    return False
                return in_flight(list_ideps(lister)) == 0

            wait_for(done, args.swing_timeout, "every move to finish", every=2.0)
            result.swing_s = round(time.monotonic() - swing_at, 1)
            # One more cycle of the new leader after the last move: nothing left to write.
            seen = len(standby.cycles())
            wait_for(lambda: len(standby.cycles()) >= seen + 2, 300, "two more cycles of the new leader")
        sampler.stopping.set()
        sampler.join(timeout=30)
        watch = sampler.watch
        result.samples, result.longest_sample_s = watch.samples, round(watch.longest_sample_s, 2)
        result.violations = watch.violations
        result.least_ready_over_demand = min(watch.least_ready[k] / demand[k] for k in demand)
        takeover = [c for c in standby.cycles() if c["started"] > killed_at]
        result.takeover_s = round(takeover[0]["started"] - killed_at, 1) if takeover else 0.0
        check_after(result, members, before, demand, list_ideps(lister), set(swung))
        result.cycles = {r.identity: r.cycles() for r in replicas}
        result.load_average = os.getloadavg()
        return result
    finally:
        for replica in replicas:
            replica.stop()
        if members is not None:
            members.close()
        world.stop()


def check_after(
    result: SwingResult,
    members: Members,
    before: Mapping[Key, Replicas],
    demand: Mapping[Key, int],
    ideps: list[dict[str, Any]],
    swung: set[str],
) -> None:
    """Moved, duplicates, orphans and what is left in the swung regions, from the member clusters."""
    after = members.sample()
    live = {(d["metadata"]["namespace"], d["metadata"]["name"]): d["metadata"]["uid"] for d in ideps}
    result.migrations_left = in_flight(ideps)
    for key, replicas in sorted(after.items()):
        name = f"{key[0]}/{key[1]}"
        if key not in live:
            result.orphans.append(f"{name}: replicas {dict(replicas.desired)} of no live InferenceDeployment")
            continue
        if replicas.total_desired > demand.get(key, 0) or replicas.total_ready > demand.get(key, 0):
            result.duplicates.append(f"{name}: desired {dict(replicas.desired)}, Ready {dict(replicas.ready)}")
        if replicas.regions & swung:
            result.left_in_swung.append(f"{name}: {sorted(replicas.regions & swung)}")
        if replicas.regions != before[key].regions:
            result.moved += 1
    by_region = members.deployments()
    for region, items in by_region.items():
        wanted: dict[str, int] = {}
        for item in items:
            state = state_from_deployment(item)
            if (
                state is None
                or not state.owned
                or live.get((state.deployment_namespace, state.deployment_name)) != (state.owner_uid)
            ):
                if state is not None and state.desired > 0:
                    result.orphans.append(f"{region}: Deployment {item['metadata']['name']} owned by no live UID")
                continue
            wanted[item["metadata"]["name"]] = state.desired
        # Pods left behind by a Deployment scaled down, or made by none: a replica the fleet pays for.
        pods: dict[str, int] = {}
        for pod in members.pods(region):
            if (pod["metadata"].get("deletionTimestamp")) is not None:
                continue
            owner = pod["metadata"]["name"].rsplit("-", 2)[0]
            pods[owner] = pods.get(owner, 0) + 1
        for owner, count in pods.items():
            if count > wanted.get(owner, 0):
                result.orphans.append(f"{region}: {count} pods of {owner}, which wants {wanted.get(owner, 0)}")


def table(result: SwingResult) -> str:
    cycles = [c for cs in result.cycles.values() for c in cs if c["leader"]]
    walls = sorted(c["wall_s"] for c in cycles)
    cpus = sorted(c["cpu_s"] for c in cycles)
    median = (lambda xs: xs[len(xs) // 2]) if cycles else (lambda xs: float("nan"))
    rows = [
        ("deployments x regions", f"{result.deployments} x {result.regions} (Auto)", ""),
        ("swing", f"{', '.join(result.swing_regions)} price raised", f"{result.in_swung_regions} deployments there"),
        (
            "moved",
            f"{result.moved}",
            f"{result.moved / max(1, result.in_swung_regions):.2f} of those in the swung regions",
        ),
        (
            "least Ready / demand (sampled)",
            f"{result.least_ready_over_demand:.2f}",
            f"{result.samples} samples, longest {result.longest_sample_s:.1f} s; {len(result.violations)} below",
        ),
        (
            "leader killed (SIGKILL)",
            f"{result.killed_at_started_moves} moves started, {result.killed_at_finished_moves} finished",
            f"new leader's first cycle {result.takeover_s:.1f} s later (Lease 15 s)",
        ),
        ("swing to last move", f"{result.swing_s:.0f} s", ""),
        (
            "after: duplicates / orphans / left",
            f"{len(result.duplicates)} / {len(result.orphans)} / {len(result.left_in_swung)}",
            f"{result.migrations_left} migrations in status",
        ),
        (
            "leader cycle wall / CPU (median, max)",
            f"{median(walls):.1f}, {max(walls, default=0):.1f} s / {median(cpus):.1f}, {max(cpus, default=0):.1f} s",
            f"{len(cycles)} cycles",
        ),
        ("load average", " ".join(f"{v:.1f}" for v in result.load_average), "2 cores, shared"),
    ]
    lines = aligned(rows)
    for what in ("violations", "duplicates", "orphans", "left_in_swung"):
        for line in getattr(result, what)[:10]:
            lines.append(f"  {what}: {line}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = OperatorSettings()
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--regions", type=int, default=12)
    parser.add_argument("--nodes", type=int, default=16, help="8-GPU H100 nodes per region (room for the moves)")
    parser.add_argument("--swing-regions", type=int, default=2, help="regions whose price is raised")
    parser.add_argument("--price", type=float, default=50.0, help="USD/MWh everywhere before the swing")
    parser.add_argument("--swing-price", type=float, default=900.0, help="USD/MWh in the swung regions")
    parser.add_argument(
        "--kill-after", type=float, default=0.3, help="kill the leader once this share of the moves has started"
    )
    parser.add_argument("--swing-timeout", type=float, default=1800.0)
    parser.add_argument("--write-concurrency", type=int, default=defaults.write_concurrency)
    parser.add_argument("--planner-budget", type=float, default=defaults.planner_time_budget_seconds)
    parser.add_argument("--revalidate-delay", type=float, default=defaults.revalidate_delay_seconds)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between an operator's cycles")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # SIGTERM (a test's timeout) ends the run through its `finally`: the operators and the world stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if argv[:1] == ["serve"]:
        parser = argparse.ArgumentParser(prog="operator_swing serve")
        parser.add_argument("--identity", required=True)
        add_arguments(parser)
        serve(parser.parse_args(argv[1:]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    if not 1 <= args.swing_regions < args.regions:
        parser.error(
            f"--swing-regions must be between 1 and {args.regions - 1} (--regions - 1), got {args.swing_regions}"
        )
    if not 0 < args.kill_after < 1:
        parser.error(f"--kill-after must be a share between 0 and 1, got {args.kill_after}")
    result = run(args)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")
    return 0 if result.holds else 1


if __name__ == "__main__":
    sys.exit(main())
