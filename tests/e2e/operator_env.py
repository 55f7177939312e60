"""The operator as users run it (`kopf run` as a process) against the real hub and member clusters."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import yaml
from gscluster.ports import free_ports

from tests.conftest import REPO_ROOT

NAMESPACE = "gridshift-system"
WORKLOADS = "ml"
MEMBER_WORKLOADS = "gridshift-workloads"
"""The workload namespace in every member cluster (RegionalCluster.workloadNamespace)."""
PURPOSE_LABEL = "gridshift.dev/secret-purpose"
H100 = "NVIDIA-H100-80GB-HBM3"
MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"


class OperatorProcess:
    """One `kopf run` of gridshift's handlers; logs to a file the test names on failure."""

    running: ClassVar[set[OperatorProcess]] = set()
    """Started and not yet stopped or killed: tests/conftest.py stops what a test leaves running."""

    def __init__(self, hub_kubeconfig: Path, log_dir: Path, name: str, **settings: Any) -> None:
        self.log_path = log_dir / f"operator-{name}.log"
        self.port, self.metrics_port = free_ports(2)
        env = dict(os.environ)
        env.update(
            KUBECONFIG=str(hub_kubeconfig),
            GRIDSHIFT_NAMESPACE=NAMESPACE,
            GRIDSHIFT_PLAN_INTERVAL_SECONDS="2",
            GRIDSHIFT_PLANNER_TIME_BUDGET_SECONDS="1",
            GRIDSHIFT_REVALIDATE_DELAY_SECONDS="0",
            GRIDSHIFT_COLD_START_SECONDS="60",
            GRIDSHIFT_PROBE_PORT=str(self.port),
            GRIDSHIFT_METRICS_PORT=str(self.metrics_port),
            PYTHONUNBUFFERED="1",
        )
        env.update({f"GRIDSHIFT_{k.upper()}": str(v) for k, v in settings.items()})
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, verbose: bool = False) -> OperatorProcess:
        """`kopf run` as the chart runs it; `verbose` adds kopf's --verbose (every logger at DEBUG)."""
        kopf = Path(sys.executable).parent / "kopf"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(kopf),
                "run",
                "-m",
                "gridshift.shell.handlers",
                "--all-namespaces",
                "--standalone",
                *(["--verbose"] if verbose else []),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )
        OperatorProcess.running.add(self)
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup handlers run, as when a node dies."""
        OperatorProcess.running.discard(self)
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        OperatorProcess.running.discard(self)
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def rss_bytes(self) -> int:
        assert self.process is not None
        statm = Path(f"/proc/{self.process.pid}/statm").read_text().split()
        return int(statm[1]) * os.sysconf("SC_PAGE_SIZE")


def wait_until(condition: Callable[[], Any], timeout: float, what: str, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as error:  # transient API errors while things start
            last_error = error
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error})")


def regional_cluster(name: str, price_usd_per_mwh: float, *, hourly_cost: float = 0.0) -> dict[str, Any]:
    return {
        "apiVersion": "gridshift.dev/v1alpha1",
        "kind": "RegionalCluster",
        "metadata": {"name": name},
        "spec": {
            "region": name,
            "kubeconfigSecretRef": {"name": f"kubeconfig-{name}", "namespace": NAMESPACE, "key": "kubeconfig"},
            "workloadNamespace": MEMBER_WORKLOADS,
            "pue": 1.2,
            "offerings": [
                {"gpuType": H100, "hourlyCost": {"amount": hourly_cost, "currency": "USD"}},
                {"gpuType": "NVIDIA-L40S", "hourlyCost": {"amount": hourly_cost, "currency": "USD"}},
                {"gpuType": "NVIDIA-A100-SXM4-80GB", "hourlyCost": {"amount": hourly_cost, "currency": "USD"}},
            ],
            "priceFeed": {
                "type": "static",
                "currency": "USD",
                "unit": "MWh",
                "refreshSeconds": 10,
                "static": {"price": price_usd_per_mwh},
            },
        },
    }


def inference_deployment(name: str, *, rps: float, mode: str = "Auto", **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": {"servedName": name, "source": MODEL},
        "replica": {"gpuTypes": [H100], "cpu": "1", "memory": "1Gi"},
        "slo": {"ttftP95Ms": 500, "tpotP95Ms": 50},
        "capacity": {"minReplicas": 1, "maxReplicas": 12},
        "migration": {"mode": mode, "maxConcurrentMoves": 2, "paybackHorizonHours": 6, "readyTimeoutSeconds": 120},
        "demand": {"source": "Static", "requestsPerSecond": rps, "meanPromptTokens": 1000, "meanOutputTokens": 200},
    }
    spec.update(overrides)
    return {
        "apiVersion": "gridshift.dev/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": name, "namespace": WORKLOADS},
        "spec": spec,
    }


class Fleet:
    """Reads and changes the world through kubectl: hub resources and member workloads."""

    def __init__(self, world: Any) -> None:
        self.world = world

    def hub(self, *args: str, input: str | None = None, check: bool = True) -> str:
        return str(self.world.kubectl(self.world.hub, *args, input=input, check=check).stdout)

    def apply_hub(self, *objects: dict[str, Any]) -> None:
        self.world.apply(self.world.hub, list(objects))

    def get_idep(self, name: str) -> dict[str, Any]:
        return dict(json.loads(self.hub("get", "idep", "-n", WORKLOADS, name, "-o", "json")))

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get_idep(name).get("status") or {})

    def set_price(self, cluster: str, price: float) -> None:
        patch = json.dumps({"spec": {"priceFeed": {"static": {"price": price}}}})
        self.hub("patch", "regionalcluster", cluster, "--type=merge", "-p", patch)

    def workloads(self, region: str) -> list[dict[str, Any]]:
        out = self.world.kubectl(
            region,
            "get",
            "deployments",
            "-A",
            "-l",
            "app.kubernetes.io/managed-by=gridshift",
            "--show-managed-fields",
            "-o",
            "json",
        ).stdout
        return list(json.loads(out)["items"])

    def replicas(self, name: str) -> dict[str, tuple[int, int]]:
        """(desired, ready) per region for one InferenceDeployment."""
        out: dict[str, tuple[int, int]] = {}
        for region in self.world.regions:
            desired = ready = 0
            for d in self.workloads(region):
                if d["metadata"]["labels"].get("gridshift.dev/deployment") == f"{WORKLOADS}.{name}":
                    desired += d["spec"].get("replicas", 0)
                    ready += (d.get("status") or {}).get("readyReplicas", 0) or 0
            out[region] = (desired, ready)
        return out


def workload_namespace(name: str) -> dict[str, Any]:
    """A workload namespace as charts/gridshift-member makes it: Pod Security `restricted` enforced."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            },
        },
    }


def install_hub(world: Any, prices: dict[str, float]) -> Fleet:
    """CRDs, the operator's namespace, member kubeconfig Secrets and RegionalClusters on the hub."""
    fleet = Fleet(world)
    fleet.hub("apply", "--server-side", "-f", str(REPO_ROOT / "crds"))
    fleet.hub("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    for ns in (NAMESPACE, WORKLOADS):
        fleet.hub("create", "namespace", ns, check=False)
    for region in world.regions:
        secret = fleet.hub(
            "create",
            "secret",
            "generic",
            f"kubeconfig-{region}",
            "-n",
            NAMESPACE,
            f"--from-file=kubeconfig={world.kubeconfigs[region]}",
            "--dry-run=client",
            "-o",
            "yaml",
        )
        fleet.hub("apply", "-f", "-", input=secret)
        fleet.hub(
            "label",
            "secret",
            f"kubeconfig-{region}",
            "-n",
            NAMESPACE,
            f"{PURPOSE_LABEL}=member-kubeconfig",
            "--overwrite",
        )
        # The member cluster's administrator creates the workload namespace (gridshift never does).
        world.apply(region, [workload_namespace(MEMBER_WORKLOADS)])
    # Other suites share this hub (tests/cluster applies the examples): keep only the world's regions,
    # and refuse to start beside InferenceDeployments this module did not make, which every operator
    # started here would plan too.
    foreign = [
        f"{d['metadata']['namespace']}/{d['metadata']['name']}"
        for d in json.loads(fleet.hub("get", "idep", "-A", "-o", "json"))["items"]
        if d["metadata"]["namespace"] != WORKLOADS
    ]
    assert not foreign, f"another suite left InferenceDeployments on the shared hub: {foreign}"
    existing = json.loads(fleet.hub("get", "regionalclusters", "-o", "json"))["items"]
    for cluster in existing:
        if cluster["metadata"]["name"] not in world.regions:
            fleet.hub("delete", "regionalcluster", cluster["metadata"]["name"], "--wait=false", check=False)
    fleet.apply_hub(*(regional_cluster(r, prices.get(r, 50.0)) for r in world.regions))
    return fleet


def dump(objects: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objects)
