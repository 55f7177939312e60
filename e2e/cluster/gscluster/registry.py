"""Run a private OCI registry (Debian's `docker-registry`, CNCF distribution 2.8) for tests.

    registry = start_registry()
    registry.host        # 127.0.0.1:<port>, plain HTTP
    registry.stop()

Never the system service: its own process on 127.0.0.1, a generated configuration, a temporary
storage folder, ready once `GET /v2/` answers. A registry that exits while starting is reported
with the end of its log; one that could not bind its port is retried on another.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from .ports import free_ports
from .process import LocalServer

BINARY = "docker-registry"


def registry_binary() -> str:
    exe = shutil.which(BINARY) or "/usr/bin/docker-registry"
    if not Path(exe).exists():
        raise RuntimeError("docker-registry not found: `apt-get install docker-registry` (make image-deps installs it)")
    return exe


@dataclass
class Registry(LocalServer):
    host: str
    workdir: Path
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}"


def _start_once(timeout: float) -> Registry:
    workdir = Path(tempfile.mkdtemp(prefix="gs-registry-"))
    port = free_ports(1)[0]
    host = f"127.0.0.1:{port}"
    config = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(workdir / "storage")}, "delete": {"enabled": True}},
        "http": {"addr": host, "secret": "gridshift-test-registry"},
    }
    (workdir / "config.yml").write_text(yaml.safe_dump(config))
    log_path = workdir / "registry.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [registry_binary(), "serve", str(workdir / "config.yml")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    registry = Registry(host, workdir, proc, log_path)
    registry.wait_ready(
        f"{registry.url}/v2/",
        timeout=timeout,
        poll=0.1,
        exited=lambda code: RegistryExited(code, log_path.read_text(errors="replace").strip().splitlines()[-3:]),
        not_ready=f"docker-registry not ready after {timeout}s; log {log_path}",
    )
    return registry


class RegistryExited(RuntimeError):
    def __init__(self, code: int, tail: list[str]) -> None:
        self.bind_conflict = any("address already in use" in line for line in tail)
        super().__init__(f"docker-registry exited with {code}: " + " | ".join(tail))


def start_registry(timeout: float = 30, attempts: int = 3) -> Registry:
    """A running registry on a free port of 127.0.0.1; stopped at exit if not before."""
    for attempt in range(1, attempts + 1):
        try:
            registry = _start_once(timeout)
        except RegistryExited as exited:
            if not exited.bind_conflict or attempt == attempts:
                raise
            continue
        atexit.register(registry.stop)
        print(f"[gridshift-registry] {registry.url} (storage {registry.workdir})", file=sys.stderr, flush=True)
        return registry
    raise AssertionError("unreachable")
