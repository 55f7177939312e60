"""The carbon server: 2024 grid carbon intensity replayed on the world clock, as the real APIs answer it.

Data: shared/data/carbon-2024/<ZONE>_carbon_2024_hourly.csv (Electricity Maps' hourly history, direct
and life-cycle, via HewlettPackard/green-dcc; see docs/carbon.md for source and licence). Served:

- Electricity Maps v3: `GET /v3/carbon-intensity/history?zone=Z&emissionFactorType=lifecycle|direct`:
  the 24 hours up to the hour in progress; `GET /v3/carbon-intensity/forecast?zone=Z`: the next
  24 hours (the recorded values, i.e. a perfect forecast). Unknown zone: 404 with `{"error"}`.
- WattTime v3: `GET /login` (HTTP basic auth, any account) -> `{"token"}`; `GET /v3/forecast?region=R
  &signal_type=co2_moer` (bearer token) -> 5-minute points for 24 hours in lbs/MWh. The shared data
  hold no marginal emissions: this endpoint publishes the recorded *direct* average intensity in
  WattTime's format, to exercise the parser, the login and the unit conversion, not as a MOER.
  Regions: WattTime's names for the zones served (CAISO_NORTH, ERCOT_NORTHCENTRAL, NYISO_NYC,
  PJM_DC, IESO_NORTH, ...) or the Electricity Maps zone with `_` for `-`.
- GB Carbon Intensity API: `GET /intensity/{from}/fw48h` and `GET /regional/intensity/{from}/fw48h/
  regionid/{id}` (the regional series is the national one here): half hours from `from`, `actual`
  set for half hours that have ended, `forecast` always (the recorded direct intensity of GB).
- `GET /carbon/zones`: the zones served.

Faults are e2e.world.feedserver.FeedFault, by zone (or "*"): an error answer (500) or a stall.
"""

from __future__ import annotations

import csv
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .feedserver import Answer, SeriesServer
from .trace import shared_data_dir

HOUR = timedelta(hours=1)
HALF_HOUR = timedelta(minutes=30)
LBS_PER_MWH_IN_G_PER_KWH = 0.45359237
DIRECT_COLUMN = "Carbon Intensity gCO₂eq/kWh (direct)"
LCA_COLUMN = "Carbon Intensity gCO₂eq/kWh (LCA)"

WATTTIME_REGIONS = {
    "CAISO_NORTH": "US-CAL-CISO",
    "ERCOT_NORTHCENTRAL": "US-TEX-ERCO",
    "NYISO_NYC": "US-NY-NYIS",
    "PJM_DC": "US-MIDA-PJM",
    "IESO_NORTH": "CA-ON",
    "UK": "GB",
    "DE": "DE-LU",
    "NEM_NSW": "AU-NSW",
    "NEM_VIC": "AU-VIC",
    "JP_TK": "JP-TK",
    "SGP": "SG",
}


def default_carbon_dir() -> Path:
    return shared_data_dir() / "carbon-2024"


class CarbonBook:
    """Hourly direct and life-cycle intensity per zone on a UTC axis, each zone's CSV read on first use."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or default_carbon_dir()
        if not self.directory.is_dir():
            raise FileNotFoundError(f"carbon data {self.directory} not found (set GRIDSHIFT_SHARED_DATA)")
        self.zones = sorted(p.name.removesuffix("_carbon_2024_hourly.csv") for p in self.directory.glob("*_hourly.csv"))
        self._values: dict[str, dict[datetime, tuple[float, float]]] = {}
        self._lock = threading.Lock()

    def values(self, zone: str) -> dict[datetime, tuple[float, float]]:
        """(direct, life-cycle) gCO2eq/kWh per UTC hour of `zone`."""
        with self._lock:
            if zone not in self._values:
                if zone not in self.zones:
                    raise KeyError(zone)
                table: dict[datetime, tuple[float, float]] = {}
                with (self.directory / f"{zone}_carbon_2024_hourly.csv").open(encoding="utf-8", newline="") as f:
                    for row in csv.DictReader(f):
                        hour = datetime.fromisoformat(row["Datetime (UTC)"]).replace(tzinfo=UTC)
                        if row[DIRECT_COLUMN] and row[LCA_COLUMN]:
                            table[hour] = (float(row[DIRECT_COLUMN]), float(row[LCA_COLUMN]))
                self._values[zone] = table
            return self._values[zone]

    def at(self, zone: str, hour: datetime, lifecycle: bool) -> float | None:
        value = self.values(zone).get(hour.astimezone(UTC).replace(minute=0, second=0, microsecond=0))
        return None if value is None else value[1 if lifecycle else 0]

    def hours(self, zone: str, start: datetime, end: datetime, lifecycle: bool) -> list[tuple[datetime, float]]:
        """Recorded hours in [start, end) (start floored to the hour), missing hours left out."""
        hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        out = []
        while hour < end:
            value = self.at(zone, hour, lifecycle)
            if value is not None:
                out.append((hour, value))
            hour += HOUR
        return out


def _z(instant: datetime, *, millis: bool = False) -> str:
    text = instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return text + (".000Z" if millis else "Z")


def _json_answer(status: int, document: object) -> Answer:
    return Answer(status, json.dumps(document), "application/json")


class CarbonApi:
    """The server's answers, without HTTP: unit-testable on a given simulated `now`."""

    def __init__(self, book: CarbonBook) -> None:
        self.book = book
        self.tokens: set[str] = set()

    # -------------------------------------------------------------- Electricity Maps

    def electricity_maps(self, kind: str, query: dict[str, str], now: datetime) -> Answer:
        zone = query.get("zone", "")
        if zone not in self.book.zones:
            return _json_answer(404, {"error": f"Zone '{zone}' does not exist or is not served here"})
        factor = query.get("emissionFactorType", "lifecycle")
        if factor not in ("lifecycle", "direct"):
            return _json_answer(400, {"error": f"emissionFactorType must be lifecycle or direct, got {factor!r}"})
        current = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        lifecycle = factor == "lifecycle"
        if kind == "history":
            hours = self.book.hours(zone, current - 23 * HOUR, current + HOUR, lifecycle)
            items = [
                {
                    "zone": zone,
                    "carbonIntensity": round(value),
                    "datetime": _z(hour, millis=True),
                    "updatedAt": _z(min(now, hour + HOUR), millis=True),
                    "createdAt": _z(hour, millis=True),
                    "emissionFactorType": factor,
                    "isEstimated": False,
                    "estimationMethod": None,
                }
                for hour, value in hours
            ]
            return _json_answer(200, {"zone": zone, "history": items})
        hours = self.book.hours(zone, current + HOUR, current + 25 * HOUR, lifecycle)
        forecast = [{"carbonIntensity": round(value), "datetime": _z(hour, millis=True)} for hour, value in hours]
        return _json_answer(200, {"zone": zone, "forecast": forecast, "updatedAt": _z(current, millis=True)})

    # -------------------------------------------------------------- WattTime

    def watttime_login(self, headers: dict[str, str]) -> Answer:
        if not headers.get("authorization", "").startswith("Basic "):
            return _json_answer(401, {"error": "HTTP basic auth required"})
        token = uuid.uuid4().hex
        self.tokens.add(token)
        return _json_answer(200, {"token": token})

    def watttime_forecast(self, query: dict[str, str], headers: dict[str, str], now: datetime) -> Answer:
        if headers.get("authorization", "").removeprefix("Bearer ") not in self.tokens:
            return _json_answer(401, {"error": "invalid or expired token"})
        region = query.get("region", "")
        zone = WATTTIME_REGIONS.get(region, region.replace("_", "-"))
        if zone not in self.book.zones:
            return _json_answer(400, {"error": f"region {region!r} not served", "regions": sorted(WATTTIME_REGIONS)})
        if query.get("signal_type", "co2_moer") != "co2_moer":
            return _json_answer(400, {"error": "signal_type must be co2_moer"})
        step = timedelta(minutes=5)
        first = datetime.fromtimestamp((now.timestamp() // 300) * 300, UTC)
        points = []
        for index in range(24 * 12):
            moment = first + index * step
            value = self.book.at(zone, moment, lifecycle=False)
            if value is not None:
                points.append({"point_time": moment.isoformat(), "value": round(value / LBS_PER_MWH_IN_G_PER_KWH, 1)})
        meta = {
            "data_point_period_seconds": 300,
            "region": region,
            "signal_type": "co2_moer",
            "units": "lbs_co2_per_mwh",
            "generated_at": first.isoformat(),
            "generated_at_period_seconds": 300,
            "warnings": [{"type": "world", "message": "recorded direct average intensity, not a marginal rate"}],
        }
        return _json_answer(200, {"data": points, "meta": meta})

    # -------------------------------------------------------------- GB Carbon Intensity

    def gb_intensity(self, path: str, now: datetime) -> Answer:
        parts = [p for p in path.split("/") if p]
        regional = parts[0] == "regional"
        if regional:
            parts = parts[1:]
        if len(parts) < 3 or parts[0] != "intensity" or parts[2] != "fw48h":
            return _json_answer(400, {"error": {"code": "400 Bad Request", "message": "use /intensity/{from}/fw48h"}})
        try:
            start = datetime.strptime(parts[1], "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
        except ValueError:
            message = f"Please enter a valid ISO 8601 datetime: {parts[1]!r}"
            return _json_answer(400, {"error": {"code": "400 Bad Request", "message": message}})
        start = datetime.fromtimestamp((start.timestamp() // 1800) * 1800, UTC)
        items = []
        for index in range(96):
            begin = start + index * HALF_HOUR
            value = self.book.at("GB", begin, lifecycle=False)
            if value is None:
                continue
            actual = round(value) if begin + HALF_HOUR <= now else None
            items.append(
                {
                    "from": begin.strftime("%Y-%m-%dT%H:%MZ"),
                    "to": (begin + HALF_HOUR).strftime("%Y-%m-%dT%H:%MZ"),
                    "intensity": {"forecast": round(value), "actual": actual, "index": _gb_index(value)},
                }
            )
        if regional:
            region = parts[4] if len(parts) >= 5 else "0"
            return _json_answer(
                200, {"data": [{"regionid": int(region) if region.isdigit() else 0, "shortname": "GB", "data": items}]}
            )
        return _json_answer(200, {"data": items})

    def zones(self) -> Answer:
        return _json_answer(200, {"zones": self.book.zones, "watttimeRegions": WATTTIME_REGIONS})


def _gb_index(value: float) -> str:
    """The API's index bands (2024 thresholds, gCO2/kWh)."""
    for limit, name in ((40, "very low"), (120, "low"), (200, "moderate"), (290, "high")):
        if value < limit:
            return name
    return "very high"


class CarbonServer(SeriesServer):
    """The carbon APIs over HTTP on 127.0.0.1, reading simulated time from `now`."""

    def __init__(self, api: CarbonApi, now: Callable[[], datetime], port: int = 0, host: str = "127.0.0.1") -> None:
        super().__init__("carbon-server", now, port, host)
        self.api = api

    @property
    def known_zones(self) -> list[str]:
        return self.api.book.zones

    def zone_of(self, path: str, query: dict[str, str]) -> str | None:
        if path.startswith("/v3/carbon-intensity/"):
            return query.get("zone")
        if path.startswith("/v3/forecast"):
            region = query.get("region", "")
            return WATTTIME_REGIONS.get(region, region.replace("_", "-"))
        if path.startswith(("/intensity/", "/regional/")):
            return "GB"
        return None

    def answer(self, path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        now = self.now()
        stripped = path.rstrip("/")
        if stripped in ("/v3/carbon-intensity/history", "/v3/carbon-intensity/forecast"):
            return self.api.electricity_maps(stripped.rsplit("/", 1)[1], query, now)
        if stripped == "/login":
            return self.api.watttime_login(headers)
        if stripped == "/v3/forecast":
            return self.api.watttime_forecast(query, headers, now)
        if stripped.startswith(("/intensity/", "/regional/intensity/")):
            return self.api.gb_intensity(stripped, now)
        if stripped == "/carbon/zones":
            return self.api.zones()
        return Answer(404, "not found: try /v3/carbon-intensity/history, /v3/forecast, /intensity/...\n", "text/plain")


@dataclass(frozen=True)
class CarbonEndpoints:
    """Base URLs of each API on one server (what a RegionalCluster's carbonFeed.<type>.endpoint takes)."""

    electricity_maps: str
    watttime: str
    gb_carbon_intensity: str

    @classmethod
    def of(cls, server: CarbonServer) -> CarbonEndpoints:
        return cls(f"{server.url}/v3", server.url, server.url)
