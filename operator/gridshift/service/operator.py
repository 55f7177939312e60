"""The service: the planning loop, and one cycle that reads top to bottom.

`run_cycle` is the whole decision, stage by stage, each stage its own module with typed state
between them (service.state):

1. lead      only the Lease holder plans and acts; others write nothing (gridshift.hub.lease);
2. observe   hub objects, member clusters, Prometheus and price feeds -> one Snapshot (service.observe),
             then orphans of deleted InferenceDeployments are swept (service.sweep);
3. decide    the pure planner: Snapshot -> Plan (gridshift.planner), or last cycle's plan when the
             problem is the same (service.decide, gridshift.planner.reuse);
4. migrate   make-before-break steps, persisted in status.migration (service.migrate), Auto
             deployments writeConcurrency at once (service.migrate_auto), each one's steps in order,
             carried out by
5. actuate   member-cluster workloads and HTTPRoute weights, written only when changed (service.actuate);
6. report    status and decision Events (service.report), GPUProfile fits, then the operator's metrics
             (service.metrics); the cycle's problems, by reason, go to metrics and the log.

The kopf shell only feeds it the indexed hub objects and pokes it on spec changes. Every adapter
(Hub, MemberCluster, MetricsSource, ManagedPriceFeed) is injected at construction, so the cycle runs
the same against the fakes of gridshift.testing in unit tests and real apiservers in e2e.

Safety rules, and where they are kept:
- Fencing: the Lease is renewed by its own task; a replica whose last renewal is older than the
  renew deadline stops writing at once, mid-cycle included, before any other can take over.
- Isolation: whatever goes wrong with one cluster or one deployment is reported on it; the cycle
  goes on for the others (service.observe, and the per-deployment guard below).
- An idle cycle writes nothing: status is patched only when it changed (service.status rounds
  measured values), member objects only when replicas or the rendered template changed.
- A replica not Ready by readyTimeoutSeconds is rolled back and the reason recorded (service.migrate).
- Advisory and Frozen deployments are never touched in member clusters.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from gridshift.actuation.members import Owner
from gridshift.hub.client import Hub
from gridshift.hub.lease import LeaderElector, LeaseTiming
from gridshift.planner.plan import DeploymentPlan
from gridshift.planner.settings import PlannerSettings
from gridshift.service.actuate import Actuator
from gridshift.service.decide import Decider
from gridshift.service.errors import describe
from gridshift.service.metrics import OperatorMetrics
from gridshift.service.migrate import Migrations, with_holds
from gridshift.service.migrate_auto import AutoMigrations, Migrated
from gridshift.service.observe import Observer, Sources, flatten
from gridshift.service.report import Reporter, invalid_cluster_problems, log_cycle, log_problems
from gridshift.service.state import CycleErrorReason, CycleReport, Observation, ObservedDeployment, Problem
from gridshift.service.sweep import Departures, Recorded, delete_everywhere, finalize, sweep_orphans
from gridshift.service.writes import LeaseWindow, WritePool, members_within
from gridshift.settings import OperatorSettings

log = logging.getLogger("gridshift.service")

LEASE_NAME = "gridshift-leader"


class OperatorService:
    """Plans and acts for every InferenceDeployment; see the module docstring for the stages."""

    def __init__(
        self,
        settings: OperatorSettings,
        hub: Hub,
        sources: Sources,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        planner_settings: PlannerSettings | None = None,
        identity: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.hub = hub
        self._clock = clock
        self.planner_settings = planner_settings or PlannerSettings(
            cold_start_seconds=settings.cold_start_seconds,
            move_penalty_usd=settings.move_penalty_usd,
            time_budget_seconds=settings.planner_time_budget_seconds,
        )
        self.decider = Decider(self.planner_settings, monotonic)
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}"
        timing = LeaseTiming(
            settings.lease_duration_seconds, settings.lease_renew_deadline_seconds, settings.lease_retry_period_seconds
        )
        self.elector = LeaderElector(hub, LEASE_NAME, settings.namespace, self.identity, timing, monotonic)
        hub.limit_writes(LeaseWindow(self.elector.write_seconds_left))  # route weights and status too (hub.client)
        # Member writes end while no other replica may act.
        within = members_within(sources.member_factory, self.elector.write_seconds_left)
        self.observer = Observer(settings, hub, replace(sources, member_factory=within))
        self.departures = Departures()
        self.migrations = Migrations(settings.revalidate_delay_seconds, settings.unreachable_routing_grace_seconds)
        self.actuator = Actuator(hub, self.elector.leading, clock, settings.max_num_seqs_interval_seconds)
        self.auto = AutoMigrations(self.migrations, self.actuator, self.elector.leading, settings.write_concurrency)
        self.writes = WritePool(settings.write_concurrency, fence=self.elector.leading)
        self.reporter = Reporter(hub, self.writes)
        self.metrics = OperatorMetrics(leading=self.elector.leading)
        self.last_report: CycleReport | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Threads of their own: kopf's handlers (a burst of deletions, say) share the default pool, and
        # must neither delay a cycle nor, above all, a Lease renewal (fencing would stop the leader).
        self._cycle_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gridshift-cycle")
        self._lease_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gridshift-lease")

    # ------------------------------------------------------------------ shell-facing API

    def request_replan(self) -> None:
        # kopf runs sync callbacks in worker threads: wake the loop thread-safely.
        if self._wake is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def health(self) -> dict[str, Any]:
        return {"cycles": 0} if self.last_report is None else self.last_report.health()

    async def run_forever(self, deployments: Any, clusters: Any, profiles: Any) -> None:
        """The planning loop: every planIntervalSeconds, sooner on a spec change or on taking the Lease (renewed
        beside it by a task of its own, in client-go's rounds: hub.lease)."""
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        renewing = asyncio.create_task(self._renew_forever())
        try:
            while True:
                try:
                    report = await self._loop.run_in_executor(
                        self._cycle_thread, self.run_cycle, flatten(deployments), flatten(clusters), flatten(profiles)
                    )
                    log_cycle(report)
                    log_problems(report)
                except Exception as error:  # one bad cycle must not stop the operator; the next one retries
                    message = f"planning cycle failed: {describe(error)}"
                    self.metrics.cycle_failed()
                    log.error(message, extra={"reason": CycleErrorReason.CYCLE_FAILED.value})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.settings.plan_interval_seconds)
                self._wake.clear()
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
            # Hand over in order: stop acting (every write from now on is fenced), let a write in flight end with
            # its cycle (at most a Lease's duration, what a successor would wait anyway), then clear the Lease.
            self.elector.stop_leading()
            with contextlib.suppress(TimeoutError):
                cycle_over = asyncio.get_running_loop().run_in_executor(self._cycle_thread, lambda: None)
                await asyncio.wait_for(cycle_over, timeout=self.elector.timing.duration_seconds)
            await asyncio.to_thread(self.elector.release)

    async def _renew_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            led = self.elector.leading()
            if await loop.run_in_executor(self._lease_thread, self.elector.try_acquire_or_renew) and not led:
                self.request_replan()  # found in review: a new leader waited up to planIntervalSeconds to act
            await asyncio.sleep(self.elector.pause())  # client-go's spacing: within a renewal round and between

    async def delete_everywhere(self, namespace: str, name: str, uid: str, recorded: Recorded = None) -> None:
        """The finalizer's cleanup on the Lease holder, outwaiting a cycle running when it began (service.sweep)."""
        delete = functools.partial(self.delete_from_members, namespace, name, uid, recorded)
        await finalize(self.departures, self.elector, Owner(namespace, name, uid), delete)

    def delete_from_members(self, namespace: str, name: str, uid: str, recorded: Recorded = None) -> int:
        """Remove a deleted InferenceDeployment's objects from every member cluster a RegionalCluster names.
        CleanupIncomplete if a cluster cannot be cleaned (the finalizer stays, kopf retries: nothing is left
        orphaned when it returns); `recorded`: where its status records replicas (None: unknown; service.sweep)."""
        return delete_everywhere(self.hub, self.observer, Owner(namespace, name, uid), recorded)

    # ------------------------------------------------------------------ the cycle

    def run_cycle(
        self,
        deployment_bodies: Sequence[Mapping[str, Any]],
        cluster_bodies: Sequence[Mapping[str, Any]],
        profile_bodies: Sequence[Mapping[str, Any]],
    ) -> CycleReport:
        with self.departures.cycle() as leaving:  # deployments whose deletion has begun are left alone
            return self._cycle(deployment_bodies, cluster_bodies, profile_bodies, leaving)

    def _cycle(
        self,
        deployment_bodies: Sequence[Mapping[str, Any]],
        cluster_bodies: Sequence[Mapping[str, Any]],
        profile_bodies: Sequence[Mapping[str, Any]],
        leaving: frozenset[str],
    ) -> CycleReport:
        started = time.perf_counter()
        now = self._clock()
        report = CycleReport(leader=False, started_at=now)

        # 1. Lead: only the Lease holder plans and acts.
        report.leader = self.elector.ensure()
        if not report.leader:
            self.reporter.standing_by(self.last_report, report)
            return self._finish(report, started, None)

        # 2. Observe: one snapshot of hub objects, member clusters, metrics and prices; sweep orphans.
        seen = self.observer.observe(now, deployment_bodies, cluster_bodies, profile_bodies, report, leaving)
        if self._still_leading(report):
            sweep_orphans(self.hub, seen, report, self.elector.leading)

        invalid_cluster_problems(cluster_bodies, seen, report)

        # 3. Decide: the pure planner, or last cycle's plan when the problem is the same (service.decide); no
        # replica where a roll-back holds them (service.migrate).
        self.migrations.forget({d.id: d.uid for d in seen.deployments})
        plan = self.decider.decide(with_holds(seen.snapshot, self.migrations.holds(now)), report)
        self.actuator.begin(plan, deployment_bodies)
        planned = {p.id: p for p in plan.deployments}

        migrated = self.auto.run(now, seen, planned)  # 4. Auto deployments' migrate stages, at once
        for _, own in migrated.values():  # in the deployments' order; counted even if the Lease lapses below
            report.fold(own)
        try:
            for deployment in seen.deployments:
                if not self._still_leading(report):
                    break
                try:
                    self._act_on(now, deployment, planned[deployment.id], seen, report, migrated.get(deployment.id))
                except Exception as error:  # one deployment's failure must not stop the others
                    message = f"{deployment.id}: not acted on this cycle: {describe(error)}"
                    report.errors.append(message)
                    report.problems.append(
                        Problem(CycleErrorReason.DEPLOYMENT_FAILED, message, deployment=deployment.id)
                    )
        finally:
            # Status patches and Events went to the write pool (bounded concurrency): all end in this cycle.
            self.writes.drain()
        self._still_leading(report)  # a write fenced off mid-drain is reported as the lost Lease
        leading = partial(self._still_leading, report)  # statuses fenced patch by patch: one may outlast the Lease
        for view in (*seen.views.values(), *seen.held.values()):
            if not leading() or not self.reporter.cluster(now, view, report, leading):
                break
        self.reporter.profiles(now, profile_bodies, seen.profiles, report, leading)
        self.reporter.refused(now, seen.refused, report, leading)  # objects the model refuses: InvalidSpec, named
        return self._finish(report, started, seen)

    def _act_on(
        self,
        now: datetime,
        deployment: ObservedDeployment,
        planned: DeploymentPlan,
        seen: Observation,
        report: CycleReport,
        migrated: Migrated | None = None,
    ) -> None:
        # 4 and 5. Migrate (make-before-break steps; Auto deployments' already run by service.migrate_auto)
        # and actuate (workloads, routing weights).
        if migrated is None:
            progress = self.migrations.run(now, deployment, planned, seen.views, self.actuator, report)
        else:
            outcome, _ = migrated  # its report was folded in when the stage ended
            if outcome is None:
                return  # fenced before its migrate stage ran: nothing was written, nothing is reported
            if isinstance(outcome, BaseException):
                raise outcome
            progress = outcome
        self.actuator.repair_all(deployment, planned, progress.in_flight, seen.views, report)
        progress.route_held = self.actuator.route(deployment, planned, progress.routing, seen.views, report)
        # 6. Report: the deployment's status and its decision Event.
        applied = self.actuator.as_applied(deployment)
        self.reporter.deployment(now, deployment, applied, planned, progress, seen.views, report)

    def _still_leading(self, report: CycleReport) -> bool:
        """Fencing: stop writing the moment the Lease may have lapsed."""
        if self.elector.leading():
            return True
        message = "leader Lease not renewed within the renew deadline: stopped acting this cycle"
        if message not in report.errors:
            report.errors.append(message)
            report.problems.append(Problem(CycleErrorReason.LEASE_LOST, message))
        return False

    def _finish(self, report: CycleReport, started: float, seen: Observation | None) -> CycleReport:
        report.seconds = time.perf_counter() - started
        self.last_report = report
        self.metrics.record(report, seen)
        return report
