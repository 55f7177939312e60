"""Forecast-driven sizing: how many Ready replicas gridshift asks for, minute by minute, from the past alone.

The old rule sized at the last 5 minutes' mean rate x (1 + headroom), the headroom read off the replay's own
minutes (in-sample) and applied as a fixed multiplier at every load. This one (issue 14):

- **Load forecast with daily seasonality, learned online.** Multiplicative Holt-Winters without trend, one
  model per deployment: a level L (the deseasonalised rate) and a daily seasonal index S over bins of the day
  (linearly interpolated between bin centres), both exponentially smoothed from the observed per-minute rate.
  The forecast of minute t+k made after minute t-1 is L x S(t+k), L a fast (5-minute) level; S is learned
  against a slow (12-hour) level (`SeasonalForecaster`). Before a day has been seen, S stays near 1 and the
  forecast is the smoothed recent rate, as before. Weekly seasonality needs weeks of history that a
  one-week replay does not have (and the replay's load has no weekly shape), so it is left out.
  Written with numpy: the recursion is a dozen array operations per minute for every deployment at once;
  statsmodels' ExponentialSmoothing fits one series offline and is not installed (not in the guide's list).
- **A margin sized for the SLO target, growing like sqrt(rate).** Forecast errors at the actuation lag are
  tracked online as a dispersion phi = E[error^2 / forecast] (an over-dispersed Poisson count: its variance
  grows with the mean); the sized rate is F + z x sqrt(phi x F), so the relative margin shrinks as a
  deployment grows, unlike (1 + headroom) x F.
- **A floor for the minute's own p95, which does not pool.** The SLO is judged on each minute's p95, and a
  minute's p95 scatters about the hour's even when the rate is exactly as forecast: at the hour-p95 capacity
  a third of the minutes miss (`planner.capacity._minute_miss`). A deployment's minute is its replicas' minute
  (each replica takes 1/R of the requests), so this scatter is a matter of the load per replica and does not
  shrink as the deployment grows, while the forecast margin does: a large deployment sized by the margin
  alone runs its replicas near the hour-p95 capacity and misses minute after minute (issue 14's conv-04, at
  96.3% of minutes with z = 2.6 on the tuning week, the nine others at 99.0-100%). So the forecast itself
  (no margin) is also held under the per-minute capacity, the rate at which the capacity model gives a
  minute's p95 a `minute_miss` chance of missing: two causes, two margins, the larger counts. A minute's
  mix of short and long prompts moves too (conv-06, eight conversation copies: its minute's mean prompt
  spreads by about 3%, and it missed 1.4% of its minutes at any z), and every replica sees its minute's mix,
  so that chance is averaged over the mix measured for the deployment (`planner.capacity`,
  `CapacityInputs.prompt_mix_cv`).
- **One cold start ahead.** A replica started now serves `lag` minutes later, so minute t asks for the most
  any of minutes t..t+lag needs: a forecast rise is met when it arrives.
- **Scale-down every cycle, but not through short dips.** The count may fall every minute, to the largest it
  was over the last cold start: a replica stopped in a dip shorter than a cold start could not come back in
  time, and costs more to restart than to keep.

`ForecastSettings` holds the parameters; they were chosen on a week that is not scored
(docs/simulate.md, "Sizing"), and `sized_rates` is causal: minute t reads rates of minutes before t only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gridshift.arrays import FloatArray, IntArray

_MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class ForecastSettings:
    """Parameters of the forecast-driven sizing, each with its unit and why."""

    level_smoothing: float = 0.2
    """Weight of the newest minute in the level (per minute): about a 5-minute memory, the operator's rate()[5m]."""
    slow_level_smoothing: float = 1.0 / 720.0
    """Weight of the newest minute in the slow level the seasonal index is learned against: a 12-hour memory."""
    season_smoothing: float = 0.05
    """Weight of the newest minute in its bin's seasonal index (per minute): a 15-minute bin is visited 15 times a
    day, so yesterday counts about half (1 - 0.95^15 = 0.54)."""
    season_bin_minutes: int = 15
    """Width of a seasonal bin, minutes: 96 bins a day."""
    dispersion_smoothing: float = 0.01
    """Weight of the newest squared error in the dispersion (per minute): about a 100-minute memory."""
    initial_dispersion: float = 0.5
    """Dispersion before any error is seen, requests/s: cautious (a Poisson count per minute has 1/60)."""
    z: float = 1.25
    """Standard errors of forecast margin. Chosen with `minute_miss` on the week of 2024-02-05, which no published
    figure uses (`bench/simulate_margin.py --z 0.75,1.0,1.25,1.5,1.75 --minute-miss 0.05,0.075,0.1`, the
    request-level engine of issue 14): of the 15 pairs, the one whose sized Ready replicas met the SLO request
    by request in at least 99.25% of deployment-minutes there (the 99% target plus a quarter point for
    week-to-week spread, the rule used before) with the fewest replica-minutes: 99.30%, 673,571 (6 December 2026,
    with the floor averaged over each deployment's prompt mix; the rule had chosen 1.5 before the mix and the
    calendar alignment, 99.33% and 678,142 then). The margin alone (no floor) needed z = 2.6 for that share of
    minutes, 706,012 replica-minutes (docs/simulate.md)."""
    minute_miss: float | None = 0.075
    """The per-minute floor (module docstring): the forecast stays under the rate per replica at which the capacity
    model gives a minute's own p95 TTFT this chance of missing its objective, averaged over the deployment's
    minute-to-minute prompt mix (`requests.prompt_mix_cv`, measured on the calibration hour). Chosen with z
    (above). Over the
    replay's minutes the model is conservative (conv-04, tuning week: at 0.80-0.95 of the hour-p95 capacity it
    predicts 0.4-15% of minutes missing where the replay shows 0.4-3.8%), hence a value above the 1% the
    SLO allows; z's margin covers the forecast's errors on top. None: no floor (the margin alone, the rule
    before the floor)."""

    def __post_init__(self) -> None:
        for name in ("level_smoothing", "slow_level_smoothing", "season_smoothing", "dispersion_smoothing"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be within (0, 1], got {value}")
        if self.season_bin_minutes < 1 or _MINUTES_PER_DAY % self.season_bin_minutes:
            raise ValueError(f"season_bin_minutes must divide 1440, got {self.season_bin_minutes}")
        if self.initial_dispersion < 0 or self.z < 0:
            raise ValueError("initial_dispersion and z must be >= 0")
        if self.minute_miss is not None and not 0.0 < self.minute_miss < 1.0:
            raise ValueError(f"minute_miss must be within (0, 1), got {self.minute_miss}")


class SeasonalForecaster:
    """Holt-Winters (level x daily seasonal index) for several series at once, updated minute by minute.

    Two levels: the forecast scales a fast one (about 5 minutes, so a change in load shows at once) by the
    seasonal index; the index is learned against a slow one (about a day). Learned against the fast level,
    as textbook Holt-Winters does with one level, the index would see almost none of the day's shape: a
    5-minute level follows a rise within minutes and leaves the index nothing to learn.
    """

    def __init__(self, first: FloatArray, first_minute_of_day: int, settings: ForecastSettings) -> None:
        self.settings = settings
        self.bins = _MINUTES_PER_DAY // settings.season_bin_minutes
        self.level = np.asarray(first, dtype=np.float64).copy()
        self.slow_level = self.level.copy()
        self.season = np.ones((self.bins, len(self.level)))
        self.first_minute_of_day = first_minute_of_day

    def _weights(self, minute: int) -> tuple[int, int, float]:
        """Bins either side of minute `minute` (from the start) and the weight of the upper one."""
        of_day = (self.first_minute_of_day + minute) % _MINUTES_PER_DAY
        position = of_day / self.settings.season_bin_minutes - 0.5
        lower = math.floor(position)
        return lower % self.bins, (lower + 1) % self.bins, position - lower

    def index(self, minute: int) -> FloatArray:
        lower, upper, weight = self._weights(minute)
        value: FloatArray = (1.0 - weight) * self.season[lower] + weight * self.season[upper]
        return value

    def forecast(self, minute: int) -> FloatArray:
        value: FloatArray = self.level * self.index(minute)
        return value

    def observe(self, minute: int, rate: FloatArray) -> None:
        """Learn from the rate observed in minute `minute`."""
        settings = self.settings
        deseasonalised = rate / np.maximum(self.index(minute), 1e-6)
        alpha, slow = settings.level_smoothing, settings.slow_level_smoothing
        self.level = alpha * deseasonalised + (1.0 - alpha) * self.level
        self.slow_level = slow * deseasonalised + (1.0 - slow) * self.slow_level
        if not (self.slow_level > 0).all():
            return
        lower, upper, weight = self._weights(minute)
        ratio = rate / self.slow_level
        gamma = settings.season_smoothing
        self.season[lower] += gamma * (1.0 - weight) * (ratio - self.season[lower])
        self.season[upper] += gamma * weight * (ratio - self.season[upper])
        # Multiplicative indices average 1, so the levels stay deseasonalised rates.
        self.season /= self.season.mean(axis=0, keepdims=True)


@dataclass(frozen=True)
class SizedRates:
    """The request rates gridshift sizes each minute for, per deployment: shape (minutes, deployments) each."""

    with_margin: FloatArray
    """The most the forecast plus its margin needs over minutes t..t+lag (held against the hour-p95 capacity)."""
    forecast: FloatArray
    """The most the forecast alone needs over the same minutes (held against the per-minute capacity)."""


def sized_rates(rates: FloatArray, first_minute_of_day: int, lag: int, settings: ForecastSettings) -> SizedRates:
    """The request rates to size each minute for, per deployment.

    Minute t sees the rates of minutes before t (minute 0 sees its own, as a fleet starts with what it
    serves), and asks for the most the forecast (plus margin) needs over minutes t..t+lag.
    """
    minutes, count = rates.shape
    model = SeasonalForecaster(rates[0], first_minute_of_day, settings)
    dispersion = np.full(count, settings.initial_dispersion)
    # made[t % (lag + 1)]: the forecast of minute t made lag + 1 minutes before it (the actuation lag's error).
    made = np.full((lag + 1, count), np.nan)
    with_margin = np.empty((minutes, count))
    forecast = np.empty((minutes, count))
    beta = settings.dispersion_smoothing
    for minute in range(minutes):
        if minute > 0:
            seen = rates[minute - 1]
            model.observe(minute - 1, seen)
            earlier = made[(minute - 1) % (lag + 1)]
            if not np.isnan(earlier).any():
                error = (seen - earlier) ** 2 / np.maximum(earlier, 1e-3)
                dispersion = beta * error + (1.0 - beta) * dispersion
        ahead = np.stack([model.forecast(minute + k) for k in range(lag + 1)])
        made[(minute + lag) % (lag + 1)] = ahead[-1]
        margin = settings.z * np.sqrt(dispersion[None, :] * np.maximum(ahead, 0.0))
        with_margin[minute] = np.max(ahead + margin, axis=0)
        forecast[minute] = np.max(ahead, axis=0)
    return SizedRates(with_margin=with_margin, forecast=forecast)


def required_replicas(
    sized: SizedRates,
    capacity: FloatArray,
    minute_capacity: FloatArray | None,
    hold: int,
    low: IntArray,
    high: IntArray,
) -> IntArray:
    """Ready replicas for each minute, kept through dips of `hold` minutes: the forecast plus margin over the
    SLO capacity and, with `minute_capacity`, the forecast over the per-minute capacity, whichever is more."""
    wanted = np.ceil(sized.with_margin / capacity[None, :] - 1e-9)
    if minute_capacity is not None:
        wanted = np.maximum(wanted, np.ceil(sized.forecast / minute_capacity[None, :] - 1e-9))
    held = wanted.copy()
    for back in range(1, hold + 1):
        held[back:] = np.maximum(held[back:], wanted[:-back])
    required: IntArray = np.clip(held, low[None, :], high[None, :]).astype(np.int64)
    return required
