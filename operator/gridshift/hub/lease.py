"""Leader election on one coordination.k8s.io Lease, as client-go's leaderelection package does it.

Rules (the reasons are client-go's):
- Expiry is judged on this process's own monotonic clock, never on the renewTime another replica
  wrote with its clock: a candidate notes *when it observed* the record last change, and takes the
  Lease only once that many seconds of its own time have passed with no change (`duration`).
- The holder renews every `retry_period` from its own task (`LeaderElector.run` in a thread or the
  shell's loop), not once per planning cycle: a long cycle cannot let the Lease lapse.
- Fencing: a holder that has not renewed successfully within `renew_deadline` (< `duration`) stops
  acting: `leading()` turns False before any other replica can consider the Lease expired, so two
  replicas never act at once as long as clocks *run* at the same rate (no agreement on time needed).
- Each request of an attempt is limited to the time left before that deadline, and a holder that missed
  it stops renewing: it takes the Lease again only as any candidate does, once the record it last wrote
  expired by its own clock. Found in review: a holder whose renewals (read + write) took longer than the
  renew deadline fenced itself yet renewed on, so the record changed every few seconds, the standby never
  saw it expire, and nobody led.
- Every write is a compare-and-swap on resourceVersion: of two candidates only one wins.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from gridshift.hub.client import Hub, LeaseRecord

log = logging.getLogger("gridshift.lease")

Monotonic = Callable[[], float]


@dataclass(frozen=True)
class LeaseTiming:
    """client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry period."""

    duration_seconds: float = 15.0
    renew_deadline_seconds: float = 10.0
    retry_period_seconds: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period_seconds < self.renew_deadline_seconds < self.duration_seconds:
            raise ValueError(
                "lease timing must satisfy 0 < retryPeriod < renewDeadline < leaseDuration, got "
                f"{self.retry_period_seconds}, {self.renew_deadline_seconds}, {self.duration_seconds}"
            )


class LeaderElector:
    """Acquires and renews the Lease for `identity`; `leading()` says whether this replica may act now."""

    def __init__(
        self,
        hub: Hub,
        name: str,
        namespace: str,
        identity: str,
        timing: LeaseTiming,
        monotonic: Monotonic = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.hub = hub
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.timing = timing
        self._monotonic = monotonic
        self._wall = wall
        self._lock = threading.Lock()
        self._observed: LeaseRecord | None = None
        self._observed_at: float | None = None
        self._renewed_at: float | None = None
        self._last_attempt: float | None = None
        self._lapsed = False
        """The record naming this replica may not be renewed (it missed its renew deadline, or an answer came
        too late): taken again only once expired, as by any candidate; cleared by a write answered in time."""
        self._stopped = False

    def leading(self) -> bool:
        """True while the last successful renewal is younger than the renew deadline (fencing)."""
        with self._lock:
            renewed = self._renewed_at
        return renewed is not None and self._monotonic() - renewed < self.timing.renew_deadline_seconds

    def ensure(self) -> bool:
        """Try to acquire or renew unless a try happened within the retry period; then `leading()`."""
        now = self._monotonic()
        with self._lock:
            due = self._last_attempt is None or now - self._last_attempt >= self.timing.retry_period_seconds
        if due:
            self.try_acquire_or_renew()
        return self.leading()

    def try_acquire_or_renew(self) -> bool:
        """One round of client-go's tryAcquireOrRenew; True when this replica leads afterwards."""
        now = self._monotonic()
        with self._lock:
            if self._stopped:
                return False
            self._last_attempt = now
            renewed = self._renewed_at
        leading = renewed is not None and now - renewed < self.timing.renew_deadline_seconds
        if renewed is not None and not leading:
            self._lapse("not renewed within the renew deadline")
        # An answer is worth something only before the deadline of the renewal under way, or of the one this
        # attempt would date `now`: each request gets the time left, as client-go's context timeout does.
        deadline = (renewed if leading and renewed is not None else now) + self.timing.renew_deadline_seconds
        try:
            current = self.hub.read_lease(self.name, self.namespace, timeout_seconds=deadline - now)
        except Exception as error:  # the hub is unreachable: not renewed; leading() lapses at the deadline
            log.warning("leader lease %s/%s: read failed: %s", self.namespace, self.name, type(error).__name__)
            return False
        # The change is dated when the answer came, as client-go does: dated when the read was sent, a read held
        # in flight while the holder renewed made its last renewal look that much older, and the Lease was taken
        # while the holder still led (found in review). Its own renewal stays dated `now`: earlier is safe there.
        seen = self._monotonic()
        with self._lock:
            if current is None or self._observed is None or _record_changed(self._observed, current):
                self._observed, self._observed_at = current, seen
            observed_at = self._observed_at if self._observed_at is not None else seen
        record = self._next_record(current, seen - observed_at)
        if record is None or seen >= deadline:
            return False  # held by another (or by us, lapsed), not yet expired; or too late to renew in time
        try:
            won = self.hub.write_lease(self.name, self.namespace, record, timeout_seconds=deadline - seen)
        except Exception as error:
            log.warning("leader lease %s/%s: write failed: %s", self.namespace, self.name, type(error).__name__)
            return False
        answered = self._monotonic()
        if not won:
            return False
        with self._lock:
            # Our own write observed when its answer came, as another replica's would be: dated when sent, a
            # lapsed holder judged its record expired before the standby did and took it back first.
            self._observed, self._observed_at = replace(record, resource_version=None), answered
            if self._stopped:
                return False  # stop_leading() came while this renewal was in flight: act no more
            if answered < deadline:
                self._renewed_at, self._lapsed = now, False
                return True
        self._lapse("the renewal was answered after the renew deadline" if leading else None)
        return False

    def _lapse(self, why: str | None) -> None:
        """This replica may not renew the record naming it (a renewal or acquisition that came too late): it
        takes it again only once expired, as any candidate; `why` is logged once, when it led until now."""
        with self._lock:
            already, self._lapsed = self._lapsed, True
        if why is not None and not already:
            log.warning(
                "leader lease %s/%s: %s (%s s): stopped leading (LeaseLost); taken again only once it expired, "
                "as by any other replica",
                self.namespace,
                self.name,
                why,
                self.timing.renew_deadline_seconds,
            )

    def _next_record(self, current: LeaseRecord | None, unchanged_for: float) -> LeaseRecord | None:
        """The record to write after reading `current`, or None while another holds it unexpired by our clock
        (a record naming this replica too, once it lapsed: it is taken again as any candidate would; a process
        new under the same identity renews it at once, as client-go does: the one before it is gone)."""
        wall = self._wall()
        # Whole seconds on the Lease (leaseDurationSeconds is an integer), rounded up: rounded down, a
        # duration of 10.9 s with a renew deadline of 10.5 s let another replica take over at 10 s
        # while this one still led (found in review).
        duration = math.ceil(self.timing.duration_seconds)
        if current is None:
            return LeaseRecord(self.identity, duration, wall, wall, 0, None)
        if current.holder not in (None, "") and (current.holder != self.identity or self._lapsed):
            if unchanged_for < max(current.duration_seconds, 1):
                return None  # held, and not yet expired by our own clock
            return LeaseRecord(self.identity, duration, wall, wall, current.transitions + 1, current.resource_version)
        acquired = current.acquire_time if current.holder == self.identity else wall
        transitions = current.transitions if current.holder == self.identity else current.transitions + 1
        return LeaseRecord(self.identity, duration, wall, acquired, transitions, current.resource_version)

    def stop_leading(self) -> None:
        """Stop acting at once (`leading()` False from now on, renewals refused): the first step of a
        shutdown, so that writes still queued are fenced before `release` hands the Lease over."""
        with self._lock:
            self._stopped = True
            self._renewed_at = None

    def run(self, stop: threading.Event) -> None:
        """Renew every retry period until `stop` is set (the renewing task; a thread of its own)."""
        while not stop.is_set():
            self.try_acquire_or_renew()
            stop.wait(self.timing.retry_period_seconds)

    def release(self) -> None:
        """Give the Lease up on shutdown, so another replica takes over at once rather than after expiry.

        This replica stops acting first (`stop_leading`), then the record is cleared if it still names
        us: never the other way round, or the next leader could start while our writes still went out."""
        with self._lock:
            held = self._renewed_at is not None or self._stopped
        self.stop_leading()
        if not held:
            return
        try:
            current = self.hub.read_lease(self.name, self.namespace)
            if current is not None and current.holder == self.identity:
                self.hub.write_lease(self.name, self.namespace, replace(current, holder="", renew_time=None))
        except Exception as error:
            log.warning("leader lease %s/%s: release failed: %s", self.namespace, self.name, type(error).__name__)


def _record_changed(before: LeaseRecord, after: LeaseRecord) -> bool:
    """Whether the stored record moved since it was last observed (its resourceVersion, else its content)."""
    if before.resource_version is not None and after.resource_version is not None:
        return before.resource_version != after.resource_version
    return (before.holder, before.renew_time, before.transitions) != (after.holder, after.renew_time, after.transitions)
