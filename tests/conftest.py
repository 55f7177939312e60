"""Shared test helpers: where the repository and the read-only real data live."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GRIDSHIFT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real data not found at {SHARED_DATA}; set GRIDSHIFT_SHARED_DATA")
    return SHARED_DATA


# Real control planes (e2e/cluster): one session world shared by every test directory that asks for it.
_CLUSTER_DIR = str(REPO_ROOT / "e2e" / "cluster")
if _CLUSTER_DIR not in sys.path:
    sys.path.insert(0, _CLUSTER_DIR)

from gscluster.pytest_plugin import (  # noqa: E402
    cluster_skipped,
    control_planes,
    prometheus_factory,
    pytest_collection_finish,
)
from gscluster.pytest_plugin import pytest_collection_modifyitems as _skip_cluster_tests  # noqa: E402

SKIP_IMAGE_ENV = "GRIDSHIFT_SKIP_IMAGE"


def image_skipped() -> str | None:
    """Why tests marked `image` are skipped, or None: they need root, mmdebstrap and umoci (make image-deps)."""
    if cluster_skipped():
        return "GRIDSHIFT_SKIP_CLUSTER=1"
    if os.environ.get(SKIP_IMAGE_ENV, "").strip().lower() in ("1", "true", "yes"):
        return f"{SKIP_IMAGE_ENV}=1"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _skip_cluster_tests(config, items)
    reason = image_skipped()
    if reason:
        for item in items:
            if item.get_closest_marker("image") is not None:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def operator_image() -> Any:
    """The operator image of this tree (`make image`; cached layers make a rebuild take seconds):
    a gridshift_dev.image.ImageInfo. Building needs root, mmdebstrap and umoci, and fails saying so."""
    reason = image_skipped()
    if reason:
        pytest.skip(reason)
    from gridshift_dev import image

    try:
        return image.build()
    except image.ImageBuildError as error:
        pytest.fail(f"make image failed: {error}")


__all__ = [
    "control_planes",
    "operator_image",
    "prometheus_factory",
    "pytest_collection_finish",
    "pytest_collection_modifyitems",
]


@pytest.fixture
def dripping_apiserver() -> Iterator[Any]:
    """A tests.dripping_apiserver.DrippingApiserver: reads answered, every write's answer dripped (write windows)."""
    from tests.dripping_apiserver import serve

    yield from serve()


@pytest.fixture(autouse=True)
def _no_operator_left_running() -> Iterator[None]:
    """Stops any operator process a test started and left running (its clean-up raised before `stop`): one left
    running keeps the hub's leader Lease, and every later test's operator on that hub plans nothing. Operators
    of module- or session-scoped fixtures start before this snapshot and are left to their fixtures."""
    from tests.e2e.operator_env import OperatorProcess

    before = set(OperatorProcess.running)
    yield
    for left in OperatorProcess.running - before:
        warnings.warn(f"an operator process was left running by the test ({left.log_path}); stopped", stacklevel=1)
        left.stop()
