"""Carbon in the API: a RegionalCluster's carbon-intensity feed and an InferenceDeployment's carbon policy.

Intensity is gCO2eq per kWh of grid electricity. `basis` says which number a feed gives: `direct`
(operational, smokestack emissions), `lifecycle` (plus the plants' construction, fuel chain and
decommissioning; Electricity Maps' default) or `marginal` (what one more kWh emits now: WattTime's
MOER). Each provider publishes only some of them; the rules below refuse a basis a provider does
not publish, so a cluster never quietly mixes two kinds of number.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from gridshift.api import feeds
from gridshift.api.base import ApiModel, CrossFieldRule
from gridshift.api.common import SecretKeyRef, strip_white_space

CarbonPrice = Annotated[float, Field(ge=0, le=10_000)]
"""An internal carbon price, USD per tonne CO2eq: a deployment's spec.carbon, or the operator's default."""
GridIntensity = Annotated[float, Field(ge=0, le=5000)]
"""A limit on a grid's carbon intensity, gCO2eq/kWh."""
MAX_GRID_G_PER_KWH = 3000.0
"""No grid emits this much: lignite plants are about 1,100-1,200 gCO2eq/kWh life-cycle (IPCC AR5);
a value above it is a unit error (lbs/MWh read as g/kWh, or kg/MWh x 1000): feeds' answers above it
are refused, and so is a static intensity above it at admission."""


class CarbonBasis(StrEnum):
    """Which carbon intensity a feed gives (see the module docstring)."""

    DIRECT = "direct"
    LIFECYCLE = "lifecycle"
    MARGINAL = "marginal"


class CarbonFeedType(StrEnum):
    """Kinds of carbon-intensity feed."""

    ELECTRICITY_MAPS = "electricityMaps"
    WATTTIME = "watttime"
    GB_CARBON_INTENSITY = "gbCarbonIntensity"
    PROMETHEUS = "prometheus"
    CSV_REPLAY = "csvReplay"
    STATIC = "static"


class ElectricityMapsFeed(ApiModel):
    """Electricity Maps API v3: the last 24 hours (carbon-intensity/history) and, optionally, the forecast."""

    zone: str = Field(
        min_length=2,
        max_length=32,
        pattern=r"^[A-Z]{2}(-[A-Z0-9]+)*$",
        description="Electricity Maps zone key, e.g. DE, GB, US-CAL-CISO.",
    )
    token_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the API token (sent as the auth-token header)."
    )
    endpoint: feeds.ApiEndpoint = "https://api.electricitymap.org/v3"
    forecast: bool = Field(
        default=False, description="Also read carbon-intensity/forecast (a paid endpoint) for the horizon."
    )


class WattTimeFeed(ApiModel):
    """WattTime API v3: the marginal operating emissions rate (co2_moer) forecast of a grid region."""

    region: str = Field(
        min_length=2, max_length=64, pattern=r"^[A-Z0-9_]+$", description="WattTime region, e.g. CAISO_NORTH."
    )
    username: str = Field(min_length=1, max_length=128, description="WattTime account name (for /login).")
    password_secret_ref: SecretKeyRef = Field(description="Secret key holding the WattTime account's password.")
    endpoint: feeds.ApiEndpoint = "https://api.watttime.org"


class GbCarbonIntensityFeed(ApiModel):
    """National Grid ESO's Carbon Intensity API for Great Britain (no account): 48 h forward from now."""

    region_id: int | None = Field(
        default=None,
        ge=1,
        le=17,
        description="Regional series (1..17, the API's regionid); unset for the national series.",
    )
    endpoint: feeds.ApiEndpoint = "https://api.carbonintensity.org.uk"


class PrometheusCarbonFeed(ApiModel):
    """A carbon-intensity metric (gCO2eq/kWh) the user already has in Prometheus."""

    cross_field_rules = (feeds.PROMETHEUS_URL_RULE,)

    url: feeds.PrometheusUrl
    query: str = Field(
        min_length=1, max_length=4096, description="PromQL giving one series: the intensity now, gCO2eq/kWh."
    )


CSV_COLUMN_SUFFIX_OF_BASIS = {"direct": "(direct)", "lifecycle": "(LCA)"}
"""How an Electricity Maps CSV column names its basis ('Carbon Intensity gCO2eq/kWh (direct)', '... (LCA)')."""


def csv_column_basis(column: str) -> str | None:
    """The basis a csvReplay column's name says it holds (CSV_COLUMN_SUFFIX_OF_BASIS), or None.

    Read off the name stripped, as the CSV reader matches it (signals.carbon_feeds) and as the CEL rule
    reads it (trim()): found in review, admission read 'Carbon Intensity gCO2eq/kWh (direct) ' as naming no
    basis, so a life-cycle feed on that column was admitted and then refused at its first read. Stripped of
    Unicode White_Space only (strip_white_space), what trim() removes, not of all that str.strip() does."""
    column = strip_white_space(column)
    return next((basis for basis, suffix in CSV_COLUMN_SUFFIX_OF_BASIS.items() if column.endswith(suffix)), None)


def _csv_column_matches_basis(feed: CarbonFeedSpec) -> bool:
    if feed.type is not CarbonFeedType.CSV_REPLAY or feed.csv_replay is None or feed.csv_replay.column is None:
        return True
    named = csv_column_basis(feed.csv_replay.column)
    return named is None or named == feed.basis.value


_CSV_COLUMN_BASIS_CEL = " && ".join(
    f"(!self.csvReplay.column.trim().endsWith('{suffix}') || self.basis == '{basis}')"
    for basis, suffix in CSV_COLUMN_SUFFIX_OF_BASIS.items()
)


class CsvReplayCarbonFeed(ApiModel):
    """Replays a recorded hourly intensity series (the Electricity Maps 2024 CSVs) on a clock."""

    path: feeds.CsvPath
    column: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description=(
            "Column to read; unset picks the Electricity Maps column of the feed's basis. A name ending in "
            "'(direct)' or '(LCA)' must match basis (direct, lifecycle)."
        ),
    )
    offset_days: feeds.OffsetDays = 0
    timezone: feeds.TimeZoneName | None = feeds.csv_timezone_field(
        "Europe/Berlin for a file in German local time (the Electricity Maps files say UTC in their header)"
    )


class StaticCarbonFeed(ApiModel):
    """One constant intensity."""

    g_per_kwh: float = Field(
        ge=0, le=MAX_GRID_G_PER_KWH, description="Carbon intensity, gCO2eq/kWh (at most 3000: above any grid's)."
    )


class CarbonFeedSpec(ApiModel):
    """Where this cluster's grid carbon intensity comes from; the same cache, staleness and fail-safe
    rules as the price feed (a stale intensity never moves a replica)."""

    cross_field_rules = (
        feeds.settings_block_rule(CarbonFeedType, example="watttime"),
        CrossFieldRule(
            cel="(self.type == 'watttime') == (self.basis == 'marginal') || self.type == 'prometheus'",
            message=(
                "basis marginal goes with type watttime (WattTime publishes marginal emissions only, the others "
                "average ones); prometheus may be any basis"
            ),
            field="basis",
            holds=lambda s: (
                s.type is CarbonFeedType.PROMETHEUS
                or (s.type is CarbonFeedType.WATTTIME) == (s.basis is CarbonBasis.MARGINAL)
            ),
        ),
        CrossFieldRule(
            cel="self.type != 'gbCarbonIntensity' || self.basis == 'direct'",
            message="the GB Carbon Intensity API publishes direct emissions only: set basis: direct",
            field="basis",
            holds=lambda s: s.type is not CarbonFeedType.GB_CARBON_INTENSITY or s.basis is CarbonBasis.DIRECT,
        ),
        # Found in review: a chosen column was read as the feed's basis whatever its name said, so DE-LU's
        # 133 g/kWh direct figures passed for life-cycle ones (178). A rule added later: stored objects are
        # refused at the feed's first read instead (signals.carbon_feeds).
        CrossFieldRule(
            cel=(
                "self.type != 'csvReplay' || !has(self.csvReplay) || !has(self.csvReplay.column) || "
                f"({_CSV_COLUMN_BASIS_CEL})"
            ),
            message=(
                "csvReplay.column names a column of another basis (one ending in '(direct)' holds direct "
                "intensities, '(LCA)' life-cycle ones): set basis to the column's (basis: direct or basis: "
                "lifecycle), or pick the column of the basis (unset column picks it)"
            ),
            field="csvReplay.column",
            holds=_csv_column_matches_basis,
            admission_only=True,
        ),
        feeds.refresh_rule(goes_stale="the intensity goes"),
    )

    type: CarbonFeedType = Field(
        description="Which feed: electricityMaps, watttime, gbCarbonIntensity, prometheus, csvReplay, static."
    )
    basis: CarbonBasis = Field(
        default=CarbonBasis.LIFECYCLE, description="direct, lifecycle (the default) or marginal (watttime)."
    )
    stale_after_seconds: int = feeds.stale_after_field("the intensity is stale and no carbon-driven move is made")
    refresh_seconds: int = feeds.refresh_field("How often to fetch.")
    electricity_maps: ElectricityMapsFeed | None = Field(default=None, description="Settings for type electricityMaps.")
    watttime: WattTimeFeed | None = Field(default=None, description="Settings for type watttime.")
    gb_carbon_intensity: GbCarbonIntensityFeed | None = Field(
        default=None, description="Settings for type gbCarbonIntensity."
    )
    prometheus: PrometheusCarbonFeed | None = Field(default=None, description="Settings for type prometheus.")
    csv_replay: CsvReplayCarbonFeed | None = Field(default=None, description="Settings for type csvReplay.")
    static: StaticCarbonFeed | None = Field(default=None, description="Settings for type static.")


class CarbonSpec(ApiModel):
    """How carbon weighs on this deployment's placement: an internal price, and optional limits."""

    price_usd_per_tonne: CarbonPrice | None = Field(
        default=None,
        description=(
            "Internal carbon price, USD per tonne CO2eq, added to the cost the planner minimises (100 USD/t adds "
            "0.03 USD/kWh on a 300 g/kWh grid); unset uses the operator's default (0 unless configured)."
        ),
    )
    max_grams_per_kwh: GridIntensity | None = Field(
        default=None,
        description=(
            "Leave a cluster (make-before-break) while its grid intensity now is above this, gCO2eq/kWh, and come "
            "back when it falls; yields only where no other cluster can serve the demand."
        ),
    )
    max_grams_per_million_tokens: float | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        description=(
            "Avoid placements whose replicas would emit more than this per million output tokens at SLO capacity "
            "(measured power x PUE x intensity now)."
        ),
    )
