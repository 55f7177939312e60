"""pytest fixtures and hooks for tests that need the simulated world.

Used by tests/cluster/conftest.py (``from gscluster.pytest_plugin import *``).
Import it from exactly one conftest on a test's path, or the session-scoped
world would be started twice.

Environment:
  GRIDSHIFT_SKIP_CLUSTER=1      skip every test marked ``cluster`` (no build, no clusters)
  GRIDSHIFT_USE_RUNNING_WORLD=1 use the world from ``make cluster-up`` instead of starting one
  GRIDSHIFT_READY_DELAY=<s>     pod ready delay for the test world (default 2 s)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator

import pytest

from . import build as _build

SKIP_ENV = "GRIDSHIFT_SKIP_CLUSTER"


def cluster_skipped() -> bool:
    return os.environ.get(SKIP_ENV, "").strip().lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not cluster_skipped():
        return
    skip = pytest.mark.skip(reason=f"{SKIP_ENV}=1")
    for item in items:
        if item.get_closest_marker("cluster") is not None:
            item.add_marker(skip)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build missing binaries before any test runs, outside per-test timeouts."""
    if cluster_skipped() or session.config.option.collectonly:
        return
    if not any(i.get_closest_marker("cluster") is not None for i in session.items):
        return
    if os.environ.get("GRIDSHIFT_USE_RUNNING_WORLD"):
        return
    missing = _build.missing()
    if missing:
        print(
            f"\n[gridshift] cluster binaries missing ({', '.join(missing)}): building them now "
            f"into {_build.bin_dir()} (cold: ~30 min on 2 cores; progress below)",
            file=sys.stderr,
            flush=True,
        )
        _build.build()


@pytest.fixture(scope="session")
def control_planes() -> Iterator[object]:
    """The running world: ``.kubeconfigs`` (name -> Path), ``.kubectl()``, ``.hub``, ``.regions``."""
    if cluster_skipped():
        pytest.skip(f"{SKIP_ENV}=1")
    from .planes import planes_from_state, start_planes

    if os.environ.get("GRIDSHIFT_USE_RUNNING_WORLD"):
        w = planes_from_state()
        if w is None:
            pytest.fail("GRIDSHIFT_USE_RUNNING_WORLD is set but no world is running (make cluster-up)")
        yield w
        return
    world = start_planes(ready_delay_s=float(os.environ.get("GRIDSHIFT_READY_DELAY", "2")), ready_jitter_s=0.5)
    try:
        yield world
    finally:
        world.stop()


@pytest.fixture
def prometheus_factory() -> Iterator[Callable[..., object]]:
    """``prometheus_factory(targets, scrape_interval="1s")`` -> running Prometheus; stopped after the test."""
    from .prometheus import start_prometheus

    started: list[object] = []

    def factory(*args: object, **kwargs: object) -> object:
        p = start_prometheus(*args, **kwargs)  # type: ignore[arg-type]
        started.append(p)
        return p

    yield factory
    for p in started:
        p.stop()  # type: ignore[attr-defined]
