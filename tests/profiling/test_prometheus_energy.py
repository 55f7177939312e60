"""Energy read from dcgm-exporter's counter through a Prometheus HTTP API served on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from gridshift.profiling import EnergyMeterError, PrometheusEnergyMeter, PrometheusEnergySettings


class FakePrometheus:
    """Answers /api/v1/query with a fixed vector and remembers each query's parameters."""

    def __init__(self) -> None:
        self.value_millijoules: float | None = 0.0
        self.sample: object = None
        """When set, the sample value written as it is (a string as Prometheus writes it, or anything else)."""
        self.series_seen = False
        """With value_millijoules None: whether a longer look back (last_over_time) finds the series."""
        self.status = 200
        self.queries: list[dict[str, str]] = []
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                parsed = urlparse(self.path)
                outer.queries.append({k: v[0] for k, v in parse_qs(parsed.query).items()})
                outer.paths.append(parsed.path)
                value = outer.value_millijoules
                if value is None and outer.series_seen and "last_over_time(" in outer.queries[-1]["query"]:
                    value = 1.0
                sample = str(value) if outer.sample is None else outer.sample
                result = [] if value is None else [{"metric": {}, "value": [1764200000.0, sample]}]
                body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def prometheus() -> Iterator[FakePrometheus]:
    server = FakePrometheus()
    yield server
    server.close()


class StepClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def meter_for(prometheus: FakePrometheus, clock: StepClock, waits: list[float]) -> PrometheusEnergyMeter:
    settings = PrometheusEnergySettings(
        url=prometheus.url, selector='pod="vllm-0",namespace="ml"', scrape_wait_seconds=30.0
    )
    return PrometheusEnergyMeter(settings, clock=clock, sleep=waits.append)


def test_a_phase_is_the_counter_increase_over_its_duration(prometheus: FakePrometheus) -> None:
    clock, waits = StepClock(1_764_200_000.0), list[float]()
    meter = meter_for(prometheus, clock, waits)
    prometheus.value_millijoules = 12_345_000.0  # 12,345 J over 30 s: 411.5 W
    meter.begin_phase("decode_c8")
    clock.now += 30.0
    phase = meter.end_phase()
    assert (phase.name, phase.duration_s, phase.energy_joules) == ("decode_c8", 30.0, 12_345.0)
    (query,) = prometheus.queries
    assert query["query"] == 'sum(increase(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{pod="vllm-0",namespace="ml"}[30s]))'
    assert float(query["time"]) == pytest.approx(1_764_200_030.0)
    assert waits == [30.0]  # waited for the scrape after the phase before asking


def test_no_matching_series_names_the_selector(prometheus: FakePrometheus) -> None:
    clock = StepClock(1000.0)
    meter = meter_for(prometheus, clock, [])
    prometheus.value_millijoules = None
    meter.begin_phase("idle")
    clock.now += 20.0
    with pytest.raises(
        EnergyMeterError, match=r'no DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION series matches \{pod="vllm-0"'
    ):
        meter.end_phase()


def test_a_phase_too_short_for_the_scrapes_is_told_from_a_selector_that_matches_nothing(
    prometheus: FakePrometheus,
) -> None:
    # Found in review: a 10 s phase against the shipped 15 s scrape held one sample or none, increase() read an
    # empty vector, and the error said no series matched the selector.
    clock = StepClock(1000.0)
    meter = meter_for(prometheus, clock, [])
    prometheus.value_millijoules, prometheus.series_seen = None, True
    meter.begin_phase("idle")
    clock.now += 10.0
    with pytest.raises(EnergyMeterError) as caught:
        meter.end_phase()
    message = str(caught.value)
    assert "fewer than two samples" in message and "phase 'idle' (10.0 s)" in message, message
    assert "every 15 s" in message and "--idle-seconds" in message and "no " + "DCGM" not in message
    assert prometheus.queries[-1]["query"] == (
        'count(last_over_time(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{pod="vllm-0",namespace="ml"}[600s]))'
    )
    assert float(prometheus.queries[-1]["time"]) == pytest.approx(1010.0)


def test_an_error_status_and_an_unreachable_server_are_reported(prometheus: FakePrometheus) -> None:
    clock = StepClock(1000.0)
    meter = meter_for(prometheus, clock, [])
    prometheus.status = 503
    meter.begin_phase("idle")
    clock.now += 20.0
    with pytest.raises(EnergyMeterError, match="answered HTTP 503"):
        meter.end_phase()
    url = prometheus.url
    prometheus.close()
    gone = PrometheusEnergyMeter(
        PrometheusEnergySettings(url=url, selector='pod="x"', scrape_wait_seconds=0), clock=clock
    )
    gone.begin_phase("idle")
    with pytest.raises(EnergyMeterError, match=rf"Prometheus at {url} unreachable"):
        gone.end_phase()


def test_phase_misuse_is_refused(prometheus: FakePrometheus) -> None:
    meter = meter_for(prometheus, StepClock(0.0), [])
    with pytest.raises(EnergyMeterError, match="no phase is open"):
        meter.end_phase()
    meter.begin_phase("a")
    with pytest.raises(EnergyMeterError, match="'a' is still open"):
        meter.begin_phase("b")


def test_a_base_url_with_a_path_and_a_query_keeps_both(prometheus: FakePrometheus) -> None:
    # Found in review: the API path was appended to the text, after `?token=...`: the request went to `/`
    # without the token (HTTP 404). load.endpoint_url had had the same fix.
    clock = StepClock(1000.0)
    settings = PrometheusEnergySettings(url=f"{prometheus.url}/prom/?token=abcdefgh123", selector='pod="x"')
    meter = PrometheusEnergyMeter(settings, clock=clock, sleep=lambda _: None)
    meter.begin_phase("idle")
    clock.now += 20.0
    meter.end_phase()
    assert prometheus.paths == ["/prom/api/v1/query"]
    assert prometheus.queries[0]["token"] == "abcdefgh123" and "increase(" in prometheus.queries[0]["query"]


@pytest.mark.parametrize(
    ("sample", "joules"),
    [("12345", 12.345), ("0.001", 1e-6), ("1500000", 1500.0), ("1e-07", 1e-10), ("1.5e+21", 1.5e18), ("0", 0.0)],
)
def test_every_form_prometheus_writes_a_sample_in_reads(prometheus: FakePrometheus, sample: str, joules: float) -> None:
    # Each as a real Prometheus 2.x answered vector(12345), vector(0.001), vector(1.5e6), vector(1e-7),
    # vector(1.5e21), vector(0): Go's 'f' form, its 'e' form below 1e-6 and from 1e21 (util/jsonutil).
    clock = StepClock(1000.0)
    meter = meter_for(prometheus, clock, [])
    prometheus.sample = sample
    meter.begin_phase("idle")
    clock.now += 30.0
    assert meter.end_phase().energy_joules == pytest.approx(joules)


@pytest.mark.parametrize(
    ("sample", "words"),
    [
        ("NaN", "answered NaN (not a finite number)"),
        ("+Inf", "answered +Inf (not a finite number)"),
        ("-Inf", "answered -Inf (not a finite number)"),
        ("nan", "answered a sample value that is no finite number"),
        ("1e999", "answered a sample value that is no finite number"),
        ("1_0", "answered a sample value that is no number"),
        ("\uff11\uff12", "answered a sample value that is no number"),
        (" 12", "answered a sample value that is no number"),
        ("", "answered a sample value that is no number"),
        ("-5", "answered a negative sample value (-5)"),
        (True, "answered a sample value that is no string (bool)"),
        (12345, "answered a sample value that is no string (int)"),
    ],
)
def test_a_sample_that_is_no_finite_energy_is_refused_naming_the_query(
    prometheus: FakePrometheus, sample: object, words: str
) -> None:
    # Found in review: float() read "NaN" as a NaN energy, kept in the profile without a word, and "1_0" as 10.
    clock = StepClock(1000.0)
    settings = PrometheusEnergySettings(url=f"{prometheus.url}/?token=secret-abc123", selector='pod="vllm-0"')
    meter = PrometheusEnergyMeter(settings, clock=clock, sleep=lambda _: None)
    prometheus.sample = sample
    meter.begin_phase("decode_c8")
    clock.now += 30.0
    with pytest.raises(EnergyMeterError) as caught:
        meter.end_phase()
    message = str(caught.value)
    assert words in message, message
    assert 'to sum(increase(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{pod="vllm-0"}[30s]))' in message, message
    assert "secret-abc123" not in message and f"Prometheus at {prometheus.url}/?<query omitted>" in message
