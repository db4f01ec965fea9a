"""The same broadcast across worker processes and machines: Redis Streams."""

import os
from typing import Any

from litestar import Litestar, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from litestar_sse import ServerSentEvent, ServerSentEventMessage, SSEConfig, SSEPlugin
from litestar_sse.broadcast import Broadcaster, RedisStreamBackend, Retention

backend = RedisStreamBackend(
    os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    prefix="{chat}:",  # every key of every process sharing topics; {...}: one Cluster slot
    retention=Retention(max_events=1000, max_age=24 * 3600),
)


@get("/rooms/{room:str}/events")
async def room_events(
    request: Request[Any, Any, Any], room: FromPath[str], broadcaster: NamedDependency[Broadcaster]
) -> ServerSentEvent:
    return await broadcaster.subscribe(f"room:{room}", connection=request)


@post("/rooms/{room:str}/messages")
async def say(
    request: Request[Any, Any, Any], room: FromPath[str], broadcaster: NamedDependency[Broadcaster]
) -> dict[str, str]:
    text = (await request.body()).decode()
    return {"id": await broadcaster.publish(f"room:{room}", text, event="message")}


config = SSEConfig(
    broadcaster=Broadcaster(backend),  # one per process: one Redis reader for all its streams
    # At shutdown every stream gets this, then ends; browsers reconnect (to another worker,
    # or to this one once it is back) with Last-Event-ID and lose nothing.
    shutdown_event=ServerSentEventMessage(event="restart", data="", retry=1000),
)
app = Litestar([room_events, say], plugins=[SSEPlugin(config)])
