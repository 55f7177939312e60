"""The service cycle against fakes: placement, idle cycles, modes, leadership, migration and safety."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from gridshift.hub.client import MANAGED_ROUTE_LABEL, ObjectRef
from gridshift.service.actuate import route_holders
from tests.service.harness import WORKLOADS, ServiceHarness, deployment_body


def condition(status: dict, kind: str) -> str:
    return next(c["status"] for c in status["conditions"] if c["type"] == kind)


def reason(status: dict, kind: str) -> str:
    return next(c["reason"] for c in status["conditions"] if c["type"] == kind)


def test_new_deployment_lands_in_the_cheapest_region_with_cost_in_status() -> None:
    world = ServiceHarness(["eu-de", "eu-fr", "us-tx"], prices={"eu-de": 90.0, "eu-fr": 20.0, "us-tx": 60.0})
    world.add(deployment_body())
    world.cycle()
    world.cycle()  # Ready counts are observed at the start of a cycle
    replicas = world.replicas()
    assert replicas["eu-fr"] >= 1 and replicas["eu-de"] == 0 and replicas["us-tx"] == 0
    status = world.status()
    assert status["regions"] == "eu-fr"
    assert status["readyReplicas"] == status["desiredReplicas"] == replicas["eu-fr"]
    assert status["cost"]["usdPerMillionTokens"] > 0 and status["cost"]["joulesPerToken"] > 0
    assert condition(status, "Ready") == "True"
    assert status["routing"] == [{"cluster": "eu-fr", "weight": 100}]
    assert world.hub.events and world.hub.events[0][0].name == "chat"


def test_an_idle_cycle_writes_nothing() -> None:
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 90.0, "eu-fr": 20.0})
    world.add(deployment_body())
    world.cycle()
    world.cycle()  # settles status written in the first cycle
    report = world.cycle()
    assert (report.member_writes, report.status_writes, report.events) == (0, 0, 0)
    assert report.leader


def test_an_idle_cycle_validates_no_unchanged_body_and_no_unchanged_status(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bodies are parsed once per resourceVersion and an unchanged status is not validated again: at
    10,000 deployments each cost seconds of CPU a cycle (docs/scale.md)."""
    from gridshift.api import InferenceDeployment, InferenceDeploymentStatus

    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 90.0, "eu-fr": 20.0})
    for name in ("chat", "code"):
        body = deployment_body(name, mode="Advisory")
        body["metadata"]["resourceVersion"] = "1"
        world.add(body)
    world.cycle()
    for body in world.deployments.values():
        body["metadata"]["resourceVersion"] = "2"  # the status written: a new version
    world.cycle()
    validated: list[str] = []
    for model in (InferenceDeployment, InferenceDeploymentStatus):
        original = model.model_validate.__func__  # type: ignore[attr-defined]

        def counting(cls: Any, obj: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            validated.append(cls.__name__)
            return _original(cls, obj, *args, **kwargs)

        monkeypatch.setattr(model, "model_validate", classmethod(counting))
    report = world.cycle()
    assert report.status_writes == 0 and validated == []
    world.deployments["code"]["spec"]["capacity"] = {"minReplicas": 2, "maxReplicas": 4}
    world.deployments["code"]["metadata"]["resourceVersion"] = "3"
    report = world.cycle()
    assert report.status_writes == 1 and validated == ["InferenceDeployment", "InferenceDeploymentStatus"]


def test_advisory_reports_the_plan_but_touches_no_member_cluster() -> None:
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 90.0, "eu-fr": 20.0})
    world.add(deployment_body(mode="Advisory"))
    world.cycle()
    assert all(m.writes == 0 for m in world.members.values())
    status = world.status()
    assert status["mode"] == "Advisory"
    assert reason(status, "Ready") == "Advisory" and status["cost"]["source"] == "Hypothetical"
    assert "would run: eu-fr/" in status["lastDecision"]["summary"]


def test_only_the_lease_holder_acts() -> None:
    world = ServiceHarness(["eu-de"])
    world.add(deployment_body())
    other = world.make_service("op-2")
    world.cycle()  # op-1 takes the lease
    writes = sum(m.writes for m in world.members.values()) + world.hub.status_writes
    report = world.cycle(service=other)
    assert not report.leader
    assert sum(m.writes for m in world.members.values()) + world.hub.status_writes == writes
    # When op-1 stops renewing, op-2 takes over after the lease expires.
    report = world.cycle(service=other, advance=timedelta(minutes=10))
    assert report.leader


def test_a_price_drop_that_pays_back_moves_replicas_make_before_break() -> None:
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 40.0, "eu-fr": 60.0})
    world.add(deployment_body(rps=30.0))
    world.cycle()
    before = world.replicas()
    assert before["eu-de"] > 0 and before["eu-fr"] == 0
    needed = sum(before.values())
    for member in world.members.values():
        member.ready_immediately = False
    world.prices.update({"eu-de": 400.0, "eu-fr": 10.0})
    seen_ready = []
    for _ in range(30):
        world.cycle()
        seen_ready.append(sum(world.ready().values()))
        for member in world.members.values():
            member.mark_all_ready()  # replicas started last cycle are Ready by the next
        if world.replicas()["eu-de"] == 0 and not world.status().get("migration"):
            break
    assert world.replicas()["eu-fr"] >= needed and world.replicas()["eu-de"] == 0
    assert min(seen_ready) >= needed, f"Ready replicas dipped below demand: {seen_ready}"
    assert condition(world.status(), "Reconciling") == "False"
    assert reason(world.status(), "Ready") == "Placed"


def test_a_small_price_wiggle_that_does_not_pay_back_moves_nothing() -> None:
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 40.0, "eu-fr": 41.0})
    world.add(deployment_body(rps=30.0))
    world.cycle()
    placed = world.replicas()
    world.prices.update({"eu-de": 41.0, "eu-fr": 40.0})
    for _ in range(3):
        report = world.cycle()
    assert world.replicas() == placed
    assert report.member_writes == 0


def test_an_unreachable_cluster_is_not_counted_and_capacity_is_raised_elsewhere() -> None:
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 20.0, "eu-fr": 90.0})
    world.add(deployment_body(rps=30.0))
    world.cycle()
    placed = world.replicas()["eu-de"]
    world.members["eu-de"].reachable = False
    world.cycle()
    world.cycle()
    assert world.members["eu-fr"].workloads([WORKLOADS])[0].desired >= placed
    status = world.status()
    assert "unreachable clusters not counted: eu-de" in next(
        c["message"] for c in status["conditions"] if c["type"] == "Ready"
    )
    # When it returns, its replicas are reconciled rather than left running unmanaged.
    world.members["eu-de"].reachable = True
    for _ in range(6):
        world.cycle()
    total = world.replicas()
    assert total["eu-de"] + total["eu-fr"] <= placed + 2


def test_frozen_keeps_placement_even_when_prices_change() -> None:
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 40.0, "eu-fr": 60.0})
    body = deployment_body(rps=30.0)
    world.add(body)
    world.cycle()
    placed = world.replicas()
    body["spec"]["migration"]["mode"] = "Frozen"
    world.prices.update({"eu-de": 900.0, "eu-fr": 1.0})
    for _ in range(3):
        world.cycle()
    assert world.replicas() == placed


def test_delete_removes_objects_from_every_member_cluster() -> None:
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 40.0, "eu-fr": 40.0})
    world.add(deployment_body(rps=30.0, capacity={"minReplicas": 2, "maxReplicas": 8, "minRegions": 2}))
    world.cycle()
    assert all(v > 0 for v in world.replicas().values())
    assert world.service.delete_from_members("ml", "chat", "uid-chat") > 0
    assert all(not m.workloads([WORKLOADS]) for m in world.members.values())


def test_status_is_written_to_the_right_object() -> None:
    world = ServiceHarness(["eu-de"])
    world.add(deployment_body())
    world.cycle()
    assert ObjectRef("InferenceDeployment", "ml", "chat", "uid-chat") in world.hub.statuses
    assert ObjectRef("RegionalCluster", "", "eu-de") in world.hub.statuses


def test_an_idle_advisory_cycle_writes_nothing() -> None:
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 90.0, "eu-fr": 20.0})
    world.add(deployment_body(mode="Advisory"))
    world.cycle()
    world.cycle()
    report = world.cycle()
    assert (report.member_writes, report.status_writes, report.events) == (0, 0, 0)


def test_no_saving_is_claimed_against_a_placement_that_leaves_demand_unserved() -> None:
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 90.0, "eu-fr": 20.0})
    world.add(deployment_body())
    world.cycle()
    decision = world.status()["lastDecision"]
    assert decision["reason"] == "ScaleUp"
    assert "estimatedSavingUsdPerHour" not in decision


def test_cycle_metrics_report_cost_prices_and_decisions() -> None:
    from prometheus_client import generate_latest

    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 90.0, "eu-fr": 20.0})
    world.add(deployment_body())
    world.cycle()
    text = generate_latest(world.service.metrics.registry).decode()
    assert 'gridshift_energy_price_usd_per_kwh{cluster="eu-fr",region="eu-fr"} 0.02' in text  # 20 USD/MWh
    assert 'gridshift_energy_price_with_pue_usd_per_kwh{cluster="eu-fr",region="eu-fr"} 0.024' in text  # x PUE 1.2
    assert (
        'gridshift_gpu_cost_usd_per_hour{cluster="eu-de",gridshift_dev_gpu_type="NVIDIA-H100-80GB-HBM3",region="eu-de"}'
        " 2.0" in text
    )
    # The deployment label is the replica pods' (ns.name), so predicted and measured cost join without relabelling.
    assert 'gridshift_deployment_predicted_cost_usd_per_hour{gridshift_dev_deployment="ml.chat",region="eu-fr"}' in text
    assert 'gridshift_decisions_total{reason="ScaleUp"} 1.0' in text
    assert "gridshift_cycle_duration_seconds_count 1.0" in text
    assert "gridshift_planner_duration_seconds_count 1.0" in text


def routed_world(other_backend: str) -> ServiceHarness:
    """Two clusters, eu-de the cheaper, and a managed HTTPRoute chat-route weighting them 50/50 beside a
    backendRef named after no cluster."""
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 20.0, "eu-fr": 90.0})
    refs = [{"name": "eu-de", "weight": 50}, {"name": "eu-fr", "weight": 50}, {"name": other_backend}]
    world.hub.routes[("ml", "chat-route")] = {
        "metadata": {"labels": {MANAGED_ROUTE_LABEL: "true"}},
        "spec": {"rules": [{"backendRefs": refs}]},
    }
    return world


def test_routing_weights_are_written_to_the_named_httproute_only_when_they_change() -> None:
    world = routed_world("other")
    world.add(deployment_body(routing={"httpRouteName": "chat-route"}))
    world.cycle()
    world.cycle()
    refs = world.hub.routes[("ml", "chat-route")]["spec"]["rules"][0]["backendRefs"]
    assert refs == [{"name": "eu-de", "weight": 100}, {"name": "eu-fr", "weight": 0}, {"name": "other"}]
    writes = world.hub.route_writes
    world.cycle()
    assert world.hub.route_writes == writes


def test_a_deployment_scaled_to_zero_leaves_no_weight_on_the_route_nor_in_status() -> None:
    # Found in review (4 December 2026): with minReplicas 0 and no demand the plan has no weights, and an empty
    # routing was never written: the route kept eu-de 100 for a cluster with no replica (docs/routing.md says
    # such a cluster gets weight 0), so a fallback backendRef never got the traffic.
    world = routed_world("fallback")
    body = deployment_body(routing={"httpRouteName": "chat-route"}, capacity={"minReplicas": 0, "maxReplicas": 4})
    world.add(body)
    for _ in range(2):
        world.cycle()
    refs = world.hub.routes[("ml", "chat-route")]["spec"]["rules"][0]["backendRefs"]
    assert refs[0] == {"name": "eu-de", "weight": 100}
    body["spec"]["demand"]["requestsPerSecond"] = 0.0
    body["metadata"]["generation"] = 2
    for _ in range(4):
        world.cycle()
    assert not any(world.replicas().values())
    refs = world.hub.routes[("ml", "chat-route")]["spec"]["rules"][0]["backendRefs"]
    assert refs == [{"name": "eu-de", "weight": 0}, {"name": "eu-fr", "weight": 0}, {"name": "fallback"}]
    assert world.status().get("routing", []) == []


def test_a_missing_httproute_is_reported_not_fatal() -> None:
    world = ServiceHarness(["eu-de"])
    world.add(deployment_body(routing={"httpRouteName": "nope"}))
    world.cycle()
    report = world.cycle()
    assert any("HTTPRoute ml/nope not found" in e for e in report.errors)
    assert world.replicas()["eu-de"] > 0


def shared_route_world(chat_regions: tuple[str, ...] = ("eu-de",)) -> ServiceHarness:
    """A managed HTTPRoute `models` with a /chat and a /code rule, named by two deployments: chat allowed in
    `chat_regions`, code in eu-fr only, code created an hour before chat (though chat comes first by name)."""
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 40.0, "eu-fr": 60.0})
    rules = [
        {"matches": [{"path": {"value": path}}], "backendRefs": [{"name": "eu-de", "weight": 50}, {"name": "eu-fr"}]}
        for path in ("/chat", "/code")
    ]
    world.hub.routes[("ml", "models")] = {
        "metadata": {"labels": {MANAGED_ROUTE_LABEL: "true"}},
        "spec": {"rules": rules},
    }
    for name, regions, created in (
        ("chat", chat_regions, "2024-06-03T09:00:00Z"),
        ("code", ("eu-fr",), "2024-06-03T08:00:00Z"),
    ):
        body = deployment_body(name, routing={"httpRouteName": "models"}, placement={"allowedRegions": list(regions)})
        body["metadata"]["creationTimestamp"] = created
        world.add(body)
    return world


def route_weights(world: ServiceHarness) -> list[dict[str, int]]:
    rules = world.hub.routes[("ml", "models")]["spec"]["rules"]
    return [{ref["name"]: ref.get("weight") for ref in rule["backendRefs"]} for rule in rules]


def test_of_two_deployments_naming_one_route_the_first_created_writes_it_and_the_other_is_refused() -> None:
    # Found in review: both wrote their weights to every rule of the route, every cycle, without a word (after
    # one cycle both rules read eu-de 0 / eu-fr 100, chat's status eu-de 100): one tenant could take another's
    # traffic by naming its route. Now code, created first, holds the route; chat is refused (RouteFailed).
    world = shared_route_world()
    for _ in range(2):
        report = world.cycle()
    assert route_weights(world) == [{"eu-de": 0, "eu-fr": 100}] * 2
    assert world.status("code")["routing"] == [{"cluster": "eu-fr", "weight": 100}]  # as the route says
    refused = [p for p in report.problems if p.deployment == "ml/chat"]
    assert [p.reason.value for p in refused] == ["RouteFailed"]
    assert "HTTPRoute ml/models is held by InferenceDeployment ml/code" in refused[0].message
    assert "give each InferenceDeployment its own HTTPRoute (docs/routing.md)" in refused[0].message
    assert not [p for p in report.problems if p.deployment == "ml/code"]
    # Only chat's routing is withheld: it is placed and its replicas are Ready, and its status.routing is its
    # own decision (for routers that read status), as with a route that is missing.
    assert world.replicas()["eu-de"] > 0 and world.ready()["eu-de"] == world.replicas()["eu-de"]
    assert world.status("chat")["routing"] == [{"cluster": "eu-de", "weight": 100}]
    assert condition(world.status("code"), "Ready") == "True" and condition(world.status("code"), "Stalled") == "False"
    writes = world.hub.route_writes
    report = world.cycle()
    assert world.hub.route_writes == writes and route_weights(world) == [{"eu-de": 0, "eu-fr": 100}] * 2
    assert any("is held by InferenceDeployment ml/code" in e for e in report.errors)  # every cycle, not once


def test_a_deployment_refused_a_route_says_so_in_its_own_status() -> None:
    # Found in review: RouteFailed reached only the operator's log and gridshift_cycle_errors_total, which a
    # tenant cannot read: chat's status said Ready Placed while its route carried code's weights, not its own.
    # Now chat is Ready False and Stalled (kstatus Failed, Argo CD Degraded), naming the route, its holder and
    # what to change; code, the holder, is untouched.
    world = shared_route_world()
    for _ in range(2):
        world.cycle()
    status = world.status("chat")
    for kind in ("Ready", "Stalled"):
        found = next(c for c in status["conditions"] if c["type"] == kind)
        assert (found["status"], found["reason"]) == ("False" if kind == "Ready" else "True", "RouteHeld")
        assert found["message"].startswith(
            "HTTPRoute ml/models is held by InferenceDeployment ml/code (created first), whose weights it carries; "
            "give each InferenceDeployment its own HTTPRoute (docs/routing.md); "
        )
    assert reason(status, "Reconciling") == "Stalled" and condition(status, "Reconciling") == "False"
    assert reason(world.status("code"), "Ready") == "Placed"
    # A Frozen deployment writes no route, yet the holder's weights are on it: it is told too.
    world.deployments["chat"]["spec"]["migration"] = {"mode": "Frozen"}
    world.deployments["chat"]["metadata"]["generation"] = 2
    report = world.cycle()
    assert world.status("chat")["mode"] == "Frozen" and reason(world.status("chat"), "Stalled") == "RouteHeld"
    # And reported as RouteFailed, as in Auto (review: Frozen and Advisory ones reported nothing, an alert missed).
    assert [p.reason.value for p in report.problems if p.deployment == "ml/chat"] == ["RouteFailed"]
    # Once it names a route of its own, it is Ready again.
    world.hub.routes[("ml", "chat")] = {"metadata": {"labels": {MANAGED_ROUTE_LABEL: "true"}}, "spec": {"rules": []}}
    world.deployments["chat"]["spec"]["migration"] = {"mode": "Auto"}
    world.deployments["chat"]["spec"]["routing"] = {"httpRouteName": "chat"}
    world.deployments["chat"]["metadata"]["generation"] = 3
    world.cycle()
    assert (condition(world.status("chat"), "Ready"), condition(world.status("chat"), "Stalled")) == ("True", "False")


def test_a_deployment_refused_a_route_still_moves_and_its_moves_leave_the_route_alone() -> None:
    # Its ShiftRouting can never be written: it must neither write the holder's route nor hold the move there.
    world = shared_route_world(chat_regions=("eu-de", "eu-fr"))
    for _ in range(2):
        world.cycle()
    chat = world.replicas()["eu-de"]
    assert chat > 0 and world.replicas()["eu-fr"] == chat  # code's, as many for the same demand
    assert route_weights(world) == [{"eu-de": 0, "eu-fr": 100}] * 2
    writes = world.hub.route_writes
    for member in world.members.values():
        member.ready_immediately = False
    world.prices.update({"eu-de": 400.0, "eu-fr": 10.0})
    moving = 0
    for _ in range(30):
        world.cycle()
        assert world.hub.route_writes == writes  # chat's steps write nothing there, not even for a moment
        if world.status("chat").get("migration"):
            # Found in review: RouteHeld, checked first, read Reconciling False (Stalled) while the move ran.
            moving += 1
            assert condition(world.status("chat"), "Reconciling") == "True", world.status("chat")["conditions"]
        for member in world.members.values():
            member.mark_all_ready()
        if world.replicas()["eu-de"] == 0 and not world.status("chat").get("migration"):
            break
    assert moving > 0
    assert world.replicas() == {"eu-de": 0, "eu-fr": 2 * chat}
    assert route_weights(world) == [{"eu-de": 0, "eu-fr": 100}] * 2
    assert reason(world.status("chat"), "Stalled") == "RouteHeld"  # the move done, the route still held


def test_a_route_whose_holder_is_deleted_passes_to_the_next_deployment_naming_it() -> None:
    world = shared_route_world()
    for _ in range(2):
        world.cycle()
    del world.deployments["code"], world.hub.deployments[("ml", "code")]
    report = world.cycle()
    assert route_weights(world) == [{"eu-de": 100, "eu-fr": 0}] * 2
    assert world.status("chat")["routing"] == [{"cluster": "eu-de", "weight": 100}]
    assert not any("HTTPRoute" in e for e in report.errors)


def test_a_holder_the_model_refuses_keeps_its_route_while_its_replicas_serve() -> None:
    # Found in review: holders were chosen among the planned deployments only, so code, refused after an edit
    # admission let through, lost the route to chat, whose weights then sent code's /code traffic to eu-de,
    # where code had no replica (its replicas are left as they run in eu-fr).
    world = shared_route_world()
    for _ in range(2):
        world.cycle()
    code = world.deployments["code"]
    code["spec"]["capacity"] = {"minReplicas": 4, "maxReplicas": 2}
    code["metadata"]["generation"] = 2
    writes = world.hub.route_writes
    report = world.cycle()
    assert any(p.reason.value == "InvalidResource" and p.deployment == "ml/code" for p in report.problems)
    assert world.hub.route_writes == writes and route_weights(world) == [{"eu-de": 0, "eu-fr": 100}] * 2
    assert any("HTTPRoute ml/models is held by InferenceDeployment ml/code" in e for e in report.errors)


def test_a_holder_being_deleted_keeps_its_route_until_it_is_gone() -> None:
    # While its finalizer cleans (its replicas still serving), the route keeps its weights; once the hub no
    # longer has it, the next created takes the route (as when it is deleted at once, the test above).
    world = shared_route_world()
    for _ in range(2):
        world.cycle()
    world.deployments["code"]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    writes = world.hub.route_writes
    report = world.cycle()
    assert world.hub.route_writes == writes and route_weights(world) == [{"eu-de": 0, "eu-fr": 100}] * 2
    assert any("HTTPRoute ml/models is held by InferenceDeployment ml/code" in e for e in report.errors)
    del world.deployments["code"], world.hub.deployments[("ml", "code")]
    report = world.cycle()
    assert route_weights(world) == [{"eu-de": 100, "eu-fr": 0}] * 2
    assert not any("HTTPRoute" in e for e in report.errors)


def test_route_holders_read_every_body_as_it_is_and_skip_what_names_no_route() -> None:
    def body(name: str, routing: Any, created: Any = "2024-06-03T09:00:00Z") -> dict[str, Any]:
        meta = {"namespace": "ml", "name": name, "creationTimestamp": created}
        return {"metadata": meta, "spec": {"routing": routing}}

    bodies = [
        body("a-odd", "models"),  # refused by the model: routing is no object
        body("b-odd", {"httpRouteName": 7}),
        {"metadata": "odd"},
        {},
        body("late", {"httpRouteName": "models"}, created=None),  # no timestamp: sorts last
        body("chat", {"httpRouteName": "models"}),
        body("code", {"httpRouteName": "models"}, created="2024-06-03T08:00:00Z"),
        body("solo", {"httpRouteName": "solo"}, created="not a time"),
    ]
    assert route_holders(bodies) == {("ml", "models"): "ml/code", ("ml", "solo"): "ml/solo"}


def test_a_deployment_deleted_mid_cycle_does_not_stop_the_others() -> None:
    world = ServiceHarness(["eu-de"])
    world.add(deployment_body("gone"))
    world.add(deployment_body("kept"))
    world.hub.deleted.add(("ml", "gone"))
    report = world.cycle()
    assert report.leader
    assert world.status("kept")["desiredReplicas"] > 0
    assert "status" not in world.deployments["gone"]


def test_replicas_an_infeasible_plan_keeps_keep_their_route() -> None:
    # Found in self-review (4 December 2026): a plan with no target (every region forbidden) keeps the running
    # replicas, and the scale-to-zero rule read its empty routing as "route to nothing": eu-de got weight 0
    # while its replicas kept running.
    world = routed_world("fallback")
    body = deployment_body(routing={"httpRouteName": "chat-route"}, rps=30.0)
    world.add(body)
    for _ in range(3):
        world.cycle()
    body["spec"]["placement"] = {"forbiddenRegions": ["eu-fr", "eu-de"]}
    body["metadata"]["generation"] = 2
    for _ in range(3):
        world.cycle()
    assert world.replicas()["eu-de"] > 0
    refs = world.hub.routes[("ml", "chat-route")]["spec"]["rules"][0]["backendRefs"]
    assert refs[0] == {"name": "eu-de", "weight": 100}, refs
    assert world.status()["routing"] == [{"cluster": "eu-de", "weight": 100}]


@pytest.mark.parametrize(
    "routing",
    [[{"cluster": "eu-de", "weight": "x"}], [{"weight": 100}], ["eu-de"], {"eu-de": 100}, [None]],
    ids=["weight-x", "no-cluster", "strings", "mapping", "null-entry"],
)
def test_a_status_routing_edited_by_hand_never_stops_the_deployment(routing: object) -> None:
    # Found in review (4 December 2026): status.routing was parsed outside the guard that drops bad migration
    # steps, so one bad entry raised every cycle before the report stage: the deployment was never acted on, and
    # its status never rewritten, again.
    world = ServiceHarness(["eu-de"])
    body = deployment_body()
    world.add(body)
    world.cycle()
    stored = world.hub.statuses[ObjectRef("InferenceDeployment", "ml", "chat", "uid-chat")]
    stored["routing"] = body["status"]["routing"] = routing
    body["spec"]["demand"]["requestsPerSecond"] = 60.0
    body["metadata"]["generation"] = 2
    for _ in range(3):
        report = world.cycle()
        assert not [e for e in report.errors if "not acted on" in e], report.errors
    assert world.replicas()["eu-de"] > 1
    assert world.status()["routing"] == [{"cluster": "eu-de", "weight": 100}]
