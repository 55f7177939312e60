"""The actuate stage: member-cluster workloads and HTTPRoute weights, written only when they change.

`Actuator.set_replicas` renders a deployment's workload for one (cluster, GPU type) and applies it
unless the cluster already runs that replica count with that template (spec-hash annotation), so an
idle cycle writes nothing. It remembers what it applied this cycle, so status shows the new desired
counts at once. `route` writes routing weights to the HTTPRoute a deployment names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from gridshift.actuation.labels import SPEC_HASH
from gridshift.actuation.render import WorkloadTarget, render_deployment, render_workload
from gridshift.api import MigrationMode
from gridshift.hub.client import Hub
from gridshift.planner import snapshot as S
from gridshift.planner.migration import Key, RouteWeight
from gridshift.planner.plan import DeploymentPlan, Plan
from gridshift.service.errors import describe
from gridshift.service.state import ClusterView, CycleErrorReason, CycleReport, ObservedDeployment, Problem
from gridshift.service.writes import Fenced

_DEFAULT_MAX_NUM_SEQS = 256
"""vLLM's own default of --max-num-seqs, for a GPU type the plan has no option for (no profile)."""


class Actuator:
    """Writes workloads and routes for this cycle; see the module docstring."""

    def __init__(self, hub: Hub, fence: Callable[[], bool] = lambda: True) -> None:
        self.hub = hub
        self._fence = fence
        self._max_num_seqs: dict[str, Mapping[tuple[str, str], int]] = {}
        self._variants: dict[str, Mapping[tuple[str, str], str]] = {}
        self._applied: dict[str, dict[Key, int]] = {}

    def begin(self, plan: Plan) -> None:
        """A new cycle: the plan's engine batch sizes per deployment and (cluster, GPU type)."""
        self._max_num_seqs = {d.id: d.max_num_seqs for d in plan.deployments}
        self._variants = {d.id: d.variants for d in plan.deployments if d.variants}

    def set_replicas(self, deployment: ObservedDeployment, view: ClusterView, gpu_type: str, replicas: int) -> int:
        """Apply the workload with `replicas` unless it already has that count and template. Returns writes."""
        assert view.member is not None
        spec = deployment.resource.spec
        target = WorkloadTarget(
            deployment_namespace=deployment.planned.namespace,
            deployment_name=deployment.planned.name,
            cluster=view.name,
            workload_namespace=view.workload_namespace_for(deployment.planned.namespace),
            gpu_type=gpu_type,
            replicas=replicas,
            max_num_seqs=self._max_num_seqs.get(deployment.id, {}).get((view.name, gpu_type), _DEFAULT_MAX_NUM_SEQS),
            owner_uid=deployment.uid,
            variant=self._variants.get(deployment.id, {}).get((view.name, gpu_type), ""),
        )
        wanted_hash = render_deployment(spec, target)["metadata"]["annotations"][SPEC_HASH]
        current = next(
            (
                w
                for w in view.workloads or ()
                if (w.deployment_namespace, w.deployment_name, w.gpu_type)
                == (deployment.planned.namespace, deployment.planned.name, gpu_type)
            ),
            None,
        )
        if current is not None and current.desired == replicas and current.spec_hash == wanted_hash:
            return 0
        self._fenced()
        view.member.apply(render_workload(spec, target))
        self._applied.setdefault(deployment.id, {})[(view.name, gpu_type)] = replicas
        return 1

    def route(
        self,
        deployment: ObservedDeployment,
        plan: DeploymentPlan,
        routing: Sequence[RouteWeight],
        views: Mapping[str, ClusterView],
        report: CycleReport,
    ) -> None:
        """Publish the routing weights on the deployment's HTTPRoute, if it names one (Auto mode only); a
        failure is reported (RouteFailed), and the deployment's status is still written."""
        if plan.mode is not MigrationMode.AUTO:
            return
        try:
            report.member_writes += self.publish_routing(deployment, routing, views)
        except Fenced:
            raise
        except Exception as error:  # a route the hub refuses must not stop the deployment's report
            report_route_failure(deployment, error, report)

    def publish_routing(
        self, deployment: ObservedDeployment, routing: Sequence[RouteWeight], views: Mapping[str, ClusterView]
    ) -> int:
        """Set the weights on the deployment's HTTPRoute, if it names one; returns the writes (0 or 1).
        Raises what the hub raises (RouteMissing, RouteConflict, HubForbidden, ...)."""
        route = deployment.resource.spec.routing.http_route_name
        if not route or not routing:
            return 0
        self._fenced()
        weights = {r.cluster: r.weight for r in routing}
        return int(self.hub.set_route_weights(deployment.planned.namespace, route, weights, set(views)))

    def _fenced(self) -> None:
        """Checked before every write: a migration's steps are several writes, and the Lease may lapse
        between two of them (the write pool fences status and Events the same way)."""
        if not self._fence():
            raise Fenced("leader Lease not renewed within the renew deadline: member write not sent")

    def as_applied(self, deployment: ObservedDeployment) -> S.Deployment:
        """The deployment with the replica counts applied this cycle (Ready counts stay as observed)."""
        applied = self._applied.pop(deployment.id, {})
        if not applied:
            return deployment.planned
        placements = {(p.cluster, p.gpu_type): p for p in deployment.planned.placements}
        for (cluster, gpu_type), replicas in applied.items():
            ready = placements[(cluster, gpu_type)].ready if (cluster, gpu_type) in placements else 0
            placements[(cluster, gpu_type)] = S.Placement(cluster, gpu_type, replicas, min(ready, replicas))
        return replace(deployment.planned, placements=tuple(placements[k] for k in sorted(placements)))


def report_route_failure(deployment: ObservedDeployment, error: Exception, report: CycleReport) -> str:
    """Reports weights the hub did not take (RouteFailed); returns why, without the deployment's name
    (no secret in it: `describe`)."""
    reason = f"routing weights not published: {describe(error)}"
    message = f"{deployment.id}: {reason}"
    if message not in report.errors:  # the migrate stage and the actuate stage may both try in one cycle
        report.errors.append(message)
        report.problems.append(Problem(CycleErrorReason.ROUTE_FAILED, message, deployment=deployment.id))
    return reason
