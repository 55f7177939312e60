"""Run a private Prometheus (Debian's /usr/bin/prometheus) for tests.

    prom = start_prometheus({"vllm": ["127.0.0.1:8001"], "dcgm": ["127.0.0.1:9400"]})
    prom.url            # http://127.0.0.1:<port>
    prom.set_targets({...})   # rewrite scrape config + /-/reload
    prom.stop()

Never uses the system service: it starts its own process bound to 127.0.0.1
on a free port with a generated config and a temporary TSDB directory, and
waits for ``/-/ready``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .ports import free_ports
from .process import LocalServer

Targets = Mapping[str, Sequence[str]] | Sequence[str]


def prometheus_binary() -> str:
    exe = os.environ.get("GRIDSHIFT_PROMETHEUS") or shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(exe).exists():
        raise RuntimeError("prometheus not found: `apt-get install -y prometheus` (Debian) or set GRIDSHIFT_PROMETHEUS")
    return exe


def _config(
    targets: Targets,
    scrape_interval: str,
    extra_scrape_configs: Sequence[dict[str, object]],
    rule_files: Sequence[Path] = (),
) -> str:
    jobs: Mapping[str, Sequence[str]] = targets if isinstance(targets, Mapping) else {"targets": list(targets)}
    scrape_configs: list[dict[str, object]] = []
    for job, tgts in jobs.items():
        static = [{"targets": list(tgts)}] if tgts else []
        scrape_configs.append(
            {
                "job_name": job,
                "scrape_interval": scrape_interval,
                "scrape_timeout": scrape_interval,
                "static_configs": static,
            }
        )
    scrape_configs.extend(extra_scrape_configs)
    return yaml.safe_dump(
        {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": scrape_configs,
        },
        sort_keys=False,
    )


@dataclass
class Prometheus(LocalServer):
    url: str
    port: int
    workdir: Path
    proc: subprocess.Popen[bytes]
    scrape_interval: str
    log_path: Path
    _extra: list[dict[str, object]] = field(default_factory=list)

    @property
    def config_path(self) -> Path:
        return self.workdir / "prometheus.yml"

    def set_targets(self, targets: Targets, extra_scrape_configs: Sequence[dict[str, object]] = ()) -> None:
        """Replace the scrape targets and hot-reload."""
        self._extra = list(extra_scrape_configs)
        self.config_path.write_text(_config(targets, self.scrape_interval, self._extra))
        req = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()

    def query(self, promql: str) -> object:
        import json
        import urllib.parse

        q = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{q}", timeout=10) as r:
            return json.loads(r.read())["data"]


def _log_tail(log_path: Path) -> str:
    return log_path.read_text(errors="replace")[-4000:]


def start_prometheus(
    targets: Targets = (),
    *,
    scrape_interval: str = "1s",
    extra_scrape_configs: Sequence[dict[str, object]] = (),
    retention: str = "2h",
    timeout: float = 60,
    rule_files: Sequence[Path] = (),
) -> Prometheus:
    """Start Prometheus scraping ``targets`` (list of host:port, or {job: [host:port]})."""
    workdir = Path(tempfile.mkdtemp(prefix="gs-prometheus-"))
    port = free_ports(1)[0]
    cfg = workdir / "prometheus.yml"
    cfg.write_text(_config(targets, scrape_interval, extra_scrape_configs, rule_files))
    log_path = workdir / "prometheus.log"
    cmd = [
        prometheus_binary(),
        f"--config.file={cfg}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--storage.tsdb.retention.time={retention}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        "--log.level=warn",
    ]
    with log_path.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, cwd=workdir)
    prom = Prometheus(
        url=f"http://127.0.0.1:{port}",
        port=port,
        workdir=workdir,
        proc=proc,
        scrape_interval=scrape_interval,
        log_path=log_path,
        _extra=list(extra_scrape_configs),
    )
    atexit.register(prom.stop)
    prom.wait_ready(
        f"{prom.url}/-/ready",
        timeout=timeout,
        poll=0.2,
        exited=lambda code: RuntimeError(
            f"prometheus exited with {code}:\n{log_path.read_text(errors='replace')[-4000:]}"
        ),
        not_ready=f"prometheus not ready after {timeout}s; log {log_path}",
    )
    print(f"[gridshift-prometheus] {prom.url} (config {cfg}, log {log_path})", file=sys.stderr, flush=True)
    return prom
