"""Stage 4 of the cycle for Auto deployments: their migrate stages, `write_concurrency` at once.

A price swing that moves a hundred deployments makes a hundred or more member applies, each a read
and a server-side apply; one after another they took over a minute of a cycle on a loaded machine.
Each deployment's steps still run in order within its own task, and touch only its own state (its
status.migration, its entries in Migrations and the Actuator). What a task reports goes to a report
of its own, folded into the cycle's in the deployments' order by the operator's act stage, so the
cycle reads the same whatever finished first. A task that starts after the Lease may have lapsed
writes nothing (None).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from gridshift.api import MigrationMode
from gridshift.planner.plan import DeploymentPlan
from gridshift.service.actuate import Actuator
from gridshift.service.migrate import MigrationProgress, Migrations
from gridshift.service.state import CycleReport, Observation, ObservedDeployment

Migrated = tuple[MigrationProgress | BaseException | None, CycleReport]
"""One Auto deployment's migrate stage: its progress, the error it raised, or None when fenced; its own report."""


class AutoMigrations:
    """Runs the migrate stage of every Auto deployment of a cycle on a bounded pool of threads."""

    def __init__(
        self, migrations: Migrations, actuator: Actuator, leading: Callable[[], bool], concurrency: int
    ) -> None:
        self._migrations = migrations
        self._actuator = actuator
        self._leading = leading
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="gridshift-migrate")

    def run(self, now: datetime, seen: Observation, planned: Mapping[str, DeploymentPlan]) -> dict[str, Migrated]:
        auto = [d for d in seen.deployments if planned[d.id].mode is MigrationMode.AUTO]

        def one(deployment: ObservedDeployment) -> Migrated:
            own = CycleReport(leader=True, started_at=now)
            if not self._leading():
                return None, own
            try:
                progress = self._migrations.run(
                    now, deployment, planned[deployment.id], seen.views, self._actuator, own
                )
            except Exception as error:  # raised again in the act stage, in order, by the per-deployment guard
                return error, own
            return progress, own

        return dict(zip((d.id for d in auto), self._pool.map(one, auto), strict=True))
