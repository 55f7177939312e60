"""Hub writes at fleet scale, on the real apiservers, counted by the client (gridshift.hub.requests):
status patches go out at most `write_concurrency` at once, and once every status is written an idle
cycle sends no write at all, to the hub or to any member cluster (the Lease renewal aside)."""

from __future__ import annotations

import pytest

from gridshift.hub.requests import RequestCounter
from tests.e2e.operator_env import dump
from tests.security.harness import SecureWorld, inference_deployment, secure, world

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]
__all__ = ["secure", "world"]

COUNT = 60
CONCURRENCY = 4
LABEL = "gridshift.test/suite"


def test_status_writes_are_bounded_and_an_idle_cycle_writes_nothing(world: SecureWorld) -> None:
    objects = [inference_deployment(f"writes-{i:03d}", rps=0.5 + i % 5, mode="Advisory") for i in range(COUNT)]
    for body in objects:
        body["metadata"]["labels"] = {LABEL: "scale-writes"}
    world.fleet.hub("apply", "--server-side", "-f", "-", input=dump(objects))
    try:
        service = world.service(write_concurrency=CONCURRENCY)
        counter = RequestCounter()
        counter.attach(service.hub.api_client)  # type: ignore[attr-defined]
        first = world.cycle(service)
        assert first.leader
        assert first.status_writes >= COUNT, first.errors
        patches = counter.counts[("PATCH", "inferencedeployments/status")]
        assert patches >= COUNT
        assert 2 <= counter.peak_writes_in_flight <= CONCURRENCY, counter.peak_writes_in_flight

        world.cycles_until(service, lambda: world.report.status_writes == 0, "a cycle without status writes")
        for _, member in service.observer.known_members():
            counter.attach(member._api_client)  # type: ignore[attr-defined]
        counter.reset()
        idle = [world.cycle(service) for _ in range(2)]
        assert [(r.status_writes, r.member_writes, r.events) for r in idle] == [(0, 0, 0)] * 2, idle[-1].errors
        writes = {k: n for k, n in counter.counts.items() if k[0] in ("POST", "PUT", "PATCH", "DELETE")}
        assert counter.total(writes_only=True, exclude=frozenset({"leases"})) == 0, writes
        print(
            f"\n{COUNT} Advisory deployments: first cycle {first.seconds:.2f}s, {patches} status patches, "
            f"peak {CONCURRENCY}-bounded writes in flight; idle cycles: "
            f"{counter.total() / len(idle):.0f} apiserver requests per cycle, writes {writes or 'none'}"
        )
    finally:
        world.fleet.hub("delete", "idep", "-n", objects[0]["metadata"]["namespace"], "-l", LABEL, "--wait=false")
