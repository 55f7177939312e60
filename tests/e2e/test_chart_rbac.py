"""The operator runs as the Helm chart's ServiceAccount (a real token, not admin), and a missing rule
is surfaced as a clear Forbidden in its log and a condition rather than a crash."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.e2e.operator_env import NAMESPACE, Fleet, OperatorProcess, inference_deployment, install_hub, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]


@pytest.fixture(scope="module")
def chart_fleet(control_planes: Any) -> Iterator[Fleet]:
    fleet = install_hub(control_planes, {"eu-de": 40.0, "eu-fr": 90.0, "us-tx": 60.0})
    helm = [str(control_planes.bin_dir / "helm"), "--kubeconfig", str(control_planes.kubeconfigs["hub"])]
    subprocess.run(
        [
            *helm,
            "upgrade",
            "--install",
            "gridshift",
            str(REPO_ROOT / "charts" / "gridshift"),
            "--namespace",
            NAMESPACE,
            "--set",
            "crds.install=false",
            "--set",
            "replicaCount=1",
            "--wait=false",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    yield fleet
    subprocess.run([*helm, "uninstall", "gridshift", "--namespace", NAMESPACE], capture_output=True, timeout=120)


def service_account_kubeconfig(world: Any, path: Path) -> Path:
    """A hub kubeconfig that authenticates with a token of the chart's ServiceAccount and nothing else."""
    token = world.kubectl("hub", "create", "token", "gridshift", "-n", NAMESPACE, "--duration", "1h").stdout.strip()
    config = yaml.safe_load(Path(world.kubeconfigs["hub"]).read_text())
    context = config["contexts"][0]["context"]
    config["users"] = [{"name": "chart-sa", "user": {"token": token}}]
    context["user"] = "chart-sa"
    config["contexts"] = [{"name": config["contexts"][0]["name"], "context": context}]
    path.write_text(yaml.safe_dump(config))
    return path


def test_operator_works_as_the_charts_service_account_and_names_a_missing_rule(
    chart_fleet: Fleet, control_planes: Any, tmp_path: Path
) -> None:
    kubeconfig = service_account_kubeconfig(control_planes, tmp_path / "sa.yaml")
    who = control_planes.kubectl("hub", "--kubeconfig", str(kubeconfig), "auth", "whoami", "-o", "json", check=False)
    operator = OperatorProcess(kubeconfig, tmp_path, "chart-sa").start()
    try:
        chart_fleet.apply_hub(inference_deployment("rbac", rps=4.0))
        wait_until(lambda: chart_fleet.status("rbac").get("readyReplicas", 0) >= 1, 120, "placement as the chart SA")
        assert "Forbidden" not in operator.log(), operator.log()[-3000:]
        if who.returncode == 0:
            assert "system:serviceaccount:gridshift-system:gridshift" in who.stdout

        # Take away reading Secrets (member kubeconfigs): the cycle must say so, not crash.
        role = json.loads(chart_fleet.hub("get", "role", "gridshift", "-n", NAMESPACE, "-o", "json"))
        index = next(i for i, r in enumerate(role["rules"]) if "secrets" in r.get("resources", []))
        chart_fleet.hub(
            "patch",
            "role",
            "gridshift",
            "-n",
            NAMESPACE,
            "--type=json",
            "-p",
            json.dumps([{"op": "remove", "path": f"/rules/{index}"}]),
        )

        def surfaced() -> str | None:
            clusters = json.loads(chart_fleet.hub("get", "regionalclusters", "-o", "json"))["items"]
            for cluster in clusters:
                for condition in (cluster.get("status") or {}).get("conditions", []):
                    if condition["type"] == "Reachable" and "forbidden" in condition["message"].lower():
                        return str(condition["message"])
            return None

        message = wait_until(surfaced, 90, "a Forbidden condition on a RegionalCluster")
        assert "secret" in message.lower()
        assert "forbidden" in operator.log().lower()
        assert operator.process is not None and operator.process.poll() is None, "the operator must keep running"
    finally:
        # Secrets are unreadable now, so the finalizer cannot be served by this operator: remove it by hand.
        chart_fleet.hub(
            "patch", "idep", "-n", "ml", "rbac", "--type=merge", "-p", '{"metadata": {"finalizers": null}}', check=False
        )
        chart_fleet.hub("delete", "idep", "-n", "ml", "rbac", "--wait=false", check=False)
        operator.stop()
