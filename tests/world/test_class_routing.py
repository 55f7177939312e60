"""The world's size-aware router: each request goes by its request-size class's published weights
(status.classRouting), so short and long prompts land on different GPU types."""

from __future__ import annotations

from typing import Any

import numpy as np
from e2e.world.fleet import Fleet, LoadSpec
from e2e.world.kube import ClusterSnapshot, NodeInfo, class_routing_from_deployments
from e2e.world.profiles import H100, ProfileCatalog

from tests.world.conftest import managed_pod

L40S = "NVIDIA-L40S"


def _deployment_item() -> dict[str, Any]:
    return {
        "metadata": {"namespace": "default", "name": "chat"},
        "spec": {
            "demand": {
                "requestClasses": [
                    {"name": "short", "promptTokens": 300, "outputTokens": 150, "share": 0.8},
                    {"name": "long", "promptTokens": 4000, "outputTokens": 300, "share": 0.2},
                ]
            }
        },
        "status": {
            "classRouting": [
                {"requestClass": "short", "cluster": "eu-fr", "gpuType": L40S, "weight": 100},
                {"requestClass": "long", "cluster": "eu-fr", "gpuType": H100, "weight": 100},
            ]
        },
    }


def test_requests_go_to_the_gpu_type_of_their_size_class(catalog: ProfileCatalog) -> None:
    fleet = Fleet(catalog, regions={"eu-fr": "eu-fr"}, default_load=LoadSpec(rate_per_s=20.0))
    nodes = (NodeInfo("h100-0", H100, 8), NodeInfo("l40s-0", L40S, 8))
    pods = (managed_pod("big", node="h100-0"), managed_pod("small", node="l40s-0"))
    fleet.sync("eu-fr", ClusterSnapshot(nodes, pods))
    assert len(fleet.replicas) == 2
    fleet.class_routing = class_routing_from_deployments([_deployment_item()])
    sent: list[tuple[str, np.ndarray]] = []
    by_slot = {r.slot: fleet.gpu_type_of(r) for r in fleet.replicas.values()}

    def record(slots: Any, arrivals: Any) -> None:
        # What each replica was actually sent (the router draws per request, then enqueues).
        for slot in np.unique(slots):
            sent.append((by_slot[int(slot)], np.asarray(arrivals.prompt_tokens)[slots == slot]))

    fleet.engine.enqueue = record  # type: ignore[method-assign]
    fleet.tick(0.0, 30.0, counter_scale=1.0)
    to_small = np.concatenate([p for gpu, p in sent if gpu == L40S])
    to_big = np.concatenate([p for gpu, p in sent if gpu == H100])
    assert len(to_small) and len(to_big)
    assert np.median(to_small) < np.median(to_big)
    # Without class routing the same replicas share every size: the long prompts reach the L40S too.
    fleet.class_routing = {}
    sent.clear()
    fleet.tick(30.0, 60.0, counter_scale=1.0)
    assert any(gpu == L40S and p.max() > 4000 for gpu, p in sent)
