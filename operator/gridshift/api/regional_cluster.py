"""The RegionalCluster kind: a member cluster, its GPUs, their cost, its electricity price feed and carbon feed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from gridshift.api import feeds
from gridshift.api.base import SET_LIST, ApiModel, ApiObject, CrossFieldRule, unique_items
from gridshift.api.carbon import CarbonFeedSpec
from gridshift.api.common import (
    CURRENCY_CODE,
    DNS_LABEL,
    PROMETHEUS_CREDENTIAL,
    Condition,
    GpuType,
    HttpUrl,
    LabelSelector,
    RegionName,
    SecretKeyRef,
    conditions_field,
    credential_query_rule,
)
from gridshift.api.conditions import REGIONAL_CLUSTER_CONDITIONS, conditions_rule
from gridshift.api.labels import HASH_HEX_DIGITS, digest

NAMESPACE_PLACEHOLDER = "{namespace}"
ENTSOE_SDAC_SEQUENCE = 1
"""classificationSequence position of the SDAC day-ahead auction where a zone publishes several."""
ENTSOE_MAX_SEQUENCE = 9
"""The highest classificationSequence position a feed (or `gridshift prices --sequence`) may name."""
WORKLOAD_NAMESPACE = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?|([a-z0-9][-a-z0-9]*)?\{namespace\}([-a-z0-9]*[a-z0-9])?)$"
"""A DNS label, or a template with one `{namespace}` placeholder whose prefix starts and suffix ends with a
letter or digit, so that every filled-in template is a DNS label (`-{namespace}` gave `-ml`, which no
cluster can create)."""


class EnergyUnit(StrEnum):
    """Energy unit a price is quoted per."""

    MWH = "MWh"
    KWH = "kWh"


KWH_PER_MWH = 1000.0
MAX_ABS_USD_PER_KWH = 100.0
"""Largest price magnitude planned with, in USD/kWh after fxToUsd: about ten times the highest market price
cap (Australia's NEM, 17,500 AUD/MWh, about 11.5 USD/kWh). A price in the feed's currency passes
signals.prices.MAX_ABS_PRICE_PER_MWH whatever the rate it is multiplied by, and fxToUsd may be up to 1000: 1e8
USD/kWh was planned with, and above about 1e7 a replica cost more than the planner's penalty for going below
minReplicas, so deployments were scaled to 0 (found in review, 3 December 2026). One bound for both places it
is checked: a price a feed fetched (signals.prices) and a price written in the spec (static, schedule), refused
at admission."""
MAX_USD_PER_GPU_HOUR = 1000.0
"""Largest offering cost, USD per GPU-hour after fxToUsd: about 80 times the dearest cloud list price per GPU
(AWS p5.48xlarge on demand, 8 H100 for 98.32 USD/h, about 12.3 USD per GPU-hour, 2024), so no real price is
refused, and far below where the planner goes wrong: a replica's GPUs over the planning window then cost less
than its penalty for going below minReplicas (PlannerSettings.bound_violation_penalty_usd, 1e6 USD). Money.amount
(up to 1e6) times fxToUsd (up to 1000) reached 1e9, and at about 1e7 USD per GPU-hour deployments were scaled to
0 with a message blaming inventory (found in review); an inverted exchange rate is the likely typo."""


def usd_per_kwh_of(price: float, unit: EnergyUnit, fx_to_usd: float) -> float:
    """A price in a feed's currency per `unit`, in USD per kWh: the one conversion, written in CEL alike
    (usd_per_kwh_cel), so that admission and the feeds' reads agree to the last bit at the bound."""
    per_kwh = price / KWH_PER_MWH if unit is EnergyUnit.MWH else price
    return per_kwh * fx_to_usd


def usd_per_kwh_cel(price: str) -> str:
    """usd_per_kwh_of in CEL, on a PriceFeedSpec (`self`), for the CEL expression `price`."""
    return f"(self.unit == '{EnergyUnit.KWH.value}' ? {price} : {price} / {KWH_PER_MWH!r}) * self.fxToUsd"


def within_price_bound_cel(price: str) -> str:
    usd = usd_per_kwh_cel(price)
    return f"{usd} <= {MAX_ABS_USD_PER_KWH!r} && {usd} >= {-MAX_ABS_USD_PER_KWH!r}"


def _within_price_bound(price: float, feed: PriceFeedSpec) -> bool:
    return abs(usd_per_kwh_of(price, feed.unit, feed.fx_to_usd)) <= MAX_ABS_USD_PER_KWH


def price_bound_message(field: str) -> str:
    return (
        f"{field} is beyond any market's price once converted: |price| in the feed's unit and currency times "
        f"fxToUsd must be at most {MAX_ABS_USD_PER_KWH:g} USD/kWh (check unit: MWh or kWh, and fxToUsd: USD per "
        "one unit of the currency)"
    )


def _written_price_rule(block: str, price: str, read: Callable[[PriceFeedSpec], float | None]) -> CrossFieldRule:
    """The admission rule on the one price written at `block.price` (wire names) of a price feed's optional
    block: within the bound a fetch applies, once converted. `read` gives that price, None without the block."""
    field = f"{block}.{price}"
    return CrossFieldRule(
        cel=f"!has(self.{block}) || ({within_price_bound_cel(f'self.{field}')})",
        message=price_bound_message(field),
        field=field,
        holds=lambda s: (value := read(s)) is None or _within_price_bound(value, s),
        admission_only=True,
    )


class Money(ApiModel):
    """An amount of money in a named currency."""

    amount: float = Field(ge=0, le=1_000_000, description="Amount; 0 for owned hardware whose cost is sunk.")
    currency: str = Field(default="USD", max_length=3, pattern=CURRENCY_CODE, description="ISO 4217 currency code.")


def usd_per_gpu_hour(cost: Money, fx_to_usd: float) -> float:
    """An offering's hourlyCost in USD: USD as it is, the price feed's currency times its fxToUsd (the only
    other currency admitted)."""
    return cost.amount if cost.currency == "USD" else cost.amount * fx_to_usd


class GPUOffering(ApiModel):
    """A GPU type available in this cluster, with its cost when used."""

    gpu_type: GpuType = Field(description="Value of the node label nvidia.com/gpu.product (a label value).")
    hourly_cost: Money = Field(
        default_factory=lambda: Money(amount=0.0),
        description="Marginal cost of one GPU for one hour, excluding electricity (0 for owned hardware).",
    )
    idle_power_watts: float = Field(
        default=75.5,
        ge=0,
        le=5000,
        description="Power of a GPU held but unused, W. Default: an H100 with no process, measured (75.5 W).",
    )
    max_gpus: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Cap on GPUs gridshift may use here. Unset: all allocatable where the operator may list Nodes "
            "(member chart inventory.nodes=true), none where it may not (the chart's default): set it then."
        ),
    )


class EntsoeFeed(ApiModel):
    """ENTSO-E Transparency Platform day-ahead prices (documentType A44)."""

    area_eic: str = Field(
        pattern=r"^[0-9]{2}[A-Z0-9-]{13}[A-Z0-9]$",
        description="EIC code of the bidding zone, e.g. 10Y1001A1001A82H for DE-LU.",
    )
    token_secret_ref: SecretKeyRef = Field(description="Secret key holding the API security token.")
    endpoint: feeds.ApiEndpoint = "https://web-api.tp.entsoe.eu/api"
    sequence: int = Field(
        default=ENTSOE_SDAC_SEQUENCE,
        ge=1,
        le=ENTSOE_MAX_SEQUENCE,
        description=(
            "classificationSequence position to read where the zone publishes more than one day-ahead "
            "auction: DE-LU and AT publish SDAC as 1 (the default) and EXAA's 10:15 auction as 2. Series "
            "without a position are always read; intraday series are never read."
        ),
    )


class PrometheusPriceFeed(ApiModel):
    """A price metric the user already has in Prometheus."""

    cross_field_rules = (feeds.PROMETHEUS_URL_RULE,)

    url: feeds.PrometheusUrl
    query: str = Field(min_length=1, max_length=4096, description="PromQL giving one series: the current price.")


class HttpJsonFeed(ApiModel):
    """Any HTTP endpoint answering JSON with a list of priced intervals."""

    cross_field_rules = (
        credential_query_rule(
            "url",
            "send it as a header from a Secret (headersSecretRef), or serve the prices through a proxy that adds it",
        ),
    )

    url: HttpUrl = Field(description="URL to GET; credentials go in headersSecretRef, never in the URL.")
    items_path: str = Field(
        default="",
        max_length=256,
        description="Dot path to the list of intervals ('' = the document itself).",
    )
    start_field: str = Field(
        default="start",
        min_length=1,
        max_length=128,
        description="Field of an item holding the interval start (ISO 8601).",
    )
    end_field: str = Field(
        default="end", min_length=1, max_length=128, description="Field of an item holding the interval end (ISO 8601)."
    )
    price_field: str = Field(
        default="price", min_length=1, max_length=128, description="Field of an item holding the price."
    )
    headers_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding a JSON object of extra HTTP headers (e.g. auth)."
    )


class TariffPeriod(ApiModel):
    """A time-of-use tariff period."""

    cross_field_rules = (
        CrossFieldRule(
            cel="self.startHour < self.endHour",
            message="startHour must be before endHour",
            field="startHour",
            holds=lambda s: s.start_hour < s.end_hour,
        ),
    )

    days: Annotated[
        list[Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]], unique_items("days", "a weekday")
    ] = Field(
        min_length=1,
        max_length=7,
        json_schema_extra=SET_LIST,
        description="Weekdays the period applies to, each once.",
    )

    start_hour: int = Field(ge=0, le=23, description="First hour (local time) of the period.")
    end_hour: int = Field(ge=1, le=24, description="Hour (local time) the period ends, exclusive.")
    price: float = Field(ge=-100_000, le=100_000, description="Price in the feed's currency and unit.")


def _periods_disjoint(feed: ScheduleFeed) -> bool:
    periods = feed.periods
    for index, period in enumerate(periods):
        for other in periods[index + 1 :]:
            shared_day = set(period.days) & set(other.days)
            if shared_day and period.start_hour < other.end_hour and other.start_hour < period.end_hour:
                return False
    return True


class ScheduleFeed(ApiModel):
    """A fixed time-of-use tariff."""

    cross_field_rules = (
        CrossFieldRule(
            # Pairs of distinct periods, and no period listed twice (exists_one): an hour of a weekday
            # belongs to one period at most.
            cel=(
                "self.periods.all(p, self.periods.exists_one(q, q == p))"
                " && self.periods.all(p, self.periods.all(q, p == q || p.endHour <= q.startHour"
                " || q.endHour <= p.startHour || !p.days.exists(d, d in q.days)))"
            ),
            message="periods must not overlap: an hour of a weekday may be in one period only",
            field="periods",
            holds=_periods_disjoint,
        ),
    )

    timezone: feeds.TimeZoneName = Field(description="IANA time zone, e.g. Europe/Paris.")
    periods: list[TariffPeriod] = Field(min_length=1, max_length=168, description="Tariff periods, none overlapping.")
    default_price: float = Field(
        ge=-100_000, le=100_000, description="Price outside every period, in the feed's currency and unit."
    )


class StaticFeed(ApiModel):
    """One constant price."""

    price: float = Field(ge=-100_000, le=100_000, description="Price in the feed's currency and unit.")


class CsvReplayFeed(ApiModel):
    """Replays a recorded price series (e.g. a 2024 market CSV) on a clock, for demos and simulation."""

    path: feeds.CsvPath
    column: str | None = Field(
        default=None, min_length=1, max_length=256, description="Column to read from a wide CSV; unset for two columns."
    )
    offset_days: feeds.OffsetDays = 0
    timezone: feeds.TimeZoneName | None = feeds.csv_timezone_field(
        "Europe/Paris for the EU per-market files of prices-2024"
    )


class PriceFeedType(StrEnum):
    """Kinds of electricity price feed."""

    ENTSOE = "entsoe"
    PROMETHEUS = "prometheus"
    HTTP_JSON = "httpJson"
    SCHEDULE = "schedule"
    STATIC = "static"
    CSV_REPLAY = "csvReplay"


class PriceFeedSpec(ApiModel):
    """Where this cluster's electricity price comes from, and how to convert it to USD/kWh."""

    cross_field_rules = (
        feeds.settings_block_rule(PriceFeedType, example="entsoe"),
        feeds.refresh_rule(goes_stale="prices go"),
        CrossFieldRule(
            cel="self.currency != 'USD' || self.fxToUsd == 1.0",
            message="fxToUsd must be 1 when the currency is USD",
            field="fxToUsd",
            holds=lambda s: s.currency != "USD" or s.fx_to_usd == 1.0,
        ),
        # Prices written in the spec, refused at admission by the bound a fetch applies (signals.prices: every
        # fetch of such a price failed, naming intervals[0].price, and the price stayed stale for good; found in
        # review). A schedule's defaultPrice is refused whether or not its periods leave it in use (periods
        # covering the whole week never fetch it): such a value is a typo, and a later edit of the periods
        # would bring it into use. Admission only: a RegionalCluster stored before keeps reading as it did, and
        # the apiserver ratchets the rules while its priceFeed is unchanged.
        _written_price_rule("static", "price", lambda s: None if s.static is None else s.static.price),
        CrossFieldRule(
            cel=f"!has(self.schedule) || self.schedule.periods.all(p, {within_price_bound_cel('p.price')})",
            message=price_bound_message("a schedule.periods[i].price"),
            # CEL's fieldPath takes no list index: the list is named, its items' field in the message.
            field="schedule.periods",
            holds=lambda s: s.schedule is None or all(_within_price_bound(p.price, s) for p in s.schedule.periods),
            admission_only=True,
        ),
        _written_price_rule(
            "schedule", "defaultPrice", lambda s: None if s.schedule is None else s.schedule.default_price
        ),
    )

    type: PriceFeedType = Field(description="Which feed: entsoe, prometheus, httpJson, schedule, static, csvReplay.")
    currency: str = Field(
        default="EUR", max_length=3, pattern=CURRENCY_CODE, description="Currency the feed quotes in."
    )
    unit: EnergyUnit = Field(default=EnergyUnit.MWH, description="Energy unit the feed quotes per.")
    fx_to_usd: float = Field(
        default=1.0,
        gt=0,
        le=1000,
        description="USD per one unit of currency (explicit, so plans are reproducible).",
    )
    stale_after_seconds: int = feeds.stale_after_field("the price is stale and no price-driven move is made")
    refresh_seconds: int = feeds.refresh_field("How often to fetch (day-ahead prices change daily).")
    entsoe: EntsoeFeed | None = Field(default=None, description="Settings for type entsoe.")
    prometheus: PrometheusPriceFeed | None = Field(default=None, description="Settings for type prometheus.")
    http_json: HttpJsonFeed | None = Field(default=None, description="Settings for type httpJson.")
    schedule: ScheduleFeed | None = Field(default=None, description="Settings for type schedule.")
    static: StaticFeed | None = Field(default=None, description="Settings for type static.")
    csv_replay: CsvReplayFeed | None = Field(default=None, description="Settings for type csvReplay.")


_KEPT_COST = (
    "(oldSelf.hasValue() && oldSelf.value().offerings.exists(p, p.gpuType == o.gpuType && has(p.hourlyCost)"
    " && p.hourlyCost == o.hourlyCost) && (o.hourlyCost.currency == 'USD'"
    " || oldSelf.value().priceFeed.fxToUsd == self.priceFeed.fxToUsd))"
)
"""CEL, for an offering `o` of the spec: its hourlyCost is the one stored for its gpuType, at the stored fxToUsd
unless in USD (the cost bound's ratchet: a value stored before the bound stays, an edit of it is checked)."""


class MemberAccess(ApiModel):
    """What reaching a RegionalCluster's member cluster takes: its kubeconfig Secret and workload
    namespace. Read on its own (other fields ignored) where the rest of a RegionalCluster's spec does
    not validate, so that a deleted InferenceDeployment's objects are still cleaned there (service.sweep)."""

    model_config = ConfigDict(extra="ignore")

    kubeconfig_secret_ref: SecretKeyRef = Field(
        description="Secret key (on the hub) holding a kubeconfig for this cluster; never copied or logged."
    )
    workload_namespace: str = Field(
        default="gridshift-workloads",
        max_length=63,
        pattern=WORKLOAD_NAMESPACE,
        description=(
            "Namespace in the member cluster where replicas are created. `{namespace}` in it stands for the "
            "InferenceDeployment's namespace on the hub, giving each tenant its own namespace (recommended when "
            "several teams share the cluster: docs/security.md); without it every tenant shares this one. "
            "The cluster's administrator creates these namespaces (docs/rbac.md): gridshift never does."
        ),
    )


def costs_beyond_bound(offerings: Sequence[GPUOffering], fx_to_usd: float) -> list[tuple[int, float]]:
    """Each offering whose hourlyCost is beyond MAX_USD_PER_GPU_HOUR once converted (usd_per_gpu_hour): its index
    in `offerings` and that cost. Admission refuses them (RegionalClusterSpec's rule holds where this is empty); a
    cluster stored before the bound keeps them and is planned with them, and its status names them."""
    costs = ((i, usd_per_gpu_hour(o.hourly_cost, fx_to_usd)) for i, o in enumerate(offerings))
    return [(i, usd) for i, usd in costs if usd > MAX_USD_PER_GPU_HOUR]


class RegionalClusterSpec(MemberAccess):
    """Desired state of a RegionalCluster."""

    model_config = ConfigDict(extra="forbid")

    cross_field_rules = (
        CrossFieldRule(
            cel="self.offerings.all(o, self.offerings.exists_one(p, p.gpuType == o.gpuType))",
            message="each gpuType may appear in offerings only once",
            field="offerings",
            holds=lambda s: len({o.gpu_type for o in s.offerings}) == len(s.offerings),
        ),
        CrossFieldRule(
            cel=(
                "self.offerings.all(o, !has(o.hourlyCost) || o.hourlyCost.currency == 'USD'"
                " || o.hourlyCost.currency == self.priceFeed.currency)"
            ),
            message="hourlyCost.currency must be USD or the price feed's currency (converted with fxToUsd)",
            field="offerings",
            holds=lambda s: all(o.hourly_cost.currency in ("USD", s.price_feed.currency) for o in s.offerings),
        ),
        CrossFieldRule(
            # Admission only (found in review: refused at the operator's read, a cluster admitted before the
            # bound became InvalidSpec and its running replicas were stranded there). On the spec, which every
            # edit changes, so the apiserver would not ratchet it: an offering keeps the cost it was stored with
            # (_KEPT_COST) while the rest of the spec changes; a changed cost, or fxToUsd, is checked.
            cel=(
                "self.offerings.all(o, !has(o.hourlyCost) || (o.hourlyCost.currency == 'USD' ? o.hourlyCost.amount"
                f" : o.hourlyCost.amount * self.priceFeed.fxToUsd) <= {MAX_USD_PER_GPU_HOUR!r} || {_KEPT_COST})"
            ),
            message=(
                f"an offerings[i].hourlyCost (times priceFeed.fxToUsd unless in USD) must be at most "
                f"{MAX_USD_PER_GPU_HOUR:g} USD per GPU-hour, about 80 times the dearest cloud list price: check "
                "fxToUsd (USD per one unit of the currency, not its inverse) and the amount (per GPU and hour)"
            ),
            field="offerings",
            holds=lambda s: not costs_beyond_bound(s.offerings, s.price_feed.fx_to_usd),
            admission_only=True,
            optional_old_self=True,
        ),
        credential_query_rule("prometheusUrl", PROMETHEUS_CREDENTIAL, optional=True),
    )

    region: RegionName = Field(description="Region name used in placement rules, e.g. eu-de.")
    tenant_namespace_selector: LabelSelector | None = Field(
        default=None,
        description=(
            "Hub namespaces whose InferenceDeployments may place replicas here, selected by the namespaces' labels "
            "(every namespace when unset). Every namespace carries kubernetes.io/metadata.name=<name>, so a list "
            "of names is one matchExpressions entry with operator In."
        ),
    )
    pue: float = Field(
        default=1.2,
        ge=1.0,
        le=3.0,
        description="Power usage effectiveness of the site: facility power / IT power (1.0..3.0).",
    )
    offerings: list[GPUOffering] = Field(min_length=1, max_length=32, description="GPU types offered here.")
    price_feed: PriceFeedSpec = Field(description="Electricity price feed for this site.")
    carbon_feed: CarbonFeedSpec | None = Field(
        default=None,
        description=(
            "Grid carbon-intensity feed for this site; unset: deployments with a carbon price or limit assume a "
            "coal grid here (820 gCO2eq/kWh) and report no emissions for it."
        ),
    )
    prometheus_url: HttpUrl | None = Field(
        default=None,
        description="Prometheus with this cluster's vLLM and DCGM metrics; unset uses the operator's default.",
    )


def workload_namespace_for(spec: MemberAccess, hub_namespace: str) -> str:
    """The member-cluster namespace of an InferenceDeployment in `hub_namespace` on this cluster.

    A filled template of 63 characters or more keeps a readable prefix and a 64-bit digest, always 63
    characters long; one shorter is used as it is. The two never meet, so no two hub namespaces share a
    member namespace (found in review: a 63-character namespace's digest form, cut back to 62 characters and
    below, was itself the plain form of another, 53-character namespace, whose tenant then ran in the other's
    "per-tenant" namespace, its Secrets within reach).
    """
    template = spec.workload_namespace
    if NAMESPACE_PLACEHOLDER not in template:
        return template
    name = template.replace(NAMESPACE_PLACEHOLDER, hub_namespace)
    if len(name) < 63:
        return name
    return f"{name[: 63 - HASH_HEX_DIGITS - 1]}-{digest(name)}"


class GPUCount(ApiModel):
    """GPUs of one type in a cluster."""

    gpu_type: str = Field(description="GPU type.")
    allocatable: int = Field(ge=0, description="GPUs allocatable on Ready nodes.")
    used: int = Field(ge=0, description="GPUs requested by scheduled pods.")


class PricePoint(ApiModel):
    """One priced interval of the horizon."""

    start: datetime = Field(description="Interval start (UTC).")
    usd_per_kwh: float = Field(description="Price, USD per kWh (may be negative); PUE not included.")


class RegionalClusterStatus(ApiModel):
    """Observed state of a RegionalCluster."""

    cross_field_rules = (conditions_rule("RegionalCluster", REGIONAL_CLUSTER_CONDITIONS),)

    observed_generation: int | None = Field(default=None, ge=0, description="Spec generation last acted on.")
    reachable: bool | None = Field(default=None, description="Whether the last API call to the cluster succeeded.")
    gpus: list[GPUCount] = Field(default_factory=list, description="GPU inventory per type.")
    current_price_usd_per_kwh: float | None = Field(
        default=None, description="Electricity price now as the grid charges it, USD/kWh; PUE not included."
    )
    current_price_with_pue_usd_per_kwh: float | None = Field(
        default=None,
        description=(
            "Electricity price now per kWh the GPUs draw, USD/kWh: the price times the site's PUE (what the "
            "planner charges for GPU energy)."
        ),
    )
    price_horizon_end: datetime | None = Field(default=None, description="End of the known price horizon.")
    price_horizon: list[PricePoint] = Field(
        default_factory=list, max_length=400, description="Known prices from now on (USD/kWh, PUE not included)."
    )
    last_price_fetch: datetime | None = Field(
        default=None, description="Last successful fetch that changed the known prices."
    )
    current_carbon_intensity_g_per_kwh: float | None = Field(
        default=None, description="Grid carbon intensity now, gCO2eq/kWh on the carbon feed's basis; PUE not included."
    )
    carbon_basis: str | None = Field(default=None, description="direct, lifecycle or marginal (spec.carbonFeed.basis).")
    last_carbon_fetch: datetime | None = Field(default=None, description="Last successful carbon-intensity fetch.")
    workload_namespaces: list[Annotated[str, Field(max_length=63, pattern=DNS_LABEL)]] = Field(
        default_factory=list,
        max_length=10_000,
        description=(
            "Member namespaces where gridshift's Deployments were last found: read again every cycle, also after a "
            "restart or a workloadNamespace change, so that none of gridshift's replicas goes unseen or unswept."
        ),
    )
    conditions: list[Condition] = conditions_field(REGIONAL_CLUSTER_CONDITIONS)


class RegionalCluster(ApiObject):
    """A member cluster gridshift may place replicas in."""

    kind: Literal["RegionalCluster"] = Field(default="RegionalCluster", description="Kind.")
    spec: RegionalClusterSpec = Field(description="Desired state.")
    status: RegionalClusterStatus | None = Field(default=None, description="Observed state.")
