"""Managed price feeds: build the adapter a PriceFeedSpec names, and manage it (signals.feed_service).

`ManagedPriceFeed.read()` never raises: it answers a `PriceReading` with the series (fresh, or the
last good one), the last error, `stale` (no good fetch for `staleAfterSeconds`: a stale reading must
not move load) and the feed's fx rate, which converts the series to USD/kWh. The cache, retries,
deadline and background refresh are signals.feed_service.ManagedFeed's, shared with carbon feeds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Unpack

from gridshift import redaction
from gridshift.api.regional_cluster import PriceFeedSpec, PriceFeedType, PricePoint
from gridshift.signals.entsoe import EntsoePriceFeed
from gridshift.signals.feed_service import (
    AdapterContext,
    DeferredFeed,
    FeedOptions,
    FeedTiming,
    ManagedFeed,
    Reading,
    SeriesFeed,
    build_managed,
    feed_secret,
    feed_token,
    header_value_problem,
    source_key,
)
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
    PriceSeries,
    to_usd_per_kwh,
    validated_series,
)


@dataclass(frozen=True)
class PriceReading(Reading[PriceSeries]):
    """What a managed price feed knows now, with the fx rate that converts it."""

    fx_to_usd: float

    def usd_per_kwh(self) -> list[PricePoint]:
        """The prices in USD/kWh; PriceDataError if they must not be used."""
        if self.series is None or self.stale:
            reason = self.error or "no good fetch yet"
            raise PriceDataError(self.feed, "series", f"stale, not to be planned on ({reason})")
        return to_usd_per_kwh(self.series, self.fx_to_usd)


class ManagedPriceFeed(ManagedFeed[PriceSeries, PriceReading]):
    """A price feed managed (ManagedFeed), its intervals checked in the configured currency."""

    def __init__(
        self, feed: SeriesFeed[PriceSeries], *, currency: str, fx_to_usd: float, **timing: Unpack[FeedTiming]
    ) -> None:
        super().__init__(
            feed,
            check=lambda name, series, now: validated_series(name, series.intervals, currency, now, fx_to_usd),
            **timing,
        )
        self.currency = currency
        self.fx_to_usd = fx_to_usd

    def _reading(
        self, series: PriceSeries | None, stale: bool, error: PriceFeedError | None, last_good: datetime | None
    ) -> PriceReading:
        return PriceReading(self.name, series, stale, error, last_good, self.fx_to_usd)


DeferredPriceFeed = DeferredFeed[PriceSeries]


_HEADER_NAME = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
"""An HTTP field name (RFC 9110 5.1: a token)."""


def _json_headers(feed: str, text: str) -> dict[str, str]:
    try:
        headers = json.loads(text)
    except ValueError:
        # No chained cause: the decoder's message quotes the text, which is a secret.
        raise PriceDataError(feed, "httpJson.headersSecretRef", "the secret is not a JSON object") from None
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise PriceDataError(feed, "httpJson.headersSecretRef", "the secret must be a JSON object of strings")
    for value in headers.values():
        redaction.remember_header(value)
    # Checked here, naming the header and never quoting its value. Found in review: a pasted non-breaking space
    # was reported as "http: not a valid URL", and a trailing newline as a "request failed" retried every refresh.
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise PriceDataError(feed, "httpJson.headersSecretRef", "a header name is not an HTTP token")
        problem = header_value_problem(value)
        if problem is not None:
            raise PriceDataError(
                feed,
                "httpJson.headersSecretRef",
                f"the value of header {name!r} holds {problem}; write the Secret again without it",
            )
    return {str(k): v for k, v in headers.items()}


def price_feed_adapter(spec: PriceFeedSpec, context: AdapterContext) -> PriceFeed:
    """The adapter named by `spec.type`, its Secrets resolved now; PriceFeedError naming the field otherwise."""
    name, secrets, http, settings = context.name, context.secrets, context.http, context.settings
    if spec.type is PriceFeedType.ENTSOE and spec.entsoe is not None:
        token = feed_token(secrets, spec.entsoe.token_secret_ref, name, "entsoe.tokenSecretRef")
        return EntsoePriceFeed(
            name, spec=spec.entsoe, token=token, currency=spec.currency, http=http, settings=settings
        )
    if spec.type is PriceFeedType.PROMETHEUS and spec.prometheus is not None:
        # The value holds until the feed goes stale: the reading is usable exactly as long as a price covers
        # now. Found in review: it held for refreshSeconds, the next refresh was due just as it ended, so with
        # Prometheus down (or a refresh still in flight) the status showed no current price and no horizon,
        # and no energy-price gauge, while PriceFeedStale said False.
        return PrometheusMetricPriceFeed(
            name,
            spec=spec.prometheus,
            currency=spec.currency,
            unit=spec.unit,
            valid_for=timedelta(seconds=spec.stale_after_seconds),
            settings=settings,
            session=context.prometheus_session,
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
            name,
            spec=spec.csv_replay,
            currency=spec.currency,
            settings=settings,
            base_directory=context.csv_base_directory,
        )
    raise PriceDataError(name, "type", f"no settings block for feed type {spec.type}")


def price_source_key(spec: PriceFeedSpec) -> str:
    """What identifies the prices a priceFeed reads (feed_service.source_key): equal keys, same series."""
    return source_key(spec, stale_after_sets_values=spec.type is PriceFeedType.PROMETHEUS)


def build_price_feed(spec: PriceFeedSpec, **options: Unpack[FeedOptions]) -> ManagedPriceFeed:
    """The managed feed for a RegionalCluster's priceFeed; `name` labels its errors (e.g. the cluster).

    Built now, or at the first refresh with `background=True` (the operator): see
    signals.feed_service.build_managed.
    """

    def manage(feed: SeriesFeed[PriceSeries], timing: FeedTiming) -> ManagedPriceFeed:
        return ManagedPriceFeed(feed, currency=spec.currency, fx_to_usd=spec.fx_to_usd, **timing)

    return build_managed(lambda context: price_feed_adapter(spec, context), manage, spec, options)
