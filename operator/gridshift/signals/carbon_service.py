"""Managed carbon feeds: build the adapter a CarbonFeedSpec names, and manage it (signals.feed_service).

`ManagedCarbonFeed` is signals.feed_service.ManagedFeed with the carbon check: the same TTL
cache, retries with backoff, total deadline per attempt, background refresh and stale state
(no good fetch for staleAfterSeconds) as price feeds. `read()` never raises; a stale reading must
not move load, and the planner makes sure it does not (planner.carbon).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Unpack

from gridshift.api.carbon import CarbonBasis, CarbonFeedSpec, CarbonFeedType
from gridshift.signals.carbon import CarbonDataError, CarbonFeed, CarbonSeries, validated_carbon_series
from gridshift.signals.carbon_feeds import (
    CsvReplayCarbonIntensityFeed,
    ElectricityMapsCarbonFeed,
    GbCarbonIntensityCarbonFeed,
    PrometheusCarbonMetricFeed,
    StaticCarbonIntensityFeed,
    WattTimeCarbonFeed,
)
from gridshift.signals.feed_service import (
    AdapterContext,
    FeedOptions,
    FeedTiming,
    ManagedFeed,
    Reading,
    build_managed,
    feed_token,
    source_key,
)
from gridshift.signals.prices import PriceFeedError


@dataclass(frozen=True)
class CarbonReading(Reading[CarbonSeries]):
    """What a managed carbon feed knows now, and on which basis."""

    basis: CarbonBasis


class ManagedCarbonFeed(ManagedFeed[CarbonSeries, CarbonReading]):
    """A carbon feed managed like a price feed (ManagedFeed), its intervals checked on the configured basis."""

    noun = "carbon feed"

    def __init__(self, feed: CarbonFeed, *, basis: CarbonBasis, **timing: Unpack[FeedTiming]) -> None:
        super().__init__(
            feed, check=lambda name, series, now: validated_carbon_series(name, series.intervals, basis, now), **timing
        )
        self.basis = basis

    def _unexpected(self, message: str) -> PriceFeedError:
        return CarbonDataError(self.name, "fetch", message)

    def _reading(
        self, series: CarbonSeries | None, stale: bool, error: PriceFeedError | None, last_good: datetime | None
    ) -> CarbonReading:
        return CarbonReading(self.name, series, stale, error, last_good, self.basis)


def carbon_feed_adapter(spec: CarbonFeedSpec, context: AdapterContext) -> CarbonFeed:
    """The adapter named by `spec.type`, its Secrets resolved now; CarbonDataError naming the field otherwise."""
    name, secrets, http, settings, basis = context.name, context.secrets, context.http, context.settings, spec.basis
    if spec.type is CarbonFeedType.ELECTRICITY_MAPS and spec.electricity_maps is not None:
        ref = spec.electricity_maps.token_secret_ref
        token = feed_token(secrets, ref, name, "electricityMaps.tokenSecretRef", error=CarbonDataError) if ref else None
        return ElectricityMapsCarbonFeed(
            name, spec=spec.electricity_maps, basis=basis, token=token, http=http, settings=settings
        )
    if spec.type is CarbonFeedType.WATTTIME and spec.watttime is not None:
        password = feed_token(
            secrets,
            spec.watttime.password_secret_ref,
            name,
            "watttime.passwordSecretRef",
            what="password",
            error=CarbonDataError,
        )
        return WattTimeCarbonFeed(name, spec=spec.watttime, password=password, http=http, settings=settings)
    if spec.type is CarbonFeedType.GB_CARBON_INTENSITY and spec.gb_carbon_intensity is not None:
        return GbCarbonIntensityCarbonFeed(name, spec=spec.gb_carbon_intensity, http=http, settings=settings)
    if spec.type is CarbonFeedType.PROMETHEUS and spec.prometheus is not None:
        # Until the feed goes stale, as a Prometheus price (signals.price_service): held for refreshSeconds, a
        # usable reading had no intensity for now once the next refresh was due (found in review).
        return PrometheusCarbonMetricFeed(
            name,
            spec=spec.prometheus,
            basis=basis,
            valid_for=timedelta(seconds=spec.stale_after_seconds),
            settings=settings,
            session=context.prometheus_session,
            http=http,
        )
    if spec.type is CarbonFeedType.CSV_REPLAY and spec.csv_replay is not None:
        return CsvReplayCarbonIntensityFeed(
            name, spec=spec.csv_replay, basis=basis, settings=settings, base_directory=context.csv_base_directory
        )
    if spec.type is CarbonFeedType.STATIC and spec.static is not None:
        return StaticCarbonIntensityFeed(name, spec=spec.static, basis=basis, settings=settings)
    raise CarbonDataError(name, "type", f"no settings block for feed type {spec.type}")


def carbon_source_key(spec: CarbonFeedSpec) -> str:
    """What identifies the intensities a carbonFeed reads (feed_service.source_key): equal keys, same series."""
    return source_key(spec, stale_after_sets_values=spec.type is CarbonFeedType.PROMETHEUS)


def build_carbon_feed(spec: CarbonFeedSpec, **options: Unpack[FeedOptions]) -> ManagedCarbonFeed:
    """The managed feed for a RegionalCluster's carbonFeed (as build_price_feed is for its priceFeed)."""

    def manage(feed: CarbonFeed, timing: FeedTiming) -> ManagedCarbonFeed:
        return ManagedCarbonFeed(feed, basis=spec.basis, **timing)

    return build_managed(lambda context: carbon_feed_adapter(spec, context), manage, spec, options)
