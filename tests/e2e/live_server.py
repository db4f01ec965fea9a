"""A handle on the server process (uvicorn, or granian) the end-to-end tests talk to."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.processes import free_port, start_listening, stop


@dataclass
class Server:
    url: str
    host: str
    port: int
    log_path: Path

    def log(self, since: int = 0) -> str:
        """The server's output (uvicorn and app logs), from character ``since`` on."""
        return self.log_path.read_text(errors="replace")[since:]

    def log_mark(self) -> int:
        """A position in the log, for :meth:`log` to read only what came after it."""
        return len(self.log())

    def state(self, key: str) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/state/{key}", timeout=5)
        response.raise_for_status()
        return dict(response.json())

    def wait_for_state(
        self, key: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        """Poll ``/state/{key}`` until ``predicate`` holds; return the last state either way."""
        deadline = time.monotonic() + timeout
        current = self.state(key)
        while not predicate(current) and time.monotonic() < deadline:
            time.sleep(0.05)
            current = self.state(key)
        return current

    def wait_for_log(self, text: str, since: int = 0, timeout: float = 10.0) -> str:
        """Poll the log (from ``since``) until it contains ``text``; return it either way."""
        deadline = time.monotonic() + timeout
        log = self.log(since)
        while text not in log and time.monotonic() < deadline:
            time.sleep(0.05)
            log = self.log(since)
        return log


@contextmanager
def live_server(
    app: str, log_dir: Path, server: str = "uvicorn", *, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """Serve ``app`` (``"module:attribute"``) with a real uvicorn (or ``server="granian"``) on
    a free loopback port, for as long as the context lasts; its output goes to
    ``log_dir / "server.log"``. ``env`` is added to the server's environment."""
    port = free_port()
    log_path = log_dir / "server.log"
    if server == "uvicorn":
        command = [
            sys.executable, "-m", "uvicorn", app,
            "--host", "127.0.0.1", "--port", str(port), "--timeout-graceful-shutdown", "2",
        ]  # fmt: skip
    else:
        command = [
            sys.executable, "-m", "granian", "--interface", "asgi",
            "--host", "127.0.0.1", "--port", str(port), app,
        ]  # fmt: skip
    process = start_listening(
        command, port, log_path, env=None if env is None else {**os.environ, **env}
    )
    try:
        yield Server(f"http://127.0.0.1:{port}", "127.0.0.1", port, log_path)
    finally:
        stop(process)
