"""What a replay runs on: deployments and their per-minute demand, markets and their prices, and the cost model.

Everything every policy is judged by lives here, so that the online policies, the simulator's
accounting and the hindsight bound share one model:

- demand: requests per second of each deployment in each minute, from a trace's per-minute counts
  (several copies of the trace at different offsets, as independent tenants add up) times a daily
  load shape in the deployment's home market's local time;
- SLO capacity, throughput limit and power of a replica at a load, from the planner's capacity model
  (gridshift.planner.capacity) and the deployment's GPU profile;
- prices: USD/kWh per market and hour, converted with explicit FX rates;
- cost rates per replica-minute in each scenario (owned or rented).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from gridshift.arrays import FloatArray, IntArray
from gridshift.planner.capacity import CapacityInputs, batch_at, capacity_requests_per_second, power_at
from gridshift.planner.profiles import PerformanceModel
from gridshift.planner.settings import PlannerSettings
from gridshift.simulation.data import MarketPrices, SimulationInputError, TraceProfile
from gridshift.simulation.requests import Burstiness, measure, prompt_mix_cv, steady_stream
from gridshift.simulation.settings import MARKET_TIMEZONES, DeploymentSetup, Scenario, SimulationSettings

# Hours of prices beyond the replay's end that the planner's horizon may look at.
LOOKAHEAD_HOURS = 48
_MS_PER_S = 1000.0
_MINUTES_PER_HOUR = 60.0
_WATT_MINUTES_PER_KWH = 1000.0 * 60.0


@dataclass(frozen=True)
class Market:
    name: str
    cluster: str
    pue: float
    gpus: int
    usd_per_kwh: FloatArray
    """Hourly prices from the replay's first hour to LOOKAHEAD_HOURS past its end (NaN where unknown)."""
    real_time: bool = False
    """Prices known once their hour has ended (SimulationSettings.real_time_markets), not a day ahead."""
    previous_usd_per_kwh: float = math.nan
    """The price of the hour before the replay's first (the first a real-time market's policies know)."""

    def known_hourly(self, hours: int) -> FloatArray:
        """The price of each of the first `hours` hours as a policy knows it while the hour runs: the price
        itself where published a day ahead; a real-time market's last ended hour's (persistence)."""
        if not self.real_time:
            return self.usd_per_kwh[:hours]
        first = self.previous_usd_per_kwh if math.isfinite(self.previous_usd_per_kwh) else self.usd_per_kwh[0]
        known: FloatArray = np.concatenate([[first], self.usd_per_kwh[: hours - 1]])
        return known


def cluster_name(market: str) -> str:
    """A RegionalCluster/region name for a market: lower case, DNS-label characters only."""
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in market.lower()).strip("-")
    return cleaned or "market"


def daily_shape(minutes: int, start: datetime, timezone: str, trough: float, peak_hour: float) -> FloatArray:
    """Load relative to the daily peak in each minute: a cosine from `peak_hour` local time to 12 h later."""
    zone = ZoneInfo(timezone)
    offsets = np.empty(minutes)
    # The UTC offset changes at most twice a year; evaluate it hourly.
    for hour in range(math.ceil(minutes / 60)):
        moment = start + timedelta(hours=hour)
        offset = moment.astimezone(zone).utcoffset()
        offsets[hour * 60 : (hour + 1) * 60] = 0.0 if offset is None else offset.total_seconds() / 3600.0
    utc_hours = (start.hour + start.minute / 60.0) + np.arange(minutes) / 60.0
    local = utc_hours + offsets
    cosine = (1.0 + np.cos(2.0 * np.pi * (local - peak_hour) / 24.0)) / 2.0
    shape: FloatArray = trough + (1.0 - trough) * cosine
    return shape


def trace_copies(peak_rps: float, trace: TraceProfile) -> int:
    """Copies of the trace (tenants) a deployment of `peak_rps` is made of: enough to reach its rate, which the
    request-level replay then thins to exactly (`Deployment.copy_share`). Found in review: rounded to the nearest
    whole number, a 2.0 req/s deployment on the 5.5 req/s conversation sample was one copy and its request-level
    stream ran at 2.78x the rate it was sized and costed at (8.2 req/s: two copies, x0.68). A whole multiple
    (the default deployments) is that many copies (the 1e-9 absorbs the rounding of copies x mean / mean)."""
    return max(1, math.ceil(peak_rps / trace.mean_requests_per_second - 1e-9))


def superposed_trace(trace: TraceProfile, copies: int, first_offset: int, minutes: int) -> FloatArray:
    """Mean of `copies` copies of the trace's burst pattern, each shifted by an equal share of its length."""
    shape = trace.shape()
    length = len(shape)
    index = np.arange(minutes)
    total = np.zeros(minutes)
    for copy in range(copies):
        offset = first_offset + (copy * length) // copies
        total += shape[(index + offset) % length]
    result: FloatArray = total / copies
    return result


def burst_headroom(rate: FloatArray, window: int, lag: int, quantile: float = 0.99) -> float:
    """Headroom over the `window`-minute mean rate that covers `quantile` of minutes `lag` minutes later.

    The headroom a user sets after looking at their traffic: sizing at (1 + headroom) x the observed rate
    must still hold when replicas started now become ready.
    """
    kernel = np.ones(window) / window
    observed = np.convolve(rate, kernel, mode="valid")
    # observed[i] is the mean of rate[i : i + window]; compare with the rate `lag` minutes after that window.
    later = rate[window + lag :]
    basis = observed[: len(later)]
    usable = basis > 0
    if not usable.any():
        return 0.2
    ratio = later[usable] / basis[usable]
    headroom = float(np.quantile(ratio, quantile)) - 1.0
    return round(min(5.0, max(0.1, math.ceil(headroom * 20.0) / 20.0)), 2)


@dataclass(frozen=True)
class Deployment:
    """A simulated deployment with everything the replay derives from its setup."""

    setup: DeploymentSetup
    model: PerformanceModel
    trace: TraceProfile
    rate_rps: FloatArray
    """Requests per second in each minute of the replay."""
    capacity_rps: float
    """Largest request rate one replica serves within the SLO: the planner's capacity model with the burstiness
    and prompt tail measured from the deployment's traffic (`measured_burstiness`). Every policy sizes with it
    and the fluid SLO test and the hindsight bound use it."""
    limit_rps: float
    """Largest request rate one replica sustains at all (SLO ignored): what an overloaded replica serves."""
    needed: IntArray
    """Fewest ready replicas that keep each minute within the SLO (at least minReplicas)."""
    copies: int = 1
    """Copies of the trace (tenants) whose requests make up the deployment's demand (`trace_copies`)."""
    copy_share: float = 1.0
    """Share of the copies' requests the deployment receives: its peak rate over copies x the trace's mean rate
    (1.0 for a whole multiple, below 1 between), so that the request-level stream runs at `rate_rps`."""
    day_shape: FloatArray | None = None
    """Load relative to the daily peak in each minute; None means flat (1.0)."""
    minute_capacity_rps: float | None = None
    """Largest request rate per replica at which a minute's own p95 TTFT misses its objective with probability at
    most `ForecastSettings.minute_miss` (the capacity model's per-minute scatter, same measured traffic): the
    floor of gridshift's sizing (`simulation.forecast`). None: no floor. Nothing else uses it: the other
    policies, the fluid SLO test and the bounds keep `capacity_rps`."""
    planner_capacity_rps: float | None = None
    """The capacity the planner computes from the mean request sizes alone (Poisson arrivals, the settings'
    prompt tail), as the operator's Snapshot carries no burstiness; gridshift's policy converts its replica
    count into a demand the planner sizes exactly with it. None: the same as `capacity_rps`."""

    @property
    def name(self) -> str:
        return self.setup.name

    @property
    def gpus(self) -> int:
        return self.setup.gpus_per_replica

    @property
    def mean_prompt_tokens(self) -> float:
        return self.trace.mean_prompt_tokens

    @property
    def mean_output_tokens(self) -> float:
        return self.trace.mean_output_tokens


@dataclass(frozen=True)
class Replay:
    """The replay's inputs, shared by every policy and scenario."""

    settings: SimulationSettings
    planner_settings: PlannerSettings
    start: datetime
    minutes: int
    deployments: tuple[Deployment, ...]
    markets: tuple[Market, ...]
    models: tuple[PerformanceModel, ...]

    @property
    def hours(self) -> int:
        return math.ceil(self.minutes / 60)

    def market_index(self, market: str) -> int:
        for index, candidate in enumerate(self.markets):
            if candidate.name == market:
                return index
        raise KeyError(market)

    def price_per_minute(self) -> FloatArray:
        """USD/kWh of each market in each minute, shape (minutes, markets): what is billed."""
        return self._per_minute([m.usd_per_kwh[: self.hours] for m in self.markets])

    def known_price_per_minute(self) -> FloatArray:
        """USD/kWh of each market in each minute as the online policies know it then (Market.known_hourly):
        a real-time market's price of the last ended hour."""
        return self._per_minute([m.known_hourly(self.hours) for m in self.markets])

    def _per_minute(self, hourly_by_market: list[FloatArray]) -> FloatArray:
        """Hourly series, one per market, as (minutes, markets)."""
        per_minute: FloatArray = np.repeat(np.stack(hourly_by_market, axis=1), 60, axis=0)[: self.minutes]
        return per_minute

    def gpu_usd_per_hour(self, scenario: Scenario) -> FloatArray:
        """Marginal cost of one GPU-hour in each market (0 when owned)."""
        if scenario == Scenario.OWNED:
            return np.zeros(len(self.markets))
        return np.asarray([self.settings.rented_price(m.name, self.settings.gpu_type) for m in self.markets])

    # ---------------------------------------------------------------------------- capacity model

    def _inputs(self, deployment_index: IntArray) -> CapacityInputs:
        models = [self.deployments[int(d)].model for d in range(len(self.deployments))]
        columns = CapacityInputs.of(
            models,
            [d.mean_prompt_tokens for d in self.deployments],
            [d.mean_output_tokens for d in self.deployments],
            [d.setup.tpot_p95_ms for d in self.deployments],
            [d.setup.ttft_p95_ms for d in self.deployments],
        )
        return CapacityInputs(
            step_base_ms=columns.step_base_ms[deployment_index],
            step_ms_per_kv_position=columns.step_ms_per_kv_position[deployment_index],
            step_ms_per_sequence=columns.step_ms_per_sequence[deployment_index],
            prefill_tokens_per_s=columns.prefill_tokens_per_s[deployment_index],
            max_batch=columns.max_batch[deployment_index],
            mean_prompt_tokens=columns.mean_prompt_tokens[deployment_index],
            mean_output_tokens=columns.mean_output_tokens[deployment_index],
            tpot_slo_ms=columns.tpot_slo_ms[deployment_index],
            ttft_slo_ms=columns.ttft_slo_ms[deployment_index],
        )

    def replica_power_watts(self, deployment_index: IntArray, rate_per_replica: FloatArray) -> FloatArray:
        """Power of one ready replica of each deployment at its request rate (its idle power at rate 0)."""
        inputs = self._inputs(deployment_index)
        rate = np.minimum(rate_per_replica, np.asarray([self.deployments[int(d)].limit_rps for d in deployment_index]))
        models = [self.deployments[int(d)].model for d in deployment_index]
        batch = batch_at(inputs, np.maximum(rate, 0.0), self.planner_settings)
        power: FloatArray = power_at(models, np.where(rate > 0, batch, 0.0))
        return power

    def serving_power(self, ready_total: IntArray) -> FloatArray:
        """Power of one ready replica of deployment d in minute t when `ready_total[t, d]` replicas share the load.

        Shape (minutes, deployments); 0 where no replica is ready.
        """
        minutes, count = ready_total.shape
        rates = np.stack([d.rate_rps for d in self.deployments], axis=1)
        share = np.where(ready_total > 0, rates / np.maximum(ready_total, 1), 0.0)
        index = np.tile(np.arange(count), minutes)
        power = self.replica_power_watts(index, share.reshape(-1)).reshape(minutes, count)
        result: FloatArray = np.where(ready_total > 0, power, 0.0)
        return result


def _capacity(
    model: PerformanceModel,
    setup: DeploymentSetup,
    trace: TraceProfile,
    settings: PlannerSettings,
    burstiness: Burstiness | None = None,
    minute_miss: float | None = None,
    mix_cv: float | None = None,
) -> float:
    inputs = CapacityInputs.of(
        [model],
        [trace.mean_prompt_tokens],
        [trace.mean_output_tokens],
        [setup.tpot_p95_ms],
        [setup.ttft_p95_ms],
        None if burstiness is None else [burstiness.prompt_p95_tokens],
        None if burstiness is None else [burstiness.work_dispersion],
        None if burstiness is None else [burstiness.traffic],
        minute_miss,
        None if mix_cv is None else [mix_cv],
    )
    return float(capacity_requests_per_second(inputs, settings)[0])


CALIBRATION_SEED = 1
"""Seed of the calibration hour (the request-level replay uses engine.REQUEST_SEED)."""


def measured_burstiness(
    model: PerformanceModel, setup: DeploymentSetup, trace: TraceProfile, copies: int, settings: PlannerSettings
) -> Burstiness:
    """What one replica's traffic says about its queue, as the operator would measure it from live traffic:
    an hour at 3/4 of the Poisson capacity, from the other half of the trace than the replay starts at and
    with its own seed, so the replay is not scored on the hour it was calibrated on (bench/simulate_bench.py
    checks the model against the request-level engine the same way)."""
    poisson = _capacity(model, setup, trace, settings)
    offset = calibration_offset(setup, trace)
    return measure(steady_stream(trace, copies, offset=offset, rate=0.75 * poisson, seed=CALIBRATION_SEED))


def calibration_offset(setup: DeploymentSetup, trace: TraceProfile) -> int:
    """First trace minute of the calibration hour: the other half of the trace from the replay's start."""
    length = len(trace.requests_per_minute)
    return (setup.trace_offset_minutes + length // 2) % length


def _limit(model: PerformanceModel, trace: TraceProfile, settings: PlannerSettings) -> float:
    inputs = CapacityInputs.of([model], [trace.mean_prompt_tokens], [trace.mean_output_tokens], [math.inf], [math.inf])
    return float(capacity_requests_per_second(inputs, settings)[0])


def _markets(settings: SimulationSettings, prices: Sequence[MarketPrices]) -> tuple[Market, ...]:
    """Each market's hourly prices over the replay and up to LOOKAHEAD_HOURS beyond it."""
    start = settings.start
    hours = math.ceil(settings.minutes / 60)
    markets = []
    for series in prices:
        available = len(series.usd_per_kwh) - round((start - series.start) / timedelta(hours=1))
        window = series.window(start, hours)
        extra = max(0, min(LOOKAHEAD_HOURS, available - hours))
        ahead = series.window(start + timedelta(hours=hours), extra) if extra else np.zeros(0)
        previous = _previous_price(series, start)
        markets.append(
            Market(
                name=series.market,
                cluster=cluster_name(series.market),
                pue=settings.pue_of(series.market),
                gpus=settings.gpus_per_market,
                usd_per_kwh=np.concatenate([window, ahead]),
                real_time=series.market in settings.real_time_markets,
                previous_usd_per_kwh=previous,
            )
        )
    if len({m.cluster for m in markets}) != len(markets):
        raise SimulationInputError(f"markets {[m.name for m in markets]} give clashing cluster names")
    return tuple(markets)


def _previous_price(series: MarketPrices, start: datetime) -> float:
    """The price of the hour before `start` (carried over a gap), NaN where the file has none: the hour is before
    the file's first, or in a gap longer than the replay carries a price over (a real-time market's policies then
    take the first hour's own price, as where the file starts with the replay; the replay's own hours are checked
    by series.window, and an hour only a real-time market's first decision looks at does not refuse the run)."""
    before = start - timedelta(hours=1)
    if before < series.start:
        return math.nan
    try:
        return float(series.window(before, 1)[0])
    except SimulationInputError:
        return math.nan


def _refused(setup: DeploymentSetup, fields: str, message: str) -> SimulationInputError:
    """What the replay cannot derive for `setup`: a user's deployment names its file, document and `fields`
    (found in review: "deployment chat: its peak needs 11375 replicas" said neither which file nor what to
    change); a built-in one its name."""
    if setup.origin:
        return SimulationInputError(f"{setup.origin}: {fields}: deployment {setup.name}: {message}")
    return SimulationInputError(f"deployment {setup.name}: {message}")


def _deployment(
    setup: DeploymentSetup,
    model: PerformanceModel,
    trace: TraceProfile,
    settings: SimulationSettings,
    planner_settings: PlannerSettings,
) -> Deployment:
    """A setup's demand, capacities and fewest replicas within the SLO; SimulationInputError if it cannot fit."""
    minutes = settings.minutes
    copies = trace_copies(setup.peak_requests_per_second, trace)
    planner_capacity = _capacity(model, setup, trace, planner_settings)
    capacity = planner_capacity
    minute_capacity = None
    if planner_capacity > 0:
        burstiness = measured_burstiness(model, setup, trace, copies, planner_settings)
        capacity = _capacity(model, setup, trace, planner_settings, burstiness)
        minute_miss = settings.forecast.minute_miss
        if minute_miss is not None:
            # The mix is measured on the calibration hour (measured_burstiness's); the shipped traces are under an
            # hour long, so for them that hour is the whole loop the replay plays (as for the burstiness).
            mix = prompt_mix_cv(trace, copies, offset=calibration_offset(setup, trace))
            minute_capacity = _capacity(model, setup, trace, planner_settings, burstiness, minute_miss, mix)
    if capacity <= 0:
        raise _refused(
            setup,
            "spec.slo.ttftP95Ms, spec.slo.tpotP95Ms",
            f"{setup.model} on {setup.gpu_type} cannot meet TTFT {setup.ttft_p95_ms} ms / TPOT {setup.tpot_p95_ms} ms "
            "even at one request",
        )
    if minute_capacity is not None and minute_capacity <= 0:
        raise _refused(
            setup,
            "spec.slo.ttftP95Ms",
            f"no request rate keeps a minute's p95 TTFT within {setup.ttft_p95_ms} ms with probability "
            f"1 - minute_miss ({settings.forecast.minute_miss}); raise --minute-miss or pass off",
        )
    bursts = superposed_trace(trace, copies, setup.trace_offset_minutes, minutes)
    zone = MARKET_TIMEZONES.get(setup.home_market, "UTC")
    day = daily_shape(minutes, settings.start, zone, settings.diurnal_trough, settings.diurnal_peak_hour)
    rate = setup.peak_requests_per_second * day * bursts
    needed = np.maximum(setup.min_replicas, np.ceil(rate / capacity - 1e-9)).astype(np.int64)
    if needed.max() > setup.max_replicas:
        raise _refused(
            setup,
            "spec.demand.requestsPerSecond, spec.capacity.maxReplicas",
            f"its peak needs {int(needed.max())} replicas, above maxReplicas {setup.max_replicas}",
        )
    return Deployment(
        setup=setup,
        model=model,
        trace=trace,
        rate_rps=rate,
        capacity_rps=capacity,
        minute_capacity_rps=minute_capacity,
        limit_rps=max(_limit(model, trace, planner_settings), capacity),
        needed=needed,
        copies=copies,
        copy_share=setup.peak_requests_per_second / (copies * trace.mean_requests_per_second),
        day_shape=day,
        planner_capacity_rps=planner_capacity,
    )


def build_replay(
    settings: SimulationSettings,
    setups: Sequence[DeploymentSetup],
    traces: Mapping[str, TraceProfile],
    prices: Sequence[MarketPrices],
    models: Sequence[PerformanceModel],
    planner_settings: PlannerSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Replay:
    """Derive demand, capacities and prices; SimulationInputError naming what does not fit. `progress(done,
    total)` after each deployment is derived (a fraction of a second each)."""
    planner_settings = planner_settings or PlannerSettings(cold_start_seconds=settings.cold_start_seconds)
    markets = _markets(settings, prices)
    market_names = {m.name for m in markets}
    index = {(m.model, m.gpu_type, m.gpus_per_replica): m for m in models}
    deployments = []
    for setup in setups:
        key = (setup.model, setup.gpu_type, setup.gpus_per_replica)
        if key not in index:
            raise _refused(
                setup,
                "spec.model.source, spec.replica.gpusPerReplica",
                f"no GPU profile for {setup.model} on {setup.gpu_type} x{setup.gpus_per_replica}",
            )
        if setup.home_market not in market_names:
            raise SimulationInputError(f"deployment {setup.name}: home market {setup.home_market} is not simulated")
        if setup.trace not in traces:
            raise SimulationInputError(f"deployment {setup.name}: no trace {setup.trace!r}")
        deployments.append(_deployment(setup, index[key], traces[setup.trace], settings, planner_settings))
        if progress is not None:
            progress(len(deployments), len(setups))
    return Replay(
        settings=settings,
        planner_settings=planner_settings,
        start=settings.start,
        minutes=settings.minutes,
        deployments=tuple(deployments),
        markets=markets,
        models=tuple(models),
    )


# Models of the default deployments: four single-GPU models whose profiles gridshift ships, and their SLOs.
_DEFAULT_MODELS: tuple[tuple[str, int, float, float], ...] = (
    ("meta-llama/Meta-Llama-3-8B-Instruct", 1, 1000.0, 50.0),
    ("meta-llama/Llama-3.1-8B-Instruct", 1, 1000.0, 50.0),
    ("Qwen/Qwen3-8B", 1, 1000.0, 50.0),
    ("openai/gpt-oss-20b", 1, 1000.0, 50.0),
)
# Request rate at the daily peak per deployment, requests/s: mid-sized services of 5 to 16 replicas at peak,
# each made of whole copies of the trace (one copy of the Azure conversation sample is 5.5 req/s, code 2.5).
_DEFAULT_PEAK_RPS: tuple[float, ...] = (60.0, 90.0, 45.0, 75.0, 120.0, 60.0, 45.0, 90.0, 75.0, 60.0)


def burst_headroom_for(
    settings: SimulationSettings, trace: TraceProfile, peak_rps: float, offset: int, home: str
) -> float:
    """`burst_headroom` of a deployment of `peak_rps` on `trace` homed in `home`, over the replay's minutes:
    the headroom the reactive and greedy baselines size with (a user's `demand.headroom` read off their
    traffic; gridshift sizes from its forecast instead)."""
    copies = trace_copies(peak_rps, trace)
    minutes = settings.minutes
    bursts = superposed_trace(trace, copies, offset, minutes)
    zone = MARKET_TIMEZONES.get(home, "UTC")
    day = daily_shape(minutes, settings.start, zone, settings.diurnal_trough, settings.diurnal_peak_hour)
    return burst_headroom(day * bursts, settings.demand_window_minutes, settings.cold_start_minutes + 1)


TRACE_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
"""The calendar minute the looped traces are aligned to (trace_offset)."""


def trace_offset(settings: SimulationSettings, index: int, length: int) -> int:
    """The trace minute deployment `index` starts at: 17 minutes apart per deployment, shifted by the replay
    start's calendar minute (since TRACE_EPOCH), so that two weeks replay different stretches of the looped
    trace. Found in review: counted from the replay's own first minute, every week starting Monday 00:00 UTC
    replayed the tuning week's demand minute for minute, so the "out-of-sample" weeks differed only in
    prices (and daylight saving)."""
    calendar = round((settings.start - TRACE_EPOCH) / timedelta(minutes=1))
    return (index * 17 + calendar) % length


def default_deployments(
    settings: SimulationSettings, traces: Mapping[str, TraceProfile], planner_settings: PlannerSettings | None = None
) -> list[DeploymentSetup]:
    """`settings.deployments` deployments cycling over models, traces (2 conversation : 1 code) and home markets.

    Each one's peak rate is a whole number of trace copies; its headroom is what covers 99% of its minutes
    over the actuation lag (see `burst_headroom`), the same for gridshift and the reactive autoscaler.
    """
    names = sorted(traces)
    conversation = "conv" if "conv" in traces else names[0]
    code = "code" if "code" in traces else names[-1]
    setups = []
    for index in range(settings.deployments):
        model, gpus, ttft, tpot = _DEFAULT_MODELS[index % len(_DEFAULT_MODELS)]
        trace_name = code if index % 3 == 2 else conversation
        trace = traces[trace_name]
        copies = max(1, round(_DEFAULT_PEAK_RPS[index % len(_DEFAULT_PEAK_RPS)] / trace.mean_requests_per_second))
        home = settings.markets[index % len(settings.markets)]
        offset = trace_offset(settings, index, len(trace.requests_per_minute))
        headroom = burst_headroom_for(settings, trace, copies * trace.mean_requests_per_second, offset, home)
        setups.append(
            DeploymentSetup(
                name=f"{trace_name}-{index:02d}",
                model=model,
                gpu_type=settings.gpu_type,
                gpus_per_replica=gpus,
                trace=trace_name,
                peak_requests_per_second=copies * trace.mean_requests_per_second,
                ttft_p95_ms=ttft if trace_name == conversation else 2.0 * ttft,
                tpot_p95_ms=tpot,
                headroom=headroom,
                home_market=home,
                trace_offset_minutes=offset,
            )
        )
    return setups
