"""Watch-fed caches of member objects: list once, then follow the apiserver's watch.

A cycle reads member state from these caches instead of listing gridshift's Deployments, the Nodes
and the Pods of every member cluster every cycle (at 10,000 deployments x 12 regions: 36 lists of
some 20,000 objects, and their parsing, a cycle, on the operator and on the apiservers).

The list that seeds a cache is the caller's own (`KubeMemberCluster._list`), so a cluster that
cannot be listed is reported exactly as before; the watch then runs in a thread of its own from that
list's resourceVersion. Whatever goes wrong with the watch (the connection drops, 410 Gone, a read
timeout) marks the cache unsynced and ends its thread: the next read lists again and starts a new
watch. A watch refused with 403 (credentials with `list` but not `watch`) is not tried again: that
cache lists on every read, as without caches. Records are compact (`extract` keeps what the service
reads, never the object: no pod spec, no env value is held), keyed by namespace/name.

Read your writes: after gridshift writes an object of a watched kind (apply, delete), `expect`
records the resourceVersion the write returned (or the deletion); a read waits, up to
`settle_seconds`, for the watch to deliver it, and answers None (the caller lists) when it does not.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

R = TypeVar("R")

log = logging.getLogger("gridshift.members")

WATCH_SECONDS = 240
"""timeoutSeconds of one watch request: the apiserver ends it then, and the cache watches again from
its last resourceVersion (one GET per cache every few minutes)."""
SETTLE_SECONDS = 5.0
"""How long a read waits for the watch to deliver gridshift's own last write before listing instead."""

OpenWatch = Callable[[str, int], Any]
"""(resourceVersion, timeoutSeconds) -> a streaming HTTP response of watch events (one JSON per line)."""


def object_key(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def _version(rv: str) -> int | None:
    try:
        return int(rv)
    except (TypeError, ValueError):
        return None


def _reached(have: str, wanted: str) -> bool:
    """Whether an object at resourceVersion `have` includes the write that returned `wanted`.

    Resource versions are opaque to clients, but the apiserver's are etcd revisions (integers); when
    either is not one, only equality counts (a missed match falls back to listing, never to a stale read)."""
    a, b = _version(have), _version(wanted)
    if a is None or b is None:
        return have == wanted
    return a >= b


class WatchCache(Generic[R]):
    """The records of one kind of object (in one namespace, or cluster-wide) kept by a watch."""

    def __init__(
        self,
        what: str,
        open_watch: OpenWatch,
        extract: Callable[[Mapping[str, Any]], R | None],
        *,
        settle_seconds: float = SETTLE_SECONDS,
        watch_seconds: int = WATCH_SECONDS,
    ) -> None:
        self.what = what
        self._open = open_watch
        self._extract = extract
        self._settle = settle_seconds
        self._watch_seconds = watch_seconds
        self._cond = threading.Condition()
        self._items: dict[str, tuple[str, R]] = {}
        self._synced = False
        self._generation = 0
        self._pending: dict[str, str | None] = {}
        """key -> the resourceVersion a write of ours returned, or None: its deletion, not seen yet."""
        self._closed = False
        self.watch_refused = False
        """The apiserver refused the watch (403): this cache never syncs, every read lists."""
        self._response: Any = None

    # ------------------------------------------------------------------ the caller's side

    def read(self) -> list[R] | None:
        """The records, or None when they cannot be trusted: not synced, or a write of ours not seen
        within settle_seconds. The caller then lists (and seeds)."""
        deadline = time.monotonic() + self._settle
        with self._cond:
            while self._synced and self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            if not self._synced:
                return None
            return [record for _, record in self._items.values()]

    def seed(self, objects: Iterable[Mapping[str, Any]], resource_version: str | Callable[[], str]) -> list[R]:
        """The records of a fresh list (answered to the caller at once), then watched from its resourceVersion
        (or what `resource_version()` says once `objects` is consumed: a list read page by page, each page
        let go once its records are kept)."""
        items: dict[str, tuple[str, R]] = {}
        for obj in objects:
            record = self._extract(obj)
            if record is not None:
                items[object_key(obj)] = (str((obj.get("metadata") or {}).get("resourceVersion") or ""), record)
        if callable(resource_version):
            resource_version = resource_version()
        with self._cond:
            self._generation += 1
            self._items = items
            self._pending.clear()
            self._close_response()
            start = not self._closed and not self.watch_refused and bool(resource_version)
            self._synced = start
            generation = self._generation
            self._cond.notify_all()
        if start:
            threading.Thread(
                target=self._run, args=(generation, resource_version), name=f"gridshift-watch {self.what}", daemon=True
            ).start()
        return [record for _, record in items.values()]

    def expect(self, key: str, resource_version: str | None) -> None:
        """A write of ours: `resource_version` is what the apiserver answered (None: the object was deleted)."""
        with self._cond:
            if not self._synced:
                return
            have = self._items.get(key)
            if resource_version is None:
                if have is not None:
                    self._pending[key] = None
            elif have is None or not _reached(have[0], resource_version):
                self._pending[key] = resource_version

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._synced = False
            self._generation += 1
            self._close_response()
            self._cond.notify_all()

    @property
    def synced(self) -> bool:
        with self._cond:
            return self._synced

    # ------------------------------------------------------------------ the watch thread

    def _close_response(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            try:
                response.close()
            except Exception:  # closing a dead connection: nothing more to do
                log.debug("closing the watch of %s failed", self.what)

    def _run(self, generation: int, resource_version: str) -> None:
        rv = resource_version
        try:
            while True:
                response = self._open(rv, self._watch_seconds)
                with self._cond:
                    if generation != self._generation:
                        response.close()
                        return
                    self._response = response
                for line in _lines(response):
                    event = json.loads(line)
                    with self._cond:
                        if generation != self._generation:
                            return
                        next_rv = self._apply(event)
                        self._cond.notify_all()
                    if next_rv is None:
                        log.info("watch of %s expired (%s): listing again", self.what, _error_of(event))
                        self._unsync(generation)
                        return
                    rv = next_rv or rv
                # The apiserver ended the watch (timeoutSeconds): watch again from the last version seen.
        except Exception as error:
            with self._cond:
                if getattr(error, "status", None) == 403:
                    self.watch_refused = True
                current = generation == self._generation and not self._closed
                if generation == self._generation:
                    self._synced = False
                    self._response = None
                    self._cond.notify_all()
            if current:
                log.info("watch of %s stopped (%s): listing again", self.what, type(error).__name__)

    def _apply(self, event: Mapping[str, Any]) -> str | None:
        """One event into the records; the resourceVersion to watch on from ('' unchanged), None: relist."""
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR" or not isinstance(obj, Mapping):
            return None
        rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        if kind == "BOOKMARK":
            return rv
        key = object_key(obj)
        wanted = self._pending.get(key, "")
        if kind == "DELETED":
            self._items.pop(key, None)
            if key in self._pending:
                del self._pending[key]
            return rv
        record = self._extract(obj)
        if record is None:
            self._items.pop(key, None)
        else:
            self._items[key] = (rv, record)
        if wanted is not None and wanted != "" and _reached(rv, wanted):
            del self._pending[key]
        return rv

    def _unsync(self, generation: int) -> None:
        with self._cond:
            if generation == self._generation:
                self._synced = False
                self._response = None
                self._cond.notify_all()


def _error_of(event: Mapping[str, Any]) -> str:
    obj = event.get("object") or {}
    code = obj.get("code") if isinstance(obj, Mapping) else None
    return f"{event.get('type')} {code}" if code is not None else str(event.get("type"))


def _lines(response: Any) -> Iterator[str]:
    """The non-empty lines of a streaming response."""
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=False):
        buffer += chunk
        lines = buffer.split(b"\n")
        buffer = lines.pop()
        for line in lines:
            if line.strip():
                yield line.decode("utf-8", errors="replace")
    if buffer.strip():
        yield buffer.decode("utf-8", errors="replace")
