"""The redaction net under every log source: installed by the shell before any Secret is read, it
removes each secret value a resolver handed out from every log record, whatever logger made it."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import kopf
import pytest

from gridshift import redaction
from gridshift.api.common import SecretKeyRef
from gridshift.service.wiring import HubSecretResolver
from gridshift.shell import handlers
from gridshift.signals.feed_service import FEED_TOKEN_PURPOSE, MappingSecretResolver
from gridshift.signals.http import _QUERY_FILTER


@pytest.fixture
def kopf_output() -> Iterator[io.StringIO]:
    """Logging as `kopf run --debug` configures it, its output captured, the net installed."""
    root = logging.getLogger()
    handlers_before, level = root.handlers[:], root.level
    kopf.configure(debug=True)
    (kopf_handler,) = [h for h in root.handlers if h not in handlers_before]
    assert isinstance(kopf_handler, logging.StreamHandler)
    stream = io.StringIO()
    kopf_handler.setStream(stream)
    redaction.install_log_redaction()
    try:
        yield stream
    finally:
        redaction.uninstall_log_redaction()
        root.handlers[:] = handlers_before
        root.setLevel(level)


class PurposeHub:
    """The hub's read_secret with the purpose keyword (issue 15's hub side), from a dict."""

    def __init__(self, values: dict[tuple[str, str, str], str]) -> None:
        self.values = values
        self.asked: list[tuple[str, str, str, str]] = []

    def read_secret(self, namespace: str, name: str, key: str, purpose: str) -> str:
        self.asked.append((namespace, name, key, purpose))
        return self.values[(namespace, name, key)]


def test_every_record_is_redacted_whatever_its_source(kopf_output: io.StringIO) -> None:
    token = f"planted-{uuid.uuid4()}+/="
    redaction.remember(token)
    log = logging.getLogger("some.library.deep.down")
    log.debug("connecting with %s", token)
    log.info(f"formatted early: {token}")
    log.warning("as a URL: https://example.test/api?securityToken=%s", urllib.parse.quote(token, safe=""))
    log.warning("as Secret data: %s", base64.b64encode(token.encode()).decode())
    try:
        raise ValueError(f"a parser quoting its input: {token!r}")
    except ValueError:
        log.exception("parse failed")
    logging.getLogger("kopf.objects").error("posted as an Event: %s", token)
    out = kopf_output.getvalue()
    assert token not in out
    assert urllib.parse.quote(token, safe="") not in out
    assert base64.b64encode(token.encode()).decode() not in out
    assert out.count(redaction.REDACTED) >= 6, out
    assert "ValueError: a parser quoting its input: '<redacted>'" in out


def test_a_records_stack_is_redacted(kopf_output: io.StringIO) -> None:
    # A mutation survived: a record's stack (stack_info=True: the source lines of every frame, as
    # traceback.format_stack gives them) was written as it was.
    token = f"stacked-{uuid.uuid4()}"
    redaction.remember(token)
    log = logging.getLogger("some.library")
    stack = f'Stack (most recent call last):\n  File "feed.py", line 3, in fetch\n    get(url, token="{token}")'
    log.handle(log.makeRecord(log.name, logging.WARNING, "feed.py", 3, "slow answer", None, None, sinfo=stack))
    log.warning("and the caller's own stack", stack_info=True)  # one without a secret is written whole
    out = kopf_output.getvalue()
    assert token not in out
    assert 'get(url, token="<redacted>")' in out and "slow answer" in out
    assert 'log.warning("and the caller\'s own stack", stack_info=True)' in out


def test_short_values_are_not_remembered() -> None:
    redaction.remember("abc")
    assert redaction.redact("abc appears in many words: abcdef") == "abc appears in many words: abcdef"


def test_resolvers_remember_what_they_hand_out(kopf_output: io.StringIO) -> None:
    from_mapping = f"mapped-{uuid.uuid4()}"
    from_hub = f"hub-{uuid.uuid4()}"
    ref = SecretKeyRef(name="entsoe", key="token")
    mapping = MappingSecretResolver({(None, "entsoe", "token"): from_mapping})
    assert mapping.resolve(ref, FEED_TOKEN_PURPOSE) == from_mapping
    assert mapping.requests == [(ref, FEED_TOKEN_PURPOSE)]
    hub = PurposeHub({("gridshift-system", "entsoe", "token"): from_hub})
    assert HubSecretResolver(hub, "gridshift-system").resolve(ref, FEED_TOKEN_PURPOSE) == from_hub
    assert hub.asked == [("gridshift-system", "entsoe", "token", FEED_TOKEN_PURPOSE)]
    logging.getLogger("gridshift").error("tokens %s and %s", from_mapping, from_hub)
    out = kopf_output.getvalue()
    assert from_mapping not in out and from_hub not in out
    assert "tokens <redacted> and <redacted>" in out


def test_a_hub_failure_reading_a_feed_secret_reaches_the_feed_by_status_only() -> None:
    """The Kubernetes client's ApiException text carries the reply's headers and body; the feed's error
    (which goes to the RegionalCluster's PriceFeedStale condition) says the type and HTTP status only."""
    from kubernetes.client.exceptions import ApiException

    from gridshift.signals.feed_service import feed_secret

    class Reply:
        status, reason = 500, "Internal Server Error"
        data = b'{"kind":"Status","message":"etcdserver: timed out reading /registry/secrets/gs/entsoe-token"}'

        @property
        def headers(self) -> dict[str, str]:
            return {"Audit-Id": "0c7e"}

        def getheaders(self) -> dict[str, str]:
            return self.headers

    class FailingHub:
        def read_secret(self, *args: object) -> str:
            raise ApiException(http_resp=Reply())

    resolver = HubSecretResolver(FailingHub(), "gridshift-system")  # type: ignore[arg-type]
    with pytest.raises(Exception) as caught:
        feed_secret(resolver, SecretKeyRef(name="entsoe-token", key="token"), "eu-de", "entsoe.tokenSecretRef")
    assert str(caught.value) == (
        "price feed 'eu-de': entsoe.tokenSecretRef: cannot read the Secret: "
        "Secret gridshift-system/entsoe-token: ApiException: HTTP 500 Internal Server Error"
    )


def test_start_installs_both_guards_before_building_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bool, bool]] = []

    def real_service(settings: Any) -> Any:
        seen.append((redaction.log_redaction_installed(), _QUERY_FILTER in logging.getLogger("httpx").filters))
        raise RuntimeError("stop before anything else starts")

    monkeypatch.setattr(handlers, "real_service", real_service)
    logging.getLogger("httpx").removeFilter(_QUERY_FILTER)
    try:
        with pytest.raises(RuntimeError, match="stop before"):
            asyncio.run(handlers.start(settings=kopf.OperatorSettings(), memo=kopf.Memo()))
        assert seen == [(True, True)]
    finally:
        redaction.uninstall_log_redaction()
        logging.getLogger("httpx").addFilter(_QUERY_FILTER)


def test_a_header_tail_shorter_than_a_secret_is_not_remembered() -> None:
    # Self-review, 3 December: every header value with a space had its tail remembered as a secret. Since
    # review (a token after an unknown scheme leaked), a tail is remembered only from MIN_SECRET_LENGTH on.
    token = f"tok-{uuid.uuid4()}"
    redaction.remember_header(f"Bearer {token}")
    redaction.remember_header("text/html; charset=utf-8")
    assert (
        redaction.redact(f"refused {token}; text/plain; charset=utf-8")
        == "refused <redacted>; text/plain; charset=utf-8"
    )
