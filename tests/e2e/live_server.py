"""A handle on the uvicorn process the end-to-end tests talk to."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


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
