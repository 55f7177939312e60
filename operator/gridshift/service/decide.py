"""Stage 3 of the cycle, decide: the pure planner's plan, or last cycle's when the problem is the same.

The stage owns the one piece of state that crosses cycles on the planning side: the last plan (the
next search's warm start) and whether that plan already came from searching an unchanged problem
again. Everything else it needs is in the snapshot (service.observe) and the planner settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gridshift.planner.plan import Plan, make_plan
from gridshift.planner.reuse import same_problem
from gridshift.planner.settings import PlannerSettings
from gridshift.planner.snapshot import Snapshot
from gridshift.service.state import CycleReport


class Decider:
    """This cycle's plan, from the snapshot; see `decide`."""

    def __init__(self, settings: PlannerSettings, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._monotonic = monotonic
        self.last_plan: Plan | None = None
        self.searched_unchanged = False
        """Whether the last plan came from searching an unchanged problem again (see decide)."""

    def decide(self, snapshot: Snapshot, report: CycleReport) -> Plan:
        """This cycle's plan. Last cycle's is reused when the planner would solve the same problem
        (planner.reuse.same_problem: equal deployments, clusters and profiles, and prices and carbon
        that read the same at this instant over every window in use) and searching it again cannot
        help: the last search proved its plan optimal, or it already searched this unchanged problem
        once more from its own answer (a time-budgeted search may improve on a second pass, not on
        every idle cycle). Anything else is planned afresh, the last plan being the warm start."""
        last = self.last_plan
        unchanged = (
            last is not None and last.snapshot is not None and same_problem(last.snapshot, snapshot, self.settings)
        )
        if unchanged and last is not None and (last.proven_optimal or self.searched_unchanged):
            report.plan_reused = True
            report.plan = last
            return last
        self.searched_unchanged = unchanged
        # The search's budget runs on this process's clock; the last plan is its warm start.
        planning = time.perf_counter()
        plan = make_plan(snapshot, self.settings, clock=self._monotonic, previous=last)
        report.planner_seconds = time.perf_counter() - planning
        report.plan = self.last_plan = plan
        return plan
