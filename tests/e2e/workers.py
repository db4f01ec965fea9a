"""Two uvicorn processes serving one app, started side by side (each takes seconds to import
the MCP SDK and Litestar on a loaded machine)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from tests.processes import free_port, start_listening, stop

__all__ = ("two_workers",)


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
