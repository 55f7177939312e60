"""One field of a feed's answer (JSON, XML or CSV) read as a time, a number or JSON: each error names the
feed and the field, in the error class of the feed's measure (signals.prices.PriceDataError by default,
signals.carbon.CarbonDataError for carbon feeds). One copy for every feed.

A number written as text is read by the one strict reading every reader of outside text shares
(gridshift.numerals.plain_number); finite_number says what it refused, naming the feed and the field."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, tzinfo
from typing import Any

from gridshift import redaction
from gridshift.numerals import plain_number
from gridshift.signals.prices import PriceDataError
from gridshift.signals.series import FeedErrorType


def json_body(feed: str, body: bytes, error: FeedErrorType = PriceDataError) -> Any:
    """The answer's JSON document; the error naming `http.body` when it is not JSON."""
    try:
        return json.loads(body)
    except ValueError as failure:
        raise error(feed, "http.body", f"not JSON ({failure}); truncated?") from None
    except RecursionError:
        # Found in review: 100 KB of "[" escaped every feed's error type (the body limit is 4 MiB).
        raise error(feed, "http.body", "not JSON a feed sends: arrays or objects nested too deeply") from None


EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2900, 1, 1, tzinfo=UTC)
"""Times a feed's answer or a recording may name: no electricity market or grid has data outside them, and
with a recording's offsetDays (at most 100 years) and its rows' lengths, every interval read from them stays
within what datetime can hold. Found in review: year 1 and year 9999 were OverflowError tracebacks."""


def utc_within_range(
    feed: str, field: str, parsed: datetime, shown: str, error: FeedErrorType = PriceDataError, zone: tzinfo = UTC
) -> datetime:
    """`parsed` (naive: local time of `zone`) in UTC, refused with the field named outside EARLIEST..LATEST."""
    try:
        moment = (parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)).astimezone(UTC)
    except OverflowError:
        moment = None
    if moment is None or not EARLIEST <= moment < LATEST:
        raise error(feed, field, f"{shown} is outside the years {EARLIEST.year}-{LATEST.year - 1}")
    return moment


def iso_time(feed: str, field: str, value: object, error: FeedErrorType = PriceDataError) -> datetime:
    """An ISO 8601 time with a UTC offset (or Z), in UTC; a time without an offset is refused."""
    if not isinstance(value, str):
        raise error(feed, field, f"expected an ISO 8601 string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise error(feed, field, f"not an ISO 8601 time: {_shown(value)}") from None
    if parsed.tzinfo is None:
        raise error(feed, field, f"time without a UTC offset: {_shown(value)}")
    return utc_within_range(feed, field, parsed, _shown(value), error)


def _shown(value: object) -> str:
    """A value for an error message, cut short (a hostile body may hold a 400-digit number)."""
    return redaction.excerpt(repr(value), 40, marker="...")


def finite_number(feed: str, field: str, value: object, error: FeedErrorType = PriceDataError) -> float:
    """A finite number, given as a JSON number or as a string plain_number reads (never a boolean, NaN or
    infinity, nor "1_000", " 12 " or non-ASCII digits, which Python's float() reads)."""
    if isinstance(value, str):
        try:
            return plain_number(value)
        except ValueError as reason:
            raise error(feed, field, f"{reason}: {_shown(value)}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error(feed, field, f"not a number: {_shown(value)}")
    try:
        number = float(value)
    except (ValueError, OverflowError):  # an int of 400 digits does not fit a float
        raise error(feed, field, f"not a number: {_shown(value)}") from None
    if not math.isfinite(number):
        raise error(feed, field, f"not a finite number: {_shown(value)}")
    return number
