"""The official MCP python SDK's server (``MCPServer``) mounted in Litestar, its streams in a
``BroadcastEventStore``: what ``tests/e2e/test_mcp_sdk_server.py`` attacks and resumes.

With ``REDIS_URL`` set the store is on Redis (``MCP_REDIS_PREFIX``), else in memory.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from litestar import Litestar, asgi
from mcp.server.mcpserver import Context, MCPServer

from litestar_sse import SSEConfig, SSEPlugin
from litestar_sse.broadcast import Broadcaster, MemoryBackend, Retention
from litestar_sse.broadcast.types import BroadcastBackend
from litestar_sse.mcp import BroadcastEventStore, MCPSessions

STEP_SECONDS = float(os.environ.get("MCP_STEP_SECONDS", "0.25"))
RETRY_MS = int(os.environ.get("MCP_RETRY_MS", "100"))


def make_backend() -> BroadcastBackend:
    retention = Retention(max_events=1000, idle_ttl=600)
    url = os.environ.get("REDIS_URL")
    if not url:
        return MemoryBackend(retention=retention)
    from litestar_sse.broadcast import RedisStreamBackend

    return RedisStreamBackend(url, prefix=os.environ["MCP_REDIS_PREFIX"], retention=retention)


broadcaster = Broadcaster(make_backend())
store = BroadcastEventStore(broadcaster)
server = MCPServer("litestar-sse-sdk-test")


@server.tool()
async def echo(text: str) -> str:
    """Answer ``text``: a result that belongs to the session that asked."""
    return text


@server.tool()
async def hold(seconds: float) -> str:
    """Answer after ``seconds``."""
    await asyncio.sleep(seconds)
    return f"held {seconds}"


@server.tool()
async def count(to: int, ctx: Context) -> str:
    """One progress notification per step, then the result."""
    for step in range(1, to + 1):
        await asyncio.sleep(STEP_SECONDS)
        await ctx.report_progress(step, to, f"step {step} of {to}")
    return f"Counted to {to} on {os.getpid()}."


server.streamable_http_app(event_store=store, retry_interval=RETRY_MS)
manager = server.session_manager
sessions = MCPSessions(manager, store)


@asgi("/mcp", is_mount=True)
async def mcp_endpoint(scope: Any, receive: Any, send: Any) -> None:
    await sessions(scope, receive, send)


app = Litestar(
    [mcp_endpoint],
    lifespan=[lambda _: manager.run()],
    plugins=[SSEPlugin(SSEConfig(broadcaster=broadcaster))],
)
