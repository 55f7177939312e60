"""Make-before-break migration steps and routing weights, as data.

A migration goes in batches of at most maxConcurrentMoves moves (a replica started while another stops;
replicas started beyond those stopped, growth, all go in the first batch): ScaleUp the target
clusters, WaitReady, ShiftRouting to the replicas that will remain, then ScaleDown sources, but only
as far as the Ready capacity left still covers what demand needs. Replicas already starting that the
target keeps are waited for before anything is taken away. Pure growth starts everything at once;
pure shrinkage shifts routing first and then scales down.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

Key = tuple[str, str]
K = TypeVar("K", bound=str | tuple[str, str])


class StepAction(StrEnum):
    SCALE_UP = "ScaleUp"
    WAIT_READY = "WaitReady"
    SHIFT_ROUTING = "ShiftRouting"
    SCALE_DOWN = "ScaleDown"


@dataclass(frozen=True)
class RouteWeight:
    """Percent of a deployment's requests sent to one cluster."""

    cluster: str
    weight: int


@dataclass(frozen=True)
class ClassRoute:
    """Percent of one request-size class sent to one GPU type in one cluster (planner.classes); the
    weights of a class sum to 100. A size-aware router reads these; others use the per-cluster weights."""

    request_class: str
    cluster: str
    gpu_type: str
    weight: int


def percents(exact: Mapping[K, float]) -> dict[K, int]:
    """Integer percents proportional to `exact` (values >= 0), summing to 100 (largest remainder;
    ties by key); keys that get 0 are left out. Empty when nothing is positive."""
    total = sum(exact.values())
    if total <= 0:
        return {}
    keys = sorted(exact)
    share = {k: 100.0 * exact[k] / total for k in keys}
    floors = {k: int(share[k]) for k in keys}
    left = 100 - sum(floors.values())
    for key in sorted(keys, key=lambda k: (-(share[k] - floors[k]), k))[:left]:
        floors[key] += 1
    return {k: n for k, n in floors.items() if n > 0}


@dataclass(frozen=True)
class MigrationStep:
    """One step; `replicas` is the replica count of (cluster, gpu_type) after it (Ready for WaitReady)."""

    index: int
    action: StepAction
    cluster: str
    gpu_type: str
    replicas: int
    routing: tuple[RouteWeight, ...] = ()


def routing_weights(replicas: Mapping[Key, int], capacity_per_replica: Mapping[Key, float]) -> tuple[RouteWeight, ...]:
    """Integer percents per cluster, proportional to capacity, summing to 100 (largest remainder)."""
    per_cluster: dict[str, float] = {}
    for key, count in replicas.items():
        if count > 0:
            per_cluster[key[0]] = per_cluster.get(key[0], 0.0) + count * capacity_per_replica.get(key, 0.0)
    return tuple(RouteWeight(c, weight) for c, weight in sorted(percents(per_cluster).items()))


def _capacity(ready: Mapping[Key, int], capacity_per_replica: Mapping[Key, float]) -> float:
    return sum(n * capacity_per_replica.get(k, 0.0) for k, n in ready.items())


def migration_steps(
    desired: Mapping[Key, int],
    ready: Mapping[Key, int],
    target: Mapping[Key, int],
    capacity_per_replica: Mapping[Key, float],
    needed: float,
    max_concurrent_moves: int,
) -> tuple[MigrationStep, ...]:
    """Steps from the current placement (desired, ready) to `target`, never below the needed Ready capacity.

    `needed` is in the unit of `capacity_per_replica`. The floor kept at every step is the smallest of
    `needed`, the Ready capacity now and the target's capacity (one cannot keep more than one has).
    ShiftRouting weighs by `capacity_per_replica`."""
    if all(target.get(k, 0) == n for k, n in desired.items()) and all(
        desired.get(k, 0) == n for k, n in target.items()
    ):
        return ()
    keys = sorted(set(desired) | set(ready) | set(target))
    now_desired = {k: desired.get(k, 0) for k in keys}
    now_ready = {k: min(ready.get(k, 0), now_desired[k]) for k in keys}
    goal = {k: target.get(k, 0) for k in keys}
    floor = min(needed, _capacity(now_ready, capacity_per_replica), _capacity(goal, capacity_per_replica))
    adds = [k for k in keys for _ in range(max(0, goal[k] - now_desired[k]))]
    # Replicas to stop, counted per key, least capacity first: a list of one entry per replica took 34 s for
    # 5,000 replicas and ran out of memory for 1e9 (a legal count on a member Deployment; found in review).
    removes = {
        k: now_desired[k] - goal[k]
        for k in sorted(keys, key=lambda k: (capacity_per_replica.get(k, 0.0), k))
        if now_desired[k] > goal[k]
    }
    steps: list[MigrationStep] = []

    def emit(action: StepAction, key: Key, replicas: int, routing: tuple[RouteWeight, ...] = ()) -> None:
        steps.append(MigrationStep(len(steps), action, key[0], key[1], replicas, routing))

    if not adds and not removes:
        return ()
    # Replicas already starting count only once Ready: wait for them before anything is taken away. Waiting
    # only where the floor needed them (tried in review, 5 December 2026) let a source that read not Ready
    # when the plan was made lower the floor, and be stopped once Ready again before its replacement was. A
    # kept replica that never gets Ready rolls the move back once; service.migrate then holds its key.
    if removes:
        for key in keys:
            expected = min(now_desired[key], goal[key])
            if now_ready[key] < expected:
                emit(StepAction.WAIT_READY, key, expected)
                now_ready[key] = expected
    # maxConcurrentMoves limits moves, a replica started while another stops; the replicas started beyond those
    # stopped are growth, which starts at once as pure growth does. Found in review: whenever anything was
    # stopped every start was a move, so {a:4, b:1} -> {a:4, c:6} started c's six one batch at a time.
    moves = max(1, max_concurrent_moves)
    batch_size = moves + max(0, len(adds) - sum(removes.values()))
    while adds or removes:
        batch, adds, batch_size = adds[:batch_size], adds[batch_size:], moves
        started: list[Key] = []
        for key in batch:
            now_desired[key] += 1
            if key not in started:
                started.append(key)
        for key in started:
            emit(StepAction.SCALE_UP, key, now_desired[key])
        for key in started:
            emit(StepAction.WAIT_READY, key, now_desired[key])
            now_ready[key] = now_desired[key]
        quota = min(len(batch), moves) if adds else sum(removes.values())
        stopping = _stoppable(removes, quota, now_desired, now_ready, capacity_per_replica, floor)
        if not stopping and not adds:
            # Only reachable when the floor cannot hold: take the rest down as the plan says.
            stopping, removes = dict(removes), {}
        remaining = {k: now_desired[k] - stopping.get(k, 0) for k in keys}
        weights = routing_weights(remaining, capacity_per_replica)
        emit(StepAction.SHIFT_ROUTING, ("*", "*"), sum(remaining.values()), weights)
        for key in stopping:
            now_desired[key] = remaining[key]
            now_ready[key] = min(now_ready[key], now_desired[key])
            emit(StepAction.SCALE_DOWN, key, now_desired[key])
    return tuple(steps)


def _stoppable(
    removes: dict[Key, int],
    quota: int,
    now_desired: Mapping[Key, int],
    now_ready: Mapping[Key, int],
    capacity_per_replica: Mapping[Key, float],
    floor: float,
) -> dict[Key, int]:
    """How many replicas of each key (in `removes`' order) this batch stops, at most `quota` in all: as many
    of each as keep the Ready capacity at `floor`, taken off `removes`. Stopping one more never adds capacity,
    so each key's count is the largest that holds (found by bisection, the same capacity sum as one replica
    at a time gave, in the same order)."""
    stopping: dict[Key, int] = {}
    taken = 0
    for key in list(removes):
        if taken >= quota:
            break

        def holds(more: int, key: Key = key) -> bool:
            after = dict(now_ready)
            for other, count in [*stopping.items(), (key, more)]:
                after[other] = min(after[other], now_desired[other] - count)
            return _capacity(after, capacity_per_replica) >= floor - 1e-9

        low, high = 0, min(removes[key], quota - taken)  # holds(low) is known; find the largest that holds
        while low < high:
            middle = (low + high + 1) // 2
            if holds(middle):
                low = middle
            else:
                high = middle - 1
        if low:
            stopping[key] = low
            taken += low
            removes[key] -= low
            if not removes[key]:
                del removes[key]
    return stopping


class Unmeasured(StrEnum):
    """Why an unreachable cluster's pods' vLLM metrics were not measured, in the fixed words the routing grace's notes
    say (a tenant's RoutingGrace Event): never the metrics error's own text, which names the metrics source (the
    admin's prometheusUrl) and quotes its server's answer, which can name other tenants' namespaces (the query covers
    the cluster's every workload namespace; docs/security.md row 78). The error itself goes to the cycle's errors."""

    NO_ANSWER = "its Prometheus gave no answer within the deadline"
    FAILED = "its Prometheus query failed"
    NOT_ASKED = "its Prometheus was not asked"
    REPLICAS_UNKNOWN = "its replicas there unknown: none listed since the operator started"


@dataclass(frozen=True)
class Unreachable:
    """A cluster whose API server did not answer this cycle, as the routing grace reads it (`routing_with_grace`)."""

    cluster: str
    since: datetime
    """When its unreachable spell began (the service's record, never a clock read here)."""
    reporting: int
    """The deployment's replica pods there whose vLLM metrics Prometheus scraped lately (signals' replicas_reporting:
    35 s): the data plane's own word that they still serve; 0 when none does or they were not measured."""
    usable: bool = True
    """Whether the deployment may still run there (the planner's eligibility rules: planner.plan.DeploymentPlan
    .usable_away); False: its weight goes at once, as a reachable cluster's would, whatever `unmeasured` says."""
    unmeasured: Unmeasured | None = None
    """Why its pods' metrics were not measured this cycle (Prometheus did not answer, its replicas there unknown),
    when they were not: `reporting` is then 0 for want of a reading, not because none reports."""


class GraceNote(str):
    """One note of the routing grace, as the cycle's log says it; `decision` is the same without the count of pods
    reporting (the cluster, since when, its weight, and kept until when or why dropped). A RoutingGrace Event is
    raised when a decision changes, not the count (fifth review: a count going 2, 1, 2 raised three Events while
    nothing about routing changed)."""

    decision: str

    def __new__(cls, decision: str, count: str = "") -> GraceNote:
        note = super().__new__(cls, decision + count)
        note.decision = decision
        return note


def routing_with_grace(
    proposed: Sequence[RouteWeight],
    in_force: Sequence[RouteWeight],
    away: Mapping[str, Unreachable],
    now: datetime,
    grace_seconds: float,
    serving: Collection[str],
) -> tuple[tuple[RouteWeight, ...], tuple[str, ...]]:
    """The weights to publish while no move is in flight, and why each unreachable cluster's weight in force is kept
    or dropped.

    An unreachable cluster's replicas are not capacity, so the plan's weights leave it out; yet a member whose API
    server alone is away still serves, and its traffic moved at once to clusters that cannot absorb it (a cold
    start takes minutes) misses the SLO. So a cluster of `away` keeps its weight `in_force` (the routing published
    last) while the grace holds it: the deployment may still run there, its unreachable spell is younger than
    `grace_seconds`, and some of its pods report fresh metrics. Otherwise it gets none, whatever `proposed` (the
    plan's routing, or the one in force while a move waits to start) gives it. The other clusters of `proposed` share
    the rest in their proportions; where none is left to (every cluster it routes to is away), `proposed` goes out
    as it is, and the notes say so rather than "dropped" (found in review: they said dropped while it went out).
    Where the others must take more than `proposed` gives them (a weight dropped that it gave: the one in force,
    while a move waits to start), the more goes to those with Ready replicas (`serving`), as when a move starts
    (`_spread`; fifth review: a crashed cluster's share grew from 33% to 49%); where none has one, to the clusters
    the grace keeps, then to them all. A weight dropped is dropped whatever the others' state (sixth review: kept
    where none had a Ready replica, a cluster no longer admitting the tenant kept its traffic with no time limit)."""
    kept: dict[str, float] = {}
    dropped: list[tuple[RouteWeight, str]] = []
    notes: list[str] = []
    for route, spell, until, why in _judged(in_force, away, now, grace_seconds):
        if why is None:
            kept[route.cluster] = float(route.weight)
            count = f" while {spell.reporting} of its pods report fresh vLLM metrics"
            notes.append(GraceNote(f"{_head(route, spell)} kept until {_instant(until)}", count))
        else:
            dropped.append((route, why))
    others = {r.cluster: float(r.weight) for r in proposed if r.weight > 0 and r.cluster not in away}
    if not kept and not others:
        return tuple(proposed), tuple(f"{_head(r, away[r.cluster])} {_NOWHERE}" for r, _ in dropped)
    said = [f"{_head(r, away[r.cluster])} dropped to 0, {why}" for r, why in dropped]
    if not kept and len(others) == sum(1 for r in proposed if r.weight > 0):
        return tuple(proposed), tuple(notes + said)
    more = 100.0 - sum(kept.values()) - sum(others.values())
    if others and more > 1e-9:
        routing, to = _spread({**kept, **others}, more, others, {*serving, *kept})
        return routing, tuple(notes + [f"{note}{to}" for note in said])
    return _shared(kept, others), tuple(notes + said)


def routing_as_a_move_starts(
    in_force: Sequence[RouteWeight],
    away: Mapping[str, Unreachable],
    now: datetime,
    grace_seconds: float,
    serving: Collection[str],
) -> tuple[tuple[RouteWeight, ...], tuple[str, ...]]:
    """The routing in force when a move starts, and why each unreachable cluster's weight in it is kept or dropped.

    A move publishes routing only at its ShiftRouting, once the capacity it starts is Ready; before the grace, every
    weight in force stayed to then. That stays so for an unreachable cluster the grace holds now
    (`routing_with_grace`'s rule) and for one whose pods were not measured (after a restart its replicas are
    unknown; its Prometheus did not answer): found in review, dropping those as the move started put the whole load
    on the clusters left for the cold start. One the evidence rules out is dropped at once: the deployment may no
    longer run there, the grace ended, or its pods were measured and none reports (found in review: kept into a
    move, such a weight lived up to readyTimeoutSeconds). What is dropped goes to the other clusters routed to that
    have Ready replicas (`serving`), in their proportions; to a reachable cluster with none Ready only where none has
    one (found in review: a crashed cluster's share grew from 33% to 49%; sixth review: kept where none had a Ready
    replica, a forbidden cluster's weight lived on into the move). Where every cluster left is away, they share it;
    where none is left, the routing stays as it is and the notes say so."""
    kept: list[str] = []
    # Kept by the grace: its pods report, so it serves. `serving` holds no cluster away (its Ready counts are not
    # read), so a dropped share went to a crashed reachable cluster rather than to these (eighth review).
    graced: set[str] = set()
    dropped: list[tuple[RouteWeight, str]] = []
    for route, spell, until, why in _judged(in_force, away, now, grace_seconds):
        head = f"{_head(route, spell)} kept into the move starting now"
        if why is None:
            graced.add(route.cluster)
            kept.append(f"{head} (its pods report fresh vLLM metrics, the grace runs to {_instant(until)})")
        elif spell.unmeasured is not None and spell.usable and now < until:
            kept.append(f"{head} (its pods' vLLM metrics not measured: {spell.unmeasured}), as before the grace")
        else:
            dropped.append((route, why))
    notes = [f"{note}: the move's ShiftRouting sets it" for note in kept]
    if not dropped:
        return tuple(in_force), tuple(notes)
    gone = {r.cluster for r, _ in dropped}
    left = {r.cluster: float(r.weight) for r in in_force if r.weight > 0 and r.cluster not in gone}
    if not left:
        return tuple(in_force), tuple(notes + [f"{_head(r, away[r.cluster])} {_NOWHERE}" for r, _ in dropped])
    reachable = [c for c in left if c not in away]
    routing, to = _spread(left, sum(float(r.weight) for r, _ in dropped), reachable, {*serving, *graced})
    notes += [f"{_head(r, away[r.cluster])} dropped to 0 as a move starts, {why}{to}" for r, why in dropped]
    return routing, tuple(notes)


def _spread(
    base: Mapping[str, float], share: float, reachable: Collection[str], serving: Collection[str]
) -> tuple[tuple[RouteWeight, ...], str]:
    """`base` (not empty) with `share` (weights dropped) added in their proportions to its `reachable` clusters with
    Ready replicas (`serving`, which the callers give the clusters the grace keeps too: their pods report); where none
    has one, to the clusters the grace keeps whose replicas serve; where none does, to its reachable clusters all the
    same; where none is reachable, to every cluster of `base` (those the grace keeps). Also what the drop's note adds
    where the share does not go to a reachable cluster's Ready replicas. The one rule for a dropped share, with or
    without a move starting: a cluster with no Ready replica gets none while one with them can take it (fifth review: a
    crashed cluster's share grew from 33% to 49%; seventh: 30% to 60% while a cluster kept by the grace still served),
    and a weight that must go goes, whatever the others' state (sixth review: kept where none had a Ready replica, a
    cluster no longer admitting the tenant kept its traffic with no time limit)."""
    tiers = (
        ([c for c in base if c in reachable and c in serving], ""),
        ([c for c in base if c in serving], f" ({_KEPT_SERVING})"),
        ([c for c in base if c in reachable], f" ({_NONE_READY})"),
        (list(base), f" ({_ONLY_AWAY})"),
    )
    takers, to = next((t for t in tiers if sum(base[c] for c in t[0]) > 0), tiers[-1])
    total = sum(base[c] for c in takers)
    exact = {c: w + (share * w / total if c in takers else 0.0) for c, w in base.items()}
    return tuple(RouteWeight(c, w) for c, w in sorted(percents(exact).items())), to


_NOWHERE = "kept: every cluster the routing sends traffic to is unreachable, there is nowhere else to send it"
_KEPT_SERVING = (
    "no reachable cluster the routing sends traffic to has a Ready replica: its share goes to those the grace keeps, "
    "whose replicas serve"
)
_NONE_READY = "no reachable cluster the routing sends traffic to has a Ready replica: its share goes to them all"
_ONLY_AWAY = "every other cluster the routing sends traffic to is unreachable: its share goes to those kept"


def _shared(kept: Mapping[str, float], others: Mapping[str, float]) -> tuple[RouteWeight, ...]:
    """`kept` as it is, `others` sharing the rest of 100 in their proportions (`kept` scaled to 100 alone where no
    other is left)."""
    share, total = 100.0 - sum(kept.values()), sum(others.values())
    exact = {**kept, **{c: w * share / total for c, w in others.items()}} if total > 0 else dict(kept)
    return tuple(RouteWeight(c, w) for c, w in sorted(percents(exact).items()))


def _head(route: RouteWeight, spell: Unreachable) -> str:
    return f"cluster {route.cluster} unreachable since {_instant(spell.since)}: its weight {route.weight}%"


def _judged(
    in_force: Sequence[RouteWeight], away: Mapping[str, Unreachable], now: datetime, grace_seconds: float
) -> Iterator[tuple[RouteWeight, Unreachable, datetime, str | None]]:
    """Each weight in force of an unreachable cluster, its spell, when its grace ends, and why the grace no longer
    holds it (None while it does)."""
    for route in in_force:
        spell = away.get(route.cluster)
        if spell is not None and route.weight > 0:
            until = spell.since + timedelta(seconds=grace_seconds)
            yield route, spell, until, _dropped(spell, now, until)


def _dropped(spell: Unreachable, now: datetime, until: datetime) -> str | None:
    """Why the grace no longer holds an unreachable cluster's weight; None while it does."""
    if not spell.usable:
        return "the deployment may no longer run there"
    if now >= until:
        return f"the grace ended at {_instant(until)}"
    if spell.reporting > 0:
        return None
    if spell.unmeasured is not None:
        return f"its pods' vLLM metrics not measured ({spell.unmeasured})"
    return "none of its pods reports fresh vLLM metrics (its data plane may be down)"


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
