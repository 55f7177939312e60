"""Start/stop a simulated multi-region world of real Kubernetes control planes.

Each cluster in the world file is created with ``kwokctl --runtime binary``
from the binaries built by :mod:`gscluster.build`: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok-controller, all bound to
127.0.0.1 on free ports.  Fake GPU nodes are then created from the world file
and kwok simulates node heartbeats and pod lifecycles (see :mod:`stages`).

    from gscluster import start_planes
    world = start_planes(ready_delay_s=2)
    world.kubeconfigs["eu-de"]     # Path to a kubeconfig
    world.kubectl("eu-de", "get", "nodes")
    world.stop()
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import build as _build
from . import versions as V
from .ports import free_ports
from .stages import build_stages

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_PLANES_FILE = Path(__file__).resolve().parents[1] / "planes.yaml"
DEFAULT_KUBECONFIG_DIR = REPO_ROOT / ".gridshift" / "kubeconfigs"
STATE_FILE = REPO_ROOT / ".gridshift" / "world.json"
RUNS_DIR = _build.CACHE_ROOT / "kwok"
CLUSTER_PREFIX = "gs-"


def _log(msg: str) -> None:
    print(f"[gridshift-world {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- world file


@dataclass
class NodePool:
    name: str
    count: int
    gpus: int = 0
    product: str | None = None
    gpu_memory_mib: int | None = None
    cpu: str = "96"
    memory: str = "1Ti"
    pods: str = "110"
    zones: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    taint_fake: bool = False


@dataclass
class ClusterSpec:
    name: str
    role: str
    region: str
    node_pools: list[NodePool]


@dataclass
class PlanesSpec:
    clusters: list[ClusterSpec]
    ready_delay_s: float = 120.0
    ready_jitter_s: float = 0.0


def load_planes(path: str | Path = DEFAULT_PLANES_FILE) -> PlanesSpec:
    raw = yaml.safe_load(Path(path).read_text())
    clusters = []
    for c in raw["clusters"]:
        pools = [
            NodePool(
                name=p["name"],
                count=int(p.get("count", 1)),
                gpus=int(p.get("gpus", 0)),
                product=p.get("product"),
                gpu_memory_mib=p.get("gpuMemoryMiB"),
                cpu=str(p.get("cpu", "96")),
                memory=str(p.get("memory", "1Ti")),
                pods=str(p.get("pods", "110")),
                zones=list(p.get("zones") or []),
                labels={str(k): str(v) for k, v in (p.get("labels") or {}).items()},
                taint_fake=bool(p.get("taintFake", False)),
            )
            for p in c.get("nodePools") or []
        ]
        clusters.append(
            ClusterSpec(
                name=c["name"], role=c.get("role", "region"), region=c.get("region", c["name"]), node_pools=pools
            )
        )
    return PlanesSpec(
        clusters=clusters,
        ready_delay_s=float(raw.get("readyDelaySeconds", 120)),
        ready_jitter_s=float(raw.get("readyJitterSeconds", 0)),
    )


def node_objects(cluster: ClusterSpec) -> list[dict[str, Any]]:
    """Node manifests for one cluster (status included: kwok keeps it)."""
    nodes = []
    for pool in cluster.node_pools:
        for i in range(pool.count):
            name = f"{cluster.name}-{pool.name}-{i}"
            zone = pool.zones[i % len(pool.zones)] if pool.zones else f"{cluster.region}-a"
            labels = {
                "type": "kwok",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
                "kubernetes.io/hostname": name,
                "node.kubernetes.io/instance-type": f"kwok-{pool.name}",
                "topology.kubernetes.io/region": cluster.region,
                "topology.kubernetes.io/zone": zone,
                "gridshift.dev/pool": pool.name,
            }
            resources = {"cpu": pool.cpu, "memory": pool.memory, "pods": pool.pods, "ephemeral-storage": "10Ti"}
            if pool.gpus:
                resources["nvidia.com/gpu"] = str(pool.gpus)
                labels["nvidia.com/gpu.present"] = "true"
                labels["nvidia.com/gpu.count"] = str(pool.gpus)
                if pool.product:
                    labels["nvidia.com/gpu.product"] = pool.product
                if pool.gpu_memory_mib:
                    labels["nvidia.com/gpu.memory"] = str(pool.gpu_memory_mib)
            labels.update(pool.labels)
            spec: dict[str, Any] = {}
            if pool.taint_fake:
                spec["taints"] = [{"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}]
            nodes.append(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "labels": labels,
                        "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                    },
                    "spec": spec,
                    "status": {"allocatable": resources, "capacity": resources},
                }
            )
    return nodes


# --------------------------------------------------------------------------- helpers


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) answers signal 0 but runs nothing.
    with contextlib.suppress(OSError, IndexError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True


def _rss_of_matching(needle: str) -> tuple[int, list[tuple[int, str, int]]]:
    """(total RSS bytes, [(pid, comm, rss)]) of processes whose cmdline mentions needle."""
    total, procs = 0, []
    page = os.sysconf("SC_PAGE_SIZE")
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if needle not in cmd:
                continue
            rss = int((d / "statm").read_text().split()[1]) * page
            comm = (d / "comm").read_text().strip()
        except OSError:
            continue
        total += rss
        procs.append((int(d.name), comm, rss))
    return total, procs


# --------------------------------------------------------------------------- the world


@dataclass
class ControlPlanes:
    """A running set of clusters.  ``kubeconfigs`` maps cluster name -> path."""

    workdir: Path
    bin_dir: Path
    kubeconfigs: dict[str, Path]
    spec: PlanesSpec
    persistent: bool = False
    _stopped: bool = False

    @property
    def names(self) -> list[str]:
        return list(self.kubeconfigs)

    @property
    def regions(self) -> list[str]:
        return [c.name for c in self.spec.clusters if c.role != "hub"]

    @property
    def hub(self) -> str:
        return next(c.name for c in self.spec.clusters if c.role == "hub")

    @property
    def logs_dir(self) -> Path:
        return self.workdir / "clusters"

    def env(self) -> dict[str, str]:
        return _kwok_env(self.workdir, self.bin_dir)

    def dead(self) -> dict[str, list[str]]:
        """Per cluster, its control-plane components that have exited (none: an empty dict)."""
        return {name: gone for name in self.names if (gone := dead_components(self.workdir, name))}

    def kubectl(
        self, cluster: str, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfigs[cluster]), *args]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout, env=self.env())
        if check and proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} on {cluster} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def apply(self, cluster: str, objects: Iterable[dict[str, Any]] | str, server_side: bool = True) -> str:
        text = objects if isinstance(objects, str) else yaml.safe_dump_all(list(objects))
        args = ["apply", "-f", "-"] + (["--server-side", "--force-conflicts"] if server_side else [])
        return self.kubectl(cluster, *args, input=text).stdout

    def stop_cluster(self, cluster: str) -> None:
        """Stops one cluster's processes (a region lost); its state stays for `start_cluster`."""
        _kwokctl_checked(self.workdir, self.bin_dir, "stop", "cluster", "--name", f"{CLUSTER_PREFIX}{cluster}")

    def start_cluster(self, cluster: str) -> None:
        """Starts a stopped cluster again, its nodes managed by the new kwok controller.

        kwok v0.8.0 only ever creates a node's Lease: the Leases the stopped controller held are never
        taken over ("lease already exists"), so no pod on those nodes would leave Pending. Deleting them
        lets the new controller create its own (it retries within about 40 s)."""
        _kwokctl_checked(self.workdir, self.bin_dir, "start", "cluster", "--name", f"{CLUSTER_PREFIX}{cluster}")
        self.kubectl(cluster, "delete", "leases", "--namespace", "kube-node-lease", "--all", "--wait=false")

    def rss_bytes(self) -> tuple[int, list[tuple[int, str, int]]]:
        """Resident memory of every process of this world (etcd, apiservers, ...)."""
        return _rss_of_matching(str(self.workdir))

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        _teardown_workdir(self.workdir, self.bin_dir, [f"{CLUSTER_PREFIX}{n}" for n in self.kubeconfigs])
        for p in self.kubeconfigs.values():
            if p.is_relative_to(self.workdir):
                continue
            p.unlink(missing_ok=True)
        if STATE_FILE.exists():
            with contextlib.suppress(ValueError, OSError):
                if json.loads(STATE_FILE.read_text()).get("workdir") == str(self.workdir):
                    STATE_FILE.unlink()

    def to_json(self) -> dict[str, Any]:
        return {
            "workdir": str(self.workdir),
            "bin_dir": str(self.bin_dir),
            "kubeconfigs": {k: str(v) for k, v in self.kubeconfigs.items()},
            "persistent": self.persistent,
        }

    def __enter__(self) -> ControlPlanes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _kwok_env(workdir: Path, bin_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["KWOK_WORKDIR"] = str(workdir)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    # kwokctl must never touch the user's ~/.kube/config
    env["KUBECONFIG"] = str(workdir / "unused-kubeconfig.yaml")
    return env


def _kwokctl(workdir: Path, bin_dir: Path, *args: str, log: Path | None = None, timeout: float = 600) -> int:
    cmd = [str(bin_dir / "kwokctl"), *args]
    if log is None:
        return subprocess.run(cmd, env=_kwok_env(workdir, bin_dir), capture_output=True, timeout=timeout).returncode
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        return subprocess.run(
            cmd, env=_kwok_env(workdir, bin_dir), stdout=fh, stderr=subprocess.STDOUT, timeout=timeout
        ).returncode


def _kwokctl_checked(workdir: Path, bin_dir: Path, *args: str) -> None:
    proc = subprocess.run(
        [str(bin_dir / "kwokctl"), *args], env=_kwok_env(workdir, bin_dir), capture_output=True, text=True, timeout=180
    )
    if proc.returncode != 0:
        raise RuntimeError(f"kwokctl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")


def _teardown_workdir(workdir: Path, bin_dir: Path, cluster_names: Sequence[str] | None = None) -> None:
    """Delete every kwokctl cluster under workdir, kill leftovers, remove the dir."""
    clusters_dir = workdir / "clusters"
    names = list(cluster_names or [])
    if clusters_dir.is_dir():
        names += [d.name for d in clusters_dir.iterdir() if d.is_dir() and d.name not in names]
    kwokctl = bin_dir / "kwokctl"
    threads = []
    for name in names:
        if kwokctl.exists():
            t = threading.Thread(
                target=lambda n=name: _kwokctl(
                    workdir, bin_dir, "delete", "cluster", "--name", n, "--kubeconfig", "", timeout=120
                ),
                daemon=True,
            )
            t.start()
            threads.append(t)
    for t in threads:
        t.join(timeout=150)
    # Anything kwokctl missed (e.g. a half-created cluster): kill by workdir path.
    _, procs = _rss_of_matching(str(workdir))
    for pid, _comm, _rss in procs:
        if pid != os.getpid():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    shutil.rmtree(workdir, ignore_errors=True)
    _log(f"stopped world {workdir}")


def reap_stale_planes() -> None:
    """Tear down worlds whose owning process died without cleaning up."""
    if not RUNS_DIR.is_dir():
        return
    for d in RUNS_DIR.glob("run-*"):
        if "." in d.name:  # run-xxx.failed-logs: kept for inspection, no processes
            continue
        meta = d / "owner.json"
        try:
            owner = json.loads(meta.read_text())
        except (OSError, ValueError):
            owner = {"pid": 0, "persistent": False, "bin_dir": str(_build.bin_dir())}
            if time.time() - d.stat().st_mtime < 600:
                continue  # probably being created right now
        if owner.get("persistent") or _pid_alive(int(owner.get("pid", 0))):
            continue
        _log(f"reaping stale world {d} (owner pid {owner.get('pid')} is gone)")
        _teardown_workdir(d, Path(owner.get("bin_dir", _build.bin_dir())))


APISERVER_ARGS_ENV = "GSCLUSTER_APISERVER_ARGS"
"""Extra kube-apiserver flags for a measurement, `key=value` separated by spaces (e.g. `profiling=true`
to read /debug/pprof); later entries win over the defaults above. Unset in tests and CI."""


def _extra_apiserver_args() -> list[dict[str, str]]:
    pairs = (item.split("=", 1) for item in os.environ.get(APISERVER_ARGS_ENV, "").split() if "=" in item)
    return [{"key": key, "value": value} for key, value in pairs]


def _kwokctl_config(cluster: ClusterSpec, ports: list[int], bin_dir: Path, spec: PlanesSpec) -> str:
    etcd_port, etcd_peer, apiserver, kwok_ctrl, kcm, sched = ports
    conf = {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokctlConfiguration",
        "options": {
            "runtime": "binary",
            "kubeVersion": V.KUBERNETES,
            "etcdVersion": V.ETCD,
            "bindAddress": "127.0.0.1",
            "kubeBinaryPrefix": str(bin_dir),
            "kubectlBinary": str(bin_dir / "kubectl"),
            "etcdBinary": str(bin_dir / "etcd"),
            "kwokControllerBinary": str(bin_dir / "kwok"),
            "etcdPort": etcd_port,
            "etcdPeerPort": etcd_peer,
            "kubeApiserverPort": apiserver,
            "kwokControllerPort": kwok_ctrl,
            "kubeControllerManagerPort": kcm,
            "kubeSchedulerPort": sched,
            "etcdQuotaBackendSize": "512Mi",
            "quietPull": True,
        },
        "componentsPatches": [
            {
                "name": "kube-apiserver",
                "extraArgs": [
                    # Small, quiet control planes: 4 of them share 2 cores.
                    {"key": "max-requests-inflight", "value": "100"},
                    {"key": "max-mutating-requests-inflight", "value": "50"},
                    {"key": "enable-priority-and-fairness", "value": "false"},
                    {"key": "profiling", "value": "false"},
                    {"key": "v", "value": "1"},
                    *_extra_apiserver_args(),
                ],
            },
            {
                "name": "kube-controller-manager",
                "extraArgs": [
                    {"key": "concurrent-deployment-syncs", "value": "5"},
                    # Each controller as its own ServiceAccount, as kubeadm and managed clusters run it: the
                    # member chart's admission policy lets only the ReplicaSet controller label replica pods.
                    {"key": "use-service-account-credentials", "value": "true"},
                    {"key": "profiling", "value": "false"},
                    # One instance per cluster: a lease to win is only a way to die. On a loaded machine a
                    # renewal slower than its 10 s deadline makes the process exit ("leaderelection lost"),
                    # nothing restarts it, and that cluster's Deployments never get pods again.
                    {"key": "leader-elect", "value": "false"},
                ],
            },
            {
                "name": "kube-scheduler",
                "extraArgs": [{"key": "profiling", "value": "false"}, {"key": "leader-elect", "value": "false"}],
            },
        ],
    }
    stages = build_stages(spec.ready_delay_s, spec.ready_jitter_s)
    return yaml.safe_dump_all([conf, *stages], sort_keys=False)


BIND_CONFLICT = "address already in use"
STARVED = "failed to wait for apiserver being healthy"
"""kube-controller-manager's words when its apiserver did not answer /healthz within 10 s."""
CREATE_ATTEMPTS = 3
"""Tries per cluster when a component could not bind its port (something outside gridshift took it)
or gave up while starting on a loaded machine."""
MAX_PARALLEL_STARTS = 4
"""Clusters started at once: the default world (hub + 3 regions) all together; a 12-region world in
four waves (the whole of it at once timed the hub's kube-controller-manager out on 2 loaded cores)."""


class ComponentDied(RuntimeError):
    """A control-plane process of a cluster exited while the world was starting."""

    def __init__(self, cluster: str, component: str, log: Path) -> None:
        self.cluster = cluster
        self.component = component
        self.log = log
        self.last_lines = _last_lines(log)
        self.bind_conflict = any(BIND_CONFLICT in line.lower() for line in self.last_lines)
        self.starved = any(STARVED in line for line in self.last_lines)
        """It gave up waiting for its apiserver (a loaded machine), not a broken configuration."""
        shown = "\n  ".join(self.last_lines) or "(its log is empty)"
        super().__init__(f"{cluster}: {component} exited while starting; the end of {log}:\n  {shown}")


def _last_lines(log: Path, count: int = 3, width: int = 400) -> list[str]:
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return []
    return [line if len(line) <= width else line[:width] + " ..." for line in lines[-count:]]


def cluster_dir(workdir: Path, cluster: str) -> Path:
    return workdir / "clusters" / f"{CLUSTER_PREFIX}{cluster}"


def dead_components(workdir: Path, cluster: str) -> list[str]:
    """Components of a cluster whose pid file names a process that is gone (kwokctl writes
    `pids/<component>.pid` and `logs/<component>.log` as it starts each)."""
    dead = []
    for pid_file in sorted((cluster_dir(workdir, cluster) / "pids").glob("*.pid")):
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            continue  # being written
        if not _pid_alive(pid):
            dead.append(pid_file.stem)
    return dead


def raise_if_dead(workdir: Path, cluster: str) -> None:
    """ComponentDied for the first dead component of `cluster`, with its last log lines."""
    for component in dead_components(workdir, cluster):
        raise ComponentDied(cluster, component, cluster_dir(workdir, cluster) / "logs" / f"{component}.log")


def _wait(cond: Any, timeout: float, what: str, interval: float = 0.5, watch: Callable[[], None] | None = None) -> None:
    """Poll `cond` until it holds; `watch` runs first on every poll and raises to stop at once."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if watch is not None:
            watch()
        try:
            if cond():
                return
        except Exception as e:  # keep polling; report the last error
            last = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}" + (f": {last}" if last else ""))


def _create_cluster(world: ControlPlanes, cluster: ClusterSpec, spec: PlanesSpec, timeout: float) -> None:
    """Create one cluster; a component that could not bind its port is retried with fresh ports, and one
    that gave up waiting for its apiserver (kube-controller-manager waits only 10 s for /healthz, which
    a loaded machine starting a dozen planes can exceed) is retried from scratch. Any other death stops
    the start at once."""
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            _create_cluster_once(world, cluster, spec, timeout)
            return
        except ComponentDied as died:
            if not (died.bind_conflict or died.starved) or attempt == CREATE_ATTEMPTS:
                raise
            why = "could not bind its port; retrying with new ports" if died.bind_conflict else "starved; retrying"
            _log(f"{cluster.name}: {died.component} {why} (attempt {attempt} of {CREATE_ATTEMPTS}): {died}")
            _discard_cluster(world, cluster.name)


def _discard_cluster(world: ControlPlanes, cluster: str) -> None:
    """Remove a half-started cluster completely: kwokctl's delete, leftovers killed, its folder gone."""
    _kwokctl(
        world.workdir,
        world.bin_dir,
        "delete", "cluster", "--name", f"{CLUSTER_PREFIX}{cluster}", "--kubeconfig", "",
        log=world.workdir / "logs" / f"{cluster}-kwokctl.log",
        timeout=120,
    )  # fmt: skip
    folder = cluster_dir(world.workdir, cluster)
    for pid, _comm, _rss in _rss_of_matching(str(folder))[1]:
        if pid != os.getpid():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    shutil.rmtree(folder, ignore_errors=True)


def _run_kwokctl_create(world: ControlPlanes, cluster: ClusterSpec, cfg: Path, log: Path, timeout: float) -> None:
    """`kwokctl create cluster`, stopped as soon as one of the cluster's components has died
    (kwokctl itself would wait for its whole timeout)."""
    name = f"{CLUSTER_PREFIX}{cluster.name}"
    cmd = [
        str(world.bin_dir / "kwokctl"),
        "create", "cluster",
        "--name", name,
        "--runtime", "binary",
        "--config", str(cfg),
        "--kubeconfig", "",
        "--wait", f"{int(timeout)}s",
        "--timeout", f"{int(timeout)}s",
    ]  # fmt: skip
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.Popen(cmd, env=world.env(), stdout=fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout + 60
        try:
            while proc.poll() is None:
                raise_if_dead(world.workdir, cluster.name)
                if time.monotonic() > deadline:
                    raise TimeoutError(f"kwokctl create cluster {name}: no answer in {timeout + 60:.0f}s; see {log}")
                time.sleep(0.25)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    raise_if_dead(world.workdir, cluster.name)
    if proc.returncode != 0:
        raise RuntimeError(
            f"kwokctl create cluster {name} failed (rc={proc.returncode}): {' | '.join(_last_lines(log))}; "
            f"see {log} and {cluster_dir(world.workdir, cluster.name)}/logs/"
        )


def _create_cluster_once(world: ControlPlanes, cluster: ClusterSpec, spec: PlanesSpec, timeout: float) -> None:
    name = f"{CLUSTER_PREFIX}{cluster.name}"
    cfg = world.workdir / "configs" / f"{cluster.name}.yaml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(_kwokctl_config(cluster, free_ports(6), world.bin_dir, spec))
    log = world.workdir / "logs" / f"{cluster.name}-kwokctl.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    _run_kwokctl_create(world, cluster, cfg, log, timeout)
    kc = subprocess.run(
        [str(world.bin_dir / "kwokctl"), "get", "kubeconfig", "--name", name],
        env=world.env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = world.kubeconfigs[cluster.name]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(kc)
    path.chmod(0o600)
    _log(f"{cluster.name}: control plane up in {time.monotonic() - t0:.1f}s")

    def watch() -> None:
        raise_if_dead(world.workdir, cluster.name)

    nodes = node_objects(cluster)
    if nodes:
        world.kubectl(cluster.name, "apply", "-f", "-", input=yaml.safe_dump_all(nodes))
    want = {n["metadata"]["name"] for n in nodes}

    def nodes_ready() -> bool:
        out = json.loads(world.kubectl(cluster.name, "get", "nodes", "-o", "json").stdout)
        ready = {
            n["metadata"]["name"]
            for n in out["items"]
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
        }
        return want <= ready

    _wait(nodes_ready, timeout, f"{cluster.name} nodes Ready", watch=watch)

    # Pods can only be created once the controller-manager has made the default ServiceAccount.
    _wait(
        lambda: (
            world.kubectl(cluster.name, "get", "serviceaccount", "default", "-n", "default", check=False).returncode
            == 0
        ),
        timeout,
        f"{cluster.name} default ServiceAccount (kube-controller-manager running)",
        watch=watch,
    )
    _log(f"{cluster.name}: ready with {len(want)} nodes after {time.monotonic() - t0:.1f}s")


def start_planes(
    world_file: str | Path = DEFAULT_PLANES_FILE,
    ready_delay_s: float | None = None,
    *,
    ready_jitter_s: float | None = None,
    kubeconfig_dir: str | Path | None = None,
    only: Sequence[str] | None = None,
    persistent: bool = False,
    build_if_missing: bool = True,
    parallel: bool = True,
    timeout: float = 300,
) -> ControlPlanes:
    """Start every cluster of ``world_file``; returns once all are ready.

    ready_delay_s   seconds from a pod being scheduled until it is Ready
                    (default: the world file's readyDelaySeconds)
    kubeconfig_dir  where <name>.yaml kubeconfigs go (default: inside the
                    world's temp workdir; ``cluster-up`` uses .gridshift/kubeconfigs)
    only            subset of cluster names to start
    persistent      leave running when this process exits (``cluster-up``)
    """
    t0 = time.monotonic()
    spec = load_planes(world_file)
    if ready_delay_s is not None:
        spec.ready_delay_s = float(ready_delay_s)
    if ready_jitter_s is not None:
        spec.ready_jitter_s = float(ready_jitter_s)
    if only:
        spec.clusters = [c for c in spec.clusters if c.name in only]

    missing = _build.missing()
    if missing:
        if not build_if_missing:
            raise RuntimeError(f"missing cluster binaries {missing}; run `make cluster-build`")
        _build.build()
    bin_dir = _build.bin_dir()

    reap_stale_planes()
    RUNS_DIR.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="run-", dir=RUNS_DIR))
    (workdir / "owner.json").write_text(
        json.dumps({"pid": os.getpid(), "persistent": persistent, "bin_dir": str(bin_dir), "started": time.time()})
    )
    kdir = Path(kubeconfig_dir) if kubeconfig_dir else workdir / "kubeconfigs"
    world = ControlPlanes(
        workdir=workdir,
        bin_dir=bin_dir,
        kubeconfigs={c.name: kdir / f"{c.name}.yaml" for c in spec.clusters},
        spec=spec,
        persistent=persistent,
    )
    if not persistent:
        atexit.register(world.stop)
    _log(
        f"starting {len(spec.clusters)} clusters ({', '.join(world.names)}) in {workdir}; "
        f"pod ready delay {spec.ready_delay_s}s; logs: {workdir}/logs and {workdir}/clusters/*/logs"
    )
    try:
        errors: list[BaseException] = []
        if parallel:
            threads = []
            # A dozen planes started at once on 2 cores starve each other's health checks: a few at a time.
            starting = threading.BoundedSemaphore(MAX_PARALLEL_STARTS)
            for c in spec.clusters:

                def run(c: ClusterSpec = c) -> None:
                    try:
                        with starting:
                            _create_cluster(world, c, spec, timeout)
                    except BaseException as e:
                        errors.append(e)

                t = threading.Thread(target=run, name=f"create-{c.name}")
                t.start()
                threads.append(t)
            for t in threads:
                t.join()
        else:
            for c in spec.clusters:
                _create_cluster(world, c, spec, timeout)
        if errors:
            raise errors[0]
    except BaseException:
        _log(f"world failed to start; logs were in {workdir} (copied to {workdir}.failed-logs)")
        with contextlib.suppress(OSError):
            shutil.copytree(
                workdir,
                f"{workdir}.failed-logs",
                ignore=shutil.ignore_patterns("etcd", "bin", "pki", "pids"),
                symlinks=True,
            )
        world.stop()
        raise
    _log(f"world up in {time.monotonic() - t0:.1f}s: " + ", ".join(f"{k}={v}" for k, v in world.kubeconfigs.items()))
    return world


def planes_from_state(path: Path = STATE_FILE) -> ControlPlanes | None:
    """The world started by ``cluster-up`` (if its state file exists)."""
    if not path.exists():
        return None
    st = json.loads(path.read_text())
    wd = Path(st["workdir"])
    if not wd.is_dir():
        return None
    return ControlPlanes(
        workdir=wd,
        bin_dir=Path(st["bin_dir"]),
        kubeconfigs={k: Path(v) for k, v in st["kubeconfigs"].items()},
        spec=load_planes(st.get("world_file", DEFAULT_PLANES_FILE)),
        persistent=True,
    )
