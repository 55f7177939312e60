"""Cleanup: a deleted InferenceDeployment's objects go from every member cluster, and orphans are swept.

Deletion (the kopf finalizer): the objects of an InferenceDeployment are deleted, by owner annotations,
in every cluster a RegionalCluster names, read from the hub API itself: a process that has just
started (or is not the leader) has no cluster cache yet, and trusting one let the finalizer go
while replicas kept running. Any cluster that cannot be cleaned raises `CleanupIncomplete`, so the
finalizer stays and deletion is retried.

A cycle acts on the deployments it observed when it began, so one deleted while a cycle runs could
get its workloads applied again after the finalizer cleaned the member clusters. `Departures` closes
that: the finalizer marks the UID before it cleans, cycles that begin later leave the deployment
alone (service.observe, which also leaves out bodies with a deletionTimestamp), and when a cycle
that began before the mark is still running, the finalizer waits for it to end and cleans again.
`Departures` knows the cycles of its own process only, and kopf runs the finalizer on every replica:
so only the replica holding the leader Lease completes it (`require_leader`; the others' AwaitingLeader
keeps the finalizer, and kopf retries), the one replica whose cycles may write.

Sweep (each leader cycle): member objects of every kind gridshift writes whose owner annotations name an
InferenceDeployment UID that is not live (service.observe's orphans: one owner per member namespace),
confirmed against the hub API (the kopf index may still be filling after a restart), are deleted: the very
objects found, by name, each read again and deleted only if still that owner's by UID (`delete_owned_object`),
whatever their `gridshift.dev/deployment` label says; the Lease is checked before each object's deletion.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from gridshift import redaction
from gridshift.actuation.members import ListingRefused, MemberCluster, MemberError, Owner
from gridshift.api import RegionalCluster
from gridshift.api.regional_cluster import MemberAccess, workload_namespace_for
from gridshift.hub.client import Hub, ObjectRef, SecretMissing
from gridshift.hub.lease import LeaderElector
from gridshift.service import inputs
from gridshift.service.errors import describe
from gridshift.service.observe import Observer, recorded_namespaces
from gridshift.service.report import EventAction, EventReason
from gridshift.service.state import CycleReport, Observation, Orphan
from gridshift.service.writes import Fenced

log = logging.getLogger("gridshift.service")

OUTWAIT_SECONDS = 60.0
"""How long a finalizer waits in one go for the cycle running when its deletion began (kopf retries after)."""
_OUTWAIT_POLL_SECONDS = 0.2


class CleanupIncomplete(Exception):
    """Some member cluster could not be cleaned; the finalizer must stay (the message names each cluster)."""


class AwaitingLeader(CleanupIncomplete):
    """This replica does not hold the leader Lease: the finalizer stays for the leader to complete; retried
    after `retry_seconds` (a Lease duration, in which a standby takes over from a leader that is gone)."""

    def __init__(self, message: str, retry_seconds: float) -> None:
        super().__init__(message)
        self.retry_seconds = retry_seconds


def require_leader(elector: LeaderElector, owner: Owner) -> None:
    """AwaitingLeader unless this replica holds the Lease now. Found in review: the standby's finalizer
    cleaned once and let the finalizer go while the leader's cycle, which had read the deployment live, was
    still writing its workload: the objects came back after the deletion and held their GPUs until a later
    sweep. The leader's own finalizer outwaits its cycles (`finalize`); another replica's cycles write nothing
    (fencing), and a standby that takes the Lease over completes it on kopf's retry."""
    if not elector.leading():
        raise AwaitingLeader(
            f"{owner}: waiting for the leader: only the replica holding the Lease {elector.namespace}/"
            f"{elector.name} cleans up after a deletion, since a planning cycle it is running may write the "
            "deployment's objects again after another replica cleaned; retried, and completed here if this "
            "replica takes the Lease over",
            elector.timing.duration_seconds,
        )


class Departures:
    """UIDs whose deletion has begun, and the planning cycle each must outwait; see the module docstring.

    Called from the cycle's thread (`cycle`) and the finalizers' (the rest)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = 0
        self._running: int | None = None
        self._marked: dict[str, int | None] = {}

    @contextlib.contextmanager
    def cycle(self) -> Iterator[frozenset[str]]:
        """A planning cycle runs inside: it is given the UIDs it must leave alone."""
        with self._lock:
            self._started += 1
            self._running = self._started
            marked = frozenset(self._marked)
        try:
            yield marked
        finally:
            with self._lock:
                self._running = None

    def mark(self, uid: str) -> int | None:
        """Deletion of `uid` begins (again, on a retry): the cycle that must end before a final cleanup,
        None when no cycle was running at the first mark."""
        with self._lock:
            return self._marked.setdefault(uid, self._running)

    def outwaited(self, cycle: int | None) -> bool:
        """True once `cycle` (from `mark`) is no longer running; any cycle begun since leaves the UID alone."""
        with self._lock:
            return cycle is None or self._running != cycle

    def forget(self, uid: str) -> None:
        """The deletion is complete (the finalizer goes)."""
        with self._lock:
            self._marked.pop(uid, None)


Recorded = Collection[str] | None
"""The clusters where a deleted InferenceDeployment's status records replicas (`recorded_clusters`); None: unknown."""


def delete_everywhere(hub: Hub, observer: Observer, owner: Owner, recorded: Recorded = None) -> int:
    """Delete `owner`'s objects from every RegionalCluster's member cluster; CleanupIncomplete if any failed.

    `recorded`: the clusters where the owner's status records replicas or a migration step (`recorded_clusters`);
    None: unknown (only the RegionalCluster's record counts, `_why_held`). A cluster that refuses the listing of
    the owner's workload namespace (403: a tenant not onboarded there) holds no deletion where neither the
    owner's status records the cluster nor the RegionalCluster's own status records the namespace in use:
    gridshift could never write there (its apply is refused alike), so a Warning Event says what was not looked
    at, and it is let go.
    Found in review: the refusal kept the finalizer for good, the deployment and its namespace Terminating."""
    deleted = 0
    failures: list[str] = []
    for parsed in inputs.parse_bodies(hub.regional_clusters(), RegionalCluster):
        access = parsed.resource.spec if parsed.resource is not None else _member_access(parsed.body)
        if access is None:
            failures.append(f"RegionalCluster {parsed.key} is invalid ({parsed.error}): its cluster cannot be cleaned")
            continue
        namespace = workload_namespace_for(access, owner.namespace)
        try:
            member = observer.member(parsed.key, access)
            count = member.delete_deployment_objects(owner, [namespace])
        except ListingRefused as error:
            held = _why_held(parsed.key, error.namespace, parsed.body, recorded)
            if held is not None:
                failures.append(_refused_where_recorded(parsed.key, error, held))
            else:
                _not_looked_at(hub, owner, parsed.key, error)
            continue
        except (MemberError, SecretMissing, Fenced) as error:  # their messages name the cluster
            failures.append(str(error))
            continue
        except Exception as error:  # an adapter bug: keep the finalizer, never quote what failed
            failures.append(f"cluster {parsed.key}: {describe(error)}")
            continue
        deleted += count
        log.info("deleted %d objects of %s in %s", count, owner, parsed.key)
    if failures:
        raise CleanupIncomplete(f"{owner}: not cleaned up yet, will retry: " + "; ".join(failures))
    return deleted


def recorded_clusters(status: Mapping[str, Any] | None) -> Recorded:
    """The clusters an InferenceDeployment's status says gridshift placed replicas in or was moving them to
    (status.placements, status.migration): where its objects may be, whatever a member lets gridshift see.

    None (unknown) where the status has no placements record at all: no cycle wrote it (kopf passes {} then);
    every status a cycle writes has placements ([] where none), a refused spec's too. Where it is unknown, only
    the RegionalCluster's record of the namespace holds a deletion a member refuses (`_why_held`)."""
    if not isinstance(status, Mapping) or "placements" not in status:
        return None
    named = [*(status.get("placements") or ()), *(status.get("migration") or ())]
    return frozenset(str(entry["cluster"]) for entry in named if isinstance(entry, Mapping) and "cluster" in entry)


def _why_held(cluster: str, namespace: str, body: Mapping[str, Any], recorded: Recorded) -> str | None:
    """Why a deletion refused the listing of `namespace` in `cluster` must keep its finalizer; None: it need not.

    The RegionalCluster's status.workloadNamespaces counts too: it outlives the operator process, and keeps a
    namespace that can no longer be read. Found in review: after a restart, the first cycle rewrote the owner's
    status.placements without the cluster whose namespace it could not read (its replicas there were known to
    the previous process only), and the deletion let go while they ran.

    An owner whose status no cycle wrote (`recorded` None) is held by that record alone: found in review, holding
    it everywhere kept the finalizer for good where a tenant not onboarded on a member deleted a deployment
    before its first cycle (or while no replica led), since cycles write no status for a deployment leaving.
    Left: replicas applied in the one cycle before the cluster's record names the namespace, with the owner's
    status writes failing and the member Role revoked in that cycle, are let go (the next sweep finds them
    once the Role is back)."""
    if recorded is not None and cluster in recorded:
        return "its status records replicas there"
    status = body.get("status")
    if namespace in recorded_namespaces(status if isinstance(status, Mapping) else {}):
        return f"RegionalCluster {cluster}'s status records gridshift workloads in that namespace"
    return None


def _refused_where_recorded(cluster: str, refused: ListingRefused, why: str) -> str:
    return (
        f"cluster {cluster}: forbidden (HTTP 403) to list workload namespace {refused.namespace} "
        f"({refused.kind}), and {why}: grant gridshift's member Role there again, or see docs/install.md "
        "'A deletion that stays Terminating'"
    )


def _not_looked_at(hub: Hub, owner: Owner, cluster: str, refused: ListingRefused) -> None:
    """A Warning Event on `owner` (best effort: the deletion goes on without it): `cluster` was not cleaned."""
    note = (
        f"cluster {cluster}: workload namespace {refused.namespace} not cleaned: forbidden (HTTP 403) to list "
        f"({refused.kind}), and no replicas of this deployment are recorded there; the deletion goes on without it"
    )
    log.warning("%s: %s", owner, note)
    ref = ObjectRef("InferenceDeployment", owner.namespace, owner.name, owner.uid)
    try:
        hub.emit_event(
            ref, EventReason.CLEANUP_SKIPPED, redaction.redact(note), warning=True, action=EventAction.CLEAN_UP
        )
    except Exception as error:
        log.warning("%s: Event %s not written: %s", owner, EventReason.CLEANUP_SKIPPED, describe(error))


def _member_access(body: Mapping[str, Any]) -> MemberAccess | None:
    """What cleaning a RegionalCluster's member cluster takes, from a body whose spec does not validate as
    a whole (a mistyped price feed must not keep every tenant's deletion waiting); None where that too is
    invalid."""
    try:
        return MemberAccess.model_validate(body.get("spec") or {})
    except ValidationError:
        return None


async def finalize(departures: Departures, elector: LeaderElector, owner: Owner, delete: Callable[[], object]) -> None:
    """The finalizer's cleanup, on the leader only (`require_leader`): mark, `delete` (raises
    CleanupIncomplete), and if a cycle was running when the deletion began, wait for it to end and `delete`
    again (what it may have written)."""
    require_leader(elector, owner)
    cycle = departures.mark(owner.uid)
    await asyncio.to_thread(delete)
    if not departures.outwaited(cycle):
        deadline = time.monotonic() + OUTWAIT_SECONDS
        while not departures.outwaited(cycle):
            if time.monotonic() > deadline:
                raise CleanupIncomplete(
                    f"{owner}: cleaned, but the planning cycle running when its deletion began has not ended "
                    f"within {OUTWAIT_SECONDS:.0f} s and may still write its objects; will retry"
                )
            await asyncio.sleep(_OUTWAIT_POLL_SECONDS)
        await asyncio.to_thread(delete)
    departures.forget(owner.uid)


def sweep_orphans(hub: Hub, seen: Observation, report: CycleReport, leading: Callable[[], bool]) -> int:
    """Delete the objects of owners that no longer exist on the hub; returns how many objects went.
    Each deletion is fenced (`leading`): a sweep of many orphans may outlast the Lease."""
    deleted = 0
    for view in seen.views.values():
        if view.member is None or not view.orphans:
            continue
        for orphan in view.orphans:
            if not leading():
                return deleted
            owner = orphan.owner
            try:
                if hub.deployment_uid(owner.namespace, owner.name) == owner.uid:
                    continue  # live after all (this process's index is behind the hub)
                gone, lapsed = _delete_found(view.member, orphan, leading)
            except (MemberError, SecretMissing, Fenced) as error:
                report.errors.append(f"sweeping {owner} in {view.name}: {error}")
                continue
            except Exception as error:
                report.errors.append(f"sweeping {owner} in {view.name}: {describe(error)}")
                continue
            if gone:  # none: no member write (found in review: counted and logged anyway)
                deleted += len(gone)
                report.member_writes += 1
                log.info("swept orphaned objects of %s (uid %s) in %s: %s", owner, owner.uid, view.name, _named(gone))
            if lapsed:
                return deleted  # the rest is the next leader's sweep
            left = [found for found in orphan.objects if found not in gone]
            if left:
                # Found as the owner's a moment ago and not deleted: gone since (another replica's sweep, a
                # finalizer's retry), or its owner annotations changed. Said, since the next cycle finds them again
                # if they are still there (review: a sweep that deleted none of an orphan's objects said nothing).
                log.warning(
                    "orphaned objects of %s (uid %s) in %s not deleted: %s: gone, or no longer its by their owner "
                    "annotations, since they were listed",
                    owner,
                    owner.uid,
                    view.name,
                    _named(left),
                )
    return deleted


def _delete_found(
    member: MemberCluster, orphan: Orphan, leading: Callable[[], bool]
) -> tuple[list[tuple[str, str]], bool]:
    """Delete `orphan`'s objects as found (by name, each still its owner's by UID): the (kind, name) deleted, and
    whether the Lease lapsed before the last was asked."""
    gone: list[tuple[str, str]] = []
    for kind, name in orphan.objects:
        if not leading():
            return gone, True
        if member.delete_owned_object(orphan.owner, kind, orphan.namespace, name):
            gone.append((kind, name))
    return gone, False


def _named(objects: Collection[tuple[str, str]]) -> str:
    return ", ".join(f"{kind} {name}" for kind, name in objects)
