"""Fixtures for the Helm chart tests: the Go-built helm, a real hub API server, the installed chart,
and the chart ServiceAccount's identity for other tests (`chart_sa_kubeconfig`, `chart_sa_api_client`).

helm and the hub come from e2e/cluster (binaries built from Go modules, cached under
~/.cache/gridshift/bin/<key>/). GRIDSHIFT_SKIP_CLUSTER=1 skips tests marked `cluster`, and tests that
need helm when it is not built yet; otherwise a missing helm is built first. GRIDSHIFT_USE_RUNNING_WORLD=1
uses the hub of `make cluster-up` instead of starting one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "gridshift"
MEMBER_CHART_DIR = REPO_ROOT / "charts" / "gridshift-member"
KUBE_VERSION = "1.36.3"
"""Kubernetes version of the test clusters (e2e/cluster/gscluster/versions.py), for `helm template`."""
SKIP_ENV = "GRIDSHIFT_SKIP_CLUSTER"

_CLUSTER_DIR = str(REPO_ROOT / "e2e" / "cluster")
if _CLUSTER_DIR not in sys.path:
    sys.path.insert(0, _CLUSTER_DIR)


def cluster_skipped() -> bool:
    return os.environ.get(SKIP_ENV, "").strip().lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not cluster_skipped():
        return
    skip = pytest.mark.skip(reason=f"{SKIP_ENV}=1")
    for item in items:
        if item.get_closest_marker("cluster") is not None and "tests/chart/" in str(item.path):
            item.add_marker(skip)


@dataclass(frozen=True)
class Helm:
    """The Go-built helm binary, run against one kubeconfig (or none, for template and lint)."""

    binary: Path
    home: Path

    def run(
        self, *args: str, kubeconfig: Path | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        if kubeconfig is not None:
            env["KUBECONFIG"] = str(kubeconfig)
        proc = subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def template(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(
            "template",
            "gridshift",
            str(CHART_DIR),
            "--namespace",
            "gridshift-system",
            "--kube-version",
            KUBE_VERSION,
            *args,
            check=check,
        )

    def render(self, *args: str) -> list[dict[str, Any]]:
        """Objects of `helm template` with the given extra flags; a mapping that writes a key twice fails."""
        return [doc for doc in yaml.load_all(self.template(*args).stdout, Loader=UniqueKeyLoader) if doc]

    def notes(self, *args: str) -> str:
        """templates/NOTES.txt as `helm install` prints it, without a cluster: `helm template` never renders
        NOTES (and `install --dry-run=client` still asks a cluster), so a copy of the chart has it as a
        ConfigMap's value."""
        copy = self.home / "notes-chart"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(CHART_DIR, copy)
        notes = (copy / "templates" / "NOTES.txt").read_text()
        (copy / "templates" / "NOTES.txt").unlink()
        (copy / "templates" / "_test_notes.tpl").write_text('{{- define "test.notes" -}}' + notes + "{{- end -}}")
        (copy / "templates" / "test-notes.yaml").write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n"
            'data:\n  notes: {{ include "test.notes" . | quote }}\n'
        )
        out = self.run(
            "template", "gridshift", str(copy), "--namespace", "gridshift-system", "--kube-version", KUBE_VERSION,
            "--show-only", "templates/test-notes.yaml", *args,
        ).stdout  # fmt: skip
        text: str = yaml.safe_load(out)["data"]["notes"]
        return text

    def render_member(self, *args: str) -> str:
        """`helm template` of the member-cluster chart (charts/gridshift-member), as YAML text."""
        return self.template_member(*args).stdout

    def template_member(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(
            "template", "gridshift-member", str(MEMBER_CHART_DIR), "--kube-version", KUBE_VERSION, *args, check=check
        )


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that writes a key twice. Helm and kubectl keep the last value
    silently; strict readers (post-renderers, linters) refuse the manifest (found in review: commonLabels
    setting a label the chart sets wrote it twice)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} written twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    from gscluster import build

    binary = build.bin_dir() / "helm"
    if "helm" in build.missing(["helm"]):
        if cluster_skipped():
            pytest.skip(f"helm is not built yet and {SKIP_ENV}=1 (make cluster-build builds it)")
        build.build(["helm"])
    return Helm(binary=binary, home=tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="session")
def rendered(helm: Helm) -> list[dict[str, Any]]:
    """The chart rendered with its default values."""
    return helm.render()


# ---------------------------------------------------------------- a real hub


@dataclass
class Hub:
    """The hub API server: admin kubeconfig and the Go-built kubectl."""

    kubeconfig: Path
    kubectl_binary: Path

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, kubeconfig: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.kubectl_binary), "--kubeconfig", str(kubeconfig or self.kubeconfig), *args]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=180, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc


@pytest.fixture(scope="package")
def hub() -> Iterator[Hub]:
    """A hub kube-apiserver for the chart tests: `make cluster-up`'s, or a hub-only world started here."""
    if cluster_skipped():
        pytest.skip(f"{SKIP_ENV}=1")
    from gscluster.planes import planes_from_state, start_planes

    if os.environ.get("GRIDSHIFT_USE_RUNNING_WORLD"):
        running = planes_from_state()
        if running is None:
            pytest.fail("GRIDSHIFT_USE_RUNNING_WORLD is set but no world is running (make cluster-up)")
        yield Hub(running.kubeconfigs[running.hub], running.bin_dir / "kubectl")
        return
    world = start_planes(only=["hub"], ready_delay_s=1, ready_jitter_s=0.2)
    try:
        yield Hub(world.kubeconfigs[world.hub], world.bin_dir / "kubectl")
    finally:
        world.stop()


@dataclass(frozen=True)
class Release:
    """A chart release installed on the hub."""

    name: str
    namespace: str
    service_account: str

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


@pytest.fixture(scope="package")
def installed_chart(helm: Helm, hub: Hub) -> Iterator[Release]:
    """The chart installed with default values into a fresh namespace of the hub."""
    namespace = f"gs-chart-{uuid.uuid4().hex[:6]}"
    release = Release(name="gridshift", namespace=namespace, service_account="gridshift")
    helm.run(
        "install",
        release.name,
        str(CHART_DIR),
        "--namespace",
        namespace,
        "--create-namespace",
        kubeconfig=hub.kubeconfig,
    )
    try:
        yield release
    finally:
        helm.run("uninstall", release.name, "--namespace", namespace, kubeconfig=hub.kubeconfig, check=False)
        hub.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _service_account_token(hub: Hub, release: Release) -> str | None:
    """A short-lived token of the chart's ServiceAccount (TokenRequest), or None where unsupported."""
    proc = hub.kubectl(
        "create",
        "token",
        release.service_account,
        "--namespace",
        release.namespace,
        "--duration",
        "2h",
        check=False,
    )
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


@pytest.fixture(scope="package")
def chart_sa_kubeconfig(hub: Hub, installed_chart: Release, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig for the hub that acts as the chart's ServiceAccount and nothing more.

    It authenticates with a real token of the ServiceAccount where the API server issues them
    (TokenRequest); otherwise it impersonates the ServiceAccount (`as:` in the kubeconfig) with the
    admin credentials, which kubectl honours (the kubernetes Python client does not: use the token).
    """
    config = yaml.safe_load(hub.kubeconfig.read_text())
    context_name = config["current-context"]
    context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
    admin_user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    token = _service_account_token(hub, installed_chart)
    user: dict[str, Any] = {"token": token} if token else {**admin_user, "as": installed_chart.username}
    config["users"] = [{"name": "gridshift-chart-sa", "user": user}]
    context["user"] = "gridshift-chart-sa"
    context["namespace"] = installed_chart.namespace
    config["contexts"] = [{"name": context_name, "context": context}]
    path = tmp_path_factory.mktemp("chart-sa") / "kubeconfig.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="package")
def chart_sa_api_client(chart_sa_kubeconfig: Path) -> Iterator[Any]:
    """A kubernetes.client.ApiClient authenticated as the chart's ServiceAccount (needs TokenRequest)."""
    from kubernetes import config

    loaded = yaml.safe_load(chart_sa_kubeconfig.read_text())
    if "token" not in loaded["users"][0]["user"]:
        pytest.skip("the hub issues no ServiceAccount tokens; only kubectl impersonation is available")
    client = config.new_client_from_config(config_file=str(chart_sa_kubeconfig))
    try:
        yield client
    finally:
        client.close()
