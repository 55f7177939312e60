"""How an unexpected error is described in logs, Events and status: what failed, never what it was given.

Exceptions of the Kubernetes and HTTP clients can carry request bodies, headers or URLs, and a YAML
parser quotes the line it failed on: any of these may hold a credential. Messages of our own error
types are written to be safe; anything else is described by its type and HTTP status alone.
"""

from __future__ import annotations

from http import HTTPStatus

from gridshift.actuation.members import MemberError
from gridshift.hub.client import HubWriteTimeout, RouteConflict, RouteMissing, SecretMissing
from gridshift.service.writes import Fenced
from gridshift.signals.metrics import ImplausibleDemand, MetricsError
from gridshift.signals.prices import PriceFeedError

# Fenced: its message names the cluster and the write (found in regression review: "internal error (Fenced)").
_SAFE = (
    MemberError,
    SecretMissing,
    RouteMissing,
    RouteConflict,
    HubWriteTimeout,
    MetricsError,
    ImplausibleDemand,
    PriceFeedError,
    Fenced,
)
"""gridshift's own errors, whose messages name objects and fields, never secrets."""


def describe(error: BaseException) -> str:
    if isinstance(error, _SAFE):
        return str(error)
    status = getattr(error, "status", None)
    if isinstance(status, int) and not isinstance(status, bool):
        # The status's standard phrase, not the exception's `reason`: the Kubernetes client puts a
        # transport error's whole text there (ApiException(status=0, reason="SSLError\n..."): host,
        # request path, anything urllib3 quoted).
        return f"{type(error).__name__}: HTTP {status} {_PHRASES.get(status, '')}".rstrip()
    return f"internal error ({type(error).__name__})"


_PHRASES = {s.value: s.phrase for s in HTTPStatus}
