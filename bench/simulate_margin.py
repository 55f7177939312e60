"""Choose gridshift's sizing margins on a tuning week: request-level SLO and cost of the sized replicas.

For each pair of a grid (the forecast margin z x the per-minute floor's minute_miss, `ForecastSettings`),
gridshift's forecast-driven sizing (`gridshift.simulation.forecast`) of every minute of the replay, judged
request by request (`gridshift.simulation.engine.request_levels`, all pairs at once) and costed as the
same-information bound (that sizing placed and timed perfectly) in both scenarios. Fast: no planner, no policy
run. The schedules gridshift actually runs lag these counts by the actuation and make-before-break, so the
chosen pair is then checked with `gridshift simulate` on the same week and, out of sample, on others.

    .venv/bin/python bench/simulate_margin.py [--json]   # the tuning week and grid (defaults)
    .venv/bin/python bench/simulate_margin.py --start 2024-03-04 --z 1.5 --minute-miss 0.075,off --schedules
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import numpy as np

from gridshift.cli.simulate import register
from gridshift.cli.streams import stdout_to_stderr
from gridshift.profiles_catalog import default_performance_models
from gridshift.simulation.data import load_prices, shipped_trace
from gridshift.simulation.engine import Schedule, account, cost_rates, request_levels, simulate
from gridshift.simulation.forecast import required_replicas, sized_rates
from gridshift.simulation.hindsight import solve_hindsight
from gridshift.simulation.policies import GridshiftPolicy, StaticPolicy
from gridshift.simulation.runner import prepare_replay
from gridshift.simulation.settings import Scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2024-02-05", help="tuning week's first day (default: 2024-02-05)")
    parser.add_argument("--days", default="7")
    parser.add_argument(
        "--z",
        default="0.75,1.0,1.25,1.5,1.75",
        help="forecast margins to try, comma-separated (default: the grid ForecastSettings.z was chosen on)",
    )
    parser.add_argument(
        "--schedules",
        action="store_true",
        help="also run gridshift itself per pair in both scenarios (with static and the hindsight bound): its "
        "request-level SLO, savings_captured and gridshift/hindsight, as `gridshift simulate` reports them",
    )
    parser.add_argument(
        "--minute-miss",
        default="0.05,0.075,0.1",
        help="per-minute floors to try, comma-separated probabilities or off (the margin alone); default: the "
        "grid ForecastSettings.minute_miss was chosen on",
    )
    parser.add_argument("--gpus-per-market", default=None, help="gridshift simulate --gpus-per-market")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    # HiGHS prints its banner on stdout when the first solver is made: to stderr, so --json stays JSON.
    with stdout_to_stderr():
        rows = _rows(args)
    if args.json:
        print(json.dumps({"start": args.start, "rows": rows}, indent=1))
        return
    for row in rows:
        print(row)


def _rows(args: argparse.Namespace) -> list[dict[str, object]]:
    from gridshift.cli.simulate import build_settings, price_csv_parser

    cli = argparse.ArgumentParser()
    register(cli.add_subparsers())
    extra_flags = [] if args.gpus_per_market is None else ["--gpus-per-market", args.gpus_per_market]
    cli_args = cli.parse_args(["simulate", "--start", args.start, "--days", args.days, *extra_flags])
    settings = build_settings(cli_args)
    prices = load_prices(
        [], fx_to_usd=settings.fx_to_usd, markets=list(settings.markets), parser=price_csv_parser(), timezone=None
    )
    settings = replace(settings, markets=tuple(p.market for p in prices))
    traces = {"conv": shipped_trace("conv"), "code": shipped_trace("code")}
    floors = [None if m.strip().lower() == "off" else float(m) for m in args.minute_miss.split(",")]
    # One replay per floor: only Deployment.minute_capacity_rps differs between them.
    replays = {
        m: prepare_replay(
            replace(settings, forecast=replace(settings.forecast, minute_miss=m)),
            traces,
            prices,
            default_performance_models(),
        )
        for m in floors
    }
    replay = replays[floors[0]]

    rates = np.stack([d.rate_rps for d in replay.deployments], axis=1)
    lag = settings.cold_start_minutes + 1
    capacity = np.asarray([d.capacity_rps for d in replay.deployments])
    low = np.asarray([d.setup.min_replicas for d in replay.deployments], dtype=np.int64)
    high = np.asarray([d.setup.max_replicas for d in replay.deployments], dtype=np.int64)
    first_minute = replay.start.hour * 60 + replay.start.minute
    minute_capacity = {
        m: None if m is None else np.asarray([d.minute_capacity_rps for d in replays[m].deployments], dtype=float)
        for m in floors
    }
    grid = [(float(z), m) for m in floors for z in args.z.split(",")]
    required = []
    for z, m in grid:
        sized = sized_rates(rates, first_minute, lag, replace(settings.forecast, z=z))
        required.append(required_replicas(sized, capacity, minute_capacity[m], settings.cold_start_minutes, low, high))
    schedules: list[tuple[tuple[float, float | None], Scenario, Schedule, int]] = []
    static = None
    if args.schedules:
        static = simulate(replay, StaticPolicy(replay), judge=False)
        for z, m in grid:
            tuned = replace(
                replays[m], settings=replace(settings, forecast=replace(settings.forecast, z=z, minute_miss=m))
            )
            for scenario in (Scenario.OWNED, Scenario.RENTED):
                policy = GridshiftPolicy(tuned, scenario)
                schedules.append(((z, m), scenario, simulate(tuned, policy, judge=False), policy.plans))
    extra = [] if static is None else [static.ready.sum(axis=2).astype(np.int64)]
    extra += [s.ready.sum(axis=2).astype(np.int64) for _, _, s, _ in schedules]
    verdicts = request_levels(replay, required + extra)
    verdicts, judged = verdicts[: len(grid)], verdicts[len(grid) :]
    rows = []
    for (z, m), counts, verdict in zip(grid, required, verdicts, strict=True):
        row: dict[str, object] = {
            "z": z,
            "minute_miss": m,
            "slo_ok_minutes_pct": round(100.0 * float(verdict.mean()), 3),
            "slo_ok_by_deployment_pct": [round(100.0 * float(v), 2) for v in verdict.mean(axis=0)],
            "replica_minutes": int(counts.sum()),
        }
        for scenario in (Scenario.OWNED, Scenario.RENTED):
            bound = solve_hindsight(replay, cost_rates(replay, scenario), required=counts)
            row[f"same_information_{scenario.value}_usd"] = round(bound.cost_usd, 2)
        rows.append(row)
    hindsight = {}
    for scenario in (Scenario.OWNED, Scenario.RENTED):
        hindsight[scenario] = solve_hindsight(replay, cost_rates(replay, scenario)).cost_usd
        rows.append({"hindsight": scenario.value, "cost_usd": round(hindsight[scenario], 2)})
    if static is not None:
        static_verdict = judged[0]
        static_cost = {
            scenario: account(replay, replace(static, latency_ok=static_verdict), scenario).cost_usd
            for scenario in (Scenario.OWNED, Scenario.RENTED)
        }
        for scenario, cost in static_cost.items():
            rows.append({"static": scenario.value, "cost_usd": round(cost, 2)})
        for ((z, m), scenario, schedule, plans), verdict in zip(schedules, judged[1:], strict=True):
            totals = account(replay, replace(schedule, latency_ok=verdict), scenario)
            available = static_cost[scenario] - hindsight[scenario]
            rows.append(
                {
                    "gridshift_z": z,
                    "minute_miss": m,
                    "scenario": scenario.value,
                    "cost_usd": round(totals.cost_usd, 2),
                    "slo_ok_minutes_pct": round(totals.slo_ok_pct, 3),
                    "slo_ok_minutes_fluid_pct": round(totals.slo_ok_fluid_pct, 3),
                    "slo_ok_by_deployment_pct": [round(100.0 * float(v), 2) for v in verdict.mean(axis=0)],
                    "savings_captured": round((static_cost[scenario] - totals.cost_usd) / available, 4),
                    "gridshift/hindsight": round(totals.cost_usd / hindsight[scenario], 4),
                    "planner_calls": plans,
                }
            )
    return rows


if __name__ == "__main__":
    main()
