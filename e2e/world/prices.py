"""The price server: 2024 market prices replayed on the world clock, as the real APIs answer them.

- `GET /api?securityToken=..&documentType=A44&in_Domain=<EIC>&out_Domain=<EIC>&periodStart=yyyyMMddHHmm
  &periodEnd=yyyyMMddHHmm`: the ENTSO-E Transparency Platform REST API. Whole delivery days
  (CET/CEST) overlapping the period, as A44 `Publication_MarketDocument` written by the operator's
  own `gridshift.signals.entsoe.write_a44`; errors and "no data" as `Acknowledgement_MarketDocument`
  (400/401, or 200 with Reason 999), like the real service.
- `GET /json/<zone>` (optional `start`, `end` ISO 8601): a JSON list of
  `{"start", "end", "price", "currency", "unit"}` for the `httpJson` feed (default field names).
- `GET /zones`: the zones served, with their EIC, currency and publication rule.

Day-ahead markets publish a delivery day at 12:00 local time of the day before (EU: Europe/Brussels,
as the SDAC auction), so at simulated 11:59 tomorrow is unknown and at 12:00 it appears.
Real-time markets (PJM RT LMP, IESO HOEP, AEMO, USEP) know an hour's price once the hour ends.
Data come from shared/data/prices-2024/prices_2024_utc_hourly_wide.csv (no filling: a missing
hour is missing). Faults (`FeedFault`): a zone (or "*") answering 500, or stalling.
"""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

from gridshift.api.regional_cluster import EnergyUnit
from gridshift.signals.entsoe import PERIOD_FORMAT, write_a44
from gridshift.signals.prices import PriceInterval

from .feedserver import Answer, SeriesServer
from .trace import shared_data_dir

HOUR = timedelta(hours=1)
ACK_NAMESPACE = "urn:iec62325.351:tc57wg16:451-1:acknowledgementdocument:7:0"
MAX_PERIOD = timedelta(days=366)
"""ENTSO-E refuses a period longer than one year."""


class Publication(StrEnum):
    DAY_AHEAD = "dayAhead"
    REAL_TIME = "realTime"


@dataclass(frozen=True)
class Zone:
    """One market column of the wide CSV."""

    name: str
    column: str
    currency: str
    timezone: str
    """Market-day time zone: delivery days and the noon publication are in this zone."""
    publication: Publication
    eic: str | None = None
    """Bidding-zone EIC code, for zones the ENTSO-E endpoint serves."""

    def timezone_info(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


ZONES: dict[str, Zone] = {
    zone.name: zone
    for zone in (
        Zone("AT", "AT_EUR_per_MWh", "EUR", "Europe/Brussels", Publication.DAY_AHEAD, "10YAT-APG------L"),
        Zone("BE", "BE_EUR_per_MWh", "EUR", "Europe/Brussels", Publication.DAY_AHEAD, "10YBE----------2"),
        Zone("CH", "CH_EUR_per_MWh", "EUR", "Europe/Brussels", Publication.DAY_AHEAD, "10YCH-SWISSGRIDZ"),
        Zone("DE-LU", "DE-LU_EUR_per_MWh", "EUR", "Europe/Brussels", Publication.DAY_AHEAD, "10Y1001A1001A82H"),
        Zone("ES", "ES_EUR_per_MWh", "EUR", "Europe/Brussels", Publication.DAY_AHEAD, "10YES-REE------0"),
        Zone("FR", "FR_EUR_per_MWh", "EUR", "Europe/Brussels", Publication.DAY_AHEAD, "10YFR-RTE------C"),
        Zone("NL", "NL_EUR_per_MWh", "EUR", "Europe/Brussels", Publication.DAY_AHEAD, "10YNL----------L"),
        Zone("PT", "PT_EUR_per_MWh", "EUR", "Europe/Brussels", Publication.DAY_AHEAD, "10YPT-REN------W"),
        Zone("US-CAL-CISO", "US-CAL-CISO_USD_per_MWh", "USD", "America/Los_Angeles", Publication.DAY_AHEAD),
        Zone("US-MIDA-PJM", "US-MIDA-PJM_USD_per_MWh", "USD", "America/New_York", Publication.REAL_TIME),
        Zone("US-NY-NYIS", "US-NY-NYIS_USD_per_MWh", "USD", "America/New_York", Publication.DAY_AHEAD),
        Zone("US-TEX-ERCO", "US-TEX-ERCO_USD_per_MWh", "USD", "America/Chicago", Publication.DAY_AHEAD),
        Zone("CA-ON", "CA-ON_CAD_per_MWh", "CAD", "America/Toronto", Publication.REAL_TIME),
        Zone("AU-NSW", "AU-NSW_AUD_per_MWh", "AUD", "Australia/Sydney", Publication.REAL_TIME),
        Zone("AU-VIC", "AU-VIC_AUD_per_MWh", "AUD", "Australia/Melbourne", Publication.REAL_TIME),
        Zone("JP-TK", "JP-TK_JPY_per_MWh", "JPY", "Asia/Tokyo", Publication.DAY_AHEAD),
        Zone("SG", "SG_SGD_per_MWh", "SGD", "Asia/Singapore", Publication.REAL_TIME),
    )
}
ZONES_BY_EIC = {zone.eic: zone for zone in ZONES.values() if zone.eic}


def default_price_csv() -> Path:
    return shared_data_dir() / "prices-2024" / "prices_2024_utc_hourly_wide.csv"


class PriceBook:
    """Hourly prices per zone on a UTC axis, read once from the wide CSV; missing hours are absent."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_price_csv()
        if not self.path.is_file():
            raise FileNotFoundError(f"price CSV {self.path} not found (set GRIDSHIFT_SHARED_DATA)")
        self.prices: dict[str, dict[datetime, float]] = {name: {} for name in ZONES}
        with self.path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [zone.column for zone in ZONES.values() if zone.column not in header]
            if "datetime_utc" not in header or missing:
                raise ValueError(f"price CSV {self.path}: missing columns {['datetime_utc', *missing]}")
            for row in reader:
                hour = datetime.fromisoformat(row["datetime_utc"].replace("Z", "+00:00"))
                for zone in ZONES.values():
                    text = row[zone.column]
                    if text:
                        self.prices[zone.name][hour] = float(text)
        hours = sorted(self.prices["FR"])
        self.first_hour, self.last_hour = hours[0], hours[-1]

    def published_until(self, zone: Zone, now: datetime) -> datetime:
        """End (exclusive) of the hours whose prices are public at simulated time `now`."""
        if zone.publication is Publication.REAL_TIME:
            return now.replace(minute=0, second=0, microsecond=0)
        local = now.astimezone(ZoneInfo(zone.timezone))
        known_days = 2 if local.hour >= 12 else 1
        last_day = local.date() + timedelta(days=known_days)
        return _local_midnight(last_day, zone.timezone)

    def intervals(self, zone: Zone, start: datetime, end: datetime, now: datetime) -> list[PriceInterval]:
        """Published hourly intervals in [start, end), sorted."""
        stop = min(end, self.published_until(zone, now))
        hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        series = self.prices[zone.name]
        out = []
        while hour < stop:
            price = series.get(hour)
            if price is not None:
                out.append(PriceInterval(hour, hour + HOUR, price, zone.currency, EnergyUnit.MWH))
            hour += HOUR
        return out

    def delivery_days(self, zone: Zone, start: datetime, end: datetime) -> tuple[datetime, datetime]:
        """[first day's start, last day's end) of the delivery days overlapping [start, end), in UTC."""
        tz = zone.timezone
        first = start.astimezone(ZoneInfo(tz)).date()
        last = (end - timedelta(microseconds=1)).astimezone(ZoneInfo(tz)).date()
        return _local_midnight(first, tz), _local_midnight(last + timedelta(days=1), tz)


def _local_midnight(day: date, timezone: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone)).astimezone(UTC)


# ---------------------------------------------------------------------------------------- faults


# ---------------------------------------------------------------------------------------- documents


def acknowledgement(reason_code: str, text: str, now: datetime) -> str:
    """ENTSO-E's Acknowledgement_MarketDocument (no data: 999)."""
    created = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Acknowledgement_MarketDocument xmlns="{ACK_NAMESPACE}">\n'
        f"  <mRID>{uuid.uuid4().hex}</mRID>\n"
        f"  <createdDateTime>{created}</createdDateTime>\n"
        '  <sender_MarketParticipant.mRID codingScheme="A01">10X1001A1001A450</sender_MarketParticipant.mRID>\n'
        "  <sender_MarketParticipant.marketRole.type>A32</sender_MarketParticipant.marketRole.type>\n"
        '  <receiver_MarketParticipant.mRID codingScheme="A01">10X1001B1001B61Q</receiver_MarketParticipant.mRID>\n'
        "  <receiver_MarketParticipant.marketRole.type>A39</receiver_MarketParticipant.marketRole.type>\n"
        "  <received_MarketDocument.createdDateTime>"
        f"{created}</received_MarketDocument.createdDateTime>\n"
        f"  <Reason>\n    <code>{reason_code}</code>\n    <text>{_xml_escape(text)}</text>\n  </Reason>\n"
        "</Acknowledgement_MarketDocument>\n"
    )


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class PriceApi:
    """The server's answers, without HTTP: unit-testable on a given simulated `now`."""

    def __init__(self, book: PriceBook, *, tokens: frozenset[str] | None = None) -> None:
        self.book = book
        self.tokens = tokens
        """Accepted securityTokens; None accepts any non-empty token."""

    def entsoe(self, query: dict[str, str], now: datetime) -> Answer:
        def bad(status: int, text: str) -> Answer:
            return Answer(status, acknowledgement("999", text, now), "application/xml")

        token = query.get("securityToken", "")
        if not token or (self.tokens is not None and token not in self.tokens):
            return bad(401, "Unauthorized. Missing or invalid security token")
        missing = [p for p in ("documentType", "in_Domain", "out_Domain", "periodStart", "periodEnd") if p not in query]
        if missing:
            return bad(400, f"Mandatory parameters missing: {', '.join(missing)}")
        if query["documentType"] != "A44":
            return bad(400, f"documentType {query['documentType']} is not served here (A44 only)")
        if query["in_Domain"] != query["out_Domain"]:
            return bad(400, "For documentType A44 in_Domain and out_Domain must be the same bidding zone")
        try:
            start = datetime.strptime(query["periodStart"], PERIOD_FORMAT).replace(tzinfo=UTC)
            end = datetime.strptime(query["periodEnd"], PERIOD_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            return bad(400, "periodStart and periodEnd must be yyyyMMddHHmm")
        if end <= start:
            return bad(400, "periodEnd must be after periodStart")
        if end - start > MAX_PERIOD:
            return bad(400, "The requested period exceeds the allowed maximum of 1 year")
        zone = ZONES_BY_EIC.get(query["in_Domain"])
        if zone is None:
            return Answer(200, acknowledgement("999", "No matching data found for Data item ...", now), "text/xml")
        day_start, day_end = self.book.delivery_days(zone, start, end)
        intervals = self.book.intervals(zone, day_start, day_end, now)
        if not intervals:
            return Answer(200, acknowledgement("999", "No matching data found for Data item ...", now), "text/xml")
        assert zone.eic is not None
        body = write_a44(intervals, area_eic=zone.eic, created_at=now, document_mrid=uuid.uuid4().hex)
        return Answer(200, body, "text/xml")

    def json_prices(self, zone_name: str, query: dict[str, str], now: datetime) -> Answer:
        zone = ZONES.get(zone_name)
        if zone is None:
            return Answer(
                404, json.dumps({"error": f"unknown zone {zone_name!r}", "zones": sorted(ZONES)}), "application/json"
            )
        try:
            start = _iso(query["start"]) if "start" in query else now - timedelta(hours=24)
            end = _iso(query["end"]) if "end" in query else now + timedelta(hours=48)
        except ValueError as error:
            return Answer(400, json.dumps({"error": str(error)}), "application/json")
        items = [
            {
                "start": _z(i.start),
                "end": _z(i.end),
                "price": i.price,
                "currency": i.currency,
                "unit": i.unit.value,
            }
            for i in self.book.intervals(zone, start, end, now)
        ]
        return Answer(200, json.dumps(items), "application/json")

    def zones(self, now: datetime) -> Answer:
        listing = [
            {
                "zone": z.name,
                "eic": z.eic,
                "currency": z.currency,
                "publication": z.publication.value,
                "publishedUntil": _z(self.book.published_until(z, now)),
            }
            for z in ZONES.values()
        ]
        return Answer(200, json.dumps(listing), "application/json")


def _iso(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"time {text!r} needs a UTC offset")
    return parsed.astimezone(UTC)


def _z(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PriceServer(SeriesServer):
    """The price API over HTTP on 127.0.0.1, reading simulated time from `now`."""

    def __init__(self, api: PriceApi, now: Callable[[], datetime], port: int = 0, host: str = "127.0.0.1") -> None:
        super().__init__("price-server", now, port, host)
        self.api = api

    @property
    def known_zones(self) -> list[str]:
        return sorted(ZONES)

    def zone_of(self, path: str, query: dict[str, str]) -> str | None:
        if path.rstrip("/") == "/api":
            zone = ZONES_BY_EIC.get(query.get("in_Domain", ""))
            return zone.name if zone else None
        if path.startswith("/json/"):
            return path[len("/json/") :].strip("/")
        return None

    def answer(self, path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        now = self.now()
        stripped = path.rstrip("/")
        if stripped == "/api":
            return self.api.entsoe(query, now)
        if stripped.startswith("/json/"):
            return self.api.json_prices(stripped[len("/json/") :], query, now)
        if stripped == "/zones":
            return self.api.zones(now)
        return Answer(404, "not found: try /api (ENTSO-E), /json/<zone> or /zones\n", "text/plain")
