"""The official MCP python SDK's own server (``tests/e2e/mcp_sdk_app.py``, mounted in Litestar
through ``MCPSessions``) on two uvicorn processes sharing one real Redis, and the real SDK
client behind a loopback proxy that the test switches from process A to process B by cutting
every connection in the middle of a tool call.

The client resumes the call on B (``GET`` with ``Last-Event-ID``, answered by
``MCPSessions`` from Redis while the tool goes on running on A) and gets every notification
and the result exactly once; B takes the session over for its next requests; the session's
``DELETE`` (to B) ends it on A too."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
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
    with started_workers("tests.e2e.mcp_sdk_app:app", tmp_path, mcp_env(redis_server.url)) as ports:
        yield ports


async def test_a_call_of_the_sdks_server_cut_mid_way_resumes_on_the_other_worker(
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
        with anyio.fail_after(40):
            async with (
                streamable_http_client(url) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                result = await session.call_tool(
                    "count", {"to": STEPS}, progress_callback=on_progress
                )
                # the same session goes on, served by B
                tools = await session.list_tools()
                assert "count" in [tool.name for tool in tools.tools]
                echoed = await session.call_tool("echo", {"text": "on B"})
                assert [c.text for c in echoed.content] == ["on B"]  # type: ignore[union-attr]
        # leaving the client sent DELETE to B: A no longer serves the session either
        session_id = re.findall(r"mcp-session-id: (\S+)", proxy.responses_of(a))[0]
        assert (await post_list_tools(a, session_id)).status_code == 404
        assert (await post_list_tools(b, "no-such-session")).status_code == 404
    finally:
        await proxy.close()

    assert result.is_error is False
    (text,) = [content.text for content in result.content]  # type: ignore[union-attr]
    assert text.startswith(f"Counted to {STEPS} on ")
    # every notification exactly once, in order, across the cut
    assert progress == [(n, STEPS, f"step {n} of {STEPS}") for n in range(1, STEPS + 1)]
    assert '"method":"tools/call"' in proxy.requests_to(a).replace(" ", "")
    # the client came back to B with the id of the last event it had, once
    requests_to_b = proxy.requests_to(b).split("GET /mcp")[1:]
    resumes = [part for part in requests_to_b if "last-event-id:" in part.lower()]
    assert len(resumes) == 1, proxy.requests_to(b)
    # B sent the rest of the call: replayed from Redis, then live as A's tool stored it
    from_b = proxy.responses_of(b)
    assert f"step {STEPS} of {STEPS}" in from_b
    assert f"Counted to {STEPS} on " in from_b
    assert f"step {STEPS} of {STEPS}" not in proxy.responses_of(a)
    assert '"method":"tools/list"' in proxy.requests_to(b).replace(" ", "")
    assert "DELETE /mcp" in proxy.requests_to(b)


async def post_list_tools(port: int, session_id: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(
            f"http://127.0.0.1:{port}/mcp",
            json={"jsonrpc": "2.0", "id": 99, "method": "tools/list"},
            headers={
                "accept": "application/json, text/event-stream",
                "mcp-session-id": session_id,
                "mcp-protocol-version": "2025-11-25",
            },
        )
