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
- Renewal goes in rounds, as client-go's renew loop (wait.Until(round, RetryPeriod), a round being a poll of
  tryAcquireOrRenew every RetryPeriod for at most RenewDeadline): a round starts with the holder's first
  attempt after its last success and has `renew_deadline` from then; its attempts start a retry period apart
  (`pause`), each request limited to the time left in the round. A round that ends without a successful
  renewal lapses the holder: it renews no more and takes the Lease again only as any candidate does, once the
  record it last wrote expired by its own clock. Found in review: a holder whose renewals (read + write) took
  longer than the renew deadline fenced itself yet renewed on, so the record changed every few seconds, the
  standby never saw it expire, and nobody led. Found in review of that fix: each renewal's deadline counted
  from the previous renewal's send time, so with 2.1 s per request (4.2 s a renewal, 2 s between) a healthy
  holder lapsed every other renewal and led 29% of the time instead of 92%; the round's own deadline is
  client-go's. The fence above is unchanged: `leading()` still ends `renew_deadline` after the last successful
  renewal was sent, even while a round that may yet succeed is under way.
- Every write is a compare-and-swap on resourceVersion: of two candidates only one wins.
- Stricter than client-go, which accepts a short overlap here (we promise two replicas never act at once):
  a holder that reads the Lease naming another, finds it absent or its holder cleared, or loses a write to
  409 Conflict stops leading at once; a candidate never trusts a record's leaseDurationSeconds shorter than
  its own; an absent or cleared Lease is taken only once it stayed so for the lease duration (the start-up
  delay of a first install), a `released` one at once (its holder stopped before writing it).
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

WRITE_ALLOWANCE_SECONDS = 1.0
"""Kept off the end of a write's window (`LeaderElector.write_seconds_left`): the gap between computing the
window and the request leaving, a deadline timer that fires late on a loaded machine, and the two replicas'
clocks running at slightly different rates over the 15 s (ppm drift: microseconds). A second covers the first
two with room; the window of a write started at the renew deadline is still 4 s with client-go's timings."""


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
        self._round_start: float | None = None
        """When the renewal round under way began (the holder's first attempt since its last success), or None."""
        self._lapsed = False
        """The record naming this replica may not be renewed (a renewal round ended without success, or an
        acquisition was answered too late): taken again only once expired, as by any candidate; cleared by a
        write answered in time."""
        self._stopped = False

    def leading(self) -> bool:
        """True while the last successful renewal is younger than the renew deadline (fencing)."""
        with self._lock:
            renewed = self._renewed_at
        return renewed is not None and self._monotonic() - renewed < self.timing.renew_deadline_seconds

    def write_seconds_left(self) -> float:
        """Seconds a write sent now may take before another replica may act on the Lease, less
        WRITE_ALLOWANCE_SECONDS; 0 or less once that time passed or this replica holds no renewal.

        A standby takes the Lease `duration` after it observed the record last change, and it observes our last
        successful renewal no earlier than that renewal was sent (`_renewed_at`): so nothing another replica does
        can start before `_renewed_at + duration`. `leading()` gates the start of a write; this bounds when it
        may still land: found in review, a member write started just inside the renew deadline ran its whole
        api timeout (10 s) and landed 5 s after a standby could have taken over (gridshift.deadline's cap)."""
        with self._lock:
            renewed = self._renewed_at
        if renewed is None:
            return 0.0
        return renewed + self.timing.duration_seconds - WRITE_ALLOWANCE_SECONDS - self._monotonic()

    def ensure(self) -> bool:
        """Try to acquire or renew unless a try happened within the retry period; then `leading()`."""
        now = self._monotonic()
        with self._lock:
            due = self._last_attempt is None or now - self._last_attempt >= self.timing.retry_period_seconds
        if due:
            self.try_acquire_or_renew()
        return self.leading()

    def try_acquire_or_renew(self) -> bool:
        """One attempt of client-go's tryAcquireOrRenew; True when this replica leads afterwards.

        A holder's attempt belongs to the renewal round under way (one starts here if none is): its requests get
        the time left in the round, and a round that ends without success lapses the holder. Any other
        attempt (an acquisition) gets `renew_deadline` from its own start."""
        now = self._monotonic()
        with self._lock:
            if self._stopped:
                return False
            self._last_attempt = now
            holding = self._renewed_at is not None and not self._lapsed
            if holding and self._round_start is None:
                self._round_start = now
            round_start = self._round_start if holding else None
        if round_start is not None and now >= round_start + self.timing.renew_deadline_seconds:
            self._lapse("not renewed within the renew deadline")
            round_start = None
        holding = round_start is not None
        # An answer is worth something only before the round's deadline (or the acquisition's, dated `now`):
        # each request gets the time left, as client-go's context timeout does.
        deadline = (now if round_start is None else round_start) + self.timing.renew_deadline_seconds
        try:
            current = self.hub.read_lease(self.name, self.namespace, timeout_seconds=deadline - now)
        except Exception as error:  # the hub is unreachable: not renewed; leading() lapses at the deadline
            log.warning("leader lease %s/%s: read failed: %s", self.namespace, self.name, type(error).__name__)
            return self._failed(holding, deadline)
        # The change is dated when the answer came, as client-go does: dated when the read was sent, a read held
        # in flight while the holder renewed made its last renewal look that much older, and the Lease was taken
        # while the holder still led (found in review). Its own renewal stays dated `now`: earlier is safe there.
        seen = self._monotonic()
        with self._lock:
            if self._observed_at is None or _record_changed(self._observed, current):
                self._observed, self._observed_at = current, seen
            observed_at = self._observed_at
        if holding and (current is None or current.holder != self.identity):
            # Another replica may take a Lease naming someone else, or a free one, from now on (a free one once
            # it stayed free for the lease duration): found in review, the holder led on until its renew deadline
            # while the replica that took the Lease over led too.
            self._lose("the Lease is gone" if current is None else f"the Lease names {current.holder or 'nobody'}")
            holding = False
        record = self._next_record(current, seen - observed_at)
        if record is None or seen >= deadline:
            return self._failed(holding, deadline)  # held by another, not yet expired; or too late to write
        try:
            won = self.hub.write_lease(self.name, self.namespace, record, timeout_seconds=deadline - seen)
        except Exception as error:
            log.warning("leader lease %s/%s: write failed: %s", self.namespace, self.name, type(error).__name__)
            return self._failed(holding, deadline)
        answered = self._monotonic()
        if not won:
            if holding and not self._still_named(deadline):  # another replica may be leading already
                self._lose("another replica wrote the Lease first (409 Conflict)")
                return False
            return self._failed(holding, deadline)
        with self._lock:
            # Our own write observed when its answer came, as another replica's would be: dated when sent, a
            # lapsed holder judged its record expired before the standby did and took it back first.
            self._observed, self._observed_at = replace(record, resource_version=None), answered
            if self._stopped:
                return False  # stop_leading() came while this renewal was in flight: act no more
            if answered < deadline:
                self._renewed_at, self._lapsed, self._round_start = now, False, None
                return True
        self._lapse("the renewal was answered after the renew deadline" if holding else None)
        return False

    def _failed(self, holding: bool, deadline: float) -> bool:
        """An attempt that did not renew: the holder's round fails (it lapses) once its deadline passed; before
        that the round goes on, a retry period after this attempt began (`pause`). Always False."""
        if holding and self._monotonic() >= deadline:
            self._lapse("not renewed within the renew deadline")
        return False

    def pause(self) -> float:
        """Seconds the renewing task waits before its next attempt: a retry period after a round ended (or an
        acquisition attempt), as client-go's wait.Until; within a round, until a retry period after the last
        attempt began (its poll), at once if that attempt took longer."""
        with self._lock:
            round_start, last = self._round_start, self._last_attempt
        if round_start is None or last is None:
            return self.timing.retry_period_seconds
        return max(0.0, last + self.timing.retry_period_seconds - self._monotonic())

    def _still_named(self, deadline: float) -> bool:
        """After a 409 on the holder's renewal: whether the Lease still names this replica. Found in review: our
        own earlier renewal, whose answer was lost to a timeout but which the server applied, or a `kubectl
        annotate` of the Lease, moved its resourceVersion; the holder stopped leading for a retry period, its
        cycle fenced mid-way. Nobody else leads while the record names us; a failed read counts as not named."""
        try:
            current = self.hub.read_lease(self.name, self.namespace, timeout_seconds=deadline - self._monotonic())
        except Exception as error:
            log.warning("leader lease %s/%s: read failed: %s", self.namespace, self.name, type(error).__name__)
            return False
        return current is not None and current.holder == self.identity

    def _lose(self, why: str) -> None:
        """Stop leading at once: the record this replica read or failed to write says another replica may lead
        now. It takes the Lease again only as any candidate does."""
        with self._lock:
            self._renewed_at, self._round_start, self._lapsed = None, None, False
        log.warning(
            "leader lease %s/%s: %s: stopped leading (LeaseLost); taken again only as by any other replica",
            self.namespace,
            self.name,
            why,
        )

    def _lapse(self, why: str | None) -> None:
        """This replica may not renew the record naming it (a renewal or acquisition that came too late): it
        takes it again only once expired, as any candidate; `why` is logged once, when it led until now."""
        with self._lock:
            already, self._lapsed, self._round_start = self._lapsed, True, None
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
        """The record to write after reading `current` (unchanged for `unchanged_for` s by our clock), or None
        while it may not be taken yet:
        - held by another, until it stayed unchanged for the lease duration, its own or ours, whichever is
          longer (a record naming this replica too, once it lapsed: it is taken again as any candidate would;
          a process new under the same identity renews it at once, as client-go does: the one before it is gone);
        - absent, or its holderIdentity cleared, until it stayed so for the lease duration (`_free`): whoever
          held it may lead until its renew deadline, and nothing on the record says who that was or when;
        - released by its holder on shutdown (`released`): taken at once, that holder stopped before writing it.
        """
        wall = self._wall()
        # Whole seconds on the Lease (leaseDurationSeconds is an integer), rounded up: rounded down, a
        # duration of 10.9 s with a renew deadline of 10.5 s let another replica take over at 10 s
        # while this one still led (found in review).
        duration = math.ceil(self.timing.duration_seconds)
        if current is None:
            return (
                LeaseRecord(self.identity, duration, wall, wall, 0, None) if self._free(None, unchanged_for) else None
            )
        if current.holder in (None, "") and not released(current) and not self._free(current, unchanged_for):
            return None
        if current.holder not in (None, "") and (current.holder != self.identity or self._lapsed):
            # Never the record's duration alone: found in review, a leaseDurationSeconds set to 0 on the Lease let
            # a standby take it over after 1 s while the holder, fenced at its renew deadline, still led.
            if unchanged_for < max(current.duration_seconds, self.timing.duration_seconds):
                return None  # held, and not yet expired by our own clock
            return LeaseRecord(self.identity, duration, wall, wall, current.transitions + 1, current.resource_version)
        acquired = current.acquire_time if current.holder == self.identity else wall
        transitions = current.transitions if current.holder == self.identity else current.transitions + 1
        return LeaseRecord(self.identity, duration, wall, acquired, transitions, current.resource_version)

    def _free(self, current: LeaseRecord | None, unchanged_for: float) -> bool:
        """Whether a Lease found absent or with no holder (not `released`) stayed so long enough to be taken.

        Found in review: taken at once, a `kubectl delete lease` made a standby leader while the holder led on
        until its next renewal (or its renew deadline, cut off from the hub): both acted for up to 10 s. Any
        holder's last renewal was sent before the record was deleted or cleared, so it stops leading within its
        renew deadline of the moment this replica first saw the record free; the lease duration (ours, or the
        record's where longer) keeps the margin a held Lease has. This is the start-up delay of a first install
        too: an absent Lease cannot tell a first start from a deleted one."""
        wanted = (
            self.timing.duration_seconds
            if current is None
            else max(current.duration_seconds, self.timing.duration_seconds)
        )
        return unchanged_for >= wanted

    def stop_leading(self) -> None:
        """Stop acting at once (`leading()` False from now on, renewals refused): the first step of a
        shutdown, so that writes still queued are fenced before `release` hands the Lease over."""
        with self._lock:
            self._stopped = True
            self._renewed_at, self._round_start = None, None

    def run(self, stop: threading.Event) -> None:
        """Acquire or renew until `stop` is set, `pause` between attempts (the renewing task; a thread of its own)."""
        while not stop.is_set():
            self.try_acquire_or_renew()
            stop.wait(self.pause())

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
                # Its form (`released`) tells the next leader that this replica stopped: taken at once.
                self.hub.write_lease(self.name, self.namespace, replace(current, holder="", renew_time=None))
        except Exception as error:
            log.warning("leader lease %s/%s: release failed: %s", self.namespace, self.name, type(error).__name__)


def released(record: LeaseRecord) -> bool:
    """Whether `record` is as `LeaderElector.release` leaves it: no holderIdentity and no renewTime, its
    acquireTime kept. A record cleared any other way (`kubectl delete`, `kubectl edit` of holderIdentity, a spec
    removed) is not: nothing says its holder stopped."""
    return not record.holder and record.renew_time is None and record.acquire_time is not None


def _record_changed(before: LeaseRecord | None, after: LeaseRecord | None) -> bool:
    """Whether the stored record moved since it was last observed (its resourceVersion, else its content); a
    Lease absent both times did not."""
    if before is None or after is None:
        return before is not after
    if before.resource_version is not None and after.resource_version is not None:
        return before.resource_version != after.resource_version
    return (before.holder, before.renew_time, before.transitions) != (after.holder, after.renew_time, after.transitions)
