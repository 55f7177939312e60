"""Make-before-break steps: replayed step by step, Ready capacity never drops below what demand needs."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gridshift.planner.migration import StepAction, migration_steps, routing_weights

KEYS = [("a", "h100"), ("b", "h100"), ("b", "a100"), ("c", "l40s")]
CAPACITY = {("a", "h100"): 10.0, ("b", "h100"): 10.0, ("b", "a100"): 6.0, ("c", "l40s"): 3.0}


def replay(desired: dict[Any, int], ready: dict[Any, int], steps: Any) -> list[float]:
    """Ready capacity after every step, as the shell would see it."""
    desired, ready = dict(desired), {k: min(ready.get(k, 0), desired.get(k, 0)) for k in desired}
    capacities = []
    for step in steps:
        key = (step.cluster, step.gpu_type)
        if step.action == StepAction.SCALE_UP:
            assert step.replicas > desired.get(key, 0)
            desired[key] = step.replicas
        elif step.action == StepAction.WAIT_READY:
            assert step.replicas <= desired.get(key, 0)
            ready[key] = step.replicas
        elif step.action == StepAction.SCALE_DOWN:
            assert step.replicas < desired.get(key, 0)
            desired[key] = step.replicas
            ready[key] = min(ready.get(key, 0), step.replicas)
        else:
            assert sum(w.weight for w in step.routing) in (0, 100)
        capacities.append(sum(n * CAPACITY[k] for k, n in ready.items()))
    return capacities


counts = st.fixed_dictionaries({k: st.integers(0, 4) for k in KEYS})


@settings(max_examples=50, deadline=None)
@given(desired=counts, target=counts, not_ready=counts, needed=st.floats(0, 60), moves=st.integers(0, 3))
def test_ready_capacity_never_drops_below_the_need(
    desired: dict[Any, int], target: dict[Any, int], not_ready: dict[Any, int], needed: float, moves: int
) -> None:
    ready = {k: max(0, desired[k] - not_ready[k]) for k in KEYS}
    steps = migration_steps(desired, ready, target, CAPACITY, needed, moves)
    floor = min(needed, sum(ready[k] * CAPACITY[k] for k in KEYS), sum(target[k] * CAPACITY[k] for k in KEYS))
    for capacity in replay(desired, ready, steps):
        assert capacity >= floor - 1e-9
    # The steps end at the target.
    final = dict(desired)
    for step in steps:
        if step.action in (StepAction.SCALE_UP, StepAction.SCALE_DOWN):
            final[(step.cluster, step.gpu_type)] = step.replicas
    assert final == target
    # Routing is shifted before every scale-down.
    for index, step in enumerate(steps):
        if step.action == StepAction.SCALE_DOWN:
            assert any(s.action == StepAction.SHIFT_ROUTING for s in steps[:index])


def test_moves_go_in_batches_of_max_concurrent_moves() -> None:
    steps = migration_steps({("b", "h100"): 3}, {("b", "h100"): 3}, {("a", "h100"): 3}, CAPACITY, 25.0, 1)
    ups = [s.replicas for s in steps if s.action == StepAction.SCALE_UP]
    downs = [s.replicas for s in steps if s.action == StepAction.SCALE_DOWN]
    assert ups == [1, 2, 3]
    assert downs == [2, 1, 0]


def test_swapping_a_big_replica_for_small_ones_waits_for_enough_capacity() -> None:
    # One 10-token replica becomes four 3-token ones; with a need of 10, the big one goes last.
    steps = migration_steps({("a", "h100"): 1}, {("a", "h100"): 1}, {("c", "l40s"): 4}, CAPACITY, 10.0, 1)
    actions = [(s.action, s.cluster) for s in steps]
    down = actions.index((StepAction.SCALE_DOWN, "a"))
    assert sum(1 for a, c in actions[:down] if a == StepAction.WAIT_READY and c == "c") == 4


def test_no_change_means_no_steps() -> None:
    assert migration_steps({("a", "h100"): 2}, {("a", "h100"): 2}, {("a", "h100"): 2}, CAPACITY, 5.0, 1) == ()


@settings(max_examples=50, deadline=None)
@given(replicas=counts)
def test_routing_weights_sum_to_100_in_proportion(replicas: dict[Any, int]) -> None:
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
