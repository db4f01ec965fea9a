"""App for test_metrics.py: streams, broadcasters, and Litestar's Prometheus endpoint.

With ``METRICS_REDIS_URL`` (and ``METRICS_REDIS_PREFIX``) set, a second broadcaster, on that
Redis, serves ``/redis/rooms/...``, with short timeouts so that a stalled Redis fails fast.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, Request, get, post
from litestar.params import FromQuery
from litestar.plugins.prometheus import PrometheusController

from litestar_sse import ServerSentEvent, SSEConfig, SSEPlugin, event_stream
from litestar_sse.broadcast import Broadcaster, MemoryBackend, Retention
from litestar_sse.metrics import register_metrics


def retention(topic: str) -> Retention:
    """Topics named ``brief...`` keep their newest event only."""
    return Retention(max_events=1 if topic.startswith("brief") else 1000)


broadcaster = Broadcaster(MemoryBackend(retention=retention))
broadcasters = {"chat": broadcaster}
REDIS_URL = os.environ.get("METRICS_REDIS_URL")
if REDIS_URL:
    from litestar_sse.broadcast import RedisStreamBackend

    on_redis = Broadcaster(
        RedisStreamBackend(
            REDIS_URL,
            prefix=os.environ.get("METRICS_REDIS_PREFIX", "metrics:"),
            publish_timeout=0.5,
            watch_timeout=0.5,
            block_timeout=0.2,
        )
    )
    broadcasters["redis"] = on_redis
register_metrics(broadcasters)


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
async def room(
    room: str, broadcaster: Broadcaster, request: Request[Any, Any, Any]
) -> ServerSentEvent:
    return await broadcaster.subscribe(room, connection=request)


@get("/topics")
async def topics(
    topic: FromQuery[list[str]], broadcaster: Broadcaster, request: Request[Any, Any, Any]
) -> ServerSentEvent:
    return await broadcaster.subscribe(topic, connection=request)


@post("/rooms/{room:str}", status_code=202)
async def say(room: str, data: dict[str, str], broadcaster: Broadcaster) -> dict[str, str]:
    return {"id": await broadcaster.publish(room, data)}


@get("/redis/rooms/{room:str}")
async def redis_room(room: str, request: Request[Any, Any, Any]) -> ServerSentEvent:
    return await broadcasters["redis"].subscribe(room, connection=request)


@post("/redis/rooms/{room:str}", status_code=202)
async def redis_say(room: str, data: dict[str, str]) -> dict[str, str]:
    return {"id": await broadcasters["redis"].publish(room, data)}


app = Litestar(
    [count, idle, fails, room, topics, say, redis_room, redis_say, PrometheusController],
    plugins=[SSEPlugin(SSEConfig(broadcaster=broadcaster))],
    on_startup=[broadcasters["redis"].start] if REDIS_URL else [],
    on_shutdown=[broadcasters["redis"].close] if REDIS_URL else [],
)
