"""Managed carbon feeds: build the adapter a CarbonFeedSpec names, and manage it like a price feed.

`ManagedCarbonFeed` is signals.price_service.ManagedFeed with the carbon check: the same TTL
cache, retries with backoff, total deadline per attempt, background refresh and stale state
(no good fetch for staleAfterSeconds). `read()` never raises; a stale reading must not move load,
and the planner makes sure it does not (planner.carbon).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import requests

from gridshift.api.carbon import CarbonBasis, CarbonFeedSpec, CarbonFeedType
from gridshift.signals.carbon import (
    CarbonDataError,
    CarbonFeed,
    CarbonSeries,
    require_carbon_covers,
    validate_carbon_intervals,
)
from gridshift.signals.carbon_feeds import (
    CsvReplayCarbonIntensityFeed,
    ElectricityMapsCarbonFeed,
    GbCarbonIntensityCarbonFeed,
    PrometheusCarbonMetricFeed,
    StaticCarbonIntensityFeed,
    WattTimeCarbonFeed,
)
from gridshift.signals.price_service import (
    Clock,
    DeferredFeed,
    ManagedFeed,
    SecretResolver,
    Sleep,
    feed_secret,
)
from gridshift.signals.prices import PriceFeedError
from gridshift.signals.settings import PriceFeedSettings


@dataclass(frozen=True)
class CarbonReading:
    """What a managed carbon feed knows now."""

    feed: str
    series: CarbonSeries | None
    """The fresh series, or the last good one (then `error` says why it was not refreshed)."""
    stale: bool
    """No good fetch for staleAfterSeconds (or ever): do not move load on these intensities."""
    error: PriceFeedError | None
    last_good_fetch: datetime | None
    basis: CarbonBasis

    @property
    def usable(self) -> bool:
        return self.series is not None and not self.stale


def _check_carbon(basis: CarbonBasis) -> Callable[[str, CarbonSeries, datetime], None]:
    def check(name: str, series: CarbonSeries, now: datetime) -> None:
        validate_carbon_intervals(name, series.intervals, basis=basis)
        require_carbon_covers(name, series.intervals, now)

    return check


class ManagedCarbonFeed(ManagedFeed[CarbonSeries]):
    """A carbon feed managed like a price feed (ManagedFeed), its intervals checked on the configured basis."""

    noun = "carbon feed"

    def __init__(
        self,
        feed: CarbonFeed,
        *,
        basis: CarbonBasis,
        refresh_seconds: float,
        stale_after_seconds: float,
        clock: Clock,
        sleep: Sleep | None = None,
        settings: PriceFeedSettings | None = None,
    ) -> None:
        super().__init__(
            feed,
            check=_check_carbon(basis),
            refresh_seconds=refresh_seconds,
            stale_after_seconds=stale_after_seconds,
            clock=clock,
            sleep=sleep,
            settings=settings,
        )
        self.basis = basis

    def _unexpected(self, message: str) -> PriceFeedError:
        return CarbonDataError(self.name, "fetch", message)

    def read(self, *, force: bool = False) -> CarbonReading:
        """The current intensities (see ManagedFeed._refresh_if_due for when a fetch happens)."""
        self._refresh_if_due(force)
        series, stale, error, last_good = self._state()
        return CarbonReading(
            feed=self.name, series=series, stale=stale, error=error, last_good_fetch=last_good, basis=self.basis
        )


def carbon_feed_adapter(
    spec: CarbonFeedSpec,
    *,
    name: str,
    secrets: SecretResolver,
    http: httpx.Client,
    settings: PriceFeedSettings,
    prometheus_session: requests.Session | None = None,
    csv_base_directory: Path | None = None,
) -> CarbonFeed:
    """The adapter named by `spec.type`, its Secrets resolved now; CarbonDataError naming the field otherwise."""
    basis = spec.basis
    if spec.type is CarbonFeedType.ELECTRICITY_MAPS and spec.electricity_maps is not None:
        ref = spec.electricity_maps.token_secret_ref
        token = (
            feed_secret(secrets, ref, name, "electricityMaps.tokenSecretRef", error=CarbonDataError) if ref else None
        )
        return ElectricityMapsCarbonFeed(
            name, spec=spec.electricity_maps, basis=basis, token=token, http=http, settings=settings
        )
    if spec.type is CarbonFeedType.WATTTIME and spec.watttime is not None:
        password = feed_secret(
            secrets, spec.watttime.password_secret_ref, name, "watttime.passwordSecretRef", error=CarbonDataError
        )
        return WattTimeCarbonFeed(name, spec=spec.watttime, password=password, http=http, settings=settings)
    if spec.type is CarbonFeedType.GB_CARBON_INTENSITY and spec.gb_carbon_intensity is not None:
        return GbCarbonIntensityCarbonFeed(name, spec=spec.gb_carbon_intensity, http=http, settings=settings)
    if spec.type is CarbonFeedType.PROMETHEUS and spec.prometheus is not None:
        return PrometheusCarbonMetricFeed(
            name,
            spec=spec.prometheus,
            basis=basis,
            valid_for=timedelta(seconds=spec.refresh_seconds),
            settings=settings,
            session=prometheus_session,
            http=http,
        )
    if spec.type is CarbonFeedType.CSV_REPLAY and spec.csv_replay is not None:
        return CsvReplayCarbonIntensityFeed(
            name, spec=spec.csv_replay, basis=basis, settings=settings, base_directory=csv_base_directory
        )
    if spec.type is CarbonFeedType.STATIC and spec.static is not None:
        return StaticCarbonIntensityFeed(name, spec=spec.static, basis=basis, settings=settings)
    raise CarbonDataError(name, "type", f"no settings block for feed type {spec.type}")


def build_carbon_feed(
    spec: CarbonFeedSpec,
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
) -> ManagedCarbonFeed:
    """The managed feed for a RegionalCluster's carbonFeed (as build_price_feed is for its priceFeed)."""
    settings = settings or PriceFeedSettings()

    def adapter() -> CarbonFeed:
        return carbon_feed_adapter(
            spec,
            name=name,
            secrets=secrets,
            http=http,
            settings=settings,
            prometheus_session=prometheus_session,
            csv_base_directory=csv_base_directory,
        )

    managed = ManagedCarbonFeed(
        DeferredFeed[CarbonSeries](name, adapter) if background else adapter(),
        basis=spec.basis,
        refresh_seconds=spec.refresh_seconds,
        stale_after_seconds=spec.stale_after_seconds,
        clock=clock,
        sleep=sleep,
        settings=settings,
    )
    return managed.start() if background else managed
