"""`make demo`: a week of real 2024 electricity prices, three models, and gridshift moving them.

The week of Monday 6 May 2024: day-ahead prices in Germany (DE-LU) and France (ENTSO-E) and
Texas (ERCOT), with France's midday solar near zero, German evening peaks and an ERCOT spike to
2,221 USD/MWh on the night of 8-9 May, played at 1,440x (a simulated day per real minute) by the
simulated world (`e2e/world`: vLLM replicas with the measured H100 profile, DCGM power, the
ENTSO-E and JSON price APIs) over real control planes (`e2e/cluster/demo-planes.yaml`: a hub and
eu-de, eu-fr, us-tx with kwok H100 nodes). `make demo` starts both (cluster-up, world-up), then
this script:

1. installs the CRDs, the member kubeconfig Secrets and a RegionalCluster per region whose price
   feed is the world's ENTSO-E or JSON endpoint, and starts the operator on the world's clock;
2. applies three InferenceDeployments, each with a home region (its `preferredRegions`), and
   drives their load along a daily curve, with a launch-day surge for one of them;
3. prints what happens as it happens: decisions (scale with load, cheaper placement), each
   make-before-break step of a move, price spikes as soon as they are published; on a terminal
   a live table as well, elsewhere a status line per simulated half day;
4. ends with the energy cost of what gridshift did against two references computed from the same
   measured replica power: every replica at its home region ("staying home"), and every replica
   at the cheapest region it may use, hour by hour, moved for free ("best possible"), and the
   share of that possible saving gridshift captured. It exits non-zero if the week showed no
   move or no scaling, or if the operator died.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "e2e" / "cluster"))
sys.path.insert(0, str(REPO))
from e2e.world.prices import ZONES, PriceBook  # noqa: E402
from e2e.world.profiles import H100, ProfileCatalog  # noqa: E402
from gscluster.ports import free_ports  # noqa: E402  (the cluster helpers live beside this script)

STATE = REPO / ".gridshift"
NAMESPACE = "gridshift-system"
TEAM_NAMESPACE = "ml-serving"
WORKLOAD_NAMESPACE = "gridshift-workloads"
PURPOSE = "gridshift.dev/secret-purpose"
START = datetime(2024, 5, 6, tzinfo=UTC)
PUE = 1.25
EUR_USD = 1.08
MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"
OPERATOR_SILENCE_S = 60.0
"""Real seconds after the deployments are applied within which the operator must have written a status."""


@dataclass(frozen=True)
class Region:
    name: str
    zone: str
    """Market of the world's price server."""

    @property
    def fx_to_usd(self) -> float:
        return EUR_USD if ZONES[self.zone].currency == "EUR" else 1.0


REGIONS = (Region("eu-de", "DE-LU"), Region("eu-fr", "FR"), Region("us-tx", "US-TEX-ERCO"))
REGION = {r.name: r for r in REGIONS}


@dataclass(frozen=True)
class Workload:
    """One demo deployment: where it may run, where it lived before gridshift, and its load."""

    name: str
    trace: str
    home: str
    allowed: tuple[str, ...]
    mean_rps: float
    peak_hour_utc: float
    swing: float
    """Daily swing of the load around its mean (0: flat)."""
    prompt_tokens: int
    output_tokens: int
    ttft_ms: int
    surge: tuple[datetime, datetime, float] | None = None
    """A period of extra load: start, end, factor."""

    def rate(self, t: datetime) -> float:
        hour = t.hour + t.minute / 60
        daily = 1 + self.swing * math.cos(2 * math.pi * (hour - self.peak_hour_utc) / 24)
        return round(self.mean_rps * daily * self.surge_factor(t), 2)

    def surge_factor(self, t: datetime) -> float:
        """1 outside the surge; inside, up to its factor, ramped over its first and last three hours."""
        if self.surge is None or not self.surge[0] <= t < self.surge[1]:
            return 1.0
        start, end, factor = self.surge
        ramp = min((t - start).total_seconds(), (end - t).total_seconds()) / 10800
        return 1.0 + (factor - 1.0) * min(1.0, ramp)

    @property
    def key(self) -> str:
        return f"{TEAM_NAMESPACE}.{self.name}"


WORKLOADS = (
    # A chat assistant served worldwide; its launch on Wednesday ramps its traffic up over three hours.
    Workload(
        "chat", "conv", "eu-de", ("eu-de", "eu-fr", "us-tx"), 3.0, 13.0, 0.5, 1155, 211, 500,
        surge=(datetime(2024, 5, 8, 11, tzinfo=UTC), datetime(2024, 5, 8, 23, tzinfo=UTC), 2.2),
    ),
    # EU customer support: its data must stay in the EU.
    Workload("support-eu", "conv", "eu-de", ("eu-de", "eu-fr"), 2.0, 10.0, 0.6, 1155, 211, 500),
    # An assistant for a team in Texas, busiest in the Texan afternoon; it may run in Europe too.
    Workload("assist-us", "conv", "us-tx", ("us-tx", "eu-fr", "eu-de"), 2.5, 20.0, 0.6, 1155, 211, 500),
)  # fmt: skip


# ---------------------------------------------------------------- the cluster side


@functools.cache
def kubectl_binary() -> str:
    return (
        subprocess.run(
            [sys.executable, str(REPO / "e2e" / "cluster" / "cluster.py"), "bin-dir"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        + "/kubectl"
    )


def kubectl(*args: str, input: str | None = None, check: bool = True, cluster: str = "hub") -> str:
    proc = subprocess.run(
        [kubectl_binary(), "--kubeconfig", str(STATE / "kubeconfigs" / f"{cluster}.yaml"), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and proc.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} on {cluster} failed:\n{proc.stderr}")
    return proc.stdout


def get_json(url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def regional_cluster(region: Region, world: dict[str, Any]) -> dict[str, Any]:
    if ZONES[region.zone].eic:
        token = {"name": "entsoe-token", "namespace": NAMESPACE, "key": "token"}
        feed: dict[str, Any] = {
            "type": "entsoe",
            "currency": "EUR",
            "fxToUsd": region.fx_to_usd,
            "entsoe": {"areaEic": ZONES[region.zone].eic, "tokenSecretRef": token, "endpoint": world["entsoe"]},
        }
    else:
        feed = {
            "type": "httpJson",
            "currency": "USD",
            "fxToUsd": 1.0,
            "httpJson": {"url": f"{world['prices']}/json/{region.zone}"},
        }
    return {
        "apiVersion": "gridshift.dev/v1alpha1",
        "kind": "RegionalCluster",
        "metadata": {"name": region.name},
        "spec": {
            "region": region.name,
            "kubeconfigSecretRef": {"name": f"kubeconfig-{region.name}", "namespace": NAMESPACE, "key": "kubeconfig"},
            "workloadNamespace": WORKLOAD_NAMESPACE,
            "pue": PUE,
            "offerings": [{"gpuType": H100}],
            # Day-ahead prices are a day old at most; refreshed every simulated 30 min.
            "priceFeed": {"staleAfterSeconds": 93600, "refreshSeconds": 1800, **feed},
            "prometheusUrl": world["prometheus"],
        },
    }


def inference_deployment(workload: Workload) -> dict[str, Any]:
    return {
        "apiVersion": "gridshift.dev/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": workload.name, "namespace": TEAM_NAMESPACE},
        "spec": {
            "model": {"servedName": workload.name, "source": MODEL},
            "engine": {"image": "vllm/vllm-openai:v0.11.0"},
            "replica": {"gpusPerReplica": 1, "gpuTypes": [H100], "cpu": "4", "memory": "32Gi"},
            "slo": {"ttftP95Ms": workload.ttft_ms, "tpotP95Ms": 50},
            "capacity": {"minReplicas": 1, "maxReplicas": 8},
            "placement": {"allowedRegions": list(workload.allowed), "preferredRegions": [workload.home]},
            # A new replica takes a simulated half hour to be Ready here (1.25 real seconds at 1,440x).
            "migration": {
                "mode": "Auto",
                "maxConcurrentMoves": 2,
                "paybackHorizonHours": 6,
                "readyTimeoutSeconds": 14400,
            },
            "demand": {
                "source": "Prometheus",
                "meanPromptTokens": workload.prompt_tokens,
                "meanOutputTokens": workload.output_tokens,
            },
        },
    }


def secret(name: str, **data: str) -> str:
    args = ["create", "secret", "generic", name, "-n", NAMESPACE, "--dry-run=client", "-o", "yaml"]
    args += [
        f"--from-{'file' if key.startswith('file:') else 'literal'}={key.removeprefix('file:')}={value}"
        for key, value in data.items()
    ]
    return kubectl(*args)


def install(world: dict[str, Any], say: Any) -> None:
    say("1/3 CRDs, member kubeconfig Secrets and RegionalClusters (eu-de, eu-fr: ENTSO-E; us-tx: ERCOT as JSON)")
    kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    for ns in (NAMESPACE, TEAM_NAMESPACE):
        kubectl("create", "namespace", ns, check=False)
    documents = [
        secret(f"kubeconfig-{r.name}", **{"file:kubeconfig": str(STATE / "kubeconfigs" / f"{r.name}.yaml")})
        for r in REGIONS
    ]
    documents.append(secret("entsoe-token", token="demo-token"))
    kubectl("apply", "-f", "-", input="---\n".join(documents))
    # gridshift reads a Secret only for the purpose its label names (docs/security.md).
    for r in REGIONS:
        kubectl(
            "label", "secret", f"kubeconfig-{r.name}", "-n", NAMESPACE, f"{PURPOSE}=member-kubeconfig", "--overwrite"
        )
        # The member cluster's administrator creates the workload namespace (charts/gridshift-member).
        namespace = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": WORKLOAD_NAMESPACE,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            },
        }
        kubectl("apply", "-f", "-", input=yaml.safe_dump(namespace), cluster=r.name)
    kubectl("label", "secret", "entsoe-token", "-n", NAMESPACE, f"{PURPOSE}=price-feed-token", "--overwrite")
    kubectl(
        "apply", "--server-side", "-f", "-", input=yaml.safe_dump_all([regional_cluster(r, world) for r in REGIONS])
    )


def start_operator(world: dict[str, Any], log: Path, say: Any) -> subprocess.Popen[bytes]:
    say(f"2/3 the operator, reading the world's clock (log: {log.relative_to(REPO)})")
    env = dict(
        os.environ,
        KUBECONFIG=str(STATE / "kubeconfigs" / "hub.yaml"),
        GRIDSHIFT_NAMESPACE=NAMESPACE,
        GRIDSHIFT_CLOCK_URL=f"{world['control']}/clock",
        # Real seconds: 3 s is 72 simulated minutes at 1,440x, about one price hour per cycle.
        GRIDSHIFT_PLAN_INTERVAL_SECONDS="3",
        GRIDSHIFT_PLANNER_TIME_BUDGET_SECONDS="2",
        GRIDSHIFT_REVALIDATE_DELAY_SECONDS="0",
        # Simulated seconds: the kwok pods turn Ready after about half an hour of the week.
        GRIDSHIFT_COLD_START_SECONDS="1800",
        GRIDSHIFT_METRICS_PORT=str(free_ports(1)[0]),
        PYTHONUNBUFFERED="1",
        # One Prometheus holds every region; rates over 10 real seconds (the shortest window the
        # operator accepts) = 4 simulated hours at 1,440x.
        GRIDSHIFT_METRICS_CLUSTER_LABEL="cluster",
        GRIDSHIFT_METRICS_WINDOW_SECONDS="10",
    )
    kopf = Path(sys.executable).parent / "kopf"
    return subprocess.Popen(
        [str(kopf), "run", "-m", "gridshift.shell.handlers", "--all-namespaces", "--standalone"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )


# ---------------------------------------------------------------- prices and the ledger


class Prices:
    """USD/kWh per region and hour, from the same CSV the world's price server replays."""

    def __init__(self) -> None:
        self.book = PriceBook()

    def usd_per_kwh(self, region: str, t: datetime) -> float:
        zone = REGION[region].zone
        hour = t.replace(minute=0, second=0, microsecond=0)
        prices = self.book.prices[zone]
        while hour not in prices:  # a missing hour: the last known one
            hour -= timedelta(hours=1)
        return prices[hour] * REGION[region].fx_to_usd / 1000.0

    def published_until(self, region: str, now: datetime) -> datetime:
        return self.book.published_until(ZONES[REGION[region].zone], now)


@dataclass
class Costs:
    gridshift: float = 0.0
    home: float = 0.0
    best: float = 0.0
    kwh: float = 0.0


@dataclass
class Ledger:
    """Energy cost of the measured replica power, priced where it ran, at home, and at the cheapest
    allowed region of each hour (PUE included)."""

    prices: Prices
    costs: dict[str, Costs] = field(default_factory=lambda: {w.name: Costs() for w in WORKLOADS})

    def add(self, start: datetime, end: datetime, watts: dict[str, dict[str, float]]) -> None:
        """`watts[deployment][cluster]` held from `start` to `end`, split at hour boundaries."""
        t = start
        while t < end:
            step_end = min(end, t.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
            hours = (step_end - t).total_seconds() / 3600
            for workload in WORKLOADS:
                per_cluster = watts.get(workload.name, {})
                kwh = sum(per_cluster.values()) / 1000 * hours * PUE
                cost = self.costs[workload.name]
                cost.kwh += kwh
                cost.gridshift += sum(
                    w / 1000 * hours * PUE * self.prices.usd_per_kwh(c, t) for c, w in per_cluster.items()
                )
                cost.home += kwh * self.prices.usd_per_kwh(workload.home, t)
                cost.best += kwh * min(self.prices.usd_per_kwh(c, t) for c in workload.allowed)
            t = step_end


# ---------------------------------------------------------------- what happens


@dataclass
class Watcher:
    """Turns the statuses on the hub into events: decisions, moves (with their make-before-break
    steps as they run) and scaling with load."""

    decisions: dict[str, str] = field(default_factory=dict)
    steps: dict[str, dict[int, str]] = field(default_factory=dict)
    settled: dict[str, dict[str, int]] = field(default_factory=dict)
    """Each deployment's placement when no migration was in flight."""
    moves: list[str] = field(default_factory=list)
    scalings: list[str] = field(default_factory=list)
    opened: dict[str, dict[str, int]] = field(default_factory=dict)
    """The placement before a scale-up that opened a region: a scale-down that then leaves another
    region completes a move made as two placements (seen between polls without its steps)."""
    spikes_told: set[tuple[str, str]] = field(default_factory=set)
    """(region, day) of the spikes already told."""

    def events(self, now: datetime, ideps: list[dict[str, Any]]) -> list[str]:
        out: list[str] = []
        for idep in ideps:
            name = idep["metadata"]["name"]
            status = idep.get("status") or {}
            out += self._decision(now, name, status.get("lastDecision") or {})
            migration = status.get("migration") or []
            if migration:
                out += self._steps(now, name, migration)
            else:
                self.steps.pop(name, None)
                out += self._settled(now, name, status)
        return out

    def _decision(self, now: datetime, name: str, decision: dict[str, Any]) -> list[str]:
        stamp = f"{decision.get('time')} {decision.get('reason')}"
        if not decision or self.decisions.get(name) == stamp:
            return []
        self.decisions[name] = stamp
        if decision.get("reason") in ("NoChange", "ScaleUp", "ScaleDown", None):
            return []  # scaling is told when it is done, with the load that caused it
        # The summary is "<reason>: <target placement>"; the saving is a figure of its own, as decided.
        saving = decision.get("estimatedSavingUsdPerHour")
        told = ""
        if saving:
            told = (
                f"; saves {saving:.3f} USD/h against keeping the current placement"
                if saving > 0
                else f"; costs {-saving:.3f} USD/h more than keeping the current placement"
            )
        return [f"{clock(now)}  {name:<12} decides {decision['summary']}{told}"]

    def _steps(self, now: datetime, name: str, steps: list[dict[str, Any]]) -> list[str]:
        out = []
        if name not in self.steps:
            ups = {s["cluster"] for s in steps if s["action"] == "ScaleUp"}
            downs = {s["cluster"] for s in steps if s["action"] == "ScaleDown"} - ups
            if ups and downs:
                out.append(
                    f"{clock(now)}  {name:<12} MOVE {', '.join(sorted(downs))} -> {', '.join(sorted(ups))}, "
                    f"make-before-break in {len(steps)} steps:"
                )
            self.steps[name] = {} if (ups and downs) else {-1: "scaling"}
        seen = self.steps[name]
        if -1 in seen:
            return out  # a plain scale-up: told when it is done
        for step in steps:
            state = f"{step['action']} {step['cluster']} -> {step['replicas']} {step['state']}"
            if seen.get(step["index"]) != state and step["state"] in ("Running", "Done", "Failed", "RolledBack"):
                seen[step["index"]] = state
                routing = ", ".join(f"{w['cluster']} {w['weight']}%" for w in step.get("routing", []))
                what = {
                    "ScaleUp": f"start replicas in {step['cluster']} ({step['replicas']} there)",
                    "WaitReady": f"wait until they are Ready in {step['cluster']}",
                    "ShiftRouting": f"shift traffic: {routing}",
                    "ScaleDown": f"stop replicas in {step['cluster']} ({step['replicas']} left there)",
                }.get(step["action"], step["action"])
                out.append(f"{clock(now)}  {name:<12}   {step['index'] + 1}. {what} [{step['state']}]")
        return out

    def _settled(self, now: datetime, name: str, status: dict[str, Any]) -> list[str]:
        current = {p["cluster"]: p["desired"] for p in status.get("placements", []) if p.get("desired")}
        before = self.settled.get(name)
        if not current or current == before:
            return []
        self.settled[name] = current
        text = ", ".join(f"{c} x{n}" for c, n in sorted(current.items()))
        if before is None:
            return [f"{clock(now)}  {name:<12} placed: {text}"]
        gained = sorted(c for c in current if current[c] > before.get(c, 0))
        lost = sorted(c for c in before if before[c] > current.get(c, 0))
        opened = self.opened.pop(name, None)
        if not gained and lost and opened is not None and set(current) != set(opened):
            # Up in a new region, then down in the old one: a make-before-break move in two placements.
            gained = sorted(set(current) - set(opened))
            lost = sorted(set(opened) - set(current))
            if gained and lost and self.scalings:
                self.scalings.pop()  # its first half was told as a scale-up
        elif gained and not lost and any(c not in before for c in gained):
            self.opened[name] = before
        if gained and lost:
            self.moves.append(f"{clock(now)} {name}: {', '.join(lost)} -> {', '.join(gained)}")
            return [f"{clock(now)}  {name:<12} MOVED {', '.join(lost)} -> {', '.join(gained)}: now {text}"]
        rps = (status.get("observedSlo") or {}).get("requestsPerSecond")
        load = f" ({rps:.1f} req/s measured)" if rps is not None else ""
        total_before, total = sum(before.values()), sum(current.values())
        self.scalings.append(f"{clock(now)} {name}: {total_before} -> {total}{load}")
        verb = "SCALED UP" if total > total_before else "SCALED DOWN"
        return [f"{clock(now)}  {name:<12} {verb} {total_before} -> {total} replicas with the load{load}: {text}"]

    def spikes(self, now: datetime, end: datetime, prices: Prices) -> list[str]:
        """Hours of the demo priced far above the week's normal that the market has just published."""
        out = []
        for region in REGIONS:
            until = min(end, prices.published_until(region.name, now))
            hour = now.replace(minute=0, second=0, microsecond=0)
            while hour < until:
                price = prices.usd_per_kwh(region.name, hour) * 1000
                told = (region.name, f"{hour:%Y-%m-%d}")
                if price > 300 and told not in self.spikes_told:
                    self.spikes_told.add(told)
                    out.append(
                        f"{clock(now)}  prices       {region.name} day-ahead published: {price:,.0f} USD/MWh "
                        f"at {clock(hour)} (the week's median is under 100)"
                    )
                hour += timedelta(hours=1)
        return out


def clock(t: datetime) -> str:
    return t.strftime("%a %m-%d %H:%M")


# ---------------------------------------------------------------- screen


def sample_watts(
    world_status: dict[str, Any], ideps: list[dict[str, Any]], idle_watts: float
) -> dict[str, dict[str, float]]:
    """Measured power of each deployment's serving replicas per cluster, plus the loaded-idle power of
    replicas that hold GPUs but are not serving yet (a move pays for those)."""
    watts: dict[str, dict[str, float]] = {}
    serving: dict[tuple[str, str], int] = {}
    for replica in world_status["replicas"]:
        name = replica["deployment"].split(".", 1)[-1]
        per_cluster = watts.setdefault(name, {})
        per_cluster[replica["cluster"]] = per_cluster.get(replica["cluster"], 0.0) + replica["powerWatts"]
        serving[(name, replica["cluster"])] = serving.get((name, replica["cluster"]), 0) + 1
    for idep in ideps:
        name = idep["metadata"]["name"]
        for placement in (idep.get("status") or {}).get("placements", []):
            starting = max(0, placement.get("desired", 0) - serving.get((name, placement["cluster"]), 0))
            if starting:
                per_cluster = watts.setdefault(name, {})
                per_cluster[placement["cluster"]] = per_cluster.get(placement["cluster"], 0.0) + starting * idle_watts
    return watts


def status_table(
    now: datetime, prices: Prices, ideps: list[dict[str, Any]], ledger: Ledger, events: list[str]
) -> Group:
    regions = Table(title=f"{clock(now)} UTC (simulated, 1,440x)", title_justify="left", expand=True)
    regions.add_column("region")
    regions.add_column("price USD/MWh", justify="right")
    for idep in ideps:
        regions.add_column(idep["metadata"]["name"], justify="right")
    for region in REGIONS:
        row = [region.name, f"{prices.usd_per_kwh(region.name, now) * 1000:,.1f}"]
        for idep in ideps:
            placed = {p["cluster"]: p for p in (idep.get("status") or {}).get("placements", [])}
            p = placed.get(region.name)
            row.append("" if not p or not p.get("desired") else f"{p.get('ready', 0)}/{p['desired']}")
        regions.add_row(*row)
    deployments = Table(expand=True)
    for column in ("deployment", "home", "req/s", "USD/Mtok", "energy cost so far: gridshift / staying home"):
        deployments.add_column(column)
    for idep in ideps:
        name = idep["metadata"]["name"]
        status = idep.get("status") or {}
        cost = ledger.costs[name]
        deployments.add_row(
            name,
            next(w.home for w in WORKLOADS if w.name == name),
            f"{(status.get('observedSlo') or {}).get('requestsPerSecond') or 0:.1f}",
            f"{(status.get('cost') or {}).get('usdPerMillionTokens') or 0:.4f}",
            f"{cost.gridshift:,.2f} / {cost.home:,.2f} USD",
        )
    recent = Table(title="what happened (newest last)", title_justify="left", show_header=False, expand=True)
    recent.add_column("event")
    for line in events[-10:]:
        recent.add_row(line)
    return Group(regions, deployments, recent)


def status_line(now: datetime, prices: Prices, ideps: list[dict[str, Any]]) -> str:
    price = " | ".join(f"{r.name} {prices.usd_per_kwh(r.name, now) * 1000:,.0f}" for r in REGIONS)
    placed = []
    for idep in ideps:
        where = ", ".join(
            f"{p['cluster']} x{p['desired']}"
            for p in (idep.get("status") or {}).get("placements", [])
            if p.get("desired")
        )
        placed.append(f"{idep['metadata']['name']}: {where or '-'}")
    return f"{clock(now)}  status       USD/MWh {price}  ||  {'  '.join(placed)}"


# ---------------------------------------------------------------- the run


def summary(ledger: Ledger, watcher: Watcher, days: float, unserved: float) -> tuple[Table, dict[str, Any]]:
    table = Table(
        title=f"Energy cost of {days:g} days from {START:%a %d %b %Y}, real day-ahead prices, PUE {PUE} "
        "(the same measured replica power in every column)",
        title_justify="left",
    )
    for column in (
        "deployment",
        "home",
        "staying home",
        "gridshift",
        "best possible",
        "saved",
        "of the possible saving",
    ):
        table.add_column(column, justify="left" if column in ("deployment", "home") else "right")
    total = Costs()
    report: dict[str, Any] = {"deployments": {}}
    for workload in WORKLOADS:
        cost = ledger.costs[workload.name]
        for attr in ("gridshift", "home", "best", "kwh"):
            setattr(total, attr, getattr(total, attr) + getattr(cost, attr))
        table.add_row(workload.name, workload.home, *_cost_cells(cost))
        report["deployments"][workload.name] = _cost_json(cost) | {"home": workload.home}
    table.add_row("all", "", *_cost_cells(total), style="bold")
    report["total"] = _cost_json(total)
    report["moves"] = watcher.moves
    report["scalings"] = watcher.scalings
    report["unservedRequests"] = unserved
    table.caption = (
        "staying home: each replica-hour priced at the deployment's home region; best possible: at the cheapest "
        "region it may use in each hour, as if moves were free and instant (a bound, not a plan anyone can follow). "
        f"Moves made: {len(watcher.moves)} (each make-before-break); scalings with load: {len(watcher.scalings)}."
    )
    table.caption_justify = "left"
    return table, report


def _cost_cells(cost: Costs) -> list[str]:
    possible = cost.home - cost.best
    captured = "-" if possible <= 1e-9 else f"{100 * (cost.home - cost.gridshift) / possible:.0f} %"
    saved = cost.home - cost.gridshift
    share = "" if cost.home <= 0 else f" ({100 * saved / cost.home:.0f} %)"
    return [
        f"{cost.home:,.2f} USD",
        f"{cost.gridshift:,.2f} USD",
        f"{cost.best:,.2f} USD",
        f"{saved:,.2f} USD{share}",
        captured,
    ]


def _cost_json(cost: Costs) -> dict[str, float]:
    possible = cost.home - cost.best
    return {
        "stayHomeUsd": round(cost.home, 4),
        "gridshiftUsd": round(cost.gridshift, 4),
        "bestPossibleUsd": round(cost.best, 4),
        "kwh": round(cost.kwh, 3),
        "capturedShare": round((cost.home - cost.gridshift) / possible, 4) if possible > 1e-9 else 0.0,
    }


class Screen:
    """A live table on a terminal; elsewhere plain lines, one per event and a status line per half day."""

    def __init__(self, plain: bool) -> None:
        self.plain = plain
        # Off a terminal rich would assume 80 columns and wrap the summary table into unreadable cells.
        self.console = Console(
            force_terminal=None if not plain else False, soft_wrap=plain, highlight=False, width=150 if plain else None
        )
        self.events: list[str] = []
        self.live: Live | None = None
        self.next_status: datetime | None = None

    def say(self, line: str) -> None:
        if self.live is not None:
            self.live.console.print(line)
        else:
            self.console.print(line)

    def __enter__(self) -> Screen:
        if not self.plain:
            self.live = Live(console=self.console, refresh_per_second=2, transient=True)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)
            self.live = None

    def update(
        self, now: datetime, prices: Prices, ideps: list[dict[str, Any]], ledger: Ledger, new: Iterable[str]
    ) -> None:
        for line in new:
            self.events.append(line)
            if self.plain:
                self.console.print(line)
        if self.live is not None:
            self.live.update(status_table(now, prices, ideps, ledger, self.events))
        elif self.next_status is None or now >= self.next_status:
            self.console.print(status_line(now, prices, ideps))
            self.next_status = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=12 - now.hour % 12)


def apply_loads(world: dict[str, Any], now: datetime, sent: dict[str, float]) -> None:
    for workload in WORKLOADS:
        rate = workload.rate(now)
        if abs(rate - sent.get(workload.name, -1.0)) > 0.05 * max(rate, 0.1):
            get_json(
                f"{world['control']}/load", {"deployment": workload.key, "trace": workload.trace, "ratePerSecond": rate}
            )
            sent[workload.name] = rate


@dataclass
class Pace:
    """Keeps the clock at the target speed while the world's fleet keeps up, and slows it while the
    fleet trails (a busy machine): run ahead, and the operator would read less load than there is."""

    target: float
    slowest: float = math.inf
    told_at: float = 0.0

    slowed_at: float = -math.inf

    SLOW_DOWN_LAG_S = 1800.0
    """Simulated seconds the fleet may trail the clock before the clock slows."""
    SPEED_UP_LAG_S = 600.0
    SLOW_DOWN_EVERY_S = 10.0
    """Real seconds a slow-down gets to shrink the lag before the next: polled every second, the clock
    would otherwise fall to its floor before the fleet could catch up once."""

    def adjust(self, world: dict[str, Any], status: dict[str, Any]) -> list[str]:
        speed, lag = float(status["speed"]), float(status["lagSimSeconds"])
        wanted = speed
        if lag > self.SLOW_DOWN_LAG_S:
            if time.monotonic() - self.slowed_at < self.SLOW_DOWN_EVERY_S:
                return []
            self.slowed_at = time.monotonic()
            wanted = float(round(max(60.0, speed * 0.7)))
        elif lag < self.SPEED_UP_LAG_S and speed < self.target:
            wanted = float(round(min(self.target, speed * 1.25)))
        if wanted == speed:
            return []
        get_json(f"{world['control']}/clock", {"speed": wanted})
        self.slowest = min(self.slowest, wanted)
        if wanted < speed and time.monotonic() - self.told_at > 30:
            self.told_at = time.monotonic()
            now = datetime.fromisoformat(status["fleetTime"].replace("Z", "+00:00"))
            return [
                f"{clock(now)}  world        the machine is busy: the fleet trails the clock by {lag / 60:.0f} min, "
                f"clock slowed to {wanted:.0f}x"
            ]
        return []


def wait_world() -> dict[str, Any]:
    state_file = STATE / "sim-world.json"
    deadline = time.monotonic() + 60
    while not state_file.exists() or "prometheus" not in json.loads(state_file.read_text() or "{}"):
        if time.monotonic() > deadline:
            raise SystemExit(f"the simulated world did not start: see {STATE / 'sim-world.log'}")
        time.sleep(1)
    world: dict[str, Any] = json.loads(state_file.read_text())
    return world


def run(days: float, speed: float, plain: bool) -> int:
    world = wait_world()
    screen = Screen(plain)
    prices = Prices()
    clock_now = datetime.fromisoformat(get_json(f"{world['control']}/clock")["sim_time"].replace("Z", "+00:00"))
    if abs((clock_now - START).total_seconds()) > 6 * 3600:
        raise SystemExit(
            f"the world's clock reads {clock_now:%Y-%m-%d %H:%M}, expected {START:%Y-%m-%d}: start it with WORLD_START"
        )
    screen.say(
        f"gridshift demo: {days:g} simulated days from {START:%a %d %b %Y}, three models, real day-ahead prices of "
        f"DE-LU, FR (ENTSO-E) and ERCOT; a simulated day every {86400 / speed:.0f} real seconds."
    )
    install(world, screen.say)
    log = STATE / "demo-operator.log"
    operator = start_operator(world, log, screen.say)
    idle_watts = ProfileCatalog().performance(H100, 1).model.idle_power_watts
    ledger, watcher, sent = Ledger(prices), Watcher(), dict[str, float]()
    try:
        screen.say(
            "3/3 " + "; ".join(f"{w.name} (home {w.home}, may run in {', '.join(w.allowed)})" for w in WORKLOADS)
        )
        apply_loads(world, clock_now, sent)
        kubectl(
            "apply", "--server-side", "-f", "-", input=yaml.safe_dump_all([inference_deployment(w) for w in WORKLOADS])
        )
        # The world idled at a low speed while everything was installed; now the week runs.
        pace = Pace(speed)
        get_json(f"{world['control']}/clock", {"speed": speed})
        end = START + timedelta(days=days)
        last: datetime | None = None
        started = time.monotonic()
        with screen:
            while True:
                if operator.poll() is not None:
                    tail = log.read_text(errors="replace").splitlines()[-15:]
                    raise SystemExit("the operator exited:\n" + "\n".join(tail))
                status = get_json(f"{world['control']}/status")
                # The fleet's time: the power read now was drawn then (it trails the clock on a busy machine).
                now = datetime.fromisoformat(status["fleetTime"].replace("Z", "+00:00"))
                ideps = json.loads(kubectl("get", "idep", "-n", TEAM_NAMESPACE, "-o", "json"))["items"]
                if not any(i.get("status") for i in ideps) and time.monotonic() - started > OPERATOR_SILENCE_S:
                    tail = log.read_text(errors="replace").splitlines()[-15:]
                    raise SystemExit(
                        f"the operator wrote no status in {OPERATOR_SILENCE_S:.0f} s; its log ends:\n" + "\n".join(tail)
                    )
                if last is not None and now > last:
                    ledger.add(last, now, sample_watts(status, ideps, idle_watts))
                last = max(last or now, now)
                apply_loads(world, now, sent)
                news = pace.adjust(world, status)
                screen.update(
                    now, prices, ideps, ledger, news + watcher.spikes(now, end, prices) + watcher.events(now, ideps)
                )
                if now >= end:
                    break
                time.sleep(1.0)
        unserved = sum(status.get("unservedRequests", {}).values())
        table, report = summary(ledger, watcher, days, unserved)
        report["realSeconds"] = round(time.monotonic() - started, 1)
        # The world's per-deployment totals: replicas gone since count too, not only those running at the end.
        totals = list(status.get("requests", {}).values())
        report["abandonedRequests"] = round(sum(t["abandoned"] for t in totals))
        report["droppedRequests"] = round(sum(t["dropped"] for t in totals))
        report["slowestSpeed"] = None if math.isinf(pace.slowest) else pace.slowest
        screen.console.print()
        screen.console.print(table)
        (STATE / "demo-summary.json").write_text(json.dumps(report, indent=2) + "\n")
        pacing = (
            f"at {speed:.0f}x throughout"
            if report["slowestSpeed"] is None
            else f"at up to {speed:.0f}x (down to {report['slowestSpeed']:.0f}x while the machine was busy)"
        )
        screen.say(
            f"The week took {report['realSeconds'] / 60:.1f} real minutes, {pacing}. Requests not served: "
            f"{unserved:,.0f} sent to a cluster with no Ready replica, "
            f"{report['abandonedRequests']:,} given up after waiting 2 minutes in a full replica's queue, "
            f"{report['droppedRequests']:,} still in a stopping replica when its grace period ran out."
        )
        screen.say(
            f"(summary also in {(STATE / 'demo-summary.json').relative_to(REPO)}; operator log {log.relative_to(REPO)})"
        )
    finally:
        operator.terminate()
        try:
            operator.wait(timeout=30)
        except subprocess.TimeoutExpired:
            operator.kill()
    missing = [
        what for what, seen in (("a move", watcher.moves), ("a scaling with load", watcher.scalings)) if not seen
    ]
    if missing:
        screen.say(f"demo FAILED: the week showed no {' and no '.join(missing)}")
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--days", type=float, default=7.0, help="simulated days to watch (default 7)")
    parser.add_argument("--speed", type=float, default=1440.0, help="simulated seconds per real second (default 1440)")
    parser.add_argument("--plain", action="store_true", help="plain lines even on a terminal (default when not one)")
    args = parser.parse_args()
    if not 0 < args.days <= 7:
        parser.error("--days must be in (0, 7]: the demo's prices cover the week of 6 May 2024")
    if not 1 <= args.speed <= 5000:
        parser.error("--speed must be in [1, 5000]")
    return run(args.days, args.speed, args.plain or not sys.stdout.isatty())


if __name__ == "__main__":
    sys.exit(main())
