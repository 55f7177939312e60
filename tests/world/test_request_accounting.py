"""Where the world's requests go: a broken operator must not look good because the world hid its failures.

Traffic the routing sends to a cluster with no Ready replica fails there (not served elsewhere), a
stopping replica drains for its grace period and then drops what is left, a readiness blip only stops
new traffic, and every request ends up counted exactly once.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from e2e.world.exporter import VllmCollector
from e2e.world.fleet import Fleet, LoadSpec, RequestTotals
from e2e.world.kube import FakeClusterReader, PodInfo, pod_from_manifest
from e2e.world.profiles import ProfileCatalog
from e2e.world.trace import Arrivals
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry

from .conftest import fake_cluster, managed_pod

CHAT = "default.chat"
GRACE_S = 60.0
"""terminationGracePeriodSeconds the operator renders (operator/gridshift/actuation/render.py)."""


def _fleet(catalog: ProfileCatalog, clusters: list[FakeClusterReader], rate: float = 10.0) -> Fleet:
    fleet = Fleet(catalog, regions={c.name: c.name for c in clusters}, default_load=LoadSpec(rate_per_s=rate))
    for cluster in clusters:
        fleet.sync(cluster.name, cluster.snapshot())
    return fleet


def _run(fleet: Fleet, t0: float, t1: float, check: bool = True) -> float:
    t = t0
    while t < t1:
        fleet.tick(t, t + 1.0, counter_scale=1.0)
        t += 1.0
        if check:
            _assert_conserved(fleet.request_totals(CHAT))
    return t


def _assert_conserved(totals: RequestTotals) -> None:
    counted = totals.finished + totals.abandoned + totals.dropped + totals.unserved + totals.live
    assert counted == pytest.approx(totals.arrived), totals


def _stop(cluster: FakeClusterReader, name: str) -> None:
    """The pod is deleted: its deletionTimestamp makes it not Running (kube.pod_from_manifest)."""
    pod = cluster.pods[("workloads", name)]
    cluster.pods[("workloads", name)] = dataclasses.replace(pod, running=False)


def _graced(name: str, **kwargs: Any) -> PodInfo:
    return dataclasses.replace(managed_pod(name, **kwargs), termination_grace_s=GRACE_S)


def _series(registry: CollectorRegistry, family: str, pod: str) -> float | None:
    for line in generate_latest(registry).decode().splitlines():
        if line.startswith(family + "{") and f'pod="{pod}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


# ---------------------------------------------------------------------------------------- routing


def test_the_share_routed_to_a_cluster_with_no_replica_is_unserved(catalog: ProfileCatalog) -> None:
    eu, fr = fake_cluster("eu-de"), fake_cluster("eu-fr")
    eu.add_pod(managed_pod("chat-eu"))  # eu-fr has none (a move's target not started yet)
    fleet = _fleet(catalog, [eu, fr])
    fleet.routing = {CHAT: {"eu-de": 10, "eu-fr": 90}}
    _run(fleet, 0.0, 300.0)
    totals = fleet.request_totals(CHAT)
    # A gateway sends 90% to eu-fr's backend, which has no endpoint: 503, not served by eu-de.
    assert totals.unserved / totals.arrived == pytest.approx(0.9, abs=0.03)
    assert fleet.unserved_by_cluster[CHAT] == {"eu-fr": totals.unserved}
    assert (totals.finished + totals.live) / totals.arrived == pytest.approx(0.1, abs=0.03)


def test_the_share_routed_to_a_cluster_whose_replicas_are_not_ready_is_unserved(catalog: ProfileCatalog) -> None:
    eu, fr = fake_cluster("eu-de"), fake_cluster("eu-fr")
    eu.add_pod(managed_pod("chat-eu"))
    fr.add_pod(managed_pod("chat-fr"))
    fleet = _fleet(catalog, [eu, fr])
    fleet.routing = {CHAT: {"eu-de": 50, "eu-fr": 50}}
    fr.set_ready("workloads", "chat-fr", False)
    fleet.sync("eu-fr", fr.snapshot())
    _run(fleet, 0.0, 200.0)
    totals = fleet.request_totals(CHAT)
    assert totals.unserved / totals.arrived == pytest.approx(0.5, abs=0.05)
    assert set(fleet.unserved_by_cluster[CHAT]) == {"eu-fr"}
    assert fleet.engine.completed[fleet.replicas["eu-fr/workloads/chat-fr"].slot] == 0


def test_no_replica_anywhere_leaves_everything_unserved(catalog: ProfileCatalog) -> None:
    fleet = _fleet(catalog, [fake_cluster("eu-de")])
    fleet.set_load(CHAT, LoadSpec(rate_per_s=5.0))
    _run(fleet, 0.0, 60.0)
    totals = fleet.request_totals(CHAT)
    assert totals.arrived > 0 and totals.unserved == totals.arrived
    assert fleet.unserved_by_cluster[CHAT] == {"": totals.arrived}


# ---------------------------------------------------------------------------------------- scale-down


def test_a_stopping_replica_drains_its_work_and_takes_no_new_requests(catalog: ProfileCatalog) -> None:
    eu = fake_cluster("eu-de")
    eu.add_pod(_graced("a"))
    eu.add_pod(_graced("b", created="2024-06-03T00:01:00Z"))
    fleet = _fleet(catalog, [eu])
    t = _run(fleet, 0.0, 120.0)
    b = fleet.replicas["eu-de/workloads/b"]
    in_flight = fleet.engine.live_on(b.slot)
    finished_before = fleet.engine.completed[b.slot]
    assert in_flight > 0
    _stop(eu, "b")
    fleet.sync("eu-de", eu.snapshot())
    # Still there, draining: its requests are not lost with the pod.
    assert fleet.replicas["eu-de/workloads/b"] is b and b.drain_until == pytest.approx(t + GRACE_S)
    assert fleet.engine.live_on(b.slot) == in_flight
    assert b.slot not in fleet.replica_weights(CHAT)[0].tolist()
    _run(fleet, t, t + 30.0)
    totals = fleet.request_totals(CHAT)
    # Conversation requests finish in seconds: b emptied well within its grace period and stopped.
    assert "eu-de/workloads/b" not in fleet.replicas
    assert totals.dropped == 0
    assert totals.finished > 0 and fleet._retired[CHAT][0] >= finished_before + in_flight


def test_what_a_stopping_replica_still_holds_after_its_grace_period_is_dropped(catalog: ProfileCatalog) -> None:
    eu = fake_cluster("eu-de")
    eu.add_pod(_graced("a"))
    fleet = _fleet(catalog, [eu], rate=0.0)
    slot = fleet.replicas["eu-de/workloads/a"].slot
    # Three requests too long to finish in 60 s (a million output tokens each).
    long = Arrivals(np.zeros(3), np.full(3, 100, dtype=np.int64), np.full(3, 1_000_000, dtype=np.int64))
    fleet.engine.enqueue(np.full(3, slot, dtype=np.int64), long)
    t = _run(fleet, 0.0, 10.0, check=False)
    eu.remove_pod("workloads", "a")  # gone from the API at once (kwok): the process still gets its grace
    fleet.sync("eu-de", eu.snapshot())
    t = _run(fleet, t, t + GRACE_S - 1.0, check=False)
    assert "eu-de/workloads/a" in fleet.replicas and fleet.dropped_requests == {}
    _run(fleet, t, t + 2.0, check=False)
    assert "eu-de/workloads/a" not in fleet.replicas
    assert fleet.dropped_requests == {CHAT: 3.0}
    assert fleet.engine.live_requests == 0


def test_the_grace_period_is_read_from_the_pod_spec() -> None:
    manifest = {
        "metadata": {"namespace": "w", "name": "p", "labels": {}},
        "spec": {"nodeName": "gpu-0", "terminationGracePeriodSeconds": 60, "containers": []},
        "status": {"phase": "Running"},
    }
    assert pod_from_manifest(manifest).termination_grace_s == 60.0
    del manifest["spec"]["terminationGracePeriodSeconds"]  # type: ignore[attr-defined]
    assert pod_from_manifest(manifest).termination_grace_s == 30.0  # Kubernetes' default


# ---------------------------------------------------------------------------------------- readiness


def test_a_readiness_blip_keeps_the_process_its_counters_and_its_work(catalog: ProfileCatalog) -> None:
    eu = fake_cluster("eu-de")
    eu.add_pod(managed_pod("a"))
    fleet = _fleet(catalog, [eu], rate=5.0)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(VllmCollector(fleet, "eu-de"))
    t = _run(fleet, 0.0, 120.0)
    replica = fleet.replicas["eu-de/workloads/a"]
    running = fleet.engine.running[replica.slot]
    tokens = _series(registry, "vllm:generation_tokens_total", "a")
    assert running > 0 and tokens is not None and tokens > 0
    eu.set_ready("workloads", "a", False)
    fleet.sync("eu-de", eu.snapshot())
    # NotReady: still scraped (a PodMonitor scrapes NotReady pods), same process, no new traffic.
    assert fleet.replicas["eu-de/workloads/a"] is replica and not replica.routable
    assert _series(registry, "vllm:generation_tokens_total", "a") == tokens
    unserved_before = fleet.request_totals(CHAT).unserved
    t = _run(fleet, t, t + 30.0)
    assert fleet.request_totals(CHAT).unserved > unserved_before
    assert fleet.engine.live_on(replica.slot) == 0  # its running work finished, none came in
    during = _series(registry, "vllm:generation_tokens_total", "a")
    assert during is not None and during > tokens
    eu.set_ready("workloads", "a", True)
    fleet.sync("eu-de", eu.snapshot())
    _run(fleet, t, t + 5.0)
    after = _series(registry, "vllm:generation_tokens_total", "a")
    assert fleet.replicas["eu-de/workloads/a"] is replica and replica.routable
    assert after is not None and after > during  # counters continue, never reset


# ---------------------------------------------------------------------------------------- conservation


def test_every_request_ends_up_counted_exactly_once(catalog: ProfileCatalog) -> None:
    """Arrived = finished + abandoned + dropped + unserved + live at every step, through overload (client
    timeouts), a move to a cluster not yet Ready, a readiness blip, a scale-down and a deletion."""
    eu, fr = fake_cluster("eu-de"), fake_cluster("eu-fr")
    eu.add_pod(_graced("a", max_num_seqs=4))
    eu.add_pod(_graced("b", created="2024-06-03T00:01:00Z", max_num_seqs=4))
    fleet = _fleet(catalog, [eu, fr], rate=40.0)
    fleet.routing = {CHAT: {"eu-de": 50, "eu-fr": 50}}
    t = _run(fleet, 0.0, 200.0)
    fr.add_pod(_graced("c", ready=False))
    fleet.sync("eu-fr", fr.snapshot())
    t = _run(fleet, t, t + 20.0)
    fr.set_ready("workloads", "c", True)
    eu.set_ready("workloads", "a", False)
    for cluster in (eu, fr):
        fleet.sync(cluster.name, cluster.snapshot())
    t = _run(fleet, t, t + 20.0)
    _stop(eu, "b")
    eu.set_ready("workloads", "a", True)
    fleet.sync("eu-de", eu.snapshot())
    t = _run(fleet, t, t + 30.0)
    eu.remove_pod("workloads", "a")
    fleet.sync("eu-de", eu.snapshot())
    _run(fleet, t, t + 200.0)
    totals = fleet.request_totals(CHAT)
    assert min(totals.finished, totals.abandoned, totals.dropped, totals.unserved) > 0, totals
    assert set(fleet.replicas) == {"eu-fr/workloads/c"}


@pytest.mark.parametrize("rate", [float("inf"), float("nan"), -1.0])
def test_a_load_rate_must_be_a_finite_number_at_least_zero(rate: float) -> None:
    with pytest.raises(ValueError, match="rate_per_s"):
        LoadSpec(rate_per_s=rate)
