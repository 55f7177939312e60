"""The candidate's clock in leader election: when it saw the Lease change, not when it asked.

With a fake clock and the fake hub: the real-apiserver tests (tests/security/test_leader.py) cannot
hold one read in flight while the holder renews.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

import pytest

from gridshift.hub.client import LeaseRecord
from gridshift.hub.lease import LeaderElector, LeaseTiming
from gridshift.testing.hub import FakeHub

LEASE, NAMESPACE = "gridshift-leader", "gridshift-system"
_Hub = TypeVar("_Hub", bound=FakeHub)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def released(hub: _Hub) -> _Hub:
    """`hub` with the Lease as a previous leader's shutdown leaves it: taken at once (an absent one only after
    the lease duration, tested below)."""
    hub.leave_released_lease(LEASE, NAMESPACE)
    return hub


class SlowReadHub(FakeHub):
    """A hub whose next Lease read is answered only after `during_read` has run (a slow apiserver)."""

    def __init__(self) -> None:
        super().__init__()
        self.during_read: Callable[[], None] | None = None

    def read_lease(self, name: str, namespace: str, timeout_seconds: float | None = None) -> LeaseRecord | None:
        if self.during_read is not None:
            hook, self.during_read = self.during_read, None
            hook()
        return super().read_lease(name, namespace)


class DownHub(FakeHub):
    def read_lease(self, name: str, namespace: str, timeout_seconds: float | None = None) -> LeaseRecord | None:
        raise OSError("hub unreachable")


def test_a_slow_read_does_not_date_the_holders_renewal_back_to_when_it_was_sent() -> None:
    # Found in review: the candidate took its clock before the read and dated the change it saw to then, so
    # a read held 8 s in flight made the holder's last renewal look 8 s older than it was: the candidate took
    # the Lease while the holder still led (client-go reads the clock after the Get).
    clock, hub = Clock(), released(SlowReadHub())
    timing = LeaseTiming()  # 15 s lease, 10 s renew deadline, 2 s retry period
    holder = LeaderElector(hub, LEASE, NAMESPACE, "a", timing, clock)
    candidate = LeaderElector(hub, LEASE, NAMESPACE, "b", timing, clock)
    assert holder.try_acquire_or_renew()
    clock.now = 1.0
    assert not candidate.try_acquire_or_renew()

    def holder_renews_meanwhile() -> None:
        for moment in (4.0, 6.0, 8.0, 10.0):
            clock.now = moment
            assert holder.try_acquire_or_renew()
        clock.now = 10.5  # the read sent at 2.5 is answered now, with the renewal of 10.0

    clock.now = 2.5
    hub.during_read = holder_renews_meanwhile
    assert not candidate.try_acquire_or_renew()
    holder.hub = DownHub()  # cut off: renewed last at 10.0, it leads until 20.0 (the renew deadline)
    moment = 10.5
    while moment < 26.0:
        moment += 0.5
        clock.now = moment
        holder.try_acquire_or_renew()
        candidate.try_acquire_or_renew()
        assert not (holder.leading() and candidate.leading()), f"two leaders at {moment}"
    assert candidate.leading() and not holder.leading()  # and the Lease did pass, once expired


class SlowWriteHub(FakeHub):
    """A hub whose Lease writes take `write_seconds` of the clock to be answered (a slow apiserver)."""

    def __init__(self, clock: Clock, write_seconds: float) -> None:
        super().__init__()
        self.clock, self.write_seconds = clock, write_seconds

    def write_lease(self, name: str, namespace: str, record: LeaseRecord, timeout_seconds: float | None = None) -> bool:
        self.clock.now += self.write_seconds
        return super().write_lease(name, namespace, record)


def test_the_holder_stops_leading_at_the_renew_deadline_before_the_lease_can_expire() -> None:
    # docs/security.md row 9: a holder cut off from the hub stops acting once its last renewal is older than the
    # renew deadline (10 s), while the Lease it wrote is still unexpired for every other replica (15 s); fenced
    # only at the lease duration, it would act in the same moment as a replica that took the Lease over.
    clock = Clock()
    holder = LeaderElector(released(FakeHub()), LEASE, NAMESPACE, "a", LeaseTiming(), clock)
    assert holder.try_acquire_or_renew()
    holder.hub = DownHub()
    for moment, leads in ((9.9, True), (10.0, False), (12.0, False), (14.9, False), (16.0, False)):
        clock.now = moment
        holder.try_acquire_or_renew()
        assert holder.leading() is leads, f"at {moment}"


def test_a_renewal_is_dated_when_its_write_was_sent_not_when_it_was_answered() -> None:
    # The other replicas may have seen the renewed Lease as soon as the write was sent, and time its expiry from
    # then: dated when the answer came, a write held 4 s in flight let the holder lead 4 s past its renew
    # deadline, up to the moment another replica may take the Lease over. Dated when sent is the safe side.
    clock = Clock()
    holder = LeaderElector(released(SlowWriteHub(clock, 4.0)), LEASE, NAMESPACE, "a", LeaseTiming(), clock)
    clock.now = 1.0
    assert holder.try_acquire_or_renew()  # sent at 1.0, answered at 5.0
    assert clock.now == 5.0
    holder.hub = DownHub()
    clock.now = 10.9
    assert holder.leading()
    clock.now = 11.0  # the renew deadline from 1.0; from 5.0 it would lead until 15.0
    assert not holder.leading()


class TimedHub(FakeHub):
    """A hub whose every Lease request takes `seconds` of the clock, whatever timeout it is given (a slow
    apiserver, or a client that does not honour it); each request's timeout is recorded."""

    def __init__(
        self, shared: FakeHub, clock: Clock, seconds: float, tick: Callable[[], None] = lambda: None, step: float = 0.5
    ) -> None:
        super().__init__()
        self.shared, self.clock, self.seconds, self.tick, self.step = shared, clock, seconds, tick, step
        self.timeouts: list[float | None] = []

    def _wait(self, timeout_seconds: float | None) -> None:
        self.timeouts.append(timeout_seconds)
        end = self.clock.now + self.seconds
        while self.clock.now < end - 1e-9:
            self.clock.now = round(self.clock.now + self.step, 3)
            self.tick()

    def read_lease(self, name: str, namespace: str, timeout_seconds: float | None = None) -> LeaseRecord | None:
        self._wait(timeout_seconds)
        return self.shared.read_lease(name, namespace)

    def write_lease(self, name: str, namespace: str, record: LeaseRecord, timeout_seconds: float | None = None) -> bool:
        self._wait(timeout_seconds)
        return self.shared.write_lease(name, namespace, record)


def test_a_holder_whose_renewals_outlast_the_renew_deadline_stops_renewing_and_the_standby_takes_over() -> None:
    # Found in review: each request to the hub took 5.5 s, a renewal (read + write) 11 s, past the 10 s renew
    # deadline. The holder fenced itself (its renewal is dated when sent) but renewed on, so the record changed
    # every 13 s and the standby, waiting for 15 s without a change, never took over: for 300 s nobody led.
    clock, shared = Clock(), released(FakeHub())
    standby = LeaderElector(shared, LEASE, NAMESPACE, "b", LeaseTiming(), clock)
    standby_next = [0.0]
    led: list[tuple[float, bool, bool]] = []

    def tick() -> None:  # the standby's own renewing task, every retry period, while the holder waits
        if clock.now >= standby_next[0]:
            standby.try_acquire_or_renew()
            standby_next[0] = clock.now + 2.0
        led.append((clock.now, holder.leading(), standby.leading()))

    holder = LeaderElector(shared, LEASE, NAMESPACE, "a", LeaseTiming(), clock)
    assert holder.try_acquire_or_renew()
    holder.hub = TimedHub(shared, clock, 5.5, tick)
    while clock.now < 120.0:
        holder.try_acquire_or_renew()
        for _ in range(4):  # the holder's task sleeps a retry period
            clock.now = round(clock.now + 0.5, 3)
            tick()
    assert not any(a and b for _, a, b in led), "two leaders at once"
    took_over = next((moment for moment, _, b in led if b), None)
    assert took_over is not None and took_over <= 30.0, f"the standby took over at {took_over}"
    assert all(b for moment, _, b in led if moment >= took_over), "the slow holder took the Lease back"
    current = shared.read_lease(LEASE, NAMESPACE)
    assert current is not None and current.holder == "b"


def test_each_lease_request_gets_the_time_left_in_its_renewal_round() -> None:
    # client-go bounds each renewal round by the renew deadline from the round's start: an answer after it is
    # worth nothing (the round failed), so a request waiting for it only keeps the holder writing what no longer
    # counts. Found in review: the deadline counted from the previous renewal instead (3 s left at 7 s below
    # with no round under way), so a renewal of 4.2 s, 2 s after the last, had 3.8 s and the holder lapsed.
    clock, shared = Clock(), released(FakeHub())
    hub = TimedHub(shared, clock, 1.0)
    holder = LeaderElector(hub, LEASE, NAMESPACE, "a", LeaseTiming(), clock)
    assert holder.try_acquire_or_renew()  # an acquisition: sent at 0, renew deadline 10 from then
    assert hub.timeouts == [10.0, 9.0]
    assert holder.pause() == 2.0  # a retry period after the round (here the acquisition) ended
    clock.now = 7.0  # renewed at 0 (dated when sent): a new round, with 10 s of its own
    hub.timeouts.clear()
    assert holder.try_acquire_or_renew()
    assert hub.timeouts == [10.0, 9.0]
    clock.now = 11.0
    holder.hub = DownHub()
    assert not holder.try_acquire_or_renew()  # the round from 11 goes on until 21, an attempt every 2 s
    assert holder.pause() == 2.0
    clock.now = 13.5
    assert holder.pause() == 0.0  # the next attempt is due (a retry period after 11.0)
    clock.now = 18.0
    holder.hub = hub
    hub.timeouts.clear()
    assert not holder.leading()  # the fence: the renewal sent at 7 counted until 17, round or not
    assert holder.try_acquire_or_renew() and holder.leading()
    assert hub.timeouts == [3.0, 2.0]  # 3 s left in the round from 11


def test_a_renewal_answered_after_its_rounds_deadline_does_not_count_and_the_holder_stops_renewing() -> None:
    clock, shared = Clock(), released(FakeHub())
    holder = LeaderElector(shared, LEASE, NAMESPACE, "a", LeaseTiming(), clock)
    assert holder.try_acquire_or_renew()
    clock.now = 4.0
    holder.hub = DownHub()
    assert not holder.try_acquire_or_renew()  # a round from 4: deadline 14
    clock.now = 12.0
    holder.hub = TimedHub(shared, clock, 1.5)
    assert not holder.try_acquire_or_renew()  # sent at 12, read at 13.5, written at 15: the round failed
    assert not holder.leading()
    holder.hub = shared  # the hub is fast again: the Lease still names "a", unexpired for everyone
    written = shared.lease_versions
    clock.now = 17.0
    assert not holder.try_acquire_or_renew() and not holder.leading()
    assert shared.lease_versions == written, "a holder whose renewal round failed renewed again"
    clock.now = 30.0  # 15 s since its last write was answered: expired for any candidate, this one too
    assert holder.try_acquire_or_renew() and holder.leading()
    current = shared.read_lease(LEASE, NAMESPACE)
    # transitions: 1 when "a" took the released Lease, 2 when it took its own expired record again
    assert current is not None and (current.holder, current.transitions) == ("a", 2)


def _renewing_task(holder: LeaderElector, clock: Clock, until: float, tick: Callable[[], None]) -> None:
    """The operator's renewing task (service.operator `_renew_forever`) on the fake clock: an attempt, then
    `pause()`, the clock advancing in the hub's steps meanwhile."""
    while clock.now < until:
        holder.try_acquire_or_renew()
        end = clock.now + holder.pause()
        while clock.now < end - 1e-9:
            clock.now = round(clock.now + 0.1, 3)
            tick()


@pytest.mark.parametrize(("seconds", "least_share"), [(2.1, 0.90), (2.5, 0.68), (3.0, 0.47), (4.0, 0.17)])
def test_a_holder_whose_lease_requests_take_2_to_4_s_keeps_the_lease(seconds: float, least_share: float) -> None:
    # Found in review: each renewal's deadline counted from the previous renewal's send time, so with 2.1 s per
    # request (a renewal 4.2 s, then 2 s of retry period) a healthy holder had 3.8 s for 4.2 s of work, lapsed,
    # waited for its own Lease to expire and led 29% of the time (92% before), 9% at 4 s. Each round now has
    # the renew deadline of its own, as client-go's: the holder never lapses, the standby never takes over, and
    # it leads all but the fence's gap (a renewal sent at s counts from s + 2d, the answer, to s + 10).
    clock, shared = Clock(), released(FakeHub())
    standby = LeaderElector(shared, LEASE, NAMESPACE, "b", LeaseTiming(), clock)
    holder = LeaderElector(shared, LEASE, NAMESPACE, "a", LeaseTiming(), clock)
    standby_next = [0.0]
    led: list[tuple[bool, bool]] = []

    def tick() -> None:
        if clock.now >= standby_next[0]:
            standby.try_acquire_or_renew()
            standby_next[0] = clock.now + 2.0
        led.append((holder.leading(), standby.leading()))

    assert holder.try_acquire_or_renew()
    holder.hub = TimedHub(shared, clock, seconds, tick, step=0.1)
    _renewing_task(holder, clock, 300.0, tick)
    assert not any(b for _, b in led), "the standby took the Lease from a holder renewing it"
    current = shared.read_lease(LEASE, NAMESPACE)
    # transitions: 1 when "a" took the released Lease; another would mean it lapsed and took it again
    assert current is not None and (current.holder, current.transitions) == ("a", 1), "the holder lapsed"
    share = sum(a for a, _ in led) / len(led)
    assert share >= least_share, f"led {share:.1%} of the time"


def test_a_holder_whose_lease_requests_take_5_5_s_still_hands_over_with_the_renewing_task() -> None:
    # The renewal (11 s) outlasts its round's deadline (10 s): the round fails, the holder renews no more, and
    # the standby takes over once the record stopped changing for the Lease duration.
    clock, shared = Clock(), released(FakeHub())
    standby = LeaderElector(shared, LEASE, NAMESPACE, "b", LeaseTiming(), clock)
    holder = LeaderElector(shared, LEASE, NAMESPACE, "a", LeaseTiming(), clock)
    standby_next = [0.0]
    led: list[tuple[float, bool, bool]] = []

    def tick() -> None:
        if clock.now >= standby_next[0]:
            standby.try_acquire_or_renew()
            standby_next[0] = clock.now + 2.0
        led.append((clock.now, holder.leading(), standby.leading()))

    assert holder.try_acquire_or_renew()
    holder.hub = TimedHub(shared, clock, 5.5, tick, step=0.1)
    _renewing_task(holder, clock, 120.0, tick)
    assert not any(a and b for _, a, b in led), "two leaders at once"
    took_over = next((moment for moment, _, b in led if b), None)
    assert took_over is not None and took_over <= 32.0, f"the standby took over at {took_over}"
    assert all(b for moment, _, b in led if moment >= took_over), "the slow holder took the Lease back"


def _both_never_lead(a: LeaderElector, b: LeaderElector, clock: Clock, until: float) -> list[tuple[float, bool, bool]]:
    """Both renewing tasks, an attempt each every retry period (b's half a period after a's), sampled every
    0.1 s until `until`: asserts that they never lead at once; what each said, by time."""
    led: list[tuple[float, bool, bool]] = []
    while clock.now < until:
        clock.now = round(clock.now + 0.1, 3)
        if round(clock.now * 10) % 20 == 0:
            a.try_acquire_or_renew()
        if round(clock.now * 10) % 20 == 10:
            b.try_acquire_or_renew()
        led.append((clock.now, a.leading(), b.leading()))
        assert not (led[-1][1] and led[-1][2]), f"two leaders at {clock.now}"
    return led


def _a_leads_b_stands_by() -> tuple[Clock, FakeHub, LeaderElector, LeaderElector]:
    clock, hub = Clock(), released(FakeHub())
    a = LeaderElector(hub, LEASE, NAMESPACE, "a", LeaseTiming(), clock)
    b = LeaderElector(hub, LEASE, NAMESPACE, "b", LeaseTiming(), clock)
    assert a.try_acquire_or_renew()
    clock.now = 1.0
    assert not b.try_acquire_or_renew()
    return clock, hub, a, b


def test_a_deleted_lease_is_not_taken_while_its_holder_may_still_lead() -> None:
    # Found in review: after `kubectl delete lease`, the standby created the Lease at once and led, while the
    # holder led on until its renew deadline (its renewal found the Lease naming another and only failed): two
    # leaders for up to 10 s. Now the holder stops at its next renewal, and the standby takes the Lease only
    # once it stayed absent for the lease duration.
    clock, hub, a, b = _a_leads_b_stands_by()
    clock.now = 1.2
    del hub.leases[(NAMESPACE, LEASE)]
    led = _both_never_lead(a, b, clock, 40.0)
    assert led[0][1] and not any(a_leads for moment, a_leads, _ in led if 2.0 <= moment < 17.0)
    took_over = next(moment for moment, a_leads, b_leads in led if moment >= 2.0 and (a_leads or b_leads))
    assert 17.0 <= took_over <= 20.0, f"led again at {took_over}"  # 15 s after the first to see it absent


def test_a_holder_cut_off_when_its_lease_is_deleted_stops_before_another_takes_it() -> None:
    # The holder cannot read the deletion: it stops at its renew deadline (10 s after its last renewal, at 0),
    # the standby waits the lease duration from when it first saw the Lease absent (15 s after 1.5).
    clock, hub, a, b = _a_leads_b_stands_by()
    a.hub = DownHub()
    clock.now = 1.2
    del hub.leases[(NAMESPACE, LEASE)]
    led = _both_never_lead(a, b, clock, 40.0)
    assert [moment for moment, a_leads, _ in led if a_leads][-1] < 10.0
    assert next(moment for moment, _, b_leads in led if b_leads) >= 16.5


def test_a_lease_whose_holder_was_cleared_by_hand_is_taken_only_after_the_lease_duration() -> None:
    # `kubectl edit`: holderIdentity removed, renewTime kept. Unlike the record a shutdown leaves
    # (released()), nothing says that the holder stopped.
    clock, hub, a, b = _a_leads_b_stands_by()
    clock.now = 1.2
    current = hub.leases[(NAMESPACE, LEASE)]
    hub.leases[(NAMESPACE, LEASE)] = replace(current, holder=None, resource_version="cleared")
    led = _both_never_lead(a, b, clock, 40.0)
    took_over = next(moment for moment, a_leads, b_leads in led if moment >= 2.0 and (a_leads or b_leads))
    assert 17.0 <= took_over <= 20.0, f"led again at {took_over}"


def test_a_holder_that_reads_the_lease_naming_another_stops_leading_at_once() -> None:
    clock, hub, a, _ = _a_leads_b_stands_by()
    current = hub.leases[(NAMESPACE, LEASE)]
    hub.leases[(NAMESPACE, LEASE)] = replace(current, holder="c", resource_version="taken")
    clock.now = 2.0
    assert a.leading()
    assert not a.try_acquire_or_renew()
    assert not a.leading(), "led on until its renew deadline while the Lease named another"


class ConflictHub(FakeHub):
    """A hub where another writer changes the Lease between our read and our write (our write: 409 Conflict)."""

    def __init__(self, shared: FakeHub) -> None:
        super().__init__()
        self.shared = shared

    def read_lease(self, name: str, namespace: str, timeout_seconds: float | None = None) -> LeaseRecord | None:
        found = self.shared.read_lease(name, namespace)
        assert found is not None
        self.shared.leases[(namespace, name)] = replace(found, holder="c", resource_version="taken")
        return found

    def write_lease(self, name: str, namespace: str, record: LeaseRecord, timeout_seconds: float | None = None) -> bool:
        return self.shared.write_lease(name, namespace, record)


def test_a_holder_whose_renewal_loses_a_conflict_stops_leading_at_once() -> None:
    clock, hub, a, _ = _a_leads_b_stands_by()
    a.hub = ConflictHub(hub)
    clock.now = 2.0
    assert not a.try_acquire_or_renew()
    assert not a.leading(), "led on until its renew deadline after another replica wrote the Lease"


def test_a_standby_never_trusts_a_lease_duration_shorter_than_its_own() -> None:
    # Found in review: with leaseDurationSeconds set to 0 on the Lease, a standby took it over after 1 s of
    # silence while the holder, fenced only at its renew deadline (10 s), still led.
    clock, hub, a, b = _a_leads_b_stands_by()
    a.hub = DownHub()
    current = hub.leases[(NAMESPACE, LEASE)]
    hub.leases[(NAMESPACE, LEASE)] = replace(current, duration_seconds=0, resource_version="edited")
    led = _both_never_lead(a, b, clock, 40.0)
    assert next(moment for moment, _, b_leads in led if b_leads) >= 16.5  # 15 s (its own) after it saw the edit


def test_first_start_waits_the_lease_duration_and_a_released_lease_is_taken_at_once() -> None:
    # An absent Lease cannot tell a first start from a deleted one: it is taken after the lease duration (the
    # start-up delay docs/operations.md states). One left by a shutdown (release) is taken at once.
    clock, hub = Clock(), FakeHub()
    first = LeaderElector(hub, LEASE, NAMESPACE, "a", LeaseTiming(), clock)
    for moment in (0.0, 2.0, 14.0):
        clock.now = moment
        assert not first.try_acquire_or_renew(), f"took an absent Lease at {moment}"
    clock.now = 15.0
    assert first.try_acquire_or_renew() and first.leading()
    first.release()
    second = LeaderElector(hub, LEASE, NAMESPACE, "b", LeaseTiming(), clock)
    clock.now = 15.5
    assert second.try_acquire_or_renew() and second.leading()


class BumpingHub(FakeHub):
    """A hub where the Lease's resourceVersion moves between our read and our write, its holder unchanged: our
    own earlier renewal landing late (its answer lost to a timeout), or `kubectl annotate lease`."""

    def __init__(self, shared: FakeHub) -> None:
        super().__init__()
        self.shared, self.bumps = shared, 1

    def read_lease(self, name: str, namespace: str, timeout_seconds: float | None = None) -> LeaseRecord | None:
        found = self.shared.read_lease(name, namespace)
        if found is not None and self.bumps:
            self.bumps -= 1
            self.shared.leases[(namespace, name)] = replace(found, resource_version="bumped")
        return found

    def write_lease(self, name: str, namespace: str, record: LeaseRecord, timeout_seconds: float | None = None) -> bool:
        return self.shared.write_lease(name, namespace, record)


def test_a_conflict_on_a_lease_that_still_names_the_holder_does_not_stop_it() -> None:
    # Found in review: a 409 the holder's own late renewal (or an annotation) caused made it stop leading for a
    # retry period, its cycle fenced mid-way and reported as LeaseLost, though nobody else could lead.
    clock, hub, a, b = _a_leads_b_stands_by()
    a.hub = BumpingHub(hub)
    clock.now = 2.0
    assert not a.try_acquire_or_renew()  # this round's write lost to the 409
    assert a.leading(), "stopped leading on a conflict while the Lease still named it"
    clock.now = 4.0
    assert a.try_acquire_or_renew() and a.leading()
    assert not b.try_acquire_or_renew() and not b.leading()
