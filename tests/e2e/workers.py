"""Two uvicorn processes serving one app, started side by side (each takes seconds to import
the MCP SDK and Litestar on a loaded machine)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from tests.processes import free_port, start_listening, stop
from tests.redis_support import unique_prefix

__all__ = ("mcp_env", "two_workers")


def mcp_env(redis_url: str) -> dict[str, str]:
    """The environment of an MCP app's workers: one Redis, a prefix of their own, quick steps
    and retries."""
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "MCP_REDIS_PREFIX": unique_prefix(),
        "MCP_STEP_SECONDS": "0.25",
        "MCP_RETRY_MS": "100",
    }


@contextmanager
def two_workers(app: str, log_dir: Path, env: dict[str, str]) -> Iterator[tuple[int, int]]:
    """Serve ``app`` (``"module:attribute"``) on two uvicorn processes (logs ``a.log`` and
    ``b.log`` in ``log_dir``); yield their ports."""
    ports = (free_port(), free_port())

    def start(name: str, port: int) -> subprocess.Popen[bytes]:
        command = [
            sys.executable, "-m", "uvicorn", app,
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        ]  # fmt: skip
        return start_listening(command, port, log_dir / f"{name}.log", env=env)

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(start, name, port) for name, port in zip("ab", ports, strict=True)]
    try:
        processes = [future.result() for future in futures]
    except BaseException:
        for future in futures:
            if future.exception() is None:
                stop(future.result())
        raise
    try:
        yield ports
    finally:
        for process in processes:
            stop(process)
