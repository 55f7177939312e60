"""The operator's service with its real adapters (KubeHub, KubeMemberCluster, price feeds) on the real
control planes, one cycle at a time: the hub's objects are read from the API server, as kopf's index
would hold them, and passed to `OperatorService.run_cycle`.

Faster and more exact than a `kopf run` process for the security findings, which are about what the
service does with what it reads; tests/security/test_logs_e2e.py runs the real process as well.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridshift.service.operator import OperatorService
from gridshift.service.state import CycleReport
from gridshift.service.wiring import real_service
from gridshift.settings import OperatorSettings
from tests.e2e.operator_env import (
    MEMBER_WORKLOADS,
    NAMESPACE,
    PURPOSE_LABEL,
    Fleet,
    inference_deployment,
    install_hub,
    wait_until,
)

__all__ = [
    "MEMBER_WORKLOADS",
    "NAMESPACE",
    "PURPOSE_LABEL",
    "SecureWorld",
    "inference_deployment",
    "leave_released_lease",
    "wait_until",
]


@dataclass
class SecureWorld:
    """The hub and member clusters of the session, an OperatorService wired as the chart runs it."""

    planes: Any
    fleet: Fleet
    monkeypatch: pytest.MonkeyPatch
    created: list[tuple[str, ...]] = field(default_factory=list)
    """kubectl delete arguments, run at teardown in reverse order."""
    last_report: CycleReport | None = None

    def service(self, identity: str | None = None, **settings: Any) -> OperatorService:
        """A fresh service (no caches), as a just-started operator process has."""
        self.monkeypatch.setenv("KUBECONFIG", str(self.planes.kubeconfigs[self.planes.hub]))
        defaults: dict[str, Any] = {
            "namespace": NAMESPACE,
            "revalidate_delay_seconds": 0,
            "plan_interval_seconds": 5,
            "planner_time_budget_seconds": 2,
            "cold_start_seconds": 60,
        }
        return real_service(OperatorSettings(**{**defaults, **settings}), identity=identity)

    def bodies(self, kind: str) -> list[dict[str, Any]]:
        return list(json.loads(self.fleet.hub("get", kind, "-A", "-o", "json"))["items"])

    def cycle(self, service: OperatorService) -> CycleReport:
        bodies = (self.bodies("idep"), self.bodies("regionalclusters"), self.bodies("gpuprofiles"))
        self.last_report = service.run_cycle(*bodies)
        return self.last_report

    def cycles_until(
        self, service: OperatorService, condition: Callable[[], Any], what: str, timeout: float = 90
    ) -> Any:
        def step() -> Any:
            self.cycle(service)
            return condition()

        return wait_until(step, timeout, what, every=0.5)

    @property
    def report(self) -> CycleReport:
        assert self.last_report is not None
        return self.last_report

    def hub_namespace(self, name: str) -> str:
        self.fleet.hub("create", "namespace", name, check=False)
        self.created.append(("namespace", name, "--wait=false"))
        return name

    def deploy(self, body: dict[str, Any]) -> dict[str, Any]:
        self.fleet.apply_hub(body)
        meta = body["metadata"]
        self.created.append(("idep", "-n", meta["namespace"], meta["name"], "--wait=false"))
        return body

    def status(self, namespace: str, name: str) -> dict[str, Any]:
        got = json.loads(self.fleet.hub("get", "idep", "-n", namespace, name, "-o", "json"))
        return dict(got.get("status") or {})

    def member_deployments(self, region: str, namespace: str = MEMBER_WORKLOADS) -> list[dict[str, Any]]:
        out = self.planes.kubectl(region, "get", "deployments", "-n", namespace, "-o", "json").stdout
        return list(json.loads(out)["items"])

    def owned_replicas(self, namespace: str, name: str) -> dict[str, int]:
        """Desired replicas per region of the member Deployments whose owner annotation names namespace/name."""
        out = {}
        for region in self.planes.regions:
            out[region] = sum(
                int(d["spec"].get("replicas") or 0)
                for d in self.member_deployments(region)
                if (d["metadata"].get("annotations") or {}).get("gridshift.dev/owner") == f"{namespace}/{name}"
            )
        return out

    def secret(self, name: str, data: dict[str, str], purpose: str | None) -> None:
        manifest: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {PURPOSE_LABEL: purpose} if purpose else {}},
            "stringData": data,
        }
        self.fleet.apply_hub(manifest)
        self.created.append(("secret", "-n", NAMESPACE, name, "--wait=false"))

    def regional_cluster(self, body: dict[str, Any]) -> None:
        self.fleet.apply_hub(body)
        self.created.append(("regionalcluster", body["metadata"]["name"], "--wait=false"))

    def cleanup(self) -> None:
        for args in reversed(self.created):
            if args[0] == "idep":
                # Finalizers belong to kopf, which does not run here: remove them so deletion completes.
                ns, name = args[2], args[3]
                patch = '{"metadata": {"finalizers": null}}'
                self.fleet.hub("patch", "idep", "-n", ns, name, "--type=merge", "-p", patch, check=False)
            self.fleet.hub("delete", *args, check=False)
        for region in self.planes.regions:
            # Member objects left by a test (the service under test is not running to clean up).
            self.planes.kubectl(
                region,
                "delete",
                "deployments,services,poddisruptionbudgets,networkpolicies",
                "-n",
                MEMBER_WORKLOADS,
                "-l",
                "app.kubernetes.io/managed-by=gridshift",
                "--wait=false",
                check=False,
            )
        self.created.clear()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def kubeconfig_text(planes: Any, region: str) -> str:
    return Path(planes.kubeconfigs[region]).read_text()


def with_token(kubeconfig: str, token: str) -> str:
    """The same kubeconfig authenticating with a bearer token instead (a planted, recognisable secret)."""
    config = yaml.safe_load(kubeconfig)
    config["users"] = [{"name": config["users"][0]["name"], "user": {"token": token}}]
    return yaml.safe_dump(config)


@pytest.fixture(scope="module")
def secure(control_planes: Any) -> Iterator[SecureWorld]:
    fleet = install_hub(control_planes, {"eu-de": 40.0, "eu-fr": 90.0, "us-tx": 60.0})
    patcher = pytest.MonkeyPatch()
    world = SecureWorld(control_planes, fleet, patcher)
    try:
        yield world
    finally:
        world.cleanup()
        patcher.undo()


def leave_released_lease(fleet: Fleet, name: str = "gridshift-leader") -> None:
    """The leader Lease as an earlier operator's shutdown leaves it (gridshift.hub.lease.released), whatever held
    it before: a service leads at its first cycle. An absent Lease it would take only after the lease duration."""
    fleet.hub("delete", "lease", "-n", NAMESPACE, name, "--ignore-not-found")
    spec = {"holderIdentity": "", "leaseDurationSeconds": 15, "acquireTime": "2026-01-01T00:00:00.000000Z"}
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": NAMESPACE},
    }
    fleet.hub("create", "-f", "-", input=json.dumps({**lease, "spec": spec}))


@pytest.fixture
def world(secure: SecureWorld) -> Iterator[SecureWorld]:
    """The module's world, cleaned after each test; the leader Lease released by an earlier operator."""
    leave_released_lease(secure.fleet)
    try:
        yield secure
    finally:
        secure.cleanup()


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every log record of every logger at DEBUG, as the most verbose level the chart offers would give."""
    caplog.set_level(logging.DEBUG)
    return caplog
