"""kopf handlers: index the three kinds, poke the service on changes, clean up on delete.

Nothing here decides anything: the service (gridshift.service.operator) plans and acts.
Run with `kopf run -m gridshift.shell.handlers --all-namespaces --standalone` (leader election
is the service's Lease, so several replicas may run; kopf's own peering is not needed), without kopf's
--liveness: /healthz and /metrics are gridshift.shell.listeners', on IPv4 and IPv6.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import kopf

from gridshift import redaction
from gridshift.api import GROUP, VERSION
from gridshift.service.sweep import AwaitingLeader, CleanupIncomplete, recorded_clusters
from gridshift.service.wiring import real_service
from gridshift.settings import OperatorSettings, SettingsError, load_operator_settings
from gridshift.shell import connections, listeners, logs

IDEP = (GROUP, VERSION, "inferencedeployments")
RCLUSTER = (GROUP, VERSION, "regionalclusters")
GPROFILE = (GROUP, VERSION, "gpuprofiles")


def essence(body: kopf.Body) -> dict[str, Any]:
    """What the service reads of an object; managedFields and annotations stay out of memory. The
    resourceVersion tells the service when to parse the object again (service.inputs.ParseCache); a
    deletionTimestamp, that the object is being deleted and must not be acted on (service.observe); the
    creationTimestamp, which of several InferenceDeployments naming one HTTPRoute holds it (service.actuate), and
    which of several GPUProfiles for one model, GPU type and size is used (service.inputs.profile_uses)."""
    meta = body.get("metadata", {})
    kept = (
        "name",
        "namespace",
        "uid",
        "generation",
        "labels",
        "resourceVersion",
        "creationTimestamp",
        "deletionTimestamp",
    )
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {k: meta[k] for k in kept if k in meta},
        "spec": body.get("spec"),
        "status": body.get("status"),
    }


@kopf.index(*IDEP)
def deployments_index(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[tuple[str, str], Any]:
    return {(namespace or "", name): essence(body)}


@kopf.index(*RCLUSTER)
def clusters_index(name: str, body: kopf.Body, **_: Any) -> dict[str, Any]:
    return {name: essence(body)}


@kopf.index(*GPROFILE)
def profiles_index(name: str, body: kopf.Body, **_: Any) -> dict[str, Any]:
    return {name: essence(body)}


def operator_settings_or_stop() -> OperatorSettings:
    """The operator's settings; a value it cannot use stops kopf, the variable named (docs/operator.md).

    Found in review: a SettingsError is an ordinary exception to kopf, which retried the startup handler every
    60 s for ever, the operator running and doing nothing. A PermanentError fails the activity, and kopf exits."""
    try:
        return load_operator_settings()
    except SettingsError as error:
        raise kopf.PermanentError(str(error)) from None


@kopf.on.login()
async def login(**kwargs: Any) -> kopf.AiohttpSession:
    return connections.login(operator_settings_or_stop().hub_connections, **kwargs)


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **indices: Any) -> None:
    logs.install()  # before any Secret is read: no credential in a log line
    operator_settings = operator_settings_or_stop()
    logs.apply_format(operator_settings.log_format)
    settings.persistence.finalizer = f"{GROUP}/cleanup"
    settings.posting.level = 30  # kopf's own per-handler events stay out of users' way; ours are explicit
    service = real_service(operator_settings)
    memo.service = service
    listeners.serve_metrics(operator_settings.metrics_port, service.metrics.registry)
    memo.health_runner = await listeners.serve_health(operator_settings.probe_port, service.health)
    memo.loop_task = asyncio.create_task(
        service.run_forever(indices["deployments_index"], indices["clusters_index"], indices["profiles_index"])
    )


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    memo.loop_task.cancel()
    await asyncio.gather(memo.loop_task, return_exceptions=True)
    await memo.health_runner.cleanup()


@kopf.on.create(*IDEP)
@kopf.on.update(*IDEP, field="spec")
@kopf.on.resume(*IDEP)
def spec_changed(memo: kopf.Memo, **_: Any) -> None:
    memo.service.request_replan()


@kopf.on.delete(*IDEP)
async def deleted(
    namespace: str | None, name: str, uid: str, memo: kopf.Memo, status: Mapping[str, Any] | None = None, **_: Any
) -> None:
    # Every replica runs this; only the Lease holder completes it (service.sweep.require_leader), the others
    # retry about once a Lease duration. The holder lists the RegionalClusters itself, and keeps the
    # finalizer (kopf retries) until every member cluster is clean.
    # kopf stores a TemporaryError's text on the tenant's object (status.kopf, its annotations) and posts it as
    # an Event: redacted, whatever member error the text quotes (found in review).
    try:
        # Where the status records replicas, a member refusing to list the workload namespace keeps the
        # finalizer; elsewhere it does not (a tenant not onboarded on a cluster: service.sweep). kopf passes {}
        # when there is no status: unknown, as None; then only the RegionalCluster's record counts (service.sweep).
        recorded = recorded_clusters(status)
        await memo.service.delete_everywhere(namespace or "", name, uid, recorded)
    except AwaitingLeader as error:
        raise kopf.TemporaryError(redaction.redact(str(error)), delay=error.retry_seconds) from None
    except CleanupIncomplete as error:
        raise kopf.TemporaryError(redaction.redact(str(error)), delay=30) from None
