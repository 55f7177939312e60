"""The world's HTTP servers (control, exporters, price feeds): threaded, quiet, started and stopped alike.

Prometheus abandons a scrape at its timeout and tests stop scrapers mid-request; the standard
server prints a BrokenPipe traceback for each, which buries real errors in the demo's output.
"""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietHandler(BaseHTTPRequestHandler):
    """No access log: the world answers several requests a second per cluster."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class WorldHTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a hung client never keeps the world from stopping

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], name: str) -> None:
        super().__init__(address, handler)
        self.port = int(self.server_address[1])
        self._thread = threading.Thread(target=self.serve_forever, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever, which never ran otherwise
            self.shutdown()
            self._thread.join(timeout=5)
        self.server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # the client went away: nothing to report
            return
        super().handle_error(request, client_address)
