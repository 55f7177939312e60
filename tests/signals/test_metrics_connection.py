"""A Prometheus that refuses connections is a MetricsError (retryable), never a raw socket error; a
prometheusUrl's query string (a proxy's key) is sent with each query and never quoted."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime

import pytest

from gridshift.signals.labels import DeploymentRef
from gridshift.signals.metrics import MetricsError, PrometheusMetricsSource
from gridshift.signals.promql import Signal
from tests.signals.conftest import LocalServer, Reply, Request

AT = datetime(2026, 3, 10, 3, 41, 29, 943000, tzinfo=UTC)


def test_refused_connection_is_a_retryable_metrics_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again on exit: nothing listens there
    source = PrometheusMetricsSource(f"http://127.0.0.1:{port}", sleep=lambda _: None)
    with pytest.raises(MetricsError) as caught:
        source.deployment_signals(DeploymentRef("ml", "chat", "w", "chat"), datetime.now(UTC))
    assert caught.value.retryable
    assert f"127.0.0.1:{port}" in str(caught.value)


def test_a_key_in_the_prometheus_url_is_not_quoted_by_its_errors() -> None:
    # A Prometheus behind a proxy may take its key as a query parameter (admission refuses only
    # user:password@): errors name the source by scheme, host and path.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = PrometheusMetricsSource(f"http://127.0.0.1:{port}/prom?api_key=s3cr3t", sleep=lambda _: None)
    with pytest.raises(MetricsError) as caught:
        source.deployment_signals(DeploymentRef("ml", "chat", "w", "chat"), datetime.now(UTC))
    assert "s3cr3t" not in str(caught.value) and "s3cr3t" not in caught.value.source
    assert f"http://127.0.0.1:{port}/prom?<query omitted>" in str(caught.value)


def test_a_key_in_the_prometheus_url_is_sent_with_every_query_and_the_path_kept(
    local_server: LocalServer,
) -> None:
    # Found in review: prometheus-api-client appended /api/v1/query to the whole URL, query string included,
    # so every query went to /prom with api_key="s3cr3t/api/v1/query" (the proxy refused them all).
    def respond(request: Request) -> Reply:
        if request.path != "/prom/api/v1/query" or request.params.get("api_key") != "s3cr3t-proxy-key":
            return Reply(status=401, body=b'{"status": "error", "error": "unauthorised"}')
        return Reply(body=json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}).encode())

    local_server.respond = respond
    url = f"{local_server.url}/prom/?api_key=s3cr3t-proxy-key&tenant=fleet&query=evil&time=0"
    source = PrometheusMetricsSource(url, sleep=lambda _: None)
    signals = source.cluster_signals([DeploymentRef("ml", "chat", "w", "chat")], AT)
    assert len(local_server.requests) == len(Signal) and signals
    for request in local_server.requests:
        assert request.params["tenant"] == "fleet"
        assert request.params["time"] == f"{AT.timestamp():.3f}" and request.params["query"] != "evil"
    # A failing query's error names the source without the key, even where the answer echoes it.
    local_server.respond = lambda request: Reply(status=500, body=f"bad key {request.params['api_key']}".encode())
    with pytest.raises(MetricsError) as caught:
        source.query_vector("up", AT)
    assert "s3cr3t-proxy-key" not in str(caught.value) and "HTTP 500" in str(caught.value)


def test_a_partial_answer_is_asked_to_be_refused_unless_the_url_says_otherwise(local_server: LocalServer) -> None:
    # Found in review: Thanos answers a query some store missed with the other stores' series (and a warning
    # prometheus-api-client drops): half a deployment's request rate read as the whole, and replicas were
    # removed. Asked with partial_response=false, Thanos refuses such a query: the signal is unknown, held.
    empty = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}).encode()
    local_server.answer(Reply(body=empty))
    PrometheusMetricsSource(local_server.url, sleep=lambda _: None).query_vector("up", AT)
    assert local_server.requests[-1].params["partial_response"] == "false"
    # A URL that asks for partial answers (a user's choice, e.g. a dashboard-grade Thanos) is sent as written.
    PrometheusMetricsSource(f"{local_server.url}/?partial_response=true", sleep=lambda _: None).query_vector("up", AT)
    assert local_server.requests[-1].params["partial_response"] == "true"
    # Refused, the query is an error, never an empty or partial answer.
    local_server.answer(Reply(status=422, body=b'{"status": "error", "error": "partial response disabled"}'))
    with pytest.raises(MetricsError, match="HTTP 422"):
        PrometheusMetricsSource(local_server.url, sleep=lambda _: None).query_vector("up", AT)
