"""tenantNamespaceSelector when the hub does not answer for a tenant's namespace.

Found in review (4 December 2026): a failed read of the namespace's labels gave {}, which NotIn and
DoesNotExist selectors match, so a deny-list (`gridshift.dev/restricted DoesNotExist`) admitted every
tenant it refuses for as long as the read failed, and the planner placed them there. Now the labels last
read stand in; a namespace never read is admitted nowhere; the cycle reports the failed read.
"""

from __future__ import annotations

from tests.service.harness import ServiceHarness, deployment_body

DENY_RESTRICTED = {"matchExpressions": [{"key": "gridshift.dev/restricted", "operator": "DoesNotExist"}]}


def _unreadable(name: str) -> dict[str, str]:
    raise TimeoutError("hub read timed out")


def _restricted_world() -> ServiceHarness:
    """eu-fr, the cheaper region, refuses namespaces labelled restricted; namespace ml is."""
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 60.0, "eu-fr": 40.0})
    world.cluster_bodies["eu-fr"]["spec"]["tenantNamespaceSelector"] = DENY_RESTRICTED
    world.hub.namespaces["ml"] = {"gridshift.dev/restricted": "true"}
    return world


def test_a_deny_list_keeps_refusing_a_tenant_whose_labels_cannot_be_read_now() -> None:
    world = _restricted_world()
    world.add(deployment_body(rps=30.0))
    world.cycle()
    world.cycle()
    assert world.replicas()["eu-fr"] == 0 and world.replicas()["eu-de"] > 0
    world.hub.namespace_labels = _unreadable  # type: ignore[method-assign]
    for _ in range(4):
        report = world.cycle()
        assert world.replicas()["eu-fr"] == 0
    assert any("labels of hub namespace ml not read" in e and "last labels read" in e for e in report.errors)


def test_a_namespace_whose_labels_were_never_read_is_admitted_nowhere_a_selector_guards() -> None:
    world = _restricted_world()
    world.hub.namespace_labels = _unreadable  # type: ignore[method-assign]
    world.add(deployment_body(rps=30.0))
    report = world.cycle()
    world.cycle()
    assert world.replicas()["eu-fr"] == 0 and world.replicas()["eu-de"] > 0
    assert any("no tenantNamespaceSelector admits it" in e for e in report.errors), report.errors


def test_an_admitted_tenant_keeps_its_placement_through_a_failed_read() -> None:
    # The labels last read stand in: a hub hiccup is no reason to move a tenant out of where it is admitted.
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 60.0, "eu-fr": 40.0})
    world.cluster_bodies["eu-fr"]["spec"]["tenantNamespaceSelector"] = DENY_RESTRICTED
    world.add(deployment_body(rps=30.0))
    world.cycle()
    world.cycle()
    placed = world.replicas()
    assert placed["eu-fr"] > 0
    world.hub.namespace_labels = _unreadable  # type: ignore[method-assign]
    for _ in range(3):
        world.cycle()
        assert world.replicas() == placed
    assert world.status()["lastDecision"]["reason"] != "PlacementRules"


def test_a_tenants_labels_are_read_once_a_cycle_whatever_the_number_of_clusters_with_a_selector() -> None:
    # Each cluster's selector read every tenant's labels again (a hub GET per cluster and tenant each cycle), and
    # a failed read was reported once per cluster.
    world = _restricted_world()
    world.cluster_bodies["eu-de"]["spec"]["tenantNamespaceSelector"] = DENY_RESTRICTED
    world.add(deployment_body(rps=30.0))
    reads: list[str] = []
    labels_of = world.hub.namespace_labels

    def counted(name: str) -> dict[str, str]:
        reads.append(name)
        return labels_of(name)

    world.hub.namespace_labels = counted  # type: ignore[method-assign]
    world.cycle()
    assert reads == ["ml"]
    world.hub.namespace_labels = _unreadable  # type: ignore[method-assign]
    report = world.cycle()
    assert sum("labels of hub namespace ml not read" in e for e in report.errors) == 1
