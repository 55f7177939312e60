"""Hub writes of one cycle with bounded concurrency: `WritePool`.

A first cycle over 1,000 deployments writes 1,000 status patches (and as many decision Events);
one after another at ~30 ms each that was 30-50 s of a cycle. The pool keeps at most
`OperatorSettings.write_concurrency` of them in flight and the cycle goes on composing the next
ones meanwhile. What each write did is folded into the cycle's report by its `done` callback, run
in the cycle's own thread when the pool is drained (so the report is never touched by two threads),
in the order the writes were submitted.

Fencing holds for queued writes too: each checks `fence()` just before it goes out, so a replica
that lost the Lease while writes were queued sends none of the rest (they end as `Fenced`). A write
that sends again on 409 Conflict checks it before each send (`check`, handed to `Hub.patch_status`):
found in review, a deposed leader's retry landed over the status the new leader had written.
A deployment's decision Events follow its status patch once the patch went out, without a fence of their
own: they change nothing and tell what that status now says (its lastDecision), and the next leader,
finding that decision stored, sends none; fenced, they were lost (found in review of a fence tried there).
Idle cycles submit nothing: the report stage submits only non-empty patches (service.status).

Member writes, and the hub's route-weight and status writes, are also bounded in time by the Lease
(`LeaseWindow`, given to each member client by `members_within` and to the hub client by the service):
`leading()` says whether a write may start, the window how long it may run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from gridshift.actuation.members import MemberCluster

T = TypeVar("T")


class Fenced(Exception):
    """The write was not sent, or was cut at the end of its Lease window (`LeaseWindow`): this replica was no
    longer sure to hold the Lease."""


class LeaseWindow:
    """The leader Lease as a member or hub client's write window (gridshift.deadline.WriteWindow): each write ends
    before another replica may act (`LeaderElector.write_seconds_left`); one that cannot is Fenced. Asked by
    the client in whatever thread sends the write (the cycle's, the migrate stage's, a finalizer's)."""

    def __init__(self, seconds_left: Callable[[], float]) -> None:
        self.seconds_left = seconds_left

    def refused(self, why: str) -> Exception:
        return Fenced(f"{why} (leader Lease: no write may land once another replica may take the Lease over)")


def members_within(
    factory: Callable[[str, str], MemberCluster], seconds_left: Callable[[], float]
) -> Callable[[str, str], MemberCluster]:
    """`factory`, its member clients' writes limited to the Lease's window (`LeaseWindow`)."""

    def member(name: str, kubeconfig: str) -> MemberCluster:
        made = factory(name, kubeconfig)
        made.limit_writes(LeaseWindow(seconds_left))
        return made

    return member


class WritePool:
    """At most `concurrency` hub writes in flight; results folded in by `drain()`; see the module docstring."""

    def __init__(self, concurrency: int, fence: Callable[[], bool]) -> None:
        if concurrency < 1:
            raise ValueError(f"write_concurrency must be at least 1, got {concurrency}")
        self.concurrency = concurrency
        self._fence = fence
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="gridshift-write")
        self._pending: list[tuple[Future[Any], Callable[[Any], None]]] = []
        self._lock = threading.Lock()
        self._in_flight = 0
        self.peak_in_flight = 0
        """Most writes seen in flight at once since construction (for tests and the bench)."""

    def submit(self, write: Callable[[], T], done: Callable[[T | BaseException], None]) -> None:
        """Queue `write`; `done` gets its result, or the exception it raised (Fenced when not sent)."""
        self._pending.append((self._executor.submit(self._guarded, write), done))

    def check(self) -> None:
        """Fenced unless this replica still holds the Lease: called before each send of a write."""
        if not self._fence():
            raise Fenced("leader Lease not renewed within the renew deadline: write not sent")

    def _guarded(self, write: Callable[[], T]) -> T:
        self.check()
        with self._lock:
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        try:
            return write()
        finally:
            with self._lock:
                self._in_flight -= 1

    def drain(self) -> None:
        """Wait for every queued write and run each `done` in this thread, in submission order."""
        pending, self._pending = self._pending, []
        for future, done in pending:
            try:
                result: Any = future.result()
            except Exception as error:  # handed to `done`, which knows what a failure means for its write
                result = error
            done(result)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
