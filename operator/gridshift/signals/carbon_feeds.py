"""Carbon-intensity feeds: Electricity Maps, WattTime, the GB Carbon Intensity API, a Prometheus metric,
a CSV replay of recorded intensities, and a constant.

Each implements `gridshift.signals.carbon.CarbonFeed`: `fetch(now)` returns a validated series in
gCO2eq/kWh holding the interval in progress, on the basis the RegionalCluster configures, or raises
CarbonFeedError naming the feed and the field. None reads the clock. The body parsers are
functions (`parse_electricity_maps`, `parse_watttime`, `parse_gb_carbon_intensity`,
`read_carbon_csv`), tested on recorded answers.

Formats, as the providers document them:
- Electricity Maps API v3, `GET /carbon-intensity/history?zone=Z&emissionFactorType=lifecycle|direct`
  (`auth-token` header): `{"zone", "history": [{"carbonIntensity", "datetime", "emissionFactorType",
  "isEstimated", ...}]}`, hourly, the hour's start; `/carbon-intensity/forecast` answers
  `{"zone", "forecast": [{"carbonIntensity", "datetime"}]}`.
- WattTime API v3: `GET /login` with HTTP basic auth answers `{"token"}`; `GET /v3/forecast?region=R
  &signal_type=co2_moer` (bearer token) answers `{"data": [{"point_time", "value"}], "meta":
  {"data_point_period_seconds", "units": "lbs_co2_per_mwh", ...}}`: marginal emissions.
- GB Carbon Intensity API: `GET /intensity/{from}/fw48h` answers `{"data": [{"from", "to",
  "intensity": {"forecast", "actual", "index"}}]}` (half hours, direct emissions; `actual` is null
  ahead of time); `GET /regional/intensity/{from}/fw48h/regionid/{id}` nests that list in
  `{"data": {"regionid", "shortname", "data": [...]}}` (or a one-element list of it).
- CSV: Electricity Maps' hourly history files (`Datetime (UTC),...,Carbon Intensity gCO₂eq/kWh
  (direct),Carbon Intensity gCO₂eq/kWh (LCA),...`), as in ../shared/data/carbon-2024.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import InitVar, dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import httpx
import requests

from gridshift import redaction
from gridshift.api.carbon import (
    CSV_COLUMN_SUFFIX_OF_BASIS,
    CarbonBasis,
    CsvReplayCarbonFeed,
    ElectricityMapsFeed,
    GbCarbonIntensityFeed,
    PrometheusCarbonFeed,
    StaticCarbonFeed,
    WattTimeFeed,
    csv_column_basis,
)
from gridshift.api.common import strip_white_space
from gridshift.api.regional_cluster import EnergyUnit, PrometheusPriceFeed
from gridshift.signals.carbon import (
    INTENSITIES,
    LBS_PER_MWH_IN_G_PER_KWH,
    CarbonDataError,
    CarbonFetchError,
    CarbonInterval,
    CarbonSeries,
    as_carbon_errors,
    validated_carbon_series,
)
from gridshift.signals.fields import finite_number, iso_time, json_body
from gridshift.signals.http import credentials_refused, get_body
from gridshift.signals.price_feeds import PrometheusMetricPriceFeed
from gridshift.signals.prices import PriceKind, floor_to
from gridshift.signals.recorded import CsvReplay, RecordedColumn, Recording, read_recording
from gridshift.signals.settings import ConfiguredFeed

HOUR = timedelta(hours=1)
HALF_HOUR = timedelta(minutes=30)


# ---------------------------------------------------------------------------------------- helpers


def _json(feed: str, body: bytes) -> Any:
    return json_body(feed, body, CarbonDataError)


def _time(feed: str, field: str, value: object) -> datetime:
    return iso_time(feed, field, value, CarbonDataError)


def _number(feed: str, field: str, value: object) -> float:
    return finite_number(feed, field, value, CarbonDataError)


def _list(feed: str, field: str, value: object) -> list[Any]:
    if not isinstance(value, list):
        raise CarbonDataError(feed, field, f"expected a list, got {type(value).__name__}")
    return value


def _object(feed: str, field: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise CarbonDataError(feed, field, f"expected an object, got {type(value).__name__}")
    return value


def _step_between(starts: Sequence[datetime], default: timedelta) -> timedelta:
    """The usual step of a series of starts (the smallest gap), or `default` with fewer than two."""
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts) if later > earlier]
    return min(gaps, default=default)


# ---------------------------------------------------------------------------------------- Electricity Maps

_EM_BASIS = {"lifecycle": CarbonBasis.LIFECYCLE, "direct": CarbonBasis.DIRECT}


def parse_electricity_maps(
    body: bytes,
    *,
    feed: str,
    basis: CarbonBasis,
    list_field: str = "history",
    kind: PriceKind = PriceKind.ACTUAL,
    expected_zone: str | None = None,
) -> list[CarbonInterval]:
    """Intervals of an Electricity Maps v3 history (`list_field="history"`) or forecast answer; an
    answer for another zone than `expected_zone` is refused (as ENTSO-E's area is)."""
    document = _object(feed, "http.body", _json(feed, body))
    if "error" in document and list_field not in document:
        raise CarbonDataError(
            feed, "http.body", f"Electricity Maps answered an error: {redaction.excerpt(str(document['error']), 200)}"
        )
    zone = document.get("zone")
    if expected_zone is not None and zone is not None and zone != expected_zone:
        raise CarbonDataError(
            feed, "zone", f"the answer is for zone {redaction.excerpt(str(zone), 64)!r}, not {expected_zone!r}"
        )
    items = _list(feed, list_field, document.get(list_field))
    starts: list[datetime] = []
    values: list[tuple[float, CarbonBasis]] = []
    for index, raw in enumerate(items):
        where = f"{list_field}[{index}]"
        item = _object(feed, where, raw)
        if item.get("carbonIntensity") is None:
            continue  # an hour Electricity Maps has no value for: a gap
        value = _number(feed, f"{where}.carbonIntensity", item["carbonIntensity"])
        stated = item.get("emissionFactorType")
        if stated is not None and (not isinstance(stated, str) or stated not in _EM_BASIS):
            raise CarbonDataError(feed, f"{where}.emissionFactorType", f"unknown emission factor type {stated!r}")
        starts.append(_time(feed, f"{where}.datetime", item.get("datetime")))
        values.append((value, _EM_BASIS[stated] if stated is not None else basis))
    # Oldest first, as Electricity Maps sends it: the feed takes the last as the latest published hour
    # (review, 6 December 2026: a history sent newest first held its oldest hour for now).
    ordered = sorted(zip(starts, values, strict=True), key=lambda pair: pair[0])
    step = _step_between([start for start, _ in ordered], HOUR)
    return [CarbonInterval(start, start + step, value, stated_basis, kind) for start, (value, stated_basis) in ordered]


@dataclass(eq=False, kw_only=True)
class ElectricityMapsCarbonFeed(ConfiguredFeed[ElectricityMapsFeed]):
    """Electricity Maps v3: the last 24 hours, and the forecast when the spec asks for it."""

    basis: CarbonBasis
    token: InitVar[str | None]
    http: httpx.Client = field(repr=False)

    def __post_init__(self, token: str | None) -> None:
        self._headers = {"auth-token": token} if token else {}

    def _get(self, path: str) -> bytes:
        with as_carbon_errors():
            _, body = get_body(
                self.http,
                self.name,
                f"{self.spec.endpoint.rstrip('/')}/carbon-intensity/{path}",
                params={"zone": self.spec.zone, "emissionFactorType": self.basis.value},
                headers=self._headers,
                timeout_seconds=self.settings.http_timeout_seconds,
                max_body_bytes=self.settings.max_body_bytes,
            )
        return body

    LATEST_HOLDS_FOR = timedelta(hours=2)
    """How long the latest published hour stands for the hours after it that are not published yet:
    Electricity Maps publishes an hour's value once it is estimated, sometimes after the hour began."""

    def fetch(self, now: datetime) -> CarbonSeries:
        intervals = parse_electricity_maps(
            self._get("history"), feed=self.name, basis=self.basis, expected_zone=self.spec.zone
        )
        if intervals and intervals[-1].end <= now < intervals[-1].end + self.LATEST_HOLDS_FOR:
            latest = intervals[-1]
            step = latest.end - latest.start
            intervals[-1] = replace(latest, end=floor_to(now, step) + step)
        if self.spec.forecast:
            ahead = parse_electricity_maps(
                self._get("forecast"),
                feed=self.name,
                basis=self.basis,
                list_field="forecast",
                kind=PriceKind.FORECAST,
                expected_zone=self.spec.zone,
            )
            known_until = max((i.end for i in intervals), default=now)
            intervals += [i for i in ahead if i.start >= known_until]
        return validated_carbon_series(self.name, sorted(intervals, key=lambda i: i.start), self.basis, now)


# ---------------------------------------------------------------------------------------- WattTime

_DAY_SECONDS = 86_400.0
"""Longest data point period a WattTime answer may state (it publishes 5-minute points)."""
_WATTTIME_UNITS = {"lbs_co2_per_mwh": LBS_PER_MWH_IN_G_PER_KWH, "g_co2_per_kwh": 1.0, "kg_co2_per_mwh": 1.0}


def parse_watttime(body: bytes, *, feed: str) -> list[CarbonInterval]:
    """Intervals of a WattTime v3 forecast (or historical) answer, converted to gCO2/kWh (marginal)."""
    document = _object(feed, "http.body", _json(feed, body))
    meta = _object(feed, "meta", document.get("meta", {}))
    units = meta.get("units", "lbs_co2_per_mwh")
    if not isinstance(units, str) or units not in _WATTTIME_UNITS:
        raise CarbonDataError(feed, "meta.units", f"unknown unit {units!r}; expected one of {sorted(_WATTTIME_UNITS)}")
    factor = _WATTTIME_UNITS[units]
    signal = meta.get("signal_type", "co2_moer")
    if signal != "co2_moer":
        raise CarbonDataError(feed, "meta.signal_type", f"{signal!r} is not the co2_moer signal")
    period = meta.get("data_point_period_seconds")
    seconds = _number(feed, "meta.data_point_period_seconds", period) if period is not None else None
    if seconds is not None and not 0 < seconds <= _DAY_SECONDS:
        # 1e20 s overflowed timedelta; 1e10 s made one value last until 2341 (found in review)
        raise CarbonDataError(feed, "meta.data_point_period_seconds", f"must be within (0, 86400] s, got {period!r}")
    step = timedelta(seconds=seconds) if seconds is not None else None
    items = _list(feed, "data", document.get("data"))
    starts: list[datetime] = []
    values: list[float] = []
    for index, raw in enumerate(items):
        item = _object(feed, f"data[{index}]", raw)
        values.append(_number(feed, f"data[{index}].value", item.get("value")) * factor)
        starts.append(_time(feed, f"data[{index}].point_time", item.get("point_time")))
    step = step or _step_between(starts, timedelta(minutes=5))
    return [
        CarbonInterval(start, start + step, value, CarbonBasis.MARGINAL, PriceKind.FORECAST)
        for start, value in zip(starts, values, strict=True)
    ]


@dataclass(eq=False, kw_only=True)
class WattTimeCarbonFeed(ConfiguredFeed[WattTimeFeed]):
    """WattTime v3: logs in (basic auth) for a token, then reads the co2_moer forecast from now on.

    The token (valid 30 minutes) is kept and fetched again when refused."""

    password: InitVar[str]
    http: httpx.Client = field(repr=False)

    def __post_init__(self, password: str) -> None:
        # Held for logging in again (the token lasts 30 minutes); the Basic header is built at each login only.
        self._password = redaction.Secret(password)
        self._token: str | None = None

    def _call(self, path: str, *, headers: Mapping[str, str], params: Mapping[str, str] | None = None) -> bytes:
        with as_carbon_errors():
            _, body = get_body(
                self.http,
                self.name,
                f"{self.spec.endpoint.rstrip('/')}{path}",
                params=params,
                headers=headers,
                timeout_seconds=self.settings.http_timeout_seconds,
                max_body_bytes=self.settings.max_body_bytes,
            )
        return body

    def _login(self) -> str:
        credentials = base64.b64encode(f"{self.spec.username}:{self._password.reveal()}".encode()).decode()
        basic = f"Basic {credentials}"
        # The header, the base64 credentials alone (a server may echo them) and the decoded user:password.
        redaction.remember_header(basic)
        document = _object(self.name, "login", _json(self.name, self._call("/login", headers={"Authorization": basic})))
        token = document.get("token")
        if not isinstance(token, str) or not token:
            raise CarbonDataError(self.name, "login.token", "the login answer holds no token")
        redaction.remember(token)
        return token

    def fetch(self, now: datetime) -> CarbonSeries:
        params = {"region": self.spec.region, "signal_type": "co2_moer"}
        for attempt in (1, 2):
            if self._token is None:
                self._token = self._login()
            try:
                body = self._call("/v3/forecast", headers={"Authorization": f"Bearer {self._token}"}, params=params)
                break
            except CarbonFetchError as error:
                if attempt == 2 or not credentials_refused(error):
                    raise
                self._token = None  # expired: log in again once
        intervals = parse_watttime(body, feed=self.name)
        return validated_carbon_series(self.name, intervals, CarbonBasis.MARGINAL, now)


# ---------------------------------------------------------------------------------------- GB Carbon Intensity


def parse_gb_carbon_intensity(body: bytes, *, feed: str) -> list[CarbonInterval]:
    """Intervals of a GB Carbon Intensity API answer (national or regional), gCO2/kWh direct.

    An interval's `actual` is used when published, its `forecast` otherwise (then kind FORECAST)."""
    document = _object(feed, "http.body", _json(feed, body))
    if "error" in document:
        error = document["error"]
        message = error.get("message") if isinstance(error, Mapping) else error
        raise CarbonDataError(feed, "http.body", f"the API answered an error: {redaction.excerpt(str(message), 200)}")
    data: object = document.get("data")
    field = "data"
    if isinstance(data, list) and len(data) == 1 and isinstance(data[0], Mapping) and "regionid" in data[0]:
        data = data[0]
    if isinstance(data, Mapping):  # regional: the list is one level down
        data, field = data.get("data"), "data.data"
    items = _list(feed, field, data)
    intervals = []
    for index, raw in enumerate(items):
        where = f"{field}[{index}]"
        item = _object(feed, where, raw)
        intensity = _object(feed, f"{where}.intensity", item.get("intensity"))
        actual = intensity.get("actual")
        kind = PriceKind.ACTUAL if actual is not None else PriceKind.FORECAST
        chosen = "actual" if actual is not None else "forecast"
        value = _number(feed, f"{where}.intensity.{chosen}", intensity.get(chosen))
        start = _time(feed, f"{where}.from", item.get("from"))
        end = _time(feed, f"{where}.to", item.get("to"))
        intervals.append(CarbonInterval(start, end, value, CarbonBasis.DIRECT, kind))
    return intervals


@dataclass(eq=False, kw_only=True)
class GbCarbonIntensityCarbonFeed(ConfiguredFeed[GbCarbonIntensityFeed]):
    """National Grid ESO's Carbon Intensity API: from the half hour in progress, 48 hours forward."""

    http: httpx.Client = field(repr=False)

    def fetch(self, now: datetime) -> CarbonSeries:
        start = floor_to(now, HALF_HOUR).strftime("%Y-%m-%dT%H:%MZ")
        path = f"/intensity/{start}/fw48h"
        if self.spec.region_id is not None:
            path = f"/regional/intensity/{start}/fw48h/regionid/{self.spec.region_id}"
        with as_carbon_errors():
            _, body = get_body(
                self.http,
                self.name,
                f"{self.spec.endpoint.rstrip('/')}{path}",
                headers={"Accept": "application/json"},
                timeout_seconds=self.settings.http_timeout_seconds,
                max_body_bytes=self.settings.max_body_bytes,
            )
        intervals = parse_gb_carbon_intensity(body, feed=self.name)
        return validated_carbon_series(self.name, intervals, CarbonBasis.DIRECT, now)


# ---------------------------------------------------------------------------------------- Prometheus, static


@dataclass(eq=False, kw_only=True)
class PrometheusCarbonMetricFeed(ConfiguredFeed[PrometheusCarbonFeed]):
    """An intensity metric (gCO2eq/kWh) in Prometheus: its value now, valid for `valid_for` (the factory gives
    staleAfterSeconds, signals.carbon_service).

    The query runs through the price feed's Prometheus client (PrometheusMetricPriceFeed.instant_value:
    the same deadline, body cap and error mapping)."""

    basis: CarbonBasis
    valid_for: timedelta
    session: InitVar[requests.Session | None] = None
    http: InitVar[httpx.Client | None] = None

    def __post_init__(self, session: requests.Session | None, http: httpx.Client | None) -> None:
        with as_carbon_errors():  # a URL refused here is a carbon feed's error (prometheus.url)
            self._query = PrometheusMetricPriceFeed(
                self.name,
                spec=PrometheusPriceFeed(url=self.spec.url, query=self.spec.query),
                currency="XXX",  # ISO 4217's "no currency": only instant_value is used
                unit=EnergyUnit.KWH,
                valid_for=self.valid_for,
                settings=self.settings,
                session=session,
                http=http,
            )

    def fetch(self, now: datetime) -> CarbonSeries:
        with as_carbon_errors():
            value = self._query.instant_value(now)
        interval = CarbonInterval(now, now + self.valid_for, value, self.basis, PriceKind.ACTUAL)
        return validated_carbon_series(self.name, [interval], self.basis, now)


@dataclass(eq=False, kw_only=True)
class StaticCarbonIntensityFeed(ConfiguredFeed[StaticCarbonFeed]):
    """One constant intensity over the whole horizon."""

    basis: CarbonBasis

    def fetch(self, now: datetime) -> CarbonSeries:
        start = floor_to(now, HOUR)
        end = start + timedelta(hours=self.settings.horizon_hours)
        return validated_carbon_series(
            self.name, [CarbonInterval(start, end, self.spec.g_per_kwh, self.basis)], self.basis, now
        )


# ---------------------------------------------------------------------------------------- CSV replay

_CSV_COLUMN_OF_BASIS = {CarbonBasis(basis): suffix for basis, suffix in CSV_COLUMN_SUFFIX_OF_BASIS.items()}


CarbonRecording = Recording[CarbonInterval]


def _carbon_column(feed: str, header: Sequence[str], column: str | None, basis: CarbonBasis) -> tuple[int, str]:
    named = list(enumerate(header))[1:]
    if column is not None:
        # Stripped as the header's names are (signals.recorded): a column named with the file's spaces still matches.
        matches = [(i, n) for i, n in named if n == strip_white_space(column)]
        if not matches:
            raise CarbonDataError(feed, "csvReplay.column", f"no column {column!r}; the file has: {', '.join(header)}")
        named_basis = csv_column_basis(column)  # stripped as the name matched: a trailing space must not hide it
        if named_basis is not None and named_basis != basis.value:
            # Found in review: every value was tagged with the configured basis whatever the column said, so
            # DE-LU's direct 133 g/kWh passed for life-cycle (178). Admission refuses this pair (api.carbon);
            # an object stored before that rule is refused here, at the feed's first read.
            raise CarbonDataError(
                feed,
                "csvReplay.column",
                f"column {column!r} holds {named_basis} intensities but the feed's basis is {basis.value}: "
                f"set basis: {named_basis}, or pick the column of basis {basis.value} (unset column picks it)",
            )
        return matches[0]
    suffix = _CSV_COLUMN_OF_BASIS.get(basis)
    matches = [(i, n) for i, n in named if suffix is not None and "Carbon Intensity" in n and n.endswith(suffix)]
    if len(matches) != 1:
        raise CarbonDataError(
            feed,
            "csvReplay.column",
            f"no single Electricity Maps column for basis {basis.value} "
            f"('Carbon Intensity gCO2eq/kWh {suffix or '(?)'}'); name one of: {', '.join(n for _, n in named)}",
        )
    return matches[0]


def intensity_column(
    feed: str, column: str | None, basis: CarbonBasis
) -> Callable[[Sequence[str]], RecordedColumn[CarbonInterval]]:
    """How signals.recorded finds the intensity column of a header (`column`, or Electricity Maps'
    column for `basis`) and makes its intervals."""

    def choose(header: Sequence[str]) -> RecordedColumn[CarbonInterval]:
        index, name = _carbon_column(feed, header, column, basis)

        def interval(start: datetime, end: datetime, value: float) -> CarbonInterval:
            return CarbonInterval(start, end, value, basis)

        return RecordedColumn(index, name, interval)

    return choose


def read_carbon_csv(
    lines: Iterable[str],
    *,
    feed: str = "csv",
    column: str | None = None,
    basis: CarbonBasis = CarbonBasis.LIFECYCLE,
    naive_timezone: tzinfo | None = UTC,
) -> CarbonRecording:
    """An Electricity Maps hourly CSV (or any `time,value...` CSV with `column`), row by row; naive times are
    `naive_timezone`'s (None: refused unless the time column's header says UTC; signals.recorded)."""
    return read_recording(lines, INTENSITIES, feed, intensity_column(feed, column, basis), naive_timezone)


@dataclass(eq=False, kw_only=True)
class CsvReplayCarbonIntensityFeed(ConfiguredFeed[CsvReplayCarbonFeed]):
    """Replays a recorded intensity CSV (signals.recorded.CsvReplay): the window around the supplied
    `now`, shifted by offsetDays, validated on the configured basis."""

    basis: CarbonBasis
    base_directory: InitVar[Path | None] = None

    def __post_init__(self, base_directory: Path | None) -> None:
        choose = intensity_column(self.name, self.spec.column, self.basis)
        self.replay = CsvReplay(self.name, INTENSITIES, self.spec, choose, self.settings, base_directory=base_directory)

    def fetch(self, now: datetime) -> CarbonSeries:
        return validated_carbon_series(self.name, self.replay.window(now), self.basis, now)
