"""A server process a world starts and owns (Prometheus, docker-registry): waiting until it answers,
and stopping it with its working directory. One copy for every such server."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Self


class LocalServer:
    """Mixed into a server's dataclass, which holds its `proc` and `workdir`."""

    proc: subprocess.Popen[bytes]
    workdir: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_ready(
        self, url: str, *, timeout: float, poll: float, exited: Callable[[int], Exception], not_ready: str
    ) -> None:
        """Until `url` answers 200; stopped, and `exited(returncode)` raised, if the process ends first, or
        TimeoutError(`not_ready`) after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                error = exited(self.proc.returncode)
                self.stop()
                raise error
            with (
                contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
                urllib.request.urlopen(url, timeout=2) as answer,
            ):
                if answer.status == 200:
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(not_ready)
            time.sleep(poll)
