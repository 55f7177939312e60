"""Counting what the kubernetes client sends: `RequestCounter`, attached to one or more ApiClients.

Apiserver load is a figure the operator is judged on at fleet scale (requests and writes per cycle,
writes in flight at once). The kubernetes client has no counter of its own, so this wraps the one
method every request of an ApiClient passes through (`rest_client.request`), recording method,
resource kind (the path's plural, `status` subresources included) and how many were in flight.
Paths are kept as kinds, never with names or query strings: nothing of a request body is recorded.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_KIND = re.compile(r"/(?:api/v1|apis/[^/]+/[^/]+)(?:/namespaces/[^/]+)?/([^/?]+)(?:/[^/?]+)?(/status)?")


def request_kind(url: str) -> str:
    """`leases`, `inferencedeployments/status`, `deployments`... from a request URL ('' when unknown)."""
    path = url.split("?", 1)[0]
    match = _KIND.search(path)
    if match is None:
        return ""
    return match.group(1) + (match.group(2) or "")


@dataclass
class RequestCounter:
    """Requests by (method, kind), and the most writes in flight at once, over every attached client."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    peak_writes_in_flight: int = 0
    _writes_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, api_client: Any) -> None:
        """Count every request `api_client` sends from now on."""
        rest = api_client.rest_client
        original: Callable[..., Any] = rest.request

        def counted(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            verb = method.upper()
            write = verb in WRITE_METHODS
            with self._lock:
                self.counts[(verb, request_kind(url))] += 1
                if write:
                    self._writes_in_flight += 1
                    self.peak_writes_in_flight = max(self.peak_writes_in_flight, self._writes_in_flight)
            try:
                return original(method, url, *args, **kwargs)
            finally:
                if write:
                    with self._lock:
                        self._writes_in_flight -= 1

        rest.request = counted

    def total(self, *, writes_only: bool = False, exclude: frozenset[str] = frozenset()) -> int:
        """Requests counted (writes only, when asked), leaving out the kinds in `exclude` (e.g. leases)."""
        with self._lock:
            return sum(
                n
                for (method, kind), n in self.counts.items()
                if (not writes_only or method in WRITE_METHODS) and kind not in exclude
            )

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
            self.peak_writes_in_flight = 0
