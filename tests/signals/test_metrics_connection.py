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
