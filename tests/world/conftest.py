"""Shared fixtures of the world's tests: the profile catalog and small fake clusters."""

from __future__ import annotations

import importlib
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.world.kube import FakeClusterReader, NodeInfo, PodInfo
from e2e.world.labels import DEPLOYMENT, DEPLOYMENT_NAMESPACE, MANAGED_BY, MANAGED_BY_VALUE
from e2e.world.profiles import H100, ProfileCatalog, ReplicaPerformance


@pytest.fixture(scope="session")
def catalog() -> ProfileCatalog:
    return ProfileCatalog()


@pytest.fixture(scope="session")
def h100(catalog: ProfileCatalog) -> ReplicaPerformance:
    return catalog.performance(H100, 1)


def managed_pod(
    name: str,
    *,
    node: str = "gpu-0",
    deployment: str = "chat",
    namespace: str = "workloads",
    deployment_namespace: str = "default",
    gpus: int = 1,
    ready: bool = True,
    created: str = "2024-06-03T00:00:00Z",
    max_num_seqs: int = 256,
) -> PodInfo:
    labels = {MANAGED_BY: MANAGED_BY_VALUE, DEPLOYMENT: deployment, DEPLOYMENT_NAMESPACE: deployment_namespace}
    return PodInfo(namespace, name, f"uid-{name}", node, labels, gpus, True, ready, created, "llama-3-8b", max_num_seqs)


def fake_cluster(name: str, *, nodes: int = 1, gpus_per_node: int = 8, product: str = H100) -> FakeClusterReader:
    return FakeClusterReader(name, nodes=[NodeInfo(f"gpu-{i}", product, gpus_per_node) for i in range(nodes)])


_CLUSTER_DIR = str(Path(__file__).resolve().parents[2] / "e2e" / "cluster")
if _CLUSTER_DIR not in sys.path:
    sys.path.insert(0, _CLUSTER_DIR)


@pytest.fixture
def local_prometheus() -> Iterator[Callable[..., Any]]:
    """Starts private Prometheus servers (e2e/cluster's starter); stopped after the test."""
    if shutil.which("prometheus") is None and not Path("/usr/bin/prometheus").exists():
        pytest.skip("prometheus binary missing (make system-deps)")
    start_prometheus = importlib.import_module("gscluster.prometheus").start_prometheus

    started: list[Any] = []

    def start(**kwargs: Any) -> Any:
        server = start_prometheus(**kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# The session world of e2e/cluster (hub + eu-de + eu-fr + us-tx). Imported here as in
# tests/cluster/conftest.py; registering the plugin once in tests/conftest.py would let both
# directories share one world.
control_planes = importlib.import_module("gscluster.pytest_plugin").control_planes

__all__ = ["control_planes"]
