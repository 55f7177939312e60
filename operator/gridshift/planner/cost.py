"""The cost formulas, defined once: energy cost, a replica's cost per hour, $/Mtok and J/token.

Every figure gridshift reports or optimises comes from here (the planner's options and plan figures,
the service's status and metrics, the chart's recording rules through gridshift_dev.chart), so that
"cost" means one thing everywhere:

    energy USD/h        = GPU watts x PUE x price (USD/kWh) / 1000     (PUE included: the facility's bill)
    replica USD/h       = GPUs x GPU-hour cost + energy USD/h
    USD per Mtok        = USD/h / (output tokens/s x 3600 / 1e6)
                        = USD / (output tokens / 1e6)                  (over a window: the simulator's totals)
    J per output token  = GPU watts / output tokens/s                  (PUE excluded: the GPUs' own energy)
                        = GPU watts x decode step (ms) / 1000 / batch  (one decode step: one token per sequence)

Prices are USD/kWh without PUE (as the price feeds publish them and the snapshot holds them).
"""

from __future__ import annotations

import math

WATT_HOURS_PER_KWH = 1000.0
SECONDS_PER_HOUR = 3600.0
TOKENS_PER_MILLION = 1e6
MILLISECONDS_PER_SECOND = 1000.0


def usd_per_kwh_with_pue(pue: float, usd_per_kwh: float) -> float:
    """What a kWh drawn by the GPUs costs the site: the grid price with the facility's PUE included (the
    `...WithPue...` status field and metric; the plain price is the feed's)."""
    return pue * usd_per_kwh


def usd_per_watt_hour(pue: float, usd_per_kwh: float) -> float:
    """What one watt of GPU power costs per hour at a site: the price with the facility's PUE included."""
    return usd_per_kwh_with_pue(pue, usd_per_kwh) / WATT_HOURS_PER_KWH


def energy_usd_per_hour(watts: float, pue: float, usd_per_kwh: float) -> float:
    """Electricity cost of `watts` of GPU power for an hour, PUE included."""
    return watts * usd_per_watt_hour(pue, usd_per_kwh)


def replica_usd_per_hour(gpus: int, gpu_hour_usd: float, watts: float, pue: float, usd_per_kwh: float) -> float:
    """A replica's cost per hour: its GPU-hours and its energy (PUE included)."""
    return gpus * gpu_hour_usd + watts * usd_per_watt_hour(pue, usd_per_kwh)


def _per(amount: float, denominator: float | None) -> float | None:
    """`amount / denominator`, None where that is no finite figure (no tokens, or so few that the
    division overflows or the denominator rounds to 0: found in review, 5e-324 tokens/s x 3600 / 1e6
    is 0, and the ZeroDivisionError ended the planning cycle for every deployment)."""
    if not denominator or not denominator > 0:
        return None
    value = amount / denominator
    return value if math.isfinite(value) else None


def usd_per_million_tokens(usd_per_hour: float, output_tokens_per_second: float | None) -> float | None:
    """Cost per million output tokens; None without tokens."""
    if not output_tokens_per_second:
        return None
    return _per(usd_per_hour, output_tokens_per_second * SECONDS_PER_HOUR / TOKENS_PER_MILLION)


def usd_per_million_tokens_from_energy(
    gpu_usd_per_hour: float, output_tokens_per_second: float | None, joules_per_token: float, usd_per_watt_hour: float
) -> float | None:
    """Cost per million output tokens from a measured token rate and GPU energy per token: the GPU-hours over
    the tokens plus the energy each token took at the placement's USD per GPU watt-hour (PUE x price / 1000),
    as the chart's recording rules price DCGM's energy; None without tokens."""
    gpu = usd_per_million_tokens(gpu_usd_per_hour, output_tokens_per_second)
    if gpu is None:
        return None
    return gpu + joules_per_token * TOKENS_PER_MILLION / SECONDS_PER_HOUR * usd_per_watt_hour


def per_million_tokens(amount: float, output_tokens: float) -> float | None:
    """An amount over a window (USD, gCO2) per million output tokens served in it; None without tokens."""
    if output_tokens <= 0:
        return None
    return _per(amount, output_tokens / TOKENS_PER_MILLION)


def joules_per_token(gpu_watts: float, output_tokens_per_second: float | None) -> float | None:
    """GPU energy per output token (PUE excluded); None without tokens."""
    return _per(gpu_watts, output_tokens_per_second)


def joules_per_token_of_step(gpu_watts: float, step_time_ms: float, batch: float) -> float:
    """GPU energy per output token of one decode step, J: each of `batch` sequences emits one token
    in `step_time_ms` at `gpu_watts` (a profile point, or a performance model at that batch)."""
    return gpu_watts * step_time_ms / MILLISECONDS_PER_SECOND / batch


# --- carbon ---------------------------------------------------------------------------------------
#
#     gCO2/h              = GPU watts x PUE x intensity (gCO2/kWh) / 1000    (PUE included: the facility's draw)
#     carbon USD/h        = gCO2/h / 1e6 x carbon price (USD/t)
#     gCO2 per Mtok       = gCO2/h / (output tokens/s x 3600 / 1e6)
#
# A carbon price p USD/t adds intensity x p / 1e6 USD to each kWh: 300 g/kWh at 100 USD/t is
# 0.03 USD/kWh (30 USD/MWh), the size of a typical 2024 wholesale price.

GRAMS_PER_TONNE = 1e6


def grams_co2_per_hour(watts: float, pue: float, g_per_kwh: float) -> float:
    """Emissions of `watts` of GPU power for an hour at a site, PUE included."""
    return watts * pue * g_per_kwh / WATT_HOURS_PER_KWH


def carbon_usd_per_hour(grams_per_hour: float, usd_per_tonne: float) -> float:
    """The internal cost of emitting `grams_per_hour` at a carbon price in USD per tonne."""
    return grams_per_hour / GRAMS_PER_TONNE * usd_per_tonne


def grams_per_million_tokens_from_energy(joules_per_token: float, grams_per_watt_hour: float) -> float:
    """Emissions per million output tokens from GPU energy per token and a site's grams per GPU watt-hour
    (PUE x intensity / 1000): how a measured J/token becomes gCO2/Mtok."""
    return joules_per_token * TOKENS_PER_MILLION / SECONDS_PER_HOUR * grams_per_watt_hour


def grams_per_million_tokens(grams_per_hour: float, output_tokens_per_second: float | None) -> float | None:
    """Emissions per million output tokens; None without tokens."""
    if not output_tokens_per_second:
        return None
    return _per(grams_per_hour, output_tokens_per_second * SECONDS_PER_HOUR / TOKENS_PER_MILLION)
