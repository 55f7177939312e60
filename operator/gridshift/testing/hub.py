"""`FakeHub`: the hub Protocol (gridshift.hub.client.Hub) in memory, recording status patches and Events
(with series for repeats, as the real hub's events.k8s.io Events), its status and route-weight writes refused
for want of time in the write window as KubeHub's are (`honour_write_window`)."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple

from gridshift.hub.client import (
    SECRET_PURPOSE_LABEL,
    EventKey,
    EventType,
    LeaseRecord,
    ObjectGone,
    ObjectRef,
    RouteMissing,
    SecretMissing,
    SecretPurpose,
    route_update,
    secret_value,
)
from gridshift.testing.windows import FakeWriteWindow


class RecordedEvent(NamedTuple):
    """One Event as the fake hub holds it; `occurrences` is its series count (1 for a singleton)."""

    ref: ObjectRef
    reason: str
    note: str
    warning: bool
    action: str
    occurrences: int = 1


@dataclass
class FakeHub(FakeWriteWindow):
    """In-memory hub for unit tests: records status patches and events, holds one lease table.

    `secrets` maps (namespace, name) to plain-text data; `secret_labels` to the Secret's labels (a Secret
    without an entry there is labelled for every purpose, so tests that are not about purposes stay short).
    `routes` holds whole HTTPRoute bodies.
    """

    secrets: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    secret_labels: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    statuses: dict[ObjectRef, dict[str, Any]] = field(default_factory=dict)
    """Each object's status, by its ref with the uid it has (InferenceDeployments: as in `deployments`; a
    ref without a uid for kinds the fake keeps no uid of); see `patch_status`."""
    events: list[RecordedEvent] = field(default_factory=list)
    """Events as stored: a repeat of an Event raises its occurrences instead of adding one."""
    event_writes: int = 0
    """Creates and series updates, as the API server would count them."""
    leases: dict[tuple[str, str], LeaseRecord] = field(default_factory=dict)
    routes: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    deployments: dict[tuple[str, str], str] = field(default_factory=dict)
    """(namespace, name) -> uid of the InferenceDeployments that exist (for deployment_uid)."""
    clusters: list[dict[str, Any]] = field(default_factory=list)
    deleted: set[tuple[str, str]] = field(default_factory=set)
    """(namespace, name) of objects to treat as deleted since they were read."""
    status_writes: int = 0
    route_writes: int = 0
    lease_versions: int = 0

    def _writer(self) -> str:
        """As KubeHub's refusals name it; only status and route-weight writes ask the window, as KubeHub's do."""
        return "hub"

    def read_secret(self, namespace: str, name: str, key: str, purpose: SecretPurpose) -> str:
        data = self.secrets.get((namespace, name))
        if data is None:
            raise SecretMissing(f"Secret {namespace}/{name} not found")
        labels = self.secret_labels.get((namespace, name), {SECRET_PURPOSE_LABEL: purpose.value})
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        return secret_value(namespace, name, key, purpose, labels, encoded)

    def namespace_labels(self, name: str) -> dict[str, str]:
        labels = self.namespaces.get(name)
        if labels is None:
            return {"kubernetes.io/metadata.name": name}
        return {"kubernetes.io/metadata.name": name, **labels}

    def deployment_uid(self, namespace: str, name: str) -> str | None:
        return self.deployments.get((namespace, name))

    def regional_clusters(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self.clusters)

    def patch_status(self, ref: ObjectRef, status: dict[str, Any], fence: Callable[[], None] | None = None) -> None:
        """As KubeHub on the apiserver: the patch goes to the object that has the name now (an InferenceDeployment
        in `deployments`), and one named by a uid it no longer has, deleted or created again, is ObjectGone.
        Found in review: statuses were kept by the ref as sent, so a deleted deployment's late status landed
        under its old uid here while the apiserver wrote it on the object created again under its name."""
        if fence is not None:
            fence()  # before the one send, as KubeHub before each
        if (ref.namespace, ref.name) in self.deleted:
            raise ObjectGone(f"{ref.kind} {ref.namespace}/{ref.name} was deleted")
        target = ref
        if ref.kind == "InferenceDeployment":
            uid = self.deployments.get((ref.namespace, ref.name))
            if uid is None or (ref.uid and ref.uid != uid):
                raise ObjectGone(f"{ref.kind} {ref.namespace}/{ref.name} was deleted")
            target = replace(ref, uid=uid)
        self._window(f"patch {ref.kind} {f'{ref.namespace}/' if ref.namespace else ''}{ref.name} status")
        self.statuses[target] = merge_patch(self.statuses.get(target, {}), status)
        self.status_writes += 1

    def emit_event(
        self, ref: ObjectRef, reason: str, note: str, *, warning: bool = False, action: str = "Plan"
    ) -> None:
        key = EventKey(ref, reason, action, note, EventType.WARNING if warning else EventType.NORMAL)
        self.event_writes += 1
        for index, event in enumerate(self.events):
            if EventKey(event.ref, event.reason, event.action, event.note, _type(event.warning)) == key:
                self.events[index] = event._replace(occurrences=event.occurrences + 1)
                return
        self.events.append(RecordedEvent(ref, reason, note, warning, action))

    def read_lease(self, name: str, namespace: str, timeout_seconds: float | None = None) -> LeaseRecord | None:
        return self.leases.get((namespace, name))

    def write_lease(self, name: str, namespace: str, record: LeaseRecord, timeout_seconds: float | None = None) -> bool:
        current = self.leases.get((namespace, name))
        stored_version = current.resource_version if current is not None else None
        if record.resource_version != stored_version:
            return False  # a compare-and-swap lost to another writer (or a create of an existing Lease)
        self.lease_versions += 1
        self.leases[(namespace, name)] = replace(record, resource_version=str(self.lease_versions))
        return True

    def leave_released_lease(self, name: str, namespace: str) -> None:
        """Store the Lease as a previous leader's shutdown leaves it (gridshift.hub.lease.released): a replica
        takes it at once. An absent Lease is taken only once it stayed absent for the lease duration."""
        self.lease_versions += 1
        then = datetime(2026, 1, 1, tzinfo=UTC)
        self.leases[(namespace, name)] = LeaseRecord("", 15, None, then, 0, str(self.lease_versions))

    def set_route_weights(self, namespace: str, name: str, weights: dict[str, int], clusters: set[str]) -> bool:
        route = self.routes.get((namespace, name))
        if route is None:
            raise RouteMissing(f"HTTPRoute {namespace}/{name} not found")
        wanted = route_update(namespace, name, route, weights, clusters)
        if wanted is None:
            return False  # nothing sent: KubeHub asks the window only before the PATCH
        self._window(f"patch HTTPRoute {namespace}/{name} weights")
        route.setdefault("spec", {})["rules"] = wanted
        self.route_writes += 1
        return True


def _type(warning: bool) -> EventType:
    return EventType.WARNING if warning else EventType.NORMAL


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch, as the apiserver applies it."""
    out = copy.deepcopy(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_patch(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
