"""Each price feed with the world it reads from, arranged so every feed publishes 60.56 EUR/MWh for
2024-10-08T10:00Z (position 13 of the recorded ENTSO-E BE document; the same hour in the BE column of
the 2024 CSV). Used by the contract tests and the error tests."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from gridshift.api.common import SecretKeyRef
from gridshift.api.regional_cluster import (
    CsvReplayFeed,
    EnergyUnit,
    EntsoeFeed,
    HttpJsonFeed,
    PrometheusPriceFeed,
    ScheduleFeed,
    StaticFeed,
    TariffPeriod,
)
from gridshift.signals.entsoe import EntsoePriceFeed, parse_a44
from gridshift.signals.price_csv import CsvReplayPriceFeed
from gridshift.signals.price_feeds import (
    HttpJsonPriceFeed,
    PrometheusMetricPriceFeed,
    SchedulePriceFeed,
    StaticPriceFeed,
)
from gridshift.signals.prices import PriceFeed, PriceFetchError, PriceInterval
from gridshift.signals.settings import PriceFeedSettings
from gridshift.testing import FakePriceFeed
from tests.signals.conftest import ENTSOE_FIXTURES, LocalServer, Reply

NOW = datetime(2024, 10, 8, 10, 17, tzinfo=UTC)
PRICE_NOW = 60.56
BE = "10YBE----------2"
TOKEN = "a1b2c3d4-secret-token"
RECORDED_HOURLY = ENTSOE_FIXTURES / "hass-entso-e_BE_60M_2024-10-08.xml"
SETTINGS = PriceFeedSettings(http_timeout_seconds=2.0)


def recorded_intervals() -> list[PriceInterval]:
    return parse_a44(RECORDED_HOURLY.read_bytes(), expected_area_eic=BE)


def http_json_body(
    intervals: list[PriceInterval], price: Callable[[PriceInterval], object] = lambda i: i.price
) -> bytes:
    items = [{"from": i.start.isoformat(), "to": i.end.isoformat(), "eurPerMwh": price(i)} for i in intervals]
    return json.dumps({"data": {"prices": items}}).encode()


def prometheus_vector(value: str) -> bytes:
    return json.dumps(
        {
            "status": "success",
            "data": {
                "resultType": "vector",
                "result": [
                    {
                        "metric": {"__name__": "electricity_price_eur_per_mwh", "zone": "BE"},
                        "value": [NOW.timestamp(), value],
                    }
                ],
            },
        }
    ).encode()


@dataclass
class PriceWorld:
    """A feed, plus ways to make its upstream publish bad data or fail."""

    kind: str
    feed: PriceFeed
    corrupt: Callable[[], None] | None = None
    """Make the upstream publish a NaN price for the current hour (None: the spec cannot be bad)."""
    corrupt_field: str = ""
    """The field the error for that NaN must name."""
    break_: Callable[[], None] | None = None
    """Make the upstream unreachable or failing."""
    extra: dict[str, object] = field(default_factory=dict)


def entsoe_world(server: LocalServer) -> PriceWorld:
    body = RECORDED_HOURLY.read_bytes()
    server.answer(Reply(body=body, content_type="application/xml"))
    feed = EntsoePriceFeed(
        "eu-be",
        spec=EntsoeFeed(
            area_eic=BE, token_secret_ref=SecretKeyRef(name="entsoe", key="token"), endpoint=server.url + "/api"
        ),
        token=TOKEN,
        currency="EUR",
        http=httpx.Client(),
        settings=SETTINGS,
    )
    corrupted = body.replace(b"<price.amount>60.56</price.amount>", b"<price.amount>NaN</price.amount>")
    return PriceWorld(
        "entsoe",
        feed,
        corrupt=lambda: server.answer(Reply(body=corrupted, content_type="application/xml")),
        corrupt_field="TimeSeries[0].Period[0].Point[12].price.amount",
        break_=lambda: server.answer(Reply(status=503, body=b"<html>Service Unavailable</html>")),
    )


HTTP_JSON_SPEC_FIELDS = {
    "items_path": "data.prices",
    "start_field": "from",
    "end_field": "to",
    "price_field": "eurPerMwh",
}


def http_json_world(server: LocalServer) -> PriceWorld:
    intervals = recorded_intervals()
    server.answer(Reply(body=http_json_body(intervals)))
    feed = HttpJsonPriceFeed(
        "eu-be-json",
        spec=HttpJsonFeed(url=server.url + "/prices", **HTTP_JSON_SPEC_FIELDS),
        currency="EUR",
        unit=EnergyUnit.MWH,
        http=httpx.Client(),
        settings=SETTINGS,
    )
    nan_now = http_json_body(intervals, lambda i: "NaN" if i.contains(NOW) else i.price)
    return PriceWorld(
        "httpJson",
        feed,
        corrupt=lambda: server.answer(Reply(body=nan_now)),
        corrupt_field="items[12].eurPerMwh",
        break_=lambda: server.answer(Reply(status=502, body=b"bad gateway")),
    )


def prometheus_world(server: LocalServer) -> PriceWorld:
    server.answer(Reply(body=prometheus_vector(repr(PRICE_NOW))))
    feed = PrometheusMetricPriceFeed(
        "eu-be-prom",
        spec=PrometheusPriceFeed(url=server.url, query='electricity_price_eur_per_mwh{zone="BE"}'),
        currency="EUR",
        unit=EnergyUnit.MWH,
        valid_for=timedelta(minutes=15),
        settings=SETTINGS,
    )
    return PriceWorld(
        "prometheus",
        feed,
        corrupt=lambda: server.answer(Reply(body=prometheus_vector("NaN"))),
        corrupt_field="intervals[0].price",
        break_=lambda: server.answer(Reply(status=503, body=b'{"status":"error","error":"down"}')),
    )


def schedule_world() -> PriceWorld:
    # 2024-10-08 is a Tuesday; 10:17Z is 12:17 in Brussels (CEST, UTC+2).
    spec = ScheduleFeed(
        timezone="Europe/Brussels",
        periods=[
            TariffPeriod(days=["Mon", "Tue", "Wed", "Thu", "Fri"], start_hour=8, end_hour=20, price=PRICE_NOW),
            TariffPeriod(days=["Sat", "Sun"], start_hour=10, end_hour=16, price=20.0),
        ],
        default_price=35.5,
    )
    return PriceWorld("schedule", SchedulePriceFeed("site-tariff", spec=spec, currency="EUR", unit=EnergyUnit.MWH))


def static_world() -> PriceWorld:
    spec = StaticFeed(price=PRICE_NOW)
    return PriceWorld("static", StaticPriceFeed("flat", spec=spec, currency="EUR", unit=EnergyUnit.MWH))


def csv_world(shared_data: Path, tmp_path: Path) -> PriceWorld:
    wide = shared_data / "prices-2024" / "prices_2024_utc_hourly_wide.csv"
    copy = tmp_path / "wide.csv"
    copy.write_bytes(wide.read_bytes())
    feed = CsvReplayPriceFeed(
        "replay-be", spec=CsvReplayFeed(path=str(copy), column="BE_EUR_per_MWh"), currency="EUR", settings=SETTINGS
    )

    def corrupt() -> None:
        lines = copy.read_text().splitlines()
        column = lines[0].split(",").index("BE_EUR_per_MWh")
        for number, line in enumerate(lines):
            if line.startswith("2024-10-08T10:00:00Z,"):
                cells = line.split(",")
                cells[column] = "nan"
                lines[number] = ",".join(cells)
        copy.write_text("\n".join(lines) + "\n")
        feed.replay._recording = None  # re-read the file, as a restarted operator would

    def break_() -> None:
        copy.unlink()
        feed.replay._recording = None

    return PriceWorld("csvReplay", feed, corrupt=corrupt, corrupt_field="row 6756.BE_EUR_per_MWh", break_=break_)


def fake_world() -> PriceWorld:
    feed = FakePriceFeed("fake", currency="EUR")
    feed.serve(recorded_intervals())

    def corrupt() -> None:
        feed.serve(
            [
                PriceInterval(i.start, i.end, math.nan if i.contains(NOW) else i.price, i.currency, i.unit)
                for i in recorded_intervals()
            ]
        )

    def break_() -> None:
        feed.fail_next(*[PriceFetchError("fake", "http.status", "HTTP 503: server error", retryable=True)] * 10)

    return PriceWorld("fake", feed, corrupt=corrupt, corrupt_field="intervals[12].price", break_=break_)


WORLD_KINDS = ["entsoe", "httpJson", "prometheus", "schedule", "static", "csvReplay", "fake"]


def make_world(kind: str, server: LocalServer, shared_data: Path, tmp_path: Path) -> PriceWorld:
    return {
        "entsoe": lambda: entsoe_world(server),
        "httpJson": lambda: http_json_world(server),
        "prometheus": lambda: prometheus_world(server),
        "schedule": schedule_world,
        "static": static_world,
        "csvReplay": lambda: csv_world(shared_data, tmp_path),
        "fake": fake_world,
    }[kind]()
