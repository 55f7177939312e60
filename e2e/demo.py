"""`make demo`: gridshift placing a Llama-3-8B deployment across three regions as accelerated days pass.

Expects `make cluster-up` and `make world-up WORLD_PROMETHEUS=1` (the Makefile runs both first).
Installs the CRDs, member kubeconfig Secrets and RegionalClusters whose price feeds are the
simulated world's ENTSO-E and JSON endpoints (2024 prices replayed on its clock), starts the
operator reading the world's clock, applies the example InferenceDeployment, and shows a live
table until --hours simulated hours have passed; then a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "e2e" / "cluster"))
from gscluster.ports import free_ports  # noqa: E402  (the cluster helpers live beside this script)

STATE = REPO / ".gridshift"
NAMESPACE = "gridshift-system"
H100 = "NVIDIA-H100-80GB-HBM3"
console = Console(stderr=True)


def kubectl(*args: str, input: str | None = None, check: bool = True) -> str:
    binary = subprocess.run(
        [sys.executable, str(REPO / "e2e" / "cluster" / "cluster.py"), "bin-dir"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    proc = subprocess.run(
        [f"{binary}/kubectl", "--kubeconfig", str(STATE / "kubeconfigs" / "hub.yaml"), *args],
        input=input,
        capture_output=True,
        text=True,
    )
    if check and proc.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


def regional_clusters(world: dict[str, Any]) -> list[dict[str, Any]]:
    def cluster(name: str, offerings: list[dict[str, Any]], feed: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "gridshift.dev/v1alpha1",
            "kind": "RegionalCluster",
            "metadata": {"name": name},
            "spec": {
                "region": name,
                "kubeconfigSecretRef": {"name": f"kubeconfig-{name}", "namespace": NAMESPACE, "key": "kubeconfig"},
                "pue": 1.25,
                "offerings": offerings,
                "priceFeed": {"staleAfterSeconds": 93600, "refreshSeconds": 30, **feed},
                "prometheusUrl": world["prometheus"],
            },
        }

    token = {"name": "entsoe-token", "namespace": NAMESPACE, "key": "token"}
    return [
        cluster(
            "eu-de",
            [{"gpuType": H100}],
            {
                "type": "entsoe",
                "currency": "EUR",
                "fxToUsd": 1.08,
                "entsoe": {"areaEic": "10Y1001A1001A82H", "tokenSecretRef": token, "endpoint": world["entsoe"]},
            },
        ),
        cluster(
            "eu-fr",
            [{"gpuType": H100}, {"gpuType": "NVIDIA-L40S"}],
            {
                "type": "entsoe",
                "currency": "EUR",
                "fxToUsd": 1.08,
                "entsoe": {"areaEic": "10YFR-RTE------C", "tokenSecretRef": token, "endpoint": world["entsoe"]},
            },
        ),
        cluster(
            "us-tx",
            [{"gpuType": "NVIDIA-A100-SXM4-80GB"}, {"gpuType": H100}],
            {
                "type": "httpJson",
                "currency": "USD",
                "fxToUsd": 1.0,
                "httpJson": {"url": f"{world['prices']}/json/US-TEX-ERCO"},
            },
        ),
    ]


PURPOSE = "gridshift.dev/secret-purpose"
WORKLOAD_NAMESPACE = {
    "apiVersion": "v1",
    "kind": "Namespace",
    "metadata": {
        "name": "gridshift-workloads",
        "labels": {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
        },
    },
}


def install(world: dict[str, Any]) -> None:
    console.print("[bold]1/3[/] CRDs, Secrets and RegionalClusters on the hub")
    kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    for ns in (NAMESPACE, "ml-serving"):
        kubectl("create", "namespace", ns, check=False)
    secrets = [
        kubectl(
            "create",
            "secret",
            "generic",
            f"kubeconfig-{region}",
            "-n",
            NAMESPACE,
            f"--from-file=kubeconfig={STATE / 'kubeconfigs' / f'{region}.yaml'}",
            "--dry-run=client",
            "-o",
            "yaml",
        )
        for region in ("eu-de", "eu-fr", "us-tx")
    ]
    secrets.append(
        kubectl(
            "create",
            "secret",
            "generic",
            "entsoe-token",
            "-n",
            NAMESPACE,
            "--from-literal=token=demo-token",
            "--dry-run=client",
            "-o",
            "yaml",
        )
    )
    kubectl("apply", "-f", "-", input="---\n".join(secrets))
    # gridshift reads a Secret only for the purpose its label names (docs/security.md).
    for region in ("eu-de", "eu-fr", "us-tx"):
        kubectl(
            "label", "secret", f"kubeconfig-{region}", "-n", NAMESPACE, f"{PURPOSE}=member-kubeconfig", "--overwrite"
        )
        # The member cluster's administrator creates the workload namespace (charts/gridshift-member).
        kubectl(
            "--kubeconfig",
            str(STATE / "kubeconfigs" / f"{region}.yaml"),
            "apply",
            "-f",
            "-",
            input=yaml.safe_dump(WORKLOAD_NAMESPACE),
        )
    kubectl("label", "secret", "entsoe-token", "-n", NAMESPACE, f"{PURPOSE}=price-feed-token", "--overwrite")
    kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(regional_clusters(world)))


def start_operator(world: dict[str, Any], log: Path) -> subprocess.Popen[bytes]:
    console.print(f"[bold]2/3[/] operator (log: {log})")
    env = dict(
        os.environ,
        KUBECONFIG=str(STATE / "kubeconfigs" / "hub.yaml"),
        GRIDSHIFT_NAMESPACE=NAMESPACE,
        GRIDSHIFT_CLOCK_URL=f"{world['control']}/clock",
        GRIDSHIFT_PLAN_INTERVAL_SECONDS="3",
        GRIDSHIFT_PLANNER_TIME_BUDGET_SECONDS="2",
        GRIDSHIFT_REVALIDATE_DELAY_SECONDS="0",
        GRIDSHIFT_METRICS_PORT=str(free_ports(1)[0]),
        PYTHONUNBUFFERED="1",
        # one Prometheus holds every region; counters follow the world clock, so 30 s real = 3 h simulated
        GRIDSHIFT_METRICS_CLUSTER_LABEL="cluster",
        GRIDSHIFT_METRICS_WINDOW_SECONDS="30",
    )
    kopf = Path(sys.executable).parent / "kopf"
    return subprocess.Popen(
        [str(kopf), "run", "-m", "gridshift.shell.handlers", "--all-namespaces", "--standalone"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )


def snapshot(world: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    status = get_json(f"{world['control']}/status")
    ideps = json.loads(kubectl("get", "idep", "-A", "-o", "json"))["items"]
    clusters = json.loads(kubectl("get", "regionalclusters", "-o", "json"))["items"]
    return status, ideps, clusters


def render(status: dict[str, Any], ideps: list[dict[str, Any]], clusters: list[dict[str, Any]]) -> Group:
    regions = Table(title=f"simulated time {status['sim_time']}  (x{status['speed']:.0f})", expand=True)
    for column in ("region", "price $/kWh", "replicas", "GPU power kW"):
        regions.add_column(column, justify="right" if column != "region" else "left")
    power: dict[str, float] = {}
    count: dict[str, int] = {}
    for replica in status["replicas"]:
        power[replica["cluster"]] = power.get(replica["cluster"], 0.0) + replica["powerWatts"] / 1000
        count[replica["cluster"]] = count.get(replica["cluster"], 0) + 1
    for cluster in sorted(clusters, key=lambda c: c["metadata"]["name"]):
        name = cluster["metadata"]["name"]
        price = (cluster.get("status") or {}).get("currentPriceUsdPerKwh")
        regions.add_row(
            name, "-" if price is None else f"{price:.4f}", str(count.get(name, 0)), f"{power.get(name, 0.0):.2f}"
        )
    deployments = Table(title="InferenceDeployments", expand=True)
    for column in ("name", "regions", "ready/desired", "$/Mtok", "J/token", "last decision"):
        deployments.add_column(column)
    for idep in ideps:
        s = idep.get("status") or {}
        cost = s.get("cost") or {}
        deployments.add_row(
            idep["metadata"]["name"],
            s.get("regions", ""),
            f"{s.get('readyReplicas', 0)}/{s.get('desiredReplicas', 0)}",
            str(cost.get("usdPerMillionTokens", "-")),
            str(cost.get("joulesPerToken", "-")),
            ((s.get("lastDecision") or {}).get("summary") or "")[:70],
        )
    return Group(regions, deployments)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours to watch (default 24)")
    args = parser.parse_args()
    if args.hours <= 0:
        parser.error("--hours must be positive")
    state_file = STATE / "sim-world.json"
    deadline = time.monotonic() + 60
    while not state_file.exists() or "prometheus" not in json.loads(state_file.read_text() or "{}"):
        if time.monotonic() > deadline:
            raise SystemExit(f"the simulated world did not start: see {STATE / 'sim-world.log'}")
        time.sleep(1)
    world = json.loads(state_file.read_text())
    install(world)
    operator = start_operator(world, STATE / "demo-operator.log")
    decisions: list[str] = []
    try:
        console.print("[bold]3/3[/] applying examples/inferencedeployment-llama3-8b.yaml")
        kubectl("apply", "--server-side", "-f", str(REPO / "examples" / "inferencedeployment-llama3-8b.yaml"))
        start = datetime.fromisoformat(get_json(f"{world['control']}/clock")["sim_time"])
        with Live(console=Console(), refresh_per_second=1) as live:
            while True:
                status, ideps, clusters = snapshot(world)
                live.update(render(status, ideps, clusters))
                for idep in ideps:
                    summary = ((idep.get("status") or {}).get("lastDecision") or {}).get("summary")
                    if summary and (not decisions or decisions[-1] != summary):
                        decisions.append(summary)
                elapsed_h = (datetime.fromisoformat(status["sim_time"]) - start).total_seconds() / 3600
                if elapsed_h >= args.hours:
                    break
                time.sleep(2)
        summary = Table(title=f"summary after {args.hours:.0f} simulated hours")
        summary.add_column("decision")
        for line in decisions:
            summary.add_row(line)
        Console().print(summary)
        final = ideps[0].get("status", {}) if ideps else {}
        Console().print(
            f"final: regions {final.get('regions')}, $/Mtok {final.get('cost', {}).get('usdPerMillionTokens')}, "
            f"J/token {final.get('cost', {}).get('joulesPerToken')}"
        )
    finally:
        operator.terminate()
        operator.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
