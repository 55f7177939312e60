"""The world clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from e2e.world.clock import WorldClock

START = datetime(2024, 6, 3, tzinfo=UTC)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_runs_speed_times_faster_and_keeps_time_across_speed_changes() -> None:
    real = FakeMonotonic()
    clock = WorldClock(START, 360.0, monotonic=real)
    real.now += 10
    assert clock.now() == START + timedelta(hours=1)
    clock.set_speed(36.0)
    assert clock.now() == START + timedelta(hours=1)
    real.now += 100
    assert clock.now() == START + timedelta(hours=2)
    assert clock.read().as_json() == {"sim_time": "2024-06-03T02:00:00Z", "speed": 36.0}


@pytest.mark.parametrize("speed", [0.0, -1.0, 1e9])
def test_bad_speed_is_named(speed: float) -> None:
    with pytest.raises(ValueError, match="clock speed"):
        WorldClock(START, speed)


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="clock start"):
        WorldClock(datetime(2024, 6, 3), 1.0)
