"""A throw-away redis-server for tests: ``tests/broadcast`` and ``tests/examples`` use it.

The fixtures ``redis_server`` (one per session) and ``redis_process`` (a factory, for
restarts) are defined in ``tests/conftest.py``; helpers are imported from here.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import free_port
from tests.processes import stop as stop_process

REDIS_SERVER = shutil.which("redis-server") or (
    "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
)


class RedisProcess:
    """A redis-server on 127.0.0.1 in its own directory; can be stopped and started again.

    With ``persistent`` every write is appended to the AOF and fsynced before the reply, so a
    restart finds everything a client was told was written.
    """

    def __init__(self, directory: Path, *, persistent: bool = False) -> None:
        if REDIS_SERVER is None:
            # Never a skip: CI installs it (.ci/run), and a missing server must be seen.
            pytest.fail("redis-server is not installed: apt-get install redis-server")
        self.directory = directory
        self.persistent = persistent
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--dir", str(self.directory), "--save", "", "--protected-mode", "no"]
        if self.persistent:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.directory
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        stop_process(process)

    @contextlib.contextmanager
    def stalled(self) -> Iterator[None]:
        """Redis stopped (SIGSTOP) inside the block: connections stay open, nothing is
        answered; continued (SIGCONT) when the block ends, however it ends."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.process.pid, signal.SIGCONT)


_prefixes = itertools.count()


def unique_prefix() -> str:
    """A key prefix no other test uses, so tests share one Redis without interfering."""
    return f"t{os.getpid()}-{next(_prefixes)}:"
