"""`FakeWriteWindow`: the leader Lease's write window as the fakes of the write-making adapters (FakeHub,
FakeMemberCluster) honour it, one rule for both, as gridshift.deadline is one rule for the real adapters."""

from __future__ import annotations

from dataclasses import dataclass, field

from gridshift.deadline import WriteWindow, write_seconds


@dataclass(kw_only=True)
class FakeWriteWindow:
    """Owns a fake's write window: `limit_writes` as the real adapter takes it, and `_window`, asked before each
    write, refusing one with too little time left as the real adapter does and recording the deadline it got.

    Keyword-only fields, so a fake's own fields keep their positions in its constructor.
    """

    honour_write_window: bool = False
    """Ask `write_window` before each write, as the real adapter does (refused under MIN_WRITE_SECONDS). Off by
    default: the service harness hands one fake to every replica it runs, each replica's `limit_writes` replacing
    the last one's, while a real replica has a client of its own; a test of one replica turns it on."""
    write_window: WriteWindow | None = None
    """The last `limit_writes`."""
    write_seconds: list[float] = field(default_factory=list)
    """The deadline each write got from `write_window` (the real adapter's cap; the fake answers at once)."""

    def limit_writes(self, window: WriteWindow) -> None:
        self.write_window = window

    def _writer(self) -> str:
        """Who writes, as the real adapter's refusal names it ('hub', 'cluster <name>')."""
        raise NotImplementedError

    def _window(self, what: str) -> None:
        """Before a write is sent: refused as the real adapter refuses one with too little time left."""
        if self.write_window is None or not self.honour_write_window:
            return
        self.write_seconds.append(write_seconds(self.write_window, f"{self._writer()}: {what}"))
