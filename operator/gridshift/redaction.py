"""Secret values this process has handed out, and their removal from log records and error texts.

Credentials are kept out of logs at the source (no URL with a token is formatted, no Secret is
printed); this is the net under that. Whoever resolves a secret for use (a price feed's token or
header, a member kubeconfig's credential) calls `remember(value)`; from then on `redact(text)`
replaces the value, and its URL- and base64-encoded and escaped forms, with `<redacted>`. The shell calls
`install_log_redaction()` once at start-up: every log record created afterwards, by any logger and
for any handler (kopf's, Events posted from logs, tests' captures), has its message, exception text
and stack redacted before a handler sees it.

Values shorter than `MIN_SECRET_LENGTH` are not remembered: redacting every "abc" in the log would
garble it, and a credential that short is not one.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import urllib.parse
from collections.abc import Callable
from typing import Any, NoReturn

import httpx

REDACTED = "<redacted>"
MIN_SECRET_LENGTH = 8

_lock = threading.Lock()
_values: frozenset[str] = frozenset()
_previous_factory: Callable[..., logging.LogRecord] | None = None
"""The record factory in place before install_log_redaction(); None while not installed."""


def _forms(value: str) -> set[str]:
    """The value as it may appear in text: plain, URL-encoded (query strings), base64 (Secret data), and
    escaped as a quoted string shows it, in Python's repr (error messages quote values so) and in JSON (review:
    a password with a backslash, doubled by repr, was quoted whole in a feed's error)."""
    forms = {value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}
    forms.add(base64.b64encode(value.encode()).decode())
    escaped = value.encode("unicode_escape").decode("ascii")
    # repr picks its quote by the whole string it shows: a secret inside a longer text may have either escaped.
    forms |= {repr(value)[1:-1], escaped, escaped.replace("'", "\\'"), escaped.replace('"', '\\"')}
    forms |= {value.replace("\\", "\\\\").replace("'", "\\'"), value.replace("\\", "\\\\").replace('"', '\\"')}
    forms |= {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def remember(value: str) -> None:
    """Redact `value` (and its encoded forms) from every text passed to `redact` from now on."""
    global _values
    value = value.strip()
    if len(value) < MIN_SECRET_LENGTH:
        return
    with _lock:
        _values = frozenset(_values | _forms(value))


AUTH_SCHEMES = frozenset({"basic", "bearer", "token", "apikey", "api-key", "key", "digest", "negotiate"})
"""HTTP authentication schemes whose value is "<scheme> <credentials>" (RFC 9110 11.4 and common API keys)."""


def remember_header(value: str) -> None:
    """Remember an HTTP header value and the credentials inside it: "Bearer <token>" is redacted whole,
    and so is the token alone, which a server may echo in a body that an error message quotes. A Basic
    value's decoded "user:password" and its password are remembered too.

    Whatever the scheme, every part of the value between spaces, commas, semicolons (a cookie's
    "k=v; k2=v2") and a key's '=' is remembered too (quotes stripped) when it is at least MIN_SECRET_LENGTH
    characters: "SSWS <token>", "Token token=<token>", "ApiKey-v2 <token>", 'Token token="<token>",
    coverage="base"'. A part ending in base64 padding is
    remembered with and without its '='s (a server may quote either). Found in review: the tail was remembered
    after a known scheme (AUTH_SCHEMES) only, and then only the last part after a space or '=': a padded token
    ("SSWS abc...XVg=") left the empty string after its '=', and 'Token token="<token>", coverage="base"' left
    "base", so the token echoed in a body reached a feed's error whole. A short part such as "utf-8" is still
    not remembered (MIN_SECRET_LENGTH); a longer one that is no secret costs only a redacted word in a log,
    while a missed token is a leak."""
    remember(value)
    for piece in re.split(r"[\s,;]+", value):
        # key=value: the value, not "charset=utf-8" whole; a '=' that ends a piece is base64 padding, no key's.
        key_value = re.fullmatch(r"[^=\"']+=([^=].*)", piece)
        for part in (key_value[1],) if key_value else (piece,):
            part = part.strip("\"'")
            for form in (part, part.rstrip("=")):
                if len(form) >= MIN_SECRET_LENGTH:
                    remember(form)
    scheme, _, credentials = value.strip().partition(" ")
    credentials = credentials.strip()
    if not credentials or scheme.lower() not in AUTH_SCHEMES:
        return
    remember(credentials)
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return
        remember(decoded)
        remember(decoded.partition(":")[2])


class Secret:
    """A credential an adapter holds for later use (a password it logs in with again): its value only through
    `reveal()`, never in repr, str, vars() or a pickle. Remembered for redaction when made.

    Found in review: the WattTime feed kept its whole Basic header in an attribute for its life, readable in
    vars(feed) by whatever dumps an object's state (a debugger, a traceback printed with its locals)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        remember(value)
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret is not pickled or copied")


def redact(text: str) -> str:
    """`text` with every remembered secret value replaced by `<redacted>`."""
    values = _values
    if not values:
        return text
    for value in sorted(values, key=len, reverse=True):  # longest first: a value holding another goes whole
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def excerpt(text: str, limit: int, *, marker: str = "") -> str:
    """`text` redacted, then cut to `limit` characters, the last of them `marker` where it is cut. Cut first,
    the part of a remembered secret left would no longer be recognised (review: an echoed token's first 20
    characters reached a feed's error)."""
    text = redact(text)
    return text if len(text) <= limit else f"{text[: limit - len(marker)]}{marker}"


def contains_secret(text: str) -> bool:
    values = _values
    return any(value in text for value in values)


_formatter = logging.Formatter()


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """The record with remembered secrets removed from its message, exception text and stack."""
    if not _values:
        return record
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it at emit time, with the raw message
        message = str(record.msg)
    if contains_secret(message):
        record.msg, record.args = redact(message), None
    if record.exc_info and record.exc_text is None:
        text = _formatter.formatException(record.exc_info)
        if contains_secret(text):
            # Formatters reuse exc_text when set, so the traceback is never formatted from the live exception.
            record.exc_text = redact(text)
    elif record.exc_text and contains_secret(record.exc_text):
        record.exc_text = redact(record.exc_text)
    if record.stack_info and contains_secret(record.stack_info):
        record.stack_info = redact(record.stack_info)
    return record


def install_log_redaction() -> None:
    """Pass every log record created from now on through `redact_record` (idempotent).

    A record factory rather than a handler filter: it covers every logger, propagated records, and
    handlers added later (kopf configures its own), which a filter on the root logger does not.
    """
    global _previous_factory
    with _lock:
        if _previous_factory is not None:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return redact_record(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        _previous_factory = previous


def log_redaction_installed() -> bool:
    return _previous_factory is not None


def uninstall_log_redaction() -> None:
    """Restore the record factory found by install_log_redaction() (tests)."""
    global _previous_factory
    with _lock:
        if _previous_factory is not None:
            logging.setLogRecordFactory(_previous_factory)
            _previous_factory = None


def display_url(url: str | httpx.URL) -> str:
    """`url` as logs and error messages may show it: without its query string (which may hold a token),
    without user:password@ (admission refuses those in feed URLs; this keeps any other out) and without its
    `#fragment` (never sent to the server, so nothing a reader needs; review, 6 December 2026: a
    `#token=...` was shown whole)."""
    if isinstance(url, str):
        try:
            url = httpx.URL(url)
        except httpx.InvalidURL:
            return "<unparsable URL omitted>"
    if url.userinfo:
        url = url.copy_with(userinfo=b"REDACTED")
    if url.fragment:
        url = url.copy_with(fragment=None)
    return f"{url.copy_with(query=None)}?<query omitted>" if url.query else str(url)
