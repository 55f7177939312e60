"""A Prometheus that refuses connections is a MetricsError (retryable), never a raw socket error."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest

from gridshift.signals.labels import DeploymentRef
from gridshift.signals.metrics import MetricsError, PrometheusMetricsSource


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
