"""Keeping stdout for a command's own output when a C library writes to it.

HiGHS (C++, through highspy) prints a banner on file descriptor 1 the first time a process creates a
solver; `--json` output must stay parseable. Python's `contextlib.redirect_stdout` only swaps
`sys.stdout`, so the descriptor itself is pointed at stderr for the duration.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """File descriptor 1 goes to stderr inside the block (child processes started there inherit it)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
