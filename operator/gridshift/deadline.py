"""Total deadlines of Kubernetes client calls: a call to a member apiserver (or a hub write) ends within its time,
whatever the server does.

The Kubernetes client's `_request_timeout` becomes urllib3's timeout, which limits each socket operation
(`Timeout(total=...)` too: it only shortens each read's limit by the time the connect took), so an
apiserver, or a proxy in front of it, that accepts and sends one byte a second never trips it. Found in
review: one such member held the planning cycle of every cluster and tenant for as long as it dripped
(discovery had no timeout at all). `CallDeadline(seconds)` shuts the sockets that the calls inside its
block use once `seconds` have passed, which wakes a blocked connect, TLS handshake or read at once; the
caller then reports the cluster unreachable (`members.KubeMemberCluster._call`). The price feeds do the
same through httpx's trace hook (`signals.http`); here the sockets are learnt by the connection classes
`watch_connections` installs on a client's urllib3 pool manager, as a connection is made or reused
inside the block (the block is per thread: a context variable says which deadline a socket is under).

Writes get a shorter deadline near the end of the leader Lease (`WriteWindow`): the member client, and the hub
client for route weights and status (`hub.client.KubeHub._write`), cap each write call at the seconds left
before another replica may act, so a write started just inside the renew deadline cannot land after a standby
took over. The window goes to the client object itself, not to the thread (a context variable would not follow
the write pool's and the migrate stage's worker threads).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any, Protocol

from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

MIN_WRITE_SECONDS = 0.5
"""A write with less time than this left in its window is not sent (`WriteWindow.refused`): a member apply
takes a round trip and the apiserver's admission; one cut before it could answer only leaves its outcome
unknown."""


class WriteWindow(Protocol):
    """How long a write sent now may take before another replica may act (the service's: the leader Lease's)."""

    def seconds_left(self) -> float:
        """Seconds a write sent now may take; 0 or less when none may be sent."""
        ...

    def refused(self, why: str) -> Exception:
        """The error that says a write was not sent, or was cut, for want of time (the service's: Fenced)."""
        ...


def write_seconds(window: WriteWindow, where: str) -> float:
    """The seconds a write sent now may take under `window`; `window.refused(...)` with under MIN_WRITE_SECONDS
    left, the write not sent. `where` names it ("cluster eu-de: apply Deployment ns/name"). The one check of the
    member adapter and of its fake (gridshift.testing.FakeMemberCluster)."""
    left = window.seconds_left()
    if left < MIN_WRITE_SECONDS:
        raise window.refused(f"{where}: not sent, {max(left, 0):.1f} s left of the write window")
    return left


def window_cut(window: WriteWindow, where: str, sent: float) -> Exception:
    """`window.refused(...)` for a write sent at `sent` (time.monotonic) that the window's end cut: whether it was
    applied is not known. `where` as for `write_seconds`. The one message of the member and hub adapters."""
    return window.refused(
        f"{where}: cut after {time.monotonic() - sent:.1f} s at the end of the write window; whether it was "
        "applied is not known"
    )


_REARM_SECONDS = 0.05
"""Time left below which a deadline that comes due ends the call rather than waiting on (timer granularity)."""

_CURRENT: ContextVar[CallDeadline | None] = ContextVar("gridshift_member_call_deadline", default=None)


class CallDeadline:
    """Every member call in this block (this thread) ends by `seconds` from its start: see the module docstring.

    With `window` (a write's: the seconds a write may still take, WriteWindow.seconds_left) the block ends by
    the sooner of `seconds` and the window, judged again when the window's end comes: a window that grew
    meanwhile (the leader Lease renewed while the write was in flight) lets the call go on, up to `seconds`.
    Found in regression review: a write cut at the window fixed at its send was Fenced while the replica led
    and no other could act. `cut_by_window` says whether the window, not `seconds`, ended it."""

    def __init__(self, seconds: float, window: Callable[[], float] | None = None) -> None:
        self.seconds = seconds
        self.fired = False
        self.cut_by_window = False
        self._window = window
        self._started = time.monotonic()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        self._timer = self._arm(seconds if window is None else min(seconds, window()))
        self._token: Token[CallDeadline | None] | None = None

    def _arm(self, after: float) -> threading.Timer:
        timer = threading.Timer(max(after, 0.0), self._fire)
        timer.daemon = True
        return timer

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            late = self.fired
        if late:  # a retry's new connection after the deadline: it ends at once too
            _shut(sock)

    def _fire(self) -> None:
        left = self.seconds - (time.monotonic() - self._started)
        more = left if self._window is None else min(left, self._window())
        with self._lock:
            if self._closed:
                return
            if more > _REARM_SECONDS:  # the window grew (a renewal): the call goes on
                self._timer = self._arm(more)
                self._timer.start()
                return
            self.fired = True
            self.cut_by_window = self._window is not None and left > _REARM_SECONDS
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    def __enter__(self) -> CallDeadline:
        self._token = _CURRENT.set(self)
        self._timer.start()
        return self

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self._closed = True
            timer = self._timer
        timer.cancel()
        if self._token is not None:
            _CURRENT.reset(self._token)


def _shut(sock: socket.socket) -> None:
    # socket.socket's own shutdown, also for an SSLSocket: its override drops the TLS state that a read in
    # another thread is using; the file descriptor is the same.
    with contextlib.suppress(OSError):  # already closed: the call ended on its own
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _under_deadline(sock: socket.socket | None) -> None:
    current = _CURRENT.get()
    if current is not None and sock is not None:
        current.watch(sock)


class _WatchedHTTPConnection(HTTPConnection):
    """A connection whose socket is put under the current CallDeadline when made, and each time it is reused."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _under_deadline(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _under_deadline(self.sock)  # a kept-alive connection: made under an earlier call's deadline
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(_WatchedHTTPConnection, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def watch_connections(pool_manager: PoolManager) -> bool:
    """Make `pool_manager`'s connections obey CallDeadline; False where it is not urllib3's plain pools (a
    SOCKS proxy's): there only urllib3's per-operation timeouts apply."""
    plain = {"http": HTTPConnectionPool, "https": HTTPSConnectionPool}
    if dict(pool_manager.pool_classes_by_scheme) != plain:
        return False
    pool_manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
    return True
