"""`FakeHub`: the hub Protocol (gridshift.hub.client.Hub) in memory, recording status patches and Events."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gridshift.hub.client import ObjectGone, ObjectRef, RouteMissing, SecretMissing, weighted_rules


@dataclass
class FakeHub:
    """In-memory hub for unit tests: records status patches and events, holds one lease table."""

    secrets: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    statuses: dict[ObjectRef, dict[str, Any]] = field(default_factory=dict)
    events: list[tuple[ObjectRef, str, str, bool]] = field(default_factory=list)
    leases: dict[tuple[str, str], tuple[str, datetime, float]] = field(default_factory=dict)
    routes: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    deleted: set[tuple[str, str]] = field(default_factory=set)
    """(namespace, name) of objects to treat as deleted since they were read."""
    status_writes: int = 0
    route_writes: int = 0

    def set_route_weights(self, namespace: str, name: str, weights: dict[str, int], clusters: set[str]) -> bool:
        rules = self.routes.get((namespace, name))
        if rules is None:
            raise RouteMissing(f"HTTPRoute {namespace}/{name} not found")
        wanted = weighted_rules(rules, weights, clusters)
        if wanted == rules:
            return False
        self.routes[(namespace, name)] = wanted
        self.route_writes += 1
        return True

    def read_secret(self, namespace: str, name: str, key: str) -> str:
        data = self.secrets.get((namespace, name))
        if data is None:
            raise SecretMissing(f"Secret {namespace}/{name} not found")
        if key not in data:
            raise SecretMissing(f"Secret {namespace}/{name} has no key {key!r}")
        return data[key]

    def patch_status(self, ref: ObjectRef, status: dict[str, Any]) -> None:
        if (ref.namespace, ref.name) in self.deleted:
            raise ObjectGone(f"{ref.kind} {ref.namespace}/{ref.name} was deleted")
        merged = merge_patch(self.statuses.get(ref, {}), status)
        self.statuses[ref] = merged
        self.status_writes += 1

    def emit_event(self, ref: ObjectRef, reason: str, message: str, warning: bool = False) -> None:
        self.events.append((ref, reason, message, warning))

    def hold_lease(self, name: str, namespace: str, identity: str, duration_seconds: float, now: datetime) -> bool:
        holder = self.leases.get((namespace, name))
        if holder is not None:
            who, renewed, duration = holder
            if who != identity and renewed + timedelta(seconds=duration) >= now:
                return False
        self.leases[(namespace, name)] = (identity, now, duration_seconds)
        return True


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
