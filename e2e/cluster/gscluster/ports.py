"""TCP ports for the processes of a world that no other process takes before they bind.

Binding to port 0 and closing the socket, then handing the number to a process that binds it
later, races: the kernel hands the same ephemeral port to the next outgoing connection or to the
next `bind(0)` anywhere on the machine (a kwok-controller died at start with `bind: address
already in use` that way). So the ports handed out here are

- outside the kernel's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`), which neither
  outgoing connections nor `bind(0)` ever use;
- leased for `LEASE_SECONDS` in a file under the cache, under an inter-process lock, so two
  gridshift processes (parallel test runs, the demo) never hand out the same port;
- free at the moment they are handed out (a bind test), so a port some other program listens on
  is skipped.

What remains (a program outside gridshift binding that exact port in between) is handled by the
caller: `planes.py` retries a cluster whose component failed to bind.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

CACHE_ROOT = Path(os.environ.get("GRIDSHIFT_CACHE", Path.home() / ".cache" / "gridshift"))
LEASES_FILE = CACHE_ROOT / "ports" / "leases.json"
LEASE_SECONDS = 900.0
"""Long enough for a world's slowest component to bind on a loaded machine; after that the port is
bound (and so unavailable anyway) or its process is gone."""
LOWEST_PORT = 10000
DEFAULT_EPHEMERAL = (32768, 60999)


def ephemeral_range(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> tuple[int, int]:
    """The kernel's ephemeral port range (inclusive)."""
    try:
        low, high = (int(part) for part in path.read_text().split())
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL
    return low, high


def candidate_range(ephemeral: tuple[int, int] | None = None) -> range:
    """Ports we may hand out: the larger stretch at or above LOWEST_PORT outside the ephemeral range."""
    low, high = ephemeral or ephemeral_range()
    below = range(LOWEST_PORT, max(LOWEST_PORT, low))
    above = range(min(high + 1, 65536), 65536)
    chosen = below if len(below) >= len(above) else above
    if len(chosen) < 100:
        raise RuntimeError(f"no room for test ports outside the ephemeral range {low}-{high}")
    return chosen


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def _locked_leases(path: Path) -> Iterator[dict[str, float]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / "leases.lock").open("w") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            leases: dict[str, float] = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError):
            leases = {}
        now = time.time()
        leases = {port: until for port, until in leases.items() if until > now}
        yield leases
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(leases))
        os.replace(temporary, path)


def free_ports(n: int, *, leases_file: Path | None = None, lease_seconds: float = LEASE_SECONDS) -> list[int]:
    """`n` distinct ports on 127.0.0.1 that are free now and that no other caller gets for a while."""
    candidates = candidate_range()
    chosen: list[int] = []
    with _locked_leases(leases_file or LEASES_FILE) as leases:
        tries = 0
        while len(chosen) < n:
            tries += 1
            if tries > 50 * n + 1000:
                raise RuntimeError(f"found only {len(chosen)} of {n} free ports in {candidates}")
            port = random.choice(candidates)
            if str(port) in leases or port in chosen or not _bindable(port):
                continue
            chosen.append(port)
        until = time.time() + lease_seconds
        leases.update({str(port): until for port in chosen})
    return chosen
