"""Watch-fed caches (actuation.watch): seeded by a list, kept by the watch, listed again when it breaks."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from gridshift.actuation.watch import WatchCache

END = b""


class FakeWatch:
    """A streaming response of watch events, fed by the test; closing it ends the stream."""

    def __init__(self) -> None:
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.closed = False

    def send(self, kind: str, name: str, rv: str, **fields: Any) -> None:
        obj: dict[str, Any] = {"metadata": {"namespace": "w", "name": name, "resourceVersion": rv}, **fields}
        self.lines.put(json.dumps({"type": kind, "object": obj}).encode() + b"\n")

    def end(self) -> None:
        self.lines.put(END)

    def stream(self, amt: Any = None, decode_content: bool = False) -> Iterator[bytes]:
        while True:
            line = self.lines.get()
            if line == END:
                return
            yield line

    def close(self) -> None:
        self.closed = True
        self.lines.put(END)


class Server:
    """Hands out one FakeWatch per watch request, recording the resourceVersion asked from."""

    def __init__(self, refuse: int | None = None) -> None:
        self.watches: list[FakeWatch] = []
        self.asked: list[str] = []
        self.refuse = refuse
        self.opened = threading.Event()

    def open(self, rv: str, seconds: int) -> FakeWatch:
        self.asked.append(rv)
        if self.refuse is not None:
            error = RuntimeError("refused")
            error.status = self.refuse  # type: ignore[attr-defined]
            raise error
        watch = FakeWatch()
        self.watches.append(watch)
        self.opened.set()
        return watch

    def current(self) -> FakeWatch:
        assert self.opened.wait(5)
        return self.watches[-1]


def replicas(obj: Mapping[str, Any]) -> tuple[str, int] | None:
    if obj.get("skip"):
        return None
    return str(obj["metadata"]["name"]), int(obj.get("replicas", 0))


def body(name: str, rv: str, replicas: int) -> dict[str, Any]:
    return {"metadata": {"namespace": "w", "name": name, "resourceVersion": rv}, "replicas": replicas}


def eventually(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_a_seeded_cache_follows_its_watch_without_listing_again() -> None:
    server = Server()
    cache = WatchCache("test", server.open, replicas, settle_seconds=1.0)
    assert cache.read() is None  # never listed: the caller lists
    assert sorted(cache.seed([body("a", "5", 1), body("b", "6", 2)], "10")) == [("a", 1), ("b", 2)]
    watch = server.current()
    assert server.asked == ["10"]
    watch.send("MODIFIED", "a", "11", replicas=3)
    watch.send("ADDED", "c", "12", replicas=1)
    watch.send("DELETED", "b", "13")
    watch.send("ADDED", "d", "14", skip=True)  # extract says no record: not kept
    eventually(lambda: sorted(cache.read() or []) == [("a", 3), ("c", 1)])
    # The apiserver ends a watch after timeoutSeconds: watched again from the last version seen.
    watch.send("BOOKMARK", "", "20")
    server.opened.clear()
    watch.end()
    eventually(lambda: server.asked == ["10", "20"])
    assert cache.synced
    cache.close()


def test_an_expired_or_broken_watch_makes_the_next_read_list() -> None:
    server = Server()
    cache = WatchCache("test", server.open, replicas, settle_seconds=1.0)
    cache.seed([body("a", "5", 1)], "10")
    server.current().lines.put(json.dumps({"type": "ERROR", "object": {"code": 410}}).encode() + b"\n")
    eventually(lambda: not cache.synced)
    assert cache.read() is None
    server.opened.clear()
    cache.seed([body("a", "30", 4)], "30")  # the caller listed again
    assert cache.read() == [("a", 4)] and server.asked == ["10", "30"]
    watch = server.current()
    server.refuse = 500
    watch.close()  # the stream ends and the apiserver answers no more: listed again on the next read
    eventually(lambda: not cache.synced)
    cache.close()


def test_a_watch_refused_403_is_not_tried_again_and_every_read_lists() -> None:
    server = Server(refuse=403)
    cache = WatchCache("test", server.open, replicas, settle_seconds=1.0)
    cache.seed([body("a", "5", 1)], "10")
    eventually(lambda: cache.watch_refused)
    assert cache.read() is None
    assert cache.seed([body("a", "5", 1)], "10") == [("a", 1)]
    time.sleep(0.1)
    assert server.asked == ["10"] and cache.read() is None


def test_a_read_waits_for_the_watch_to_deliver_our_own_write() -> None:
    server = Server()
    cache = WatchCache("test", server.open, replicas, settle_seconds=2.0)
    cache.seed([body("a", "5", 1), body("b", "6", 1)], "10")
    watch = server.current()
    cache.expect("w/a", "11")  # we applied a: the apiserver answered resourceVersion 11
    cache.expect("w/b", None)  # and deleted b

    def deliver() -> None:
        time.sleep(0.3)
        watch.send("MODIFIED", "a", "11", replicas=2)
        watch.send("DELETED", "b", "12")

    threading.Thread(target=deliver).start()
    started = time.monotonic()
    assert cache.read() == [("a", 2)]
    assert 0.2 < time.monotonic() - started < 2.0
    # A write whose event has already been seen (or a no-op apply, same version) is not waited for.
    cache.expect("w/a", "11")
    cache.expect("w/gone", None)
    assert cache.read() == [("a", 2)]
    # Not delivered within settle_seconds: the read gives up, and the caller lists.
    cache.expect("w/a", "15")
    started = time.monotonic()
    assert cache.read() is None
    assert time.monotonic() - started >= 1.9
    cache.close()


def test_close_ends_the_watch() -> None:
    server = Server()
    cache = WatchCache("test", server.open, replicas)
    cache.seed([], "10")
    watch = server.current()
    cache.close()
    assert watch.closed and not cache.synced and cache.read() is None
