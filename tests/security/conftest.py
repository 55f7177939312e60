"""Fixtures of the security suite: the real control planes with the operator's service wired as the chart runs it."""

from tests.security.harness import all_logs, secure, world
from tests.signals.conftest import local_server

__all__ = ["all_logs", "local_server", "secure", "world"]
