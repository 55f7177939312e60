"""GRIDSHIFT_LOG_FORMAT=json: kopf's handler writes one JSON object per line, with `deployment`, `cluster` and
`reason` keys on the lines about one, and the redaction net still first (no secret in any field)."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import kopf
import pytest

from gridshift import redaction
from gridshift.service.operator import log_problems
from gridshift.settings import OperatorSettings
from gridshift.shell import logs
from tests.service.harness import ServiceHarness, deployment_body


@pytest.fixture
def json_output() -> Iterator[io.StringIO]:
    """Logging as `kopf run` configures it, then as the shell's start-up leaves it with log_format json."""
    root = logging.getLogger()
    handlers_before, level = root.handlers[:], root.level
    kopf.configure(verbose=True)
    (kopf_handler,) = [h for h in root.handlers if h not in handlers_before]
    assert isinstance(kopf_handler, logging.StreamHandler)
    stream = io.StringIO()
    kopf_handler.setStream(stream)
    logs.install()
    logs.apply_format(OperatorSettings(log_format="json").log_format)
    try:
        yield stream
    finally:
        redaction.uninstall_log_redaction()
        root.handlers[:] = handlers_before
        root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_cycle_problems_are_json_with_their_deployment_and_cluster(json_output: io.StringIO) -> None:
    world = ServiceHarness(["eu-de", "eu-fr"])
    world.add(deployment_body(routing={"httpRouteName": "missing-route"}))
    world.cycle()
    world.members["eu-fr"].reachable = False
    log_problems(world.cycle())
    records = lines(json_output)
    assert records and all({"timestamp", "severity", "logger", "message"} <= set(r) for r in records)
    unreachable = [r for r in records if r.get("reason") == "Unreachable"]
    assert unreachable and unreachable[0]["cluster"] == "eu-fr" and unreachable[0]["severity"] == "WARNING"
    route = [r for r in records if r.get("reason") == "RouteFailed"]
    assert route and route[0]["deployment"] == "ml/chat" and "HTTPRoute ml/missing-route" in route[0]["message"]
    assert len({r["message"] for r in records}) == len(records), "an error was logged twice"


def test_kopf_object_records_name_their_deployment(json_output: io.StringIO) -> None:
    ref = {"apiVersion": "gridshift.dev/v1alpha1", "kind": "InferenceDeployment", "name": "chat", "namespace": "ml"}
    logging.getLogger("kopf.objects").info("Handler 'spec_changed' succeeded.", extra={"k8s_ref": ref})
    cluster = {**ref, "kind": "RegionalCluster", "name": "eu-de", "namespace": None}
    settings = kopf.OperatorSettings()  # kopf's records carry its settings: not a field of the line
    logging.getLogger("kopf.objects").info("Handler succeeded.", extra={"k8s_ref": cluster, "settings": settings})
    deployment_line, cluster_line = lines(json_output)
    assert deployment_line["deployment"] == "ml/chat" and "k8s_ref" not in deployment_line
    assert cluster_line["cluster"] == "eu-de" and "settings" not in cluster_line


def test_no_field_of_a_json_line_holds_a_secret(json_output: io.StringIO) -> None:
    token = f"planted-{uuid.uuid4()}"
    redaction.remember(token)
    log = logging.getLogger("gridshift.service")
    log.warning("feed failed with %s", token, extra={"cluster": f"x-{token}", "reason": "PriceFeedFailed"})
    try:
        raise ValueError(f"parser quoting {token}")
    except ValueError:
        log.exception("failed", extra={"deployment": "ml/chat"})
    out = json_output.getvalue()
    assert token not in out
    first, second = lines(json_output)
    assert first["cluster"] == f"x-{redaction.REDACTED}" and redaction.REDACTED in first["message"]
    assert "ValueError: parser quoting <redacted>" in second["exc_info"]


def test_text_format_leaves_kopfs_lines_as_they_are() -> None:
    root = logging.getLogger()
    handlers_before, level = root.handlers[:], root.level
    kopf.configure(verbose=True)
    try:
        (handler,) = [h for h in root.handlers if h not in handlers_before]
        formatter = handler.formatter
        logs.apply_format("text")
        assert handler.formatter is formatter
    finally:
        root.handlers[:] = handlers_before
        root.setLevel(level)
