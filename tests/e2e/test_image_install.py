"""Installed for real: the image built here (`make image`) and both charts go to a local OCI registry
(Debian's docker-registry, `skopeo copy`, `helm push`, the hub chart pinned to the image's digest);
`helm install oci://...` installs the hub chart on the real hub; the image is pulled back from the
registry, unpacked, and run with runc exactly as the installed Deployment says (command, arguments,
environment, user, read-only root, dropped capabilities, memory limit, /tmp) with a token of the
chart's ServiceAccount, and it places an InferenceDeployment on the member clusters."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from gscluster.ports import free_ports
from gscluster.registry import Registry, start_registry

from gridshift_dev import release as releasing
from gridshift_dev.image import ImageInfo
from tests.e2e.operator_env import NAMESPACE, WORKLOADS, Fleet, inference_deployment, install_hub, wait_until
from tests.e2e.pod_runtime import PodContainer, runtime_config, unpack

pytestmark = [pytest.mark.cluster, pytest.mark.e2e, pytest.mark.image]

RELEASE = "gridshift"


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with start_registry() as running:
        yield running


@pytest.fixture(scope="module")
def helm_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("helm-home")
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }


@pytest.fixture(scope="module")
def released(
    operator_image: ImageInfo,
    registry: Registry,
    control_planes: Any,
    helm_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> releasing.Release:
    """What `make release REGISTRY=...` does, against the local registry."""
    return releasing.release(
        registry.host,
        control_planes.bin_dir / "helm",
        image_info=Path(operator_image.layout).parent / "image.json",
        out=tmp_path_factory.mktemp("charts"),
        plain_http=True,
        helm_env=helm_env,
    )


def helm(control_planes: Any, env: dict[str, str], *args: str, check: bool = True) -> str:
    cmd = [str(control_planes.bin_dir / "helm"), "--kubeconfig", str(control_planes.kubeconfigs["hub"]), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


def test_the_registry_holds_the_image_by_its_built_digest_and_both_charts(
    released: releasing.Release,
    operator_image: ImageInfo,
    registry: Registry,
    control_planes: Any,
    helm_env: dict[str, str],
) -> None:
    assert released.digest == operator_image.digest
    inspected = json.loads(
        subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", f"docker://{released.pinned_image}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert inspected["Digest"] == operator_image.digest
    assert inspected["Labels"]["org.opencontainers.image.version"] == operator_image.tag
    for name in (releasing.HUB_CHART, releasing.MEMBER_CHART):
        shown = yaml.safe_load(
            helm(control_planes, helm_env, "show", "chart", f"oci://{registry.host}/charts/{name}", "--plain-http")
        )
        assert shown["name"] == name
    values = yaml.safe_load(
        helm(control_planes, helm_env, "show", "values", f"oci://{registry.host}/charts/gridshift", "--plain-http")
    )
    assert values["image"]["repository"] == released.image
    assert values["image"]["digest"] == operator_image.digest, "the published chart pins the image by digest"


def service_account_files(control_planes: Any, folder: Path) -> Path:
    """What the kubelet mounts: a token of the chart's ServiceAccount, the API server's CA, the namespace."""
    folder.mkdir(mode=0o755)
    token = control_planes.kubectl(
        "hub", "create", "token", RELEASE, "-n", NAMESPACE, "--duration", "1h"
    ).stdout.strip()
    kubeconfig = yaml.safe_load(Path(control_planes.kubeconfigs["hub"]).read_text())
    ca = base64.b64decode(kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"])
    (folder / "token").write_text(token)
    (folder / "ca.crt").write_bytes(ca)
    (folder / "namespace").write_text(NAMESPACE)
    for name in ("token", "ca.crt", "namespace"):
        (folder / name).chmod(0o644)
    return folder


@pytest.fixture(scope="module")
def installed(
    released: releasing.Release,
    registry: Registry,
    control_planes: Any,
    helm_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Fleet, dict[str, Any]]]:
    fleet = install_hub(control_planes, {"eu-de": 40.0, "eu-fr": 90.0, "us-tx": 60.0})
    probe_port, metrics_port = free_ports(2)
    values = tmp_path_factory.mktemp("values") / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "crds": {"install": False},  # install_hub applied crds/ already
                "replicaCount": 1,
                "operator": {
                    "planIntervalSeconds": 2,
                    "plannerTimeBudgetSeconds": 1,  # below the interval (OperatorSettings refuses otherwise)
                    "revalidateDelaySeconds": 0,
                    "coldStartSeconds": 60,
                    # The container shares the host's network here: ports nobody else holds.
                    "probePort": probe_port,
                    "metricsPort": metrics_port,
                },
            }
        )
    )
    helm(
        control_planes,
        helm_env,
        "upgrade", "--install", RELEASE, f"oci://{registry.host}/charts/gridshift", "--plain-http",
        "--namespace", NAMESPACE, "--values", str(values), "--wait=false",
    )  # fmt: skip
    deployment = json.loads(fleet.hub("get", "deployment", RELEASE, "-n", NAMESPACE, "-o", "json"))
    try:
        yield fleet, deployment
    finally:
        helm(control_planes, helm_env, "uninstall", RELEASE, "--namespace", NAMESPACE, check=False)


def test_the_pulled_image_runs_the_charts_command_as_its_service_account_and_places_a_deployment(
    installed: tuple[Fleet, dict[str, Any]], released: releasing.Release, control_planes: Any, tmp_path: Path
) -> None:
    fleet, deployment = installed
    pod_spec = deployment["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    assert (
        container["image"]
        == f"{released.image}:{deployment['metadata']['labels']['app.kubernetes.io/version']}@{released.digest}"
    )
    assert pod_spec["serviceAccountName"] == RELEASE

    bundle = unpack(released.pinned_image, tmp_path)
    server = yaml.safe_load(Path(control_planes.kubeconfigs["hub"]).read_text())["clusters"][0]["cluster"]["server"]
    host, port = server.removeprefix("https://").rsplit(":", 1)
    config = runtime_config(
        json.loads((bundle / "config.json").read_text()),
        pod_spec,
        namespace=NAMESPACE,
        pod=f"{RELEASE}-e2e",
        service_account_dir=service_account_files(control_planes, tmp_path / "serviceaccount"),
        api_host=host,
        api_port=int(port),
    )
    assert config["process"]["user"]["uid"] == 65532 and config["root"]["readonly"] is True
    assert config["process"]["capabilities"]["effective"] == []
    operator = PodContainer(bundle, config, tmp_path / "operator.log").start()
    probe_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "probes")
    try:
        # What the kubelet's probes ask: the operator's /healthz on the probe port.
        def healthy() -> bool:
            assert operator.running(), operator.log()[-3000:]
            with urllib.request.urlopen(f"http://127.0.0.1:{probe_port}/healthz", timeout=2) as answer:
                return bool(answer.status == 200)

        try:
            wait_until(healthy, 120, "the operator's /healthz in the container")
        except AssertionError as error:
            raise AssertionError(f"{error}\nthe container's log ends:\n{operator.log()[-3000:]}") from None
        fleet.apply_hub(inference_deployment("from-image", rps=4.0))
        wait_until(
            lambda: fleet.status("from-image").get("readyReplicas", 0) >= 1,
            180,
            "placement by the operator running from the image",
        )
        placed = {region: desired for region, (desired, _) in fleet.replicas("from-image").items() if desired}
        assert placed == {"eu-de": 1}, placed  # the cheapest region (static prices above)
        log = operator.log()
        assert "Forbidden" not in log and "Traceback" not in log, log[-3000:]
        # Deletion goes through the finalizer, served by the same container.
        fleet.hub("delete", "idep", "-n", WORKLOADS, "from-image", "--timeout=120s")
        # kubectl's wait can run out on a loaded machine before the finalizer has cleaned every member.
        wait_until(
            lambda: not any(desired for desired, _ in fleet.replicas("from-image").values()),
            120,
            "the finalizer to remove the replicas from the member clusters",
        )
    finally:
        fleet.hub(
            "patch",
            "idep",
            "-n",
            WORKLOADS,
            "from-image",
            "--type=merge",
            "-p",
            '{"metadata": {"finalizers": null}}',
            check=False,
        )
        operator.stop()
    assert operator.wait_exited(5) is not None
