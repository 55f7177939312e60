"""A world that starts every time: a component that cannot bind its port is retried with fresh ports,
and a component that dies for another reason stops the start at once, naming itself and its last log
line (before, kwokctl and the node wait sat out their 300 s timeouts). Hub-only worlds, on the real
binaries."""

from __future__ import annotations

import shutil
import socket
import time
from typing import Any

import pytest
import yaml
from gscluster import planes

pytestmark = pytest.mark.cluster

KWOK_CONTROLLER_PORT = 3
"""Index of kwok-controller's port in the six a cluster gets (planes._kwokctl_config)."""


def test_a_port_taken_before_the_component_binds_it_is_retried(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    handed: list[list[int]] = []
    real_free_ports = planes.free_ports
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()

        def free_ports(n: int) -> list[int]:
            chosen = real_free_ports(n)
            if not handed:  # the first cluster attempt: someone else binds kwok-controller's port first
                chosen[KWOK_CONTROLLER_PORT] = squatter.getsockname()[1]
            handed.append(chosen)
            return chosen

        monkeypatch.setattr(planes, "free_ports", free_ports)
        started = time.monotonic()
        world = planes.start_planes(only=["hub"], ready_delay_s=1, timeout=120)
    try:
        assert time.monotonic() - started < 120
        assert len(handed) == 2, "one retry with fresh ports"
        assert world.kubectl("hub", "get", "nodes", "-o", "name").stdout.strip() == "node/hub-cpu-0"
        log = capsys.readouterr().err
        assert "kwok-controller could not bind its port; retrying with new ports" in log
        assert "address already in use" in log
    finally:
        world.stop()


def test_a_dead_component_stops_the_start_at_once_with_its_last_log_line(monkeypatch: pytest.MonkeyPatch) -> None:
    real_config = planes._kwokctl_config

    def broken_scheduler(*args: Any) -> str:
        config, *stages = yaml.safe_load_all(real_config(*args))
        patch = next(p for p in config["componentsPatches"] if p["name"] == "kube-scheduler")
        patch["extraArgs"].append({"key": "no-such-flag", "value": "x"})
        return str(yaml.safe_dump_all([config, *stages], sort_keys=False))

    monkeypatch.setattr(planes, "_kwokctl_config", broken_scheduler)
    started = time.monotonic()
    with pytest.raises(planes.ComponentDied) as died:
        planes.start_planes(only=["hub"], ready_delay_s=1, timeout=240)
    elapsed = time.monotonic() - started
    workdir = died.value.log.parents[3]
    shutil.rmtree(f"{workdir}.failed-logs", ignore_errors=True)
    assert elapsed < 90, f"took {elapsed:.0f}s: the start waited instead of noticing"
    assert died.value.component == "kube-scheduler"
    assert not died.value.bind_conflict
    assert "unknown flag: --no-such-flag" in str(died.value)
