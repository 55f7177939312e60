"""The body of a feed's answer: decoded here, under the size cap, one content coding at most.

A real HTTP server on localhost (tests/signals/conftest.py) answers; `get_body` is what every HTTP feed
(ENTSO-E, httpJson, carbon feeds) and the Prometheus client (through HttpxAdapter) read with."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import httpx
import pytest

from gridshift import redaction
from gridshift.signals.http import get_body
from gridshift.signals.prices import PriceFetchError
from tests.signals.conftest import LocalServer, Reply

CAP = 4 * 1024 * 1024
DOCUMENT = b'{"prices": [' + b",".join(b'{"price": 41.5}' for _ in range(2000)) + b"]}"


def fetch(server: LocalServer) -> bytes:
    with httpx.Client() as http:
        return get_body(http, "feed", server.url, timeout_seconds=10, max_body_bytes=CAP)[1]


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        # Raw deflate, no zlib header: some servers send it so, and httpx read it (self-review).
        ("deflate", lambda body: zlib.compress(body)[2:-4]),
        ("identity", lambda body: body),
    ],
)
def test_an_answer_in_an_accepted_coding_is_decoded(local_server: LocalServer, coding: str, encode: object) -> None:
    assert callable(encode)
    local_server.answer(Reply(body=encode(DOCUMENT), headers={"Content-Encoding": coding}))
    assert fetch(local_server) == DOCUMENT
    assert local_server.requests[-1].headers.get("accept-encoding") == "gzip, deflate"


def test_a_body_compressed_twice_is_refused_before_it_is_inflated(local_server: LocalServer) -> None:
    # Found in review: httpx inflated every layer of a whole socket read before the cap was checked: 590 bytes
    # gzipped twice held 559 MiB against a cap of 4 MiB (the chart's memory limit is 512 MiB to 1 GiB).
    body = gzip.compress(gzip.compress(b"\0" * (256 * 1024 * 1024), 9), 9)
    assert len(body) < 64 * 1024
    local_server.answer(Reply(body=body, headers={"Content-Encoding": "gzip, gzip"}))
    tracemalloc.start()
    try:
        with pytest.raises(PriceFetchError, match="Content-Encoding 'gzip, gzip' was not asked for"):
            fetch(local_server)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024, f"{peak / 2**20:.0f} MiB"


def test_a_gzip_bomb_is_stopped_at_the_cap_not_after_a_whole_read(local_server: LocalServer) -> None:
    body = gzip.compress(b"\0" * (512 * 1024 * 1024), 9)  # about 500 KiB on the wire, a few socket reads
    local_server.answer(Reply(body=body, headers={"Content-Encoding": "gzip"}))
    tracemalloc.start()
    try:
        with pytest.raises(PriceFetchError, match=f"body larger than {CAP} bytes"):
            fetch(local_server)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * CAP, f"{peak / 2**20:.0f} MiB"


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ({"Content-Encoding": "br"}, b"\x1b\x00", "Content-Encoding 'br' was not asked for"),
        ({"Content-Encoding": "gzip"}, b"not gzip at all", "the body is not valid gzip"),
    ],
)
def test_a_body_that_does_not_decode_is_named_and_not_retried(
    local_server: LocalServer, headers: dict[str, str], body: bytes, message: str
) -> None:
    local_server.answer(Reply(body=body, headers=headers))
    with pytest.raises(PriceFetchError, match=message) as refused:
        fetch(local_server)
    assert (refused.value.feed, refused.value.field, refused.value.retryable) == ("feed", "http.body", False)


def test_a_credential_echoed_into_the_content_encoding_leaves_no_part_of_it(local_server: LocalServer) -> None:
    # Self-review: the header was lower-cased and cut to 40 characters before the error redacted it, so the
    # token's first characters, or all of it in lower case, reached the feed's condition.
    token = "Feed-Token-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    redaction.remember(token)
    for header in (f"gzip, {'x' * 20}{token}", f"br, {token}"):
        local_server.answer(Reply(body=b"{}", headers={"Content-Encoding": header}))
        with pytest.raises(PriceFetchError, match="was not asked for") as refused:
            fetch(local_server)
        text = str(refused.value)
        assert token[:8] not in text and token.lower()[:8] not in text, text
