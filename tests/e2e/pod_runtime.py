"""Run a Deployment's container from an unpacked OCI image with runc, as the kubelet would.

kwok's pods run nothing, so this stands in for the kubelet and container runtime: the image is
pulled from the registry (`skopeo copy`) and unpacked (`umoci unpack`, which writes an OCI runtime
bundle from the image's configuration), and the container of the Deployment's pod template is
applied on top of it: command and arguments, environment (the downward API's namespace and pod name
included), user and group, read-only root filesystem, dropped capabilities and no privilege
escalation, the memory limit, its emptyDir volumes as tmpfs, and the ServiceAccount token mounted at
/var/run/secrets/kubernetes.io/serviceaccount with KUBERNETES_SERVICE_HOST/PORT pointing at the
API server. One difference: the container shares the host's network (the test API servers listen
on 127.0.0.1), where a pod would have its own.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}


def quantity_bytes(text: str) -> int:
    match = re.fullmatch(r"(\d+)([KMG]i?)?", text)
    if match is None:
        raise ValueError(f"not a memory quantity: {text!r}")
    return int(match[1]) * _UNITS.get(match[2] or "", 1)


def unpack(registry_image: str, workdir: Path) -> Path:
    """Pull `registry_image` (plain HTTP registry) and unpack it into a runtime bundle; the bundle path."""
    layout = workdir / "pulled"
    subprocess.run(
        ["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{registry_image}", f"oci:{layout}:run"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    bundle = workdir / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:run", str(bundle)], check=True, capture_output=True)
    return bundle


def _env(container: dict[str, Any], namespace: str, pod: str) -> list[str]:
    fields = {"metadata.namespace": namespace, "metadata.name": pod}
    out = []
    for entry in container.get("env", []):
        if "value" in entry:
            out.append(f"{entry['name']}={entry['value']}")
        else:
            out.append(f"{entry['name']}={fields[entry['valueFrom']['fieldRef']['fieldPath']]}")
    return out


def runtime_config(
    image_config: dict[str, Any],
    pod_spec: dict[str, Any],
    *,
    namespace: str,
    pod: str,
    service_account_dir: Path,
    api_host: str,
    api_port: int,
) -> dict[str, Any]:
    """`image_config` (umoci's config.json for the image) with the pod's first container applied."""
    config = json.loads(json.dumps(image_config))
    container = pod_spec["containers"][0]
    pod_context = pod_spec.get("securityContext", {})
    context = {**pod_context, **container.get("securityContext", {})}
    process = config["process"]
    process["terminal"] = False
    process["args"] = [*container.get("command", []), *container.get("args", [])] or process["args"]
    process["env"] = [
        *process["env"],
        *_env(container, namespace, pod),
        f"KUBERNETES_SERVICE_HOST={api_host}",
        f"KUBERNETES_SERVICE_PORT={api_port}",
    ]
    if "runAsUser" in context:
        process["user"] = {
            "uid": int(context["runAsUser"]),
            "gid": int(context.get("runAsGroup", process["user"].get("gid", 0))),
            "additionalGids": [int(pod_context["fsGroup"])] if "fsGroup" in pod_context else [],
        }
    process["noNewPrivileges"] = not context.get("allowPrivilegeEscalation", True)
    if "ALL" in context.get("capabilities", {}).get("drop", []):
        process["capabilities"] = {key: [] for key in ("bounding", "effective", "inheritable", "permitted", "ambient")}
    config["root"]["readonly"] = bool(context.get("readOnlyRootFilesystem", False))
    config["hostname"] = pod
    volumes = {volume["name"]: volume for volume in pod_spec.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "emptyDir" not in volume:
            raise ValueError(f"volume {mount['name']}: only emptyDir volumes are run here, not {sorted(volume)}")
        size = volume["emptyDir"].get("sizeLimit")
        options = ["nosuid", "nodev", "mode=1777", *([f"size={quantity_bytes(size)}"] if size else [])]
        config["mounts"].append(
            {"destination": mount["mountPath"], "type": "tmpfs", "source": "tmpfs", "options": options}
        )
    if pod_spec.get("automountServiceAccountToken", True):
        config["mounts"].append(
            {
                "destination": SERVICE_ACCOUNT_DIR,
                "type": "bind",
                "source": str(service_account_dir),
                "options": ["rbind", "ro"],
            }
        )
    limit = container.get("resources", {}).get("limits", {}).get("memory")
    if limit:
        config["linux"].setdefault("resources", {})["memory"] = {"limit": quantity_bytes(limit)}
    # The test API servers listen on the host's 127.0.0.1: share its network.
    config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"] if n["type"] != "network"]
    return config


class PodContainer:
    """The container, started with `runc run` (foreground, so its output goes to `log`)."""

    def __init__(self, bundle: Path, config: dict[str, Any], log: Path) -> None:
        self.bundle = bundle
        self.id = f"gridshift-e2e-{uuid.uuid4().hex[:8]}"
        self.state = bundle.parent / "runc-state"
        self.log_path = log
        (bundle / "config.json").write_text(json.dumps(config, indent=1))
        self.process: subprocess.Popen[bytes] | None = None

    def _runc(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runc", "--root", str(self.state), *args], capture_output=True, text=True, timeout=60, check=False
        )

    def start(self) -> PodContainer:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                ["runc", "--root", str(self.state), "run", "--bundle", str(self.bundle), self.id],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.running():
            self._runc("kill", self.id, "TERM")
            assert self.process is not None
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._runc("kill", self.id, "KILL")
                self.process.wait(timeout=30)
        self._runc("delete", "--force", self.id)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_exited(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running():
            time.sleep(0.2)
        return None if self.process is None else self.process.poll()
