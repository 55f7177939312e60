"""Log hygiene the shell installs at start-up, before any Secret is read: no credential in a log line.

At the source, httpx's request log loses its query strings (an ENTSO-E URL carries the token);
as a net under every other source, each log record is redacted of the secret values the resolvers
have handed out (gridshift.redaction), whichever logger made it and whichever handler (kopf's
stream, Events posted from log records) receives it.
"""

from __future__ import annotations

from gridshift import redaction
from gridshift.signals.http import quiet_request_urls


def install() -> None:
    """Install both guards (idempotent)."""
    quiet_request_urls()
    redaction.install_log_redaction()
