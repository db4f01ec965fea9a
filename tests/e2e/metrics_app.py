"""App for test_metrics.py: streams, a broadcaster, and Litestar's Prometheus endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from litestar import Litestar, get, post
from litestar.plugins.prometheus import PrometheusController

from litestar_sse import ServerSentEvent, SSEConfig, SSEPlugin, event_stream
from litestar_sse.broadcast import Broadcaster
from litestar_sse.metrics import register_metrics

broadcaster = Broadcaster()
register_metrics({"chat": broadcaster})


@get("/count")
@event_stream
async def count(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


@get("/idle")
@event_stream(ping_interval=0.02)
async def idle() -> AsyncIterator[int]:
    yield 0
    await asyncio.sleep(3600)


@get("/fails")
@event_stream
async def fails() -> AsyncIterator[int]:
    yield 0
    raise RuntimeError("boom")


@get("/rooms/{room:str}")
async def room(room: str, broadcaster: Broadcaster) -> ServerSentEvent:
    return await broadcaster.subscribe(room)


@post("/rooms/{room:str}", status_code=202)
async def say(room: str, data: dict[str, str], broadcaster: Broadcaster) -> None:
    await broadcaster.publish(room, data)


app = Litestar(
    [count, idle, fails, room, say, PrometheusController],
    plugins=[SSEPlugin(SSEConfig(broadcaster=broadcaster))],
)
