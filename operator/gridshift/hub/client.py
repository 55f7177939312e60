"""Hub-cluster access behind one small Protocol, with a kubernetes-client adapter (its fake: gridshift.testing).

Status is written through the status subresource with a JSON merge patch, and only when it
changed, so an idle planning cycle makes no writes. A patch for an object named with its uid goes only
to that object: one deleted and created again under its name refuses it (`ObjectGone`). Leader election
(gridshift.hub.lease) reads and writes one coordination.k8s.io Lease through `read_lease`/`write_lease`,
a compare-and-swap.

Events are events.k8s.io/v1, reported by REPORTING_CONTROLLER and this process as reportingInstance;
a repeat of an Event (same object, reason, action, note and type) updates the first one's `series`
(count, lastObservedTime) rather than making another object, as client-go's event recorder does.

Secrets are read by purpose: a Secret must carry the label SECRET_PURPOSE_LABEL with the purpose
it is read for, so that whoever may write a RegionalCluster cannot point a price feed's token at a
member kubeconfig (and send it to a URL of their choice). HTTPRoutes are written only when they
carry MANAGED_ROUTE_LABEL, with the resourceVersion they were read at (optimistic concurrency).

The writes that change what other replicas act on, HTTPRoute weights (real traffic) and status, end before
another replica may take the leader Lease over, as member writes do (`limit_writes`, gridshift.deadline): a
route-weight PATCH from a deposed leader that landed after the new leader wrote its weights overwrote them.
Events are not limited: they change nothing another replica reads, and a deployment's decision Events
follow its status patch unfenced for that reason (service.writes); refused, they would only be lost.
"""

from __future__ import annotations

import base64
import copy
import os
import secrets
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from gridshift.api import GROUP, VERSION
from gridshift.deadline import CallDeadline, WriteWindow, watch_connections, window_cut, write_seconds

PLURALS = {
    "InferenceDeployment": "inferencedeployments",
    "RegionalCluster": "regionalclusters",
    "GPUProfile": "gpuprofiles",
}
REPORTING_CONTROLLER = "gridshift.dev/operator"
"""events.k8s.io reportingController of every Event gridshift emits."""
CONFLICT_ATTEMPTS = 3
"""Sends of one status patch or member apply answered 409 Conflict before the cycle reports it."""
EVENT_SERIES_MEMORY = 4096
"""Events remembered for series updates (the oldest are forgotten first; a forgotten repeat is a new Event)."""
SECRET_PURPOSE_LABEL = "gridshift.dev/secret-purpose"
MANAGED_ROUTE_LABEL = "gridshift.dev/managed-route"
"""An HTTPRoute gridshift may set weights on carries `<this>: "true"`."""


class SecretPurpose(StrEnum):
    """What a Secret may be used for; its SECRET_PURPOSE_LABEL must say so."""

    MEMBER_KUBECONFIG = "member-kubeconfig"
    PRICE_FEED_TOKEN = "price-feed-token"


class SecretMissing(Exception):
    """A referenced Secret or key does not exist, may not be read, or is not labelled for the purpose."""


class HubForbidden(SecretMissing):
    """The operator's ServiceAccount lacks a permission on the hub; the message names verb and resource."""


@dataclass(frozen=True)
class ObjectRef:
    """Names one hub object (namespace empty for cluster-scoped kinds)."""

    kind: str
    namespace: str
    name: str
    uid: str = ""


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


@dataclass(frozen=True)
class EventKey:
    """What makes two Events the same occurrence repeated: the object, and every field but time and count."""

    ref: ObjectRef
    reason: str
    action: str
    note: str
    type: EventType


def micro_time_text(instant: datetime) -> str:
    """An instant as a Kubernetes MicroTime (RFC 3339, UTC, six fraction digits)."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


EVENT_NOTE_BYTES = 1024
"""The apiserver's limit on an Event's note, in bytes (events validation: Go's len(), NoteLengthLimit)."""


def utf8_prefix(text: str, limit: int) -> str:
    """The longest prefix of `text` whose UTF-8 is at most `limit` bytes, never splitting a character. Found in
    review: notes were cut at 1,024 characters, and one quoting a non-ASCII admission webhook's denial was 1,074
    bytes, so the apiserver refused the Event (a rolled-back migration's one Warning, lost)."""
    # A lone surrogate (json.loads of a quoted "\\ud83d") cannot be encoded: replaced, not raised (review).
    return text.encode(errors="replace")[:limit].decode(errors="ignore")


def event_body(key: EventKey, name: str, now: datetime, instance: str) -> dict[str, Any]:
    """A new events.k8s.io/v1 Event about key.ref (cluster-scoped objects' Events go to `default`)."""
    ref = key.ref
    regarding: dict[str, Any] = {"apiVersion": f"{GROUP}/{VERSION}", "kind": ref.kind, "name": ref.name}
    if ref.namespace:
        regarding["namespace"] = ref.namespace
    if ref.uid:
        regarding["uid"] = ref.uid
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": ref.namespace or "default"},
        "eventTime": micro_time_text(now),
        "reportingController": REPORTING_CONTROLLER,
        "reportingInstance": instance[:128],
        "action": key.action[:128],
        "reason": key.reason[:128],
        "note": utf8_prefix(key.note, EVENT_NOTE_BYTES),
        "type": key.type.value,
        "regarding": regarding,
    }


def event_name(ref: ObjectRef) -> str:
    """A unique Event name: the object's name (shortened to fit) and 16 random hex digits. A name cut
    after a '-' or '.' is trimmed of them, so that the result stays a DNS subdomain (found in review)."""
    return f"{ref.name[:200].rstrip('-.')}.{secrets.token_hex(8)}"


_Read = TypeVar("_Read")


@contextmanager
def _api_errors(by_status: Mapping[int, Callable[[str], Exception]]) -> Iterator[None]:
    """The API's errors with a status named here become the hub's own exception (made from the API's
    reason, and raised without the ApiException's body: it may quote the object); any other passes."""
    from kubernetes.client.exceptions import ApiException

    try:
        yield
    except ApiException as error:
        make = by_status.get(error.status)
        if make is None:
            raise
        raise make(str(error.reason)) from None


def _none_if_absent(read: Callable[[], _Read]) -> _Read | None:
    """What `read` returns, or None where the API answers 404 Not Found."""
    from kubernetes.client.exceptions import ApiException

    try:
        return read()
    except ApiException as error:
        if error.status == 404:
            return None
        raise


class ObjectGone(Exception):
    """The object was deleted between reading it and writing its status."""


class RouteMissing(Exception):
    """The HTTPRoute an InferenceDeployment names does not exist (or the Gateway API is not installed)."""


class RouteNotManaged(RouteMissing):
    """The HTTPRoute exists but does not carry MANAGED_ROUTE_LABEL: gridshift leaves it alone."""


class RouteConflict(Exception):
    """The HTTPRoute changed between read and write; the next cycle reads it again."""


class HubWriteTimeout(Exception):
    """A hub write got no complete answer within the api timeout (gridshift.deadline); the message names the
    write. Whether it was applied is not known."""


@dataclass(frozen=True)
class LeaseRecord:
    """The leader Lease as stored: who holds it, for how long, and its resourceVersion (for compare-and-swap)."""

    holder: str | None
    duration_seconds: int
    renew_time: datetime | None
    acquire_time: datetime | None
    transitions: int = 0
    resource_version: str | None = None


def weighted_rules(rules: list[dict[str, Any]], weights: dict[str, int], clusters: set[str]) -> list[dict[str, Any]]:
    """The route's rules with each backendRef named after a cluster given that cluster's weight.

    Convention (docs/routing.md): one backendRef per RegionalCluster, named like it (a
    ServiceImport or an ExternalName Service reaching that cluster). A cluster without replicas
    gets weight 0; backendRefs named after no cluster are left as they are.
    """
    out = copy.deepcopy(rules)
    for rule in out:
        for ref in rule.get("backendRefs") or []:
            if ref.get("name") in clusters:
                ref["weight"] = weights.get(ref["name"], 0)
    return out


def secret_value(
    namespace: str, name: str, key: str, purpose: SecretPurpose, labels: dict[str, str], data: dict[str, str]
) -> str:
    """The decoded value of `key` if the Secret is labelled for `purpose`; else SecretMissing saying how to fix it."""
    if labels.get(SECRET_PURPOSE_LABEL) != purpose.value:
        raise SecretMissing(
            f"Secret {namespace}/{name} is not labelled {SECRET_PURPOSE_LABEL}={purpose.value}: gridshift reads a "
            "Secret only for the purpose its owner labelled it for (docs/security.md)"
        )
    if key not in data:
        raise SecretMissing(f"Secret {namespace}/{name} has no key {key!r}")
    try:
        return base64.b64decode(data[key], validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        # Found in review: a kubeconfig of other bytes (UTF-16, a gzip) read "internal error
        # (UnicodeDecodeError)". Every value gridshift reads is text; the error never quotes the value.
        raise SecretMissing(
            f"Secret {namespace}/{name} key {key!r} is not UTF-8 text (its value is not quoted here)"
        ) from None


def micro_time(instant: datetime | None) -> datetime | None:
    """A datetime the Kubernetes client serialises as a valid MicroTime.

    The client writes datetimes with isoformat(), which drops the fraction when microseconds are 0, and
    the API server then refuses the Lease ("cannot parse ... as .000000"): one write in a million would
    fail. Such an instant is moved by one microsecond."""
    if instant is None:
        return None
    return instant.replace(microsecond=1) if instant.microsecond == 0 else instant


def route_update(
    namespace: str, name: str, route: dict[str, Any], weights: dict[str, int], clusters: set[str]
) -> list[dict[str, Any]] | None:
    """The rules to write on a managed route, or None when its weights are already right."""
    meta = route.get("metadata") or {}
    if (meta.get("labels") or {}).get(MANAGED_ROUTE_LABEL) != "true":
        raise RouteNotManaged(
            f"HTTPRoute {namespace}/{name} is not labelled {MANAGED_ROUTE_LABEL}=true; its weights are left alone"
        )
    rules: list[dict[str, Any]] = (route.get("spec") or {}).get("rules") or []
    wanted = weighted_rules(rules, weights, clusters)
    return None if wanted == rules else wanted


class Hub(Protocol):
    """What the service needs from the hub cluster."""

    def read_secret(self, namespace: str, name: str, key: str, purpose: SecretPurpose) -> str:
        """One key of a Secret labelled for `purpose`; SecretMissing (naming Secret, key and label) otherwise."""
        ...

    def namespace_labels(self, name: str) -> dict[str, str]:
        """Labels of a hub namespace ({} when it does not exist)."""
        ...

    def deployment_uid(self, namespace: str, name: str) -> str | None:
        """metadata.uid of an InferenceDeployment, read from the API server (not a cache); None when gone."""
        ...

    def regional_clusters(self) -> list[dict[str, Any]]:
        """Every RegionalCluster, read from the API server (deletion must not trust a cache still filling)."""
        ...

    def patch_status(self, ref: ObjectRef, status: dict[str, Any], fence: Callable[[], None] | None = None) -> None:
        """A JSON merge patch of `ref`'s status. ObjectGone when the object is gone; with a uid in `ref`,
        also when the object of that name now is another (deleted and created again). `fence` is called
        before each send, retries included, and raises to stop (the service's raises Fenced)."""
        ...

    def emit_event(
        self, ref: ObjectRef, reason: str, note: str, *, warning: bool = False, action: str = "Plan"
    ) -> None:
        """An events.k8s.io/v1 Event about `ref`; a repeat of the same one updates its series."""
        ...

    def read_lease(self, name: str, namespace: str, timeout_seconds: float | None = None) -> LeaseRecord | None:
        """The Lease (None when absent); `timeout_seconds` bounds the request (leader election passes the time
        left before its renew deadline: an answer after it is worth nothing)."""
        ...

    def write_lease(self, name: str, namespace: str, record: LeaseRecord, timeout_seconds: float | None = None) -> bool:
        """Create (resource_version None) or replace the Lease; False when another writer got there first."""
        ...

    def set_route_weights(self, namespace: str, name: str, weights: dict[str, int], clusters: set[str]) -> bool:
        """Set backendRef weights of a managed HTTPRoute; True when it had to be written.

        RouteMissing / RouteNotManaged when it is absent or not labelled MANAGED_ROUTE_LABEL; RouteConflict
        when it changed after it was read."""
        ...

    def limit_writes(self, window: WriteWindow) -> None:
        """Every route-weight and status write request from now on ends within `window.seconds_left()` at its
        send, judged again when that time comes (a renewal meanwhile lets it go on), or within the api timeout
        where that is sooner, and is not sent with under MIN_WRITE_SECONDS left; cut or not sent for want of
        time, it raises `window.refused(...)` (the service's: Fenced). Reads, Events and the Lease's own
        requests are not limited (the hub module docstring)."""
        ...


class KubeHub:
    """The real hub, through the kubernetes client configured in-cluster or from a kubeconfig."""

    def __init__(self, api_client: Any, timeout_seconds: float = 10.0, instance: str | None = None) -> None:
        from kubernetes import client

        self.api_client = api_client
        """The client every request goes through (a RequestCounter can be attached to it)."""
        self._core = client.CoreV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)
        self._coordination = client.CoordinationV1Api(api_client)
        self._events = client.EventsV1Api(api_client)
        self._timeout = timeout_seconds
        self.instance = instance or f"{socket.gethostname()}-{os.getpid()}"
        self._series: OrderedDict[EventKey, tuple[str, int]] = OrderedDict()
        """Event name and count of each Event emitted, for series updates on repeats."""
        self._write_window: WriteWindow | None = None
        """`limit_writes`: None, every write gets the api timeout (per socket operation, as before)."""
        self._watched = watch_connections(api_client.rest_client.pool_manager)  # for CallDeadline (`_write`)

    def read_secret(self, namespace: str, name: str, key: str, purpose: SecretPurpose) -> str:
        with _api_errors(
            {
                404: lambda _: SecretMissing(f"Secret {namespace}/{name} not found"),
                403: lambda reason: HubForbidden(
                    f"forbidden: cannot get Secret {namespace}/{name} ({reason}); "
                    "the operator's Role needs get on secrets in its namespace"
                ),
            }
        ):
            secret = self._core.read_namespaced_secret(name, namespace, _request_timeout=self._timeout)
        labels = (secret.metadata.labels if secret.metadata is not None else None) or {}
        data: dict[str, str] = {str(k): str(v) for k, v in (secret.data or {}).items()}
        return secret_value(namespace, name, key, purpose, labels, data)

    def namespace_labels(self, name: str) -> dict[str, str]:
        namespace = _none_if_absent(lambda: self._core.read_namespace(name, _request_timeout=self._timeout))
        if namespace is None:
            return {}
        return dict((namespace.metadata.labels if namespace.metadata is not None else None) or {})

    def deployment_uid(self, namespace: str, name: str) -> str | None:
        found = _none_if_absent(
            lambda: self._custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURALS["InferenceDeployment"], name, _request_timeout=self._timeout
            )
        )
        body: dict[str, Any] = found if isinstance(found, dict) else {}
        return str((body.get("metadata") or {}).get("uid") or "") or None

    def regional_clusters(self) -> list[dict[str, Any]]:
        answer = self._custom.list_cluster_custom_object(
            GROUP, VERSION, PLURALS["RegionalCluster"], _request_timeout=self._timeout
        )
        body: dict[str, Any] = answer if isinstance(answer, dict) else {}
        return list(body.get("items") or [])

    def patch_status(self, ref: ObjectRef, status: dict[str, Any], fence: Callable[[], None] | None = None) -> None:
        with _api_errors(
            {
                404: lambda _: ObjectGone(f"{ref.kind} {ref.namespace}/{ref.name} was deleted"),
                403: lambda reason: HubForbidden(
                    f"forbidden: cannot patch {PLURALS[ref.kind]}/status ({reason}); the operator's "
                    f"ClusterRole needs patch on {PLURALS[ref.kind]}/status (charts/gridshift RBAC)"
                ),
            }
        ):
            self._patch_status_retrying(ref, status, fence)

    def _patch_status_retrying(self, ref: ObjectRef, status: dict[str, Any], fence: Callable[[], None] | None) -> None:
        """The patch, sent again on 409 Conflict (up to CONFLICT_ATTEMPTS): the object changed between
        `_current_version` and the patch (another writer: kopf's progress annotations, say), or the
        apiserver's own optimistic-concurrency retry ran out under concurrent writers; each try reads the
        object again, so one deleted meanwhile is ObjectGone, never retried. `fence` comes before each try:
        found in review, fenced once before the first, a deposed leader's retry, conditional on the version
        it read again, landed over the status the new leader had written meanwhile. And again after that read, right
        before the patch (`_patch_status`)."""
        from kubernetes.client.exceptions import ApiException

        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            if fence is not None:
                fence()
            try:
                self._patch_status(ref, status, fence)
                return
            except ApiException as error:
                if error.status != 409 or attempt == CONFLICT_ATTEMPTS:
                    raise

    def _patch_status(self, ref: ObjectRef, status: dict[str, Any], fence: Callable[[], None] | None = None) -> None:
        plural = PLURALS[ref.kind]
        body: dict[str, Any] = {"status": status}
        if ref.uid and ref.kind == "InferenceDeployment":
            # The one kind whose status holds state a namesake created again must not inherit (migration steps);
            # and the chart grants get on it alone (found in review: an InvalidSpec RegionalCluster's status,
            # sent with its uid, was refused every cycle).
            body["metadata"] = {"resourceVersion": self._current_version(ref)}
            if fence is not None:
                fence()  # again after that read (up to the request timeout): the Lease may have passed meanwhile
        what = f"patch {ref.kind} {f'{ref.namespace}/' if ref.namespace else ''}{ref.name} status"
        if ref.namespace:
            self._write(
                lambda timeout: self._custom.patch_namespaced_custom_object_status(
                    GROUP, VERSION, ref.namespace, plural, ref.name, body, _request_timeout=timeout
                ),
                what,
            )
        else:
            self._write(
                lambda timeout: self._custom.patch_cluster_custom_object_status(
                    GROUP, VERSION, plural, ref.name, body, _request_timeout=timeout
                ),
                what,
            )

    def _current_version(self, ref: ObjectRef) -> str:
        """The resourceVersion of the object `ref` names; ObjectGone when the object of that name now has
        another uid. Found in review: a merge patch lands on whatever object has the name, so a deleted
        deployment's late status (its migration steps) was written on one created again under its name,
        which then waited out steps naming replicas that were swept. A uid in the patch does not stop it:
        the status subresource ignores metadata (a real kube-apiserver takes a mismatched one, see
        tests/cluster/test_crds_apiserver.py); the resourceVersion read here does, 409 Conflict once the
        object changed, a new one included."""
        plural = PLURALS[ref.kind]
        forbidden = {
            403: lambda reason: HubForbidden(
                f"forbidden: cannot get {plural} ({reason}); the operator's ClusterRole needs get on {plural}"
            )
        }
        with _api_errors(forbidden):  # a 404 is the caller's: ObjectGone
            if ref.namespace:
                found = self._custom.get_namespaced_custom_object(
                    GROUP, VERSION, ref.namespace, plural, ref.name, _request_timeout=self._timeout
                )
            else:
                found = self._custom.get_cluster_custom_object(
                    GROUP, VERSION, plural, ref.name, _request_timeout=self._timeout
                )
        meta: dict[str, Any] = (found if isinstance(found, dict) else {}).get("metadata") or {}
        if meta.get("uid") != ref.uid:
            raise ObjectGone(f"{ref.kind} {ref.namespace}/{ref.name} was deleted (created again since, another uid)")
        return str(meta.get("resourceVersion") or "")

    def emit_event(
        self, ref: ObjectRef, reason: str, note: str, *, warning: bool = False, action: str = "Plan"
    ) -> None:
        from kubernetes.client.exceptions import ApiException

        key = EventKey(ref, reason, action, note, EventType.WARNING if warning else EventType.NORMAL)
        now = datetime.now(UTC)
        namespace = ref.namespace or "default"
        known = self._series.get(key)
        if known is not None:
            name, count = known
            patch = {"series": {"count": count + 1, "lastObservedTime": micro_time_text(now)}}
            try:
                self._events.patch_namespaced_event(
                    name,
                    namespace,
                    patch,
                    _content_type="application/merge-patch+json",
                    _request_timeout=self._timeout,
                )
            except ApiException as error:
                if error.status != 404:
                    raise
                # Expired (the apiserver's event TTL): this occurrence starts a new Event.
            else:
                self._remember(key, name, count + 1)
                return
        from kubernetes import client

        name = event_name(ref)
        event = client.EventsV1Event.model_validate(event_body(key, name, now, self.instance))
        event.event_time = micro_time(now) or now  # the client writes isoformat(): no fraction at .000000
        self._events.create_namespaced_event(namespace, event, _request_timeout=self._timeout)
        self._remember(key, name, 1)

    def _remember(self, key: EventKey, name: str, count: int) -> None:
        self._series[key] = (name, count)
        self._series.move_to_end(key)
        while len(self._series) > EVENT_SERIES_MEMORY:
            self._series.popitem(last=False)

    def set_route_weights(self, namespace: str, name: str, weights: dict[str, int], clusters: set[str]) -> bool:
        group, version, plural = "gateway.networking.k8s.io", "v1", "httproutes"
        with _api_errors(
            {404: lambda _: RouteMissing(f"HTTPRoute {namespace}/{name} not found (is the Gateway API installed?)")}
        ):
            route = self._custom.get_namespaced_custom_object(
                group, version, namespace, plural, name, _request_timeout=self._timeout
            )
        body: dict[str, Any] = route if isinstance(route, dict) else {}
        wanted = route_update(namespace, name, body, weights, clusters)
        if wanted is None:
            return False
        # resourceVersion makes the patch conditional: a route edited since it was read is not overwritten.
        version_read = (body.get("metadata") or {}).get("resourceVersion")
        patch = {"metadata": {"resourceVersion": version_read}, "spec": {"rules": wanted}}
        with _api_errors(
            {
                409: lambda _: RouteConflict(
                    f"HTTPRoute {namespace}/{name} changed while being updated; retried next cycle"
                )
            }
        ):
            self._write(
                lambda timeout: self._custom.patch_namespaced_custom_object(
                    group, version, namespace, plural, name, patch, _request_timeout=timeout
                ),
                f"patch HTTPRoute {namespace}/{name} weights",
            )
        return True

    def limit_writes(self, window: WriteWindow) -> None:
        self._write_window = window

    def _write(self, send: Callable[[float], _Read], what: str) -> _Read:
        """`send(request_timeout)`'s answer: one write request, under the write window where `limit_writes` set one
        (not sent with under MIN_WRITE_SECONDS left, cut at the window's end as the window's refusal, cut at the
        api timeout as HubWriteTimeout), as `members.KubeMemberCluster._call` does for member writes. The request
        timeout stays the api timeout: it limits each socket operation only, and capped at the window as judged
        at the send, it would cut a write that a renewal in flight let go on. Where the connections cannot be
        watched (a SOCKS proxy's pools), that per-operation cap is the only one there is: capped there."""
        window = self._write_window
        if window is None:
            return send(self._timeout)
        left = write_seconds(window, f"hub: {what}")
        deadline = CallDeadline(self._timeout, window.seconds_left)
        sent = time.monotonic()
        with deadline:
            try:
                answer = send(self._timeout if self._watched else min(self._timeout, left))
            except Exception:
                if deadline.fired:  # whatever the cut answer raised: the deadline is why
                    raise self._cut(window, deadline, what, sent) from None
                raise
        if deadline.fired:  # an answer cut at the deadline may still have parsed: never trusted
            raise self._cut(window, deadline, what, sent)
        return answer

    def _cut(self, window: WriteWindow, deadline: CallDeadline, what: str, sent: float) -> Exception:
        if deadline.cut_by_window:
            return window_cut(window, f"hub: {what}", sent)
        return HubWriteTimeout(f"hub: {what}: no complete answer within {self._timeout:g} s")

    def read_lease(self, name: str, namespace: str, timeout_seconds: float | None = None) -> LeaseRecord | None:
        timeout = self._lease_timeout(timeout_seconds)
        lease = _none_if_absent(
            lambda: self._coordination.read_namespaced_lease(name, namespace, _request_timeout=timeout)
        )
        if lease is None:
            return None
        spec = lease.spec
        return LeaseRecord(
            holder=spec.holder_identity if spec else None,
            duration_seconds=int((spec.lease_duration_seconds if spec else 0) or 0),
            renew_time=spec.renew_time if spec else None,
            acquire_time=spec.acquire_time if spec else None,
            transitions=int((spec.lease_transitions if spec else 0) or 0),
            resource_version=lease.metadata.resource_version if lease.metadata else None,
        )

    def write_lease(self, name: str, namespace: str, record: LeaseRecord, timeout_seconds: float | None = None) -> bool:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        spec = client.V1LeaseSpec(
            holder_identity=record.holder,
            lease_duration_seconds=record.duration_seconds,
            renew_time=micro_time(record.renew_time),
            acquire_time=micro_time(record.acquire_time),
            lease_transitions=record.transitions,
        )
        meta = client.V1ObjectMeta(name=name, namespace=namespace, resource_version=record.resource_version)
        body = client.V1Lease(metadata=meta, spec=spec)
        timeout = self._lease_timeout(timeout_seconds)
        try:
            if record.resource_version is None:
                self._coordination.create_namespaced_lease(namespace, body, _request_timeout=timeout)
            else:
                # resourceVersion in the body makes this a compare-and-swap: two replicas cannot both win.
                self._coordination.replace_namespaced_lease(name, namespace, body, _request_timeout=timeout)
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    def _lease_timeout(self, timeout_seconds: float | None) -> float:
        """The client's timeout, or less where the caller has less time left (never 0: the client reads 0 as none)."""
        return self._timeout if timeout_seconds is None else max(min(self._timeout, timeout_seconds), 0.001)
