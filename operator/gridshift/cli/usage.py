"""What every subcommand reports a bad flag value or input file with: `UsageError`, and argparse types.

Its own module, not `gridshift.cli.main`: run as `python -m gridshift.cli.main`, main is `__main__`,
and a UsageError imported from `gridshift.cli.main` was another class than the one main() catches
(every usage error became a traceback).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable


class UsageError(Exception):
    """A bad flag value or input file: printed without a traceback, exit code 2."""


def finite_float(text: str) -> float:
    """argparse type of a float flag: NaN and infinities are refused by name (argparse adds the flag),
    where a bound check alone let NaN through (every comparison with it is false)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def naming_flags(error: ValueError, fields: Iterable[str], renamed: dict[str, str] | None = None) -> UsageError:
    """A settings object's ValueError as a UsageError naming the flag: a message that starts with one of
    `fields` ("cold_start_seconds must be ...") names `--cold-start-seconds` (or `renamed[field]`) instead.
    Found in review: the settings' field names reached users who had typed flags."""
    text = str(error)
    flags = {name: f"--{name.replace('_', '-')}" for name in fields} | (renamed or {})
    for field in sorted(flags, key=len, reverse=True):
        for separator in (" ", ": "):
            if text.startswith(field + separator):
                return UsageError(flags[field] + text[len(field) :])
    return UsageError(text)
