"""The official MCP python SDK client against ``examples/mcp_server.py`` on two uvicorn
processes sharing one real Redis, behind a loopback proxy that the test switches from process
A to process B by cutting every connection in the middle of a tool call."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.processes import free_port, start_listening, stop
from tests.redis_support import RedisProcess, unique_prefix

pytestmark = pytest.mark.anyio

STEPS = 8


@dataclass
class Connection:
    """One client connection through the proxy: where it went and what the client sent."""

    target: int
    sent: bytearray = field(default_factory=bytearray)
    received: bytearray = field(default_factory=bytearray)
    transports: list[asyncio.Transport] = field(default_factory=list)


class SwitchingProxy:
    """Forwards each new loopback connection to the current target port. ``switch`` aborts
    every open connection (as a network failure would) and sends the next ones elsewhere."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.connections: list[Connection] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = Connection(self.target)
        self.connections.append(connection)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        connection.transports += [writer.transport, up_writer.transport]  # type: ignore[list-item]
        loop = asyncio.get_running_loop()
        for source, sink, record in (
            (reader, up_writer, connection.sent),
            (up_reader, writer, connection.received),
        ):
            task = loop.create_task(self._pipe(source, sink, record))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pipe(
        source: asyncio.StreamReader, sink: asyncio.StreamWriter, record: bytearray
    ) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while chunk := await source.read(65536):
                record += chunk
                sink.write(chunk)
                await sink.drain()
        sink.close()

    def switch(self, target: int) -> None:
        self.target = target
        for connection in self.connections:
            for transport in connection.transports:
                transport.abort()

    async def close(self) -> None:
        self.switch(self.target)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def requests_to(self, target: int) -> str:
        return "".join(c.sent.decode("latin-1") for c in self.connections if c.target == target)

    def responses_of(self, target: int) -> str:
        return "".join(c.received.decode("latin-1") for c in self.connections if c.target == target)


@pytest.fixture
def two_workers(redis_server: RedisProcess, tmp_path: Path) -> Iterator[tuple[int, int]]:
    env = {
        **os.environ,
        "REDIS_URL": redis_server.url,
        "MCP_REDIS_PREFIX": unique_prefix(),
        "MCP_STEP_SECONDS": "0.25",
        "MCP_RETRY_MS": "100",
    }
    ports = (free_port(), free_port())
    processes = []
    try:
        for name, port in zip("ab", ports, strict=True):
            command = [
                sys.executable, "-m", "uvicorn", "examples.mcp_server:app",
                "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
            ]  # fmt: skip
            processes.append(start_listening(command, port, tmp_path / f"{name}.log", env=env))
        yield ports
    finally:
        for process in processes:
            stop(process)


async def test_a_tool_call_cut_mid_way_resumes_on_the_other_worker_exactly_once(
    two_workers: tuple[int, int],
) -> None:
    a, b = two_workers
    proxy = SwitchingProxy(a)
    url = f"http://127.0.0.1:{await proxy.start()}/mcp"
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))
        if value == 2:
            proxy.switch(b)  # the connection breaks; the tool goes on running on A

    try:
        with anyio_timeout(40):
            async with (
                streamable_http_client(url) as (read, write),
                ClientSession(read, write) as session,
            ):
                initialized = await session.initialize()
                assert initialized.server_info.name == "litestar-sse-example"
                tools = await session.list_tools()
                assert [tool.name for tool in tools.tools] == ["count"]
                result = await session.call_tool(
                    "count", {"to": STEPS}, progress_callback=on_progress
                )
                # the same session, now served by B: sessions live in Redis
                again = await session.list_tools()
                assert [tool.name for tool in again.tools] == ["count"]
    finally:
        await proxy.close()

    assert result.is_error is False
    assert [content.text for content in result.content] == [f"Counted to {STEPS}."]  # type: ignore[union-attr]
    # every notification exactly once, in order, across the cut
    assert progress == [(n, STEPS, f"step {n} of {STEPS}") for n in range(1, STEPS + 1)]
    on_a, on_b = proxy.requests_to(a), proxy.requests_to(b)
    assert '"method":"tools/call"' in on_a.replace(" ", "")
    # the client came back to B with the id of the last event it had
    resumes = [part for part in on_b.split("GET /mcp")[1:] if "last-event-id:" in part.lower()]
    assert len(resumes) == 1, on_b
    assert '"method":"tools/list"' in on_b.replace(" ", "")
    # B sent the rest of the call (replayed from Redis, then live as A's task published it)
    from_b = proxy.responses_of(b)
    assert f"step {STEPS} of {STEPS}" in from_b
    assert f"Counted to {STEPS}." in from_b
    assert f"step {STEPS} of {STEPS}" not in proxy.responses_of(a)


@contextlib.contextmanager
def anyio_timeout(seconds: float) -> Iterator[None]:
    import anyio

    with anyio.fail_after(seconds):
        yield
