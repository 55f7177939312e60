"""The online policies compared in a replay: static, reactive, greedy and gridshift.

Each sees only the past: the request rate of minutes before the current one, and prices as far as
markets have published them. None of them is tuned against the hindsight bound.

- static: each deployment in its home market with the replicas its highest-load minute of the whole
  replay needs (so the SLO always holds), never changed. The most a careful operator without
  autoscaling provisions; sizing it from the peak is hindsight in its favour.
- reactive: an HPA-like autoscaler in the home market: every minute, replicas for the last minute's
  rate x (1 + headroom) at the SLO capacity per replica; scale-downs wait for the largest
  recommendation of the last 5 minutes (the HPA's downscale stabilisation).
- greedy: reactive sizing, but the replicas live in the market with the cheapest cost per replica-hour
  right now (GPU-hour plus power at capacity x PUE x the current price), moving all of them there when
  that changes, at most once per cooldown; ignores cold-start costs and future prices.
- gridshift: the real planner (gridshift.planner.make_plan) on a Snapshot of the fleet every
  `replan_minutes`, at each replay hour's start where a market is real-time (its price of the hour just ended
  becomes known then), and at once when the forecast-driven sizing (gridshift.simulation.forecast) asks for
  more replicas than are planned; prices are the published day-ahead ones. When the sizing asks for fewer,
  the surplus is stopped that minute where a replica costs most now, without a new plan (the operator
  plans every minute; a planner call every minute of a week is too slow for a benchmark, and a
  scale-down never needs a new placement).
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import numpy as np

from gridshift.arrays import FloatArray, IntArray
from gridshift.modes import MigrationMode
from gridshift.planner import make_plan
from gridshift.planner import snapshot as S
from gridshift.simulation.engine import FleetView
from gridshift.simulation.forecast import required_replicas, sized_rates
from gridshift.simulation.replay import Replay
from gridshift.simulation.settings import DeploymentSetup, Scenario


def _clamp_replicas(replay: Replay, counts: IntArray) -> IntArray:
    low = np.asarray([d.setup.min_replicas for d in replay.deployments])
    high = np.asarray([d.setup.max_replicas for d in replay.deployments])
    clamped: IntArray = np.clip(counts, low, high).astype(np.int64)
    return clamped


def _home(replay: Replay) -> IntArray:
    return np.asarray([replay.market_index(d.setup.home_market) for d in replay.deployments], dtype=np.int64)


class _Autoscaler:
    """HPA-like replica counts: last minute's rate x (1 + headroom) / capacity, slow to scale down."""

    def __init__(self, replay: Replay) -> None:
        self.replay = replay
        self.rates = np.stack([d.rate_rps for d in replay.deployments], axis=1)
        self.factor = np.asarray([(1.0 + d.setup.headroom) / d.capacity_rps for d in replay.deployments])
        self.window = replay.settings.reactive_downscale_minutes
        self.history: list[IntArray] = []

    def recommend(self, minute: int) -> IntArray:
        observed = self.rates[max(minute - 1, 0)]
        wanted = _clamp_replicas(self.replay, np.ceil(observed * self.factor - 1e-9).astype(np.int64))
        self.history.append(wanted)
        if len(self.history) > self.window:
            self.history.pop(0)
        stabilised: IntArray = np.max(np.stack(self.history), axis=0)
        return stabilised


class StaticPolicy:
    name = "static"

    def __init__(self, replay: Replay) -> None:
        self.replay = replay

    def initial_targets(self) -> IntArray:
        targets = np.zeros((len(self.replay.deployments), len(self.replay.markets)), dtype=np.int64)
        peak = _clamp_replicas(self.replay, np.asarray([int(d.needed.max()) for d in self.replay.deployments]))
        targets[np.arange(len(peak)), _home(self.replay)] = peak
        return targets

    def decide(self, minute: int, fleet: FleetView) -> IntArray | None:
        return None


class ReactivePolicy:
    name = "reactive"

    def __init__(self, replay: Replay) -> None:
        self.replay = replay
        self.autoscaler = _Autoscaler(replay)
        self.home = _home(replay)

    def _targets(self, counts: IntArray) -> IntArray:
        targets = np.zeros((len(self.replay.deployments), len(self.replay.markets)), dtype=np.int64)
        targets[np.arange(len(counts)), self.home] = counts
        return targets

    def initial_targets(self) -> IntArray:
        return self._targets(self.autoscaler.recommend(0))

    def decide(self, minute: int, fleet: FleetView) -> IntArray | None:
        targets = self._targets(self.autoscaler.recommend(minute))
        return None if np.array_equal(targets, fleet.targets) else targets


class GreedyPolicy:
    name = "greedy"

    def __init__(self, replay: Replay, scenario: Scenario) -> None:
        self.replay = replay
        self.autoscaler = _Autoscaler(replay)
        self.prices = replay.known_price_per_minute()
        pue = np.asarray([m.pue for m in replay.markets])
        gpus = np.asarray([d.gpus for d in replay.deployments], dtype=np.float64)
        capacity = np.asarray([d.capacity_rps for d in replay.deployments])
        power = replay.replica_power_watts(np.arange(len(replay.deployments)), capacity)
        self.gpu_cost = gpus[:, None] * replay.gpu_usd_per_hour(scenario)[None, :]
        self.energy_watts = power[:, None] * pue[None, :]
        self.gpus = gpus.astype(np.int64)
        self.cooldown = replay.settings.greedy_cooldown_minutes
        self.last_move = np.full(len(replay.deployments), -(10**9))
        self.inventory = np.asarray([m.gpus for m in replay.markets], dtype=np.int64)

    def _hourly_cost(self, minute: int) -> FloatArray:
        cost: FloatArray = self.gpu_cost + self.energy_watts * self.prices[minute][None, :] / 1000.0
        return cost

    def _place(self, minute: int, counts: IntArray, current: IntArray, held: IntArray) -> IntArray:
        cost = self._hourly_cost(minute)
        free = self.inventory - (held * self.gpus[:, None]).sum(axis=0)
        targets = np.zeros_like(current)
        for d in range(len(counts)):
            own = held[d] * self.gpus[d]
            room = (free + own) // self.gpus[d]
            order = np.argsort(cost[d], kind="stable")
            home = int(np.argmax(current[d])) if current[d].any() else int(order[0])
            cheapest = next((int(m) for m in order if room[m] >= counts[d]), home)
            chosen = home
            if cheapest != home and cost[d, cheapest] < cost[d, home] and minute - self.last_move[d] >= self.cooldown:
                chosen = cheapest
                if minute > 0:
                    self.last_move[d] = minute
            left = int(counts[d])
            for m in [chosen, *(int(m) for m in order if m != chosen)]:
                take = min(left, max(int(room[m]), 0))
                targets[d, m] = take
                left -= take
                if left <= 0:
                    break
            free -= np.maximum(targets[d] - held[d], 0) * self.gpus[d]
        return targets

    def initial_targets(self) -> IntArray:
        deployments, markets = len(self.replay.deployments), len(self.replay.markets)
        empty = np.zeros((deployments, markets), dtype=np.int64)
        return self._place(0, self.autoscaler.recommend(0), empty, empty)

    def decide(self, minute: int, fleet: FleetView) -> IntArray | None:
        counts = self.autoscaler.recommend(minute)
        targets = self._place(minute, counts, fleet.targets, fleet.held)
        return None if np.array_equal(targets, fleet.targets) else targets


def forecast_sizing(replay: Replay, *, floor: bool = True) -> IntArray:
    """gridshift's sizing of every minute, from the past alone: the Ready replicas asked for, the larger of the
    forecast plus its margin over the SLO capacity and the forecast over the per-minute capacity (`floor`
    False: the margin's count alone, not cached, for telling which of the two asks for a count).

    Causal (minute t reads rates before t), so computing it for the whole replay up front is what the
    policy would compute minute by minute; the same-information bound uses the same replicas.
    """
    cached = _SIZING.get(id(replay))
    if floor and cached is not None and cached[0] is replay:
        return cached[1]
    settings = replay.settings
    rates = np.stack([d.rate_rps for d in replay.deployments], axis=1)
    lag = settings.cold_start_minutes + 1
    sized = sized_rates(rates, replay.start.hour * 60 + replay.start.minute, lag, settings.forecast)
    capacity = np.asarray([d.capacity_rps for d in replay.deployments])
    floors = [d.minute_capacity_rps for d in replay.deployments]
    minute_capacity = None if any(f is None for f in floors) else np.asarray(floors, dtype=np.float64)
    low = np.asarray([d.setup.min_replicas for d in replay.deployments], dtype=np.int64)
    high = np.asarray([d.setup.max_replicas for d in replay.deployments], dtype=np.int64)
    if not floor:
        return required_replicas(sized, capacity, None, settings.cold_start_minutes, low, high)
    required = required_replicas(sized, capacity, minute_capacity, settings.cold_start_minutes, low, high)
    # One replay's sizing is asked for by the policy and by the same-information bound of every scenario
    # (about 1.4 s of CPU each time): keep the latest (a replay is immutable), computed before the runner forks.
    required.setflags(write=False)
    _SIZING.clear()
    _SIZING[id(replay)] = (replay, required)
    return required


_SIZING: dict[int, tuple[Replay, IntArray]] = {}


class GridshiftPolicy:
    """The planner in the loop, seeing what the operator would see."""

    name = "gridshift"

    def __init__(self, replay: Replay, scenario: Scenario) -> None:
        self.replay = replay
        settings = replay.settings
        self.replan = settings.replan_minutes
        self.capacity = np.asarray([d.capacity_rps for d in replay.deployments])
        self.planner_capacity = np.asarray(
            [d.capacity_rps if d.planner_capacity_rps is None else d.planner_capacity_rps for d in replay.deployments]
        )
        self.required = forecast_sizing(replay)
        self.last_plan = -(10**9)
        # Scheduled plans come one cold start before each step (prices change on the hour), so that the replicas a
        # plan moves are Ready when the hour they were placed for begins.
        self.plan_lead = settings.cold_start_minutes if self.replan > settings.cold_start_minutes else 0
        self.phase = replay.start.minute
        self.plans = 0
        gpu_hour = replay.gpu_usd_per_hour(scenario)
        self.clusters = tuple(
            S.Cluster(
                name=market.cluster,
                region=market.cluster,
                pue=market.pue,
                offerings=(
                    S.Offering(
                        gpu_type=settings.gpu_type,
                        available_gpus=market.gpus,
                        hourly_cost_usd=float(gpu_hour[index]),
                        idle_power_watts=settings.gpu_idle_watts,
                    ),
                ),
            )
            for index, market in enumerate(replay.markets)
        )
        self.cluster_index = {c.name: i for i, c in enumerate(self.clusters)}
        self.prices = replay.known_price_per_minute()
        pue = np.asarray([m.pue for m in replay.markets])
        power = replay.replica_power_watts(np.arange(len(replay.deployments)), self.capacity)
        gpus = np.asarray([d.gpus for d in replay.deployments], dtype=np.float64)
        self.gpu_cost = gpus[:, None] * gpu_hour[None, :]
        self.energy_watts = power[:, None] * pue[None, :]
        self.gpus = gpus.astype(np.int64)
        self.local_scale_up = True
        # A real-time market's price of an hour is known once the hour ends (Market.known_hourly). The scheduled
        # plan comes a cold start before the hour, when the newest price it knows is two hours old; at the top of
        # the hour the hour just ended is known, so plan again then (information, not a timer: with day-ahead
        # prices alone nothing new arrives and no plan is added). Owned moves are free at the margin and keep
        # serving until the new replica is Ready (make-before-break); rented ones are charged their cold start.
        self.plan_on_new_price = any(market.real_time for market in replay.markets)
        # The plan applied now holds until the next scheduled replan: value it over that step at the hourly
        # day-ahead prices (receding horizon), not at a mean over the payback horizon (6 h by default), which
        # averages the hours the plan will not be in force for and kept replicas in markets that are dear now.
        step_hours = settings.replan_minutes / 60.0
        self.specs = tuple(
            self._spec(d.setup, d.mean_prompt_tokens, d.mean_output_tokens, step_hours) for d in replay.deployments
        )
        # Owned GPUs: a start adds only its GPUs' idle draw, which the idle fleet draws anyway (the scenario's
        # accounting), so a move costs nothing at the margin and the planner's per-move risk premium (0.10 USD,
        # more than an owned replica's whole hour of power above idle at most prices) is not charged: with it
        # the replicas stayed where the sizing first put them.
        planner_settings = (
            replace(replay.planner_settings, move_penalty_usd=0.0)
            if scenario == Scenario.OWNED
            else replay.planner_settings
        )
        # No scale-down band: the planner is handed an exact replica count (`demand`), and the forecast sizing
        # already has its own scale-down rule (forecast.required_replicas holds each count through dips of a
        # cold start's minutes, and `scale_down` applies its falls). The band would keep replicas the sizing
        # dropped (a demand of (n - 1e-6) replicas x 1.05 exceeds n replicas), and change every replay.
        self.planner_settings = replace(planner_settings, scale_down_band=0.0)

    @staticmethod
    def _spec(setup: DeploymentSetup, prompt: float, output: float, step_hours: float) -> S.Requirements:
        return S.Requirements(
            model_names=(setup.model,),
            gpu_types=(setup.gpu_type,),
            gpus_per_replica=setup.gpus_per_replica,
            ttft_slo_ms=setup.ttft_p95_ms,
            tpot_slo_ms=setup.tpot_p95_ms,
            min_replicas=setup.min_replicas,
            max_replicas=setup.max_replicas,
            min_regions=1,
            mode=MigrationMode.AUTO,
            max_concurrent_moves=setup.max_concurrent_moves,
            payback_horizon_hours=min(setup.payback_horizon_hours, step_hours),
            mean_prompt_tokens=prompt,
            mean_output_tokens=output,
            # The forecast-driven sizing puts its margin into the demand it reports (`demand`).
            headroom=0.0,
        )

    def demand(self, minute: int) -> FloatArray:
        """Requests/s that the planner sizes exactly `required[minute]` replicas for (ceil(rate / its capacity))."""
        rate: FloatArray = (self.required[minute] - 1e-6) * self.planner_capacity
        return rate

    def known_hours(self, minute: int) -> int:
        """Hours of prices published at `minute`, counted from the current hour (day-ahead publication)."""
        now = self.replay.start + timedelta(minutes=minute)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        if now.hour >= self.replay.settings.price_publication_hour_utc:
            midnight += timedelta(days=1)
        hour_start = now.replace(minute=0, second=0, microsecond=0)
        return max(1, math.ceil((midnight - hour_start) / timedelta(hours=1)))

    def snapshot(self, minute: int, fleet: FleetView | None) -> S.Snapshot:
        replay = self.replay
        now = replay.start + timedelta(minutes=minute)
        hour = minute // 60
        hour_start = replay.start + timedelta(hours=hour)
        horizon = self.known_hours(minute)
        prices = {}
        for m, market in enumerate(replay.markets):
            # A real-time market's hours ahead are forecast at the last ended hour's price (persistence).
            values = (
                np.full(horizon, self.prices[minute, m])
                if market.real_time
                else market.usd_per_kwh[hour : hour + horizon]
            )
            intervals = tuple(
                S.EnergyPrice(
                    hour_start + timedelta(hours=offset),
                    hour_start + timedelta(hours=offset + 1),
                    float(value),
                )
                for offset, value in enumerate(values)
                if not math.isnan(value)
            )
            prices[market.cluster] = S.PriceHorizon(intervals)
        observed = self.demand(minute)
        deployments = []
        for index, (deployment, spec) in enumerate(zip(replay.deployments, self.specs, strict=True)):
            placements: tuple[S.Placement, ...] = ()
            if fleet is not None:
                placements = tuple(
                    S.Placement(
                        cluster=market.cluster,
                        gpu_type=replay.settings.gpu_type,
                        desired=int(fleet.targets[index, m]),
                        ready=int(min(fleet.ready[index, m], fleet.targets[index, m])),
                    )
                    for m, market in enumerate(replay.markets)
                    if fleet.targets[index, m] > 0 or fleet.ready[index, m] > 0
                )
            deployments.append(
                S.Deployment(
                    namespace="simulation",
                    name=deployment.name,
                    requirements=spec,
                    placements=placements,
                    demand=S.ObservedDemand(
                        requests_per_second=float(observed[index]),
                        mean_prompt_tokens=deployment.mean_prompt_tokens,
                        mean_output_tokens=deployment.mean_output_tokens,
                    ),
                )
            )
        return S.Snapshot(
            now=now, deployments=tuple(deployments), clusters=self.clusters, profiles=replay.models, prices=prices
        )

    def plan(self, minute: int, fleet: FleetView | None) -> IntArray:
        plan = make_plan(self.snapshot(minute, fleet), self.planner_settings)
        self.plans += 1
        self.last_plan = minute
        targets = np.zeros((len(self.replay.deployments), len(self.replay.markets)), dtype=np.int64)
        for index, deployment in enumerate(self.replay.deployments):
            for target in plan.for_deployment(f"simulation/{deployment.name}").targets:
                targets[index, self.cluster_index[target.cluster]] += target.replicas
        return targets

    def initial_targets(self) -> IntArray:
        return self.plan(0, None)

    def decide(self, minute: int, fleet: FleetView) -> IntArray | None:
        wanted = self.required[minute]
        planned = fleet.targets.sum(axis=1)
        if (self.phase + minute + self.plan_lead) % self.replan == 0 or self.new_price_known(minute):
            targets = self.plan(minute, fleet)
        elif (wanted > planned).any():
            targets = self.scale_up(minute, fleet, wanted) if self.local_scale_up else self.plan(minute, fleet)
        elif (wanted < planned).any():
            targets = self.scale_down(minute, fleet.targets, wanted)
        else:
            return None
        return None if np.array_equal(targets, fleet.targets) else targets

    def new_price_known(self, minute: int) -> bool:
        """Whether a real-time market's price of the hour that just ended became known at this minute. Prices are
        indexed by the replay's own hours (minute // 60), so whatever minute of the hour the replay starts at
        (found in review: timed on the wall clock, a replay from :30 planned where nothing new was known)."""
        return self.plan_on_new_price and minute > 0 and minute % 60 == 0

    def _cost_now(self, minute: int) -> FloatArray:
        """Cost of one replica-hour of each deployment in each market at this minute's price (GPU-hour + power at
        capacity x PUE x price), the planner's hourly cost valued at the hour the change is applied in."""
        cost: FloatArray = self.gpu_cost + self.energy_watts * self.prices[minute][None, :] / 1000.0
        return cost

    def scale_up(self, minute: int, fleet: FleetView, wanted: IntArray) -> IntArray:
        """Start the missing replicas where one costs least this minute, among markets with free GPUs.

        Between the hourly plans the sizing's rises are applied here, as its falls are in `scale_down`: the
        planner's own choice for one more replica when nothing else moves (the cheapest option valued over the
        current step), without a planner call in each of the ~1,000 minutes a week where some deployment grows.
        Where no market has room the replicas are left to the next plan.
        """
        cost = self._cost_now(minute)
        targets = fleet.targets.copy()
        free = fleet.free_gpus() - (np.maximum(targets - fleet.held, 0) * self.gpus[:, None]).sum(axis=0)
        for d in np.flatnonzero(targets.sum(axis=1) < wanted):
            missing = int(wanted[d] - targets[d].sum())
            for m in np.argsort(cost[d], kind="stable"):
                take = min(missing, max(int(free[m] // self.gpus[d]), 0))
                targets[d, m] += take
                free[m] -= take * self.gpus[d]
                missing -= take
                if missing == 0:
                    break
        return targets

    def scale_down(self, minute: int, current: IntArray, wanted: IntArray) -> IntArray:
        """Stop the surplus replicas where one costs most this minute (GPU-hour + power at capacity x PUE x price)."""
        cost = self._cost_now(minute)
        targets = current.copy()
        for d in np.flatnonzero(current.sum(axis=1) > wanted):
            surplus = int(current[d].sum() - wanted[d])
            for m in np.argsort(-cost[d], kind="stable"):
                take = min(surplus, int(targets[d, m]))
                targets[d, m] -= take
                surplus -= take
                if surplus == 0:
                    break
        return targets
