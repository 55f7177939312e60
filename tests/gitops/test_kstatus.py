"""kstatus (sigs.k8s.io/cli-utils, the library Flux's health checks use) classifies the recorded statuses as
each case intends: Current, InProgress or Failed. The classifier is the Go-built e2e/cluster/kstatus-check,
built with the cluster binaries (hence the `cluster` mark: built on first use, skipped with
GRIDSHIFT_SKIP_CLUSTER=1)."""

from __future__ import annotations

import pytest

from tests.gitops import health

pytestmark = pytest.mark.cluster


def test_recorded_statuses_are_classified_as_intended() -> None:
    objects = [health.load(c.path) for c in health.CASES]
    found = health.kstatus(objects)
    assert [(c.kind, c.name, r["status"]) for c, r in zip(health.CASES, found, strict=True)] == [
        (c.kind, c.name, c.kstatus) for c in health.CASES
    ]


def test_a_stalled_deployment_reports_its_message_to_kstatus_users() -> None:
    item = health.case("InferenceDeployment", "capacity-short")
    obj = health.load(item.path)
    (found,) = health.kstatus([obj])
    stalled = next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")
    assert found["message"] == stalled["message"] and "maxReplicas" in found["message"]
