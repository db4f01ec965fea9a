"""A real uvicorn serving ``tests/e2e/apps.py``, shared by the end-to-end tests of a module."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from tests.e2e.live_server import Server
from tests.processes import free_port, start_listening, stop


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("uvicorn") / "server.log"
    command = [
        sys.executable, "-m", "uvicorn", "tests.e2e.apps:app",
        "--host", "127.0.0.1", "--port", str(port),
        "--timeout-graceful-shutdown", "2",
    ]  # fmt: skip
    process = start_listening(command, port, log_path)
    try:
        yield Server(f"http://127.0.0.1:{port}", "127.0.0.1", port, log_path)
    finally:
        stop(process)
