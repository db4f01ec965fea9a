"""Shared fixtures for the whole suite."""

from __future__ import annotations

import contextlib
import queue
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from litestar_sse._compat import LITESTAR_3
from tests.redis_support import RedisProcess

# Litestar 3's TestClient starts its blocking portal (a thread running an event loop) when it
# is built, and only its __exit__ stops it. A client a test drops without exiting, once in a
# reference cycle, is freed by the garbage collector in whatever thread it runs in, possibly
# another client's portal thread: closing the portal there joins a thread that waits for that
# very loop, and the run hangs (seen in full runs on 3.0.0b0, at a trio test's setup). Such a
# client's portal is closed by a thread of its own instead: the collector only hands it over.
_LEAKED: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()


def _close_leaked_portals() -> None:
    while True:
        close = _LEAKED.get()
        with contextlib.suppress(Exception):  # a portal already stopped, or stopping badly
            close()


if LITESTAR_3:
    threading.Thread(target=_close_leaked_portals, name="close-leaked-portals", daemon=True).start()
    _built = TestClient.__init__

    def _init(self: TestClient[Any], *args: Any, **kwargs: Any) -> None:
        _built(self, *args, **kwargs)
        # SimpleQueue.put may be called from a weakref callback (the collector's thread).
        weakref.finalize(self, _LEAKED.put, self.exit_stack.close)

    TestClient.__init__ = _init  # type: ignore[method-assign]


@pytest.fixture
def anyio_backend() -> str:
    """Run ``@pytest.mark.anyio`` tests on asyncio only: the send loop is asyncio-specific."""
    return "asyncio"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """One throw-away redis-server for the session (no persistence)."""
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[Callable[..., RedisProcess]]:
    """A factory of redis-servers owned by one test (for restarts)."""
    servers: list[RedisProcess] = []

    def make(*, persistent: bool = False) -> RedisProcess:
        server = RedisProcess(tmp_path / f"redis{len(servers)}", persistent=persistent)
        server.directory.mkdir()
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        server.stop()
