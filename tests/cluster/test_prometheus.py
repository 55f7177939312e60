"""The Prometheus fixture scrapes arbitrary targets (later: simulated vLLM / DCGM exporters)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from .helpers import wait_for

pytestmark = pytest.mark.cluster


class _Exporter(http.server.BaseHTTPRequestHandler):
    value = 0.0

    def do_GET(self) -> None:
        body = (
            "# HELP vllm:num_requests_running Requests running.\n"
            "# TYPE vllm:num_requests_running gauge\n"
            f'vllm:num_requests_running{{model_name="m"}} {type(self).value}\n'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def exporter() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def test_prometheus_scrapes_targets(prometheus_factory: Any, exporter: str) -> None:
    _Exporter.value = 7
    prom = prometheus_factory({"vllm": [exporter]}, scrape_interval="1s")
    assert prom.url.startswith("http://127.0.0.1:")

    def sample() -> float | None:
        res = prom.query('vllm:num_requests_running{job="vllm"}')["result"]
        return float(res[0]["value"][1]) if res else None

    assert wait_for(sample, 30, "first scrape") == 7.0

    # retarget at runtime (config rewrite + /-/reload)
    prom.set_targets({"other": [exporter]})
    wait_for(lambda: prom.query('up{job="other"}')["result"], 30, "scrape of the new job")


def test_a_query_real_prometheus_refuses_is_named_in_its_own_words(prometheus_factory: Any, exporter: str) -> None:
    # The error answers the price and carbon feeds quote (signals.price_feeds._prometheus_words), from the
    # real server rather than a recorded body: a parse error (400 bad_data) and many-to-many (422 execution).
    from datetime import UTC, datetime, timedelta

    from gridshift.api.regional_cluster import EnergyUnit, PrometheusPriceFeed
    from gridshift.signals.price_feeds import PrometheusMetricPriceFeed
    from gridshift.signals.prices import PriceDataError
    from gridshift.signals.settings import PriceFeedSettings

    prom = prometheus_factory({"a": [exporter], "b": [exporter]}, scrape_interval="1s")
    wait_for(lambda: len(prom.query("up")["result"]) == 2 or None, 30, "both jobs scraped")

    def refusal(query: str) -> PriceDataError:
        feed = PrometheusMetricPriceFeed(
            "prom",
            spec=PrometheusPriceFeed(url=prom.url, query=query),
            currency="EUR",
            unit=EnergyUnit.KWH,
            valid_for=timedelta(minutes=15),
            settings=PriceFeedSettings(http_timeout_seconds=10),
        )
        with pytest.raises(PriceDataError) as caught:
            feed.fetch(datetime.now(UTC))
        assert caught.value.field == "prometheus.query" and not caught.value.retryable
        return caught.value

    assert "bad_data" in refusal("price{").detail and "parse error" in refusal("price{").detail
    many = refusal("up + on() up")  # two series on each side of a one-to-one match: 422 execution
    assert many.detail.startswith("Prometheus refused the query (execution: ") and "many" in many.detail, many.detail
