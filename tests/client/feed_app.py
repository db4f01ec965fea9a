"""A broadcast feed served by uvicorn to the client tests: ``/feed`` subscribes (resuming with
``Last-Event-ID``), ``POST /publish?count=&pause=`` publishes numbered events in the
background. ``FEED_REDIS`` (a URL) selects the Redis Streams backend, else memory."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

from litestar import Litestar, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from litestar_sse import ServerSentEvent, SSEConfig, SSEPlugin
from litestar_sse.broadcast import Broadcaster, MemoryBackend, Retention

RETENTION = Retention(max_events=100_000)


def _backend() -> Any:
    url = os.environ.get("FEED_REDIS")
    if not url:
        return MemoryBackend(retention=RETENTION)
    from litestar_sse.broadcast import RedisStreamBackend

    return RedisStreamBackend(url, prefix=f"feed-{uuid.uuid4().hex[:8]}:", retention=RETENTION)


def payload(number: int) -> str:
    """Event ``number``'s data: its number, then filler of varying length; some on two lines."""
    filler = "é" * (number * 37 % 150)
    if number % 5 == 0:
        return f"{number}|{filler}\nsecond line"
    return f"{number}|{filler}"


published = {"count": 0}
tasks: set[asyncio.Task[None]] = set()


@get("/feed")
async def feed(
    request: Request[Any, Any, Any], broadcaster: NamedDependency[Broadcaster]
) -> ServerSentEvent:
    return await broadcaster.subscribe("feed", connection=request, ping_interval=1)


async def _publish_next(broadcaster: Broadcaster) -> tuple[int, str]:
    number = published["count"]
    published["count"] += 1
    event_id = await broadcaster.publish(
        "feed", payload(number), event="tick" if number % 3 else None
    )
    return number, event_id


@post("/publish", status_code=202)
async def publish(
    count: FromQuery[int], pause: FromQuery[float], broadcaster: NamedDependency[Broadcaster]
) -> dict[str, Any]:
    """Publish ``count`` events, one every ``pause`` seconds; return the first one's number
    and id."""
    number, first = await _publish_next(broadcaster)

    async def run() -> None:
        for _ in range(count - 1):
            if pause:
                await asyncio.sleep(pause)
            await _publish_next(broadcaster)

    task = asyncio.get_running_loop().create_task(run())
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return {"id": first, "number": number}


@get("/state/{key:str}", sync_to_thread=False)
def state(key: FromPath[str]) -> dict[str, int]:
    return dict(published)


app = Litestar(
    [feed, publish, state],
    plugins=[SSEPlugin(SSEConfig(broadcaster=Broadcaster(_backend())))],
)
