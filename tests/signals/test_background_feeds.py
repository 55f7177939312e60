"""Feeds never block the planning cycle: refreshed in the background, each fetch under a total deadline.

A drip-feeding server (one byte a second, every byte well within any per-read timeout) stands for
the endpoint that held one read for 81 s under a 10 s timeout. `read()` must answer at once with the
last good prices while such a fetch is in flight, and the fetch must be abandoned at its deadline,
its connection closed, in every phase (dripped headers too) and on both HTTP stacks (httpx for
ENTSO-E/httpJson, requests for the Prometheus client).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest

from gridshift.api.common import SecretKeyRef
from gridshift.api.regional_cluster import EnergyUnit, PriceFeedSpec, PrometheusPriceFeed
from gridshift.signals.entsoe import EntsoePriceFeed
from gridshift.signals.feed_service import FEED_TOKEN_PURPOSE, MappingSecretResolver
from gridshift.signals.http import fetch_deadline, get_body
from gridshift.signals.price_feeds import PrometheusMetricPriceFeed
from gridshift.signals.price_service import DeferredPriceFeed, ManagedPriceFeed, build_price_feed
from gridshift.signals.prices import PriceDataError, PriceFetchError, PriceSeries
from gridshift.signals.settings import PriceFeedSettings, RetryPolicy
from gridshift.testing import FakePriceFeed
from tests.signals.conftest import DripServer, RecordingSleep
from tests.signals.price_worlds import BE, NOW, RECORDED_HOURLY, TOKEN, prometheus_vector, recorded_intervals

DEADLINE_S = 4.0
SETTINGS = PriceFeedSettings(
    http_timeout_seconds=10.0,  # per operation: a drip never trips it
    fetch_deadline_seconds=DEADLINE_S,
    first_read_wait_seconds=5.0,
    retry=RetryPolicy(max_attempts=1),
)
READ_BOUND_S = 0.25
"""What a read may take while a fetch is in flight (a lock and a dataclass; generous for a loaded machine)."""


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def drip() -> Iterator[DripServer]:
    server = DripServer(RECORDED_HOURLY.read_bytes(), interval=1.0, fast_first=1)
    yield server
    server.close()


def entsoe(server: DripServer, http: httpx.Client | None = None) -> EntsoePriceFeed:
    from gridshift.api.regional_cluster import EntsoeFeed

    spec = EntsoeFeed(area_eic=BE, token_secret_ref=SecretKeyRef(name="entsoe", key="token"), endpoint=server.url)
    return EntsoePriceFeed(
        "eu-be", spec=spec, token=TOKEN, currency="EUR", http=http or httpx.Client(), settings=SETTINGS
    )


def background(
    feed: FakePriceFeed | EntsoePriceFeed | DeferredPriceFeed, clock: Clock, **kwargs: object
) -> ManagedPriceFeed:
    managed = ManagedPriceFeed(
        feed,
        currency="EUR",
        fx_to_usd=1.1,
        refresh_seconds=60,
        stale_after_seconds=7200,
        clock=clock,
        settings=kwargs.pop("settings", SETTINGS),  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )
    return managed.start()


def timed_read(feed: ManagedPriceFeed) -> tuple[float, object]:
    started = time.monotonic()
    reading = feed.read()
    return time.monotonic() - started, reading


def wait_idle(feed: ManagedPriceFeed, limit_s: float) -> float:
    """Seconds until the feed's refresh in flight ends (fails past `limit_s`)."""
    started = time.monotonic()
    while feed.refreshing:
        assert time.monotonic() - started < limit_s, f"the refresh is still in flight after {limit_s} s"
        time.sleep(0.05)
    return time.monotonic() - started


def test_read_answers_at_once_while_a_fetch_drips_and_the_fetch_is_abandoned_at_its_deadline(
    drip: DripServer,
) -> None:
    clock = Clock()
    feed = background(entsoe(drip), clock)
    first = feed.read()  # waits for the first refresh, which the healthy upstream answers at once
    assert first.usable and first.error is None
    good = first.series

    clock.advance(61)  # a refresh is due; the upstream now drips one byte a second
    took, reading = timed_read(feed)
    triggered = time.monotonic()
    assert took < READ_BOUND_S, f"read() took {took:.2f} s while a fetch was starting"
    assert feed.refreshing
    assert reading.series == good and not reading.stale and reading.error is None  # type: ignore[attr-defined]
    for _ in range(5):  # the cycle keeps reading: each answer at once, from the last good prices
        time.sleep(0.3)
        took, reading = timed_read(feed)
        assert took < READ_BOUND_S and reading.series == good  # type: ignore[attr-defined]

    wait_idle(feed, limit_s=DEADLINE_S + 3)
    ended = time.monotonic() - triggered
    assert DEADLINE_S - 0.5 <= ended <= DEADLINE_S + 1.5, f"the fetch ended after {ended:.1f} s"
    after = feed.read()
    assert after.series == good and not after.stale  # still the last good prices, now with the error
    assert isinstance(after.error, PriceFetchError) and "total deadline of 4 s; abandoned" in str(after.error)
    # The server saw the client hang up at the deadline, with most of the body (4.9 kB) never sent.
    deadline = time.monotonic() + 3
    while len(drip.hangups) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert drip.connections == 2
    (hangup,) = drip.hangups
    assert DEADLINE_S - 0.5 <= hangup <= DEADLINE_S + 1.5, hangup


def test_the_deadline_cuts_dripped_headers_too() -> None:
    server = DripServer(b"<x/>", interval=1.0, drip_headers=True)
    try:
        started = time.monotonic()
        with pytest.raises(PriceFetchError, match="total deadline of 2 s"), fetch_deadline(2.0):
            get_body(httpx.Client(), "f", server.url, timeout_seconds=10, max_body_bytes=1 << 20)
        assert 1.8 <= time.monotonic() - started <= 3.0
    finally:
        server.close()


def test_outside_a_deadline_block_the_per_operation_timeout_is_also_the_total() -> None:
    server = DripServer(b"<xml>" * 100, interval=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(PriceFetchError, match=r"total deadline of 1\.5 s"):
            get_body(httpx.Client(), "f", server.url, timeout_seconds=1.5, max_body_bytes=1 << 20)
        assert time.monotonic() - started <= 2.5
    finally:
        server.close()


def test_the_prometheus_client_path_obeys_the_same_deadline() -> None:
    server = DripServer(prometheus_vector("60.56"), interval=1.0, content_type="application/json")
    feed = PrometheusMetricPriceFeed(
        "prom",
        spec=PrometheusPriceFeed(url=server.url, query="price"),
        currency="EUR",
        unit=EnergyUnit.MWH,
        valid_for=timedelta(minutes=15),
        settings=PriceFeedSettings(http_timeout_seconds=10.0),
    )
    try:
        started = time.monotonic()
        with pytest.raises(PriceFetchError, match="did not answer in time"), fetch_deadline(2.0):
            feed.fetch(NOW)
        assert 1.8 <= time.monotonic() - started <= 3.0
        deadline = time.monotonic() + 3
        while not server.hangups and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.hangups and server.hangups[0] <= 3.5
    finally:
        server.close()


def test_the_prometheus_client_path_still_answers() -> None:
    server = DripServer(prometheus_vector("60.56"), fast_first=1, content_type="application/json")
    feed = PrometheusMetricPriceFeed(
        "prom",
        spec=PrometheusPriceFeed(url=server.url, query="price"),
        currency="EUR",
        unit=EnergyUnit.MWH,
        valid_for=timedelta(minutes=15),
    )
    try:
        (interval,) = feed.fetch(NOW).intervals
        assert interval.price == 60.56
    finally:
        server.close()


def test_retries_with_backoff_run_inside_the_background_refresh() -> None:
    clock = Clock()
    fake = FakePriceFeed("eu-be")
    fake.serve(recorded_intervals())
    transient = PriceFetchError("eu-be", "http.status", "HTTP 503: server error", retryable=True)
    fake.fail_next(transient, transient)
    sleep = RecordingSleep()
    feed = background(
        fake,
        clock,
        sleep=sleep,
        settings=PriceFeedSettings(retry=RetryPolicy(max_attempts=3, initial_backoff_seconds=2.0)),
    )
    reading = feed.read()
    assert reading.usable and len(fake.fetches) == 3 and sleep.waits == [2.0, 4.0]


def test_close_interrupts_the_backoff_and_drops_the_result() -> None:
    clock = Clock()
    fake = FakePriceFeed("eu-be")
    fake.serve(recorded_intervals())
    fake.fail_next(PriceFetchError("eu-be", "http.status", "HTTP 503", retryable=True))
    settings = PriceFeedSettings(first_read_wait_seconds=0.0, retry=RetryPolicy(initial_backoff_seconds=60.0))
    feed = background(fake, clock, settings=settings)  # real waits: 60 s of backoff after the first failure
    time.sleep(0.2)
    assert feed.refreshing
    feed.close()
    assert wait_idle(feed, limit_s=2.0) < 2.0
    clock.advance(3600)
    reading = feed.read()
    assert reading.series is None and not feed.refreshing and len(fake.fetches) == 1


def test_a_due_refresh_starts_once_even_when_read_often() -> None:
    clock = Clock()
    gate = threading.Event()

    class Slow(FakePriceFeed):
        def fetch(self, now: datetime) -> PriceSeries:
            gate.wait(5)
            return super().fetch(now)

    slow = Slow("eu-be")
    slow.serve(recorded_intervals())
    feed = background(slow, clock, settings=PriceFeedSettings(first_read_wait_seconds=0.0))
    for _ in range(20):
        feed.read()
        clock.advance(61)
    gate.set()
    wait_idle(feed, limit_s=5)
    assert len(slow.fetches) == 1


def test_an_unexpected_adapter_error_becomes_the_readings_error_by_its_type_alone() -> None:
    class Broken(FakePriceFeed):
        def fetch(self, now: datetime) -> PriceSeries:
            raise ZeroDivisionError("a bug at https://feed.example/?securityToken=s3cr3t")

    reading = background(Broken("eu-be"), Clock()).read()
    assert reading.error is not None and "failed unexpectedly (ZeroDivisionError)" in str(reading.error)
    assert "s3cr3t" not in str(reading.error)  # the message of an error outside the contract is not quoted


class SwitchableResolver(MappingSecretResolver):
    """A resolver whose Secrets can appear later."""

    def add(self, namespace: str | None, name: str, key: str, value: str) -> None:
        self._values[(namespace, name, key)] = value


def test_a_feed_that_cannot_be_built_reports_why_and_is_built_once_it_can(drip: DripServer) -> None:
    clock = Clock()
    secrets = SwitchableResolver({})
    spec = PriceFeedSpec.model_validate(
        {
            "type": "entsoe",
            "refreshSeconds": 60,
            "entsoe": {"areaEic": BE, "tokenSecretRef": {"name": "entsoe", "key": "token"}, "endpoint": drip.url},
        }
    )
    feed = build_price_feed(
        spec, name="eu-be", secrets=secrets, http=httpx.Client(), clock=clock, settings=SETTINGS, background=True
    )
    reading = feed.read()
    assert isinstance(reading.error, PriceDataError)
    assert str(reading.error).startswith("price feed 'eu-be': entsoe.tokenSecretRef: cannot read the Secret:")
    assert secrets.requests[0][1] == FEED_TOKEN_PURPOSE
    secrets.add(None, "entsoe", "token", TOKEN)  # the Secret is created: no RegionalCluster change needed
    clock.advance(61)
    feed.read()
    wait_idle(feed, limit_s=5)
    assert feed.read().usable


def test_feed_credentials_are_asked_for_as_feed_tokens() -> None:
    secrets = MappingSecretResolver({(None, "t", "k"): TOKEN, (None, "h", "k"): json.dumps({"X-Key": "v" * 12})})
    for wire in (
        {"type": "entsoe", "entsoe": {"areaEic": BE, "tokenSecretRef": {"name": "t", "key": "k"}}},
        {
            "type": "httpJson",
            "httpJson": {"url": "http://127.0.0.1:1/p", "headersSecretRef": {"name": "h", "key": "k"}},
        },
    ):
        build_price_feed(
            PriceFeedSpec.model_validate(wire), name="x", secrets=secrets, http=httpx.Client(), clock=Clock()
        )
    assert [purpose for _, purpose in secrets.requests] == [FEED_TOKEN_PURPOSE, FEED_TOKEN_PURPOSE]
    assert FEED_TOKEN_PURPOSE == "price-feed-token"


def test_a_refused_token_is_read_again_from_its_secret_at_the_next_refresh() -> None:
    # Found in review: the Secret was read when the adapter was built, once; after "credentials refused (check
    # the token Secret)" the fixed Secret was never read again, until the spec changed or the operator restarted.
    body = RECORDED_HOURLY.read_bytes()

    def entsoe_api(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("securityToken") != "rotated-token-0123":
            return httpx.Response(401, stream=httpx.ByteStream(b""))
        return httpx.Response(200, stream=httpx.ByteStream(body))

    clock = Clock()
    secrets = SwitchableResolver({(None, "entsoe", "token"): "revoked-token-0123"})
    spec = PriceFeedSpec.model_validate(
        {
            "type": "entsoe",
            "refreshSeconds": 60,
            "entsoe": {"areaEic": BE, "tokenSecretRef": {"name": "entsoe", "key": "token"}},
        }
    )
    http = httpx.Client(transport=httpx.MockTransport(entsoe_api))
    feed = build_price_feed(
        spec, name="eu-be", secrets=secrets, http=http, clock=clock, settings=SETTINGS, background=True
    )
    refused = feed.read().error
    assert isinstance(refused, PriceFetchError) and "credentials refused" in str(refused)
    secrets.add(None, "entsoe", "token", "rotated-token-0123")  # the Secret is fixed, as the error says
    clock.advance(61)
    feed.read()
    wait_idle(feed, limit_s=5)
    assert feed.read().usable
    assert len(secrets.requests) == 2  # read again once refused, not at every refresh
