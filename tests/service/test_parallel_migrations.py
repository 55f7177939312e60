"""The migrate stage of Auto deployments runs `write_concurrency` deployments at once
(service.migrate_auto): a cycle that moves many deployments is not one member apply after
another, yet never more than the bound at once, each deployment's steps still in order, and the
cycle's report in the deployments' order whatever finished first."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from gridshift.actuation.members import Manifest
from gridshift.settings import OperatorSettings
from gridshift.testing import FakeMemberCluster
from tests.service.harness import ServiceHarness, deployment_body

COUNT, CONCURRENCY = 24, 4


class SlowMember(FakeMemberCluster):
    """Each apply takes 20 ms, as a real apiserver's answer does; counts applies in flight."""

    lock = threading.Lock()
    in_flight = 0
    peak = 0

    def apply(self, manifests: Sequence[Manifest], fence: Any = None) -> None:
        with SlowMember.lock:
            SlowMember.in_flight += 1
            SlowMember.peak = max(SlowMember.peak, SlowMember.in_flight)
        try:
            time.sleep(0.02)
            with SlowMember.lock:  # the fake's own dict is not meant for threads
                super().apply(manifests)
        finally:
            with SlowMember.lock:
                SlowMember.in_flight -= 1


def test_member_applies_of_many_deployments_overlap_within_the_write_concurrency() -> None:
    settings = OperatorSettings(revalidate_delay_seconds=0, plan_interval_seconds=60, write_concurrency=CONCURRENCY)
    world = ServiceHarness(["eu-de"], gpus_per_cluster=400, settings=settings)
    world.members["eu-de"] = SlowMember("eu-de", gpus={"NVIDIA-H100-80GB-HBM3": 400})
    for index in range(COUNT):
        body = deployment_body(f"d{index:02d}", rps=5.0)
        body["metadata"]["uid"] = f"uid-d{index:02d}"
        world.add(body)
    SlowMember.peak = 0
    report = world.cycle()
    assert report.member_writes >= COUNT, report.errors
    assert 2 <= SlowMember.peak <= CONCURRENCY, SlowMember.peak
    placed = [
        d["metadata"]["name"] for (kind, _, _), d in world.members["eu-de"].objects.items() if kind == "Deployment"
    ]
    assert len(placed) == COUNT


def test_a_deployment_whose_migration_fails_is_reported_in_order_and_the_others_go_on() -> None:
    settings = OperatorSettings(revalidate_delay_seconds=0, plan_interval_seconds=60, write_concurrency=CONCURRENCY)
    world = ServiceHarness(["eu-de"], gpus_per_cluster=400, settings=settings)
    for index in range(8):
        body = deployment_body(f"d{index:02d}", rps=5.0)
        body["metadata"]["uid"] = f"uid-d{index:02d}"
        world.add(body)
    broken = {"ml/d02", "ml/d05"}
    run = world.service.migrations.run

    def failing(now, deployment, *args, **kwargs):  # type: ignore[no-untyped-def]
        if deployment.id in broken:
            raise RuntimeError("boom")
        return run(now, deployment, *args, **kwargs)

    world.service.migrations.run = failing  # type: ignore[method-assign]
    report = world.cycle()
    failed = [e.split(":")[0] for e in report.errors if "not acted on" in e]
    assert failed == ["ml/d02", "ml/d05"]
    assert report.member_writes >= 6
