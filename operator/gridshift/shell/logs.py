"""Log hygiene and format, installed by the shell at start-up, before any Secret is read.

Hygiene first: at the source, httpx's request log loses its query strings (an ENTSO-E URL carries the
token); as a net under every other source, each log record is redacted of the secret values the
resolvers have handed out (gridshift.redaction), whichever logger made it and whichever handler
(kopf's stream, Events posted from log records) receives it.

Format second (OperatorSettings.log_format): `json` gives every handler kopf configured a JSON
formatter (python-json-logger, kopf's own dependency): one object per line with `timestamp`,
`severity`, `logger` and `message`, and the keys `deployment` (namespace/name), `cluster` and `reason`
when the record concerns one: the service passes them as record attributes, and kopf's per-object
records are mapped from the object they name. Those keys hold names, never values from Secrets;
they are redacted anyway, as every string field is.
"""

from __future__ import annotations

import logging
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from gridshift import redaction
from gridshift.signals.http import quiet_request_urls

KOPF_ATTRS = ("k8s_ref", "k8s_skip", "settings")
"""Attributes kopf's per-object loggers add to records (the object reference, and kopf's settings)."""
OBJECT_KEYS = {"InferenceDeployment": "deployment", "RegionalCluster": "cluster", "GPUProfile": "profile"}
"""The JSON key naming the object a kopf per-object record is about, by kind."""


def install() -> None:
    """Install both guards (idempotent)."""
    quiet_request_urls()
    redaction.install_log_redaction()


class GridshiftJsonFormatter(JsonFormatter):
    """One JSON object per record, with the deployment or cluster it concerns as keys of their own."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "severity", "name": "logger"},
            reserved_attrs=[*RESERVED_ATTRS, *KOPF_ATTRS],
            timestamp=True,
        )

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_record, record, message_dict)
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict):
            key = OBJECT_KEYS.get(str(ref.get("kind")))
            if key is not None and ref.get("name"):
                namespace = ref.get("namespace")
                log_record.setdefault(key, f"{namespace}/{ref['name']}" if namespace else str(ref["name"]))
        for field, value in list(log_record.items()):
            if isinstance(value, str):
                log_record[field] = redaction.redact(value)


def apply_format(log_format: str) -> None:
    """Give every handler of the root logger (kopf's) the configured format; `text` leaves kopf's as it is."""
    if log_format != "json":
        return
    formatter = GridshiftJsonFormatter()
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
