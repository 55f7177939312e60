"""EntsoePriceFeed against a local HTTP server: the request it makes and what it does with each answer.

(The cross-feed contract and error suites cover the same adapter among the others; these pin the
ENTSO-E specifics, fast enough for mutation testing.)
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from gridshift.api.regional_cluster import EntsoeFeed, SecretKeyRef
from gridshift.signals.entsoe import EntsoePriceFeed, parse_a44
from gridshift.signals.prices import NoPriceDataError, PriceDataError, PriceFetchError
from gridshift.signals.settings import PriceFeedSettings, ResolutionPreference
from tests.signals.conftest import ENTSOE_FIXTURES, LocalServer, Reply

BE = "10YBE----------2"
TOKEN = "a1b2c3d4-secret-token"
HOURLY = (ENTSOE_FIXTURES / "hass-entso-e_BE_60M_2024-10-08.xml").read_bytes()
OVERLAP = (ENTSOE_FIXTURES / "derived_BE_15M_and_60M_same_day_2024-10-06.xml").read_bytes()
ACK = (ENTSOE_FIXTURES / "crafted_acknowledgement_999_no_data.xml").read_bytes()
NOW = datetime(2024, 10, 8, 10, 17, tzinfo=UTC)


def feed(server: LocalServer, currency: str = "EUR", sequence: int = 1, **settings: object) -> EntsoePriceFeed:
    spec = EntsoeFeed(
        area_eic=BE,
        token_secret_ref=SecretKeyRef(name="entsoe", key="token"),
        endpoint=server.url + "/api",
        sequence=sequence,
    )
    chosen = PriceFeedSettings(**{"http_timeout_seconds": 2.0, **settings})  # type: ignore[arg-type]
    return EntsoePriceFeed("eu-be", spec=spec, token=TOKEN, currency=currency, http=httpx.Client(), settings=chosen)


def test_the_request_asks_for_the_zone_around_the_current_hour(local_server: LocalServer) -> None:
    client = feed(local_server, lookback_hours=2.0, horizon_hours=30.0)
    assert client.name == "eu-be" and client.currency == "EUR"
    # 13:17 at +02:00 is 11:17Z: the window starts 2 h before 11:00Z and ends 30 h after it.
    params = client.request_params(datetime(2024, 10, 8, 13, 17, tzinfo=timezone(timedelta(hours=2))))
    assert params == {
        "securityToken": TOKEN,
        "documentType": "A44",
        "in_Domain": BE,
        "out_Domain": BE,
        "periodStart": "202410080900",
        "periodEnd": "202410091700",
    }


def test_the_request_window_is_utc_whatever_the_machines_timezone(
    local_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        params = feed(local_server, lookback_hours=2.0, horizon_hours=30.0).request_params(NOW)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert (params["periodStart"], params["periodEnd"]) == ("202410080800", "202410091600")


def test_fetch_sends_that_request_and_returns_the_documents_prices(local_server: LocalServer) -> None:
    local_server.answer(Reply(body=HOURLY, content_type="application/xml"))
    series = feed(local_server).fetch(NOW)
    assert [r.path for r in local_server.requests] == ["/api"]
    assert local_server.requests[0].params == feed(local_server).request_params(NOW)
    assert series.feed == "eu-be"
    assert series.fetched_at == NOW
    assert list(series.intervals) == parse_a44(HOURLY)


@pytest.mark.parametrize(
    ("preference", "minutes"), [(ResolutionPreference.FINEST, 15), (ResolutionPreference.COARSEST, 60)]
)
def test_fetch_keeps_the_preferred_resolution(
    local_server: LocalServer, preference: ResolutionPreference, minutes: int
) -> None:
    local_server.answer(Reply(body=OVERLAP, content_type="application/xml"))
    series = feed(local_server, prefer_resolution=preference).fetch(datetime(2024, 10, 6, 12, tzinfo=UTC))
    assert {i.duration for i in series.intervals} == {timedelta(minutes=minutes)}


def test_fetch_reads_the_configured_auction_sequence(local_server: LocalServer) -> None:
    text = HOURLY.decode()
    series = text[text.index("      <TimeSeries>") : text.index("</TimeSeries>") + len("</TimeSeries>")]
    other = series.replace("<price.amount>100</price.amount>", "<price.amount>101</price.amount>")

    def positioned(block: str, position: int) -> str:
        tag = "classificationSequence_AttributeInstanceComponent.position"
        return block.replace("</curveType>", f"</curveType><{tag}>{position}</{tag}>")

    body = text.replace(series, positioned(series, 1) + "\n" + positioned(other, 2)).encode()
    at_nine = datetime(2024, 10, 8, 6, 30, tzinfo=UTC)  # position 9: 100 in sequence 1, 101 in sequence 2
    for sequence, price in ((1, 100), (2, 101)):
        local_server.answer(Reply(body=body, content_type="application/xml"))
        intervals = feed(local_server, sequence=sequence).fetch(NOW).intervals
        assert next(i.price for i in intervals if i.start <= at_nine < i.end) == price


def test_an_acknowledgement_with_http_400_is_no_data_with_its_reason(local_server: LocalServer) -> None:
    local_server.answer(Reply(status=400, body=ACK, content_type="application/xml"))
    with pytest.raises(NoPriceDataError, match="999") as caught:
        feed(local_server).fetch(NOW)
    assert caught.value.feed == "eu-be"


def test_a_price_document_with_http_400_is_refused(local_server: LocalServer) -> None:
    local_server.answer(Reply(status=400, body=HOURLY, content_type="application/xml"))
    with pytest.raises(PriceFetchError) as caught:
        feed(local_server).fetch(NOW)
    assert (caught.value.feed, caught.value.field, caught.value.detail, caught.value.retryable) == (
        "eu-be",
        "http.status",
        "HTTP 400 with a price document",
        False,
    )


def test_a_document_for_another_zone_is_refused(local_server: LocalServer) -> None:
    local_server.answer(Reply(body=HOURLY.replace(BE.encode(), b"10YNL----------L"), content_type="application/xml"))
    with pytest.raises(PriceDataError, match=r"^price feed 'eu-be': TimeSeries\[0\]\.in_Domain\.mRID: document is for"):
        feed(local_server).fetch(NOW)


def test_prices_in_another_currency_are_refused(local_server: LocalServer) -> None:
    local_server.answer(Reply(body=HOURLY, content_type="application/xml"))
    with pytest.raises(PriceDataError, match=r"^price feed 'eu-be': intervals\[0\]\.currency: prices are in EUR"):
        feed(local_server, currency="USD").fetch(NOW)


def test_a_document_without_the_current_hour_is_refused(local_server: LocalServer) -> None:
    local_server.answer(Reply(body=HOURLY, content_type="application/xml"))
    with pytest.raises(PriceDataError, match=r"^price feed 'eu-be': intervals: no price for now"):
        feed(local_server).fetch(NOW + timedelta(days=2))


def test_http_failures_name_the_feed(local_server: LocalServer) -> None:
    local_server.answer(Reply(status=503, body=b"<html>Service Unavailable</html>"))
    with pytest.raises(PriceFetchError) as caught:
        feed(local_server).fetch(NOW)
    assert (caught.value.feed, caught.value.field, caught.value.detail) == (
        "eu-be",
        "http.status",
        "HTTP 503: server error",
    )


def test_the_timeout_and_body_limit_come_from_the_settings(local_server: LocalServer) -> None:
    local_server.answer(Reply(body=HOURLY, content_type="application/xml"))
    with pytest.raises(PriceFetchError, match="body larger than 1000 bytes"):
        feed(local_server, max_body_bytes=1000).fetch(NOW)
    local_server.answer(Reply(body=HOURLY, content_type="application/xml", delay_seconds=1.0))
    with pytest.raises(PriceFetchError, match=r"no complete answer within .*\b0\.2 s") as caught:
        feed(local_server, http_timeout_seconds=0.2).fetch(NOW)
    assert (caught.value.feed, caught.value.field) == ("eu-be", "http")
