"""A RegionalCluster's feed spec edited: nothing already read is lost unless the source changed.

The observer rebuilds a cluster's managed feed whenever its priceFeed or carbonFeed changes. Found in
review: an fxToUsd edit during an upstream outage built an empty feed, so the cluster lost its prices at
once (PriceFeedStale True, no horizon) with no error saying why. A feed rebuilt for the same source now
starts from the old one's last good series, fetched when it was; one for another source starts empty.
A real HTTP server on localhost answers (tests/signals/conftest.py)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gridshift.api import RegionalCluster
from gridshift.service import inputs
from gridshift.service.observe import Observer, Sources
from gridshift.settings import OperatorSettings
from gridshift.signals.carbon_service import ManagedCarbonFeed, build_carbon_feed
from gridshift.signals.feed_service import FeedOptions, MappingSecretResolver
from gridshift.signals.price_service import ManagedPriceFeed, build_price_feed
from gridshift.signals.settings import PriceFeedSettings, RetryPolicy
from tests.service.harness import cluster_body
from tests.signals.conftest import LocalServer, Reply

NOW = datetime(2024, 10, 8, 10, 17, tzinfo=UTC)
SETTINGS = PriceFeedSettings(http_timeout_seconds=2.0, retry=RetryPolicy(max_attempts=1))
EUR_PER_MWH = 150.0
STALE_AFTER_S = 3600


class FeedRig:
    """An Observer whose feed factories build the real managed feeds, synchronous, on one clock."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.now = NOW
        self.http = httpx.Client()
        self.observer = Observer(
            OperatorSettings(),
            hub=None,  # type: ignore[arg-type]  # the feeds never ask the hub
            sources=Sources(
                member_factory=lambda name, kubeconfig: pytest.fail("no member here"),
                metrics_factory=lambda url: pytest.fail("no metrics here"),
                feed_factory=self._price_feed,
                default_profiles=(),
                metrics_clock=lambda: self.now,
                carbon_feed_factory=self._carbon_feed,
            ),
        )
        start = NOW.replace(minute=0)
        items = [
            {
                "start": (start + timedelta(hours=h)).isoformat(),
                "end": (start + timedelta(hours=h + 1)).isoformat(),
                "price": EUR_PER_MWH,
            }
            for h in range(-1, 24)
        ]
        self.prices = json.dumps(items).encode()
        self.vector = json.dumps(
            {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, "321"]}]}}
        ).encode()
        self.up()

    def up(self) -> None:
        self.server.respond = lambda request: Reply(body=self.vector if "query" in request.path else self.prices)

    def down(self) -> None:
        self.server.answer(Reply(status=503, body=b"down"))

    def _options(self, name: str) -> FeedOptions:
        return FeedOptions(
            name=name, secrets=MappingSecretResolver({}), http=self.http, clock=lambda: self.now, settings=SETTINGS
        )

    def _price_feed(self, name: str, cluster: RegionalCluster) -> ManagedPriceFeed:
        return build_price_feed(cluster.spec.price_feed, **self._options(name))

    def _carbon_feed(self, name: str, cluster: RegionalCluster) -> ManagedCarbonFeed:
        assert cluster.spec.carbon_feed is not None
        return build_carbon_feed(cluster.spec.carbon_feed, **self._options(name))

    def body(self) -> dict[str, Any]:
        body = cluster_body("eu-1")
        body["spec"]["priceFeed"] = {
            "type": "httpJson",
            "currency": "EUR",
            "unit": "MWh",
            "fxToUsd": 1.10,
            "staleAfterSeconds": STALE_AFTER_S,
            "httpJson": {"url": self.server.url + "/prices"},
        }
        body["spec"]["carbonFeed"] = {
            "type": "prometheus",
            "basis": "direct",
            "staleAfterSeconds": STALE_AFTER_S,
            "prometheus": {"url": self.server.url, "query": 'grid_carbon_intensity_g_per_kwh{zone="DE"}'},
        }
        return body

    def read(self, body: dict[str, Any]) -> tuple[Any, Any]:
        cluster = RegionalCluster.model_validate(body)
        carbon = self.observer._carbon_feed("eu-1", cluster)
        assert carbon is not None
        return self.observer._feed("eu-1", cluster).read(), carbon.read()


@pytest.fixture
def world() -> Iterator[FeedRig]:
    server = LocalServer()
    world = FeedRig(server)
    yield world
    world.http.close()
    server.close()


def edited(body: dict[str, Any], feed: str, **fields: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    for path, value in fields.items():
        *parents, leaf = path.split("__")
        target = body["spec"][feed]
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    return body


def test_an_fx_edit_during_an_outage_keeps_the_prices_converted_at_the_new_rate(world: FeedRig) -> None:
    body = world.body()
    prices, _ = world.read(body)
    assert prices.usable
    fetched = prices.last_good_fetch
    world.down()
    world.now += timedelta(minutes=5)
    prices, _ = world.read(edited(body, "priceFeed", fxToUsd=1.09, refreshSeconds=600))
    assert prices.usable, prices.error
    assert prices.last_good_fetch == fetched
    assert prices.error is not None and "503" in str(prices.error)  # why it was not refreshed
    horizon = inputs.price_horizon(prices)
    assert not horizon.stale
    assert horizon.intervals[0].usd_per_kwh == pytest.approx(EUR_PER_MWH / 1000 * 1.09)
    # Staleness still counts from the real fetch, not from the edit.
    world.now = fetched + timedelta(seconds=STALE_AFTER_S)
    prices, _ = world.read(edited(body, "priceFeed", fxToUsd=1.09, refreshSeconds=600))
    assert prices.stale and prices.series is not None


def test_prices_a_new_fx_rate_puts_out_of_bounds_are_not_carried_over(world: FeedRig) -> None:
    body = world.body()
    assert world.read(body)[0].usable
    world.down()
    world.now += timedelta(minutes=5)
    # 150 EUR/MWh at 1000 USD/EUR is 150 USD/kWh: past MAX_ABS_USD_PER_KWH, refused as a fetch of it would be.
    prices, _ = world.read(edited(body, "priceFeed", fxToUsd=1000))
    assert prices.series is None and prices.stale


@pytest.mark.parametrize(
    "change",
    [
        {"httpJson__url": "{url}/other-prices"},
        {"currency": "GBP", "fxToUsd": 1.3},
        {"unit": "kWh"},
    ],
    ids=["url", "currency", "unit"],
)
def test_a_price_source_change_starts_from_nothing(world: FeedRig, change: dict[str, str]) -> None:
    body = world.body()
    assert world.read(body)[0].usable
    world.down()
    world.now += timedelta(minutes=5)
    change = {k: v.format(url=world.server.url) if isinstance(v, str) else v for k, v in change.items()}
    prices, _ = world.read(edited(body, "priceFeed", **change))
    assert prices.series is None and prices.stale
    assert inputs.price_horizon(prices).intervals == ()


def test_a_carbon_refresh_edit_during_an_outage_keeps_the_intensity(world: FeedRig) -> None:
    body = world.body()
    _, carbon = world.read(body)
    assert carbon.usable
    world.down()
    world.now += timedelta(minutes=5)
    _, carbon = world.read(edited(body, "carbonFeed", refreshSeconds=600))
    assert carbon.usable, carbon.error
    assert inputs.carbon_horizon(carbon).intervals[0].g_per_kwh == 321


@pytest.mark.parametrize(
    "change",
    [
        {"prometheus__query": 'grid_carbon_intensity_g_per_kwh{zone="FR"}'},
        {"basis": "lifecycle"},
        # A Prometheus value holds for staleAfterSeconds from its fetch: a new length is a new series.
        {"staleAfterSeconds": 2 * STALE_AFTER_S},
    ],
    ids=["query", "basis", "valid-for"],
)
def test_a_carbon_source_change_starts_from_nothing(world: FeedRig, change: dict[str, str]) -> None:
    body = world.body()
    assert world.read(body)[1].usable
    world.down()
    world.now += timedelta(minutes=5)
    _, carbon = world.read(edited(body, "carbonFeed", **change))
    assert carbon.series is None and carbon.stale


def test_a_rebuild_that_fails_leaves_the_feed_in_use_open(world: FeedRig, monkeypatch: pytest.MonkeyPatch) -> None:
    # Found in regression review: the old feed was closed before the new one was built, so a build that
    # raised left a closed feed cached, handed back again once the spec was reverted.
    body = world.body()
    world.read(body)
    in_use = world.observer._feeds["eu-1"][2]

    def refused(name: str, cluster: RegionalCluster) -> ManagedPriceFeed:
        raise RuntimeError("adapter bug")

    monkeypatch.setattr(world.observer, "_feed_factory", refused)
    with pytest.raises(RuntimeError):
        world.read(edited(body, "priceFeed", fxToUsd=1.09))
    assert world.observer._feed("eu-1", RegionalCluster.model_validate(body)) is in_use
    assert not in_use._closed.is_set()
