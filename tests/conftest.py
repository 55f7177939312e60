"""Shared test helpers: where the repository and the read-only real data live."""

from __future__ import annotations

import os
import sys
from pathlib import Path

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
    control_planes,
    prometheus_factory,
    pytest_collection_finish,
    pytest_collection_modifyitems,
)

__all__ = ["control_planes", "prometheus_factory", "pytest_collection_finish", "pytest_collection_modifyitems"]
