"""The price server: ENTSO-E and JSON answers against the CSV they replay, publication times, faults."""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from e2e.world.feedserver import FeedFault, FeedFaultMode
from e2e.world.prices import ZONES, PriceApi, PriceBook, PriceServer, default_price_csv

from gridshift.api.common import SecretKeyRef
from gridshift.api.regional_cluster import EnergyUnit, EntsoeFeed, HttpJsonFeed
from gridshift.signals.entsoe import EntsoePriceFeed, parse_a44
from gridshift.signals.price_feeds import HttpJsonPriceFeed, parse_http_json
from gridshift.signals.prices import NoPriceDataError, PriceFetchError
from gridshift.signals.settings import PriceFeedSettings, RetryPolicy

FR, DE = ZONES["FR"], ZONES["DE-LU"]


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook()


@pytest.fixture(scope="module")
def csv_prices() -> dict[str, dict[datetime, float]]:
    """The wide CSV read independently of the server: column -> UTC hour -> price."""
    out: dict[str, dict[datetime, float]] = {}
    with Path(default_price_csv()).open(newline="") as handle:
        for row in csv.DictReader(handle):
            hour = datetime.strptime(row["datetime_utc"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            for column, text in row.items():
                if column != "datetime_utc" and text:
                    out.setdefault(column, {})[hour] = float(text)
    return out


def _query(eic: str, start: str, end: str, token: str = "t") -> dict[str, str]:
    return {
        "securityToken": token,
        "documentType": "A44",
        "in_Domain": eic,
        "out_Domain": eic,
        "periodStart": start,
        "periodEnd": end,
    }


@pytest.mark.parametrize(
    ("zone", "start", "end", "now"),
    [
        ("FR", "202406030000", "202406060000", datetime(2024, 6, 6, tzinfo=UTC)),
        ("DE-LU", "202401290000", "202402020000", datetime(2024, 2, 3, tzinfo=UTC)),  # 31 Jan missing upstream
        ("ES", "202404280000", "202405020000", datetime(2024, 5, 3, tzinfo=UTC)),  # 30 Apr missing upstream
        ("BE", "202410260000", "202410290000", datetime(2024, 10, 30, tzinfo=UTC)),  # 25-hour DST day
        ("NL", "202403300000", "202404010000", datetime(2024, 4, 2, tzinfo=UTC)),  # 23-hour DST day
    ],
)
def test_entsoe_answers_parse_to_the_csv_values(
    book: PriceBook, csv_prices: dict[str, dict[datetime, float]], zone: str, start: str, end: str, now: datetime
) -> None:
    spec = ZONES[zone]
    assert spec.eic is not None
    answer = PriceApi(book).entsoe(_query(spec.eic, start, end), now)
    assert answer.status == 200
    intervals = parse_a44(answer.body, expected_area_eic=spec.eic)
    got = {i.start: i.price for i in intervals}
    assert all(i.end - i.start == timedelta(hours=1) and i.currency == "EUR" for i in intervals)
    # Whole delivery days (CET/CEST) covering the period, exactly the CSV's hours, gaps kept as gaps.
    first, last = min(got), max(got)
    column = csv_prices[spec.column]
    expected = {hour: price for hour, price in column.items() if first <= hour <= last}
    assert got == expected
    assert first.astimezone(spec.timezone_info()).hour == 0


def test_missing_day_is_a_gap(book: PriceBook) -> None:
    assert DE.eic is not None
    answer = PriceApi(book).entsoe(_query(DE.eic, "202401310000", "202401310100"), datetime(2024, 2, 3, tzinfo=UTC))
    assert answer.status == 200
    with pytest.raises(NoPriceDataError, match="999"):
        parse_a44(answer.body)


@pytest.mark.parametrize(
    ("now", "last_day_end"),
    [
        # 11:59 CEST on 3 June: only 3 June is known; at 12:00 the auction result for 4 June is out.
        (datetime(2024, 6, 3, 9, 59, tzinfo=UTC), datetime(2024, 6, 3, 22, tzinfo=UTC)),
        (datetime(2024, 6, 3, 10, 0, tzinfo=UTC), datetime(2024, 6, 4, 22, tzinfo=UTC)),
        # Winter: 12:00 CET is 11:00 UTC.
        (datetime(2024, 1, 10, 10, 59, tzinfo=UTC), datetime(2024, 1, 10, 23, tzinfo=UTC)),
        (datetime(2024, 1, 10, 11, 0, tzinfo=UTC), datetime(2024, 1, 11, 23, tzinfo=UTC)),
    ],
)
def test_day_ahead_prices_appear_at_noon_cet(book: PriceBook, now: datetime, last_day_end: datetime) -> None:
    assert FR.eic is not None
    period_start = (now - timedelta(days=1)).strftime("%Y%m%d0000")
    period_end = (now + timedelta(days=3)).strftime("%Y%m%d0000")
    intervals = parse_a44(PriceApi(book).entsoe(_query(FR.eic, period_start, period_end), now).body)
    assert intervals[-1].end == last_day_end


def test_real_time_market_knows_only_past_hours(book: PriceBook, csv_prices: dict[str, dict[datetime, float]]) -> None:
    now = datetime(2024, 6, 3, 15, 30, tzinfo=UTC)
    answer = PriceApi(book).json_prices("US-MIDA-PJM", {}, now)
    spec = HttpJsonFeed(url="http://x/json/US-MIDA-PJM")
    intervals = parse_http_json(answer.body.encode(), feed="pjm", spec=spec, currency="USD", unit=EnergyUnit.MWH)
    assert intervals[-1].end == datetime(2024, 6, 3, 15, tzinfo=UTC)
    assert intervals[0].start == datetime(2024, 6, 2, 15, tzinfo=UTC)
    column = csv_prices[ZONES["US-MIDA-PJM"].column]
    assert {i.start: i.price for i in intervals} == {
        h: p for h, p in column.items() if intervals[0].start <= h < intervals[-1].end
    }


@pytest.mark.parametrize(
    ("query", "status", "reason"),
    [
        ({"token": ""}, 401, "security token"),
        ({"documentType": "A65"}, 400, "documentType"),
        ({"out_Domain": "10YBE----------2"}, 400, "same bidding zone"),
        ({"periodStart": "2024-06-03"}, 400, "yyyyMMddHHmm"),
        ({"periodEnd": "202406010000"}, 400, "after periodStart"),
        ({"periodStart": "202301010000"}, 400, "1 year"),
    ],
)
def test_bad_queries_get_entsoe_acknowledgements(
    book: PriceBook, query: dict[str, str], status: int, reason: str
) -> None:
    assert FR.eic is not None
    params = _query(FR.eic, "202406030000", "202406040000", token=query.pop("token", "t"))
    params.update(query)
    answer = PriceApi(book).entsoe(params, datetime(2024, 6, 5, tzinfo=UTC))
    assert answer.status == status
    with pytest.raises(NoPriceDataError, match=reason):
        parse_a44(answer.body)


def test_only_configured_tokens_are_accepted(book: PriceBook) -> None:
    assert FR.eic is not None
    api = PriceApi(book, tokens=frozenset({"good"}))
    now = datetime(2024, 6, 5, tzinfo=UTC)
    assert api.entsoe(_query(FR.eic, "202406030000", "202406040000", token="bad"), now).status == 401
    assert api.entsoe(_query(FR.eic, "202406030000", "202406040000", token="good"), now).status == 200


class _Now:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def server(book: PriceBook) -> Iterator[PriceServer]:
    price_server = PriceServer(PriceApi(book), _Now(datetime(2024, 6, 3, 12, tzinfo=UTC)))
    price_server.start()
    yield price_server
    price_server.stop()


def _entsoe_feed(server: PriceServer, timeout_s: float = 10.0) -> EntsoePriceFeed:
    assert FR.eic is not None
    spec = EntsoeFeed(
        area_eic=FR.eic, token_secret_ref=SecretKeyRef(name="entsoe", key="token"), endpoint=f"{server.url}/api"
    )
    settings = PriceFeedSettings(http_timeout_seconds=timeout_s, retry=RetryPolicy(max_attempts=1))
    return EntsoePriceFeed("fr", spec=spec, token="t", currency="EUR", http=httpx.Client(), settings=settings)


def test_operator_feeds_read_the_server(server: PriceServer, book: PriceBook) -> None:
    now = datetime(2024, 6, 3, 12, tzinfo=UTC)
    series = _entsoe_feed(server).fetch(now)
    assert series.at(now) is not None
    assert series.at(now).price == book.prices["FR"][now]  # type: ignore[union-attr]
    spec = HttpJsonFeed(url=f"{server.url}/json/FR")
    json_series = HttpJsonPriceFeed(
        "fr-json", spec=spec, currency="EUR", unit=EnergyUnit.MWH, http=httpx.Client()
    ).fetch(now)
    assert [(i.start, i.price) for i in json_series.intervals if i.start >= now] == [
        (i.start, i.price) for i in series.intervals if i.start >= now
    ]


def test_feed_fault_error_answers_500_then_recovers(server: PriceServer) -> None:
    now = datetime(2024, 6, 3, 12, tzinfo=UTC)
    server.set_fault("FR", FeedFault(FeedFaultMode.ERROR))
    with pytest.raises(PriceFetchError, match="HTTP 500") as raised:
        _entsoe_feed(server).fetch(now)
    assert raised.value.retryable
    assert httpx.get(f"{server.url}/json/DE-LU").status_code == 200  # other zones unaffected
    server.set_fault("FR", FeedFault(FeedFaultMode.OK))
    assert _entsoe_feed(server).fetch(now).intervals


def test_feed_fault_stall_times_clients_out(server: PriceServer) -> None:
    server.set_fault("*", FeedFault(FeedFaultMode.STALL, stall_seconds=30))
    started = time.monotonic()
    with pytest.raises(PriceFetchError) as raised:
        _entsoe_feed(server, timeout_s=0.5).fetch(datetime(2024, 6, 3, 12, tzinfo=UTC))
    assert raised.value.retryable
    assert time.monotonic() - started < 5
    server.set_fault("*", FeedFault(FeedFaultMode.OK))
    assert httpx.get(f"{server.url}/json/FR", timeout=5).status_code == 200


def test_unknown_fault_zone_is_named(server: PriceServer) -> None:
    with pytest.raises(ValueError, match="fault zone"):
        server.set_fault("XX", FeedFault(FeedFaultMode.ERROR))
