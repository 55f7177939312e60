"""The report stage: status patches and decision Events on the hub, written only when something changed.

Status is composed by service.status (from the observation, the plan and the migration's
progress) and compared with what is stored; the merge patch is empty in an idle cycle, so nothing
is written. An Event goes out only when the decision itself changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from gridshift.hub.client import Hub, ObjectGone, ObjectRef
from gridshift.planner import snapshot as S
from gridshift.planner.plan import DeploymentPlan
from gridshift.service.migrate import MigrationProgress
from gridshift.service.state import ClusterView, CycleReport, ObservedDeployment
from gridshift.service.status import cluster_status, deployment_status, status_patch

WARNING_REASONS = frozenset({"Infeasible", "RolledBack", "SLOAtRisk"})
"""Decision reasons published as Warning Events."""


class Reporter:
    """Writes each object's status and decision Events through the hub."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def deployment(
        self,
        now: datetime,
        deployment: ObservedDeployment,
        applied: S.Deployment,
        plan: DeploymentPlan,
        progress: MigrationProgress,
        views: Mapping[str, ClusterView],
        report: CycleReport,
    ) -> None:
        old_status = deployment.old_status
        new_status = deployment_status(now, deployment, applied, plan, progress, views)
        patch = status_patch(old_status, new_status)
        if not patch:
            return
        meta = deployment.body["metadata"]
        ref = ObjectRef("InferenceDeployment", applied.namespace, applied.name, str(meta.get("uid", "")))
        try:
            self.hub.patch_status(ref, patch)
        except ObjectGone:
            return  # deleted mid-cycle: its finalizer handler cleans up
        report.status_writes += 1
        old_decision = (old_status.get("lastDecision") or {}).get("summary")
        if new_status.get("lastDecision", {}).get("summary") != old_decision:
            decision = new_status["lastDecision"]
            report.decisions.append(decision["reason"])
            self.hub.emit_event(
                ref, decision["reason"], decision["summary"], warning=decision["reason"] in WARNING_REASONS
            )
            report.events += 1

    def cluster(self, now: datetime, view: ClusterView, report: CycleReport) -> None:
        patch = status_patch(view.old_status, cluster_status(now, view))
        if not patch:
            return
        try:
            self.hub.patch_status(ObjectRef("RegionalCluster", "", view.name), patch)
        except ObjectGone:
            return
        report.status_writes += 1
