"""Human output of a replay: a rich table per scenario, and the PNG plot (matplotlib, Agg backend)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from gridshift.simulation.runner import ReplayResult, ScenarioResult
from gridshift.simulation.settings import Scenario


def _money(value: float) -> str:
    return f"{value:,.2f}"


def scenario_table(result: ReplayResult, scenario: ScenarioResult) -> Table:
    replay = result.replay
    title = (
        f"{scenario.scenario.value}: {replay.settings.days:g} days from {replay.start:%Y-%m-%d}, "
        f"{len(replay.deployments)} deployments, markets {', '.join(m.name for m in replay.markets)}"
    )
    table = Table(title=title, title_justify="left")
    for column in ("policy", "cost USD", "USD/Mtok", "energy kWh", "SLO ok % of minutes", "migrations", "GPU-hours"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for name, policy in scenario.policies.items():
        table.add_row(
            name,
            _money(policy.cost_usd),
            "-" if policy.usd_per_mtok is None else f"{policy.usd_per_mtok:.4f}",
            f"{policy.energy_kwh:,.1f}",
            f"{policy.slo_ok_minutes_pct:.2f}",
            "-" if policy.migrations is None else f"{policy.migrations:.0f}",
            f"{policy.gpu_hours:,.1f}",
        )
    ratios = []
    for other in ("hindsight", "static", "reactive", "greedy"):
        ratio = scenario.ratio("gridshift", other)
        ratios.append(f"gridshift/{other} {'-' if ratio is None else f'{ratio:.3f}'}")
    caption = "; ".join(ratios)
    if scenario.idle_baseline_usd is not None:
        caption += (
            f". Costs and energy are above the idle fleet (all GPUs idling: {_money(scenario.idle_baseline_usd)} USD, "
            f"{scenario.idle_baseline_kwh or 0.0:,.1f} kWh, the same for every policy)."
        )
    table.caption = caption
    table.caption_justify = "left"
    return table


def print_tables(result: ReplayResult, console: Console) -> None:
    for scenario in result.scenarios.values():
        console.print(scenario_table(result, scenario))
        console.print()


POLICY_COLOURS = {
    "static": "tab:gray",
    "reactive": "tab:blue",
    "greedy": "tab:orange",
    "gridshift": "tab:green",
    "hindsight": "black",
}


def write_plot(result: ReplayResult, path: Path) -> None:
    """Price lanes per market, replicas per market over time per policy, and cumulative cost per scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    replay = result.replay
    hours = replay.hours
    times = [replay.start + timedelta(hours=h) for h in range(hours)]
    scenario = (
        result.scenarios.get(Scenario.RENTED)
        or result.scenarios.get(Scenario.OWNED)
        or next(iter(result.scenarios.values()))
    )
    policies = list(scenario.policies)
    rows = 1 + len(policies) + 1
    figure, axes = plt.subplots(
        rows,
        1,
        figsize=(13, 2.0 * rows + 1.5),
        sharex=True,
        gridspec_kw={"height_ratios": [1.6] + [1.0] * len(policies) + [1.6]},
    )
    markets = [m.name for m in replay.markets]
    colours = plt.get_cmap("tab10")
    prices_axis = axes[0]
    for index, market in enumerate(markets):
        prices_axis.step(
            times, result.prices_by_hour[:, index] * 1000.0, where="post", label=market, color=colours(index), lw=1.1
        )
    prices_axis.axhline(0.0, color="0.6", lw=0.6)
    prices_axis.set_ylabel("USD/MWh")
    prices_axis.set_title("Electricity price per market (hourly, converted to USD)", loc="left", fontsize=10)
    prices_axis.legend(ncol=len(markets), fontsize=8, loc="upper left")
    peak = max(float(np.nanmax(p.replicas_by_market.sum(axis=1))) for p in scenario.policies.values())
    for axis, name in zip(axes[1 : 1 + len(policies)], policies, strict=True):
        replicas = scenario.policies[name].replicas_by_market
        axis.stackplot(times, replicas.T, colors=[colours(i) for i in range(len(markets))], step="post", alpha=0.85)
        axis.set_ylim(0, peak * 1.05)
        axis.set_ylabel("replicas")
        axis.set_title(
            f"{name} ({scenario.scenario.value}): replicas held per market, hourly mean", loc="left", fontsize=10
        )
    cost_axis = axes[-1]
    for scenario_result in result.scenarios.values():
        style = "-" if scenario_result.scenario == Scenario.RENTED else "--"
        for name, policy in scenario_result.policies.items():
            cost_axis.plot(
                times,
                policy.cumulative_cost_usd,
                style,
                color=POLICY_COLOURS.get(name, "tab:purple"),
                lw=1.4,
                label=f"{name} ({scenario_result.scenario.value})",
            )
    cost_axis.set_yscale("symlog", linthresh=1.0)
    cost_axis.set_ylabel("USD (symlog)")
    cost_axis.set_title("Cumulative cost (solid: rented, dashed: owned above the idle fleet)", loc="left", fontsize=10)
    cost_axis.legend(ncol=5, fontsize=7, loc="upper left")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
