"""Price feeds other than ENTSO-E and CSV replay: static, schedule, httpJson, prometheus, and the fake.

Each implements `gridshift.signals.prices.PriceFeed`: `fetch(now)` returns a validated series
holding the interval in progress, in the currency and unit the feed publishes, or raises
PriceFeedError naming the feed and the field. None reads the clock.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Mapping
from dataclasses import InitVar, dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from gridshift import redaction
from gridshift.api.regional_cluster import (
    EnergyUnit,
    HttpJsonFeed,
    PrometheusPriceFeed,
    ScheduleFeed,
    StaticFeed,
)
from gridshift.signals.fields import finite_number, iso_time, json_body
from gridshift.signals.http import HttpxAdapter, checked_url, get_body, retry_after_seconds
from gridshift.signals.metrics import is_timeout, prometheus_endpoint
from gridshift.signals.prices import (
    PriceDataError,
    PriceFetchError,
    PriceInterval,
    PriceKind,
    PriceSeries,
    floor_to,
    validated_series,
)
from gridshift.signals.settings import ConfiguredFeed

HOUR = timedelta(hours=1)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(eq=False, kw_only=True)
class StaticPriceFeed(ConfiguredFeed[StaticFeed]):
    """One constant price over the whole horizon."""

    currency: str
    unit: EnergyUnit

    def fetch(self, now: datetime) -> PriceSeries:
        start = floor_to(now, HOUR)
        end = start + timedelta(hours=self.settings.horizon_hours)
        interval = PriceInterval(start, end, self.spec.price, self.currency, self.unit, PriceKind.ACTUAL)
        return validated_series(self.name, [interval], self.currency, now)


@dataclass(eq=False, kw_only=True)
class SchedulePriceFeed(ConfiguredFeed[ScheduleFeed]):
    """A time-of-use tariff: hourly intervals in the tariff's local time zone, DST included."""

    currency: str
    unit: EnergyUnit

    def __post_init__(self) -> None:
        name, spec = self.name, self.spec
        try:
            self.zone = ZoneInfo(spec.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise PriceDataError(name, "schedule.timezone", f"unknown IANA time zone {spec.timezone!r}") from error
        self._price_by_day_hour: dict[tuple[str, int], float] = {}
        for index, period in enumerate(spec.periods):
            for day in period.days:
                for hour in range(period.start_hour, period.end_hour):
                    if (day, hour) in self._price_by_day_hour:
                        raise PriceDataError(
                            name, f"schedule.periods[{index}]", f"{day} {hour:02d}:00 is already in an earlier period"
                        )
                    self._price_by_day_hour[(day, hour)] = period.price

    def price_at_local(self, local: datetime) -> float:
        """The tariff for a local wall-clock time."""
        key = (WEEKDAYS[local.weekday()], local.hour)
        return self._price_by_day_hour.get(key, self.spec.default_price)

    def fetch(self, now: datetime) -> PriceSeries:
        # Each interval is one local wall-clock hour, or the part of one an offset change leaves: a DST change
        # of an hour relabels the local hour (23 or 25 of them that day), and one of 30 minutes (Lord Howe)
        # splits an hour there. Found in review: stepping one UTC hour from the start of the local hour put
        # every interval after Lord Howe's change at local :30, each priced by the hour it started in.
        local = now.astimezone(self.zone)
        start = now - timedelta(minutes=local.minute, seconds=local.second, microseconds=local.microsecond)
        # The local hour in progress may have begun at an offset change within it: found in regression review,
        # from 03:45 to 04:00 after Chatham's change (02:45 +12:45 becomes 03:45 +13:45) the local 03:00 read
        # at the old offset lay after `now`, and every fetch then failed with "no price for now".
        while (following := self._next_boundary(start)) <= now:
            start = following
        end = start + math.ceil(self.settings.horizon_hours) * HOUR
        intervals = []
        slot = start
        while slot < end:
            following = self._next_boundary(slot)
            price = self.price_at_local(slot.astimezone(self.zone))
            intervals.append(PriceInterval(slot, following, price, self.currency, self.unit, PriceKind.ACTUAL))
            slot = following
        return validated_series(self.name, intervals, self.currency, now)

    def _next_boundary(self, instant: datetime) -> datetime:
        """The first instant after `instant` (UTC) where the local hour changes: the next local :00, or the
        offset change before it, if one comes first (zones change offset at most once an hour)."""
        local = instant.astimezone(self.zone)
        into_hour = timedelta(minutes=local.minute, seconds=local.second, microseconds=local.microsecond)
        candidate = instant + HOUR - into_hour
        offset = local.utcoffset()
        if (candidate - _SECOND).astimezone(self.zone).utcoffset() == offset:
            return candidate
        # The change comes first (Chatham's, at 02:45 local): found to the second, by halves.
        low, high = 0, int((candidate - instant) / _SECOND) - 1  # seconds after `instant`: old offset, new one
        while high - low > 1:
            middle = (low + high) // 2
            if (instant + middle * _SECOND).astimezone(self.zone).utcoffset() == offset:
                low = middle
            else:
                high = middle
        return instant + high * _SECOND


_SECOND = timedelta(seconds=1)


def _dig(document: Any, path: str, feed: str) -> Any:
    value = document
    walked = []
    for part in [p for p in path.split(".") if p]:
        walked.append(part)
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise PriceDataError(feed, "httpJson.itemsPath", f"{'.'.join(walked)!r} not found in the answer")
    return value


def parse_http_json(
    body: bytes, *, feed: str, spec: HttpJsonFeed, currency: str, unit: EnergyUnit
) -> list[PriceInterval]:
    """Intervals from a JSON answer, located by the spec's items path and field names."""
    document = json_body(feed, body)
    items = _dig(document, spec.items_path, feed)
    if not isinstance(items, list):
        raise PriceDataError(feed, "httpJson.itemsPath", f"points at {type(items).__name__}, not a list")
    intervals = []
    for index, item in enumerate(items):
        where = f"items[{index}]"
        if not isinstance(item, Mapping):
            raise PriceDataError(feed, where, "not an object")
        for name in (spec.start_field, spec.end_field, spec.price_field):
            if name not in item:
                raise PriceDataError(feed, f"{where}.{name}", "missing")
        value = finite_number(feed, f"{where}.{spec.price_field}", item[spec.price_field])
        start = iso_time(feed, f"{where}.{spec.start_field}", item[spec.start_field])
        end = iso_time(feed, f"{where}.{spec.end_field}", item[spec.end_field])
        intervals.append(PriceInterval(start, end, value, currency, unit, PriceKind.ACTUAL))
    return intervals


@dataclass(eq=False, kw_only=True)
class HttpJsonPriceFeed(ConfiguredFeed[HttpJsonFeed]):
    """Any HTTP endpoint answering JSON with a list of priced intervals."""

    currency: str
    unit: EnergyUnit
    http: httpx.Client = field(repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    """From the headersSecretRef Secret: never in a repr."""

    def fetch(self, now: datetime) -> PriceSeries:
        _, body = get_body(
            self.http,
            self.name,
            self.spec.url,
            headers=dict(self.headers),
            timeout_seconds=self.settings.http_timeout_seconds,
            max_body_bytes=self.settings.max_body_bytes,
        )
        intervals = parse_http_json(body, feed=self.name, spec=self.spec, currency=self.currency, unit=self.unit)
        return validated_series(self.name, sorted(intervals, key=lambda i: i.start), self.currency, now)


@dataclass(eq=False, kw_only=True)
class PrometheusMetricPriceFeed(ConfiguredFeed[PrometheusPriceFeed]):
    """A price metric the user already has in Prometheus: its current value, valid for `valid_for` (the
    factory gives staleAfterSeconds, signals.price_service)."""

    currency: str
    unit: EnergyUnit
    valid_for: timedelta
    session: InitVar[requests.Session | None] = None
    http: InitVar[httpx.Client | None] = None

    def __post_init__(self, session: requests.Session | None, http: httpx.Client | None) -> None:
        name = self.name
        session = session or requests.Session()
        # The URL's query string (a proxy's key) is sent with every query and redacted, as the metrics source
        # does it (one path). Found in review: the whole URL went to prometheus-api-client, which appended
        # /api/v1/query after the query string, and a 401 echoing the key reached the PriceFeedStale condition.
        url, self._url_params = prometheus_endpoint(checked_url(name, "prometheus.url", self.spec.url))
        self._client = PrometheusConnect(
            url=url, retry=Retry(total=False), session=session, timeout=self.settings.http_timeout_seconds
        )
        # Requests go through the feeds' own exchange (total deadline, body cap): mounted after the
        # client, which mounts its own adapter on `url`; the longest matching prefix wins in requests.
        self._adapter = HttpxAdapter(
            http or httpx.Client(),
            name,
            timeout_seconds=self.settings.http_timeout_seconds,
            max_body_bytes=self.settings.max_body_bytes,
        )
        for prefix in (url, "http://", "https://"):
            session.mount(prefix, self._adapter)

    def fetch(self, now: datetime) -> PriceSeries:
        value = self.instant_value(now)
        interval = PriceInterval(now, now + self.valid_for, value, self.currency, self.unit, PriceKind.ACTUAL)
        return validated_series(self.name, [interval], self.currency, now)

    def instant_value(self, now: datetime) -> float:
        """The query's one value at `now` (also read by signals.carbon_feeds for an intensity metric)."""
        try:
            params: dict[str, Any] = {**self._url_params, "time": f"{now.timestamp():.3f}"}
            result = self._client.custom_query(query=self.spec.query, params=params)
        except PrometheusApiClientException as error:
            text = str(error)
            status = int(text[17:20]) if text.startswith("HTTP Status Code ") and text[17:20].isdigit() else None
            words = _prometheus_words(text)
            if status in (400, 422) and words is not None:
                # bad_data (a parse error) or execution (many-to-many matching, say): the user's query, which
                # no retry mends. Found in review: the message was the status alone.
                raise PriceDataError(
                    self.name, "prometheus.query", f"Prometheus refused the query ({words})"
                ) from error
            retryable = status is None or status == 429 or status >= 500
            detail = f"Prometheus answered HTTP {status}" + (f" ({words})" if words else "")
            retry_after = retry_after_seconds(self._adapter.last_headers()) if status == 429 else None
            raise PriceFetchError(
                self.name, "http.status", detail, retryable=retryable, retry_after_seconds=retry_after
            ) from error
        except requests.exceptions.JSONDecodeError as error:
            raise PriceDataError(self.name, "http.body", f"Prometheus answer is not JSON ({error})") from error
        except requests.exceptions.RequestException as error:
            if is_timeout(error):
                raise PriceFetchError(self.name, "http", "Prometheus did not answer in time", retryable=True) from error
            raise PriceFetchError(
                self.name, "http", f"request failed ({type(error).__name__})", retryable=True
            ) from error
        except (KeyError, TypeError) as error:
            raise PriceDataError(self.name, "http.body", "Prometheus answer has no data.result") from error
        if (
            isinstance(result, list)
            and len(result) == 2
            and isinstance(result[0], int | float)
            and isinstance(result[1], str)
        ):
            # A scalar (e.g. `scalar(...)`): its one value. Found in review: refused as "gave 2 series".
            result = [{"value": result}]
        if not isinstance(result, list) or len(result) != 1:
            count = len(result) if isinstance(result, list) else "no"
            raise PriceDataError(
                self.name, "prometheus.query", f"gave {count} series; it must give exactly one (the current value)"
            )
        try:
            value = result[0]["value"][1]
        except (KeyError, IndexError, TypeError) as error:
            raise PriceDataError(
                self.name, "prometheus.query", f"result is not an instant vector ({error!r})"
            ) from error
        if isinstance(value, str) and value in _PROMETHEUS_NOT_FINITE:
            return _PROMETHEUS_NOT_FINITE[value]  # refused by the series check, naming intervals[0].price
        # Anything else a plain number (signals.fields): float() read "1_0" as 10 and "１２" as 12.
        return finite_number(self.name, "data.result[0].value", value)


_PROMETHEUS_NOT_FINITE = {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf}
"""How Prometheus writes a sample that is not a finite number (Go's strconv.FormatFloat)."""


_MAX_WORDS = 300
"""The most of Prometheus's own error text a message carries (it quotes the query, which may be long)."""


def _prometheus_words(text: str) -> str | None:
    """Prometheus's `errorType: error` from prometheus-api-client's exception text, `HTTP Status Code N
    (b'<body>')`, redacted and cut short; None when the body is not Prometheus's error answer."""
    start = text.find(" (")
    if start < 0 or not text.endswith(")"):
        return None
    try:
        body = ast.literal_eval(text[start + 2 : -1])
        answer = json.loads(body)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if not isinstance(answer, dict) or not isinstance(answer.get("error"), str):
        return None
    kind = answer.get("errorType")
    words = redaction.redact(f"{kind}: {answer['error']}" if isinstance(kind, str) else answer["error"])
    return words if len(words) <= _MAX_WORDS else f"{words[: _MAX_WORDS - 3]}..."
