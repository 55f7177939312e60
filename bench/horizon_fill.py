"""How to count a payback window that reaches past the price horizon: real 2024 day-ahead prices.

planner.prices carries the last known price over the part of a window past the horizon's end (a
persistence forecast). A review showed its worst case: one dear last hour counts for every unknown hour
of a 24-hour window. This bench scores that rule against the alternatives on every hour of 2024 of
every market in ../shared/data/prices-2024 (the wide UTC file), where the window passes the horizon:

  persistence  the last known hour carried over the rest (what the planner does)
  known_mean   the mean of the window's known part carried over the rest
  last3_mean   the mean of the last three known hours
  seasonal     each unknown hour at the price 24 hours before it (needs a day of look-back in the
               feed: ENTSO-E feeds ask for one hour today, signals.settings.lookback_hours)

The horizon is the simulator's (simulation.settings.price_publication_hour_utc: tomorrow's prices are
known from 12:00 UTC, before that to midnight UTC). Scores: the mean absolute error of the window's mean
price over the market's mean |price|, per half year (the rule has no parameter, so no half is
in-sample; both are shown to see whether the ranking holds), and, for pairs of EUR markets (one
currency, no fx), how often each rule names the cheaper market where the true window means differ by
5 EUR/MWh or more. Ratios are against persistence in the same run.

Usage (repo root): .venv/bin/python bench/horizon_fill.py [--window-hours 24]
Data: HewlettPackard/green-dcc, prices from the market operators (see ../shared/data/README.md).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
PUBLICATION_HOUR_UTC = 12
"""simulation.settings.SimulationSettings.price_publication_hour_utc's default."""


def load(root: Path) -> tuple[list[str], npt.NDArray[np.int64], FloatArray]:
    """Market names, UTC hour of day of each row, prices (rows x markets; gaps filled forward)."""
    path = root / "prices-2024" / "prices_2024_utc_hourly_wide.csv"
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    names = [name.removesuffix("_per_MWh") for name in rows[0][1:]]
    hours = np.array([int(row[0][11:13]) for row in rows[1:]], dtype=np.int64)
    prices = np.array([[float(cell) if cell else np.nan for cell in row[1:]] for row in rows[1:]])
    for column in prices.T:
        for i in range(1, len(column)):
            if np.isnan(column[i]):
                column[i] = column[i - 1]
        column[np.isnan(column)] = np.nanmean(column)  # a market's leading gap (PJM's first day)
    return names, hours, prices


def known_hours(hours: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Hours of prices known from each row's hour on (to midnight UTC, or the next one after publication)."""
    known: npt.NDArray[np.int64] = np.where(hours >= PUBLICATION_HOUR_UTC, 48 - hours, 24 - hours)
    return known


def _persistence(p: FloatArray, i: int, k: int, rest: int) -> float:
    return float(p[i + k - 1] * rest)


def _known_mean(p: FloatArray, i: int, k: int, rest: int) -> float:
    return float(p[i : i + k].mean() * rest)


def _last3(p: FloatArray, i: int, k: int, rest: int) -> float:
    return float(p[max(i, i + k - 3) : i + k].mean() * rest)


def _seasonal(p: FloatArray, i: int, k: int, rest: int) -> float:
    return float(p[i + k - 24 : i + k - 24 + rest].sum())


RULES: dict[str, Callable[[FloatArray, int, int, int], float]] = {
    # (a market's prices, the row now, known hours within the window, unknown hours) -> the unknown
    # hours' prices summed
    "persistence": _persistence,
    "known_mean": _known_mean,
    "last3_mean": _last3,
    "seasonal": _seasonal,
}


def estimates(
    p: FloatArray, rows: npt.NDArray[np.int64], known: npt.NDArray[np.int64], window: int
) -> dict[str, FloatArray]:
    """Each rule's estimate of the window's mean price at each row."""
    out: dict[str, FloatArray] = {}
    for name, rule in RULES.items():
        values = []
        for i in rows:
            k = int(min(known[i], window))
            values.append((p[i : i + k].sum() + rule(p, int(i), k, window - k)) / window)
        out[name] = np.asarray(values)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window-hours", type=int, default=24, help="payback window (hours, 13-48)")
    args = parser.parse_args()
    window = args.window_hours
    if not 13 <= window <= 48:
        parser.error("--window-hours: between 13 and 48 (a shorter window never passes the horizon here)")
    root = Path(os.environ.get("GRIDSHIFT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    names, hours, prices = load(root)
    known = known_hours(hours)
    n = len(hours)
    halves = {"H1": np.arange(24, n // 2 - window), "H2": np.arange(n // 2, n - window)}
    print(f"{window} h window past the day-ahead horizon, 2024: mean |error| of the window mean / mean |price|")
    print(f"{'market':18s}" + "".join(f"{r + ' ' + h:>17s}" for r in RULES for h in halves))
    errors: dict[str, list[float]] = {rule: [] for rule in RULES}
    cache: dict[tuple[int, str], tuple[FloatArray, dict[str, FloatArray]]] = {}
    for m, name in enumerate(names):
        p = prices[:, m]
        cells = []
        for half, rows in halves.items():
            rows = rows[known[rows] < window]
            truth = np.array([p[i : i + window].mean() for i in rows])
            scale = float(np.abs(p[rows]).mean())
            guess = estimates(p, rows, known, window)
            cache[(m, half)] = (truth, guess)
            for rule in RULES:
                errors[rule].append(float(np.abs(guess[rule] - truth).mean() / scale))
        for rule in RULES:
            cells += [f"{errors[rule][-2]:17.3f}", f"{errors[rule][-1]:17.3f}"]
        print(f"{name:18s}" + "".join(cells))
    base = float(np.median(errors["persistence"]))
    for rule in RULES:
        wins = sum(e < b for e, b in zip(errors[rule], errors["persistence"], strict=True))
        median = float(np.median(errors[rule]))
        ratio = f"{median / base:.2f} x persistence"
        print(f"{rule:12s} median error {median:.3f} ({ratio}); better in {wins} of {len(errors[rule])} market-halves")
    eur = [m for m, name in enumerate(names) if name.endswith("_EUR")]
    for rule in RULES:
        right = total = 0
        for half in halves:
            for a, b in itertools.combinations(eur, 2):
                (ta, ga), (tb, gb) = cache[(a, half)], cache[(b, half)]
                clear = np.abs(ta - tb) >= 5.0
                total += int(clear.sum())
                right += int(((ga[rule] < gb[rule]) == (ta < tb))[clear].sum())
        print(f"{rule:12s} names the cheaper of two EUR markets in {right / total:.4f} of {total} window-starts")


if __name__ == "__main__":
    main()
