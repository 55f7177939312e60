"""`gridshift simulate --plot`: every panel has its own legend outside its lines, every hour is drawn,
colour means a market and nothing else, and the cost panels (one per scenario, linear) keep the
policies apart as distance above the hindsight bound."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pytest
from matplotlib.colors import to_rgba

from gridshift.simulation.report import plot_figure
from gridshift.simulation.runner import ReplayResult, run_replay
from gridshift.simulation.settings import Scenario
from tests.simulation.sim_replay import shipped_replay


@pytest.fixture(scope="module")
def result() -> ReplayResult:
    return run_replay(shipped_replay(days=0.25, deployments=3), [Scenario.OWNED, Scenario.RENTED], jobs=1)


@pytest.fixture(scope="module")
def figure(result: ReplayResult) -> Iterator[Any]:
    fig = plot_figure(result)
    fig.canvas.draw()  # lays out the legends, so their boxes can be compared with the axes
    yield fig
    plt.close(fig)


def test_one_panel_per_policy_and_a_cost_panel_per_scenario(figure: Any, result: ReplayResult) -> None:
    titles = [axis.get_title(loc="left") for axis in figure.axes]
    assert titles[0].startswith("Electricity price per market")
    policies = list(result.scenarios[Scenario.RENTED].policies)
    assert [t.split(" ")[0] for t in titles[1 : 1 + len(policies)]] == policies
    costs = titles[1 + len(policies) :]
    assert len(costs) == 2 and "owned" in costs[0] and "rented" in costs[1]
    for axis in figure.axes[1 + len(policies) :]:
        assert axis.get_yscale() == "linear", "a symlog axis merged the policies' lines"


def test_every_panel_has_its_own_legend_right_of_its_plot(figure: Any, result: ReplayResult) -> None:
    markets = [m.name for m in result.replay.markets]
    for axis in figure.axes:
        legend = axis.get_legend()
        assert legend is not None, axis.get_title(loc="left")
        assert legend.get_window_extent().x0 >= axis.get_window_extent().x1, "the legend covers the lines"
    for axis in figure.axes[: 1 + len(result.scenarios[Scenario.RENTED].policies)]:
        assert sorted(t.get_text() for t in axis.get_legend().get_texts()) == sorted(markets)


def test_the_last_hour_is_drawn(figure: Any, result: ReplayResult) -> None:
    end = mdates.date2num(result.replay.start + timedelta(hours=result.replay.hours))
    price_lines = figure.axes[0].get_lines()
    assert all(mdates.date2num(line.get_xdata()[-1]) == pytest.approx(end) for line in price_lines[:-1])
    replicas = figure.axes[1].collections[0]
    assert max(vertex[0] for path in replicas.get_paths() for vertex in path.vertices) == pytest.approx(end)
    for axis in figure.axes[-2:]:
        assert all(mdates.date2num(line.get_xdata()[-1]) == pytest.approx(end) for line in axis.get_lines()[1:])


def test_colour_means_a_market_and_never_a_policy(figure: Any, result: ReplayResult) -> None:
    markets = len(result.replay.markets)
    market_colours = {to_rgba(line.get_color()) for line in figure.axes[0].get_lines()[:markets]}
    assert len(market_colours) == markets
    for axis in figure.axes[-2:]:
        for line in axis.get_lines():
            red, green, blue, _ = to_rgba(line.get_color())
            assert red == green == blue, f"policy line {line.get_label()} is coloured"
    final = {line.get_label().split(" ")[0]: line for line in figure.axes[-1].get_lines()}
    assert final["gridshift"].get_linewidth() > final["static"].get_linewidth()
