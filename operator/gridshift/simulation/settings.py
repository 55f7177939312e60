"""Settings of a counterfactual replay: every knob with its unit and the reason for its default."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType

from gridshift.planner.profiles import GPU_PRODUCT_LABELS
from gridshift.planner.synthetic import GPU_TRAITS
from gridshift.simulation.forecast import ForecastSettings

H100 = GPU_PRODUCT_LABELS["H100"]

DEFAULT_MARKETS: tuple[str, ...] = ("DE-LU", "US-TEX-ERCO", "US-CAL-CISO", "US-MIDA-PJM", "US-NY-NYIS")
"""Five markets where every signal the replay judges has real 2024 data: an hourly price (the shipped slice,
gridshift/data/prices) and an hourly carbon intensity (shared/data/carbon-2024). The defaults used to be DE-LU,
FR, ES, ERCOT and CAISO, but the carbon recording has no FR or ES zone, so kgCO2 was unknown for every policy
on the defaults (issue 19). One European day-ahead zone (the only EU zone with both), four US ones: ERCOT and
CAISO (day-ahead hubs), PJM (DOM zone, real-time LMP) and NYISO (CAPITL day-ahead); six time zones of load
peaks from Berlin to Los Angeles. FR and ES stay in the shipped slice for --markets."""

MARKET_TIMEZONES: Mapping[str, str] = MappingProxyType(
    {
        "AT": "Europe/Vienna",
        "BE": "Europe/Brussels",
        "CH": "Europe/Zurich",
        "DE-LU": "Europe/Berlin",
        "ES": "Europe/Madrid",
        "FR": "Europe/Paris",
        "NL": "Europe/Amsterdam",
        "PT": "Europe/Lisbon",
        "US-CAL-CISO": "America/Los_Angeles",
        "US-MIDA-PJM": "America/New_York",
        "US-NY-NYIS": "America/New_York",
        "US-TEX-ERCO": "America/Chicago",
        "CA-ON": "America/Toronto",
        "AU-NSW": "Australia/Sydney",
        "AU-VIC": "Australia/Melbourne",
        "JP-TK": "Asia/Tokyo",
        "SG": "Asia/Singapore",
    }
)
"""Local time of each market of shared/data/prices-2024, for the users' day (load peaks by day); UTC if unknown."""

DEFAULT_FX_TO_USD: Mapping[str, float] = MappingProxyType({"USD": 1.0, "EUR": 1.08})
"""USD per unit of currency. EUR 1.08: the ECB reference rate averaged about 1.082 over 2024. Explicit, so
runs are reproducible; other currencies (CAD, AUD, JPY, SGD) must be given with --fx."""

RENTED_USD_PER_GPU_HOUR: Mapping[str, float] = MappingProxyType(
    {label: traits[2] for label, traits in GPU_TRAITS.items()}
)
"""Rented scenario: USD per GPU-hour by GPU type, the same in every region unless overridden. The figures are the
planner's typical marginal costs (gridshift.planner.synthetic.GPU_TRAITS): H100 2.50, A100-80GB 1.50, B200 5.00,
L40S 0.90, the order of 2024 on-demand prices of specialised GPU clouds (hyperscalers list more)."""


MAX_GPUS_PER_MARKET = 1_000_000
"""Most GPUs one market's cluster may offer: far beyond any site (the largest clusters hold some 100,000).
Found in review: 99999999999999999999 overflowed numpy's int64 in a worker (a traceback), and 2**63-1 ran and
printed absurd costs."""


class Scenario(StrEnum):
    """How GPUs are paid for."""

    OWNED = "owned"
    """Owned fleet: GPU-hours cost nothing at the margin; every GPU of the fleet is powered and draws idle power
    when no replica holds it. That idle draw is the same for every policy and is reported once as the fleet's
    idle baseline; each policy's cost and energy are what it adds above it."""
    RENTED = "rented"
    """Rented GPUs: a held GPU costs its hourly price plus the electricity its replica draws; GPUs not held are
    not rented and cost nothing."""


@dataclass(frozen=True)
class DeploymentSetup:
    """One simulated deployment: its model, trace, SLO, scale and home market."""

    name: str
    model: str
    gpu_type: str
    gpus_per_replica: int
    trace: str
    peak_requests_per_second: float
    """Mean request rate at the daily peak, before the trace's minute-to-minute bursts."""
    ttft_p95_ms: float
    tpot_p95_ms: float
    headroom: float
    """The deployment's demand.headroom, which gridshift and the reactive autoscaler both size with."""
    home_market: str
    trace_offset_minutes: int
    min_replicas: int = 1
    max_replicas: int = 64
    max_concurrent_moves: int = 4
    payback_horizon_hours: float = 6.0
    origin: str = ""
    """Where a user's deployment was read (`--deployments: FILE document N`), so that what is refused while
    the replay is derived names the file and the fields; empty for the built-in deployments."""


@dataclass(frozen=True)
class SimulationSettings:
    """What to replay and how the policies behave."""

    start: datetime = datetime(2024, 3, 4, tzinfo=UTC)
    """First minute of the replay, UTC. The first Monday of March 2024: an ordinary week, neither the solar
    spring (many negative hours) nor a winter price spike; --start picks any other."""
    days: float = 7.0
    """Length of the replay, days."""
    deployments: int = 10
    """Number of simulated deployments (built by `default_deployments`)."""
    markets: tuple[str, ...] = DEFAULT_MARKETS
    fx_to_usd: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_FX_TO_USD))
    pue: float = 1.2
    """Power usage effectiveness of every site (facility / IT power): a modern colocation site; the Uptime
    Institute's 2024 fleet average is 1.56, hyperscalers report 1.1."""
    pue_by_market: Mapping[str, float] = field(default_factory=dict)
    gpus_per_market: int = 24
    """GPUs of the simulated type each market's cluster offers: about what the two deployments homed there
    hold at their peaks, far too few for all deployments at once (about 60 replicas on average), so the
    cheapest market fills up and placement is a joint choice. The one default: the CLI's --gpus-per-market
    reads it (it said 24 while this said 48; the published figures were the 24 run)."""
    gpu_idle_watts: float = 75.5
    """Power of a GPU no replica holds (and of each GPU of a starting replica): an H100 with no process, measured
    (GPUOffering.idlePowerWatts default)."""
    rented_usd_per_gpu_hour: Mapping[str, float] = field(default_factory=lambda: dict(RENTED_USD_PER_GPU_HOUR))
    rented_usd_per_gpu_hour_by_market: Mapping[str, float] = field(default_factory=dict)
    """Per-market override of the rented H100 price (USD per GPU-hour)."""
    replan_minutes: int = 60
    """gridshift re-plans on this cadence, on the hour when prices change; with a real-time market, also at each
    replay hour's start, when that market's price of the hour just ended becomes known. It also re-plans in any
    minute where
    observed demand x (1 + headroom) outgrows what its replicas serve, as the operator (planning every minute)
    would. A plan every minute of a week is too slow for a benchmark; 15 instead of 60 costs 4x the planner
    calls and saves about 1% (docs/simulate.md)."""
    cold_start_seconds: float = 180.0
    """A new replica holds its GPUs this long before it serves (PlannerSettings.cold_start_seconds); rounded up
    to whole minutes."""
    demand_window_minutes: int = 5
    """Observed demand is the mean rate of this many past minutes (the operator's rate()[5m])."""
    reactive_downscale_minutes: int = 5
    """Reactive autoscaler: scale down only to the largest recommendation of this many minutes (the Kubernetes
    HPA's default downscale stabilisation window, 300 s)."""
    greedy_cooldown_minutes: int = 60
    """Greedy mover: minutes after a move before the next one."""
    real_time_markets: frozenset[str] = frozenset({"US-MIDA-PJM"})
    """Markets whose prices are real-time (known once their hour has ended), not day-ahead: PJM's is the DOM
    zone's real-time hourly LMP (shared/data README). The online policies see such a market's price of an
    hour only after it ends and forecast every later hour at the last one known (persistence); costs are
    billed at the real price. Found in review: gridshift read PJM's price of an hour before it began (owned
    savings_captured 0.909 with the leak, 0.868 with a 2-hour lag). The default holds for the shipped and shared
    2024 prices; `simulate --real-time-markets` sets others (none for a user's day-ahead PJM file)."""
    price_publication_hour_utc: int = 12
    """Day-ahead prices of tomorrow are known from this UTC hour on (EPEX publishes about 12:45 CET, ERCOT and
    CAISO day-ahead results by early afternoon Central/Pacific); before it, prices are known to midnight."""
    diurnal_trough: float = 0.35
    """Load at the nightly trough as a share of the daily peak. The public 2023 Azure trace spans one hour, so
    the day's shape is an assumption: a cosine from a 14:00 local peak to a 02:00 trough, 2.9x peak/trough."""
    diurnal_peak_hour: float = 14.0
    """Local hour of the daily load peak."""
    scenarios: tuple[Scenario, ...] = (Scenario.OWNED, Scenario.RENTED)
    gpu_type: str = H100
    forecast: ForecastSettings = field(default_factory=ForecastSettings)
    """gridshift's forecast-driven sizing (gridshift.simulation.forecast)."""

    def __post_init__(self) -> None:
        if self.days <= 0 or self.days > 366:
            raise ValueError(f"days must be within (0, 366], got {self.days}")
        if round(self.days * 24 * 60) < 1:
            raise ValueError(f"days must cover at least one minute, got {self.days:g}")
        if self.deployments < 1:
            raise ValueError(f"deployments must be >= 1, got {self.deployments}")
        if not self.markets:
            raise ValueError("markets: need at least one market")
        if len(set(self.markets)) != len(self.markets):
            raise ValueError(f"markets: a market is listed twice: {list(self.markets)}")
        if not 1.0 <= self.pue <= 3.0:
            raise ValueError(f"pue must be within 1.0..3.0, got {self.pue}")
        for market, value in self.pue_by_market.items():
            if not 1.0 <= value <= 3.0:
                raise ValueError(f"pue of {market} must be within 1.0..3.0, got {value}")
        if self.gpus_per_market < 1:
            raise ValueError(f"gpus_per_market must be >= 1, got {self.gpus_per_market}")
        if self.gpus_per_market > MAX_GPUS_PER_MARKET:
            raise ValueError(
                f"gpus_per_market must be at most {MAX_GPUS_PER_MARKET:,} (GPUs in one market), "
                f"got {self.gpus_per_market}"
            )
        if self.replan_minutes < 1:
            raise ValueError(f"replan_minutes must be >= 1, got {self.replan_minutes}")
        if not 0 <= self.cold_start_seconds <= 86_400:
            # Found in review: 1e300 asked numpy for an array beyond any dimension (a traceback).
            raise ValueError(f"cold_start_seconds must be within 0..86400 (a day), got {self.cold_start_seconds:g}")
        if not 0.0 <= self.diurnal_trough <= 1.0:
            raise ValueError(f"diurnal_trough must be within 0..1, got {self.diurnal_trough}")
        if self.demand_window_minutes < 1 or self.reactive_downscale_minutes < 1 or self.greedy_cooldown_minutes < 0:
            raise ValueError("demand_window_minutes and reactive_downscale_minutes must be >= 1, cooldown >= 0")
        if not 0 <= self.price_publication_hour_utc <= 23:
            raise ValueError(f"price_publication_hour_utc must be within 0..23, got {self.price_publication_hour_utc}")
        for currency, rate in self.fx_to_usd.items():
            if not rate > 0:
                raise ValueError(f"fx rate of {currency} must be > 0, got {rate}")

    @property
    def minutes(self) -> int:
        return round(self.days * 24 * 60)

    @property
    def cold_start_minutes(self) -> int:
        return -(-round(self.cold_start_seconds) // 60)

    def pue_of(self, market: str) -> float:
        return self.pue_by_market.get(market, self.pue)

    def rented_price(self, market: str, gpu_type: str) -> float:
        if market in self.rented_usd_per_gpu_hour_by_market:
            return self.rented_usd_per_gpu_hour_by_market[market]
        if gpu_type not in self.rented_usd_per_gpu_hour:
            raise ValueError(f"no rented price for GPU type {gpu_type}")
        return self.rented_usd_per_gpu_hour[gpu_type]
