"""Human output of a replay: a rich table per scenario, and the PNG plot (matplotlib, Agg backend)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.table import Table

from gridshift.simulation.runner import ReplayResult, ScenarioResult
from gridshift.simulation.settings import Scenario

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from numpy.typing import NDArray

    FloatArray = NDArray[np.float64]


def _money(value: float) -> str:
    return f"{value:,.2f}"


def scenario_table(result: ReplayResult, scenario: ScenarioResult) -> Table:
    replay = result.replay
    title = (
        f"{scenario.scenario.value}: {replay.settings.days:g} days from {replay.start:%Y-%m-%d}, "
        f"{len(replay.deployments)} deployments, markets {', '.join(m.name for m in replay.markets)}"
    )
    table = Table(title=title, title_justify="left")
    columns = (
        "policy",
        "cost USD",
        "USD/Mtok",
        "energy kWh",
        "SLO ok % of minutes",
        "worst deployment, SLO ok %",
        "migrations",
        "GPU-hours",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "policy" else "right")
    for name, policy in scenario.policies.items():
        # The SLO is each deployment's own: the share over all of them can pass while one fails (issue 14).
        worst = policy.worst_deployment()
        table.add_row(
            name,
            _money(policy.cost_usd),
            "-" if policy.usd_per_mtok is None else f"{policy.usd_per_mtok:.4f}",
            f"{policy.energy_kwh:,.1f}",
            f"{policy.slo_ok_minutes_pct:.2f}",
            "-" if worst is None else f"{worst[0]} {worst[1]:.2f}",
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


POLICY_STYLES = {
    "static": {"color": "0.55", "linestyle": (0, (6, 3)), "lw": 1.4},
    "reactive": {"color": "0.35", "linestyle": (0, (1, 1.5)), "lw": 1.8},
    "greedy": {"color": "0.35", "linestyle": (0, (6, 2, 1, 2)), "lw": 1.4},
    "gridshift": {"color": "black", "linestyle": "solid", "lw": 2.4},
}
"""Policies are told apart by greys and line styles, so that colour always means a market."""
OTHER_POLICY_STYLE = {"color": "0.2", "linestyle": (0, (3, 1, 1, 1, 1, 1)), "lw": 1.4}
LEGEND_OUTSIDE = {"loc": "upper left", "bbox_to_anchor": (1.005, 1.0), "fontsize": 8, "frameon": False}
"""Legends right of their panel: never over the first hours of a line."""


def market_colours(count: int) -> list[Any]:
    """One colour per market (tab10, then tab20 beyond ten markets)."""
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab10" if count <= 10 else "tab20")
    return [cmap(index % cmap.N) for index in range(count)]


def _edges(values: FloatArray) -> FloatArray:
    """Hourly values with the last one repeated: a step plot over N+1 hour edges draws all N hours."""
    return np.concatenate([values, values[-1:]], axis=0)


def plot_figure(result: ReplayResult) -> Figure:
    """Price lanes per market; per policy, the replicas it holds per market; per scenario, how far each
    policy's cumulative cost is above the hindsight bound."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    replay = result.replay
    hours = replay.hours
    edges = [replay.start + timedelta(hours=h) for h in range(hours + 1)]
    shown = (
        result.scenarios.get(Scenario.RENTED)
        or result.scenarios.get(Scenario.OWNED)
        or next(iter(result.scenarios.values()))
    )
    policies = [name for name in shown.policies]
    cost_scenarios = list(result.scenarios.values())
    rows = 1 + len(policies) + len(cost_scenarios)
    figure, axes = plt.subplots(
        rows,
        1,
        figsize=(14, 1.9 * rows + 1.5),
        sharex=True,
        gridspec_kw={"height_ratios": [1.6] + [1.0] * len(policies) + [1.5] * len(cost_scenarios)},
        layout="constrained",
    )
    markets = [m.name for m in replay.markets]
    colours = market_colours(len(markets))
    prices_axis = axes[0]
    for index, market in enumerate(markets):
        prices_axis.step(
            edges,
            _edges(result.prices_by_hour[:, index] * 1000.0),
            where="post",
            label=market,
            color=colours[index],
            lw=1.1,
        )
    prices_axis.axhline(0.0, color="0.6", lw=0.6)
    prices_axis.set_ylabel("USD/MWh")
    prices_axis.set_title("Electricity price per market (hourly, converted to USD)", loc="left", fontsize=10)
    prices_axis.legend(title="market", **LEGEND_OUTSIDE)
    peak = max(float(np.nanmax(p.replicas_by_market.sum(axis=1))) for p in shown.policies.values())
    for axis, name in zip(axes[1 : 1 + len(policies)], policies, strict=True):
        replicas = _edges(shown.policies[name].replicas_by_market)
        axis.stackplot(edges, replicas.T, colors=colours, step="post", alpha=0.85, labels=markets)
        axis.set_ylim(0, peak * 1.05)
        axis.set_ylabel("replicas")
        axis.set_title(
            f"{name} ({shown.scenario.value}): replicas held per market, hourly mean", loc="left", fontsize=10
        )
        axis.legend(title="market", reverse=True, **LEGEND_OUTSIDE)
    for axis, scenario in zip(axes[1 + len(policies) :], cost_scenarios, strict=True):
        bound = np.concatenate([[0.0], scenario.policies["hindsight"].cumulative_cost_usd])
        axis.axhline(0.0, color="black", lw=0.8, label=f"hindsight bound {_money(bound[-1])} USD")
        for name, policy in scenario.policies.items():
            if name == "hindsight":
                continue
            above = np.concatenate([[0.0], policy.cumulative_cost_usd]) - bound
            total = policy.cost_usd
            share = "" if bound[-1] <= 0 else f" ({100 * (total / bound[-1] - 1):+.1f} %)"
            axis.plot(
                edges, above, label=f"{name} {_money(total)} USD{share}", **POLICY_STYLES.get(name, OTHER_POLICY_STYLE)
            )
        axis.set_ylabel("USD above bound")
        what = "rented GPUs" if scenario.scenario == Scenario.RENTED else "owned GPUs, above the idle fleet"
        axis.set_title(
            f"Cumulative cost above the hindsight bound ({scenario.scenario.value}: {what}); total in the legend",
            loc="left",
            fontsize=10,
        )
        axis.legend(title="policy: total cost", **LEGEND_OUTSIDE)
    figure.autofmt_xdate()
    return figure


def write_plot(result: ReplayResult, path: Path) -> None:
    """The figure of plot_figure as a PNG."""
    import matplotlib.pyplot as plt

    figure = plot_figure(result)
    figure.savefig(path, dpi=110)
    plt.close(figure)
