"""Small replays built from hand-made prices and traces, for the simulation tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np

from gridshift.cli.simulate import price_csv_parser
from gridshift.planner import PlannerSettings
from gridshift.planner.capacity import replica_capacity
from gridshift.planner.profiles import PerformanceModel
from gridshift.profiles_catalog import default_performance_models
from gridshift.simulation.data import MarketPrices, TraceProfile, load_prices, shipped_trace
from gridshift.simulation.replay import Replay, build_replay, default_deployments
from gridshift.simulation.settings import H100, DeploymentSetup, SimulationSettings

START = datetime(2024, 3, 4, tzinfo=UTC)
MEASURED_MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"


def models() -> tuple[PerformanceModel, ...]:
    return default_performance_models()


def conv_capacity(model: PerformanceModel) -> float:
    """One replica's SLO capacity on the shipped conversation trace (TTFT 1000 ms, TPOT 50 ms), req/s."""
    trace = shipped_trace("conv")
    return replica_capacity(
        model,
        mean_prompt_tokens=trace.mean_prompt_tokens,
        mean_output_tokens=trace.mean_output_tokens,
        tpot_slo_ms=50.0,
        ttft_slo_ms=1000.0,
        settings=PlannerSettings(),
    ).requests_per_second


def flat_trace(name: str = "flat", minutes: int = 60, per_minute: float = 300.0) -> TraceProfile:
    """A trace with the same number of requests every minute (conversation-like lengths)."""
    count = int(per_minute * minutes)
    return TraceProfile(
        name=name,
        requests_per_minute=np.full(minutes, per_minute),
        mean_prompt_tokens=1155.0,
        mean_output_tokens=211.0,
        prompt_tokens=np.full(count, 1155, dtype=np.int64),
        output_tokens=np.full(count, 211, dtype=np.int64),
        arrival_seconds=np.arange(count) * 60.0 / per_minute,
    )


def hourly_prices(market: str, usd_per_mwh: Sequence[float], start: datetime = START) -> MarketPrices:
    return MarketPrices(
        market=market, currency="USD", start=start, usd_per_kwh=np.asarray(usd_per_mwh, dtype=np.float64) / 1000.0
    )


def setup(
    name: str,
    peak_rps: float,
    home: str,
    *,
    trace: str = "flat",
    headroom: float = 0.2,
    model: str = MEASURED_MODEL,
    min_replicas: int = 1,
) -> DeploymentSetup:
    return DeploymentSetup(
        name=name,
        model=model,
        gpu_type=H100,
        gpus_per_replica=1,
        trace=trace,
        peak_requests_per_second=peak_rps,
        ttft_p95_ms=1000.0,
        tpot_p95_ms=50.0,
        headroom=headroom,
        home_market=home,
        trace_offset_minutes=0,
        min_replicas=min_replicas,
    )


def flat_replay(
    setups: Sequence[DeploymentSetup],
    prices: Sequence[MarketPrices],
    *,
    minutes: int,
    gpus_per_market: int = 16,
    traces: dict[str, TraceProfile] | None = None,
    start: datetime = START,
    **settings_args: object,
) -> Replay:
    """A replay with no daily swing: demand is each deployment's peak rate times its trace's bursts."""
    settings = SimulationSettings(
        start=start,
        days=minutes / 1440.0,
        markets=tuple(p.market for p in prices),
        gpus_per_market=gpus_per_market,
        diurnal_trough=1.0,
        **settings_args,  # type: ignore[arg-type]
    )
    return build_replay(settings, setups, traces or {"flat": flat_trace()}, prices, models())


def shipped_replay(days: float = 0.25, deployments: int = 4, **settings_args: object) -> Replay:
    """The default replay (shipped prices and traces), shortened."""
    settings = SimulationSettings(days=days, deployments=deployments, **settings_args)  # type: ignore[arg-type]
    traces = {"conv": shipped_trace("conv"), "code": shipped_trace("code")}
    prices = load_prices([], fx_to_usd=settings.fx_to_usd, markets=settings.markets, parser=price_csv_parser())
    return build_replay(settings, default_deployments(settings, traces), traces, prices, models())


def shifted(start: datetime, minutes: int) -> datetime:
    return start + timedelta(minutes=minutes)


def with_settings(replay: Replay, **changes: object) -> Replay:
    return replace(replay, settings=replace(replay.settings, **changes))  # type: ignore[arg-type]
