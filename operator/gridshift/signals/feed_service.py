"""Managed feeds, whatever their series measures: cache, retries, deadline, background refresh, stale state.

`ManagedFeed.read()` never raises: it answers a `Reading` with the series (fresh, or
the last good one), the last error, and `stale`. Stale means no good fetch for
`staleAfterSeconds`; a stale reading must not move load. Time comes from the injected clock.

A refresh is one fetch with retries and backoff; each attempt runs under a total deadline
(`PriceFeedSettings.fetch_deadline_seconds`, enforced on the socket by `signals.http`). Two modes:
- synchronous (the default; the CLI, the simulator and tests): `read()` refreshes inline when
  `refreshSeconds` have passed since the last attempt;
- background (`start()`; the operator): `read()` returns what is known at once and, when a refresh
  is due, starts one on a thread of its own. The cycle never waits on the network for values, except
  the very first read, which waits up to `first_read_wait_seconds` for the first fetch.

One short-lived thread per refresh in flight (at most one per feed), not a shared pool: a hostile
endpoint holding its refresh for the whole deadline and retries cannot delay another feed's, no pool
needs sizing, and no scheduler needs starting or stopping. Refreshes are started by reads, so they
follow the injected clock (an accelerated world clock included), and a feed the operator dropped
(its RegionalCluster changed or went away) is simply never refreshed again; `close()` also ends its
backoff waits at once.

signals.price_service (prices) and signals.carbon_service (carbon intensity) differ only in the
adapters their specs name, the check their series passes again here, and what their reading adds
(the price's fx rate, the intensity's basis).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Generic, NotRequired, Protocol, Required, Self, TypedDict, TypeVar

import httpx
import requests

from gridshift import redaction
from gridshift.api.common import SecretKeyRef
from gridshift.signals.http import credentials_refused, fetch_deadline
from gridshift.signals.prices import PriceDataError, PriceFeedError, PriceFetchError
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


@dataclass(frozen=True)
class Reading(Generic[SeriesT]):
    """What a managed feed knows now (PriceReading and CarbonReading add what their values need)."""

    feed: str
    series: SeriesT | None
    """The fresh series, or the last good one (then `error` says why it was not refreshed)."""
    stale: bool
    """No good fetch for staleAfterSeconds (or ever): do not move load on these values."""
    error: PriceFeedError | None
    """The last fetch's error, None after a good fetch."""
    last_good_fetch: datetime | None

    @property
    def usable(self) -> bool:
        """Whether the planner may act on these values."""
        return self.series is not None and not self.stale


ReadingT = TypeVar("ReadingT", bound="Reading[Any]")


class FeedTiming(TypedDict):
    """How a managed feed refreshes: the RegionalCluster's refreshSeconds and staleAfterSeconds, the
    injected clock (and sleep, for tests), and the fetch settings."""

    refresh_seconds: Required[float]
    stale_after_seconds: Required[float]
    clock: Required[Clock]
    sleep: NotRequired[Sleep | None]
    settings: NotRequired[PriceFeedSettings | None]


class ManagedFeed(Generic[SeriesT, ReadingT]):
    """A feed with a TTL cache, retries with backoff, a total deadline per attempt, and the stale state.

    One machinery for every kind of series: signals.price_service.ManagedPriceFeed (prices) and
    signals.carbon_service.ManagedCarbonFeed (carbon intensity) differ only in their check and reading."""

    noun = "price feed"

    def __init__(
        self,
        feed: SeriesFeed[SeriesT],
        *,
        check: Callable[[str, SeriesT, datetime], object],
        refresh_seconds: float,
        stale_after_seconds: float,
        clock: Clock,
        sleep: Sleep | None = None,
        settings: PriceFeedSettings | None = None,
    ) -> None:
        """`check` validates each fetched series again (raising the measure's error): every adapter
        validates, checked again here so no feed can hand the planner bad data."""
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

    def carry_over(self, previous: ManagedFeed[SeriesT, Any]) -> bool:
        """Start from `previous`'s last good series, its fetch time and its last error, unless this feed has
        fetched already; whether it did. For a feed replacing one that reads the same source (the owner
        decides: signals.price_service.price_source_key), so an edit that changes no value read (fxToUsd,
        refreshSeconds) loses nothing: found in review, an fxToUsd edit during an upstream outage dropped
        the cluster's prices at once. Staleness still counts from the real fetch. The series is checked
        again here, as of its fetch, as this feed checks its own (a new fxToUsd may put a price out of
        bounds): one that fails is not carried over."""
        with previous._lock:
            series, last_good, error = previous._series, previous._last_good, previous._last_error
        if series is None or last_good is None:
            return False
        try:
            self._check(self.name, series, series.fetched_at)
        except PriceFeedError:
            return False
        with self._lock:
            if self._last_good is not None:
                return False  # a fetch of its own landed first: newer than anything carried over
            self._series, self._last_good = series, last_good
            self._last_error = self._last_error or error
        return True

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
            # Its type only: the message of an error outside the contract may quote what it was given (a URL
            # with its token); the log above keeps the traceback, where the redaction filter applies.
            error_outcome = self._unexpected(f"failed unexpectedly ({type(error).__name__})")
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

    def read(self, *, force: bool = False) -> ReadingT:
        """The current values (see _refresh_if_due for when a fetch happens); never raises."""
        self._refresh_if_due(force)
        return self._reading(*self._state())

    def _reading(
        self, series: SeriesT | None, stale: bool, error: PriceFeedError | None, last_good: datetime | None
    ) -> ReadingT:
        """The measure's Reading of this state."""
        raise NotImplementedError


class DeferredFeed(Generic[SeriesT]):
    """A feed whose adapter is built at its first fetch, and built again after a failed build or after
    the endpoint refused the credentials it was built with.

    Building resolves Secrets; deferred, that happens off the planning cycle, and a failure (a
    Secret missing or not marked for feeds, an unknown time zone) becomes the reading's error, with
    its field, instead of a feed that does not exist. A Secret created or fixed later is picked up at
    the next refresh without any change to the RegionalCluster, and so is a rotated one once the old
    value is refused (HTTP 401/403).
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
        try:
            return self._feed.fetch(now)
        except PriceFeedError as error:
            if credentials_refused(error):
                # Found in review: the Secret was read once, at the first build, so a token fixed or rotated
                # after "credentials refused (check the token Secret)" was never read again (until the spec
                # changed or the operator restarted). Built again at the next refresh, it reads the Secret anew.
                self._feed = None
            raise


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


_NON_ASCII_HINT = "a non-ASCII character (a pasted non-breaking space, curly quote or ellipsis?)"


def _bad_character(value: str, *, spaces: bool, non_ascii: bool) -> str | None:
    """What in `value` cannot go on the wire as written (None when nothing): the kind, never the character."""
    for char in value:
        if char in "\r\n":
            return "a line break"
        if char == " " and not spaces:
            return "a space"
        if char < " " or char == "\x7f":
            return "a control character"
        if char > "~" and not non_ascii:
            return _NON_ASCII_HINT
    return None


def feed_token(
    secrets: SecretResolver,
    ref: SecretKeyRef,
    feed: str,
    field: str,
    *,
    what: str = "token",
    error: type[PriceDataError] = PriceDataError,
) -> str:
    """A feed's token or password (feed_secret), less one line break at its end, checked before it is sent.

    The one line break at the end is dropped: `kubectl create secret --from-file` keeps a file's last newline,
    and no token or password ends in one. Any other line break or control character, and in a token (sent as
    written, in a header or a query string) a space or a non-ASCII character, is refused with `error` naming
    the field; the value is never quoted. A password is sent base64-encoded (HTTP basic auth), so spaces and
    non-ASCII characters are its own business (found in review: a WattTime password with a space, which
    worked, was refused). Found in review: a token with a trailing newline failed in the HTTP client as a
    retried "request failed (LocalProtocolError)", and a pasted ellipsis as "not a valid URL".
    """
    value = feed_secret(secrets, ref, feed, field, error=error)
    value = value.removesuffix("\n").removesuffix("\r")
    redaction.remember(value)
    sent_as_written = what == "token"
    problem = _bad_character(value, spaces=not sent_as_written, non_ascii=not sent_as_written)
    if problem is not None:
        raise error(feed, field, f"the {what} holds {problem}; write the Secret again without it")
    return value


def header_value_problem(value: str) -> str | None:
    """Why `value` cannot be sent as an HTTP header value (None when it can): the kind of character, never it.

    Visible ASCII, with spaces or tabs between words only (RFC 9110 5.5, as the HTTP client enforces it)."""
    if value != value.strip(" \t"):
        return "a space or tab at its start or end"
    return _bad_character(value.replace("\t", " "), spaces=True, non_ascii=False)


@dataclass(frozen=True)
class AdapterContext:
    """What building any feed adapter may need besides its spec: the name its errors carry, Secrets,
    the HTTP client, the fetch settings, a Prometheus session and the folder of relative CSV paths."""

    name: str
    secrets: SecretResolver
    http: httpx.Client
    settings: PriceFeedSettings
    prometheus_session: requests.Session | None = None
    csv_base_directory: Path | None = None


class FeedOptions(TypedDict):
    """build_price_feed's and build_carbon_feed's options besides the spec (see build_managed)."""

    name: Required[str]
    secrets: Required[SecretResolver]
    http: Required[httpx.Client]
    clock: Required[Clock]
    sleep: NotRequired[Sleep | None]
    settings: NotRequired[PriceFeedSettings | None]
    prometheus_session: NotRequired[requests.Session | None]
    csv_base_directory: NotRequired[Path | None]
    background: NotRequired[bool]


ManagedT = TypeVar("ManagedT", bound="ManagedFeed[Any, Any]")


class RefreshSpec(Protocol):
    """A feed spec's timing (PriceFeedSpec, CarbonFeedSpec)."""

    @property
    def refresh_seconds(self) -> float: ...

    @property
    def stale_after_seconds(self) -> float: ...


def source_key(spec: Any, *, stale_after_sets_values: bool) -> str:
    """What identifies the series a feed spec reads (price_source_key, carbon_source_key): the spec less the
    fields that change no value read, so a feed rebuilt for an edit of those only may carry the old one's
    series over (ManagedFeed.carry_over). fxToUsd converts downstream (the reading carries the rate) and
    refreshSeconds only times fetches; staleAfterSeconds too, except where it sets how long a value holds
    (`stale_after_sets_values`: the Prometheus feeds' `valid_for`). Everything else (type, URL, zone,
    query, currency, unit, basis, the credentials' Secret reference) names the source or how its numbers
    read: a change there starts from nothing."""
    ignored = {"fx_to_usd", "refresh_seconds"} | (set() if stale_after_sets_values else {"stale_after_seconds"})
    return str(spec.model_dump_json(exclude=ignored))


def build_managed(
    adapter: Callable[[AdapterContext], SeriesFeed[SeriesT]],
    manage: Callable[[SeriesFeed[SeriesT], FeedTiming], ManagedT],
    spec: RefreshSpec,
    options: FeedOptions,
) -> ManagedT:
    """A managed feed around the adapter a spec names; `manage` adds what the measure's reading needs.

    Synchronous (the default): the adapter is built now, and a feed that cannot be built raises
    PriceFeedError naming the field. `background=True` (the operator): the adapter is built at the
    first refresh (`DeferredFeed`), so nothing here waits on the hub or the network, build errors
    arrive in the readings, and the first refresh has already started when this returns.
    """
    settings = options.get("settings") or PriceFeedSettings()
    context = AdapterContext(
        options["name"],
        options["secrets"],
        options["http"],
        settings,
        options.get("prometheus_session"),
        options.get("csv_base_directory"),
    )
    background = options.get("background", False)
    feed: SeriesFeed[SeriesT] = DeferredFeed(context.name, lambda: adapter(context)) if background else adapter(context)
    timing = FeedTiming(
        refresh_seconds=spec.refresh_seconds,
        stale_after_seconds=spec.stale_after_seconds,
        clock=options["clock"],
        sleep=options.get("sleep"),
        settings=settings,
    )
    managed = manage(feed, timing)
    return managed.start() if background else managed
