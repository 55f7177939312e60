"""Make-before-break steps: replayed step by step, Ready capacity never drops below what demand needs.

The property tests replay every plan as the shell would and check the invariants; the examples pin
whole step lists that were worked out by hand (the comments give the arithmetic), each for a rule a
property cannot see: batch limits, the order replicas go in, the floor's parts, rounding tolerance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from gridshift.planner.migration import Key, MigrationStep, RouteWeight, StepAction, migration_steps, routing_weights

A, B, BA, C = ("a", "h100"), ("b", "h100"), ("b", "a100"), ("c", "l40s")
KEYS = [A, B, BA, C]
CAPACITY = {A: 10.0, B: 10.0, BA: 6.0, C: 3.0}


def brief(steps: tuple[MigrationStep, ...]) -> list[tuple[Any, ...]]:
    """Each step as (index, action, cluster, gpu, replicas[, routing as {cluster: percent}])."""
    out: list[tuple[Any, ...]] = []
    for s in steps:
        row: tuple[Any, ...] = (s.index, str(s.action), s.cluster, s.gpu_type, s.replicas)
        if s.action == StepAction.SHIFT_ROUTING:
            row += ({w.cluster: w.weight for w in s.routing},)
        else:
            assert s.routing == ()
        out.append(row)
    return out


def replay(
    desired: Mapping[Key, int],
    ready: Mapping[Key, int],
    target: Mapping[Key, int],
    steps: tuple[MigrationStep, ...],
    capacity: Mapping[Key, float],
    max_concurrent_moves: int,
) -> list[float]:
    """Apply the steps as the shell would, checking each one; the Ready capacity after every step.

    A replica whose capacity is unknown (absent from `capacity`) counts for nothing.
    """
    keys = set(desired) | set(ready) | set(target) | {(s.cluster, s.gpu_type) for s in steps} - {("*", "*")}
    now = {k: desired.get(k, 0) for k in keys}
    up = {k: min(ready.get(k, 0), now[k]) for k in keys}
    goal = {k: target.get(k, 0) for k in keys}

    def ready_capacity() -> float:
        return sum(n * capacity.get(k, 0.0) for k, n in up.items())

    capacities = []
    batches: list[dict[str, int]] = [{"started": 0, "stopped": 0, "ups": 0}]
    for position, step in enumerate(steps):
        assert step.index == position
        key = (step.cluster, step.gpu_type)
        if step.action == StepAction.SCALE_UP:
            assert step.replicas > now[key]
            batches[-1]["started"] += step.replicas - now[key]
            batches[-1]["ups"] += 1
            now[key] = step.replicas
        elif step.action == StepAction.WAIT_READY:
            assert up[key] < step.replicas <= now[key]
            up[key] = step.replicas
        elif step.action == StepAction.SHIFT_ROUTING:
            assert key == ("*", "*")
            # Routing goes to the replicas that remain once this batch's scale-downs are done.
            after = dict(now)
            for later in steps[position + 1 :]:
                if later.action != StepAction.SCALE_DOWN:
                    break
                after[(later.cluster, later.gpu_type)] = later.replicas
            assert step.replicas == sum(after.values())
            assert step.routing == routing_weights(after, capacity)
            # Every replica started in this batch is Ready before traffic moves (make before break).
            assert all(up[k] == now[k] for k in keys if now[k] > desired.get(k, 0))
        else:
            assert step.action == StepAction.SCALE_DOWN
            assert steps[position - 1].action in (StepAction.SHIFT_ROUTING, StepAction.SCALE_DOWN)
            assert goal[key] <= step.replicas < now[key]
            # What the target keeps is Ready before anything is taken away.
            assert all(up[k] >= min(now[k], goal[k]) for k in keys)
            batches[-1]["stopped"] += now[key] - step.replicas
            now[key] = step.replicas
            up[key] = min(up[key], step.replicas)
        if step.action == StepAction.SHIFT_ROUTING:
            batches.append({"started": 0, "stopped": 0, "ups": 0})
        capacities.append(ready_capacity())
    assert now == goal, "the steps end at the target"
    removes = any(desired.get(k, 0) > goal[k] for k in keys)
    if removes:
        # A batch starts at most maxConcurrentMoves replicas, the first also the growth (those started beyond
        # those stopped), and, while more are to start, stops no more than it started nor maxConcurrentMoves.
        moves = max(1, max_concurrent_moves)
        started = sum(max(0, goal[k] - desired.get(k, 0)) for k in keys)
        growth = max(0, started - sum(max(0, desired.get(k, 0) - goal[k]) for k in keys))
        for index, batch in enumerate(batches):
            assert batch["started"] <= moves + (growth if index == 0 else 0)
            if any(b["ups"] for b in batches[index + 1 :]):
                assert batch["stopped"] <= min(batch["started"], moves)
    return capacities


def floor_of(
    desired: Mapping[Key, int],
    ready: Mapping[Key, int],
    target: Mapping[Key, int],
    capacity: Mapping[Key, float],
    needed: float,
) -> float:
    ready_now = sum(min(ready.get(k, 0), n) * capacity.get(k, 0.0) for k, n in desired.items())
    return min(needed, ready_now, sum(n * capacity.get(k, 0.0) for k, n in target.items()))


def check(
    desired: Mapping[Key, int],
    ready: Mapping[Key, int],
    target: Mapping[Key, int],
    capacity: Mapping[Key, float],
    needed: float,
    moves: int,
) -> tuple[MigrationStep, ...]:
    steps = migration_steps(desired, ready, target, capacity, needed, moves)
    floor = floor_of(desired, ready, target, capacity, needed)
    for position, ready_capacity in enumerate(replay(desired, ready, target, steps, capacity, moves)):
        assert ready_capacity >= floor - 1e-9, f"step {position}: Ready capacity {ready_capacity} < floor {floor}"
    return steps


# --- properties ---------------------------------------------------------------------------------

counts = st.fixed_dictionaries({k: st.integers(0, 4) for k in KEYS})


@settings(max_examples=200, deadline=None)
@given(desired=counts, target=counts, not_ready=counts, needed=st.floats(0, 60), moves=st.integers(0, 3))
def test_ready_capacity_never_drops_below_the_need(
    desired: dict[Key, int], target: dict[Key, int], not_ready: dict[Key, int], needed: float, moves: int
) -> None:
    ready = {k: max(0, desired[k] - not_ready[k]) for k in KEYS}
    check(desired, ready, target, CAPACITY, needed, moves)


POOL = [A, B, BA, C, ("d", "t4")]
CAPACITY_CHOICES = [10.0, 6.0, 3.0, 1.0, 0.5, 0.25, None]
"""Per (cluster, GPU): some below 1 req/s, None for a pool whose capacity is unknown."""


@st.composite
def migrations(draw: st.DrawFn) -> tuple[dict[Key, int], dict[Key, int], dict[Key, int], dict[Key, float], float, int]:
    """Placements that share few pools: pools in only one of desired/target, several removals from one
    pool, replicas still starting, capacities below 1 req/s or unknown, needs that bind."""
    keys = draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=4, unique=True))
    capacity = {}
    for key in keys:
        value = draw(st.sampled_from(CAPACITY_CHOICES))
        if value is not None:
            capacity[key] = value
    desired = {k: draw(st.integers(0, 6)) for k in keys if draw(st.booleans()) or k == keys[0]}
    target = {k: draw(st.integers(0, 6)) for k in keys if draw(st.booleans()) or k == keys[-1]}
    ready = {k: max(0, n - draw(st.sampled_from([0, 0, 0, 1, 2]))) for k, n in desired.items() if draw(st.booleans())}
    target_capacity = sum(n * capacity.get(k, 0.0) for k, n in target.items())
    needed = draw(
        st.one_of(
            st.just(target_capacity),
            st.floats(0.0, 1.0).map(lambda share: share * target_capacity),
            st.integers(0, 60).map(float),
            st.integers(0, 60).map(lambda whole: whole + 1e-9),  # a need with rounding noise above a whole value
            st.floats(0.0, 80.0),
        )
    )
    return desired, ready, target, capacity, needed, draw(st.integers(0, 3))


@settings(max_examples=600, deadline=None)
@given(migrations())
@example(({C: 3}, {C: 2}, {A: 1, B: 3}, {C: 10.0, B: 6.0}, 69.0, 2))  # two removals of c in one batch
@example(({C: 1}, {C: 1}, {A: 1, B: 1}, {B: 10.0, C: 0.1}, 15.0, 0))  # a's capacity is unknown
def test_make_before_break_holds_on_targeted_migrations(
    case: tuple[dict[Key, int], dict[Key, int], dict[Key, int], dict[Key, float], float, int],
) -> None:
    check(*case)


# --- examples, worked out by hand ----------------------------------------------------------------


def test_two_removals_from_one_pool_in_one_batch_keep_the_floor() -> None:
    # a: 3 x 10 -> a: 1 x 10 + c: 3 x 3, two moves at a time, need 19 = the target's capacity.
    # Batch 1 starts the three c (two moves and one of growth: Ready 30 + 9 = 39); the two a go together,
    # leaving exactly 19.
    steps = check({A: 3}, {A: 3}, {A: 1, C: 3}, CAPACITY, 19.0, 2)
    assert brief(steps) == [
        (0, "ScaleUp", "c", "l40s", 3),
        (1, "WaitReady", "c", "l40s", 3),
        (2, "ShiftRouting", "*", "*", 4, {"a": 53, "c": 47}),  # 10 : 9
        (3, "ScaleDown", "a", "h100", 1),
    ]


def test_a_batch_stops_no_more_than_the_floor_allows_where_growth_started_at_once() -> None:
    # Growth starts in the first batch (5 December 2026), so the hand-worked examples above no longer bind the
    # floor: here it does. a: 4 x 3 (3 Ready), c: 1 x 1 -> c: 4 x 1 + d: 1 x 10, one move at a time, need 14:
    # floor = min(14, 10 Ready, 14) = 10. The second batch (c's third) may stop no a (6 + 3 = 9 < 10); its
    # third lets one go (6 + 4 = 10). A floor check that counted no stop (a mutation) stopped one each batch.
    d = ("d", "l40s")
    steps = check({A: 4, C: 1}, {A: 3, C: 1}, {C: 4, d: 1}, {A: 3.0, C: 1.0, d: 10.0}, 14.0, 1)
    assert [(s.action.value, s.cluster, s.replicas) for s in steps][:11] == [
        ("ScaleUp", "c", 2), ("WaitReady", "c", 2), ("ShiftRouting", "*", 5), ("ScaleDown", "a", 3),
        ("ScaleUp", "c", 3), ("WaitReady", "c", 3), ("ShiftRouting", "*", 6),
        ("ScaleUp", "c", 4), ("WaitReady", "c", 4), ("ShiftRouting", "*", 6), ("ScaleDown", "a", 2),
    ]  # fmt: skip


def test_two_removals_from_one_pool_count_replicas_already_not_ready() -> None:
    # c: 3 wanted, 2 Ready, x 10 -> a: 1 (capacity unknown) + b: 3 x 6; floor = min(69, 20, 18) = 18.
    # Batch 1 starts a and two b (two moves, one of growth: Ready 20 + 12 = 32). Stopping one c costs no
    # Ready replica (3 wanted, 2 Ready), a second leaves 10 + 12 = 22 >= 18: two go, the most a batch stops;
    # the last c (16 < 18 without it) waits for the third b.
    steps = check({C: 3}, {C: 2}, {A: 1, B: 3}, {C: 10.0, B: 6.0}, 69.0, 2)
    downs = [(s.index, s.replicas) for s in steps if s.action == StepAction.SCALE_DOWN]
    assert downs == [(5, 1), (9, 0)]


def test_moves_go_in_batches_of_max_concurrent_moves() -> None:
    steps = check({B: 3}, {B: 3}, {A: 3}, CAPACITY, 25.0, 1)
    ups = [s.replicas for s in steps if s.action == StepAction.SCALE_UP]
    downs = [s.replicas for s in steps if s.action == StepAction.SCALE_DOWN]
    assert ups == [1, 2, 3]
    assert downs == [2, 1, 0]


def test_a_batch_stops_no_more_replicas_than_it_started_even_when_capacity_allows() -> None:
    # Nothing needed: the floor is 0 and never binds; still one b goes per a started.
    steps = check({B: 3}, {B: 3}, {A: 3}, CAPACITY, 0.0, 1)
    assert brief(steps) == [
        (0, "ScaleUp", "a", "h100", 1),
        (1, "WaitReady", "a", "h100", 1),
        (2, "ShiftRouting", "*", "*", 3, {"a": 33, "b": 67}),
        (3, "ScaleDown", "b", "h100", 2),
        (4, "ScaleUp", "a", "h100", 2),
        (5, "WaitReady", "a", "h100", 2),
        (6, "ShiftRouting", "*", "*", 3, {"a": 67, "b": 33}),
        (7, "ScaleDown", "b", "h100", 1),
        (8, "ScaleUp", "a", "h100", 3),
        (9, "WaitReady", "a", "h100", 3),
        (10, "ShiftRouting", "*", "*", 3, {"a": 100}),
        (11, "ScaleDown", "b", "h100", 0),
    ]


def test_the_last_batch_stops_every_replica_left() -> None:
    # b: 3 -> a: 1 with nothing needed: once the only a is Ready, all three b go in one step.
    steps = check({B: 3}, {B: 3}, {A: 1}, CAPACITY, 0.0, 1)
    assert brief(steps) == [
        (0, "ScaleUp", "a", "h100", 1),
        (1, "WaitReady", "a", "h100", 1),
        (2, "ShiftRouting", "*", "*", 1, {"a": 100}),
        (3, "ScaleDown", "b", "h100", 0),
    ]


def test_a_removal_that_leaves_exactly_the_floor_goes_ahead() -> None:
    # b: 2 -> a: 2, need 20 = what b has: after the first a starts (30), one b may go (20 >= 20).
    steps = check({B: 2}, {B: 2}, {A: 2}, CAPACITY, 20.0, 1)
    assert brief(steps) == [
        (0, "ScaleUp", "a", "h100", 1),
        (1, "WaitReady", "a", "h100", 1),
        (2, "ShiftRouting", "*", "*", 2, {"a": 50, "b": 50}),
        (3, "ScaleDown", "b", "h100", 1),
        (4, "ScaleUp", "a", "h100", 2),
        (5, "WaitReady", "a", "h100", 2),
        (6, "ShiftRouting", "*", "*", 2, {"a": 100}),
        (7, "ScaleDown", "b", "h100", 0),
    ]


def test_a_need_with_rounding_noise_is_met_within_1e_9() -> None:
    # d: 2 x 1 + c: 1 x 6 (8) -> a: 1 (capacity unknown) + c: 2 x 6 (12), need 7 + 1e-9 (a sum of
    # per-deployment needs carries such noise). Taking one d leaves 7: within 1e-9 of the need, so it goes.
    d = ("d", "t4")
    capacity = {d: 1.0, C: 6.0}
    steps = check({d: 2, C: 1}, {d: 2, C: 1}, {A: 1, C: 2}, capacity, 7.000000001, 0)
    assert brief(steps) == [
        (0, "ScaleUp", "a", "h100", 1),
        (1, "WaitReady", "a", "h100", 1),
        (2, "ShiftRouting", "*", "*", 3, {"c": 86, "d": 14}),
        (3, "ScaleDown", "d", "t4", 1),
        (4, "ScaleUp", "c", "l40s", 2),
        (5, "WaitReady", "c", "l40s", 2),
        (6, "ShiftRouting", "*", "*", 3, {"c": 100}),
        (7, "ScaleDown", "d", "t4", 0),
    ]


def test_the_floor_is_the_need_not_the_targets_capacity() -> None:
    # a: 2 x 10 -> c: 4 x 3 (12), need 5: floor 5. After the second c starts (a 1 + c 2 = 16), the last a
    # may go (6 >= 5) although 6 is below the target's 12; the remaining c start afterwards.
    steps = check({A: 2}, {A: 2}, {C: 4}, CAPACITY, 5.0, 1)
    assert [(s.action, s.replicas) for s in steps if s.cluster == "a"] == [
        (StepAction.SCALE_DOWN, 1),
        (StepAction.SCALE_DOWN, 0),
    ]
    assert [s.index for s in steps if s.cluster == "a"] == [3, 7]


def test_replicas_not_ready_are_no_capacity_to_keep() -> None:
    # a: 2 wanted, none Ready -> b: 2, need 100: Ready capacity is 0, so the floor is 0 and each a goes as
    # soon as a b is Ready, although b alone is below the need.
    steps = check({A: 2}, {A: 0}, {B: 2}, CAPACITY, 100.0, 1)
    assert brief(steps) == [
        (0, "ScaleUp", "b", "h100", 1),
        (1, "WaitReady", "b", "h100", 1),
        (2, "ShiftRouting", "*", "*", 2, {"a": 50, "b": 50}),
        (3, "ScaleDown", "a", "h100", 1),
        (4, "ScaleUp", "b", "h100", 2),
        (5, "WaitReady", "b", "h100", 2),
        (6, "ShiftRouting", "*", "*", 2, {"b": 100}),
        (7, "ScaleDown", "a", "h100", 0),
    ]


def test_the_floor_never_exceeds_the_targets_capacity() -> None:
    # a: 3 x 10 -> c: 2 x 3 (6), need 25: the target cannot hold 25, so the floor is 6. One a goes per c
    # started, then the last two together once nothing is left to start.
    steps = check({A: 3}, {A: 3}, {C: 2}, CAPACITY, 25.0, 1)
    assert brief(steps) == [
        (0, "ScaleUp", "c", "l40s", 1),
        (1, "WaitReady", "c", "l40s", 1),
        (2, "ShiftRouting", "*", "*", 3, {"a": 87, "c": 13}),  # 20 : 3
        (3, "ScaleDown", "a", "h100", 2),
        (4, "ScaleUp", "c", "l40s", 2),
        (5, "WaitReady", "c", "l40s", 2),
        (6, "ShiftRouting", "*", "*", 2, {"c": 100}),
        (7, "ScaleDown", "a", "h100", 0),
    ]


def test_the_smallest_replicas_go_first() -> None:
    # a: 1 x 10 + c: 1 x 3 -> b: 1 x 10, need 10: c (3) is taken down before a (10).
    steps = check({A: 1, C: 1}, {A: 1, C: 1}, {B: 1}, CAPACITY, 10.0, 1)
    assert brief(steps) == [
        (0, "ScaleUp", "b", "h100", 1),
        (1, "WaitReady", "b", "h100", 1),
        (2, "ShiftRouting", "*", "*", 1, {"b": 100}),
        (3, "ScaleDown", "c", "l40s", 0),
        (4, "ScaleDown", "a", "h100", 0),
    ]


def test_replicas_of_unknown_capacity_count_for_nothing() -> None:
    d = ("d", "t4")
    # Taken down first (as capacity 0), before a pool of 0.5 req/s.
    steps = check({d: 1, C: 1}, {d: 1, C: 1}, {}, {C: 0.5}, 0.0, 1)
    assert [(s.cluster, s.replicas) for s in steps if s.action == StepAction.SCALE_DOWN] == [("d", 0), ("c", 0)]
    # Not counted while c (0.1) is kept: a (unknown) and b start together (one move, one of growth), and c
    # goes once b (10) is Ready; the route sends a nothing.
    steps = check({C: 1}, {C: 1}, {A: 1, B: 1}, {B: 10.0, C: 0.1}, 15.0, 0)
    assert brief(steps) == [
        (0, "ScaleUp", "a", "h100", 1),
        (1, "ScaleUp", "b", "h100", 1),
        (2, "WaitReady", "a", "h100", 1),
        (3, "WaitReady", "b", "h100", 1),
        (4, "ShiftRouting", "*", "*", 2, {"b": 100}),
        (5, "ScaleDown", "c", "l40s", 0),
    ]


def test_growing_onto_a_cluster_absent_from_desired_starts_it() -> None:
    steps = check({A: 1}, {A: 1}, {A: 1, B: 2}, CAPACITY, 10.0, 1)
    assert brief(steps) == [
        (0, "ScaleUp", "b", "h100", 2),
        (1, "WaitReady", "b", "h100", 2),
        (2, "ShiftRouting", "*", "*", 3, {"a": 33, "b": 67}),
    ]


def test_pure_growth_starts_everything_at_once() -> None:
    steps = check({A: 1}, {A: 1}, {A: 3, C: 2}, CAPACITY, 10.0, 1)
    assert brief(steps) == [
        (0, "ScaleUp", "a", "h100", 3),
        (1, "ScaleUp", "c", "l40s", 2),
        (2, "WaitReady", "a", "h100", 3),
        (3, "WaitReady", "c", "l40s", 2),
        (4, "ShiftRouting", "*", "*", 5, {"a": 83, "c": 17}),  # 30 : 6
    ]


def test_growing_from_zero_and_shrinking_to_zero_have_steps() -> None:
    assert brief(check({}, {}, {A: 1}, CAPACITY, 10.0, 1)) == [
        (0, "ScaleUp", "a", "h100", 1),
        (1, "WaitReady", "a", "h100", 1),
        (2, "ShiftRouting", "*", "*", 1, {"a": 100}),
    ]
    assert brief(check({A: 1}, {A: 1}, {}, CAPACITY, 10.0, 1)) == [
        (0, "ShiftRouting", "*", "*", 0, {}),
        (1, "ScaleDown", "a", "h100", 0),
    ]


def test_replicas_still_starting_that_the_target_drops_are_scaled_down() -> None:
    # a was asked for but has no Ready replica (and no entry in `ready` at all).
    steps = check({A: 2}, {}, {B: 1}, CAPACITY, 10.0, 1)
    assert [(s.cluster, s.replicas) for s in steps if s.action == StepAction.SCALE_DOWN] == [("a", 0)]


def test_replicas_the_target_keeps_are_waited_for_before_anything_goes() -> None:
    # a: 2 wanted, none Ready yet (absent from `ready`), the target keeps one: wait for it first.
    steps = check({A: 2}, {}, {A: 1, B: 1}, CAPACITY, 10.0, 1)
    assert brief(steps)[0] == (0, "WaitReady", "a", "h100", 1)


def test_a_source_not_ready_when_planned_is_not_stopped_before_what_the_target_keeps_is_ready() -> None:
    # Found in review of a change (5 December 2026) that waited on kept replicas only where the floor needed
    # them: a read not Ready when the plan was made, so the floor fell to b's and c's Ready capacity, and a
    # was stopped, Ready again, while c's second replica was not: Ready capacity fell from 4 to 3.
    one = {A: 1.0, B: 1.0, C: 1.0}
    steps = check({A: 1, B: 1, C: 2}, {B: 1, C: 1}, {B: 2, C: 2}, one, 4.0, 1)
    first_down = next(s.index for s in steps if s.action == StepAction.SCALE_DOWN)
    assert ("WaitReady", "c", 2) in [(s.action.value, s.cluster, s.replicas) for s in steps[:first_down]]


def test_swapping_a_big_replica_for_small_ones_waits_for_enough_capacity() -> None:
    # One 10-token replica becomes four 3-token ones; with a need of 10, the big one goes last.
    steps = check({A: 1}, {A: 1}, {C: 4}, CAPACITY, 10.0, 1)
    actions = [(s.action, s.cluster) for s in steps]
    down = actions.index((StepAction.SCALE_DOWN, "a"))
    assert [s.replicas for s in steps[:down] if s.action == StepAction.WAIT_READY and s.cluster == "c"][-1] == 4


def test_no_change_means_no_steps() -> None:
    assert migration_steps({A: 2}, {A: 2}, {A: 2}, CAPACITY, 5.0, 1) == ()
    # Zero counts and absent keys are the same placement.
    assert migration_steps({A: 2, C: 0}, {A: 1}, {A: 2, B: 0}, CAPACITY, 5.0, 1) == ()


def test_step_actions_are_the_names_the_shell_reads() -> None:
    assert [str(a) for a in StepAction] == ["ScaleUp", "WaitReady", "ShiftRouting", "ScaleDown"]


# --- routing weights ----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(replicas=counts)
def test_routing_weights_sum_to_100_in_proportion(replicas: dict[Key, int]) -> None:
    weights = routing_weights(replicas, CAPACITY)
    per_cluster: dict[str, float] = {}
    for key, count in replicas.items():
        per_cluster[key[0]] = per_cluster.get(key[0], 0.0) + count * CAPACITY[key]
    total = sum(per_cluster.values())
    if total == 0:
        assert weights == ()
        return
    assert sum(w.weight for w in weights) == 100
    for weight in weights:
        assert abs(weight.weight - 100 * per_cluster[weight.cluster] / total) < 1.0


def weights(replicas: dict[Key, int], capacity: dict[Key, float]) -> dict[str, int]:
    result = routing_weights(replicas, capacity)
    assert all(isinstance(w, RouteWeight) for w in result)
    assert [w.cluster for w in result] == sorted(w.cluster for w in result)
    return {w.cluster: w.weight for w in result}


def test_routing_weights_give_leftover_percents_by_largest_remainder() -> None:
    # 1 : 2 is 33.3 : 66.7; the one leftover percent goes to b (remainder .67), not to a by name.
    assert weights({A: 1, B: 2}, CAPACITY) == {"a": 33, "b": 67}
    # 1 : 1 : 1 is 33.3 each: the leftover goes to the first by name on a tie.
    assert weights({A: 1, B: 1, ("d", "x"): 1}, {A: 1.0, B: 1.0, ("d", "x"): 1.0}) == {"a": 34, "b": 33, "d": 33}
    # Per cluster: b's two GPU types add up (10 + 6 = 16 against a's 10).
    assert weights({A: 1, B: 1, BA: 1}, CAPACITY) == {"a": 38, "b": 62}


def test_routing_weights_drop_clusters_below_one_percent_and_keep_one_percent() -> None:
    assert weights({A: 1, C: 1}, {A: 999.0, C: 1.0}) == {"a": 100}  # c: 0.1 %
    assert weights({A: 1, C: 1}, {A: 99.0, C: 1.0}) == {"a": 99, "c": 1}


def test_routing_weights_with_capacities_below_one_request_per_second() -> None:
    assert weights({A: 1, C: 1}, {A: 0.3, C: 0.1}) == {"a": 75, "c": 25}
    assert weights({A: 1}, {A: 0.5}) == {"a": 100}


def test_routing_weights_without_capacity_are_empty() -> None:
    assert weights({}, CAPACITY) == {}
    assert weights({A: 0, C: 0}, CAPACITY) == {}
    assert weights({A: 2}, {A: 0.0}) == {}


def test_routing_weights_send_nothing_to_replicas_of_unknown_capacity() -> None:
    assert weights({A: 2, ("d", "x"): 1}, {A: 10.0}) == {"a": 100}
    assert weights({("d", "x"): 1}, {}) == {}


def test_a_member_deployment_scaled_to_a_billion_replicas_is_planned_back_in_a_few_steps() -> None:
    # Found in review (4 December 2026): one list entry per replica to stop, each batch removing them one at a
    # time: 5,000 replicas took 34 s, and 1e9 (a legal count on a member Deployment, set by anyone who may
    # scale it) ran the hub out of memory, in the decide stage every deployment waits on.
    a, b = ("a", "H100"), ("b", "H100")
    steps = migration_steps({a: 10**9}, {a: 10**9}, {b: 4}, {a: 1.0, b: 1.0}, 4.0, 2)
    assert [(s.action, s.cluster, s.replicas) for s in steps if s.action is not StepAction.SHIFT_ROUTING] == [
        (StepAction.SCALE_UP, "b", 2),
        (StepAction.WAIT_READY, "b", 2),
        (StepAction.SCALE_DOWN, "a", 10**9 - 2),
        (StepAction.SCALE_UP, "b", 4),
        (StepAction.WAIT_READY, "b", 4),
        (StepAction.SCALE_DOWN, "a", 0),
    ]


def _stoppable_one_at_a_time(
    removes: list[tuple[str, str]],
    quota: int,
    now_desired: dict[tuple[str, str], int],
    now_ready: dict[tuple[str, str], int],
    capacity: dict[tuple[str, str], float],
    floor: float,
) -> list[tuple[str, str]]:
    """The batch's stops as migration_steps chose them before they were counted per key: one replica at a
    time, in order, each if the Ready capacity left still holds the floor."""
    stopping: list[tuple[str, str]] = []
    for key in list(removes):
        if len(stopping) >= quota:
            break
        after = dict(now_ready)
        for other in [*stopping, key]:
            after[other] = min(after[other], now_desired[other] - stopping.count(other) - (other == key))
        if sum(n * capacity.get(k, 0.0) for k, n in after.items()) >= floor - 1e-9:
            stopping.append(key)
            removes.remove(key)
    return stopping


STOP_KEYS = [("a", "H100"), ("b", "H100"), ("b", "L4"), ("c", "L4")]


@settings(max_examples=400, deadline=None)
@given(
    desired=st.lists(st.integers(0, 7), min_size=4, max_size=4),
    not_ready=st.lists(st.integers(0, 3), min_size=4, max_size=4),
    to_stop=st.lists(st.integers(0, 7), min_size=4, max_size=4),
    capacity=st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.3, 2.0]), min_size=4, max_size=4),
    quota=st.integers(1, 12),
    floor_share=st.floats(0.0, 1.0),
)
def test_stops_counted_per_key_are_the_stops_taken_one_at_a_time(
    desired: list[int], not_ready: list[int], to_stop: list[int], capacity: list[float], quota: int, floor_share: float
) -> None:
    from gridshift.planner.migration import _capacity, _stoppable

    now_desired = dict(zip(STOP_KEYS, desired, strict=True))
    now_ready = {k: max(0, n - r) for (k, n), r in zip(now_desired.items(), not_ready, strict=True)}
    per_replica = dict(zip(STOP_KEYS, capacity, strict=True))
    order = sorted(STOP_KEYS, key=lambda k: (per_replica[k], k))
    removes = {k: min(n, now_desired[k]) for k, n in zip(order, to_stop, strict=True) if min(n, now_desired[k])}
    floor = floor_share * _capacity(now_ready, per_replica)
    expected = _stoppable_one_at_a_time(
        [k for k, n in removes.items() for _ in range(n)], quota, now_desired, now_ready, per_replica, floor
    )
    got = _stoppable(dict(removes), quota, now_desired, now_ready, per_replica, floor)
    assert got == {k: expected.count(k) for k in dict.fromkeys(expected)}


def test_growth_beside_a_move_starts_in_the_first_batch() -> None:
    # Found in review: {a: 4, b: 1} -> {a: 4, c: 6} with one move at a time started c's six one batch after
    # another, six cold starts in a row, as if each were a move; five are growth, one replaces b.
    one = {A: 1.0, B: 1.0, C: 1.0}
    steps = check({A: 4, B: 1}, {A: 4, B: 1}, {A: 4, C: 6}, one, 10.0, 1)
    assert brief(steps) == [
        (0, "ScaleUp", "c", "l40s", 6),
        (1, "WaitReady", "c", "l40s", 6),
        (2, "ShiftRouting", "*", "*", 10, {"a": 40, "c": 60}),
        (3, "ScaleDown", "b", "h100", 0),
    ]
    # Two moves beside one replica of growth: the first batch starts three and stops one (one move per batch).
    steps = check({B: 2}, {B: 2}, {A: 3}, one, 3.0, 1)
    assert [(str(s.action), s.replicas) for s in steps if s.action != StepAction.SHIFT_ROUTING] == [
        ("ScaleUp", 2),
        ("WaitReady", 2),
        ("ScaleDown", 1),
        ("ScaleUp", 3),
        ("WaitReady", 3),
        ("ScaleDown", 0),
    ]
