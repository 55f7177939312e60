"""The world's HTTP servers (control, exporters, price feeds): threaded, and quiet when a client hangs up.

Prometheus abandons a scrape at its timeout and tests stop scrapers mid-request; the standard
server prints a BrokenPipe traceback for each, which buries real errors in the demo's output.
"""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer
from typing import Any


class WorldHTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a hung client never keeps the world from stopping

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):  # the client went away: nothing to report
            return
        super().handle_error(request, client_address)
