"""The official MCP python SDK client against ``examples/mcp_server.py`` on two uvicorn
processes sharing one real Redis, behind a loopback proxy that the test switches from process
A to process B by cutting every connection in the middle of a tool call."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.switching_proxy import SwitchingProxy
from tests.e2e.workers import mcp_env
from tests.e2e.workers import two_workers as started_workers
from tests.redis_support import RedisProcess

pytestmark = pytest.mark.anyio

STEPS = 8


@pytest.fixture
def two_workers(redis_server: RedisProcess, tmp_path: Path) -> Iterator[tuple[int, int]]:
    with started_workers("examples.mcp_server:app", tmp_path, mcp_env(redis_server.url)) as ports:
        yield ports


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
