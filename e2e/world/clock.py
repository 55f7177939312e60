"""The world clock: simulated UTC time that runs `speed` times faster than the wall clock.

Every part of the world (fleet, exporters, price server, fault timers) reads this one clock, so
a simulated hour is the same hour everywhere. Changing the speed keeps simulated time continuous.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class ClockReading:
    """One reading of the clock."""

    sim_time: datetime
    """Simulated UTC time."""
    speed: float
    """Simulated seconds per real second."""

    def as_json(self) -> dict[str, object]:
        return {"sim_time": self.sim_time.isoformat().replace("+00:00", "Z"), "speed": self.speed}


class WorldClock:
    """Simulated time = start + speed x (real seconds since the last speed change), thread-safe."""

    def __init__(self, start: datetime, speed: float, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        if start.tzinfo is None:
            raise ValueError("clock start: a timezone-aware UTC datetime is required")
        _check_speed(speed)
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._anchor_sim = start.astimezone(UTC)
        self._anchor_real = monotonic()
        self._speed = speed

    @property
    def speed(self) -> float:
        with self._lock:
            return self._speed

    def now(self) -> datetime:
        return self.read().sim_time

    def read(self) -> ClockReading:
        with self._lock:
            elapsed = (self._monotonic() - self._anchor_real) * self._speed
            return ClockReading(self._anchor_sim + timedelta(seconds=elapsed), self._speed)

    def set_speed(self, speed: float) -> ClockReading:
        """Changes the speed from now on; simulated time does not jump."""
        _check_speed(speed)
        with self._lock:
            real_now = self._monotonic()
            self._anchor_sim += timedelta(seconds=(real_now - self._anchor_real) * self._speed)
            self._anchor_real = real_now
            self._speed = speed
            return ClockReading(self._anchor_sim, speed)

    def real_seconds_for(self, sim_seconds: float) -> float:
        """Wall-clock seconds that `sim_seconds` of simulated time take at the current speed."""
        return sim_seconds / self.speed


def _check_speed(speed: float) -> None:
    if not (0 < speed <= 100_000):
        raise ValueError(f"clock speed: must be in (0, 100000] simulated seconds per real second, got {speed}")
