"""What every subcommand reports a bad flag value or input file with: `UsageError`, and argparse types.

Its own module, not `gridshift.cli.main`: run as `python -m gridshift.cli.main`, main is `__main__`,
and a UsageError imported from `gridshift.cli.main` was another class than the one main() catches
(every usage error became a traceback).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from gridshift.numerals import NotFinite, plain_integer, plain_number, shown


class UsageError(Exception):
    """A bad flag value or input file: printed without a traceback, exit code 2."""


def finite_float(text: str) -> float:
    """argparse type of a float flag, read as `numerals.plain_number` reads a feed's number: NaN, infinities and
    1e999 are refused by name (argparse adds the flag), where a bound check alone let NaN through (every
    comparison with it is false); "1_0.5", "１２" and " 12 " are no number, where float() read them (found in
    review). Spaces around the value are refused, not stripped: a flag's value is one word the user typed, with
    no layout to strip (unlike a CSV cell or an item of a comma-separated list), and numerals is strict."""
    try:
        return plain_number(text)
    except NotFinite:
        raise argparse.ArgumentTypeError(f"not a finite number: {shown(text)}") from None
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {shown(text)}") from None


def plain_int(text: str) -> int:
    """argparse type of an integer flag, read as `numerals.plain_integer` reads a count: an optional sign and
    ASCII digits only, where int() read "1_000", "１２", "١٢" and " 12" (found in review: `--deployments 1_000`
    was read silently). Spaces refused as in `finite_float`. argparse names the flag: "argument --seeds: not an
    integer: '1_0'"; the value is quoted by its first characters where long (`numerals.shown`)."""
    try:
        return plain_integer(text)
    except ValueError as error:  # "not an integer", or "more than 4,300 digits"
        raise argparse.ArgumentTypeError(f"{error}: {shown(text)}") from None


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
