"""Managed price feeds: build the right adapter from a PriceFeedSpec, cache, retry, go stale.

`ManagedPriceFeed.read()` never raises: it answers a `PriceReading` with the series (fresh, or
the last good one), the last error, and `stale`. Stale means no good fetch for
`staleAfterSeconds`; a stale reading must not move load. Time comes from the injected clock.

A refresh is one fetch with retries and backoff; each attempt runs under a total deadline
(`PriceFeedSettings.fetch_deadline_seconds`, enforced on the socket by `signals.http`). Two modes:
- synchronous (the default; the CLI, the simulator and tests): `read()` refreshes inline when
  `refreshSeconds` have passed since the last attempt;
- background (`start()`; the operator): `read()` returns what is known at once and, when a refresh
  is due, starts one on a thread of its own. The cycle never waits on the network for prices, except
  the very first read, which waits up to `first_read_wait_seconds` for the first fetch.

One short-lived thread per refresh in flight (at most one per feed), not a shared pool: a hostile
endpoint holding its refresh for the whole deadline and retries cannot delay another feed's, no pool
needs sizing, and no scheduler needs starting or stopping. Refreshes are started by reads, so they
follow the injected clock (an accelerated world clock included), and a feed the operator dropped
(its RegionalCluster changed or went away) is simply never refreshed again; `close()` also ends its
backoff waits at once.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Generic, Protocol, Self, TypeVar

import httpx
import requests

from gridshift import redaction
from gridshift.api.common import SecretKeyRef
from gridshift.api.regional_cluster import PriceFeedSpec, PriceFeedType, PricePoint
from gridshift.signals.entsoe import EntsoePriceFeed
from gridshift.signals.http import fetch_deadline
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

log = logging.getLogger(__name__)

FEED_TOKEN_PURPOSE = "price-feed-token"
"""The purpose a Secret must be marked for (label `gridshift.dev/secret-purpose`) before a price
feed may read it: a RegionalCluster writer can then not send, say, a member kubeconfig to an
endpoint of their choosing as a feed token."""


class SecretResolver(Protocol):
    """Reads one key of a Secret marked for `purpose` (the adapter receives the value, never the Secret).

    Implementations refuse a Secret not marked for `purpose`, and `redaction.remember` each value
    they hand out.
    """

    def resolve(self, ref: SecretKeyRef, purpose: str) -> str: ...


class MappingSecretResolver:
    """Secrets from a mapping (namespace or None, name, key) -> value: for tests, the CLI and the simulator.

    Every Secret of the mapping counts as marked for every purpose; `requests` records what was asked.
    """

    def __init__(self, values: Mapping[tuple[str | None, str, str], str]) -> None:
        self._values = dict(values)
        self.requests: list[tuple[SecretKeyRef, str]] = []

    def resolve(self, ref: SecretKeyRef, purpose: str) -> str:
        self.requests.append((ref, purpose))
        try:
            value = self._values[(ref.namespace, ref.name, ref.key)]
        except KeyError as error:
            raise KeyError(
                f"secret {ref.namespace or '<operator namespace>'}/{ref.name} has no key {ref.key}"
            ) from error
        redaction.remember(value)
        return value


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


class FeedSeries(Protocol):
    """What a managed feed caches: a validated series, when it was fetched, and a stale copy of it."""

    @property
    def fetched_at(self) -> datetime: ...

    def marked_stale(self) -> Self: ...


SeriesT = TypeVar("SeriesT", bound=FeedSeries)
SeriesT_co = TypeVar("SeriesT_co", bound=FeedSeries, covariant=True)


class SeriesFeed(Protocol[SeriesT_co]):
    """A source of a series (PriceFeed for prices, signals.carbon.CarbonFeed for carbon intensity)."""

    @property
    def name(self) -> str: ...

    def fetch(self, now: datetime) -> SeriesT_co: ...


class ManagedFeed(Generic[SeriesT]):
    """A feed with a TTL cache, retries with backoff, a total deadline per attempt, and the stale state.

    One machinery for every kind of series: ManagedPriceFeed (prices) and
    signals.carbon_service.ManagedCarbonFeed (carbon intensity) differ only in their check and reading."""

    noun = "price feed"

    def __init__(
        self,
        feed: SeriesFeed[SeriesT],
        *,
        check: Callable[[str, SeriesT, datetime], None],
        refresh_seconds: float,
        stale_after_seconds: float,
        clock: Clock,
        sleep: Sleep | None = None,
        settings: PriceFeedSettings | None = None,
    ) -> None:
        self.feed = feed
        self._check = check
        self.refresh = timedelta(seconds=refresh_seconds)
        self.stale_after = timedelta(seconds=stale_after_seconds)
        self._clock = clock
        self._sleep = sleep
        self.settings = settings or PriceFeedSettings()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._background = False
        self._in_flight: threading.Thread | None = None
        self._series: SeriesT | None = None
        self._last_good: datetime | None = None
        self._last_error: PriceFeedError | None = None
        self._last_attempt: datetime | None = None

    @property
    def name(self) -> str:
        return self.feed.name

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Refresh in the background from now on, starting with a refresh now; returns the feed."""
        with self._lock:
            self._background = True
            self._start_refresh_locked(self._clock())
        return self

    def close(self) -> None:
        """Start no more refreshes; a refresh in flight stops at its deadline or next backoff, unrecorded."""
        self._closed.set()

    @property
    def refreshing(self) -> bool:
        """Whether a background refresh is in flight."""
        thread = self._in_flight
        return thread is not None and thread.is_alive()

    # ------------------------------------------------------------------ refreshing

    def _wait(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            self._closed.wait(seconds)

    def _fetch_with_retries(self) -> SeriesT:
        policy = self.settings.retry
        for attempt in range(1, policy.max_attempts + 1):
            now = self._clock()
            try:
                with fetch_deadline(self.settings.fetch_deadline_seconds):
                    series = self.feed.fetch(now)
                # Every adapter validates; checked again here so no feed can hand the planner bad data.
                self._check(self.name, series, now)
                return series
            except PriceFeedError as error:
                if not error.retryable or attempt == policy.max_attempts or self._closed.is_set():
                    raise
                retry_after = error.retry_after_seconds if isinstance(error, PriceFetchError) else None
                self._wait(policy.backoff_seconds(attempt, retry_after))
                if self._closed.is_set():
                    raise
        raise AssertionError("unreachable: the last attempt raises")

    def refresh_now(self) -> None:
        """One refresh here and now (retries and backoff included); the result is what read() answers next."""
        error_outcome: PriceFeedError | None = None
        series: SeriesT | None = None
        try:
            series = self._fetch_with_retries()
        except PriceFeedError as error:
            error_outcome = error
        except Exception as error:  # a bug in an adapter must not kill the refresh thread unseen
            log.warning("%s %r: refresh failed unexpectedly", self.noun, self.name, exc_info=True)
            error_outcome = self._unexpected(f"failed unexpectedly ({type(error).__name__}: {error})")
        with self._lock:
            if self._background and self._closed.is_set():
                return  # closed while in flight: the owner has moved on
            if series is not None:
                self._series, self._last_good, self._last_error = series, series.fetched_at, None
            else:
                self._last_error = error_outcome

    def _unexpected(self, message: str) -> PriceFeedError:
        """The error recorded when an adapter fails outside the PriceFeedError contract."""
        return PriceFeedError(self.name, "fetch", message)

    def _start_refresh_locked(self, now: datetime) -> None:
        if self._closed.is_set() or self.refreshing:
            return
        self._last_attempt = now
        thread = threading.Thread(
            target=self.refresh_now, name=f"{self.noun.replace(' ', '-')} {self.name}", daemon=True
        )
        self._in_flight = thread
        thread.start()

    def _due(self, now: datetime) -> bool:
        return self._last_attempt is None or now - self._last_attempt >= self.refresh

    # ------------------------------------------------------------------ reading

    def _refresh_if_due(self, force: bool) -> None:
        """Synchronous mode: fetch inline once refreshSeconds have passed since the last attempt.
        Background mode: never wait (but on the first read, see the module docstring); a due
        refresh is started on its own thread."""
        now = self._clock()
        if self._background:
            with self._lock:
                if force or self._due(now):
                    self._start_refresh_locked(now)
                first = self._in_flight if self._last_good is None and self._last_error is None else None
            if first is not None:
                first.join(self.settings.first_read_wait_seconds)
        elif force or self._due(now):
            self._last_attempt = now
            self.refresh_now()

    def _state(self) -> tuple[SeriesT | None, bool, PriceFeedError | None, datetime | None]:
        """(series, marked stale when stale; stale; last error; last good fetch)."""
        with self._lock:
            series, last_good, error = self._series, self._last_good, self._last_error
        now = self._clock()
        stale = last_good is None or now - last_good >= self.stale_after
        if series is not None and stale:
            series = series.marked_stale()
        return series, stale, error, last_good


def _check_prices(currency: str) -> Callable[[str, PriceSeries, datetime], None]:
    def check(name: str, series: PriceSeries, now: datetime) -> None:
        validate_intervals(name, series.intervals, expected_currency=currency)
        require_covers(name, series.intervals, now)

    return check


class ManagedPriceFeed(ManagedFeed[PriceSeries]):
    """A price feed managed (ManagedFeed), its intervals checked in the configured currency."""

    def __init__(
        self,
        feed: PriceFeed,
        *,
        currency: str,
        fx_to_usd: float,
        refresh_seconds: float,
        stale_after_seconds: float,
        clock: Clock,
        sleep: Sleep | None = None,
        settings: PriceFeedSettings | None = None,
    ) -> None:
        super().__init__(
            feed,
            check=_check_prices(currency),
            refresh_seconds=refresh_seconds,
            stale_after_seconds=stale_after_seconds,
            clock=clock,
            sleep=sleep,
            settings=settings,
        )
        self.currency = currency
        self.fx_to_usd = fx_to_usd

    def read(self, *, force: bool = False) -> PriceReading:
        """The current prices (see ManagedFeed._refresh_if_due for when a fetch happens)."""
        self._refresh_if_due(force)
        series, stale, error, last_good = self._state()
        return PriceReading(
            feed=self.name,
            series=series,
            stale=stale,
            error=error,
            last_good_fetch=last_good,
            fx_to_usd=self.fx_to_usd,
        )


class DeferredFeed(Generic[SeriesT]):
    """A feed whose adapter is built at its first fetch, and built again after a failed build.

    Building resolves Secrets; deferred, that happens off the planning cycle, and a failure (a
    Secret missing or not marked for feeds, an unknown time zone) becomes the reading's error, with
    its field, instead of a feed that does not exist. A Secret created or fixed later is picked up at
    the next refresh without any change to the RegionalCluster.
    """

    def __init__(self, name: str, build: Callable[[], SeriesFeed[SeriesT]]) -> None:
        self.name = name
        self._build = build
        self._feed: SeriesFeed[SeriesT] | None = None

    @property
    def adapter(self) -> SeriesFeed[SeriesT] | None:
        """The adapter, once built."""
        return self._feed

    def fetch(self, now: datetime) -> SeriesT:
        if self._feed is None:
            self._feed = self._build()
        return self._feed.fetch(now)


DeferredPriceFeed = DeferredFeed[PriceSeries]


def _json_headers(feed: str, text: str) -> dict[str, str]:
    try:
        headers = json.loads(text)
    except ValueError:
        # No chained cause: the decoder's message quotes the text, which is a secret.
        raise PriceDataError(feed, "httpJson.headersSecretRef", "the secret is not a JSON object") from None
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise PriceDataError(feed, "httpJson.headersSecretRef", "the secret must be a JSON object of strings")
    for value in headers.values():
        redaction.remember(value)
    return {str(k): v for k, v in headers.items()}


def feed_secret(
    secrets: SecretResolver,
    ref: SecretKeyRef,
    feed: str,
    field: str,
    *,
    error: type[PriceDataError] = PriceDataError,
) -> str:
    """A feed credential (price or carbon feed), from a Secret marked for feed tokens; `error` naming
    the field otherwise."""
    try:
        return secrets.resolve(ref, FEED_TOKEN_PURPOSE)
    except PriceFeedError:
        raise
    except Exception as failure:  # the resolver's own error (missing, forbidden, not marked): names, never values
        raise error(feed, field, f"cannot read the Secret: {failure}") from None


def price_feed_adapter(
    spec: PriceFeedSpec,
    *,
    name: str,
    secrets: SecretResolver,
    http: httpx.Client,
    settings: PriceFeedSettings,
    prometheus_session: requests.Session | None = None,
    csv_base_directory: Path | None = None,
) -> PriceFeed:
    """The adapter named by `spec.type`, its Secrets resolved now; PriceFeedError naming the field otherwise."""
    if spec.type is PriceFeedType.ENTSOE and spec.entsoe is not None:
        token = feed_secret(secrets, spec.entsoe.token_secret_ref, name, "entsoe.tokenSecretRef")
        return EntsoePriceFeed(
            name, spec=spec.entsoe, token=token, currency=spec.currency, http=http, settings=settings
        )
    if spec.type is PriceFeedType.PROMETHEUS and spec.prometheus is not None:
        return PrometheusMetricPriceFeed(
            name,
            spec=spec.prometheus,
            currency=spec.currency,
            unit=spec.unit,
            valid_for=timedelta(seconds=spec.refresh_seconds),
            settings=settings,
            session=prometheus_session,
            http=http,
        )
    if spec.type is PriceFeedType.HTTP_JSON and spec.http_json is not None:
        ref = spec.http_json.headers_secret_ref
        text = feed_secret(secrets, ref, name, "httpJson.headersSecretRef") if ref is not None else None
        return HttpJsonPriceFeed(
            name,
            spec=spec.http_json,
            currency=spec.currency,
            unit=spec.unit,
            http=http,
            headers=_json_headers(name, text) if text is not None else {},
            settings=settings,
        )
    if spec.type is PriceFeedType.SCHEDULE and spec.schedule is not None:
        return SchedulePriceFeed(name, spec=spec.schedule, currency=spec.currency, unit=spec.unit, settings=settings)
    if spec.type is PriceFeedType.STATIC and spec.static is not None:
        return StaticPriceFeed(name, spec=spec.static, currency=spec.currency, unit=spec.unit, settings=settings)
    if spec.type is PriceFeedType.CSV_REPLAY and spec.csv_replay is not None:
        return CsvReplayPriceFeed(
            name, spec=spec.csv_replay, currency=spec.currency, settings=settings, base_directory=csv_base_directory
        )
    raise PriceDataError(name, "type", f"no settings block for feed type {spec.type}")


def build_price_feed(
    spec: PriceFeedSpec,
    *,
    name: str,
    secrets: SecretResolver,
    http: httpx.Client,
    clock: Clock,
    sleep: Sleep | None = None,
    settings: PriceFeedSettings | None = None,
    prometheus_session: requests.Session | None = None,
    csv_base_directory: Path | None = None,
    background: bool = False,
) -> ManagedPriceFeed:
    """The managed feed for a RegionalCluster's priceFeed; `name` labels its errors (e.g. the cluster).

    Synchronous (the default): the adapter is built now, and a feed that cannot be built raises
    PriceFeedError naming the field. `background=True` (the operator): the adapter is built at the
    first refresh (`DeferredPriceFeed`), so nothing here waits on the hub or the network, build
    errors arrive in the readings, and the first refresh has already started when this returns.
    """
    settings = settings or PriceFeedSettings()

    def adapter() -> PriceFeed:
        return price_feed_adapter(
            spec,
            name=name,
            secrets=secrets,
            http=http,
            settings=settings,
            prometheus_session=prometheus_session,
            csv_base_directory=csv_base_directory,
        )

    managed = ManagedPriceFeed(
        DeferredPriceFeed(name, adapter) if background else adapter(),
        currency=spec.currency,
        fx_to_usd=spec.fx_to_usd,
        refresh_seconds=spec.refresh_seconds,
        stale_after_seconds=spec.stale_after_seconds,
        clock=clock,
        sleep=sleep,
        settings=settings,
    )
    return managed.start() if background else managed
