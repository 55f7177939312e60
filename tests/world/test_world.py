"""The assembled world on fake clusters: clock endpoint, pods becoming replicas, routing, every fault switch."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from e2e.world.fleet import LoadSpec
from e2e.world.kube import FakeClusterReader, FakeRoutingReader, FakeWorldKube
from e2e.world.world import World, WorldSettings

from .conftest import fake_cluster, managed_pod


@pytest.fixture
def clusters() -> dict[str, FakeClusterReader]:
    eu, us = fake_cluster("eu-de"), fake_cluster("us-tx", product="NVIDIA-A100-SXM4-80GB")
    eu.add_pod(managed_pod("chat-eu"))
    us.add_pod(managed_pod("chat-us"))
    return {"eu-de": eu, "us-tx": us}


@pytest.fixture
def routing() -> FakeRoutingReader:
    return FakeRoutingReader()


@pytest.fixture
def world(clusters: dict[str, FakeClusterReader], routing: FakeRoutingReader) -> Iterator[World]:
    kube = FakeWorldKube(clusters)
    settings = WorldSettings(speed=360, default_load=LoadSpec(rate_per_s=10), poll_interval_s=0.2)
    with World(settings, readers=clusters, routing=routing, readiness=kube, power=kube) as running:
        yield running


def _control(world: World, method: str, path: str, body: dict[str, object] | None = None) -> httpx.Response:
    return httpx.request(method, world.control.url + path, json=body, timeout=10)


def _tokens(world: World, key: str) -> float:
    with world.fleet.lock:
        return float(world.fleet.engine.generation_tokens[world.fleet.replicas[key].slot])


def _wait(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {predicate}")


def test_clock_endpoint_reports_and_changes_the_speed(world: World) -> None:
    first = _control(world, "GET", "/clock").json()
    assert set(first) == {"sim_time", "speed"} and first["speed"] == 360
    time.sleep(0.5)
    second = _control(world, "GET", "/clock").json()
    elapsed = (_parse(second["sim_time"]) - _parse(first["sim_time"])).total_seconds()
    assert 150 < elapsed < 400  # ~0.5 real s at 360x, with scheduling slack
    assert _control(world, "POST", "/clock", {"speed": 36}).json()["speed"] == 36
    assert world.clock.speed == 36
    bad = _control(world, "POST", "/clock", {"speed": "fast"})
    assert bad.status_code == 400 and "speed" in bad.json()["error"]


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_pods_become_replicas_and_serve(world: World, clusters: dict[str, FakeClusterReader]) -> None:
    assert set(world.fleet.replicas) == {"eu-de/workloads/chat-eu", "us-tx/workloads/chat-us"}
    clusters["eu-de"].add_pod(managed_pod("chat-eu-2", created="2024-06-03T00:00:05Z"))
    clusters["eu-de"].add_pod(managed_pod("not-ready", ready=False, created="2024-06-03T00:00:06Z"))
    _wait(lambda: "eu-de/workloads/chat-eu-2" in world.fleet.replicas)
    assert "eu-de/workloads/not-ready" not in world.fleet.replicas
    _wait(lambda: _tokens(world, "eu-de/workloads/chat-eu-2") > 0)
    # The not-ready pod holds its GPU (a CUDA context, no work): loaded-idle power, not the bare idle.
    with world.fleet.lock:
        held = [i for i, h in enumerate(world.fleet.gpu_holders) if h and h.pod == "not-ready"]
        assert len(held) == 1
        assert world.fleet.gpu_power_w[held[0]] > 100
    clusters["eu-de"].remove_pod("workloads", "chat-eu-2")
    _wait(lambda: "eu-de/workloads/chat-eu-2" not in world.fleet.replicas)


def test_requests_follow_published_routing_weights(world: World, routing: FakeRoutingReader) -> None:
    routing.weights = {"default.chat": {"eu-de": 90, "us-tx": 10}}
    world.poll_once()
    with world.fleet.lock:
        slots, weights = world.fleet.replica_weights("default.chat")
        by_slot = dict(zip(slots.tolist(), weights.tolist(), strict=True))
        eu = world.fleet.replicas["eu-de/workloads/chat-eu"].slot
        us = world.fleet.replicas["us-tx/workloads/chat-us"].slot
        start = {s: float(world.fleet.engine.requests_finished[s]) for s in (eu, us)}
    assert by_slot[eu] / (by_slot[eu] + by_slot[us]) == pytest.approx(0.9)
    time.sleep(3)  # ~18 simulated minutes
    with world.fleet.lock:
        done = {s: float(world.fleet.engine.requests_finished[s]) - start[s] for s in (eu, us)}
    assert done[eu] / (done[eu] + done[us]) == pytest.approx(0.9, abs=0.05)


def test_no_routing_splits_evenly(world: World) -> None:
    with world.fleet.lock:
        _, weights = world.fleet.replica_weights("default.chat")
    assert weights.tolist() == [1.0, 1.0]


def test_exporter_down_fault_refuses_scrapes_then_recovers(world: World) -> None:
    url = world.exporters["eu-de"].url + "/metrics"
    assert httpx.get(url).status_code == 200
    assert _control(world, "POST", "/faults/exporter", {"cluster": "eu-de", "down": True}).json()["exportersDown"] == [
        "eu-de"
    ]
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=2)
    assert httpx.get(world.exporters["us-tx"].url + "/metrics").status_code == 200
    _control(world, "POST", "/faults/exporter", {"cluster": "eu-de", "down": False})
    assert httpx.get(url).status_code == 200  # same port again: Prometheus targets stay valid


def test_apiserver_fault_keeps_replicas_serving(world: World, clusters: dict[str, FakeClusterReader]) -> None:
    answer = _control(world, "POST", "/faults/apiserver", {"cluster": "eu-de", "down": True}).json()
    assert answer["apiserversDown"] == ["eu-de"]
    assert not clusters["eu-de"].available
    _wait(lambda: "eu-de" in world.cluster_errors)
    before = _tokens(world, "eu-de/workloads/chat-eu")
    _wait(lambda: _tokens(world, "eu-de/workloads/chat-eu") > before)
    _control(world, "POST", "/faults/apiserver", {"cluster": "eu-de", "down": False})
    assert clusters["eu-de"].available
    _wait(lambda: "eu-de" not in world.cluster_errors)


def test_readiness_fault_holds_a_pod_out_then_releases_it(world: World, clusters: dict[str, FakeClusterReader]) -> None:
    body = {"cluster": "eu-de", "namespace": "workloads", "pod": "chat-eu", "delaySimSeconds": 1800}
    delayed = _control(world, "POST", "/faults/readiness", body).json()["readinessDelayed"]
    assert [d["pod"] for d in delayed] == ["chat-eu"]
    key = "eu-de/workloads/chat-eu"
    with world.fleet.lock:
        # The vLLM process runs on (scraped, finishing its work) but takes no new request while NotReady.
        assert not world.fleet.replicas[key].routable
        assert world.fleet.replicas[key].slot not in world.fleet.replica_weights("default.chat")[0].tolist()
    assert not clusters["eu-de"].pods[("workloads", "chat-eu")].ready
    # 1800 simulated s = 5 real s at 360x.
    _wait(lambda: world.fleet.replicas[key].routable, timeout=15)
    assert clusters["eu-de"].pods[("workloads", "chat-eu")].ready


def test_feed_fault_through_the_control_server(world: World) -> None:
    answer = _control(world, "POST", "/faults/feed", {"zone": "FR", "mode": "error"}).json()
    assert answer["feeds"] == {"FR": {"mode": "error", "stallSeconds": 30.0}}
    assert httpx.get(world.prices.url + "/json/FR").status_code == 500
    _control(world, "POST", "/faults/feed", {"zone": "FR", "mode": "ok"})
    assert httpx.get(world.prices.url + "/json/FR").status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/faults/feed", {"zone": "FR", "mode": "explode"}, "mode"),
        ("/faults/feed", {"mode": "error"}, "zone"),
        ("/faults/exporter", {"cluster": "mars", "down": True}, "cluster"),
        ("/faults/exporter", {"cluster": "eu-de", "down": "yes"}, "down"),
        ("/faults/readiness", {"cluster": "eu-de", "namespace": "w", "pod": "p", "delaySimSeconds": -1}, "sim_seconds"),
        ("/load", {"deployment": "default.chat", "ratePerSecond": -2}, "ratePerSecond"),
        ("/load", {"deployment": "default.chat", "ratePerSecond": float("inf")}, "ratePerSecond"),
        ("/load", {"deployment": "default.chat", "ratePerSecond": float("nan")}, "ratePerSecond"),
        ("/clock", {"speed": float("inf")}, "speed"),
        ("/faults/feed", {"zone": "FR", "mode": "stall", "stallSeconds": float("nan")}, "stallSeconds"),
        ("/load", {"deployment": "default.chat", "trace": "chess", "ratePerSecond": 2}, "trace"),
    ],
)
def test_bad_control_requests_name_the_field(world: World, path: str, body: dict[str, object], field: str) -> None:
    # json.dumps writes Infinity and NaN (httpx's json= refuses them), as a careless client would.
    answer = httpx.post(world.control.url + path, content=json.dumps(body), timeout=10)
    assert answer.status_code == 400
    assert field in answer.json()["error"]


def test_a_dead_simulation_fails_loudly(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in review: an exception in a tick killed the sim thread silently while the exporters served
    frozen counters (an idle, healthy-looking fleet) and the control server answered 200."""
    url = world.exporters["eu-de"].url + "/metrics"
    assert httpx.get(url).status_code == 200

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("tick exploded")

    monkeypatch.setattr(world.fleet, "tick", broken)
    _wait(lambda: not any(t.is_alive() for t in world._threads if t.name == "world-sim"))
    answer = _control(world, "GET", "/status")
    assert answer.status_code == 500
    assert "tick exploded" in answer.json()["error"]
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=2)


def test_status_says_where_every_request_went(
    world: World, routing: FakeRoutingReader, clusters: dict[str, FakeClusterReader]
) -> None:
    routing.weights = {"default.chat": {"eu-de": 50, "eu-fr": 50}}  # eu-fr: no cluster, no replica
    world.poll_once()
    time.sleep(1)
    totals = _control(world, "GET", "/status").json()["requests"]["default.chat"]
    assert totals["unserved"] > 0
    parts = ("finished", "abandoned", "dropped", "unserved", "live")
    assert sum(totals[p] for p in parts) == pytest.approx(totals["arrived"])
    # A deployment gone from the world (no replica, no load) keeps its totals.
    clusters["eu-de"].remove_pod("workloads", "chat-eu")
    clusters["us-tx"].remove_pod("workloads", "chat-us")
    with world.fleet.lock:
        world.fleet.default_load = None
    _wait(lambda: not world.fleet.replicas)
    assert _control(world, "GET", "/status").json()["requests"]["default.chat"]["arrived"] >= totals["arrived"]


def test_load_can_be_set_per_deployment(world: World) -> None:
    assert (
        _control(
            world, "POST", "/load", {"deployment": "default.chat", "trace": "code", "ratePerSecond": 3}
        ).status_code
        == 200
    )
    status = _control(world, "GET", "/status").json()
    assert status["loads"]["default.chat"] == {"trace": "code", "ratePerSecond": 3.0}
    assert len(status["replicas"]) == 2
