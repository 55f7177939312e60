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
import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from .ports import free_ports

BINARY = "docker-registry"


def registry_binary() -> str:
    exe = shutil.which(BINARY) or "/usr/bin/docker-registry"
    if not Path(exe).exists():
        raise RuntimeError("docker-registry not found: `apt-get install docker-registry` (make image-deps installs it)")
    return exe


@dataclass
class Registry:
    host: str
    workdir: Path
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


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
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
            registry.stop()
            raise RegistryExited(proc.returncode, tail)
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(f"{registry.url}/v2/", timeout=2) as answer,
        ):
            if answer.status == 200:
                return registry
        if time.monotonic() > deadline:
            registry.stop()
            raise TimeoutError(f"docker-registry not ready after {timeout}s; log {log_path}")
        time.sleep(0.1)


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
