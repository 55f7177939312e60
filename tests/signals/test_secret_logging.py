"""A feed token never reaches a log record, a formatted log line or an exception text, at the source.

Logging is configured as `kopf run --debug` configures it (the chart runs at INFO; DEBUG shows
everything INFO does and more, httpx's and httpcore's own records included), and the redaction net
of gridshift.redaction is NOT installed here: what is proven is that nothing formats a credential in
the first place. Each fetch outcome is exercised through the real HTTP stack against a local server:
success, HTTP errors with retries, a refused token, a per-operation timeout, a total-deadline
abandon, a refused connection, a background refresh.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import kopf
import pytest

from gridshift import redaction
from gridshift.api.regional_cluster import PriceFeedSpec
from gridshift.signals.feed_service import MappingSecretResolver
from gridshift.signals.http import _QUERY_FILTER
from gridshift.signals.price_service import ManagedPriceFeed, build_price_feed
from gridshift.signals.settings import PriceFeedSettings, RetryPolicy
from tests.signals.conftest import DripServer, LocalServer, Reply
from tests.signals.price_worlds import BE, NOW, RECORDED_HOURLY

SETTINGS = PriceFeedSettings(
    http_timeout_seconds=0.5,
    fetch_deadline_seconds=1.5,
    first_read_wait_seconds=5.0,
    retry=RetryPolicy(max_attempts=2, initial_backoff_seconds=0.0),
)


@dataclass
class Captured:
    records: list[logging.LogRecord] = field(default_factory=list)
    stream: io.StringIO = field(default_factory=io.StringIO)
    exceptions: list[BaseException] = field(default_factory=list)

    def texts(self) -> Iterator[tuple[str, str]]:
        """(where, text) for every record's message and traceback, the formatted log and every exception."""
        formatter = logging.Formatter()
        for record in self.records:
            yield f"{record.name} record", record.getMessage()
            if record.exc_info:
                yield f"{record.name} exception", formatter.formatException(record.exc_info)
        yield "kopf's log output", self.stream.getvalue()
        for error in self.exceptions:
            yield f"exception {type(error).__name__}", "".join(traceback.format_exception(error))


@pytest.fixture
def kopf_debug_logging() -> Iterator[Captured]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    assert not redaction.log_redaction_installed(), "this suite proves the source fix: the net must be off"
    kopf.configure(debug=True)
    captured = Captured()
    (kopf_handler,) = [h for h in root.handlers if h not in handlers]
    assert isinstance(kopf_handler, logging.StreamHandler)
    kopf_handler.setStream(captured.stream)

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.records.append(record)

    root.addHandler(Keep(logging.DEBUG))
    try:
        yield captured
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def entsoe_spec(server: LocalServer | DripServer) -> PriceFeedSpec:
    return PriceFeedSpec.model_validate(
        {
            "type": "entsoe",
            "entsoe": {"areaEic": BE, "tokenSecretRef": {"name": "entsoe", "key": "token"}, "endpoint": server.url},
        }
    )


def managed(server: LocalServer | DripServer, token: str, *, background: bool = False) -> ManagedPriceFeed:
    return build_price_feed(
        entsoe_spec(server),
        name="eu-be",
        secrets=MappingSecretResolver({(None, "entsoe", "token"): token}),
        http=httpx.Client(),
        clock=lambda: NOW,
        sleep=None if background else (lambda seconds: None),
        settings=SETTINGS,
        background=background,
    )


def http_json_feed(url: str, authorization: str) -> ManagedPriceFeed:
    """An httpJson feed of `url` (prices under data.prices) sending `authorization` from its header Secret."""
    spec = PriceFeedSpec.model_validate(
        {
            "type": "httpJson",
            "httpJson": {"url": url, "itemsPath": "data.prices", "headersSecretRef": {"name": "h", "key": "k"}},
        }
    )
    return build_price_feed(
        spec,
        name="x",
        secrets=MappingSecretResolver({(None, "h", "k"): json.dumps({"Authorization": authorization})}),
        http=httpx.Client(),
        clock=lambda: NOW,
        sleep=lambda seconds: None,
        settings=SETTINGS,
    )


def assert_token_absent(captured: Captured, token: str) -> None:
    texts = list(captured.texts())
    leaks = [where for where, text in texts if token in text]
    assert not leaks, f"the token appears in: {leaks}"


def test_the_token_reaches_the_server_and_no_log_line(kopf_debug_logging: Captured, local_server: LocalServer) -> None:
    token = f"planted-{uuid.uuid4()}"
    local_server.answer(Reply(body=RECORDED_HOURLY.read_bytes(), content_type="application/xml"))
    reading = managed(local_server, token).read()
    assert reading.usable
    assert local_server.requests[0].params["securityToken"] == token  # it was really sent
    # httpx logged the request (so the test sees its log line), without the query string.
    http_lines = [r.getMessage() for r in kopf_debug_logging.records if r.name == "httpx"]
    assert http_lines and all("?<query omitted>" in line for line in http_lines), http_lines
    assert "HTTP Request: GET" in kopf_debug_logging.stream.getvalue()
    assert_token_absent(kopf_debug_logging, token)


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (Reply(status=500, body=b"oops"), "HTTP 500"),
        (Reply(status=401, body=b"Unauthorized"), "HTTP 401"),
        (Reply(status=429, body=b"", headers={"Retry-After": "0"}), "HTTP 429"),
        (Reply(body=RECORDED_HOURLY.read_bytes(), delay_seconds=0.8), "no complete answer within 0.5 s"),
        (Reply(body=b"<truncated", truncate_to=3), "connection closed before the body was complete"),
    ],
    ids=["http-500", "http-401", "http-429", "read-timeout", "truncated"],
)
def test_failed_fetches_name_no_token(
    kopf_debug_logging: Captured, local_server: LocalServer, reply: Reply, words: str
) -> None:
    token = f"planted-{uuid.uuid4()}"
    local_server.answer(reply)
    reading = managed(local_server, token).read()
    assert reading.error is not None and words in str(reading.error)
    kopf_debug_logging.exceptions.append(reading.error)
    # The error is also logged the way the service would log it, with its traceback.
    logging.getLogger("gridshift.test").warning("price feed failed: %s", reading.error, exc_info=reading.error)
    assert_token_absent(kopf_debug_logging, token)


def test_a_refused_connection_names_no_token(kopf_debug_logging: Captured, local_server: LocalServer) -> None:
    token = f"planted-{uuid.uuid4()}"
    local_server.close()
    reading = managed(local_server, token).read()
    assert reading.error is not None and "request failed (ConnectError)" in str(reading.error)
    kopf_debug_logging.exceptions.append(reading.error)
    logging.getLogger("gridshift.test").exception("failed", exc_info=reading.error)
    assert_token_absent(kopf_debug_logging, token)


def test_a_background_refresh_abandoned_at_its_deadline_names_no_token(kopf_debug_logging: Captured) -> None:
    token = f"planted-{uuid.uuid4()}"
    server = DripServer(RECORDED_HOURLY.read_bytes(), interval=0.2)  # every read well within 0.5 s
    try:
        reading = managed(server, token, background=True).read()  # the first read waits for the first refresh
    finally:
        server.close()
    assert reading.error is not None and "total deadline of 1.5 s" in str(reading.error), reading
    kopf_debug_logging.exceptions.append(reading.error)
    assert_token_absent(kopf_debug_logging, token)


def test_a_header_secret_of_an_http_json_feed_is_not_logged(
    kopf_debug_logging: Captured, local_server: LocalServer
) -> None:
    secret = f"Bearer planted-{uuid.uuid4()}"
    local_server.answer(Reply(status=503, body=b"{}"))
    reading = http_json_feed(local_server.url + "/prices?key=abc", secret).read()
    assert local_server.requests[0].headers["authorization"] == secret
    assert reading.error is not None
    kopf_debug_logging.exceptions.append(reading.error)
    assert_token_absent(kopf_debug_logging, secret)
    assert_token_absent(kopf_debug_logging, "key=abc")


@pytest.mark.parametrize(
    ("header", "echoed"),
    [
        ("Bearer {token}", "{token}"),
        ("Basic {basic}", "{password}"),
        ("Basic {basic}", "ops:{password}"),
        # Found in review: after a scheme not in AUTH_SCHEMES only the whole value was remembered.
        ("SSWS {token}", "{token}"),
        ("Token token={token}", "{token}"),
        ("ApiKey-v2 {token}", "{token}"),
        # Found in review: only the last part after a space or '=' was remembered, so base64 padding left '',
        # and a trailing parameter ('coverage="base"') was taken for the token.
        ("SSWS {padded}", "{padded}"),
        ("ApiKey-v2 {padded}", "{unpadded}"),
        ('Token token="{token}", coverage="base"', "{token}"),
        ('Token token="{padded}", coverage="base"', "{padded}"),
        # Found in review: parts were split on spaces and commas only, so a cookie's value kept its ';'.
        ("session={token}; theme=dark", "{token}"),
        ('Token token="{token}";', "{token}"),
    ],
    ids=[
        "bearer-token-alone",
        "basic-password",
        "basic-decoded",
        "ssws",
        "token-equals",
        "apikey-v2",
        "ssws-padded",
        "apikey-v2-padded-echoed-unpadded",
        "token-quoted-then-a-parameter",
        "token-quoted-padded-then-a-parameter",
        "cookie-then-a-parameter",
        "token-quoted-then-a-semicolon",
    ],
)
def test_a_header_credential_echoed_in_a_body_is_not_in_the_feeds_error(
    local_server: LocalServer, header: str, echoed: str
) -> None:
    """A server may quote the credential it refused in a body value; the error that quotes the value
    (and goes to the RegionalCluster's PriceFeedStale condition) carries it redacted."""
    token, password = f"planted-{uuid.uuid4()}", f"pw-{uuid.uuid4()}"
    basic = base64.b64encode(f"ops:{password}".encode()).decode()
    padded = base64.b64encode(uuid.uuid4().bytes + b"x").decode()  # 17 bytes: one '=' of padding
    assert padded.endswith("=")
    value = header.format(token=token, basic=basic, padded=padded)
    quoted = echoed.format(token=token, password=password, padded=padded, unpadded=padded.rstrip("="))
    body = {
        "data": {
            "prices": [
                {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z", "price": f"key {quoted} has no access"}
            ]
        }
    }
    local_server.answer(Reply(body=json.dumps(body).encode()))
    reading = http_json_feed(local_server.url, value).read()
    assert local_server.requests[0].headers["authorization"] == value
    assert reading.error is not None and "not a number" in str(reading.error), reading
    assert quoted not in str(reading.error) and redaction.REDACTED in str(reading.error)


@pytest.mark.parametrize(
    "url",
    [
        httpx.URL("https://user:planted-secret-1@prices.test/api?securityToken=planted-secret-2"),
        "https://user:planted-secret-1@prices.test/api?securityToken=planted-secret-2",
    ],
)
def test_httpx_records_lose_query_strings_and_user_info(url: object) -> None:
    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "HTTP Request: %s %s", ("GET", url), None)
    assert _QUERY_FILTER.filter(record)
    message = record.getMessage()
    assert "planted-secret" not in message and "prices.test/api" in message, message


def test_an_invalid_feed_url_is_a_price_fetch_error_without_the_url() -> None:
    # httpx.InvalidURL is not an httpx.HTTPError: it escaped get_body as a traceback quoting the URL (review).

    from gridshift.signals.http import get_body
    from gridshift.signals.prices import PriceFetchError

    with pytest.raises(PriceFetchError, match="not a valid URL") as refused:
        get_body(
            httpx.Client(), "feed", "https://h:12ab/x?securityToken=S3cr3tTok", timeout_seconds=1, max_body_bytes=1
        )
    assert "S3cr3tTok" not in str(refused.value) and not refused.value.retryable
