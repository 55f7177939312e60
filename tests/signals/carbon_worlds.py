"""Each carbon feed with the world it reads from: the world's carbon server (e2e.world.carbon) answering
from the recorded 2024 intensities of shared/data/carbon-2024, so every feed publishes, for
2024-10-08T10:00Z, what Electricity Maps recorded for its zone. Used by the carbon contract tests."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from e2e.world.carbon import CarbonApi, CarbonBook

from gridshift.api.carbon import (
    CarbonBasis,
    CsvReplayCarbonFeed,
    ElectricityMapsFeed,
    GbCarbonIntensityFeed,
    PrometheusCarbonFeed,
    StaticCarbonFeed,
    WattTimeFeed,
)
from gridshift.api.common import SecretKeyRef
from gridshift.signals.carbon import CarbonFeed, CarbonFetchError, CarbonInterval
from gridshift.signals.carbon_feeds import (
    CsvReplayCarbonIntensityFeed,
    ElectricityMapsCarbonFeed,
    GbCarbonIntensityCarbonFeed,
    PrometheusCarbonMetricFeed,
    StaticCarbonIntensityFeed,
    WattTimeCarbonFeed,
)
from gridshift.signals.settings import PriceFeedSettings
from gridshift.testing import FakeCarbonFeed
from tests.signals.conftest import LocalServer, Reply, Request

NOW = datetime(2024, 10, 8, 10, 17, tzinfo=UTC)
SETTINGS = PriceFeedSettings(http_timeout_seconds=2.0)
TOKEN = "em-secret-token-5f3a"
PASSWORD = "wt-secret-password-9c1e"
# Recorded at 2024-10-08T10:00Z (shared/data/carbon-2024, gCO2eq/kWh).
DE_LU_LCA = 286.05
GB_DIRECT = 109.26
CAISO_DIRECT = 299.4


@dataclass
class CarbonWorld:
    """A feed, what it must report for now, and ways to make its upstream publish bad data or fail."""

    kind: str
    feed: CarbonFeed
    expected_now: float
    """The recorded intensity now, as the provider's format carries it (rounded where it rounds)."""
    basis: CarbonBasis
    corrupt: Callable[[], None] | None = None
    """Make the upstream publish a NaN intensity for now."""
    corrupt_field: str = ""
    negative: Callable[[], None] | None = None
    """Make the upstream publish a negative intensity for now."""
    break_: Callable[[], None] | None = None


def _api(shared_data: Path) -> CarbonApi:
    return CarbonApi(CarbonBook(shared_data / "carbon-2024"))


def _serve(server: LocalServer, api: CarbonApi, edit: Callable[[str, Any], None] | None = None) -> None:
    def respond(request: Request) -> Reply:
        path = request.path.rstrip("/")
        if path in ("/v3/carbon-intensity/history", "/v3/carbon-intensity/forecast"):
            answer = api.electricity_maps(path.rsplit("/", 1)[1], request.params, NOW)
        elif path == "/login":
            answer = api.watttime_login(request.headers)
        elif path == "/v3/forecast":
            answer = api.watttime_forecast(request.params, request.headers, NOW)
        else:
            answer = api.gb_intensity(path, NOW)
        body = answer.body
        if edit is not None and answer.status == 200:
            document = json.loads(body)
            edit(path, document)
            body = json.dumps(document)
        return Reply(status=answer.status, body=body.encode(), content_type=answer.content_type)

    server.respond = respond


def _set_em_now(value: float) -> Callable[[str, Any], None]:
    def edit(path: str, document: Any) -> None:
        if path.endswith("history"):
            document["history"][-1]["carbonIntensity"] = value

    return edit


def electricity_maps_world(server: LocalServer, shared_data: Path) -> CarbonWorld:
    api = _api(shared_data)
    _serve(server, api)
    spec = ElectricityMapsFeed(
        zone="DE-LU", token_secret_ref=SecretKeyRef(name="em", key="token"), endpoint=server.url + "/v3", forecast=True
    )
    feed = ElectricityMapsCarbonFeed(
        "eu-de", spec=spec, basis=CarbonBasis.LIFECYCLE, token=TOKEN, http=httpx.Client(), settings=SETTINGS
    )
    return CarbonWorld(
        "electricityMaps",
        feed,
        round(DE_LU_LCA),
        CarbonBasis.LIFECYCLE,
        corrupt=lambda: _serve(server, api, _set_em_now(math.nan)),
        corrupt_field="history[23].carbonIntensity",
        negative=lambda: _serve(server, api, _set_em_now(-12.0)),
        break_=lambda: server.answer(Reply(status=503, body=b'{"error":"Service Unavailable"}')),
    )


def watttime_world(server: LocalServer, shared_data: Path) -> CarbonWorld:
    api = _api(shared_data)
    _serve(server, api)
    spec = WattTimeFeed(
        region="CAISO_NORTH",
        username="gridshift",
        password_secret_ref=SecretKeyRef(name="wt", key="password"),
        endpoint=server.url,
    )
    feed = WattTimeCarbonFeed("us-west", spec=spec, password=PASSWORD, http=httpx.Client(), settings=SETTINGS)

    def set_now(value: float) -> Callable[[str, Any], None]:
        def edit(path: str, document: Any) -> None:
            if path == "/v3/forecast":
                document["data"][0]["value"] = value

        return edit

    # The world publishes lbs/MWh rounded to 0.1: 299.4 g/kWh -> 660.1 lb/MWh -> 299.42 g/kWh.
    return CarbonWorld(
        "watttime",
        feed,
        round(CAISO_DIRECT / 0.45359237, 1) * 0.45359237,
        CarbonBasis.MARGINAL,
        corrupt=lambda: _serve(server, api, set_now(math.nan)),
        corrupt_field="data[0].value",
        negative=lambda: _serve(server, api, set_now(-3.0)),
        break_=lambda: server.answer(Reply(status=500, body=b"{}")),
    )


def gb_world(server: LocalServer, shared_data: Path, region_id: int | None) -> CarbonWorld:
    api = _api(shared_data)
    _serve(server, api)
    feed = GbCarbonIntensityCarbonFeed(
        "uk",
        spec=GbCarbonIntensityFeed(region_id=region_id, endpoint=server.url),
        http=httpx.Client(),
        settings=SETTINGS,
    )

    def set_now(value: float) -> Callable[[str, Any], None]:
        def edit(path: str, document: Any) -> None:
            items = document["data"][0]["data"] if region_id is not None else document["data"]
            items[0]["intensity"]["forecast"] = value

        return edit

    field = "data.data[0].intensity.forecast" if region_id is not None else "data[0].intensity.forecast"
    return CarbonWorld(
        "gbCarbonIntensity" if region_id is None else "gbCarbonIntensityRegional",
        feed,
        round(GB_DIRECT),
        CarbonBasis.DIRECT,
        corrupt=lambda: _serve(server, api, set_now(math.nan)),
        corrupt_field=field,
        negative=lambda: _serve(server, api, set_now(-1.0)),
        break_=lambda: server.answer(Reply(status=502, body=b"bad gateway")),
    )


def prometheus_vector(value: str) -> bytes:
    result = [
        {"metric": {"__name__": "grid_carbon_intensity_g_per_kwh", "zone": "DE"}, "value": [NOW.timestamp(), value]}
    ]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()


def prometheus_world(server: LocalServer) -> CarbonWorld:
    server.answer(Reply(body=prometheus_vector(repr(DE_LU_LCA))))
    feed = PrometheusCarbonMetricFeed(
        "eu-de-prom",
        spec=PrometheusCarbonFeed(url=server.url, query='grid_carbon_intensity_g_per_kwh{zone="DE"}'),
        basis=CarbonBasis.LIFECYCLE,
        valid_for=timedelta(minutes=15),
        settings=SETTINGS,
    )
    return CarbonWorld(
        "prometheus",
        feed,
        DE_LU_LCA,
        CarbonBasis.LIFECYCLE,
        corrupt=lambda: server.answer(Reply(body=prometheus_vector("NaN"))),
        corrupt_field="intervals[0].gPerKwh",
        negative=lambda: server.answer(Reply(body=prometheus_vector("-5"))),
        break_=lambda: server.answer(Reply(status=503, body=b'{"status":"error","error":"down"}')),
    )


def csv_world(shared_data: Path, tmp_path: Path) -> CarbonWorld:
    copy = tmp_path / "DE-LU_carbon_2024_hourly.csv"
    copy.write_bytes((shared_data / "carbon-2024" / "DE-LU_carbon_2024_hourly.csv").read_bytes())
    feed = CsvReplayCarbonIntensityFeed(
        "replay-de", spec=CsvReplayCarbonFeed(path=str(copy)), basis=CarbonBasis.LIFECYCLE, settings=SETTINGS
    )

    def set_now(value: str) -> None:
        lines = copy.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if line.startswith("2024-10-08 10:00:00,"):
                cells = line.split(",")
                cells[5] = value
                lines[number] = ",".join(cells)
        copy.write_text("\n".join(lines) + "\n", encoding="utf-8")
        feed.replay._recording = None  # re-read, as a restarted operator would

    def break_() -> None:
        copy.unlink()
        feed.replay._recording = None

    return CarbonWorld(
        "csvReplay",
        feed,
        DE_LU_LCA,
        CarbonBasis.LIFECYCLE,
        corrupt=lambda: set_now("nan"),
        corrupt_field="row 6756.Carbon Intensity gCO₂eq/kWh (LCA)",
        negative=lambda: set_now("-4"),
        break_=break_,
    )


def static_world() -> CarbonWorld:
    feed = StaticCarbonIntensityFeed("flat", spec=StaticCarbonFeed(g_per_kwh=GB_DIRECT), basis=CarbonBasis.DIRECT)
    return CarbonWorld("static", feed, GB_DIRECT, CarbonBasis.DIRECT)


def fake_world() -> CarbonWorld:
    feed = FakeCarbonFeed("fake", basis=CarbonBasis.DIRECT)
    hour = NOW.replace(minute=0)

    def serve(value: float) -> None:
        feed.serve(
            [
                CarbonInterval(hour - timedelta(hours=1), hour, 120.0, CarbonBasis.DIRECT),
                CarbonInterval(hour, hour + timedelta(hours=1), value, CarbonBasis.DIRECT),
            ]
        )

    serve(GB_DIRECT)

    def break_() -> None:
        feed.fail_next(*[CarbonFetchError("fake", "http.status", "HTTP 503: server error", retryable=True)] * 10)

    return CarbonWorld(
        "fake",
        feed,
        GB_DIRECT,
        CarbonBasis.DIRECT,
        corrupt=lambda: serve(math.nan),
        corrupt_field="intervals[1].gPerKwh",
        negative=lambda: serve(-1.0),
        break_=break_,
    )


WORLD_KINDS = [
    "electricityMaps",
    "watttime",
    "gbCarbonIntensity",
    "gbCarbonIntensityRegional",
    "prometheus",
    "csvReplay",
    "static",
    "fake",
]


def make_world(kind: str, server: LocalServer, shared_data: Path, tmp_path: Path) -> CarbonWorld:
    return {
        "electricityMaps": lambda: electricity_maps_world(server, shared_data),
        "watttime": lambda: watttime_world(server, shared_data),
        "gbCarbonIntensity": lambda: gb_world(server, shared_data, None),
        "gbCarbonIntensityRegional": lambda: gb_world(server, shared_data, 13),
        "prometheus": lambda: prometheus_world(server),
        "csvReplay": lambda: csv_world(shared_data, tmp_path),
        "static": static_world,
        "fake": fake_world,
    }[kind]()
