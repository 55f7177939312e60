"""Builds the OperatorService with real adapters: the hub's kubernetes client, kubeconfig-based
member clusters, Prometheus and HTTP price feeds. Kept apart so tests build it with fakes instead."""

from __future__ import annotations

import base64
import json
import os
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import yaml

from gridshift import redaction
from gridshift.actuation.members import KubeconfigInvalid, KubeMemberCluster, MemberCluster
from gridshift.api import RegionalCluster
from gridshift.api.common import SecretKeyRef
from gridshift.hub.client import Hub, KubeHub, SecretMissing, SecretPurpose
from gridshift.service.errors import describe
from gridshift.service.observe import Sources
from gridshift.service.operator import OperatorService
from gridshift.settings import OperatorSettings
from gridshift.signals.carbon_service import ManagedCarbonFeed, build_carbon_feed
from gridshift.signals.http import feed_http_client
from gridshift.signals.labels import LabelScheme
from gridshift.signals.metrics import MetricsSource, PrometheusMetricsSource
from gridshift.signals.price_service import ManagedPriceFeed, build_price_feed
from gridshift.signals.promql import QueryWindows
from gridshift.signals.settings import MetricsSettings


class HubSecretResolver:
    """Resolves price-feed Secret references on the hub (namespace defaults to the operator's).

    The hub refuses a Secret not marked for `purpose`; each value handed out is remembered for
    redaction from logs (gridshift.redaction).
    """

    def __init__(self, hub: Hub, default_namespace: str) -> None:
        self._hub = hub
        self._namespace = default_namespace

    def resolve(self, ref: SecretKeyRef, purpose: str) -> str:
        namespace = ref.namespace or self._namespace
        try:
            value = self._hub.read_secret(namespace, ref.name, ref.key, SecretPurpose(purpose))
        except SecretMissing:
            raise
        except Exception as error:
            # Feeds quote this error in status: the client's own text carries the reply's headers and
            # body (an etcd path, say); say what failed, by type and HTTP status (service.errors).
            raise SecretMissing(f"Secret {namespace}/{ref.name}: {describe(error)}") from None
        redaction.remember(value)
        return value


_CREDENTIAL_KEYS = ("token", "password", "client-key-data")
"""Kubeconfig user fields that are secrets: remembered for log redaction (gridshift.redaction)."""

_INLINE_USER_KEYS = frozenset({"token", "username", "password", "client-certificate-data", "client-key-data"})
"""The only user fields a member kubeconfig may carry: credentials written out in the Secret itself.
The Kubernetes client would also run `exec` commands and `auth-provider` plugins and read `tokenFile`,
`client-key` and `client-certificate` paths, all inside the operator's pod: whoever may write a
member-kubeconfig Secret could run a command there, or send the operator's own ServiceAccount token
(tokenFile: /var/run/secrets/...) to a server of their choosing."""
_CLIENT_USER_KEYS = _INLINE_USER_KEYS | {
    "exec",
    "auth-provider",
    "tokenFile",
    "client-certificate",
    "client-key",
    "as",
    "as-groups",
    "as-uid",
    "as-user-extra",
    "extensions",
}
"""User fields of the kubeconfig format: the ones an error message may name."""
_FILE_CLUSTER_KEYS = ("certificate-authority",)
"""Cluster fields that name a file of the operator's pod; their `-data` twins are accepted."""


def _fields(config: Mapping[str, Any], section: str, field: str) -> Iterator[tuple[int, dict[Any, Any]]]:
    """(position, fields) of each entry of a kubeconfig section (`users`, `clusters`) whose `field`
    (`user`, `cluster`) is a mapping; anything else has none here (the client refuses it)."""
    entries = config.get(section)
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        fields = entry.get(field) if isinstance(entry, dict) else None
        if isinstance(fields, dict):
            yield i, fields


def _refuse_pod_resources(cluster: str, config: Mapping[str, Any]) -> None:
    """KubeconfigInvalid naming the first field that would run a command or read a file in the pod."""
    for i, fields in _fields(config, "users", "user"):
        for key in sorted(fields, key=str):
            if key not in _INLINE_USER_KEYS:
                # Only the client's own field names are quoted: an unknown key may be a pasted credential.
                field = f"users[{i}].user.{key}" if key in _CLIENT_USER_KEYS else f"a field of users[{i}].user"
                raise KubeconfigInvalid(
                    cluster,
                    f"{field} is not accepted: a member kubeconfig carries its credentials inline "
                    f"({', '.join(sorted(_INLINE_USER_KEYS))}); no command or file of the operator's pod is used",
                )
    for i, fields in _fields(config, "clusters", "cluster"):
        for key in _FILE_CLUSTER_KEYS:
            if key in fields:
                raise KubeconfigInvalid(
                    cluster, f"clusters[{i}].cluster.{key} names a file of the operator's pod: use {key}-data"
                )


def parse_kubeconfig(cluster: str, text: str) -> dict[str, Any]:
    """The kubeconfig as a mapping; KubeconfigInvalid naming only the line and column of a YAML error.

    PyYAML's messages quote the offending line, which in a kubeconfig is likely a token or a key.
    """
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise KubeconfigInvalid(cluster, f"not valid YAML{where}") from None
    if not isinstance(loaded, dict):
        raise KubeconfigInvalid(cluster, "not a YAML mapping")
    for _, credentials in _fields(loaded, "users", "user"):
        for key in _CREDENTIAL_KEYS:
            value = credentials.get(key)
            if isinstance(value, str):
                redaction.remember(value)
        username, password = credentials.get("username"), credentials.get("password")
        if isinstance(username, str) and isinstance(password, str):
            # The client sends "Basic base64(username:password)" (urllib3 encodes it as latin-1), which holds
            # no form of the password alone. Found in review: a member echoing that header had it quoted in
            # status and in the log.
            for encoding in ("latin-1", "utf-8"):
                try:
                    basic = base64.b64encode(f"{username}:{password}".encode(encoding)).decode()
                except UnicodeEncodeError:
                    continue
                redaction.remember_header(f"Basic {basic}")
    _refuse_pod_resources(cluster, loaded)
    return loaded


def world_clock(url: str) -> Callable[[], datetime]:
    """A clock read from a simulated world's /clock endpoint (demo and end-to-end tests only)."""

    def now() -> datetime:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return datetime.fromisoformat(json.loads(answer.read())["sim_time"])

    return now


def hub_api_client(connections: int = 10) -> Any:
    """The hub's ApiClient, keeping up to `connections` sockets open (the client's default is 5 per CPU:
    10 on 2 cores, fewer than the write pool's threads, and urllib3 then opens and drops a TLS
    connection per write beyond them)."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except ConfigException:
        # KUBECONFIG read now: the client's own default was fixed when the module was first imported.
        configuration = client.Configuration()
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration)
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize, connections)
    return client.ApiClient(configuration)


def real_service(settings: OperatorSettings, identity: str | None = None) -> OperatorService:
    from gridshift.profiles_catalog import default_performance_models

    # The write pool's threads, the Lease renewal and the cycle's own reads each hold a connection.
    hub = KubeHub(hub_api_client(settings.write_concurrency + 4), settings.api_timeout_seconds)
    clock = world_clock(settings.clock_url) if settings.clock_url else (lambda: datetime.now(UTC))
    http = feed_http_client(settings.api_timeout_seconds)  # keeps no cookies: shared by every cluster's feeds
    secrets = HubSecretResolver(hub, settings.namespace)

    def member(name: str, kubeconfig: str) -> MemberCluster:
        return KubeMemberCluster(name, parse_kubeconfig(name, kubeconfig), settings.api_timeout_seconds)

    metrics_settings = MetricsSettings(
        labels=LabelScheme(cluster_label=settings.metrics_cluster_label),
        windows=QueryWindows(rate_seconds=settings.metrics_window_seconds),
        # Past it the cycle uses no answer of the call's: its queries not yet sent are not sent.
        deadline_seconds=settings.metrics_deadline_seconds,
    )

    def metrics(url: str) -> MetricsSource:
        return PrometheusMetricsSource(url, settings=metrics_settings)

    def feed(name: str, cluster: RegionalCluster) -> ManagedPriceFeed:
        # Refreshed in the background: the cycle's read() never waits on the network (nor on the hub
        # for the token); the first refresh starts here. Close a feed that is replaced or dropped.
        return build_price_feed(
            cluster.spec.price_feed, name=name, secrets=secrets, http=http, clock=clock, background=True
        )

    def carbon_feed(name: str, cluster: RegionalCluster) -> ManagedCarbonFeed:
        spec = cluster.spec.carbon_feed
        assert spec is not None  # the observer asks only for clusters that set one
        return build_carbon_feed(spec, name=name, secrets=secrets, http=http, clock=clock, background=True)

    sources = Sources(member, metrics, feed, default_performance_models(), carbon_feed_factory=carbon_feed)
    return OperatorService(settings, hub, sources, clock=clock, identity=identity)
