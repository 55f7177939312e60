"""Managed price feeds: build the right adapter from a PriceFeedSpec, cache, retry, go stale.

`ManagedPriceFeed.read()` never raises: it answers a `PriceReading` with the series (fresh, or
the last good one), the last error, and `stale`. Stale means no good fetch for
`staleAfterSeconds`; a stale reading must not move load. Time comes from the injected clock and
waits go through the injected sleep, so tests run instantly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

import httpx
import requests

from gridshift.api.common import SecretKeyRef
from gridshift.api.regional_cluster import PriceFeedSpec, PriceFeedType, PricePoint
from gridshift.signals.entsoe import EntsoePriceFeed
from gridshift.signals.price_csv import CsvReplayPriceFeed
from gridshift.signals.price_feeds import (
    HttpJsonPriceFeed,
    PrometheusMetricPriceFeed,
    SchedulePriceFeed,
    StaticPriceFeed,
)
from gridshift.signals.prices import (
    PriceDataError,
    PriceFeed,
    PriceFeedError,
    PriceFetchError,
    PriceSeries,
    require_covers,
    to_usd_per_kwh,
    validate_intervals,
)
from gridshift.signals.settings import PriceFeedSettings

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]


class SecretResolver(Protocol):
    """Reads one key of a Secret (the adapter receives the value, never the Secret)."""

    def resolve(self, ref: SecretKeyRef) -> str: ...


class MappingSecretResolver:
    """Secrets from a mapping (namespace or None, name, key) -> value: for tests, the CLI and the simulator."""

    def __init__(self, values: Mapping[tuple[str | None, str, str], str]) -> None:
        self._values = dict(values)

    def resolve(self, ref: SecretKeyRef) -> str:
        try:
            return self._values[(ref.namespace, ref.name, ref.key)]
        except KeyError as error:
            raise KeyError(
                f"secret {ref.namespace or '<operator namespace>'}/{ref.name} has no key {ref.key}"
            ) from error


@dataclass(frozen=True)
class PriceReading:
    """What a managed feed knows now."""

    feed: str
    series: PriceSeries | None
    """The fresh series, or the last good one (then `error` says why it was not refreshed)."""
    stale: bool
    """No good fetch for staleAfterSeconds (or ever): do not move load on these prices."""
    error: PriceFeedError | None
    """The last fetch's error, None after a good fetch."""
    last_good_fetch: datetime | None
    fx_to_usd: float

    @property
    def usable(self) -> bool:
        """Whether the planner may act on these prices."""
        return self.series is not None and not self.stale

    def usd_per_kwh(self) -> list[PricePoint]:
        """The prices in USD/kWh; PriceDataError if they must not be used."""
        if self.series is None or self.stale:
            reason = self.error or "no good fetch yet"
            raise PriceDataError(self.feed, "series", f"stale, not to be planned on ({reason})")
        return to_usd_per_kwh(self.series, self.fx_to_usd)


class ManagedPriceFeed:
    """A feed with a TTL cache, retries with backoff, and the stale state."""

    def __init__(
        self,
        feed: PriceFeed,
        *,
        currency: str,
        fx_to_usd: float,
        refresh_seconds: float,
        stale_after_seconds: float,
        clock: Clock,
        sleep: Sleep,
        settings: PriceFeedSettings | None = None,
    ) -> None:
        self.feed = feed
        self.currency = currency
        self.fx_to_usd = fx_to_usd
        self.refresh = timedelta(seconds=refresh_seconds)
        self.stale_after = timedelta(seconds=stale_after_seconds)
        self._clock = clock
        self._sleep = sleep
        self.settings = settings or PriceFeedSettings()
        self._series: PriceSeries | None = None
        self._last_good: datetime | None = None
        self._last_error: PriceFeedError | None = None
        self._last_attempt: datetime | None = None

    @property
    def name(self) -> str:
        return self.feed.name

    def _fetch_with_retries(self) -> PriceSeries:
        policy = self.settings.retry
        for attempt in range(1, policy.max_attempts + 1):
            now = self._clock()
            try:
                series = self.feed.fetch(now)
                # Every adapter validates; checked again here so no feed can hand the planner bad data.
                validate_intervals(self.name, series.intervals, expected_currency=self.currency)
                require_covers(self.name, series.intervals, now)
                return series
            except PriceFeedError as error:
                if not error.retryable or attempt == policy.max_attempts:
                    raise
                retry_after = error.retry_after_seconds if isinstance(error, PriceFetchError) else None
                self._sleep(policy.backoff_seconds(attempt, retry_after))
        raise AssertionError("unreachable: the last attempt raises")

    def read(self, *, force: bool = False) -> PriceReading:
        """The current prices: cached within refreshSeconds of the last attempt, fetched otherwise."""
        now = self._clock()
        due = self._last_attempt is None or now - self._last_attempt >= self.refresh
        if force or due:
            self._last_attempt = now
            try:
                self._series = self._fetch_with_retries()
                self._last_good = self._series.fetched_at
                self._last_error = None
            except PriceFeedError as error:
                self._last_error = error
        now = self._clock()
        stale = self._last_good is None or now - self._last_good >= self.stale_after
        series = self._series
        if series is not None and stale:
            series = series.marked_stale()
        return PriceReading(
            feed=self.name,
            series=series,
            stale=stale,
            error=self._last_error,
            last_good_fetch=self._last_good,
            fx_to_usd=self.fx_to_usd,
        )


def _json_headers(feed: str, text: str) -> dict[str, str]:
    try:
        headers = json.loads(text)
    except ValueError as error:
        raise PriceDataError(feed, "httpJson.headersSecretRef", "the secret is not a JSON object") from error
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise PriceDataError(feed, "httpJson.headersSecretRef", "the secret must be a JSON object of strings")
    return {str(k): v for k, v in headers.items()}


def build_price_feed(
    spec: PriceFeedSpec,
    *,
    name: str,
    secrets: SecretResolver,
    http: httpx.Client,
    clock: Clock,
    sleep: Sleep,
    settings: PriceFeedSettings | None = None,
    prometheus_session: requests.Session | None = None,
    csv_base_directory: Path | None = None,
) -> ManagedPriceFeed:
    """The managed feed for a RegionalCluster's priceFeed; `name` labels its errors (e.g. the cluster)."""
    settings = settings or PriceFeedSettings()
    feed: PriceFeed
    if spec.type is PriceFeedType.ENTSOE and spec.entsoe is not None:
        token = secrets.resolve(spec.entsoe.token_secret_ref)
        feed = EntsoePriceFeed(
            name, spec=spec.entsoe, token=token, currency=spec.currency, http=http, settings=settings
        )
    elif spec.type is PriceFeedType.PROMETHEUS and spec.prometheus is not None:
        feed = PrometheusMetricPriceFeed(
            name,
            spec=spec.prometheus,
            currency=spec.currency,
            unit=spec.unit,
            valid_for=timedelta(seconds=spec.refresh_seconds),
            settings=settings,
            session=prometheus_session,
        )
    elif spec.type is PriceFeedType.HTTP_JSON and spec.http_json is not None:
        ref = spec.http_json.headers_secret_ref
        headers = _json_headers(name, secrets.resolve(ref)) if ref is not None else {}
        feed = HttpJsonPriceFeed(
            name,
            spec=spec.http_json,
            currency=spec.currency,
            unit=spec.unit,
            http=http,
            headers=headers,
            settings=settings,
        )
    elif spec.type is PriceFeedType.SCHEDULE and spec.schedule is not None:
        feed = SchedulePriceFeed(name, spec=spec.schedule, currency=spec.currency, unit=spec.unit, settings=settings)
    elif spec.type is PriceFeedType.STATIC and spec.static is not None:
        feed = StaticPriceFeed(name, spec=spec.static, currency=spec.currency, unit=spec.unit, settings=settings)
    elif spec.type is PriceFeedType.CSV_REPLAY and spec.csv_replay is not None:
        feed = CsvReplayPriceFeed(
            name, spec=spec.csv_replay, currency=spec.currency, settings=settings, base_directory=csv_base_directory
        )
    else:
        raise PriceDataError(name, "type", f"no settings block for feed type {spec.type}")
    return ManagedPriceFeed(
        feed,
        currency=spec.currency,
        fx_to_usd=spec.fx_to_usd,
        refresh_seconds=spec.refresh_seconds,
        stale_after_seconds=spec.stale_after_seconds,
        clock=clock,
        sleep=sleep,
        settings=settings,
    )
