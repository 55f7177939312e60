"""A hub, member clusters, price feeds and metrics, all fakes, wired to a real OperatorService."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from gridshift.actuation.members import MemberCluster
from gridshift.api import GPUProfile, RegionalCluster
from gridshift.api.regional_cluster import EnergyUnit
from gridshift.hub.client import ObjectRef
from gridshift.planner.profiles import PerformanceModel
from gridshift.profiles_catalog import performance_model
from gridshift.service.observe import Sources
from gridshift.service.operator import OperatorService
from gridshift.service.state import CycleReport
from gridshift.settings import OperatorSettings
from gridshift.signals.carbon import CarbonInterval
from gridshift.signals.carbon_service import ManagedCarbonFeed
from gridshift.signals.metrics import MetricsSource
from gridshift.signals.price_service import ManagedPriceFeed
from gridshift.signals.prices import PriceInterval, PriceKind
from gridshift.testing import FakeCarbonFeed, FakeHub, FakeMemberCluster, FakeMetricsSource, FakePriceFeed
from tests.conftest import REPO_ROOT

H100 = "NVIDIA-H100-80GB-HBM3"
T0 = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)
WORKLOADS = "gridshift-workloads"
"""RegionalCluster.workloadNamespace's default: where every tenant's replicas go in these tests."""


def example_profile() -> Any:
    doc = yaml.safe_load((REPO_ROOT / "examples" / "gpuprofile-llama3-8b-h100.yaml").read_text())
    return performance_model(GPUProfile.model_validate(doc))


def deployment_body(name: str = "chat", *, mode: str = "Auto", rps: float = 20.0, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "gridshift.dev/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": name, "namespace": "ml", "uid": f"uid-{name}", "generation": 1},
        "spec": {
            "model": {"servedName": name, "source": "meta-llama/Meta-Llama-3-8B-Instruct"},
            "replica": {"gpuTypes": [H100]},
            "slo": {"ttftP95Ms": 500, "tpotP95Ms": 50},
            "capacity": {"minReplicas": 1, "maxReplicas": 16},
            "migration": {"mode": mode, "paybackHorizonHours": 6},
            "demand": {"source": "Static", "requestsPerSecond": rps, "meanPromptTokens": 1000, "meanOutputTokens": 200},
            **spec,
        },
    }
    return body


def cluster_body(name: str, pue: float = 1.2) -> dict[str, Any]:
    return {
        "apiVersion": "gridshift.dev/v1alpha1",
        "kind": "RegionalCluster",
        "metadata": {"name": name},
        "spec": {
            "region": name,
            "kubeconfigSecretRef": {"name": f"kc-{name}", "key": "kubeconfig"},
            "pue": pue,
            "offerings": [{"gpuType": H100, "hourlyCost": {"amount": 2.0, "currency": "USD"}}],
            "priceFeed": {"type": "static", "currency": "USD", "unit": "MWh", "static": {"price": 50}},
        },
    }


@dataclass
class ServiceHarness:
    """Fakes around one OperatorService; `prices` maps cluster -> USD/MWh (settable per hour), unless
    `price_series` gives a cluster its own intervals (e.g. a recorded day in 15-minute steps)."""

    clusters: list[str]
    gpus_per_cluster: int = 16
    settings: OperatorSettings = field(
        default_factory=lambda: OperatorSettings(revalidate_delay_seconds=0, plan_interval_seconds=60)
    )
    now: datetime = T0
    prices: dict[str, float] = field(default_factory=dict)
    identity: str = "op-1"
    price_series: dict[str, list[PriceInterval]] = field(default_factory=dict)
    carbon: dict[str, float] = field(default_factory=dict)
    """Cluster -> grid intensity now, gCO2/kWh (settable); clusters named here get a carbonFeed."""
    profiles: list[PerformanceModel] = field(default_factory=lambda: [example_profile()])
    """The operator's default profiles (the shipped catalog's in production)."""

    def __post_init__(self) -> None:
        self.hub = FakeHub()
        self.members = {c: FakeMemberCluster(c, gpus={H100: self.gpus_per_cluster}) for c in self.clusters}
        self.metrics = FakeMetricsSource()
        self.feeds: dict[str, FakePriceFeed] = {}
        self.deployments: dict[str, dict[str, Any]] = {}
        self.cluster_bodies = {c: cluster_body(c) for c in self.clusters}
        self.carbon_feeds: dict[str, FakeCarbonFeed] = {}
        for c in self.carbon:
            self.cluster_bodies[c]["spec"]["carbonFeed"] = {
                "type": "static",
                "static": {"gPerKwh": self.carbon[c]},
                "refreshSeconds": 60,
                "staleAfterSeconds": 600,
            }
        self.hub.clusters = list(self.cluster_bodies.values())
        for c in self.clusters:
            self.hub.secrets[("gridshift-system", f"kc-{c}")] = {"kubeconfig": f"kubeconfig of {c}"}
            self.prices.setdefault(c, 50.0)
        # As an earlier operator's shutdown leaves it: the first cycle leads (an absent Lease waits the duration).
        self.hub.leave_released_lease("gridshift-leader", "gridshift-system")
        self.service = self.make_service(self.identity)

    def make_service(self, identity: str) -> OperatorService:
        def member(name: str, kubeconfig: str) -> MemberCluster:
            assert kubeconfig == f"kubeconfig of {name}"
            return self.members[name]

        def metrics(url: str) -> MetricsSource:
            return self.metrics

        def feed(name: str, cluster: RegionalCluster) -> ManagedPriceFeed:
            fake = FakePriceFeed(name, currency="USD")

            def hourly(now: datetime) -> list[PriceInterval]:
                start = now.replace(minute=0, second=0, microsecond=0)
                return [
                    PriceInterval(
                        start + timedelta(hours=h),
                        start + timedelta(hours=h + 1),
                        self.prices[name],
                        "USD",
                        EnergyUnit.MWH,
                        PriceKind.ACTUAL,
                    )
                    for h in range(24)
                ]

            fake.serve(self.price_series.get(name) or hourly)
            self.feeds[name] = fake
            return ManagedPriceFeed(
                fake,
                currency="USD",
                fx_to_usd=1.0,
                refresh_seconds=0,
                stale_after_seconds=7200,
                clock=lambda: self.now,
                sleep=lambda s: None,
            )

        def carbon_feed(name: str, cluster: RegionalCluster) -> ManagedCarbonFeed:
            fake = FakeCarbonFeed(name)

            def hourly(now: datetime) -> list[CarbonInterval]:
                start = now.replace(minute=0, second=0, microsecond=0)
                return [
                    CarbonInterval(
                        start + timedelta(hours=h), start + timedelta(hours=h + 1), self.carbon[name], fake.basis
                    )
                    for h in range(24)
                ]

            fake.serve(hourly)
            self.carbon_feeds[name] = fake
            spec = cluster.spec.carbon_feed
            assert spec is not None
            return ManagedCarbonFeed(
                fake,
                basis=fake.basis,
                refresh_seconds=spec.refresh_seconds,
                stale_after_seconds=spec.stale_after_seconds,
                clock=lambda: self.now,
                sleep=lambda s: None,
            )

        sources = Sources(
            member,
            metrics,
            feed,
            default_profiles=self.profiles,
            # Prometheus is read at the cycle's time (each reading's rate window ends then), as it is in production,
            # where both are the wall clock: measured request mixes gather windows that do not overlap by it.
            metrics_clock=lambda: self.now,
            carbon_feed_factory=carbon_feed,
        )
        return OperatorService(
            self.settings,
            self.hub,
            sources,
            clock=lambda: self.now,
            identity=identity,
            # The Lease is judged on each process's own monotonic clock: here, the simulated one.
            monotonic=lambda: (self.now - T0).total_seconds(),
        )

    def add(self, body: dict[str, Any]) -> None:
        self.deployments[body["metadata"]["name"]] = body
        meta = body["metadata"]
        self.hub.deployments[(meta["namespace"], meta["name"])] = meta["uid"]

    def cycle(self, service: OperatorService | None = None, advance: timedelta = timedelta(minutes=1)) -> CycleReport:
        """One planning cycle; stored status is fed back into the bodies, as kopf's index would."""
        self.now += advance
        service = service or self.service
        report = service.run_cycle(list(self.deployments.values()), list(self.cluster_bodies.values()), [])
        for name, body in self.deployments.items():
            meta = body["metadata"]  # the object's own uid: one created again under its name has its own status
            stored = self.hub.statuses.get(ObjectRef("InferenceDeployment", meta["namespace"], name, meta["uid"]))
            if stored is not None:
                body["status"] = copy.deepcopy(stored)
        for name, body in self.cluster_bodies.items():
            stored = self.hub.statuses.get(ObjectRef("RegionalCluster", "", name))
            if stored is not None:
                body["status"] = copy.deepcopy(stored)
        return report

    def replicas(self) -> dict[str, int]:
        """Desired replicas per cluster, summed over deployments."""
        return {c: sum(w.desired for w in m.workloads([WORKLOADS])) for c, m in self.members.items() if m.reachable}

    def ready(self) -> dict[str, int]:
        return {c: sum(w.ready for w in m.workloads([WORKLOADS])) for c, m in self.members.items() if m.reachable}

    def status(self, name: str = "chat") -> dict[str, Any]:
        status: dict[str, Any] = self.deployments[name].get("status", {})
        return status
