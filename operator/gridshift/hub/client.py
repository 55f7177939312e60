"""Hub-cluster access behind one small Protocol, with a kubernetes-client adapter and an in-memory fake.

Status is written through the status subresource with a JSON merge patch, and only when it
changed, so an idle planning cycle makes no writes. Only the leader (a coordination.k8s.io
Lease, renewed every cycle) acts, so several operator replicas can run for availability.
"""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from gridshift.api import GROUP, VERSION

PLURALS = {"InferenceDeployment": "inferencedeployments", "RegionalCluster": "regionalclusters"}


class SecretMissing(Exception):
    """A referenced Secret or key does not exist, or may not be read; the message names both."""


class HubForbidden(SecretMissing):
    """The operator's ServiceAccount lacks a permission on the hub; the message names verb and resource."""


@dataclass(frozen=True)
class ObjectRef:
    """Names one hub object (namespace empty for cluster-scoped kinds)."""

    kind: str
    namespace: str
    name: str
    uid: str = ""


class ObjectGone(Exception):
    """The object was deleted between reading it and writing its status."""


class RouteMissing(Exception):
    """The HTTPRoute an InferenceDeployment names does not exist (or the Gateway API is not installed)."""


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


class Hub(Protocol):
    """What the service needs from the hub cluster."""

    def read_secret(self, namespace: str, name: str, key: str) -> str: ...

    def patch_status(self, ref: ObjectRef, status: dict[str, Any]) -> None: ...

    def emit_event(self, ref: ObjectRef, reason: str, message: str, warning: bool = False) -> None: ...

    def hold_lease(self, name: str, namespace: str, identity: str, duration_seconds: float, now: datetime) -> bool: ...

    def set_route_weights(self, namespace: str, name: str, weights: dict[str, int], clusters: set[str]) -> bool:
        """Set backendRef weights of an HTTPRoute; True when it had to be written."""
        ...


class KubeHub:
    """The real hub, through the kubernetes client configured in-cluster or from a kubeconfig."""

    def __init__(self, api_client: Any, timeout_seconds: float = 10.0) -> None:
        from kubernetes import client

        self._core = client.CoreV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)
        self._coordination = client.CoordinationV1Api(api_client)
        self._timeout = timeout_seconds

    def read_secret(self, namespace: str, name: str, key: str) -> str:
        from kubernetes.client.exceptions import ApiException

        try:
            secret = self._core.read_namespaced_secret(name, namespace, _request_timeout=self._timeout)
        except ApiException as error:
            if error.status == 404:
                raise SecretMissing(f"Secret {namespace}/{name} not found") from None
            if error.status == 403:
                raise HubForbidden(
                    f"forbidden: cannot get Secret {namespace}/{name} ({error.reason}); "
                    "the operator's Role needs get on secrets in its namespace"
                ) from None
            raise
        data = secret.data or {}
        if key not in data:
            raise SecretMissing(f"Secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(data[key]).decode()

    def patch_status(self, ref: ObjectRef, status: dict[str, Any]) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self._patch_status(ref, status)
        except ApiException as error:
            if error.status == 404:
                raise ObjectGone(f"{ref.kind} {ref.namespace}/{ref.name} was deleted") from None
            raise

    def _patch_status(self, ref: ObjectRef, status: dict[str, Any]) -> None:
        plural = PLURALS[ref.kind]
        body = {"status": status}
        if ref.namespace:
            self._custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, ref.namespace, plural, ref.name, body, _request_timeout=self._timeout
            )
        else:
            self._custom.patch_cluster_custom_object_status(
                GROUP, VERSION, plural, ref.name, body, _request_timeout=self._timeout
            )

    def emit_event(self, ref: ObjectRef, reason: str, message: str, warning: bool = False) -> None:
        from kubernetes import client

        now = datetime.now(UTC)
        namespace = ref.namespace or "default"
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{ref.name}.", namespace=namespace),
            involved_object=client.V1ObjectReference(
                api_version=f"{GROUP}/{VERSION}",
                kind=ref.kind,
                name=ref.name,
                namespace=ref.namespace or None,
                uid=ref.uid or None,
            ),
            reason=reason,
            message=message[:1024],
            type="Warning" if warning else "Normal",
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=client.V1EventSource(component="gridshift"),
        )
        self._core.create_namespaced_event(namespace, event, _request_timeout=self._timeout)

    def set_route_weights(self, namespace: str, name: str, weights: dict[str, int], clusters: set[str]) -> bool:
        from kubernetes.client.exceptions import ApiException

        group, version, plural = "gateway.networking.k8s.io", "v1", "httproutes"
        try:
            route = self._custom.get_namespaced_custom_object(
                group, version, namespace, plural, name, _request_timeout=self._timeout
            )
        except ApiException as error:
            if error.status == 404:
                raise RouteMissing(f"HTTPRoute {namespace}/{name} not found (is the Gateway API installed?)") from None
            raise
        body: dict[str, Any] = route if isinstance(route, dict) else {}
        rules: list[dict[str, Any]] = (body.get("spec") or {}).get("rules") or []
        wanted = weighted_rules(rules, weights, clusters)
        if wanted == rules:
            return False
        self._custom.patch_namespaced_custom_object(
            group, version, namespace, plural, name, {"spec": {"rules": wanted}}, _request_timeout=self._timeout
        )
        return True

    def hold_lease(self, name: str, namespace: str, identity: str, duration_seconds: float, now: datetime) -> bool:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        spec = client.V1LeaseSpec(
            holder_identity=identity,
            lease_duration_seconds=int(duration_seconds),
            renew_time=now,
        )
        try:
            lease = self._coordination.read_namespaced_lease(name, namespace, _request_timeout=self._timeout)
        except ApiException as error:
            if error.status != 404:
                raise
            spec.acquire_time = now
            body = client.V1Lease(metadata=client.V1ObjectMeta(name=name, namespace=namespace), spec=spec)
            try:
                self._coordination.create_namespaced_lease(namespace, body, _request_timeout=self._timeout)
            except ApiException as create_error:
                if create_error.status == 409:  # another replica created it first
                    return False
                raise
            return True
        current = lease.spec or client.V1LeaseSpec()
        held_by = current.holder_identity
        renewed = current.renew_time
        expired = renewed is None or renewed + timedelta(seconds=current.lease_duration_seconds or 0) < now
        if held_by not in (None, identity) and not expired:
            return False
        spec.acquire_time = current.acquire_time if held_by == identity else now
        lease.spec = spec
        try:
            # resourceVersion in the body makes this a compare-and-swap: two replicas cannot both win.
            self._coordination.replace_namespaced_lease(name, namespace, lease, _request_timeout=self._timeout)
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True
