"""Shared fixtures for the whole suite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.redis_support import RedisProcess


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
