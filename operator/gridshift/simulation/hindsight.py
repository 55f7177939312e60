"""The hindsight bound: the simulator's cost model minimised with the whole replay's prices and load known.

A linear programme (HiGHS through scipy.optimize.milp) over every minute t, deployment d and market m:

    h[t,d,m] >= 0   replicas holding GPUs (paid `CostRates.held_usd`: GPU-hours, idle draw)
    s[t,d,m] >= 0   replicas started at minute t (s >= h[t] - h[t-1]); Ready from t + cold-start minutes
    y[t,d,m] >= 0   replicas serving, y <= h[t] - (replicas started in the last cold-start minutes)

    minimise  sum h * held_usd + y * (P[t,d] - idle[d]) * watts_to_usd[t,m]
    subject to  sum_m y[t,d,m] >= N[t,d]            (the fewest Ready replicas within the SLO)
                sum_m h[t,d,m] <= maxReplicas[d]
                sum_d gpus[d] * h[t,d,m] <= GPUs of market m

P[t,d] is a Ready replica's power when N[t,d] replicas share the minute's load, exactly the
simulator's accounting for a schedule with N Ready replicas. Why the optimum is a lower bound on
every policy's cost (in the minutes where the policy met the SLO):

- any policy schedule maps to a feasible point (its held replicas and starts; y = N of its Ready
  ones, the cheapest); with more Ready replicas than N the policy's total draw is at least N*P plus an
  idle draw per extra replica, because a replica's power never falls below its GPUs' idle power
  (`tests/simulation` checks this of the shipped profiles);
- integrality is relaxed (an LP's optimum is at most the integer one);
- the replay is cut into windows (a day by default), each starting from whatever placement suits
  it, Ready at no cost: each window's optimum is at most the cost a policy pays in it, so their sum is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from gridshift.arrays import FloatArray, IntArray
from gridshift.simulation.engine import CostRates
from gridshift.simulation.replay import Replay
from gridshift.simulation.settings import Scenario


class HindsightError(RuntimeError):
    """HiGHS found no optimum (infeasible inventory, or a solver failure)."""


@dataclass(frozen=True)
class HindsightResult:
    cost_usd: float
    held: FloatArray
    """Replicas holding GPUs per (minute, deployment, market); fractional where the LP splits."""
    serving: FloatArray
    started: float
    migrations: float
    windows: int
    exact: bool
    """True when solved with integer replicas (a MILP), False for the LP relaxation."""
    gpu_hours: float | None = None
    """GPU-hours held, cold starts included (the fast bound's `held` leaves them out: its placements are per
    minute); None: sum `held`."""


@dataclass(frozen=True)
class _Span:
    """Minutes [first, last) of the replay as one LP: its prices, the Ready replicas required per minute and
    deployment, and a Ready replica's power in each."""

    replay: Replay
    rates: CostRates
    serving_power: FloatArray
    required: IntArray
    first: int
    last: int

    @property
    def shape(self) -> tuple[int, int, int]:
        """minutes x deployments x markets: one LP column per cell and kind of replica."""
        return (self.last - self.first, len(self.replay.deployments), len(self.replay.markets))

    @property
    def gpus(self) -> FloatArray:
        """GPUs per replica, per deployment."""
        return np.asarray([d.gpus for d in self.replay.deployments], dtype=np.float64)

    @property
    def inventory(self) -> FloatArray:
        """GPUs per market."""
        return np.asarray([m.gpus for m in self.replay.markets], dtype=np.float64)

    @property
    def max_replicas(self) -> FloatArray:
        return np.asarray([d.setup.max_replicas for d in self.replay.deployments], dtype=np.float64)

    @property
    def replica_limit(self) -> FloatArray:
        """deployments x markets: the most replicas a market's inventory and maxReplicas allow."""
        return np.minimum(self.inventory[None, :] // self.gpus[:, None], self.max_replicas[:, None])

    @property
    def covered(self) -> FloatArray:
        """The Ready replicas required, minute by minute (row-major), as row bounds."""
        return self.required[self.first : self.last].reshape(-1).astype(np.float64)


class _Rows:
    """The constraint rows of one LP, gathered block by block: sparse coefficients and each row's bounds."""

    def __init__(self) -> None:
        self.rows: list[IntArray] = []
        self.cols: list[IntArray] = []
        self.vals: list[FloatArray] = []
        self.lower: list[FloatArray] = []
        self.upper: list[FloatArray] = []
        self.count = 0

    def block(self, shape: tuple[int, ...], lower: FloatArray, upper: FloatArray) -> IntArray:
        """Ids of a new block of rows (one per cell of `shape`) bounded by `lower` and `upper`."""
        size = int(np.prod(shape))
        ids = self.count + np.arange(size).reshape(shape)
        self.lower.append(lower)
        self.upper.append(upper)
        self.count += size
        return ids

    def add(self, row_ids: IntArray, col_ids: IntArray, values: float | FloatArray) -> None:
        self.rows.append(row_ids.reshape(-1))
        self.cols.append(col_ids.reshape(-1))
        self.vals.append(np.broadcast_to(np.asarray(values, dtype=np.float64), row_ids.shape).reshape(-1))

    def constraint(self, columns: int) -> LinearConstraint:
        matrix = coo_matrix(
            (np.concatenate(self.vals), (np.concatenate(self.rows), np.concatenate(self.cols))),
            shape=(self.count, columns),
        ).tocsr()
        return LinearConstraint(matrix, np.concatenate(self.lower), np.concatenate(self.upper))


def _window_rows(span: _Span) -> _Rows:
    """The window's constraints (module docstring) over columns h, s, y of `minutes x deployments x markets`."""
    minutes, deployments, markets = span.shape
    cells = minutes * deployments * markets
    cold = span.replay.settings.cold_start_minutes
    gpus, inventory, max_replicas = span.gpus, span.inventory, span.max_replicas
    cell = np.arange(cells).reshape(minutes, deployments, markets)
    h_index = cell
    s_index = cells + cell
    y_index = 2 * cells + cell
    rows = _Rows()
    # Starts: s[t] - h[t] + h[t-1] >= 0 for t >= 1.
    if minutes > 1:
        count = (minutes - 1) * deployments * markets
        ids = rows.block((minutes - 1, deployments, markets), np.zeros(count), np.full(count, np.inf))
        rows.add(ids, s_index[1:], 1.0)
        rows.add(ids, h_index[1:], -1.0)
        rows.add(ids, h_index[:-1], 1.0)
    # Serving: y[t] - h[t] + sum of starts in the last `cold` minutes <= 0.
    ids = rows.block((minutes, deployments, markets), np.full(cells, -np.inf), np.zeros(cells))
    rows.add(ids, y_index, 1.0)
    rows.add(ids, h_index, -1.0)
    for lag in range(cold):
        if lag >= minutes:
            break
        rows.add(ids[lag:], s_index[: minutes - lag], 1.0)
    # Coverage: sum_m y >= N.
    count = minutes * deployments
    coverage_ids = rows.block((minutes, deployments), span.covered, np.full(count, np.inf))
    rows.add(np.repeat(coverage_ids[:, :, None], markets, axis=2), y_index, 1.0)
    # maxReplicas: sum_m h <= max.
    bound_ids = rows.block(
        (minutes, deployments),
        np.full(count, -np.inf),
        np.broadcast_to(max_replicas[None, :], (minutes, deployments)).reshape(-1).copy(),
    )
    rows.add(np.repeat(bound_ids[:, :, None], markets, axis=2), h_index, 1.0)
    # Inventory: sum_d gpus * h <= GPUs.
    count = minutes * markets
    inventory_ids = rows.block(
        (minutes, markets),
        np.full(count, -np.inf),
        np.broadcast_to(inventory[None, :], (minutes, markets)).reshape(-1).copy(),
    )
    rows.add(
        np.repeat(inventory_ids[:, None, :], deployments, axis=1),
        h_index,
        np.broadcast_to(gpus[None, :, None], (minutes, deployments, markets)),
    )
    return rows


def _window(span: _Span, integer: bool) -> tuple[float, FloatArray, FloatArray, FloatArray]:
    """The joint LP of the span's minutes: its cost and the held, started and serving replicas."""
    rates, first, last = span.rates, span.first, span.last
    shape = span.shape
    cells = int(np.prod(shape))
    held_cost = rates.held_usd[first:last].reshape(-1)
    serving_cost = (
        (span.serving_power[first:last] - rates.idle_watts[None, :])[:, :, None]
        * rates.serving_watts_to_usd[first:last, None, :]
    ).reshape(-1)
    cost = np.concatenate([held_cost, np.zeros(cells), serving_cost])
    # h, s and y alike: at most what the market's inventory and maxReplicas allow.
    upper_h = np.broadcast_to(span.replica_limit[None], shape).reshape(-1)
    upper = np.concatenate([upper_h, upper_h, upper_h])
    upper[cells : cells + shape[1] * shape[2]] = 0.0  # the window starts from a free placement: nothing is starting
    rows = _window_rows(span)
    integrality = np.zeros(3 * cells)
    if integer:
        integrality[: 2 * cells] = 1
    result = milp(
        c=cost,
        integrality=integrality,
        bounds=Bounds(np.zeros(3 * cells), upper),
        constraints=[rows.constraint(3 * cells)],
        options={"presolve": True, "mip_rel_gap": 1e-9},
    )
    if result.x is None or result.status not in (0,):
        raise HindsightError(f"hindsight minutes {first}..{last}: HiGHS found no optimum ({result.message})")
    x = result.x
    held = x[:cells].reshape(shape)
    started = x[cells : 2 * cells].reshape(shape)
    serving = x[2 * cells :].reshape(shape)
    return float(result.fun), held, started, serving


def _priced_power(replay: Replay, required: IntArray | None) -> tuple[IntArray, FloatArray]:
    """The Ready replicas required per minute and deployment (default: those the SLO needs) and a Ready
    replica's power in each such minute."""
    needed = np.stack([d.needed for d in replay.deployments], axis=1)
    required = needed if required is None else required
    # A replica's power at the load it carries when `required` replicas share it (as the accounting prices a
    # schedule with that many Ready): priced at `needed` replicas' load, a bound asked for more replicas than
    # the SLO needs charged each the busier replica's power and could cost more than a schedule it bounds.
    serving_power = replay.serving_power(np.maximum(required, needed))
    if (required < needed).any():
        # Where the SLO is waived, a policy's replicas may be overloaded: price serving at the most a replica
        # draws, so that negative prices cannot make a policy's overloaded minute cheaper than the bound.
        count = len(replay.deployments)
        limits = np.asarray([d.limit_rps for d in replay.deployments])
        at_limit = replay.replica_power_watts(np.arange(count), limits)
        serving_power = np.where(required < needed, at_limit[None, :], serving_power)
    return required, serving_power


def solve_hindsight_lp(
    replay: Replay,
    rates: CostRates,
    *,
    required: IntArray | None = None,
    window_minutes: int = 1440,
    integer: bool = False,
    progress: Callable[[int], None] | None = None,
) -> HindsightResult:
    """The joint LP over the whole replay, cut into windows.

    `required[t, d]` overrides the Ready replicas needed (default: every minute within the SLO); 0 drops a
    minute's SLO requirement, for bounding a policy that missed it."""
    required, serving_power = _priced_power(replay, required)
    minutes = replay.minutes
    total = 0.0
    held_parts = []
    serving_parts = []
    started = 0.0
    migrations = 0.0
    windows = 0
    for first in range(0, minutes, window_minutes):
        last = min(minutes, first + window_minutes)
        value, held, starts, serving = _window(_Span(replay, rates, serving_power, required, first, last), integer)
        total += value
        held_parts.append(held)
        serving_parts.append(serving)
        started += float(starts.sum())
        # A move: within a minute, replicas started in one market while another market's count falls.
        drops = np.maximum(held[:-1] - held[1:], 0.0).sum(axis=2)
        migrations += float(np.minimum(starts[1:].sum(axis=2), drops).sum())
        windows += 1
        if progress is not None:
            progress(last - first)
    return HindsightResult(
        cost_usd=total,
        held=np.concatenate(held_parts),
        serving=np.concatenate(serving_parts),
        started=started,
        migrations=migrations,
        windows=windows,
        exact=integer,
    )


def _replica_minutes(required: IntArray, cold: int) -> float:
    """Fewest replica-minutes held that keep `required[t]` replicas Ready in every minute, with cold starts.

    Replicas are interchangeable and each start costs `cold` held minutes before the replica serves, so
    the optimum decomposes into levels: the k-th replica is needed in the minutes where required >= k; a
    gap of L minutes before a needed stretch (including the start of the replay, where replicas may begin
    Ready) costs min(L, cold): hold on through it, or stop and start again in time.
    """
    total = 0.0
    for level in range(1, int(required.max(initial=0)) + 1):
        needed = required >= level
        total += float(needed.sum())
        padded = np.concatenate([[True], needed, [False]])
        edges = np.diff(padded.astype(np.int8))
        starts = np.flatnonzero(edges == 1)  # first minute of each needed stretch
        ends = np.flatnonzero(edges == -1)  # one past the last minute of each stretch (shifted by the pad)
        # The padding makes a virtual stretch end at minute 0; each real stretch start follows a gap.
        gaps = starts - ends[: len(starts)] if len(starts) else np.zeros(0, dtype=np.int64)
        total += float(np.minimum(np.maximum(gaps, 0), cold).sum())
    return total


def _energy_costs(span: _Span) -> FloatArray:
    """Each column's price in a block: a Ready replica in one market for one minute."""
    rates = span.rates
    watts_to_usd = rates.serving_watts_to_usd[span.first : span.last]
    power = span.serving_power[span.first : span.last]
    idle = rates.idle_watts
    # A Ready replica adds (P - idle) on top of its held GPUs' idle draw, which an owned fleet pays anyway.
    ready_cost = ((power - idle[None, :])[:, :, None] * watts_to_usd[:, None, :]).reshape(-1)
    if rates.owned:
        return ready_cost
    return ready_cost + (idle[None, :, None] * watts_to_usd[:, None, :]).reshape(-1)


def _energy_rows(span: _Span) -> _Rows:
    """A block's constraints over Ready replicas: exact coverage, maxReplicas and each market's inventory,
    minute by minute."""
    return _energy_row_blocks(span)[0]


def _energy_row_blocks(span: _Span) -> tuple[_Rows, IntArray, IntArray, IntArray]:
    """`_energy_rows` and the ids of its coverage and maxReplicas rows (minutes x deployments) and inventory
    rows (minutes x markets), for the SLO allowance's extra columns."""
    minutes, deployments, markets = span.shape
    gpus, inventory, max_replicas = span.gpus, span.inventory, span.max_replicas
    cells = minutes * deployments * markets
    cell = np.arange(cells).reshape(minutes, deployments, markets)
    count = minutes * deployments
    covered = span.covered
    rows = _Rows()
    # Exact coverage: Ready replicas are charged the power of a replica sharing the minute's load among
    # `required`; one more would share it too and draw less each, so at a negative price the LP must not buy
    # extra Ready replicas for credit ("phantom" replicas).
    coverage = rows.block((minutes, deployments), covered, covered)
    held = rows.block(
        (minutes, deployments),
        np.full(count, -np.inf),
        np.broadcast_to(max_replicas[None, :], (minutes, deployments)).reshape(-1),
    )
    in_market = rows.block(
        (minutes, markets),
        np.full(minutes * markets, -np.inf),
        np.broadcast_to(inventory[None, :], (minutes, markets)).reshape(-1),
    )
    rows.add(np.repeat(coverage[:, :, None], markets, axis=2), cell, 1.0)
    rows.add(np.repeat(held[:, :, None], markets, axis=2), cell, 1.0)
    weights = np.broadcast_to(gpus[None, :, None], (minutes, deployments, markets))
    rows.add(np.repeat(in_market[:, None, :], deployments, axis=1), cell, weights)
    return rows, coverage, held, in_market


def _energy_block(span: _Span) -> tuple[float, FloatArray]:
    """Least electricity cost of the span's minutes, each minute on its own (cold starts relaxed)."""
    shape = span.shape
    cells = int(np.prod(shape))
    upper = np.broadcast_to(span.replica_limit[None], shape).reshape(-1)
    # Only Ready replicas have columns: held-but-not-Ready replicas are cold starts, which this bound relaxes
    # (to none, so that a negative price cannot buy idle replicas for credit).
    result = milp(
        c=_energy_costs(span),
        integrality=np.zeros(cells),
        bounds=Bounds(np.zeros(cells), upper),
        constraints=[_energy_rows(span).constraint(cells)],
        options={"presolve": True},
    )
    if result.x is None or result.status != 0:
        raise HindsightError(
            f"hindsight energy, minutes {span.first}..{span.last}: HiGHS found no optimum ({result.message})"
        )
    ready = result.x.reshape(shape)
    return float(result.fun), ready


def _allowance_block(span: _Span, allowed: IntArray) -> tuple[float, FloatArray]:
    """`_energy_block` at the SLO's own count (`span.required`), except that deployment d may run j fewer
    Ready replicas in minute t, for j up to `span.required - allowed` (the SLO allowance).

    Each short level j of each allowed (t, d) gets its own Ready columns, priced at the power a replica draws
    when `required - j` share the load (exactly what `engine.account` charges a schedule with that many Ready),
    and a choice z in [0, 1]: the coverage row becomes sum y + required * sum_j z_j = required and level j's
    own row sum y_j = (required - j) * z_j, its replicas counted in maxReplicas and inventory. Every
    schedule's minute picks one level per deployment (integer z), so this LP is at most its cost: a lower
    bound. With no allowance it is `_energy_block` exactly."""
    minutes, deployments, markets = span.shape
    cells = minutes * deployments * markets
    rows, coverage, held, in_market = _energy_row_blocks(span)
    required = span.required[span.first : span.last]
    gap = required - allowed[span.first : span.last]
    costs = [_energy_costs(span)]
    lower, upper = [np.zeros(cells)], [np.broadcast_to(span.replica_limit[None], span.shape).reshape(-1)]
    columns = cells
    for short in range(1, int(gap.max(initial=0)) + 1):
        times, deps = np.nonzero(gap >= short)
        count = len(times)
        level = required[times, deps] - short
        level_total = np.zeros_like(span.required)
        level_total[span.first + times, deps] = level
        level_power = span.replay.serving_power(level_total)
        level_costs = _energy_costs(_Span(span.replay, span.rates, level_power, span.required, span.first, span.last))
        y = columns + np.arange(count * markets).reshape(count, markets)
        z = columns + count * markets + np.arange(count)
        costs += [level_costs.reshape(span.shape)[times, deps].reshape(-1), np.zeros(count)]
        lower += [np.zeros(count * markets), np.zeros(count)]
        upper += [span.replica_limit[deps].reshape(-1), np.ones(count)]
        columns += count * (markets + 1)
        rows.add(coverage[times, deps], z, required[times, deps].astype(np.float64))
        rows.add(np.repeat(held[times, deps][:, None], markets, axis=1), y, 1.0)
        gpus = np.broadcast_to(span.gpus[deps][:, None], (count, markets))
        rows.add(in_market[times], y, gpus)
        level_ids = rows.block((count,), np.zeros(count), np.zeros(count))
        rows.add(np.repeat(level_ids[:, None], markets, axis=1), y, 1.0)
        rows.add(level_ids, z, -level.astype(np.float64))
    result = milp(
        c=np.concatenate(costs),
        integrality=np.zeros(columns),
        bounds=Bounds(np.concatenate(lower), np.concatenate(upper)),
        constraints=[rows.constraint(columns)],
        options={"presolve": True},
    )
    if result.x is None or result.status != 0:
        raise HindsightError(
            f"hindsight energy at the SLO allowance, minutes {span.first}..{span.last}: HiGHS found no optimum "
            f"({result.message})"
        )
    ready = result.x[:cells].reshape(span.shape).copy()
    offset = cells
    for short in range(1, int(gap.max(initial=0)) + 1):
        times, deps = np.nonzero(gap >= short)
        count = len(times)
        ready[times, deps] += result.x[offset : offset + count * markets].reshape(count, markets)
        offset += count * (markets + 1)
    return float(result.fun), ready


def solve_hindsight(
    replay: Replay,
    rates: CostRates,
    *,
    required: IntArray | None = None,
    block_minutes: int = 360,
    progress: Callable[[int], None] | None = None,
    relaxed: bool = False,
) -> HindsightResult:
    """The fast bound: GPU-hours and electricity minimised separately, each exactly, and added.

    `relaxed`: `required` only allows fewer Ready replicas than the SLO needs (the SLO allowance), it does not
    ask for fewer: each deployment-minute may run the SLO's count or any count down to `required`, each priced
    at the power a replica draws at that count's share of the load, chosen per deployment in one LP per block
    (`_allowance_block`). Found in review: a minute one replica short was priced at the most a replica draws
    (`_priced_power`, for negative prices), so the owned allowance bound cost more than the bound it relaxes;
    then each minute was the cheaper of every allowed deployment short at that most draw or none short, which
    a schedule short in the allowed minutes beat (1.0900 vs 1.0903 USD owned, half a day, 4 deployments).

    The cost is GPU-hours (rented: held replica-minutes x GPUs x hourly price) plus electricity. The least
    sum is at least the least GPU-hours plus the least electricity, so their sum is still a lower bound on
    every policy. GPU-hours: per deployment, exactly (`_replica_minutes`, cold starts included) at the
    cheapest market's GPU price, shared inventory relaxed. Electricity: per minute, the LP over where the
    Ready replicas run (shared inventory and maxReplicas kept), with cold starts relaxed: for an owned fleet
    a starting replica adds nothing above the idle fleet, so that relaxation costs almost nothing there.
    """
    required, serving_power = _priced_power(replay, required)
    gpu_total = 0.0
    cold = replay.settings.cold_start_minutes
    gpu_minutes = sum(
        _replica_minutes(required[:, index], cold) * deployment.gpus
        for index, deployment in enumerate(replay.deployments)
    )
    if not rates.owned:
        gpu_hour = replay.gpu_usd_per_hour(Scenario.RENTED)
        gpu_total = gpu_minutes * float(gpu_hour.min()) / 60.0
    energy_total = 0.0
    parts = []
    needed, needed_power = _priced_power(replay, None)
    for first in range(0, replay.minutes, block_minutes):
        last = min(replay.minutes, first + block_minutes)
        if relaxed:
            block, ready = _allowance_block(_Span(replay, rates, needed_power, needed, first, last), required)
        else:
            block, ready = _energy_block(_Span(replay, rates, serving_power, required, first, last))
        energy_total += block
        parts.append(ready)
        if progress is not None:
            progress(last - first)
    serving = np.concatenate(parts)
    moves = np.minimum(
        np.maximum(np.diff(serving, axis=0), 0.0).sum(axis=2), np.maximum(-np.diff(serving, axis=0), 0.0).sum(axis=2)
    )
    return HindsightResult(
        cost_usd=gpu_total + energy_total,
        held=serving,
        serving=serving,
        started=float(np.maximum(np.diff(serving, axis=0), 0.0).sum()),
        migrations=float(moves.sum()),
        windows=len(parts),
        exact=False,
        gpu_hours=gpu_minutes / 60.0,
    )
