"""The operator at fleet scale: N InferenceDeployments x R regions on real control planes.

Starts a hub and R regional clusters (real etcd + kube-apiserver + kcm + scheduler, kwok GPU nodes:
e2e/cluster), installs N Advisory InferenceDeployments whose demand is read from Prometheus, gives
each one replica in one region (a member Deployment rendered by gridshift, owned by the hub object, as
an earlier Auto period would have left), and runs the operator's service with its real adapters
(`gridshift.service.wiring.real_service`) cycle by cycle, as the operator process does:

- first cycle: wall and CPU seconds, status patches, Events, apiserver requests (hub + members);
- cycles until quiet (no status write), then `--steady` idle cycles: wall and CPU seconds, writes,
  apiserver requests, Prometheus queries;
- operator RSS (this process: the service, its adapters' caches and the hub bodies a kopf index holds).

Requests are counted by the client (gridshift.hub.requests.RequestCounter) on every ApiClient the
service uses; the hub bodies handed to each cycle are listed on a separate, uncounted client and kept
as kopf's watch-fed index keeps them (each object's essence, the same dict while its resourceVersion
is the same). Prometheus is a local stand-in that counts queries and answers empty
vectors (demand then reads unknown: Advisory reports it and keeps the replicas).

Ratios against references computed in the same run: Prometheus queries per cycle against the
per-deployment scheme (10 signals x deployments with replicas), writes per idle cycle against
one write per deployment, RSS against the chart's memory limit (charts/gridshift values: 1Gi).

Usage (repo root): PYTHONPATH=operator .venv/bin/python bench/operator_scale.py --deployments 1000 --regions 12
  [--json out.json] [--steady 3] [--write-concurrency 16] [--nodes 2]
With --auto: Auto deployments and a price swing, make-before-break, the leader killed mid-swing
(bench/operator_swing.py; its flags).
The machine's load changes wall times: CPU seconds (time.process_time, all threads) are printed beside them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "e2e" / "cluster")]

from gscluster import start_planes  # noqa: E402
from tests.e2e.operator_env import (  # noqa: E402
    H100,
    MEMBER_WORKLOADS,
    NAMESPACE,
    inference_deployment,
    install_hub,
)
from tests.e2e.pod_runtime import quantity_bytes  # noqa: E402
from tests.signals.conftest import LocalServer, Reply  # noqa: E402

from gridshift.actuation.render import WorkloadTarget, render_deployment  # noqa: E402
from gridshift.api import InferenceDeployment  # noqa: E402
from gridshift.hub.requests import RequestCounter  # noqa: E402
from gridshift.service.state import CycleReport  # noqa: E402
from gridshift.service.wiring import real_service  # noqa: E402
from gridshift.settings import OperatorSettings  # noqa: E402
from gridshift.shell.handlers import essence  # noqa: E402
from gridshift.signals.promql import Signal  # noqa: E402

CHART_MEMORY_LIMIT_MIB = (
    quantity_bytes(yaml.safe_load((REPO / "charts/gridshift/values.yaml").read_text())["resources"]["limits"]["memory"])
    // 2**20
)
"""charts/gridshift values.yaml resources.limits.memory, read from the chart (it was a copy to keep in step)."""


def world_file(regions: int, nodes: int, path: Path) -> Path:
    """A hub and `regions` regional clusters of `nodes` 8-GPU H100 nodes each."""
    clusters: list[dict[str, Any]] = [
        {
            "name": "hub",
            "role": "hub",
            "region": "hub",
            "nodePools": [{"name": "cpu", "count": 1, "cpu": "32", "memory": "128Gi", "zones": ["hub-a"]}],
        }
    ]
    for index in range(regions):
        name = f"r{index:02d}"
        clusters.append(
            {
                "name": name,
                "role": "region",
                "region": name,
                "nodePools": [
                    {
                        "name": "h100",
                        "count": nodes,
                        "gpus": 8,
                        "product": H100,
                        "gpuMemoryMiB": 81559,
                        "zones": [f"{name}-a"],
                    }
                ],
            }
        )
    path.write_text(yaml.safe_dump({"readyDelaySeconds": 1, "readyJitterSeconds": 0.5, "clusters": clusters}))
    return path


def counting_prometheus() -> LocalServer:
    """Answers every instant query with an empty vector; `len(server.requests)` counts them."""
    server = LocalServer()
    server.answer(Reply(body=b'{"status":"success","data":{"resultType":"vector","result":[]}}'))
    return server


def release_setup_memory() -> None:
    """Collect the setup's garbage and return freed heap to the system (glibc malloc_trim), so that the
    RSS measured afterwards is the service's, not what the bench built to set the world up."""
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: the RSS then includes the setup's freed heap
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM from here on: the service's peak


def renew_beside(service: Any, stop: threading.Event) -> None:
    """Renew `service`'s Lease on a thread of its own until `stop`, as run_forever's task does, and return once it
    leads: an absent Lease (a fresh hub) is taken only after leaseDurationSeconds (hub.lease), and a cycle run
    before that is a standby's, which writes nothing (found in review: the first cycle measured 0 writes)."""

    def renew() -> None:
        while not stop.is_set():
            service.elector.try_acquire_or_renew()
            stop.wait(service.elector.pause())

    threading.Thread(target=renew, name="lease", daemon=True).start()
    wait = service.elector.timing.duration_seconds + 2 * service.elector.timing.renew_deadline_seconds
    print(f"  waiting up to {wait:g} s for the leader Lease (a fresh hub's: after its duration)", file=sys.stderr)
    deadline = time.monotonic() + wait
    while not service.elector.leading():
        if time.monotonic() > deadline:
            raise SystemExit(f"the operator did not take the leader Lease within {wait:g} s")
        time.sleep(0.2)


def component_pids(world: Any, cluster: str) -> dict[str, int]:
    """{comm: pid} of one cluster's processes (kube-apiserver, etcd, ...)."""
    from gscluster.planes import cluster_dir

    folder = str(cluster_dir(world.workdir, cluster))
    out: dict[str, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if folder in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                out[(proc / "comm").read_text().strip()] = int(proc.name)
    return out


def cpu_seconds(pid: int | None) -> float:
    """utime + stime of a process (all its threads), seconds; 0 when it is gone or unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def heap_census(top: int = 15) -> list[tuple[str, int]]:
    """The most numerous object types the collector tracks (dicts, lists, models: what holds the heap)."""
    import collections
    import gc

    counts = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
    return counts.most_common(top)


def rss_mib() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process, MiB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


@dataclass
class CycleFigures:
    wall_s: float
    cpu_s: float
    planner_s: float
    plan_reused: bool
    status_writes: int
    member_writes: int
    events: int
    requests: int
    writes: int
    """Write requests (POST/PUT/PATCH/DELETE) to any apiserver, the Lease renewal excluded."""
    lease_writes: int
    prometheus_queries: int
    errors: int
    hub_apiserver_cpu_s: float = 0.0
    """CPU seconds the hub's kube-apiserver spent during the cycle (/proc utime + stime)."""
    hub_etcd_cpu_s: float = 0.0
    rss_mib: float = 0.0
    """This process's VmRSS after the cycle."""


@dataclass
class Result:
    deployments: int
    regions: int
    write_concurrency: int
    with_replicas: int
    setup_s: dict[str, float] = field(default_factory=dict)
    first: CycleFigures | None = None
    cycles_to_quiet: int = 0
    steady: list[CycleFigures] = field(default_factory=list)
    rss_mib: float = 0.0
    peak_rss_mib: float = 0.0
    peak_writes_in_flight: int = 0
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rss_after_trim_mib: float = 0.0
    """VmRSS once the collector ran and glibc gave back its free heap (malloc_trim): the live part of rss_mib."""
    heap_census: list[tuple[str, int]] = field(default_factory=list)
    """The most numerous Python object types held after the steady cycles (gc.get_objects)."""


@contextmanager
def phase(result: Any, name: str) -> Iterator[None]:
    """Times one setup phase into `result.setup_s` (this bench's Result, or operator_swing's)."""
    started = time.monotonic()
    print(f"  {name} ...", file=sys.stderr, flush=True)
    yield
    result.setup_s[name] = round(time.monotonic() - started, 1)
    print(f"  {name}: {result.setup_s[name]:.1f} s", file=sys.stderr, flush=True)


SETUP_CONCURRENCY = 32
"""Setup objects in flight at once, over all clusters (each cluster's apiserver sees its share)."""
PLURALS = {"InferenceDeployment": "inferencedeployments", "Deployment": "deployments"}


def apply_chunks(world: Any, cluster: str, objects: list[dict[str, Any]]) -> None:
    """Server-side apply of `objects` to one cluster (see apply_all)."""
    apply_all(world, {cluster: objects})


def apply_all(world: Any, by_cluster: dict[str, list[dict[str, Any]]], concurrency: int = SETUP_CONCURRENCY) -> None:
    """Server-side apply of every object, `concurrency` requests in flight over all clusters, with progress.

    One PATCH (application/apply-patch) per object on a client per cluster: idempotent (a rerun applies
    the same fields again), no read first. kubectl applied a List one object after another, and with 4
    regions at a time 10,000 member Deployments took 15-36 minutes on this machine."""
    from kubernetes import client, config

    clients: dict[str, Any] = {}
    for cluster in by_cluster:
        configuration = client.Configuration()
        config.load_kube_config(str(world.kubeconfigs[cluster]), client_configuration=configuration)
        configuration.connection_pool_maxsize = concurrency
        clients[cluster] = client.ApiClient(configuration)
    # Interleaved over the clusters, so every apiserver is busy from the start.
    ranked = [(i, cluster, obj) for cluster, objects in by_cluster.items() for i, obj in enumerate(objects)]
    work = [(cluster, obj) for _, cluster, obj in sorted(ranked, key=lambda r: r[0])]
    total, done, lock = len(work), [0], threading.Lock()
    started = time.monotonic()

    def one(item: tuple[str, dict[str, Any]]) -> None:
        cluster, obj = item
        meta = obj["metadata"]
        group_version = obj["apiVersion"]
        prefix = f"/apis/{group_version}" if "/" in group_version else f"/api/{group_version}"
        path = f"{prefix}/namespaces/{meta['namespace']}/{PLURALS[obj['kind']]}/{meta['name']}"
        for attempt in range(5):
            try:
                api_client = clients[cluster]
                method, url, headers, body, _ = api_client.param_serialize(
                    "PATCH",
                    path,
                    query_params=[("fieldManager", "gridshift-bench"), ("force", "true")],
                    header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
                    body=obj,
                    auth_settings=["BearerToken"],
                )
                answer = api_client.call_api(method, url, header_params=headers, body=body, _request_timeout=300)
                if answer.status >= 300:
                    raise RuntimeError(f"apply {path}: HTTP {answer.status}: {answer.data[:300]!r}")
                break
            except Exception:  # a loaded apiserver: 429 or a timeout; the apply is idempotent
                if attempt == 4:
                    raise
                time.sleep(1 + attempt)
        with lock:
            done[0] += 1
            if done[0] % max(1, total // 10) == 0 or done[0] == total:
                rate = done[0] / max(time.monotonic() - started, 1e-9)
                print(f"    {done[0]}/{total} applied ({rate:.0f}/s)", file=sys.stderr, flush=True)

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bench-apply") as pool:
        list(pool.map(one, work))
    for api_client in clients.values():
        api_client.close()


def member_replicas(bodies: list[dict[str, Any]], regions: list[str]) -> dict[str, list[dict[str, Any]]]:
    """One replica of deployment i in region i mod R, rendered and owned as gridshift renders it."""
    out: dict[str, list[dict[str, Any]]] = {r: [] for r in regions}
    for index, body in enumerate(sorted(bodies, key=lambda b: b["metadata"]["name"])):
        region = regions[index % len(regions)]
        spec = InferenceDeployment.model_validate(body).spec
        target = WorkloadTarget(
            deployment_namespace=body["metadata"]["namespace"],
            deployment_name=body["metadata"]["name"],
            cluster=region,
            workload_namespace=MEMBER_WORKLOADS,
            gpu_type=H100,
            replicas=1,
            max_num_seqs=256,
            owner_uid=body["metadata"]["uid"],
        )
        out[region].append(render_deployment(spec, target))
    return out


def run(args: argparse.Namespace) -> Result:
    result = Result(args.deployments, args.regions, args.write_concurrency, int(not args.no_replicas))
    workdir = Path(tempfile.mkdtemp(prefix="gridshift-scale-"))
    with phase(result, "start planes"):
        world = start_planes(world_file(args.regions, args.nodes, workdir / "world.yaml"), ready_delay_s=1)
    try:
        with phase(result, "install hub"):
            install_hub(world, {r: 40.0 + 7.0 * i for i, r in enumerate(world.regions)})
        objects = []
        for index in range(args.deployments):
            body = inference_deployment(f"scale-{index:05d}", rps=0.5 + index % 7, mode="Advisory")
            body["spec"]["demand"] = {"source": "Prometheus", "meanPromptTokens": 1000, "meanOutputTokens": 200}
            objects.append(body)
        with phase(result, "apply deployments"):
            apply_chunks(world, world.hub, objects)
        from kubernetes import client, config

        lister = client.CustomObjectsApi(config.new_client_from_config(str(world.kubeconfigs[world.hub])))

        def bodies(plural: str) -> list[dict[str, Any]]:
            # Paged, each page tried again on a 504/429: one list of 10,000 InferenceDeployments with their
            # statuses ran past the loaded hub apiserver's 60 s request timeout (504) after the first cycle.
            items: list[dict[str, Any]] = []
            token: str | None = None
            while True:
                for attempt in range(5):
                    try:
                        answer = lister.list_cluster_custom_object(
                            "gridshift.dev", "v1alpha1", plural, limit=500, _continue=token, _request_timeout=120
                        )
                        break
                    except client.exceptions.ApiException as error:
                        if error.status not in (429, 504) or attempt == 4:
                            raise
                        time.sleep(2 + 2 * attempt)
                items.extend(answer["items"])
                token = (answer.get("metadata") or {}).get("continue") or None
                if token is None:
                    return items

        # What kopf's index holds: each object's essence (gridshift.shell.handlers), the same dict while
        # the object's resourceVersion stays the same (kopf replaces an entry on a watch event only).
        index: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {}

        def indexed(plural: str) -> list[dict[str, Any]]:
            known, fresh = index.setdefault(plural, {}), {}
            for body in bodies(plural):
                meta = body["metadata"]
                entry = known.get(meta["uid"])
                if entry is None or entry[0] != meta["resourceVersion"]:
                    entry = (meta["resourceVersion"], essence(body))
                fresh[meta["uid"]] = entry
            index[plural] = fresh
            return [e for _, e in fresh.values()]

        if not args.no_replicas:
            with phase(result, "member replicas"):
                # Each region has its own apiserver: apply_all interleaves the regions, SETUP_CONCURRENCY
                # objects in flight over all of them.
                by_region = member_replicas(bodies("inferencedeployments"), world.regions)
                apply_all(world, by_region)
        # The setup's own objects (10,000 bodies, as many rendered member Deployments) are not the
        # operator's: let them go, and give their memory back, before the service is measured.
        objects.clear()
        if not args.no_replicas:
            del by_region
        release_setup_memory()
        prometheus = counting_prometheus()
        os.environ["KUBECONFIG"] = str(world.kubeconfigs[world.hub])
        settings = OperatorSettings(
            namespace=NAMESPACE,
            prometheus_url=prometheus.url,
            # The one stand-in is every region's Prometheus: without a cluster label none would be read.
            metrics_cluster_label="cluster",
            write_concurrency=args.write_concurrency,
            planner_time_budget_seconds=args.planner_budget,
        )
        service = real_service(settings, identity="bench")
        counter = RequestCounter()
        counter.attach(service.hub.api_client)  # type: ignore[attr-defined]
        make_member = service.observer._member_factory

        def counted_member(name: str, kubeconfig: str) -> Any:
            member = make_member(name, kubeconfig)
            counter.attach(member._api_client)
            return member

        service.observer._member_factory = counted_member
        # The Lease is renewed beside the cycles by a thread of its own, as run_forever's task does;
        # without it a cycle longer than the renew deadline fences itself off before writing.
        stop = threading.Event()
        renew_beside(service, stop)

        hub_pids = component_pids(world, world.hub)

        def cycle() -> CycleFigures:
            hub_bodies = (indexed("inferencedeployments"), indexed("regionalclusters"), indexed("gpuprofiles"))
            counter.reset()
            queries = len(prometheus.requests)
            apiserver = cpu_seconds(hub_pids.get("kube-apiserver")), cpu_seconds(hub_pids.get("etcd"))
            wall, cpu = time.perf_counter(), time.process_time()
            report: CycleReport = service.run_cycle(*hub_bodies)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            apiserver = (
                cpu_seconds(hub_pids.get("kube-apiserver")) - apiserver[0],
                cpu_seconds(hub_pids.get("etcd")) - apiserver[1],
            )
            result.peak_writes_in_flight = max(result.peak_writes_in_flight, counter.peak_writes_in_flight)
            figures = CycleFigures(
                wall_s=round(wall, 3),
                cpu_s=round(cpu, 3),
                planner_s=round(report.planner_seconds or 0.0, 3),
                plan_reused=report.plan_reused,
                status_writes=report.status_writes,
                member_writes=report.member_writes,
                events=report.events,
                requests=counter.total(),
                writes=counter.total(writes_only=True, exclude=frozenset({"leases"})),
                lease_writes=sum(n for (m, k), n in counter.counts.items() if k == "leases" and m != "GET"),
                prometheus_queries=len(prometheus.requests) - queries,
                errors=len(report.errors),
                hub_apiserver_cpu_s=round(apiserver[0], 2),
                hub_etcd_cpu_s=round(apiserver[1], 2),
                rss_mib=round(rss_mib()[0], 1),
            )
            print(f"  cycle: {figures}", file=sys.stderr, flush=True)
            if report.errors and (args.verbose or not report.leader):
                print("   " + "\n   ".join(report.errors[:5]), file=sys.stderr)
            return figures

        result.first = cycle()
        quiet = result.first.status_writes == 0
        while not quiet and result.cycles_to_quiet < 10:
            result.cycles_to_quiet += 1
            quiet = cycle().status_writes == 0
        result.steady = [cycle() for _ in range(args.steady)]
        result.rss_mib, result.peak_rss_mib = (round(v, 1) for v in rss_mib())
        result.load_average = os.getloadavg()
        result.heap_census = heap_census()
        release_setup_memory()
        result.rss_after_trim_mib = round(rss_mib()[0], 1)
        stop.set()
        service.writes.close()
        return result
    finally:
        world.stop()


def table(result: Result) -> str:
    first = result.first
    assert first is not None
    steady = result.steady
    with_series = result.deployments if result.with_replicas else 0
    per_deployment_queries = len(Signal) * with_series
    mean = (lambda xs: sum(xs) / len(xs)) if steady else (lambda xs: float("nan"))
    steady_queries = mean([c.prometheus_queries for c in steady])
    rows = [
        ("deployments x regions", f"{result.deployments} x {result.regions}", ""),
        ("first cycle wall / CPU", f"{first.wall_s:.1f} s / {first.cpu_s:.1f} s", f"planner {first.planner_s:.1f} s"),
        (
            "first cycle writes",
            f"{first.status_writes} status, {first.events} Events",
            f"peak {result.peak_writes_in_flight} in flight (limit {result.write_concurrency})",
        ),
        (
            "hub apiserver CPU, first cycle",
            f"{first.hub_apiserver_cpu_s:.1f} s (etcd {first.hub_etcd_cpu_s:.1f} s)",
            f"{1000 * first.hub_apiserver_cpu_s / max(first.status_writes, 1):.1f} ms a status write",
        ),
        ("cycles until quiet", f"{result.cycles_to_quiet}", ""),
        (
            "steady cycle wall / CPU",
            f"{max(c.wall_s for c in steady):.1f} s / {max(c.cpu_s for c in steady):.1f} s (max of {len(steady)})",
            f"planner {max(c.planner_s for c in steady):.1f} s",
        ),
        (
            "writes per idle cycle",
            f"{max(c.writes for c in steady)} (+{max(c.lease_writes for c in steady)} Lease)",
            f"{max(c.writes for c in steady) / result.deployments:.3f} of one per deployment",
        ),
        ("apiserver requests per idle cycle", f"{mean([c.requests for c in steady]):.0f}", "hub + members"),
        (
            "Prometheus queries per cycle",
            f"{steady_queries:.0f}",
            f"{steady_queries / per_deployment_queries:.4f} of per-deployment ({per_deployment_queries})"
            if per_deployment_queries
            else "",
        ),
        (
            "operator RSS (peak)",
            f"{result.rss_mib:.0f} MiB ({result.peak_rss_mib:.0f})",
            f"{result.peak_rss_mib / CHART_MEMORY_LIMIT_MIB:.2f} of the chart's {CHART_MEMORY_LIMIT_MIB} MiB",
        ),
        ("operator RSS after gc + malloc_trim", f"{result.rss_after_trim_mib:.0f} MiB", "what is live of it"),
        ("load average", " ".join(f"{v:.1f}" for v in result.load_average), f"{os.cpu_count()} cores, shared"),
        ("objects held (most numerous)", ", ".join(f"{n} {k}" for k, n in result.heap_census[:6]), ""),
    ]
    return "\n".join(aligned(rows))


def aligned(rows: list[tuple[str, str, str]]) -> list[str]:
    """(figure, measured, against) rows as aligned columns."""
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    return [f"{a:<{width}}  {b:<{value_width}}  {c}" for a, b, c in rows]


def main() -> None:
    if "--auto" in sys.argv[1:]:
        # 1,000 Auto deployments and a price swing: bench/operator_swing.py, with the same flags.
        from bench.operator_swing import main as swing

        sys.exit(swing([a for a in sys.argv[1:] if a != "--auto"]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--regions", type=int, default=12)
    parser.add_argument("--nodes", type=int, default=2, help="8-GPU H100 nodes per region")
    parser.add_argument("--steady", type=int, default=3, help="idle cycles measured after the quiet one")
    parser.add_argument("--write-concurrency", type=int, default=OperatorSettings().write_concurrency)
    parser.add_argument("--planner-budget", type=float, default=OperatorSettings().planner_time_budget_seconds)
    parser.add_argument("--no-replicas", action="store_true", help="no member replicas (no Prometheus series read)")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    if args.deployments < 1 or args.regions < 1 or args.steady < 1:
        parser.error("--deployments, --regions and --steady must be at least 1")
    result = run(args)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")


if __name__ == "__main__":
    main()
