"""The image tests render the chart with the Go-built helm of the chart tests."""

from tests.chart.conftest import helm

__all__ = ["helm"]
