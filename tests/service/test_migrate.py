"""The migrate stage's state machine (service.migrate) across cycles, against a small fake fleet.

`Fleet` stands in for everything around `Migrations.run`: the member clusters (desired and Ready
replicas per (cluster, GPU type), which clusters answer, which refuse writes) as the `ReplicaSetter`,
and the hub, which keeps the progress in status through the wire format (as the apiserver stores
it) and hands it back next cycle, as the service does. Plans come from the planner's own step
generator (planner.migration.migration_steps) from the fleet's counts to a target, so the steps are
those the service really carries out. One replica serves one unit of demand throughout.

The safety properties are asserted by example and over random migrations (hypothesis): routing
changes only at a ShiftRouting step, a WaitReady never waits past readyTimeoutSeconds, a roll-back
takes back the batch in flight and never a batch already shifted, Ready replicas never fall below
what the migration must keep, nothing is written to an unreachable cluster, and every migration
ends at its target once the clusters answer again.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from gridshift.actuation.members import ActuationForbidden, ClusterUnreachable, Inventory, MemberError, RequestStage
from gridshift.api import InferenceDeployment, MigrationMode, RegionalCluster
from gridshift.api.inference_deployment import MigrationStepStatus
from gridshift.hub.client import MANAGED_ROUTE_LABEL, RouteMissing
from gridshift.planner import snapshot as S
from gridshift.planner.migration import (
    Key,
    MigrationStep,
    RouteWeight,
    StepAction,
    migration_steps,
    percents,
    routing_weights,
)
from gridshift.planner.plan import CostPrediction, DeploymentPlan, Explanation, TargetPlacement
from gridshift.service.inputs import requirements_of
from gridshift.service.migrate import (
    ROUTING_CLUSTER,
    MigrationProgress,
    Migrations,
    StepRecord,
    StepState,
    routing_from_wire,
    routing_to_wire,
)
from gridshift.service.state import ClusterView, CycleErrorReason, CycleReport, ObservedDeployment
from gridshift.settings import OperatorSettings
from gridshift.testing import FakeMemberCluster
from tests.service.harness import T0, ServiceHarness, cluster_body, deployment_body
from tests.service.test_status import message

G = "NVIDIA-H100-80GB-HBM3"
CLUSTERS = ("a", "b", "c")
RESOURCES = {c: RegionalCluster.model_validate(cluster_body(c)) for c in CLUSTERS}
TIMEOUT = 120
"""readyTimeoutSeconds of the fleet's deployment: a WaitReady not met for more than two 60 s cycles rolls back."""
CYCLE = timedelta(seconds=60)
COST = CostPrediction(1.0, 1.0, 0.0, None, None, None, 0.0)
EXPLANATION = Explanation("Move", "test plan", (), (), None, None, None)


def idep(mode: str = "Auto", timeout: int = TIMEOUT) -> InferenceDeployment:
    body = deployment_body(migration={"mode": mode, "paybackHorizonHours": 6, "readyTimeoutSeconds": timeout})
    return InferenceDeployment.model_validate(body)


def stored(step: StepRecord) -> dict[str, Any]:
    """A step as the apiserver stores it (status.py validates through the API model the same way)."""
    return MigrationStepStatus.model_validate(step.to_wire()).model_dump(by_alias=True, exclude_none=True, mode="json")


def key(cluster: str) -> Key:
    return (cluster, G)


@dataclass
class Fleet:
    """Member clusters and the hub's status around one Migrations; see the module docstring."""

    desired: dict[Key, int]
    ready: dict[Key, int]
    revalidate_seconds: float = 0.0
    resource: InferenceDeployment = field(default_factory=idep)
    now: datetime = T0
    unreachable: set[str] = field(default_factory=set)
    """Clusters that do not answer this cycle (their view has no inventory; replicas keep running)."""
    gone: set[str] = field(default_factory=set)
    """Clusters without a RegionalCluster any more: absent from the views."""
    memberless: set[str] = field(default_factory=set)
    """Clusters whose view has no member client although they answered (a defensive case)."""
    refuse: dict[str, MemberError] = field(default_factory=dict)
    writes: list[tuple[str, str, int]] = field(default_factory=list)
    route_refused: Exception | None = None
    """What publishing routing weights raises, when the hub does not take them."""
    routes: list[tuple[RouteWeight, ...]] = field(default_factory=list)
    """Routing weights published, in order (not counted as writes: the route's own are tested apart)."""
    status: dict[str, Any] = field(default_factory=dict)
    migrations: Migrations = field(init=False)

    def __post_init__(self) -> None:
        self.migrations = Migrations(self.revalidate_seconds)

    @classmethod
    def of(cls, ready: Mapping[str, int] | None = None, revalidate_seconds: float = 0.0, **desired: int) -> Fleet:
        """Replicas per cluster, all Ready unless `ready` says otherwise."""
        counts = {key(c): n for c, n in desired.items()}
        ready_counts = {key(c): n for c, n in (ready if ready is not None else desired).items()}
        return cls(counts, ready_counts, revalidate_seconds)

    # ------------------------------------------------------------------ ReplicaSetter

    def set_replicas(self, deployment: ObservedDeployment, view: ClusterView, gpu_type: str, replicas: int) -> int:
        assert deployment.id == "ml/chat"
        assert view.reachable and view.member is not None, f"a write to {view.name}, which did not answer"
        if view.name in self.refuse:
            raise self.refuse[view.name]
        self.writes.append((view.name, gpu_type, replicas))
        k = (view.name, gpu_type)
        if self.desired.get(k) == replicas:
            return 0  # as the Actuator: an unchanged count is not written
        self.desired[k] = replicas
        self.ready[k] = min(self.ready.get(k, 0), replicas)  # the worst case: Ready replicas stop first
        return 1

    def publish_routing(
        self, deployment: ObservedDeployment, routing: Sequence[RouteWeight], views: Mapping[str, ClusterView]
    ) -> int:
        if self.route_refused is not None:
            raise self.route_refused
        self.routes.append(tuple(routing))
        return 0

    # ------------------------------------------------------------------ what one cycle observes

    def views(self) -> dict[str, ClusterView]:
        return {
            c: ClusterView(
                c,
                RESOURCES[c],
                None if c in self.memberless else FakeMemberCluster(c),
                None if c in self.unreachable else Inventory(),
                [],
                None,
            )
            for c in CLUSTERS
            if c not in self.gone
        }

    def visible(self) -> dict[Key, int]:
        """Desired counts as the observe stage reports them: nothing of a cluster that is gone."""
        return {k: n for k, n in sorted(self.desired.items()) if k[0] not in self.gone}

    def observed(self) -> ObservedDeployment:
        placements = tuple(
            S.Placement(c, g, n, 0 if c in self.unreachable else self.ready.get((c, g), 0))
            for (c, g), n in self.visible().items()
        )
        meta = {"name": "chat", "namespace": "ml", "uid": "uid-chat"}
        body = {"metadata": meta, "status": copy.deepcopy(self.status)}
        planned = S.Deployment("ml", "chat", requirements_of(self.resource.spec), placements)
        return ObservedDeployment(body, self.resource, planned, None)

    def observed_ready(self) -> dict[Key, int]:
        return {k: 0 if k[0] in self.unreachable else n for k, n in self.ready.items() if k[0] not in self.gone}

    def plan(
        self,
        target: Mapping[str, int],
        max_moves: int = 1,
        mode: MigrationMode = MigrationMode.AUTO,
        steps: tuple[MigrationStep, ...] | None = None,
    ) -> DeploymentPlan:
        """The planner's plan from the fleet's counts to `target` (replicas per cluster)."""
        goal = {key(c): n for c, n in target.items()}
        capacity = {k: 1.0 for k in {*goal, *self.desired}}
        if steps is None:
            steps = migration_steps(
                self.visible(), self.observed_ready(), goal, capacity, float(sum(goal.values())), max_moves
            )
        targets = tuple(
            TargetPlacement(c, c, g, n, self.desired.get((c, g), 0), self.ready.get((c, g), 0), 1.0)
            for (c, g), n in sorted(goal.items())
        )
        return DeploymentPlan(
            "ml/chat",
            mode,
            mode is MigrationMode.AUTO,
            True,
            None,
            targets,
            steps,
            routing_weights(goal, capacity),
            COST,
            EXPLANATION,
            None,
            None,
            0.0,
            # The deployment may use every cluster of the fleet, as the planner's options say (Migrations
            # abandons a move into one it may no longer use).
            max_num_seqs={key(c): 64 for c in CLUSTERS},
        )

    # ------------------------------------------------------------------ one cycle

    def cycle(self, plan: DeploymentPlan, advance: timedelta = CYCLE) -> tuple[MigrationProgress, CycleReport]:
        """Migrations.run once, `advance` after the last cycle; the progress is stored in status."""
        self.now += advance
        report = CycleReport(leader=True, started_at=self.now)
        progress = self.migrations.run(self.now, self.observed(), plan, self.views(), self, report)
        self.status = {
            "migration": [stored(s) for s in progress.steps],
            "routing": routing_to_wire(progress.routing),
            "mode": plan.mode.value,  # as service.status writes it every cycle
        }
        return progress, report

    def make_ready(self) -> None:
        """Replicas started in clusters that answer are Ready (by the next cycle, in the tests)."""
        for k, n in self.desired.items():
            if k[0] not in self.unreachable:
                self.ready[k] = n

    @property
    def routing(self) -> tuple[RouteWeight, ...]:
        return routing_from_wire(self.status.get("routing") or [])

    def counts(self) -> dict[str, int]:
        return {c: n for (c, _), n in sorted(self.desired.items()) if n > 0}


def actions(progress: MigrationProgress) -> list[tuple[str, str, int, str]]:
    return [(s.action.value, s.cluster, s.replicas, s.state.value) for s in progress.steps]


# --- StepRecord and MigrationProgress: the wire format ---------------------------------------------

ROUTES = st.lists(st.builds(RouteWeight, st.sampled_from(CLUSTERS), st.integers(0, 100)), max_size=3).map(tuple)
RECORDS = st.builds(
    StepRecord,
    index=st.integers(0, 50),
    action=st.sampled_from(StepAction),
    cluster=st.sampled_from([*CLUSTERS, ROUTING_CLUSTER]),
    gpu_type=st.sampled_from(["", G, "*"]),
    replicas=st.integers(0, 64),
    state=st.sampled_from(StepState),
    from_replicas=st.none() | st.integers(0, 64),
    routing=ROUTES,
    started_at=st.none() | st.datetimes(timezones=st.just(UTC)),
    message=st.text(max_size=40),
)


@settings(max_examples=200, deadline=None)
@given(RECORDS)
def test_a_step_record_survives_the_wire_format_as_stored_losslessly(record: StepRecord) -> None:
    assert StepRecord.from_status(MigrationStepStatus.model_validate(stored(record))) == record


def test_the_wire_format_names_every_field_as_the_crd_does_and_leaves_out_defaults() -> None:
    record = StepRecord(
        3,
        StepAction.SCALE_UP,
        "b",
        G,
        4,
        StepState.DONE,
        from_replicas=0,
        routing=(RouteWeight("a", 40), RouteWeight("b", 60)),
        started_at=T0,
        message="ok",
    )
    assert record.to_wire() == {
        "index": 3,
        "action": "ScaleUp",
        "cluster": "b",
        "gpuType": G,
        "replicas": 4,
        "state": "Done",
        "fromReplicas": 0,
        "routing": [{"cluster": "a", "weight": 40}, {"cluster": "b", "weight": 60}],
        "startedAt": "2024-06-03T10:00:00+00:00",
        "message": "ok",
    }
    bare = StepRecord(0, StepAction.WAIT_READY, "b", G, 4)
    assert bare.to_wire() == {
        "index": 0,
        "action": "WaitReady",
        "cluster": "b",
        "gpuType": G,
        "replicas": 4,
        "state": "Pending",
    }
    assert bare.key == ("b", G) and bare.from_replicas is None and bare.routing == () and bare.message == ""


def test_progress_is_read_back_from_status_steps_and_routing() -> None:
    steps = [
        StepRecord(0, StepAction.SCALE_UP, "b", G, 2, StepState.DONE, from_replicas=0, started_at=T0),
        StepRecord(1, StepAction.WAIT_READY, "b", G, 2, StepState.RUNNING, started_at=T0, message="waiting"),
        StepRecord(2, StepAction.SHIFT_ROUTING, "*", "*", 2, routing=(RouteWeight("b", 100),)),
    ]
    status = {"migration": [stored(s) for s in steps], "routing": [{"cluster": "a", "weight": 100}]}
    progress = MigrationProgress.from_status(status)
    assert progress.steps == steps
    assert progress.routing == (RouteWeight("a", 100),)
    assert progress.error is None and progress.in_flight
    assert routing_to_wire(progress.routing) == status["routing"]


def test_steps_that_do_not_parse_are_dropped_so_the_plan_starts_afresh_but_routing_is_kept() -> None:
    good = stored(StepRecord(0, StepAction.SCALE_UP, "b", G, 2))
    for bad in ({**good, "replicas": -1}, {**good, "action": "Teleport"}, {**good, "state": "Lost"}):
        status = {"migration": [good, bad], "routing": [{"cluster": "a", "weight": 100}]}
        progress = MigrationProgress.from_status(status)
        assert progress.steps == [] and not progress.in_flight
        assert progress.routing == (RouteWeight("a", 100),)
    empty = MigrationProgress.from_status({})
    assert (empty.steps, empty.routing, empty.in_flight) == ([], (), False)
    assert MigrationProgress.from_status({"migration": None, "routing": None}).steps == []


def test_a_routing_entry_that_does_not_parse_is_dropped_and_the_entries_after_it_are_kept() -> None:
    routing = [
        {"cluster": "a", "weight": 40},
        {"cluster": "b", "weight": "x"},
        {"weight": 10},
        {"cluster": "c", "weight": 60},
    ]
    assert routing_from_wire(routing) == (RouteWeight("a", 40), RouteWeight("c", 60))
    assert MigrationProgress.from_status({"routing": routing}).routing == (RouteWeight("a", 40), RouteWeight("c", 60))


def test_only_pending_and_running_steps_are_in_flight() -> None:
    assert [s.finished for s in StepState] == [False, False, True, True, True]
    for state in StepState:
        progress = MigrationProgress([StepRecord(0, StepAction.SCALE_UP, "b", G, 1, state)])
        assert progress.in_flight is (not state.finished)


# --- carrying out the steps --------------------------------------------------------------------------


def test_pure_growth_starts_at_once_and_routing_moves_only_when_the_replicas_are_ready() -> None:
    fleet = Fleet.of(revalidate_seconds=15, a=1)
    fleet.status["routing"] = [{"cluster": "a", "weight": 100}]
    plan = fleet.plan({"a": 2, "b": 2})
    progress, report = fleet.cycle(plan)
    # Both ScaleUps in one cycle, then the WaitReady holds the rest; routing has not moved yet.
    assert fleet.writes == [("a", G, 2), ("b", G, 2)]
    assert report.member_writes == 2 and report.errors == []
    assert actions(progress) == [
        ("ScaleUp", "a", 2, "Done"),
        ("ScaleUp", "b", 2, "Done"),
        ("WaitReady", "a", 2, "Running"),
        ("WaitReady", "b", 2, "Pending"),
        ("ShiftRouting", "*", 4, "Pending"),
    ]
    assert [s.from_replicas for s in progress.steps] == [1, 0, None, None, None]
    assert progress.steps[2].started_at == fleet.now and progress.steps[3].started_at is None
    assert fleet.routing == (RouteWeight("a", 100),)
    # Ready by the next cycle: routing moves to both clusters and the migration is over.
    fleet.make_ready()
    progress, report = fleet.cycle(plan)
    assert progress.steps == [] and report.member_writes == 0
    assert fleet.routing == (RouteWeight("a", 50), RouteWeight("b", 50))


def test_a_move_runs_make_before_break_batch_by_batch_across_cycles() -> None:
    fleet = Fleet.of(a=2)
    fleet.status["routing"] = [{"cluster": "a", "weight": 100}]
    seen = []
    for _ in range(6):
        progress, _ = fleet.cycle(fleet.plan({"b": 2}))
        seen.append((fleet.counts(), fleet.routing, [s.state.value for s in progress.steps]))
        fleet.make_ready()
    assert seen[:3] == [
        # ScaleUp b, then wait for it; a keeps all traffic.
        ({"a": 2, "b": 1}, (RouteWeight("a", 100),), ["Done", "Running", "Pending", "Pending"] + ["Pending"] * 4),
        # b is Ready: half the traffic, a loses one replica, the next ScaleUp waits.
        (
            {"a": 1, "b": 2},
            (RouteWeight("a", 50), RouteWeight("b", 50)),
            ["Done", "Done", "Done", "Done", "Done", "Running", "Pending", "Pending"],
        ),
        # Done: all traffic on b, a stopped, no steps left in status.
        ({"b": 2}, (RouteWeight("b", 100),), []),
    ]
    assert seen[3:] == [seen[2]] * 3  # nothing more to do: the plan has no steps
    assert fleet.writes == [("b", G, 1), ("a", G, 1), ("b", G, 2), ("a", G, 0)]


def moving_a_to_b_with_b_ready() -> tuple[Fleet, DeploymentPlan]:
    """Two replicas moving from a (all traffic) to b, after the cycle that started b's first and made it Ready:
    the next cycle's ShiftRouting comes before a's first ScaleDown."""
    fleet = Fleet.of(a=2)
    fleet.status["routing"] = [{"cluster": "a", "weight": 100}]
    plan = fleet.plan({"b": 2})
    fleet.cycle(plan)
    fleet.make_ready()
    return fleet, plan


def test_a_waited_cluster_whose_replicas_vanish_before_the_routing_moves_is_waited_on_again() -> None:
    # b's WaitReady is done but the hub refused the weights, then gridshift's Deployment in b is deleted by hand:
    # no placement of b is observed at all. The move waits on b again (no traffic to b, no ScaleDown in a) rather
    # than shifting traffic to replicas that are gone, and the cycle carries on without an error.
    fleet, plan = moving_a_to_b_with_b_ready()
    fleet.route_refused = RuntimeError("hub answered 500")
    fleet.cycle(plan)
    fleet.route_refused = None
    del fleet.desired[key("b")]
    del fleet.ready[key("b")]
    progress, report = fleet.cycle(plan)
    assert actions(progress)[1] == ("WaitReady", "b", 1, "Running") and not report.errors
    assert fleet.routing == (RouteWeight("a", 100),) and fleet.counts() == {"a": 2}


def test_weights_the_hub_does_not_take_hold_the_scale_down_behind_them() -> None:
    # The route must send traffic to b before a's replica stops: a ShiftRouting whose weights are
    # refused (a conflict, a 5xx) holds the migration there, cycle after cycle, until they are taken.
    fleet, plan = moving_a_to_b_with_b_ready()
    fleet.route_refused = RuntimeError("hub answered 500")
    for _ in range(3):
        progress, report = fleet.cycle(plan)
        assert fleet.counts() == {"a": 2, "b": 1} and fleet.routing == (RouteWeight("a", 100),)
        assert progress.error == "routing weights not published: internal error (RuntimeError); will retry"
        assert report.errors == ["ml/chat: routing weights not published: internal error (RuntimeError)"]
        assert [p.reason for p in report.problems] == [CycleErrorReason.ROUTE_FAILED]
    fleet.route_refused = None
    progress, report = fleet.cycle(plan)
    assert fleet.routes == [(RouteWeight("a", 50), RouteWeight("b", 50))] and fleet.counts() == {"a": 1, "b": 2}
    assert fleet.routing == (RouteWeight("a", 50), RouteWeight("b", 50))
    assert report.errors == [] and progress.error is None


def test_a_missing_route_or_a_scale_up_does_not_hold_the_migration() -> None:
    # No managed route carries traffic (missing, or unlabelled: gridshift never writes it), or nothing
    # is stopped after the weights (a scale-up): holding would protect nothing and keep every later
    # plan waiting. The failure is still reported, and named in the step.
    fleet, plan = moving_a_to_b_with_b_ready()
    fleet.route_refused = RouteMissing("HTTPRoute ml/chat-route not found")
    progress, report = fleet.cycle(plan)
    assert fleet.counts() == {"a": 1, "b": 2} and fleet.routing == (RouteWeight("a", 50), RouteWeight("b", 50))
    assert report.errors == ["ml/chat: routing weights not published: HTTPRoute ml/chat-route not found"]
    shifted = [s for s in progress.steps if s.action is StepAction.SHIFT_ROUTING and s.state is StepState.DONE]
    assert shifted and shifted[-1].message == "routing weights not published: HTTPRoute ml/chat-route not found"
    grown = Fleet.of(a=1)
    grown.route_refused = RuntimeError("hub answered 500")
    progress, _ = grown.cycle(grown.plan({"a": 2}))
    grown.make_ready()
    progress, report = grown.cycle(grown.plan({"a": 2}))
    assert grown.counts() == {"a": 2} and progress.steps == [] and progress.error is None
    assert [p.reason for p in report.problems] == [CycleErrorReason.ROUTE_FAILED]


def test_a_restarted_operator_resumes_the_migration_from_status() -> None:
    fleet = Fleet.of(a=2)
    fleet.cycle(fleet.plan({"b": 2}))
    stored_steps = copy.deepcopy(fleet.status["migration"])
    fleet.migrations = Migrations(15)  # a new process: nothing in memory, a revalidation delay
    fleet.make_ready()
    # While a migration is in flight the new plan is not started, whatever it says.
    progress, _ = fleet.cycle(fleet.plan({"c": 3}))
    assert [s["index"] for s in fleet.status["migration"]] == [s["index"] for s in stored_steps]
    assert {s.cluster for s in progress.steps} == {"a", "b", "*"}
    assert fleet.counts() == {"a": 1, "b": 2}
    assert ("c", G, 3) not in fleet.writes


def test_modes_other_than_auto_keep_status_as_it_is_and_touch_nothing() -> None:
    fleet = Fleet.of(a=2)
    fleet.cycle(fleet.plan({"b": 2}))
    before, writes = copy.deepcopy(fleet.status), list(fleet.writes)
    for mode in (MigrationMode.ADVISORY, MigrationMode.FROZEN):
        fleet.make_ready()
        progress, report = fleet.cycle(fleet.plan({"c": 2}, mode=mode))
        assert {**fleet.status, "mode": "Auto"} == before and fleet.writes == writes  # the mode is the plan's
        assert report.member_writes == 0 and report.errors == []
        assert progress.routing == routing_from_wire(before["routing"])


def test_without_steps_the_plans_routing_is_published_and_an_empty_one_keeps_the_stored_routing() -> None:
    fleet = Fleet.of(a=1, b=1)
    progress, _ = fleet.cycle(fleet.plan({"a": 1, "b": 1}))
    assert progress.steps == [] and progress.routing == (RouteWeight("a", 50), RouteWeight("b", 50))
    no_routing = fleet.plan({"a": 1, "b": 1})
    progress, _ = fleet.cycle(replace(no_routing, routing=()))
    assert progress.routing == (RouteWeight("a", 50), RouteWeight("b", 50))


def test_scaled_to_zero_the_plans_empty_routing_replaces_the_stored_one_but_not_while_replicas_run() -> None:
    # Nothing runs and nothing is planned: no cluster keeps a weight (a route to replicas that are gone).
    fleet = Fleet.of(a=0)
    fleet.status["routing"] = [{"cluster": "a", "weight": 100}]
    progress, _ = fleet.cycle(fleet.plan({"a": 0}))
    assert progress.steps == [] and progress.routing == () and fleet.routing == ()
    # A replica still runs that the plan (no steps, no target) keeps outside its targets: its weight stays.
    kept = Fleet.of(a=1)
    kept.status["routing"] = [{"cluster": "a", "weight": 100}]
    progress, _ = kept.cycle(kept.plan({"a": 0}, steps=()))
    assert progress.routing == (RouteWeight("a", 100),) and kept.counts() == {"a": 1}


# --- revalidation ------------------------------------------------------------------------------------


def test_a_move_starts_only_once_the_same_target_was_planned_revalidate_delay_apart() -> None:
    fleet = Fleet.of(revalidate_seconds=15, a=2)
    plan = fleet.plan({"b": 2})
    progress, _ = fleet.cycle(plan)  # first seen: wait
    assert progress.steps == [] and fleet.writes == []
    progress, _ = fleet.cycle(plan, advance=timedelta(seconds=14))  # not yet 15 s
    assert progress.steps == [] and fleet.writes == []
    progress, _ = fleet.cycle(plan, advance=timedelta(seconds=1))  # 15 s after the first sighting
    assert fleet.writes == [("b", G, 1)] and progress.in_flight


def test_a_changed_target_restarts_the_revalidation_wait() -> None:
    fleet = Fleet.of(revalidate_seconds=15, a=2)
    fleet.cycle(fleet.plan({"b": 2}))
    fleet.cycle(fleet.plan({"c": 2}))  # another target: its own wait starts now
    assert fleet.writes == []
    fleet.cycle(fleet.plan({"c": 2}))
    assert fleet.writes == [("c", G, 1)]


def test_a_plan_without_steps_in_between_restarts_the_revalidation_wait() -> None:
    fleet = Fleet.of(revalidate_seconds=15, a=2)
    fleet.cycle(fleet.plan({"b": 2}))
    fleet.cycle(fleet.plan({"a": 2}))  # the move is off for a cycle
    fleet.cycle(fleet.plan({"b": 2}), advance=timedelta(seconds=5))  # seen again: waits anew
    assert fleet.writes == []
    fleet.cycle(fleet.plan({"b": 2}), advance=timedelta(seconds=15))
    assert fleet.writes == [("b", G, 1)]


def test_without_a_revalidation_delay_a_move_starts_at_once() -> None:
    fleet = Fleet.of(a=2)
    fleet.cycle(fleet.plan({"b": 2}))
    assert fleet.writes == [("b", G, 1)]


# --- WaitReady timeout: roll-back ----------------------------------------------------------------------


def test_replicas_not_ready_within_the_timeout_are_scaled_back_and_the_reason_reported() -> None:
    fleet = Fleet.of(a=2)
    fleet.status["routing"] = [{"cluster": "a", "weight": 100}]
    plan = fleet.plan({"a": 1, "b": 1})
    progress, _ = fleet.cycle(plan)
    started = progress.steps[1].started_at
    assert actions(progress)[:2] == [("ScaleUp", "b", 1, "Done"), ("WaitReady", "b", 1, "Running")]
    progress, report = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT))  # exactly the timeout: waits on
    assert progress.in_flight and report.errors == [] and fleet.counts() == {"a": 2, "b": 1}
    assert progress.steps[1].started_at == started
    progress, report = fleet.cycle(plan, advance=timedelta(seconds=1))
    assert fleet.writes[-1] == ("b", G, 0) and fleet.counts() == {"a": 2}
    assert report.member_writes == 1
    assert report.errors == [
        f"ml/chat: replicas not Ready within readyTimeoutSeconds={TIMEOUT}; scaled back to the counts before the move"
    ]
    # Counted by reason, not only logged (review: a roll-back left no other trace).
    assert [(p.reason, p.deployment) for p in report.problems] == [(CycleErrorReason.MIGRATION_ROLLED_BACK, "ml/chat")]
    # The move is over (nothing left in status) and routing never left a.
    assert progress.steps == [] and fleet.status["migration"] == []
    assert fleet.routing == (RouteWeight("a", 100),)


def test_a_roll_back_restores_each_scale_up_of_the_batch_to_its_own_count_before_it() -> None:
    # Two clusters started in one batch, a already had a replica, b none; neither gets Ready.
    fleet = Fleet.of(a=1, c=4)
    plan = fleet.plan({"a": 2, "b": 1, "c": 2}, max_moves=2)
    progress, _ = fleet.cycle(plan)
    assert fleet.writes == [("a", G, 2), ("b", G, 1)]
    assert [s.from_replicas for s in progress.steps[:2]] == [1, 0]
    progress, report = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT + 1))
    assert fleet.writes[2:] == [("a", G, 1), ("b", G, 0)] and report.member_writes == 2
    assert fleet.counts() == {"a": 1, "c": 4} and progress.steps == []


def test_from_replicas_is_the_count_before_each_scale_up_after_the_earlier_steps() -> None:
    fleet = Fleet.of(a=2)
    steps = (
        MigrationStep(0, StepAction.SCALE_DOWN, "a", G, 1),
        MigrationStep(1, StepAction.SCALE_UP, "a", G, 3),
        MigrationStep(2, StepAction.SCALE_UP, "b", G, 1),
        MigrationStep(3, StepAction.SCALE_UP, "b", G, 2),
        MigrationStep(4, StepAction.WAIT_READY, "b", G, 2),
    )
    progress, _ = fleet.cycle(fleet.plan({"a": 3, "b": 2}, steps=steps))
    assert [s.from_replicas for s in progress.steps] == [None, 1, 0, 1, None]


def test_a_roll_back_touches_only_what_the_batch_in_flight_started() -> None:
    fleet = Fleet.of(a=2)
    plan = fleet.plan({"b": 1, "c": 1})  # one at a time: b's batch, then c's
    progress, _ = fleet.cycle(plan)
    assert [(s.action.value, s.cluster, s.from_replicas) for s in progress.steps if s.from_replicas is not None] == [
        ("ScaleUp", "b", 0),
        ("ScaleUp", "c", 0),
    ]
    _, report = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT + 1))
    assert fleet.writes == [("b", G, 1), ("b", G, 0)] and report.member_writes == 1  # c was never started
    assert fleet.migrations.holds(fleet.now) == {"ml/chat": frozenset({key("b")})}  # nor held


def test_a_roll_back_writes_each_key_once_back_to_its_count_before_the_batch() -> None:
    # The planner starts each key once per batch; were it to start one twice, the roll-back must
    # still end at the count before the batch, without a detour.
    fleet = Fleet.of(a=2)
    steps = (
        MigrationStep(0, StepAction.SCALE_UP, "b", G, 1),
        MigrationStep(1, StepAction.SCALE_UP, "b", G, 2),
        MigrationStep(2, StepAction.WAIT_READY, "b", G, 2),
    )
    plan = fleet.plan({"a": 2, "b": 2}, steps=steps)
    fleet.cycle(plan)
    _, report = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT + 1))
    assert fleet.writes == [("b", G, 1), ("b", G, 2), ("b", G, 0)] and report.member_writes == 1


def test_a_rolled_back_move_is_revalidated_before_it_is_tried_again() -> None:
    fleet = Fleet.of(revalidate_seconds=15, a=2)
    plan = fleet.plan({"b": 2})
    fleet.cycle(plan)
    fleet.cycle(plan)  # revalidated: b to 1
    _, report = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT + 1))  # never Ready: rolled back
    assert fleet.writes == [("b", G, 1), ("b", G, 0)] and "not Ready" in report.errors[-1]
    fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT))  # the hold ends; a new sighting, not the one before
    assert fleet.writes == [("b", G, 1), ("b", G, 0)]
    fleet.cycle(plan)
    assert fleet.writes[-1] == ("b", G, 1)


def test_a_rolled_back_move_is_held_for_the_timeout_doubled_at_each_roll_back_in_a_row() -> None:
    # Found in review: replicas that start slower than readyTimeoutSeconds were started, stopped after the
    # timeout and started again the next cycle, for ever: GPUs paid for that never served.
    fleet = Fleet.of(a=2)
    plan = fleet.plan({"a": 2, "b": 1})  # pure growth: starts at once
    fleet.cycle(plan)
    progress, _ = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT + 1))
    rolled_at = fleet.now
    assert fleet.writes == [("b", G, 1), ("b", G, 0)]
    assert progress.rolled_back is not None and progress.rolled_back.startswith("replicas not Ready within")
    until = (rolled_at + timedelta(seconds=TIMEOUT)).isoformat(timespec="seconds")
    assert progress.rolled_back.endswith(
        f"; no replica starts again in b ({G}) before {until} (raise spec.migration.readyTimeoutSeconds if replicas "
        "there take longer to start)"
    )
    progress, report = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT - 1))  # still held
    assert fleet.writes == [("b", G, 1), ("b", G, 0)] and progress.steps == [] and report.errors == []
    assert progress.rolled_back is None  # said once, in the cycle of the roll-back
    fleet.cycle(plan, advance=timedelta(seconds=1))  # the hold is over: tried again
    assert fleet.writes[-1] == ("b", G, 1)
    progress, _ = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT + 1))  # slow again: twice the hold
    assert fleet.writes[-1] == ("b", G, 0) and progress.rolled_back is not None
    until = (fleet.now + timedelta(seconds=2 * TIMEOUT)).isoformat(timespec="seconds")
    assert f") before {until} (raise" in progress.rolled_back
    fleet.cycle(plan, advance=timedelta(seconds=2 * TIMEOUT - 1))
    assert fleet.writes[-1] == ("b", G, 0)
    # Growth elsewhere is not held: only moves that start replicas where the roll-back happened.
    fleet.cycle(fleet.plan({"a": 3}))
    assert fleet.writes[-1] == ("a", G, 3)


def _held_for(progress: MigrationProgress, now: datetime) -> float:
    """The hold a roll-back's message gives, in readyTimeoutSeconds from `now`."""
    assert progress.rolled_back is not None
    until = datetime.fromisoformat(progress.rolled_back.split(") before ")[1].split(" ")[0])
    return (until - now).total_seconds() / TIMEOUT


def test_the_hold_after_roll_backs_grows_to_its_cap_and_a_finished_move_ends_it() -> None:
    fleet = Fleet.of(a=2)
    plan = fleet.plan({"a": 2, "b": 1})
    holds = []
    for _ in range(6):
        fleet.cycle(plan, advance=timedelta(days=1))  # past any hold: starts b
        progress, _ = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT + 1))
        holds.append(_held_for(progress, fleet.now))
    assert holds == [1, 2, 4, 8, 8, 8]
    fleet.cycle(plan, advance=timedelta(days=1))
    fleet.make_ready()
    fleet.cycle(plan)  # b Ready: the move finishes
    assert fleet.counts() == {"a": 2, "b": 1} and fleet.status["migration"] == []
    fleet.desired[key("b")] = fleet.ready[key("b")] = 0  # b's replica stops (a node lost, say)
    fleet.cycle(plan)
    progress, _ = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT + 1))
    assert _held_for(progress, fleet.now) == 1  # a finished move ended the run of roll-backs


def test_a_roll_back_leaves_unreachable_clusters_alone_and_reports_a_refused_write() -> None:
    fleet = Fleet.of(c=2)
    plan = fleet.plan({"a": 1, "b": 1}, max_moves=2)
    fleet.cycle(plan)
    fleet.ready[key("a")] = 1  # a gets Ready, b never does
    fleet.cycle(plan)
    fleet.unreachable = {"a"}  # a's WaitReady is done: the migration does not wait on a
    fleet.refuse = {"b": ActuationForbidden("b", "deployments.apps is forbidden")}
    _, report = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT + 1))
    assert fleet.writes == [("a", G, 1), ("b", G, 1)]  # nothing written in the roll-back
    # Found in review: it said "scaled back to the counts before the move" though nothing was written. The member's
    # words go to the errors alone; the reason, which also goes out as an Event, names the clusters.
    assert report.errors == [
        "ml/chat: roll-back in b: cluster b: forbidden: deployments.apps is forbidden",
        f"ml/chat: replicas not Ready within readyTimeoutSeconds={TIMEOUT}; nothing was scaled back; "
        "scaling back refused in b, left to a later wait's roll-back; "
        "roll-back not written in a (not answering), left to a later wait's roll-back",
    ]
    assert report.member_writes == 0


# --- unreachable clusters and refused writes ----------------------------------------------------------


def test_a_migration_waiting_on_an_unreachable_cluster_is_abandoned_and_planned_afresh() -> None:
    fleet = Fleet.of(a=2)
    fleet.cycle(fleet.plan({"b": 2}))
    assert fleet.writes == [("b", G, 1)]
    fleet.unreachable = {"b"}
    progress, report = fleet.cycle(fleet.plan({"a": 1, "c": 1}))
    assert report.errors[0] == "ml/chat: migration abandoned, a cluster it needs is unreachable"
    # The fresh plan started at once: ScaleUp c, wait for it; nothing was sent to b.
    assert fleet.writes == [("b", G, 1), ("c", G, 1)]
    assert actions(progress)[:2] == [("ScaleUp", "c", 1, "Done"), ("WaitReady", "c", 1, "Running")]


def test_a_finished_step_on_an_unreachable_cluster_does_not_abandon_the_migration() -> None:
    fleet = Fleet.of(c=2)
    plan = fleet.plan({"a": 1, "b": 1}, max_moves=2)
    fleet.cycle(plan)
    fleet.ready[key("a")] = 1
    fleet.cycle(plan)  # a's WaitReady is done, b's waits
    fleet.unreachable = {"a"}
    progress, report = fleet.cycle(plan)
    assert report.errors == [] and progress.in_flight
    fleet.make_ready()
    fleet.ready[key("b")] = 1
    fleet.cycle(plan)
    # a's replica is not counted Ready while a is unreachable: c keeps serving until it is seen Ready again
    # (review: the shift and the ScaleDown trusted a WaitReady done cycles before).
    assert fleet.counts() == {"a": 1, "b": 1, "c": 2}
    fleet.unreachable = set()
    fleet.cycle(plan)
    assert fleet.counts() == {"a": 1, "b": 1}


def test_a_step_on_a_cluster_that_does_not_answer_waits_without_writing() -> None:
    steps = (
        MigrationStep(0, StepAction.SCALE_UP, "b", G, 2),
        MigrationStep(1, StepAction.WAIT_READY, "b", G, 2),
    )
    for blocked in ("unreachable", "memberless", "gone"):
        fleet = Fleet.of(a=2)
        setattr(fleet, blocked, {"b"})
        progress, report = fleet.cycle(fleet.plan({"b": 2}, steps=steps))
        assert fleet.writes == [] and report.member_writes == 0, blocked
        assert actions(progress) == [("ScaleUp", "b", 2, "Running"), ("WaitReady", "b", 2, "Pending")]
        assert progress.steps[0].message == "cluster b unreachable; will retry"
        assert progress.error is None


def test_a_refused_write_leaves_the_step_running_with_the_reason_and_is_retried() -> None:
    fleet = Fleet.of(a=2)
    refusal = ActuationForbidden("b", 'cannot patch resource "deployments" in "gridshift-workloads"')
    fleet.refuse = {"b": refusal}
    plan = fleet.plan({"b": 2})
    progress, report = fleet.cycle(plan)
    assert progress.error == str(refusal)  # the log's (service.report): the member's words
    assert progress.steps[0].message == progress.status_error == "ScaleUp in b refused (HTTP 403 Forbidden); will retry"
    assert progress.steps[0].state is StepState.RUNNING and progress.steps[1].state is StepState.PENDING
    assert report.errors == [f"ml/chat: {refusal}"] and fleet.writes == []
    fleet.refuse = {}
    progress, report = fleet.cycle(plan)
    assert fleet.writes == [("b", G, 1)] and progress.error is None and report.errors == []
    assert progress.steps[0].state is StepState.DONE


def test_a_cluster_that_stops_answering_mid_write_is_a_refusal_like_any_other() -> None:
    fleet = Fleet.of(a=2)
    fleet.refuse = {"b": ClusterUnreachable("b", "connection refused")}
    progress, report = fleet.cycle(fleet.plan({"b": 2}))
    assert progress.error == "cluster b unreachable: connection refused"
    assert report.errors == ["ml/chat: cluster b unreachable: connection refused"]


# --- regressions: each failed before its fix in service/migrate.py ------------------------------------


def test_routing_stays_where_it_is_while_a_move_waits_for_its_revalidation() -> None:
    # The target's routing used to be published while the move waited revalidateDelaySeconds: all
    # traffic went to b, which had no replica yet, and stayed there until b's first batch was Ready.
    fleet = Fleet.of(revalidate_seconds=15, a=2)
    fleet.status["routing"] = [{"cluster": "a", "weight": 100}]
    plan = fleet.plan({"b": 2})
    progress, _ = fleet.cycle(plan)
    assert progress.steps == [] and fleet.writes == []
    assert fleet.routing == (RouteWeight("a", 100),)
    progress, _ = fleet.cycle(plan)  # revalidated: the move starts, routing waits for b to be Ready
    assert fleet.writes == [("b", G, 1)] and fleet.routing == (RouteWeight("a", 100),)
    fleet.make_ready()
    fleet.cycle(plan)
    assert fleet.routing == (RouteWeight("a", 50), RouteWeight("b", 50))


def test_a_roll_back_in_a_later_batch_keeps_the_batches_already_shifted() -> None:
    # Every ScaleUp done used to be scaled back to the count before the whole migration, batches
    # whose sources were already stopped included: a 4-replica move timing out in its second batch
    # left 2 replicas (a's) for demand that needs 4, with half the traffic routed to b's none.
    fleet = Fleet.of(a=4)
    fleet.status["routing"] = [{"cluster": "a", "weight": 100}]
    plan = fleet.plan({"b": 4}, max_moves=2)
    fleet.cycle(plan)  # batch 1: b to 2
    fleet.make_ready()
    fleet.cycle(plan)  # b Ready: half the traffic, a down to 2; batch 2: b to 4
    assert fleet.counts() == {"a": 2, "b": 4} and fleet.routing == (RouteWeight("a", 50), RouteWeight("b", 50))
    progress, report = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT + 1))  # b's new two never got Ready
    assert "not Ready within readyTimeoutSeconds" in report.errors[-1]
    assert fleet.writes[-1] == ("b", G, 2) and report.member_writes == 1  # one write: b never went to 0 meanwhile
    assert fleet.counts() == {"a": 2, "b": 2}
    assert sum(fleet.ready.values()) == 4
    assert fleet.routing == (RouteWeight("a", 50), RouteWeight("b", 50)) and progress.steps == []


def test_a_migration_waiting_on_a_cluster_that_is_gone_is_abandoned_and_planned_afresh() -> None:
    # A step on a cluster whose RegionalCluster was deleted used to wait for it forever: the
    # deployment was never planned again, not even to grow with its demand.
    fleet = Fleet.of(a=1, b=2)
    fleet.cycle(fleet.plan({"a": 3}))  # moving off b: a to 2 first, b's ScaleDowns to come
    fleet.gone = {"b"}  # deleted before the move finished
    fleet.make_ready()
    progress, report = fleet.cycle(fleet.plan({"a": 4}))  # demand grew meanwhile
    assert report.errors == ["ml/chat: migration abandoned, a cluster it needs is unreachable"]
    assert fleet.writes == [("a", G, 2), ("a", G, 4)]
    fleet.make_ready()
    progress, _ = fleet.cycle(fleet.plan({"a": 4}))
    assert fleet.counts() == {"a": 4, "b": 2} and progress.steps == []
    assert fleet.routing == (RouteWeight("a", 100),)


def routed_world(settings: OperatorSettings | None = None) -> ServiceHarness:
    """eu-de cheap, eu-fr dear: ml/chat runs in eu-de behind the managed HTTPRoute ml/chat-route (all
    its weight on eu-de), after two cycles."""
    clusters, prices = ["eu-de", "eu-fr"], {"eu-de": 40.0, "eu-fr": 60.0}
    world = (
        ServiceHarness(clusters, prices=prices)
        if settings is None
        else ServiceHarness(clusters, prices=prices, settings=settings)
    )
    backends = [{"name": "eu-de", "weight": 100}, {"name": "eu-fr", "weight": 0}]
    world.hub.routes[("ml", "chat-route")] = {
        "metadata": {"labels": {MANAGED_ROUTE_LABEL: "true"}},
        "spec": {"rules": [{"backendRefs": backends}]},
    }
    world.add(deployment_body(rps=30.0, routing={"httpRouteName": "chat-route"}))
    world.cycle()
    world.cycle()
    return world


def test_the_service_routes_no_traffic_to_a_cluster_before_its_replicas_are_ready() -> None:
    # The same through the whole service, with the default revalidation delay and an HTTPRoute.
    world = routed_world(OperatorSettings(revalidate_delay_seconds=15, plan_interval_seconds=60))
    for member in world.members.values():
        member.ready_immediately = False
    world.prices.update({"eu-de": 400.0, "eu-fr": 10.0})
    moved = False
    for _ in range(40):  # the planner moves one replica per plan here: three cycles each
        world.cycle()
        refs = world.hub.routes[("ml", "chat-route")]["spec"]["rules"][0]["backendRefs"]
        ready = world.ready()
        assert all(ready[r["name"]] > 0 for r in refs if r["weight"] > 0), (refs, ready)
        moved = moved or any(r["name"] == "eu-fr" and r["weight"] > 0 for r in refs)
        for member in world.members.values():
            member.mark_all_ready()
        if world.replicas()["eu-de"] == 0:
            break
    assert moved and world.replicas()["eu-de"] == 0


def test_the_service_stops_no_replica_the_route_still_sends_traffic_to_when_the_hub_refuses_weights() -> None:
    # The hub refuses the route's weights (a 5xx here; a conflict alike): the move starts replicas in
    # eu-fr but stops none in eu-de, whose route still carries every request, and the deployment's
    # status is still written, naming why the migration waits.
    world = routed_world()
    serving = world.replicas()["eu-de"]

    def refused(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("hub answered 500")

    world.hub.set_route_weights = refused  # type: ignore[method-assign]
    world.prices.update({"eu-de": 400.0, "eu-fr": 10.0})
    for _ in range(12):
        report = world.cycle()
        assert world.replicas()["eu-de"] == serving
    assert world.replicas()["eu-fr"] > 0
    assert "ml/chat: routing weights not published: internal error (RuntimeError)" in report.errors
    waiting = [s for s in world.status()["migration"] if s.get("message")]
    assert waiting and "routing weights not published" in waiting[0]["message"]


# --- random migrations ---------------------------------------------------------------------------------

COUNTS = st.fixed_dictionaries({c: st.integers(0, 4) for c in CLUSTERS})
EVENTS = st.lists(
    st.tuples(
        # What happens before a cycle: "ready", replicas started so far get Ready (60 s later);
        # "slow", they do not; "stall", they do not for 150 s, past readyTimeoutSeconds; "unreachable"
        # and "refuse", one cluster does not answer or refuses writes this cycle.
        st.sampled_from(["ready", "ready", "slow", "stall", "stall", "unreachable", "refuse"]),
        st.sampled_from(CLUSTERS),
    ),
    max_size=16,
)


@dataclass
class Migration:
    """What the property test remembers of the migration in flight."""

    started_from: dict[Key, int]


def _without_away(
    routing: tuple[RouteWeight, ...], away: Collection[str], serving: Collection[str]
) -> tuple[RouteWeight, ...]:
    """`routing` without the weights of the `away` clusters, their share moved onto the rest that have Ready replicas
    (`serving`) in their proportions, onto the rest all the same where none has one; as it is where no cluster is
    left: the routing grace where it does not hold, and a move as it starts (docs/planner.md, "Routing grace"; fifth
    review: a share went to a cluster with none Ready; sixth: kept where none had one, a forbidden weight lived on)."""
    rest = {r.cluster: float(r.weight) for r in routing if r.weight > 0 and r.cluster not in away}
    share = sum(float(r.weight) for r in routing if r.weight > 0 and r.cluster in away)
    takers = {c: w for c, w in rest.items() if c in serving} or rest
    if not takers or not share:
        return routing
    total = sum(takers.values())
    exact = {c: w + (share * w / total if c in takers else 0.0) for c, w in rest.items()}
    return tuple(RouteWeight(c, w) for c, w in sorted(percents(exact).items()))


def _check_cycle(fleet: Fleet, target: Mapping[str, int], max_moves: int, memory: Migration, advance: int = 60) -> None:
    """One cycle, and the properties that must hold after it (see the module docstring)."""
    plan = fleet.plan(target, max_moves)
    before = dict(fleet.desired)
    old_routing = fleet.routing
    old_steps = MigrationProgress.from_status(fleet.status).steps
    writes = len(fleet.writes)
    old_ready = fleet.observed_ready()
    kept_ready = _ready_in_batch(old_steps, old_ready)
    progress, report = fleet.cycle(plan, timedelta(seconds=advance))
    wrote = len(fleet.writes) > writes
    if progress.steps and all(s.started_at in (None, fleet.now) for s in progress.steps):
        memory.started_from = before  # a migration started this cycle
    # Routing changes only at a ShiftRouting step while a move is in flight. As a move starts, or while none is in
    # flight, an unreachable cluster's weight goes unless the routing grace holds it (never here: no plan of this
    # fleet lists a cluster usable while away; docs/planner.md, "Routing grace").
    serving = {c for (c, _), n in old_ready.items() if n > 0}
    graced = _without_away(old_routing, fleet.unreachable, serving)
    if progress.steps:
        shifted = [s for s in progress.steps if s.action is StepAction.SHIFT_ROUTING and s.state is StepState.DONE]
        started = all(s.started_at in (None, fleet.now) for s in progress.steps)
        assert progress.routing == (shifted[-1].routing if shifted else graced if started else old_routing)
    elif plan.steps and not wrote and _abandoned_for_a_cluster_away(old_steps, old_routing, fleet.unreachable, report):
        # The documented known gap (docs/planner.md, "Known gap": a move abandoned in `_advance` because a cluster
        # it routes to went away leaves that cluster's weight for one more cycle). Routing again in that cycle was
        # tried and reverted (ff56525): observe reads no pods away while a move is in flight, so a one-cycle blip
        # then dropped a serving cluster's weight for good. So here, and only here, the routing in force stays
        # exactly as it was; the next cycle, no move in flight, is held to `graced` again by the branches here.
        event("move abandoned for a cluster away: routing left one cycle")
        assert progress.routing == old_routing, "a move abandoned for a cluster away moved the routing"
    elif plan.steps and not wrote:
        assert progress.routing == graced, "routing moved though no migration step ran"
    elif not plan.steps and not old_steps:
        assert progress.routing == (_without_away(plan.routing, fleet.unreachable, serving) or graced)
    # A WaitReady never waits past readyTimeoutSeconds: it is met, or the batch is rolled back.
    waiting = [s for s in progress.steps if s.action is StepAction.WAIT_READY and s.state is StepState.RUNNING]
    assert all(s.started_at is not None and fleet.now - s.started_at <= timedelta(seconds=TIMEOUT) for s in waiting)
    for kind in ("not Ready within", "still refused after", "abandoned", "forbidden"):
        if any(kind in e for e in report.errors):
            event(kind)  # how often each path is taken: pytest --hypothesis-show-statistics
    # A roll-back takes back the batch in flight, never a batch already shifted (its sources are gone). Told by
    # its problem, not its words: a write refused for the timeout is rolled back too, and says so (review).
    if any(p.reason is CycleErrorReason.MIGRATION_ROLLED_BACK for p in report.problems):
        shifted = [s for s in old_steps if s.action is StepAction.SHIFT_ROUTING and s.state is StepState.DONE]
        kept = shifted[-1].replicas if shifted else sum(memory.started_from.values())
        kept -= _leftovers_taken_back(old_steps, before, fleet.desired, old_ready, old_routing)
        total = sum(fleet.desired.values())
        assert total >= kept, f"roll-back left {total} replicas of the {kept} the routing counts on"
        if not fleet.unreachable and not fleet.refuse:
            assert total == kept + kept_ready  # the batch's replicas already Ready stay


def _abandoned_for_a_cluster_away(
    old_steps: Sequence[StepRecord], old_routing: Sequence[RouteWeight], away: Collection[str], report: CycleReport
) -> bool:
    """Whether this cycle abandoned the move in flight at a ShiftRouting or ScaleDown (`_advance`: "migration
    abandoned, cluster X would take N% of the traffic with no Ready replica") while a cluster the routing in force
    gives weight to was away: the case docs/planner.md names as a known gap (its weight stays for one more cycle)."""
    in_flight = any(not s.state.finished for s in old_steps)
    routed_away = any(r.weight > 0 and r.cluster in away for r in old_routing)
    said = any("migration abandoned, cluster " in e and "with no Ready replica" in e for e in report.errors)
    return in_flight and routed_away and said


def _leftovers_taken_back(
    steps: Sequence[StepRecord],
    before: Mapping[Key, int],
    after: Mapping[Key, int],
    ready: Mapping[Key, int],
    routing: Sequence[RouteWeight],
) -> int:
    """Replicas a roll-back took back at a key the batch in flight waited on but started nothing at (replicas
    an abandoned move left), in a cluster the routing in force sent no traffic to: only those not Ready, down
    to the Ready ones exactly. The routing counts on no replica there, so these alone may leave fewer than it
    counts on overall; a cluster with traffic (or any, while no routing is recorded) keeps its count."""
    shifted = [i for i, s in enumerate(steps) if s.action is StepAction.SHIFT_ROUTING and s.state is StepState.DONE]
    batch = steps[shifted[-1] + 1 if shifted else 0 :]
    started = {s.key for s in batch if s.action is StepAction.SCALE_UP and s.state is StepState.DONE}
    routed = {r.cluster for r in routing if r.weight > 0}
    taken = 0
    for k in {s.key for s in batch if s.action is StepAction.WAIT_READY and s.key not in started}:
        if after.get(k, 0) < before.get(k, 0):
            assert routing and k[0] not in routed, f"{k} taken back to {after[k]} though traffic goes there"
            assert after[k] == ready.get(k, 0), f"{k} taken back to {after[k]}, not its {ready.get(k, 0)} Ready"
            event("leftover without traffic taken back")
            taken += before[k] - after[k]
    return taken


def _ready_in_batch(steps: Sequence[StepRecord], ready: Mapping[Key, int]) -> int:
    """Replicas the batch in flight (since the last ShiftRouting done) started at keys now Ready at its count:
    a roll-back keeps them."""
    shifted = [i for i, s in enumerate(steps) if s.action is StepAction.SHIFT_ROUTING and s.state is StepState.DONE]
    batch = steps[shifted[-1] + 1 if shifted else 0 :]
    ups = [s for s in batch if s.action is StepAction.SCALE_UP and s.state is StepState.DONE]
    first = {s.key: s.from_replicas or 0 for s in reversed(ups)}
    last = {s.key: s.replicas for s in ups}
    return sum(n - first[k] for k, n in last.items() if ready.get(k, 0) >= n)


@settings(max_examples=300, deadline=None)
@example(  # a move abandoned for a cluster away: its weight stays one cycle (docs/planner.md, "Known gap")
    start={"a": 1, "b": 1, "c": 1},
    not_ready={"a": 0, "b": 0, "c": 0},
    target={"a": 1, "b": 0, "c": 1},
    max_moves=1,
    revalidate=0.0,
    events=[("unreachable", "b"), ("unreachable", "a")],
)
@example(  # the same, a still away a cycle later: its weight goes then (the lag is one cycle, no more)
    start={"a": 1, "b": 1, "c": 1},
    not_ready={"a": 0, "b": 0, "c": 0},
    target={"a": 1, "b": 0, "c": 1},
    max_moves=1,
    revalidate=0.0,
    events=[("unreachable", "b"), ("unreachable", "a"), ("unreachable", "a")],
)
@given(
    start=COUNTS,
    not_ready=COUNTS,
    target=COUNTS.filter(lambda t: sum(t.values()) > 0),
    max_moves=st.integers(1, 3),
    revalidate=st.sampled_from([0.0, 15.0]),
    events=EVENTS,
)
def test_random_migrations_keep_make_before_break_and_reach_their_target(
    start: dict[str, int],
    not_ready: dict[str, int],
    target: dict[str, int],
    max_moves: int,
    revalidate: float,
    events: list[tuple[str, str]],
) -> None:
    fleet = Fleet.of({c: max(0, n - not_ready[c]) for c, n in start.items()}, revalidate, **start)
    # Ready replicas the migration must keep: those Ready now, or fewer if the target has fewer.
    floor = min(sum(fleet.ready.values()), sum(target.values()))
    memory = Migration(dict(fleet.desired))
    for what, cluster in events:
        if what == "ready":
            fleet.make_ready()
        fleet.unreachable = {cluster} if what == "unreachable" else set()
        fleet.refuse = {cluster: ActuationForbidden(cluster, "no")} if what == "refuse" else {}
        _check_cycle(fleet, target, max_moves, memory, 150 if what == "stall" else 60)
        assert sum(fleet.ready.values()) >= floor
    fleet.unreachable, fleet.refuse = set(), {}
    for _ in range(30):  # every cluster answers and replicas get Ready by the next cycle
        fleet.make_ready()
        _check_cycle(fleet, target, max_moves, memory)
        assert sum(fleet.ready.values()) >= floor
    assert fleet.counts() == {c: n for c, n in target.items() if n > 0}
    assert fleet.status["migration"] == []


def test_routing_and_scale_downs_wait_for_replicas_that_stopped_being_ready() -> None:
    # Found in review: a WaitReady was checked once, so the next batch's ShiftRouting sent half the traffic
    # to b after b's only replica crashed, and its ScaleDown stopped a's last Ready replica.
    fleet = Fleet.of(a=2)
    fleet.status["routing"] = [{"cluster": "a", "weight": 100}]
    plan = fleet.plan({"b": 1, "c": 1})
    fleet.cycle(plan)
    fleet.make_ready()
    fleet.cycle(plan)  # batch 1 done: a 1, b 1, routing a50/b50
    assert fleet.counts() == {"a": 1, "b": 1, "c": 1}
    fleet.ready[key("b")], fleet.ready[key("c")] = 0, 1  # b's replica crashes while c's starts
    progress, _ = fleet.cycle(plan)
    assert fleet.counts() == {"a": 1, "b": 1, "c": 1} and fleet.routing == (RouteWeight("a", 50), RouteWeight("b", 50))
    (waiting,) = [s for s in progress.steps if s.state is StepState.RUNNING and s.key == key("b")]
    assert waiting.message == "only 0/1 Ready now, after they were: waiting again"
    assert waiting.started_at == fleet.now  # waited on again from now, under the same timeout
    fleet.make_ready()  # b is Ready again: the move goes on
    fleet.cycle(plan)
    assert fleet.counts() == {"b": 1, "c": 1} and fleet.routing == (RouteWeight("b", 50), RouteWeight("c", 50))
    # The held-route path: weights taken days later go only to replicas still Ready.
    fleet, plan = moving_a_to_b_with_b_ready()
    fleet.route_refused = RuntimeError("hub answered 500")
    fleet.cycle(plan)
    fleet.ready[key("b")], fleet.route_refused = 0, None
    fleet.cycle(plan)
    assert fleet.counts() == {"a": 2, "b": 1} and fleet.routing == (RouteWeight("a", 100),)


def test_a_migration_kept_through_frozen_is_planned_afresh_back_in_auto() -> None:
    # Found in review: steps kept while Frozen resumed in Auto against a plan that no longer wanted them: the
    # stale move ran, then the move back.
    fleet, plan = moving_a_to_b_with_b_ready()
    fleet.route_refused = RuntimeError("hub answered 500")
    fleet.cycle(plan)
    fleet.route_refused = None
    for _ in range(2):
        fleet.cycle(fleet.plan({"a": 2}, mode=MigrationMode.FROZEN))
    assert MigrationProgress.from_status(fleet.status).in_flight  # Frozen keeps status as it is
    fleet.make_ready()
    _, report = fleet.cycle(fleet.plan({"a": 2}))
    assert "ml/chat: migration paused outside Auto abandoned; planned afresh" in report.errors
    # The current plan runs instead: a keeps both replicas and all traffic, b's started replica goes.
    assert fleet.counts() == {"a": 2} and fleet.routing == (RouteWeight("a", 100),)
    assert ("a", G, 1) not in fleet.writes
    # Paused once is not paused for ever: the next move, over several cycles, is not abandoned.
    plan = fleet.plan({"b": 2})
    fleet.cycle(plan)
    fleet.make_ready()
    _, report = fleet.cycle(plan)
    assert report.errors == [] and fleet.counts() == {"a": 1, "b": 2}


@pytest.mark.parametrize("lost", ["restart", "cycle not observed"])
def test_a_migration_kept_through_frozen_is_abandoned_though_the_in_memory_mark_was_lost(lost: str) -> None:
    # Found in review: the mark that a move was paused outside Auto lived in memory only, so a restart, a new
    # leader, or one cycle the deployment was not observed in (its spec invalid for a cycle) lost it; back in Auto
    # the stale move ran where the plan now keeps a at 2: a scaled to 1, then 0 (all traffic to b), then 2 again.
    fleet, plan = moving_a_to_b_with_b_ready()
    fleet.route_refused = RuntimeError("hub answered 500")
    fleet.cycle(plan)
    fleet.route_refused = None
    for _ in range(2):
        fleet.cycle(fleet.plan({"a": 2, "b": 1}, mode=MigrationMode.FROZEN))
    if lost == "restart":
        fleet.migrations = Migrations(0.0)
    else:
        fleet.migrations.forget({})
        fleet.migrations.forget({"ml/chat": "uid-chat"})
    for _ in range(3):
        fleet.make_ready()
        fleet.cycle(fleet.plan({"a": 2, "b": 1}))
    assert [w for w in fleet.writes if w[0] == "a"] == []
    assert fleet.counts() == {"a": 2, "b": 1} and fleet.routing == (RouteWeight("a", 67), RouteWeight("b", 33))


def test_a_migration_kept_through_frozen_is_abandoned_though_no_status_written_outside_auto_says_so() -> None:
    # The other way round: the Frozen cycles' status writes never reached the apiserver (a conflict, the hub
    # away), so status.mode still reads Auto; the mark in memory alone says the move was paused.
    fleet, plan = moving_a_to_b_with_b_ready()
    fleet.route_refused = RuntimeError("hub answered 500")
    fleet.cycle(plan)
    fleet.route_refused = None
    written = copy.deepcopy(fleet.status)
    for _ in range(2):
        fleet.cycle(fleet.plan({"a": 2, "b": 1}, mode=MigrationMode.FROZEN))
    fleet.status = written
    assert fleet.status["mode"] == MigrationMode.AUTO.value
    _, report = fleet.cycle(fleet.plan({"a": 2, "b": 1}))
    assert "ml/chat: migration paused outside Auto abandoned; planned afresh" in report.errors
    for _ in range(2):
        fleet.make_ready()
        fleet.cycle(fleet.plan({"a": 2, "b": 1}))
    assert [w for w in fleet.writes if w[0] == "a"] == []
    assert fleet.counts() == {"a": 2, "b": 1} and fleet.routing == (RouteWeight("a", 67), RouteWeight("b", 33))


def test_a_write_refused_for_the_ready_timeout_is_rolled_back_and_frees_the_deployment() -> None:
    # Found in review: a ScaleUp the member refused (RBAC) stayed Running for ever and held every later plan,
    # growth included (30 cycles later: 2 replicas against a plan for 4).
    fleet = Fleet.of(a=2)
    fleet.refuse = {"b": ActuationForbidden("b", "cannot patch deployments")}
    fleet.cycle(fleet.plan({"b": 2}))
    progress, report = fleet.cycle(fleet.plan({"a": 4}), advance=timedelta(seconds=TIMEOUT + 1))
    assert progress.rolled_back is not None
    assert any(f"still refused after readyTimeoutSeconds={TIMEOUT}" in e for e in report.errors)
    assert progress.steps == []
    fleet.cycle(fleet.plan({"a": 4}))
    assert fleet.counts() == {"a": 4}


def test_a_running_step_without_started_at_starts_its_clock_instead_of_failing() -> None:
    # Found in review: a hand-edited status.migration (the CRD lets startedAt go) tripped an assertion every
    # cycle: the deployment was never acted on again and read Migrating for ever.
    fleet = Fleet.of(a=2)
    fleet.cycle(fleet.plan({"b": 2}))
    del fleet.status["migration"][1]["startedAt"]
    progress, report = fleet.cycle(fleet.plan({"b": 2}))
    assert report.errors == [] and progress.steps[1].started_at == fleet.now


def test_a_deleted_cluster_loses_the_route_weight_gridshift_gave_it() -> None:
    # Found in review: a deleted RegionalCluster is no view, so its backendRef kept its weight: 100 beside the
    # new 100, a 50/50 split while status.routing said all traffic went to eu-de.
    world = routed_world()
    world.prices.update({"eu-de": 400.0, "eu-fr": 10.0})
    for _ in range(40):
        world.cycle()
        if world.replicas()["eu-de"] == 0:
            break

    def weights() -> dict[str, int]:
        refs = world.hub.routes[("ml", "chat-route")]["spec"]["rules"][0]["backendRefs"]
        return {r["name"]: r["weight"] for r in refs}

    assert weights() == {"eu-de": 0, "eu-fr": 100}
    del world.cluster_bodies["eu-fr"]
    world.hub.clusters = list(world.cluster_bodies.values())
    for _ in range(8):
        world.cycle()
    assert world.status()["routing"] == [{"cluster": "eu-de", "weight": 100}]
    assert weights() == {"eu-de": 100, "eu-fr": 0}


def test_a_roll_back_goes_out_as_a_warning_event_once_and_the_move_is_held() -> None:
    # Found in review: a roll-back left no Event: `kubectl describe idep` showed the CheaperPlacement
    # decision, and replicas that came and went, without a word on why.
    world = routed_world()
    world.members["eu-fr"].ready_immediately = False
    world.prices.update({"eu-de": 400.0, "eu-fr": 10.0})
    world.cycle()
    assert world.replicas()["eu-fr"] > 0  # the move started; eu-fr's replicas never get Ready
    world.cycle(advance=timedelta(seconds=1201))  # past the default readyTimeoutSeconds
    assert world.replicas()["eu-fr"] == 0
    rolled = [e for e in world.hub.events if e.reason == "MigrationRolledBack"]
    assert len(rolled) == 1 and rolled[0].warning and rolled[0].action == "RollBack"
    assert rolled[0].note.startswith("replicas not Ready within readyTimeoutSeconds=1200;")
    assert "no replica starts again in eu-fr (NVIDIA-H100-80GB-HBM3) before" in rolled[0].note
    for _ in range(10):  # held for the timeout: eu-fr is not started again, and the Event is not repeated
        world.cycle()
    assert world.replicas()["eu-fr"] == 0
    assert [(e.reason, e.occurrences) for e in world.hub.events if e.reason == "MigrationRolledBack"] == [
        ("MigrationRolledBack", 1)
    ]
    world.cycle(advance=timedelta(seconds=1200))  # the hold is over: tried again
    assert world.replicas()["eu-fr"] > 0


def _spec_changed(body: dict[str, Any], generation: int) -> None:
    """What the apiserver does on a spec edit: a new generation (and resourceVersion)."""
    body["metadata"]["generation"] = generation
    body["metadata"]["resourceVersion"] = str(generation)


def _moving_to_eu_fr() -> tuple[ServiceHarness, dict[str, Any]]:
    """chat in eu-de, moving to eu-fr (prices turned), eu-fr's first replica started and not Ready yet."""
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 40.0, "eu-fr": 90.0})
    body = deployment_body(rps=30.0)
    _spec_changed(body, 1)
    world.add(body)
    world.cycle()
    world.cycle()
    world.members["eu-fr"].ready_immediately = False
    world.prices.update({"eu-de": 900.0, "eu-fr": 10.0})
    world.cycle()
    assert world.replicas()["eu-fr"] > 0 and MigrationProgress.from_status(world.status()).in_flight
    return world, body


@pytest.mark.parametrize("restart", [False, True])
def test_a_spec_changed_mid_migration_abandons_the_steps_planned_for_the_old_one(restart: bool) -> None:
    # Found in review: the stored steps ran to their end after eu-fr was forbidden: traffic went to eu-fr and
    # a replica in eu-de stopped, then the move back.
    world, body = _moving_to_eu_fr()
    body["spec"]["placement"] = {"forbiddenRegions": ["eu-fr"]}
    _spec_changed(body, 2)
    if restart:
        world.service = world.make_service("op-1")
    world.members["eu-fr"].mark_all_ready()
    report = world.cycle()
    assert "ml/chat: migration planned for generation 1 (the spec is at 2 now) abandoned; planned afresh" in (
        report.errors
    )
    for _ in range(4):
        world.members["eu-fr"].mark_all_ready()
        world.cycle()
        routing = {r["cluster"]: r["weight"] for r in world.status().get("routing") or []}
        assert routing.get("eu-fr", 0) == 0, routing  # no traffic ever to the forbidden region
    assert world.replicas() == {"eu-de": world.replicas()["eu-de"], "eu-fr": 0} and world.replicas()["eu-de"] > 0


@pytest.mark.parametrize("restart", [False, True])
def test_a_migration_kept_through_frozen_is_abandoned_even_after_a_restart(restart: bool) -> None:
    # Found in review: the in-memory record of a Frozen spell was lost by a restart (or a new leader): the stale
    # move ran when the mode was Auto again, though the prices that made it had gone.
    world, body = _moving_to_eu_fr()
    body["spec"]["migration"]["mode"] = "Frozen"
    _spec_changed(body, 2)
    world.prices.update({"eu-de": 40.0, "eu-fr": 90.0})  # the move's reason is gone
    world.cycle()
    world.cycle()
    if restart:
        world.service = world.make_service("op-1")
    body["spec"]["migration"]["mode"] = "Auto"
    _spec_changed(body, 3)
    world.members["eu-fr"].mark_all_ready()
    report = world.cycle()
    assert any("abandoned; planned afresh" in e for e in report.errors)
    routing = {r["cluster"]: r["weight"] for r in world.status().get("routing") or []}
    assert routing.get("eu-fr", 0) == 0 and world.replicas()["eu-fr"] == 0


def test_holds_are_per_cluster_and_a_roll_back_elsewhere_neither_ends_nor_shortens_one() -> None:
    # Found in review: one hold per deployment, replaced at each roll-back: c's roll-back ended b's hold, and
    # alternating b and c kept both at one timeout.
    fleet = Fleet.of(a=2)
    to_b, to_c = fleet.plan({"a": 2, "b": 1}), fleet.plan({"a": 2, "c": 1})
    fleet.cycle(to_b)
    fleet.cycle(to_b, advance=timedelta(seconds=TIMEOUT + 1))  # b held for one timeout
    fleet.cycle(to_b, advance=timedelta(seconds=TIMEOUT))  # over: b started again
    fleet.cycle(to_b, advance=timedelta(seconds=TIMEOUT + 1))  # and rolled back again: held for two
    b_until = fleet.now + timedelta(seconds=2 * TIMEOUT)
    fleet.cycle(to_c)
    fleet.cycle(to_c, advance=timedelta(seconds=TIMEOUT + 1))  # c held too, inside b's hold
    assert fleet.now < b_until
    assert fleet.migrations.holds(fleet.now) == {"ml/chat": frozenset({key("b"), key("c")})}
    writes = len(fleet.writes)
    fleet.cycle(to_b, advance=timedelta(seconds=1))
    assert len(fleet.writes) == writes, "b started again inside its hold"


def test_a_roll_back_read_again_after_a_failed_status_write_does_not_lengthen_the_hold() -> None:
    # Found in review: when the status patch failed, the next cycle read the same steps in flight, rolled them
    # back again and doubled the hold: four 30 s cycles took one real roll-back to the 8x cap.
    fleet = Fleet.of(a=2)
    plan = fleet.plan({"a": 2, "b": 1})
    fleet.cycle(plan)
    in_flight = copy.deepcopy(fleet.status)
    held = []
    for advance in (TIMEOUT + 1, 30, 30, 30):
        progress, _ = fleet.cycle(plan, advance=timedelta(seconds=advance))
        assert progress.rolled_back is not None  # the same steps, read back, rolled back once more
        held.append(fleet.migrations.holds(fleet.now))
        fleet.status = copy.deepcopy(in_flight)  # the patch failed: status still holds the steps in flight
    assert held[-1] == {"ml/chat": frozenset({key("b")})}
    assert fleet.migrations._holds["ml/chat"][key("b")].factor == 1


def test_the_planner_plans_around_a_hold_so_growth_elsewhere_goes_on() -> None:
    # Found in review: a plan that also started replicas in the held cluster was held whole: demand doubled
    # during the hold and the deployment could not grow anywhere, for up to 8 x readyTimeoutSeconds.
    world = routed_world()
    world.members["eu-fr"].ready_immediately = False
    world.prices.update({"eu-de": 400.0, "eu-fr": 10.0})
    world.cycle()
    world.cycle(advance=timedelta(seconds=1201))  # eu-fr rolled back, held
    assert world.replicas()["eu-fr"] == 0
    before = world.replicas()["eu-de"]
    world.deployments["chat"]["spec"]["demand"]["requestsPerSecond"] = 120.0  # four times the demand
    for _ in range(3):
        world.cycle()
    assert world.replicas()["eu-fr"] == 0 and world.replicas()["eu-de"] > before


def test_a_spec_change_the_move_survives_keeps_the_migration() -> None:
    # A new demand figure (a GitOps sync, say) mid-move: the plan still wants eu-fr, so the steps go on
    # rather than starting every wait again at each such edit.
    world, body = _moving_to_eu_fr()
    body["spec"]["demand"]["requestsPerSecond"] = 31.0
    _spec_changed(body, 2)
    report = world.cycle()
    assert not any("abandoned" in e for e in report.errors), report.errors
    assert MigrationProgress.from_status(world.status()).in_flight


def test_a_write_refused_for_the_timeout_takes_back_what_its_batch_already_started_and_says_why() -> None:
    # Two ScaleUps in one batch: a's went out, b's was refused for the whole timeout: a goes back to its count.
    fleet = Fleet.of(a=1)
    fleet.refuse = {"b": ActuationForbidden("b", "cannot patch deployments")}
    plan = fleet.plan({"a": 2, "b": 1}, max_moves=2)
    fleet.cycle(plan)
    assert fleet.writes == [("a", G, 2)]
    progress, report = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT + 1))
    assert fleet.writes == [("a", G, 2), ("a", G, 1)] and fleet.counts() == {"a": 1} and report.member_writes == 1
    assert progress.rolled_back is not None
    assert progress.rolled_back.startswith("ScaleUp in b refused (HTTP 403 Forbidden); ")
    assert fleet.migrations.holds(fleet.now) == {"ml/chat": frozenset({key("a"), key("b")})}
    # Found in review: the reason went on "replicas not Ready within readyTimeoutSeconds", and the hold advised
    # raising the timeout: b's replica never started, and a longer timeout only waits longer on the refusal.
    until = (fleet.now + timedelta(seconds=TIMEOUT)).isoformat(timespec="seconds")
    assert progress.rolled_back == (
        f"ScaleUp in b refused (HTTP 403 Forbidden); still refused after "
        f"readyTimeoutSeconds={TIMEOUT}; scaled back to the counts before the move; no replica starts again in "
        f"a ({G}) before {until}, b ({G}) before {until}"
    )


def test_a_scale_down_refused_for_the_timeout_names_the_refusal_not_replicas_not_ready() -> None:
    # Found in review: a ScaleDown the member refused (403: RBAC, or an object not gridshift's) for the whole
    # timeout was rolled back as "replicas not Ready within readyTimeoutSeconds": every replica was Ready; the
    # write was refused. The reason names the write, the cluster and the refusal's HTTP status.
    fleet = Fleet.of(a=2, b=1)
    fleet.status["routing"] = [{"cluster": "a", "weight": 67}, {"cluster": "b", "weight": 33}]
    plan = fleet.plan({"a": 2})
    refusal = ActuationForbidden("b", "apply Deployment gridshift-workloads/ml-chat (HTTP 403)")
    fleet.refuse = {"b": refusal}
    progress, _ = fleet.cycle(plan)
    assert actions(progress) == [("ShiftRouting", "*", 2, "Done"), ("ScaleDown", "b", 0, "Running")]
    progress, report = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT + 1))
    reason = (
        f"ScaleDown in b refused (HTTP 403 Forbidden); still refused after readyTimeoutSeconds={TIMEOUT}; "
        "nothing was scaled back"
    )
    assert progress.rolled_back == reason
    assert report.errors == [f"ml/chat: {refusal}", f"ml/chat: {reason}"]
    assert [p.reason for p in report.problems] == [CycleErrorReason.MIGRATION_ROLLED_BACK]
    assert progress.steps == [] and fleet.counts() == {"a": 2, "b": 1}
    assert fleet.migrations.holds(fleet.now) == {}  # nothing was started: nothing to hold


@pytest.mark.parametrize(
    ("refusal", "said"),
    [
        (
            MemberError(
                "b",
                "cluster b: apply Deployment x: HTTP 400 Bad Request: admission webhook denied the "
                "request: token=s3cr3t",
                status=400,
            ),
            " (HTTP 400 Bad Request)",
        ),
        (MemberError("b", "cluster b: admission webhook denied the request: token=s3cr3t"), ""),
        (ActuationForbidden("b", "admission webhook denied the request: token=s3cr3t"), " (HTTP 403 Forbidden)"),
    ],
)
def test_a_refused_write_rolled_back_keeps_the_members_words_out_of_its_event(refusal: MemberError, said: str) -> None:
    # Found in review: the roll-back's reason quoted the member's refusal whole, which for a 400/422 is the
    # apiserver's or an admission webhook's text (redaction removes only the credentials gridshift knows), and it
    # went out as the MigrationRolledBack Event. It names the write, the cluster and the HTTP status; the member's
    # words are in the cycle's errors (the log) alone, as a refused scale-back's are.
    fleet = Fleet.of(a=1)
    fleet.refuse = {"b": refusal}
    plan = fleet.plan({"a": 2, "b": 1}, max_moves=2)
    fleet.cycle(plan)
    progress, report = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT + 1))
    reason = (
        f"ScaleUp in b refused{said}; still refused after readyTimeoutSeconds={TIMEOUT}; "
        "scaled back to the counts before the move"
    )
    assert progress.rolled_back is not None and progress.rolled_back.startswith(f"{reason}; no replica starts")
    assert report.errors == [f"ml/chat: {refusal}", f"ml/chat: {reason}"]  # the log has the member's words
    assert [p.message for p in report.problems] == [f"ml/chat: {reason}"]
    assert "s3cr3t" not in progress.rolled_back and "webhook" not in progress.rolled_back


@pytest.mark.parametrize(
    ("blocked", "head"),
    [
        ("memberless", "ScaleUp in b not sent: cluster b unreachable for"),
        # Review of the first wording ("not sent" for all three): a write the deadline cut may have been applied,
        # and a 5xx is the member's answer, whose status the reason keeps.
        ("timing out", "ScaleUp in b: no complete answer from cluster b (it may have been applied) within"),
        # Review: a 5xx's outcome is not known either (Kubernetes' API conventions: a 500's is unknown, a 504 may
        # have completed).
        (
            "failing",
            "ScaleUp in b failed in cluster b (HTTP 500 Internal Server Error; it may have been applied); "
            "still failing after",
        ),
    ],
)
def test_a_write_to_a_cluster_that_never_answers_it_is_rolled_back_as_not_sent_not_refused(
    blocked: str, head: str
) -> None:
    # Found in review: a cluster the cycle's reads reached (so the move is not abandoned) that took no write for
    # the timeout (no member client; every write timing out) was rolled back as "ScaleUp in b refused (cluster b
    # unreachable; will retry); still refused after ...": nothing refused it, and nothing is retried.
    steps = (MigrationStep(0, StepAction.SCALE_UP, "b", G, 2), MigrationStep(1, StepAction.WAIT_READY, "b", G, 2))
    fleet = Fleet.of(a=2)
    if blocked == "memberless":
        fleet.memberless = {"b"}
    elif blocked == "timing out":
        fleet.refuse = {"b": ClusterUnreachable("b", "get Deployment x: no complete answer within 10 s")}
    else:
        fleet.refuse = {"b": ClusterUnreachable("b", "apply Deployment x: HTTP 500 Internal Server Error", status=500)}
    plan = fleet.plan({"b": 2}, steps=steps)
    fleet.cycle(plan)
    progress, report = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT + 1))
    reason = f"{head} readyTimeoutSeconds={TIMEOUT}; nothing was scaled back"
    assert progress.rolled_back is not None and progress.rolled_back.startswith(f"{reason}; no replica starts")
    assert report.errors[-1] == f"ml/chat: {reason}"
    assert [p.reason for p in report.problems] == [CycleErrorReason.MIGRATION_ROLLED_BACK]


_SCALE_UP_B = (MigrationStep(0, StepAction.SCALE_UP, "b", G, 2), MigrationStep(1, StepAction.WAIT_READY, "b", G, 2))


@pytest.mark.parametrize(
    ("error", "said", "then"),
    [
        # Review: a 503 to the GET made before the apply read "failed with HTTP 503", as if the apply had been
        # answered: it never went out. Told by the error's stage (typed), not by its text.
        (
            ClusterUnreachable(
                "b", "get Deployment x: HTTP 503 Service Unavailable", status=503, stage=RequestStage.READ
            ),
            "ScaleUp in b not sent: the read before it failed in cluster b (HTTP 503 Service Unavailable)",
            "; still failing after",
        ),
        (
            ClusterUnreachable("b", "discovery: no complete answer within 10 s", stage=RequestStage.READ),
            "ScaleUp in b not sent: no complete answer from cluster b to the read before it",
            " within",
        ),
        # A 504 to the apply itself (a gateway's timeout): the apiserver may have applied it.
        (
            ClusterUnreachable(
                "b", "apply Deployment x: HTTP 504 Gateway Timeout", status=504, stage=RequestStage.WRITE
            ),
            "ScaleUp in b failed in cluster b (HTTP 504 Gateway Timeout; it may have been applied)",
            "; still failing after",
        ),
    ],
)
def test_a_write_that_failed_says_by_the_request_it_failed_at_whether_it_went_out(
    error: ClusterUnreachable, said: str, then: str
) -> None:
    fleet = Fleet.of(a=2)
    fleet.refuse = {"b": error}
    plan = fleet.plan({"b": 2}, steps=_SCALE_UP_B)
    progress, _ = fleet.cycle(plan)
    assert progress.steps[0].message == progress.status_error == f"{said}; will retry"
    progress, report = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT + 1))
    reason = f"{said}{then} readyTimeoutSeconds={TIMEOUT}; nothing was scaled back"
    assert progress.rolled_back is not None and progress.rolled_back.startswith(f"{reason}; no replica starts")
    assert report.errors == [f"ml/chat: {error}", f"ml/chat: {reason}"]


def test_a_refused_write_is_said_in_status_as_its_roll_back_says_it_never_in_the_members_words() -> None:
    # Found in review: while a write was refused (before its roll-back), status.migration[].message and the Ready
    # message quoted the member's refusal (an admission webhook's text, redacted of the credentials gridshift knows
    # only). Tenants read status: it says the write, the cluster and the HTTP status, as the roll-back's Event will.
    refusal = MemberError(
        "b",
        "cluster b: apply Deployment x: HTTP 422 Unprocessable Entity: admission webhook denied the request: "
        "policy p quotes spec.template: token=s3cr3t",
        status=422,
    )
    fleet = Fleet.of(a=2)
    fleet.refuse = {"b": refusal}
    plan = fleet.plan({"b": 2}, steps=_SCALE_UP_B)
    progress, report = fleet.cycle(plan)
    said = "ScaleUp in b refused (HTTP 422 Unprocessable Entity)"
    assert progress.steps[0].message == progress.status_error == f"{said}; will retry"
    assert stored(progress.steps[0])["message"] == f"{said}; will retry"
    assert progress.error == str(refusal) and report.errors == [f"ml/chat: {refusal}"]  # the log has its words
    progress, _ = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT + 1))
    assert progress.rolled_back is not None and progress.rolled_back.startswith(f"{said}; still refused after")


_MAY_HAVE_GONE_OUT = "an earlier try may have been applied"


@pytest.mark.parametrize(
    ("then", "said", "after"),
    [
        (
            ClusterUnreachable(
                "b", "get Deployment x: HTTP 503 Service Unavailable", status=503, stage=RequestStage.READ
            ),
            "ScaleUp in b: the read before it failed in cluster b "
            f"(HTTP 503 Service Unavailable; {_MAY_HAVE_GONE_OUT})",
            "; still failing after",
        ),
        (
            ClusterUnreachable("b", "discovery: no complete answer within 10 s", stage=RequestStage.READ),
            f"ScaleUp in b: no complete answer from cluster b to the read before it ({_MAY_HAVE_GONE_OUT})",
            " within",
        ),
        (None, f"ScaleUp in b: cluster b unreachable ({_MAY_HAVE_GONE_OUT})", " for"),  # no member client now
        # Review (6 December 2026): a refusal after a try that may have gone out said "refused" alone, and the
        # roll-back "nothing was scaled back", while the replica that went out ran on.
        (
            MemberError("b", "cluster b: apply Deployment x: HTTP 403: denied", status=403),
            f"ScaleUp in b refused (HTTP 403 Forbidden); {_MAY_HAVE_GONE_OUT}",
            "; still refused after",
        ),
        (
            ActuationForbidden("b", "apply Service gsw/x (HTTP 403)", own=True),
            f"ScaleUp in b refused: forbidden: apply Service gsw/x (HTTP 403); {_MAY_HAVE_GONE_OUT}",
            "; still refused after",
        ),
    ],
)
def test_a_write_that_may_have_gone_out_once_is_never_said_unsent_after(
    then: MemberError | None, said: str, after: str
) -> None:
    # Found in review: an apply cut at its deadline (it may have been applied), then a 503 to the read before the
    # next try, was rolled back as "not sent": only the last cycle's error was looked at. The step remembers, in
    # status (a restarted operator reads it back), that a try may have gone out.
    fleet = Fleet.of(a=2)
    fleet.refuse = {"b": ClusterUnreachable("b", "apply Deployment x: no complete answer", stage=RequestStage.WRITE)}
    plan = fleet.plan({"b": 2}, steps=_SCALE_UP_B)
    progress, _ = fleet.cycle(plan)
    assert (
        progress.steps[0].message
        == "ScaleUp in b: no complete answer from cluster b (it may have been applied); will retry"
    )
    fleet.refuse = {} if then is None else {"b": then}
    fleet.memberless = {"b"} if then is None else set()
    progress, _ = fleet.cycle(plan)
    if then is not None:
        assert progress.steps[0].message == progress.status_error == f"{said}; will retry"
    stored_step = fleet.status["migration"][0]
    progress, report = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT))
    reason = f"{said}{after} readyTimeoutSeconds={TIMEOUT}; nothing was scaled back"
    assert progress.rolled_back is not None and progress.rolled_back.startswith(f"{reason}; no replica starts")
    assert "not sent" not in progress.rolled_back and report.errors[-1] == f"ml/chat: {reason}"
    assert stored_step["maybeApplied"] is True


def test_a_write_refused_first_then_failing_at_its_read_is_said_unsent() -> None:
    # The memory is of a try that may have gone out only: a refusal of the apply itself applied nothing.
    fleet = Fleet.of(a=2)
    fleet.refuse = {"b": MemberError("b", "cluster b: apply Deployment x: HTTP 422: webhook", status=422)}
    plan = fleet.plan({"b": 2}, steps=_SCALE_UP_B)
    fleet.cycle(plan)
    assert fleet.status["migration"][0]["maybeApplied"] is False
    fleet.refuse = {"b": ClusterUnreachable("b", "get x: HTTP 503", status=503, stage=RequestStage.READ)}
    progress, _ = fleet.cycle(plan)
    assert progress.steps[0].message.startswith("ScaleUp in b not sent: the read before it failed")


def test_the_roll_back_of_a_refused_write_promises_no_retry_in_status() -> None:
    # Found in review: in the cycle the write was given up (its steps cleared, the MigrationRolledBack Event out),
    # Ready still said "...; will retry": status_error was set by the try before the roll-back.
    fleet = Fleet.of(a=2)
    fleet.refuse = {"b": MemberError("b", "cluster b: apply Deployment x: HTTP 422: webhook", status=422)}
    plan = fleet.plan({"b": 2}, steps=_SCALE_UP_B)
    fleet.cycle(plan)
    progress, _ = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT + 1))
    reason = (
        f"ScaleUp in b refused (HTTP 422 Unprocessable Entity); still refused after readyTimeoutSeconds={TIMEOUT}; "
        "nothing was scaled back"
    )
    assert progress.rolled_back is not None and progress.steps == []
    assert progress.status_error == f"migration rolled back: {reason}"


def test_a_finished_move_that_only_stops_replicas_at_a_held_key_does_not_end_its_run() -> None:
    # Only replicas started and Ready somewhere end that key's run of roll-backs; stopping some there does not.
    fleet = Fleet.of(a=2, b=1)
    grow_b = fleet.plan({"a": 2, "b": 2})
    fleet.cycle(grow_b)
    fleet.cycle(grow_b, advance=timedelta(seconds=TIMEOUT + 1))  # b's second replica never Ready: held, x1
    assert fleet.counts() == {"a": 2, "b": 1}
    leave_b = fleet.plan({"a": 3})
    fleet.cycle(leave_b, advance=timedelta(seconds=TIMEOUT))
    fleet.make_ready()
    for _ in range(3):
        fleet.cycle(leave_b)
        fleet.make_ready()
    assert fleet.counts() == {"a": 3} and fleet.status["migration"] == []
    grow_b = fleet.plan({"a": 3, "b": 1})
    fleet.cycle(grow_b)
    progress, _ = fleet.cycle(grow_b, advance=timedelta(seconds=TIMEOUT + 1))
    assert _held_for(progress, fleet.now) == 2  # the second roll-back at b in a row


def test_a_pure_shrink_stops_no_replica_before_the_hub_takes_its_weights() -> None:
    # Shrinking shifts routing first, then stops replicas: weights the hub refuses hold the ScaleDown.
    fleet = Fleet.of(a=2, b=1)
    fleet.status["routing"] = [{"cluster": "a", "weight": 67}, {"cluster": "b", "weight": 33}]
    plan = fleet.plan({"a": 2})
    assert plan.steps[0].action is StepAction.SHIFT_ROUTING
    fleet.route_refused = RuntimeError("hub answered 500")
    progress, _ = fleet.cycle(plan)
    assert fleet.counts() == {"a": 2, "b": 1} and progress.in_flight
    assert progress.steps[0].message.endswith("; will retry")
    fleet.route_refused = None
    fleet.cycle(plan)
    assert fleet.counts() == {"a": 2} and fleet.routing == (RouteWeight("a", 100),)


def test_refused_weights_hold_a_scale_down_behind_them_that_is_not_the_last_step() -> None:
    # The planner ends each batch with its ScaleDowns, but the hold must not depend on a ScaleDown being the
    # move's last step: here a shrink of b comes first and a growth batch of a after it. Steps as carried out
    # (a plan, or a status.migration read back) are held at any ScaleDown still to come, not only a final one.
    fleet = Fleet.of(a=2, b=1)
    fleet.status["routing"] = [{"cluster": "a", "weight": 67}, {"cluster": "b", "weight": 33}]
    steps = (
        MigrationStep(0, StepAction.SHIFT_ROUTING, ROUTING_CLUSTER, "*", 2, routing=(RouteWeight("a", 100),)),
        MigrationStep(1, StepAction.SCALE_DOWN, "b", G, 0),
        MigrationStep(2, StepAction.SCALE_UP, "a", G, 3),
        MigrationStep(3, StepAction.WAIT_READY, "a", G, 3),
    )
    plan = fleet.plan({"a": 3}, steps=steps)
    fleet.route_refused = RuntimeError("hub answered 500")
    for _ in range(2):
        progress, _ = fleet.cycle(plan)
        assert fleet.counts() == {"a": 2, "b": 1} and fleet.writes == []  # b still takes a third of the traffic
        assert actions(progress)[:2] == [("ShiftRouting", "*", 2, "Running"), ("ScaleDown", "b", 0, "Pending")]
        assert progress.error == "routing weights not published: internal error (RuntimeError); will retry"
    fleet.route_refused = None
    progress, _ = fleet.cycle(plan)
    assert fleet.routing == (RouteWeight("a", 100),) and fleet.counts() == {"a": 3}


def test_a_kept_cluster_that_lost_its_ready_replicas_gets_no_traffic_and_no_source_stops() -> None:
    # Found in review (4 December 2026): a moves to b while c is kept. c had no WaitReady (it was Ready when
    # the move was planned), so when its replicas crashed mid-move the ShiftRouting sent it half the traffic
    # and the ScaleDown stopped a, leaving only b.
    fleet = Fleet.of(a=2, c=2)
    fleet.status["routing"] = [{"cluster": "a", "weight": 50}, {"cluster": "c", "weight": 50}]
    plan = fleet.plan({"b": 2, "c": 2}, max_moves=2)
    fleet.cycle(plan)  # ScaleUp b, waiting for it
    fleet.make_ready()
    fleet.ready[key("c")] = 0  # c's replicas crash
    progress, report = fleet.cycle(plan)
    abandoned = "ml/chat: migration abandoned, cluster c would take 50% of the traffic with no Ready replica"
    assert f"{abandoned}; planned afresh" in report.errors
    assert fleet.counts() == {"a": 2, "b": 2, "c": 2}  # a still serves
    assert fleet.routes == []  # nothing published: a and c keep their weights until c is Ready again
    assert progress.steps == []
    # Planned afresh from what is Ready: c is waited on before anything of a is stopped.
    fleet.cycle(fleet.plan({"b": 2, "c": 2}, max_moves=2))
    assert fleet.counts() == {"a": 2, "b": 2, "c": 2}
    fleet.make_ready()
    fleet.cycle(fleet.plan({"b": 2, "c": 2}, max_moves=2))
    assert fleet.counts() == {"b": 2, "c": 2}


def test_a_shift_routing_is_judged_by_the_weights_it_publishes_not_by_those_in_force() -> None:
    # c runs but the routing in force gives it nothing (replicas an abandoned move left); the move a -> b keeps c
    # and its ShiftRouting gives c half the traffic. c's replicas crash: the weights that would go out send half
    # the traffic where none is Ready, though those in force (all to a, Ready) are fine. Abandoned, nothing sent.
    fleet = Fleet.of(a=2, c=2)
    fleet.status["routing"] = [{"cluster": "a", "weight": 100}]
    plan = fleet.plan({"b": 2, "c": 2}, max_moves=2)
    fleet.cycle(plan)  # ScaleUp b, waiting for it
    fleet.make_ready()
    fleet.ready[key("c")] = 0
    progress, report = fleet.cycle(plan)
    abandoned = "ml/chat: migration abandoned, cluster c would take 50% of the traffic with no Ready replica"
    assert f"{abandoned}; planned afresh" in report.errors
    assert fleet.routes == [] and fleet.counts() == {"a": 2, "b": 2, "c": 2} and progress.steps == []


def test_a_move_away_from_a_source_whose_replicas_crashed_shifts_the_traffic_to_the_ready_target() -> None:
    # The reverse: a, all the traffic in force, lost its Ready replicas once b's were Ready. The ShiftRouting's own
    # weights (all to b) have a Ready replica everywhere: the move goes on rather than leave the traffic on a.
    fleet = Fleet.of(a=2)
    fleet.status["routing"] = [{"cluster": "a", "weight": 100}]
    plan = fleet.plan({"b": 2}, max_moves=2)
    fleet.cycle(plan)  # ScaleUp b, waiting for it
    fleet.make_ready()
    fleet.ready[key("a")] = 0
    progress, report = fleet.cycle(plan)
    assert report.errors == [] and progress.steps == []
    assert fleet.routing == (RouteWeight("b", 100),) and fleet.counts() == {"b": 2}


def test_a_move_into_several_clusters_no_longer_usable_names_each_in_its_abandon() -> None:
    # b and c stop admitting the namespace mid-move (no generation changes): the plan made now has no option there.
    # The move is abandoned and its reason (report.errors, logged) names both clusters, comma-separated.
    fleet = Fleet.of(a=4)
    fleet.cycle(fleet.plan({"b": 2, "c": 2}, max_moves=2))  # ScaleUp b, waiting for it; c's batch after it
    plan = replace(fleet.plan({"a": 4}), max_num_seqs={key("a"): 64})
    _, report = fleet.cycle(plan)
    assert "ml/chat: migration into b, c, where it may no longer run, abandoned" in report.errors
    assert "c" not in fleet.counts()


def test_a_scale_up_past_max_replicas_written_into_status_is_never_sent() -> None:
    # Found in review (4 December 2026): status.migration is trusted as the operator wrote it, and a ScaleUp to
    # 100,000 replicas edited in by hand (status write rights) was sent to the member cluster as written.
    fleet = Fleet.of(a=2)
    fleet.status["migration"] = [
        {"index": 0, "action": "ScaleUp", "cluster": "b", "gpuType": G, "replicas": 100_000, "state": "Running"}
    ]
    _, report = fleet.cycle(fleet.plan({"a": 2}))
    most = fleet.resource.spec.capacity.max_replicas
    assert f"ml/chat: migration starting more than maxReplicas={most} abandoned" in report.errors
    assert fleet.counts() == {"a": 2} and ("b", G, 100_000) not in fleet.writes


def test_a_roll_backs_hold_ends_with_its_deployment_and_binds_no_new_one_of_the_same_name() -> None:
    # Found in review: holds (and revalidation state) were kept by namespace/name for good, so a deployment
    # deleted and created again (a GitOps re-create) inherited a hold of up to 8 readyTimeoutSeconds and was
    # kept out of the cheap cluster, with no roll-back of its own.
    world = ServiceHarness(["eu-de", "eu-fr"], prices={"eu-de": 40.0, "eu-fr": 60.0})
    world.add(deployment_body(rps=30.0))
    world.cycle()
    world.cycle()
    world.members["eu-fr"].ready_immediately = False
    world.prices.update({"eu-de": 400.0, "eu-fr": 10.0})
    world.cycle()
    assert world.replicas()["eu-fr"] > 0
    world.cycle(advance=timedelta(seconds=1201))  # rolled back: eu-fr held for ml/chat
    assert world.replicas()["eu-fr"] == 0
    world.service.delete_from_members("ml", "chat", "uid-chat")
    del world.deployments["chat"]
    del world.hub.deployments[("ml", "chat")]
    world.cycle()
    assert world.replicas() == {"eu-de": 0, "eu-fr": 0}
    world.members["eu-fr"].ready_immediately = True
    again = deployment_body(rps=30.0)
    again["metadata"]["uid"] = "uid-chat-2"
    world.deployments["chat"] = again
    world.hub.deployments[("ml", "chat")] = "uid-chat-2"
    for _ in range(3):
        world.cycle()
    assert world.replicas()["eu-fr"] > 0 and world.replicas()["eu-de"] == 0, world.replicas()
    assert world.service.migrations.holds(world.now) == {}


def test_counts_applied_in_a_cycle_cut_short_are_not_read_as_the_next_ones() -> None:
    # Found in review: the actuator's record of counts written this cycle was emptied only where the cycle went
    # on to report the deployment; counts left by a cycle cut short (the Lease lost between a write and the
    # report) were reported by the next cycle as what it had applied (here as a stray 99 replicas Ready-less).
    world = ServiceHarness(["eu-de"])
    world.add(deployment_body(rps=5.0))
    for _ in range(3):
        world.cycle()
    ready = message(world.status(), "Ready")
    world.service.actuator._applied["ml/chat"] = {("eu-de", "NVIDIA-H100-80GB-HBM3"): 99}  # left by a cut cycle
    world.cycle()
    assert message(world.status(), "Ready") == ready


def test_a_wait_on_a_shifted_batchs_crashed_replica_rolls_back_only_that_cluster() -> None:
    # Found in review: a's replica, Ready and given traffic in batch 1, crashed while batch 2 started c. The wait
    # on a ran out and the roll-back undid batch 2 instead: c's Ready replica stopped and c held, a kept unheld.
    fleet = Fleet.of(b=2)
    fleet.status["routing"] = [{"cluster": "b", "weight": 100}]
    plan = fleet.plan({"a": 1, "c": 1})
    fleet.cycle(plan)
    fleet.make_ready()
    fleet.cycle(plan)  # batch 1 shifted: a 1, b 1, routing a50/b50; batch 2 starts c
    fleet.ready[key("c")], fleet.ready[key("a")] = 1, 0  # c gets Ready, a's replica crashes
    fleet.cycle(plan)
    assert fleet.counts() == {"a": 1, "b": 1, "c": 1}
    progress, report = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT + 1))
    assert fleet.counts() == {"a": 1, "b": 1, "c": 1} and fleet.ready[key("c")] == 1  # nothing Ready stopped
    assert report.member_writes == 0 and progress.steps == []
    assert fleet.migrations.holds(fleet.now) == {"ml/chat": frozenset({key("a")})}
    assert report.errors == [
        f"ml/chat: replicas not Ready within readyTimeoutSeconds={TIMEOUT}; nothing was scaled back "
        "(Ready replicas kept in c); the wait on a ran out (0/1 Ready)"
    ]
    assert progress.rolled_back is not None and f"no replica starts again in a ({G}) before" in progress.rolled_back
    assert fleet.routing == (RouteWeight("a", 50), RouteWeight("b", 50))


def test_a_roll_back_keeps_the_batchs_replicas_that_are_ready_and_takes_back_the_rest() -> None:
    fleet = Fleet.of(c=4)
    plan = fleet.plan({"a": 1, "b": 1, "c": 2}, max_moves=2)
    fleet.cycle(plan)
    assert fleet.counts() == {"a": 1, "b": 1, "c": 4}
    fleet.ready[key("b")] = 1  # b gets Ready, a never does
    _, report = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT + 1))
    assert fleet.writes[2:] == [("a", G, 0)] and fleet.counts() == {"b": 1, "c": 4}
    assert fleet.migrations.holds(fleet.now) == {"ml/chat": frozenset({key("a")})}
    assert report.errors[-1].endswith("scaled back to the counts before the move (Ready replicas kept in b)")


def test_a_roll_back_keeps_the_ready_replicas_of_a_key_that_is_part_ready() -> None:
    # Taken back to the count before the batch, a's Ready replica was stopped with the one that never started.
    fleet = Fleet.of(c=4)
    plan = fleet.plan({"a": 2, "c": 2}, max_moves=2)
    fleet.cycle(plan)
    assert fleet.counts() == {"a": 2, "c": 4}
    fleet.ready[key("a")] = 1
    _, report = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT + 1))
    assert fleet.writes[1:] == [("a", G, 1)] and fleet.counts() == {"a": 1, "c": 4}
    assert fleet.migrations.holds(fleet.now) == {"ml/chat": frozenset({key("a")})}
    assert report.errors[-1].endswith("scaled back to the counts before the move (Ready replicas kept in a)")


def test_a_kept_replica_that_never_gets_ready_rolls_the_move_back_once_then_holds_it() -> None:
    # Found in review: a's third replica never got Ready; every move first waited on it, rolled back at the
    # timeout ("scaled back" though nothing was) and started again at once, for ever. The move still waits on
    # it (make-before-break), but once the wait runs out it is held, and nothing is written meanwhile: a
    # carries traffic, which counts on its replicas (found in review: taken back to its Ready ones, a kept
    # cluster whose pods were restarting went to 0 with its share of the requests still routed there).
    fleet = Fleet.of(ready={"a": 2, "b": 2}, a=3, b=2)
    fleet.status = {"routing": [{"cluster": "a", "weight": 60}, {"cluster": "b", "weight": 40}]}
    plan = fleet.plan({"a": 3, "b": 0, "c": 2})
    progress, _ = fleet.cycle(plan)
    assert actions(progress)[0] == ("WaitReady", "a", 3, "Running")
    _, report = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT + 1))
    assert report.errors == [
        f"ml/chat: replicas not Ready within readyTimeoutSeconds={TIMEOUT}; nothing was scaled back; "
        "the wait on a ran out (2/3 Ready)"
    ]
    for _ in range(3):  # through the hold (readyTimeoutSeconds)
        progress, report = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT / 4))
        assert progress.steps == [] and report.errors == [] and fleet.writes == []
    assert fleet.counts() == {"a": 3, "b": 2}
    progress, _ = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT / 4))  # the hold is over: waited on again
    assert actions(progress)[0] == ("WaitReady", "a", 3, "Running") and fleet.writes == []


def test_a_wait_on_a_kept_cluster_that_ran_out_holds_the_move_that_needs_it() -> None:
    # b goes and only a's replica, not Ready, can replace it: the move waits on a. When that wait runs out
    # nothing was started, yet it was tried again at once, cycle after cycle: now a is held. a carries no
    # traffic (a replica an abandoned move left): it is taken back to its Ready replicas, none.
    fleet = Fleet.of(ready={"b": 1}, a=1, b=1)
    fleet.status = {"routing": [{"cluster": "b", "weight": 100}]}
    plan = fleet.plan({"a": 1})
    progress, _ = fleet.cycle(plan)
    assert actions(progress)[0] == ("WaitReady", "a", 1, "Running")
    progress, report = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT + 1))
    assert report.errors == [
        f"ml/chat: replicas not Ready within readyTimeoutSeconds={TIMEOUT}; scaled back to the replicas Ready; "
        "the wait on a ran out (0/1 Ready)"
    ]
    assert fleet.writes == [("a", G, 0)] and fleet.ready[key("b")] == 1
    assert fleet.migrations.holds(fleet.now) == {"ml/chat": frozenset({key("a")})}
    plan = fleet.plan({"a": 1})
    progress, report = fleet.cycle(plan)
    assert progress.steps == [] and report.errors == [] and fleet.counts() == {"b": 1}
    fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT))  # the hold is over: started again
    assert MigrationProgress.from_status(fleet.status).in_flight and fleet.writes[-1] == ("a", G, 1)


def test_a_growth_moves_weights_leave_out_a_kept_cluster_with_no_ready_replica() -> None:
    # Found in review: a growth move has no ScaleDown after its ShiftRouting, so the guard against routing to
    # a cluster without Ready replicas returned early: a's replicas crashed and it got half the traffic.
    fleet = Fleet.of(a=2)
    fleet.status["routing"] = [{"cluster": "a", "weight": 100}]
    plan = fleet.plan({"a": 2, "c": 2})
    fleet.cycle(plan)
    fleet.ready[key("c")], fleet.ready[key("a")] = 2, 0  # c Ready, a's replicas crash
    progress, _ = fleet.cycle(plan)
    assert fleet.routes == [(RouteWeight("c", 100),)] and progress.steps == []
    assert fleet.routing == (RouteWeight("c", 100),) and fleet.counts() == {"a": 2, "c": 2}


def test_a_deployment_deleted_or_created_again_under_its_name_loses_its_holds() -> None:
    # A roll-back's hold belongs to the deployment's metadata.uid: one created again under the name starts
    # afresh, and a deleted one's state is not kept for ever (found in review: the maps grew with every
    # deployment ever seen, and a hold kept a new deployment of the same name out of the cheap cluster).
    fleet = Fleet.of(ready={"b": 1}, a=1, b=1)
    plan = fleet.plan({"a": 1})
    fleet.cycle(plan)
    fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT + 1))
    held = {"ml/chat": frozenset({key("a")})}
    assert fleet.migrations.holds(fleet.now) == held
    fleet.migrations.forget({"ml/chat": "uid-1"})
    fleet.migrations.forget({"ml/chat": "uid-1"})  # the same deployment: kept
    assert fleet.migrations.holds(fleet.now) == held
    fleet.migrations.forget({"ml/chat": "uid-2"})  # created again under its name
    assert fleet.migrations.holds(fleet.now) == {}
    fleet.migrations.forget({})
    assert fleet.migrations._uids == {}  # nothing kept of a deployment no longer listed


def test_a_scale_down_stops_no_source_while_the_weights_in_force_send_traffic_where_none_is_ready() -> None:
    # A pure shrink: the weights went out (all traffic to a), b's ScaleDown was refused; then a's replicas crash.
    # The ScaleDown has no weights of its own: those in force decide, and stopping b would leave none Ready.
    fleet = Fleet.of(a=2, b=1)
    fleet.status["routing"] = [{"cluster": "a", "weight": 67}, {"cluster": "b", "weight": 33}]
    plan = fleet.plan({"a": 2})
    fleet.refuse = {"b": ActuationForbidden("b", "cannot patch deployments")}
    progress, _ = fleet.cycle(plan)
    assert actions(progress) == [("ShiftRouting", "*", 2, "Done"), ("ScaleDown", "b", 0, "Running")]
    assert fleet.routing == (RouteWeight("a", 100),)
    fleet.refuse = {}
    fleet.ready[key("a")] = 0
    progress, report = fleet.cycle(plan)
    abandoned = "ml/chat: migration abandoned, cluster a would take 100% of the traffic with no Ready replica"
    assert f"{abandoned}; planned afresh" in report.errors
    assert progress.steps == [] and fleet.counts() == {"a": 2, "b": 1} and ("b", G, 0) not in fleet.writes


def test_a_weight_of_zero_in_force_is_no_traffic_for_a_scale_down_to_guard() -> None:
    # status.routing may list a cluster at 0% (the CRD admits weights from 0: status written by hand, or by another
    # writer than gridshift's percents, which leave zeros out). b there takes no traffic, so its replica not being
    # Ready stops no ScaleDown: b is stopped, with no "would take 0% of the traffic" abandon.
    fleet = Fleet.of(a=2, b=1, ready={"a": 2})
    fleet.status["routing"] = [{"cluster": "a", "weight": 100}, {"cluster": "b", "weight": 0}]
    fleet.status["migration"] = [
        {"index": 0, "action": "ScaleDown", "cluster": "b", "gpuType": G, "replicas": 0, "state": "Pending"}
    ]
    progress, report = fleet.cycle(fleet.plan({"a": 2}))
    assert report.errors == [] and progress.steps == []
    assert fleet.writes == [("b", G, 0)] and fleet.counts() == {"a": 2}


def test_weights_the_hub_refuses_hold_no_later_batch_when_nothing_is_stopped_after_them() -> None:
    # Growth in two batches: the first ShiftRouting is followed by a ScaleUp, not a ScaleDown. Holding the move
    # on weights the hub refuses would protect nothing: the second batch starts in the same cycle.
    fleet = Fleet.of(a=1)
    fleet.status["routing"] = [{"cluster": "a", "weight": 100}]
    half = (RouteWeight("a", 50), RouteWeight("b", 50))
    steps = (
        MigrationStep(0, StepAction.SCALE_UP, "b", G, 1),
        MigrationStep(1, StepAction.WAIT_READY, "b", G, 1),
        MigrationStep(2, StepAction.SHIFT_ROUTING, ROUTING_CLUSTER, "*", 2, routing=half),
        MigrationStep(3, StepAction.SCALE_UP, "b", G, 2),
        MigrationStep(4, StepAction.WAIT_READY, "b", G, 2),
    )
    plan = fleet.plan({"a": 1, "b": 2}, steps=steps)
    fleet.cycle(plan)
    fleet.make_ready()
    fleet.route_refused = RuntimeError("hub answered 500")
    progress, report = fleet.cycle(plan)
    assert fleet.counts() == {"a": 1, "b": 2} and progress.error is None
    assert actions(progress)[2:] == [
        ("ShiftRouting", "*", 2, "Done"),
        ("ScaleUp", "b", 2, "Done"),
        ("WaitReady", "b", 2, "Running"),
    ]
    assert progress.steps[2].message == "routing weights not published: internal error (RuntimeError)"
    assert [p.reason for p in report.problems] == [CycleErrorReason.ROUTE_FAILED]


def test_a_deployment_body_without_metadata_keeps_its_migration() -> None:
    # No generation to compare with status.observedGeneration: the steps are not taken for another spec's.
    fleet = Fleet.of(a=2)
    plan = fleet.plan({"b": 2})
    fleet.cycle(plan)
    fleet.make_ready()
    fleet.status["observedGeneration"] = 1
    observed = fleet.observed()
    bare = replace(observed, body={"status": observed.body["status"]})
    report = CycleReport(leader=True, started_at=fleet.now + CYCLE)
    progress = fleet.migrations.run(fleet.now + CYCLE, bare, plan, fleet.views(), fleet, report)
    assert report.errors == [] and progress.in_flight
    assert fleet.counts() == {"a": 1, "b": 2}


def test_a_roll_back_of_several_clusters_names_each_hold_in_its_message() -> None:
    # Two clusters started in one batch, neither Ready: the roll-back's message (its Event, status) lists both holds.
    fleet = Fleet.of(a=1, c=4)
    plan = fleet.plan({"a": 2, "b": 1, "c": 2}, max_moves=2)
    fleet.cycle(plan)
    progress, _ = fleet.cycle(plan, advance=timedelta(seconds=TIMEOUT + 1))
    until = (fleet.now + timedelta(seconds=TIMEOUT)).isoformat(timespec="seconds")
    assert progress.rolled_back == (
        f"replicas not Ready within readyTimeoutSeconds={TIMEOUT}; scaled back to the counts before the move; "
        f"no replica starts again in a ({G}) before {until}, b ({G}) before {until} (raise "
        "spec.migration.readyTimeoutSeconds if replicas there take longer to start)"
    )


def test_a_deployment_paused_then_created_again_under_its_name_is_not_paused() -> None:
    # A move in flight while Frozen is abandoned back in Auto; a deployment created again under the name is
    # another one: its move in flight runs on (its status restored with steps, as from a backup).
    fleet, plan = moving_a_to_b_with_b_ready()
    fleet.cycle(fleet.plan({"a": 2}, mode=MigrationMode.FROZEN))
    assert MigrationProgress.from_status(fleet.status).in_flight  # paused
    fleet.migrations.forget({"ml/chat": "uid-1"})
    fleet.migrations.forget({"ml/chat": "uid-2"})  # created again under its name
    fleet.status["mode"] = "Auto"  # its status, restored from a backup taken in Auto
    _, report = fleet.cycle(plan)
    assert report.errors == []  # not "migration paused outside Auto abandoned"
    assert fleet.routing == (RouteWeight("a", 50), RouteWeight("b", 50)) and fleet.counts() == {"a": 1, "b": 2}


def test_a_grace_decision_is_said_again_after_cycles_that_said_nothing() -> None:
    # One RoutingGrace Event per decision, not one a cycle; but once a cycle says nothing (b answered), the same
    # decision met later (b away again, its spell's start given as before) is news again: the Event is raised again.
    fleet = Fleet.of(a=1, b=1)
    fleet.migrations = Migrations(0.0, routing_grace_seconds=180)
    fleet.status["routing"] = [{"cluster": "a", "weight": 50}, {"cluster": "b", "weight": 50}]
    plan = replace(fleet.plan({"a": 1, "b": 1}), usable_away=frozenset({"b"}))
    since = fleet.now
    plain_views = fleet.views

    def views() -> dict[str, ClusterView]:
        out = plain_views()
        for view in out.values():
            view.unreachable_since = None if view.reachable else since
        return out

    fleet.views = views  # type: ignore[method-assign]
    fleet.observed = lambda: replace(Fleet.observed(fleet), reporting_away={"b": 1})  # type: ignore[method-assign]
    said = []
    for away in ({"b"}, {"b"}, set(), {"b"}):
        fleet.unreachable = away
        progress, _ = fleet.cycle(plan, advance=timedelta(seconds=10))
        said.append(progress.grace)
        assert fleet.routing == (RouteWeight("a", 50), RouteWeight("b", 50))
    until = (since + timedelta(seconds=180)).isoformat()
    kept = f"cluster b unreachable since {since.isoformat()}: its weight 50% kept until {until}"
    assert [[n.startswith(kept) for n in notes] for notes in said] == [[True], [], [], [True]]


def test_a_migrations_made_without_a_routing_grace_keeps_no_unreachable_weight_even_as_its_spell_begins() -> None:
    # routing_grace_seconds defaults to no grace (the service passes operator.unreachableRoutingGraceSeconds): a
    # cluster away since this very cycle, its pods reporting and the deployment still usable there, loses its
    # weight at once, as the other tests of this fleet (built with that default) take for granted.
    fleet = Fleet.of(a=1, b=1)
    fleet.migrations = Migrations(0.0)
    fleet.status["routing"] = [{"cluster": "a", "weight": 50}, {"cluster": "b", "weight": 50}]
    plan = replace(fleet.plan({"a": 1, "b": 1}), usable_away=frozenset({"b"}))
    plain_views = fleet.views

    def views() -> dict[str, ClusterView]:
        out = plain_views()
        for view in out.values():
            view.unreachable_since = None if view.reachable else fleet.now  # away since this cycle
        return out

    fleet.views = views  # type: ignore[method-assign]
    fleet.observed = lambda: replace(Fleet.observed(fleet), reporting_away={"b": 1})  # type: ignore[method-assign]
    fleet.unreachable = {"b"}
    progress, _ = fleet.cycle(plan)
    assert fleet.routing == (RouteWeight("a", 100),)
    assert [n.endswith(f"dropped to 0, the grace ended at {fleet.now.isoformat()}") for n in progress.grace] == [True]
