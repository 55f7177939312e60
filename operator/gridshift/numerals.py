"""The one strict reading of a number written as text (plain_number, plain_integer), for every reader of text
from outside: feeds' answers (signals), the simulator's traces (simulation), request traces (profiling) and
power traces (nvml).

Python's float() and int() read more than any feed or file writes: "1_000" (as 1000), " 12 " (spaces and
newlines stripped), "１２" and "١٢" (any Unicode decimal digits), "nan", "inf", "1e999" (as inf). A price, a
power or a count written so is a mistake or a forgery, never a value to read: only ASCII digits, an optional
sign, fraction and exponent pass. A caller that reads a CSV cell strips it first (spaces are the file's layout);
the caller names the file, feed or field in its own error, quoting the value as `shown` cuts it (the one cut of
a long value for an error message about a file or flag; a feed's answer is quoted by signals.fields, which
redacts remembered secrets first). Below every other module (with `csv_rows`): the adapters that read numbers
may not import each other.
"""

from __future__ import annotations

import math
import re
import sys

_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_PLAIN_INTEGER = re.compile(r"[+-]?[0-9]+")
_NOT_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
# [0-9], not \d, which matches every Unicode digit; fullmatch, as $ allows a "\n".


class NotFinite(ValueError):
    """plain_number's refusal of NaN or an infinity however spelled, or of a number too large for a float:
    its message is "not a finite number"."""


class TooLarge(NotFinite):
    """plain_number's refusal of a number written plainly but beyond any float ("1e400", 401 digits, either
    sign): "not a finite number" too, but a caller bounding the value may rather say it is too large."""


def plain_number(text: str) -> float:
    """`text` as a finite float when it is written plainly ("60.56", "-5", "+.5", "1e3"), as float() reads it;
    NotFinite "not a finite number" for NaN or an infinity however spelled, TooLarge (a NotFinite) for a plain
    number that overflows (1e999), ValueError "not a number" for anything else float() reads."""
    if _PLAIN_NUMBER.fullmatch(text) is None:
        if _NOT_FINITE.fullmatch(text):
            raise NotFinite("not a finite number")
        raise ValueError("not a number")
    number = float(text)  # no digit limit for a float's text, unlike int()'s
    if not math.isfinite(number):
        raise TooLarge("not a finite number")
    return number


def plain_integer(text: str) -> int:
    """`text` as an int when it is an optional sign and ASCII digits (at most 4300, Python's own limit);
    ValueError otherwise ("1_0", " 12", "１２", "12.0"; "more than 4,300 digits" in our words, not Python's advice
    to raise its limit, which a reader of the message cannot act on: found in review)."""
    if _PLAIN_INTEGER.fullmatch(text) is None:
        raise ValueError("not an integer")
    try:
        return int(text)
    except ValueError:  # Python's limit on the digits int() converts: 4,300 unless PYTHONINTMAXSTRDIGITS says
        raise ValueError(f"more than {sys.get_int_max_str_digits():,} digits") from None


def shown(value: object) -> str:
    """A value as the caller's error message quotes it, the one place this cut is written for files and flags:
    its repr, or past 40 characters its first 20 and its length (found in review: a 100 kB cell went whole into
    the message). Not for a feed's answer: signals.fields quotes that after redacting remembered secrets. A
    string's length is its own (a cell's characters); any other value's is its repr's, its type named:
    `'xxxxxxxxxxxxxxxxxxx... (100 characters)'`, `[1, 1, 1, 1, 1, 1, 1... (150 characters of list)`."""
    quoted = repr(value)
    if len(quoted) <= 40:
        return quoted
    if isinstance(value, str):
        return f"{quoted[:20]}... ({len(value):,} characters)"
    return f"{quoted[:20]}... ({len(quoted):,} characters of {type(value).__name__})"
