"""gridshift test clusters: real Kubernetes control planes + kwok GPU nodes + Prometheus.

Import with ``sys.path.insert(0, "<repo>/e2e/cluster")`` (tests/cluster/conftest.py
does this) and then ``import gscluster``.  See e2e/cluster/README.md.

The heavy submodules are imported lazily so ``gscluster.build`` works with a
bare python3 (standard library only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .planes import ControlPlanes, load_planes, planes_from_state, start_planes
    from .prometheus import Prometheus, start_prometheus

__all__ = ["ControlPlanes", "Prometheus", "load_planes", "planes_from_state", "start_planes", "start_prometheus"]


def __getattr__(name: str) -> Any:
    if name in ("Prometheus", "start_prometheus"):
        from . import prometheus

        return getattr(prometheus, name)
    if name in ("ControlPlanes", "load_planes", "start_planes", "planes_from_state"):
        from . import planes

        return getattr(planes, name)
    raise AttributeError(name)
