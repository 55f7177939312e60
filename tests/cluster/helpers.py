"""Small kubectl helpers for the cluster tests."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def kubectl_json(world: Any, cluster: str, *args: str) -> Any:
    return json.loads(world.kubectl(cluster, *args, "-o", "json").stdout)


def wait_for(cond: Callable[[], T | None], timeout: float, what: str, interval: float = 0.25) -> T:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = cond()
            if value:
                return value
            last = value
        except Exception as e:
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def fresh_namespace(world: Any, cluster: str, prefix: str = "t") -> str:
    ns = f"{prefix}-{uuid.uuid4().hex[:8]}"
    world.kubectl(cluster, "create", "namespace", ns)
    return ns


def pod_condition(pod: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    for c in pod.get("status", {}).get("conditions", []) or []:
        if c.get("type") == ctype:
            return dict(c)
    return None


def is_ready(pod: dict[str, Any]) -> bool:
    c = pod_condition(pod, "Ready")
    return bool(c and c.get("status") == "True") and pod.get("status", {}).get("phase") == "Running"
