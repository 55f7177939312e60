"""Progress for long commands: rich's bar on a terminal, plain lines on stderr elsewhere.

Found in review: off a terminal (CI, a log, `2> file`) rich's bar draws nothing, so `gridshift simulate`'s
default week (about 2 minutes) printed nothing until it ended. `PlainProgress` offers the part of rich's
`Progress` the commands use (`add_task`, `update`, `tasks[i].total`, a context manager) and writes a line
when a stage is first named and at each further tenth of the work.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO


@dataclass
class PlainTask:
    description: str
    total: float
    completed: float = 0.0


class PlainProgress:
    """Lines such as `simulate: 40% greedy (owned), 0:51 elapsed` on `stream` (stderr unless told): one when
    a stage's description is first seen and one each time the work done passes another `step` percent."""

    def __init__(
        self,
        command: str,
        stream: TextIO | None = None,
        step: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.command, self.step, self.clock = command, step, clock
        self.stream = stream
        self.tasks: list[PlainTask] = []
        self._seen: set[str] = set()
        self._marks = 0
        self._started = clock()

    def __enter__(self) -> PlainProgress:
        self._started = self.clock()
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        self.tasks.append(PlainTask(description, float(total or 0)))
        return len(self.tasks) - 1

    def update(
        self,
        task: int,
        *,
        advance: float = 0.0,
        description: str | None = None,
        total: float | None = None,
        **_: Any,
    ) -> None:
        state = self.tasks[task]
        if total is not None:
            state.total = float(total)
            # A larger total lowers the share done: count the tenths from where it now is, not past it.
            self._marks = min(self._marks, self._tenths(state))
        state.completed += advance
        new_stage = description is not None and description not in self._seen
        if description is not None:
            state.description = description
            self._seen.add(description)
        tenths = self._tenths(state)
        if new_stage or tenths > self._marks:
            self._marks = max(self._marks, tenths)
            self._line(state)

    def _tenths(self, state: PlainTask) -> int:
        return int(self._percent(state) // self.step) if self.step > 0 else 0

    @staticmethod
    def _percent(state: PlainTask) -> float:
        return min(100.0, 100.0 * state.completed / state.total) if state.total > 0 else 0.0

    def _line(self, state: PlainTask) -> None:
        elapsed = int(self.clock() - self._started)
        stream = self.stream if self.stream is not None else sys.stderr
        print(
            f"{self.command}: {self._percent(state):3.0f}% {state.description}, "
            f"{elapsed // 60}:{elapsed % 60:02d} elapsed",
            file=stream,
            flush=True,
        )
