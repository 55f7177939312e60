"""Ports for the world's processes: outside the kernel's ephemeral range, never handed out twice while
leased, and free when handed out (gscluster.ports). No cluster needed."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from gscluster import ports
from gscluster.__main__ import main as cluster_cli

from tests.conftest import REPO_ROOT


def test_ports_are_outside_the_ephemeral_range(tmp_path: Path) -> None:
    low, high = ports.ephemeral_range()
    handed = ports.free_ports(50, leases_file=tmp_path / "leases.json")
    assert len(set(handed)) == 50
    assert all(not low <= port <= high and port >= ports.LOWEST_PORT for port in handed)


def test_candidate_range_takes_the_larger_side() -> None:
    assert ports.candidate_range((32768, 60999)) == range(10000, 32768)
    assert ports.candidate_range((10000, 20000)) == range(20001, 65536)
    with pytest.raises(RuntimeError, match="no room"):
        ports.candidate_range((1024, 65500))


def test_a_leased_port_is_not_handed_out_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    leases = tmp_path / "leases.json"
    monkeypatch.setattr(ports, "candidate_range", lambda: range(20000, 20010))
    first = ports.free_ports(6, leases_file=leases)
    second = ports.free_ports(4, leases_file=leases)
    assert sorted(first + second) == list(range(20000, 20010))
    with pytest.raises(RuntimeError, match="found only 0 of 1"):
        ports.free_ports(1, leases_file=leases)
    # Once the leases run out, the ports come back.
    assert len(ports.free_ports(3, leases_file=tmp_path / "other.json", lease_seconds=0)) == 3


def test_a_port_someone_listens_on_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setattr(ports, "candidate_range", lambda: range(port, port + 1))
        with pytest.raises(RuntimeError, match="found only 0 of 1"):
            ports.free_ports(1, leases_file=tmp_path / "leases.json")


def test_processes_allocating_at_once_never_share_a_port(tmp_path: Path) -> None:
    leases = tmp_path / "leases.json"
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from gscluster.ports import free_ports; from pathlib import Path;"
        "print(*free_ports(40, leases_file=Path(sys.argv[2])))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(REPO_ROOT / "e2e" / "cluster"), str(leases)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    handed = [int(port) for proc in procs for port in proc.communicate(timeout=60)[0].split()]
    assert len(handed) == 160 and len(set(handed)) == 160


def test_the_cluster_command_finds_its_modules(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make cluster-status/up/down` import gscluster.planes (a rename once left them failing)."""
    from gscluster import planes

    monkeypatch.setattr(planes, "planes_from_state", lambda *_: None)
    assert cluster_cli(["status"]) == 1
    assert "no world running" in capsys.readouterr().out
