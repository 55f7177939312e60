"""A simulated world to test gridshift against: a vLLM fleet on kwok pods, DCGM power, price feeds, one clock.

kwok pods run no containers, so this package plays what would run in them and around them:
every Running and Ready gridshift-managed pod becomes a simulated vLLM replica serving a recorded
request trace, with step times and power from the GPU profiles; per-region exporters publish
vLLM and dcgm-exporter series for Prometheus; a price server replays 2024 market prices as the
ENTSO-E API and as JSON; and fault switches break each of these on demand. See docs/world.md.

    from e2e.world import World, WorldSettings
    with World.from_kubeconfigs(WorldSettings(speed=360)) as world:
        world.endpoints()   # control, prices, exporters

Importable as `e2e.world` (repository root on sys.path) or `world` (e2e/ on sys.path).
"""

from __future__ import annotations

from .clock import ClockReading, WorldClock
from .feedserver import FeedFaultMode
from .fleet import Fleet, LoadSpec
from .kube import (
    FakeClusterReader,
    FakeRoutingReader,
    FakeWorldKube,
    KwokctlClusterPower,
    NodeInfo,
    PodInfo,
)
from .prices import PriceApi, PriceBook
from .prometheus import scrape_configs
from .trace import TraceName
from .world import World, WorldSettings

__all__ = [
    "ClockReading",
    "FakeClusterReader",
    "FakeRoutingReader",
    "FakeWorldKube",
    "FeedFaultMode",
    "Fleet",
    "KwokctlClusterPower",
    "LoadSpec",
    "NodeInfo",
    "PodInfo",
    "PriceApi",
    "PriceBook",
    "TraceName",
    "World",
    "WorldClock",
    "WorldSettings",
    "scrape_configs",
]
