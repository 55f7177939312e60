"""End-to-end carbon: the operator process on real control planes (hub + eu-de + eu-fr + us-tx, kwok GPU nodes).

A carbon limit makes a deployment leave a region make-before-break when its grid intensity rises and
come back when it falls; a stale carbon feed moves nothing; a bad carbon field is refused by the
apiserver naming the field. Intensities come from static carbon feeds patched on the RegionalClusters
(the feed adapters themselves are covered by tests/signals on recorded 2024 data).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.operator_env import (
    WORKLOADS,
    Fleet,
    OperatorProcess,
    inference_deployment,
    install_hub,
    regional_cluster,
    wait_until,
)

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

PRICES = {"eu-de": 40.0, "eu-fr": 900.0, "us-tx": 60.0}
"""eu-de cheap, eu-fr dear (so that coming back to eu-de pays), us-tx middling but dirty."""
CARBON = {"eu-de": 100.0, "eu-fr": 50.0, "us-tx": 400.0}
LIMIT = 300.0


def carbon_feed(g_per_kwh: float) -> dict[str, Any]:
    return {"type": "static", "refreshSeconds": 10, "staleAfterSeconds": 60, "static": {"gPerKwh": g_per_kwh}}


def set_carbon(fleet: Fleet, cluster: str, feed: dict[str, Any] | None) -> None:
    fleet.hub("patch", "regionalcluster", cluster, "--type=merge", "-p", json.dumps({"spec": {"carbonFeed": feed}}))


@pytest.fixture(scope="module")
def fleet(control_planes: Any) -> Iterator[Fleet]:
    fleet = install_hub(control_planes, PRICES)
    for cluster, value in CARBON.items():
        set_carbon(fleet, cluster, carbon_feed(value))
    yield fleet
    for cluster in CARBON:  # the other modules' clusters have no carbon feed
        set_carbon(fleet, cluster, None)


@pytest.fixture(scope="module")
def operator(fleet: Fleet, control_planes: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    logs = tmp_path_factory.mktemp("operator-logs")
    process = OperatorProcess(control_planes.kubeconfigs[control_planes.hub], logs, "carbon").start()
    yield process
    process.stop()
    print(f"operator log: {process.log_path}")


def delete(fleet: Fleet, name: str) -> None:
    fleet.hub("delete", "idep", "-n", WORKLOADS, name, "--wait=true", "--timeout=60s", check=False)


def follow(fleet: Fleet, name: str, done: Any, seconds: float) -> list[int]:
    """Ready replicas (all regions) sampled until `done(replicas)` holds or time is up."""
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = fleet.replicas(name)
        samples.append(sum(r for _, r in now.values()))
        if done(now):
            break
        time.sleep(0.5)
    return samples


def cluster_condition(fleet: Fleet, cluster: str, kind: str) -> dict[str, Any]:
    body = json.loads(fleet.hub("get", "regionalcluster", cluster, "-o", "json"))
    return next((c for c in (body.get("status") or {}).get("conditions", []) if c["type"] == kind), {})


def settled(fleet: Fleet, name: str, needed: int) -> None:
    wait_until(lambda: fleet.status(name).get("readyReplicas", 0) >= needed, 120, "initial placement")
    wait_until(lambda: not fleet.status(name).get("migration"), 60, "initial steps done")


def test_a_carbon_limit_leaves_a_region_make_before_break_and_comes_back(
    fleet: Fleet, operator: OperatorProcess
) -> None:
    fleet.apply_hub(inference_deployment("green", rps=12.0, carbon={"maxGramsPerKwh": LIMIT}))
    try:
        settled(fleet, "green", 2)
        before = fleet.replicas("green")
        needed = sum(ready for _, ready in before.values())
        assert before["eu-de"][0] == needed and before["eu-fr"] == (0, 0), (before, operator.log()[-3000:])
        status = fleet.status("green")
        assert status["cost"]["gramsCo2PerMillionTokens"] > 0 and status["cost"]["kgCo2PerHour"] > 0
        assert "GCO2/MTOK" in fleet.hub("get", "idep", "-n", WORKLOADS, "green").upper()
        # eu-de's grid gets dirtier than the limit; us-tx is cheaper than eu-fr but above it too.
        set_carbon(fleet, "eu-de", carbon_feed(450.0))
        samples = follow(fleet, "green", lambda r: r["eu-de"][0] == 0 and r["eu-fr"][1] >= needed, 180)
        after = fleet.replicas("green")
        assert after["eu-de"] == (0, 0) and after["eu-fr"][1] >= needed, (after, operator.log()[-4000:])
        assert after["us-tx"] == (0, 0)
        assert min(samples) >= needed, f"Ready replicas fell below {needed}: {samples}"
        assert "carbon limit" in fleet.status("green")["lastDecision"]["explanation"]
        # Clean again: the cheaper region takes them back, make-before-break as well.
        set_carbon(fleet, "eu-de", carbon_feed(CARBON["eu-de"]))
        samples = follow(fleet, "green", lambda r: r["eu-fr"][0] == 0 and r["eu-de"][1] >= needed, 180)
        back = fleet.replicas("green")
        assert back["eu-fr"] == (0, 0) and back["eu-de"][1] >= needed, (back, operator.log()[-4000:])
        assert min(samples) >= needed, f"Ready replicas fell below {needed}: {samples}"
    finally:
        delete(fleet, "green")
        set_carbon(fleet, "eu-de", carbon_feed(CARBON["eu-de"]))


def test_a_stale_carbon_feed_never_triggers_a_move(fleet: Fleet, operator: OperatorProcess) -> None:
    fleet.apply_hub(inference_deployment("steady", rps=8.0, carbon={"maxGramsPerKwh": LIMIT}))
    try:
        settled(fleet, "steady", 1)
        before = fleet.replicas("steady")
        assert before["eu-de"][0] >= 1
        # eu-de's carbon feed now answers nothing (nothing listens on port 9): it is stale at once.
        unreachable = {
            "type": "electricityMaps",
            "refreshSeconds": 10,
            "staleAfterSeconds": 60,
            "electricityMaps": {"zone": "DE", "endpoint": "http://127.0.0.1:9/v3"},
        }
        set_carbon(fleet, "eu-de", unreachable)
        wait_until(lambda: cluster_condition(fleet, "eu-de", "CarbonFeedStale").get("status") == "True", 60, "stale")
        # The first fetch's error (connection refused, retried with backoff) reaches the message soon after.
        wait_until(
            lambda: "carbon feed 'eu-de'" in cluster_condition(fleet, "eu-de", "CarbonFeedStale").get("message", ""),
            60,
            "the feed's error in CarbonFeedStale",
        )
        for _ in range(20):  # 10 s of 2-s planning cycles
            assert fleet.replicas("steady") == before, operator.log()[-3000:]
            time.sleep(0.5)
    finally:
        delete(fleet, "steady")
        set_carbon(fleet, "eu-de", carbon_feed(CARBON["eu-de"]))


def test_a_bad_carbon_field_is_refused_naming_it(fleet: Fleet) -> None:
    cluster = regional_cluster("eu-bad", 50.0)
    cluster["spec"]["carbonFeed"] = {"type": "gbCarbonIntensity", "gbCarbonIntensity": {}}
    with pytest.raises(RuntimeError) as caught:
        fleet.hub("apply", "-f", "-", input=json.dumps(cluster))
    assert "spec.carbonFeed.basis" in str(caught.value)
    assert "publishes direct emissions only" in str(caught.value)
    idep = inference_deployment("bad-carbon", rps=1.0, carbon={"priceUsdPerTonne": -5})
    with pytest.raises(RuntimeError) as caught:
        fleet.hub("apply", "-f", "-", input=json.dumps(idep))
    assert "spec.carbon.priceUsdPerTonne" in str(caught.value)
