"""An app served over HTTP/2 (hypercorn, h2c) whose producers report when they stop: to show
that closing an EventSource ends its stream on the server, not only on the client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from litestar import Litestar, get

from litestar_sse import ServerSentEvent

producers = {"started": 0, "stopped": 0, "last_stop": 0.0}


@get("/ticks")
async def ticks() -> ServerSentEvent:
    async def produce() -> AsyncIterator[str]:
        producers["started"] += 1
        try:
            while True:
                yield str(time.time())
                await asyncio.sleep(0.01)
        finally:
            producers["stopped"] += 1
            producers["last_stop"] = time.time()

    return ServerSentEvent(produce(), ping_interval=None)


@get("/hold")
async def hold() -> ServerSentEvent:
    async def produce() -> AsyncIterator[str]:
        while True:
            await asyncio.sleep(0.2)
            yield "still here"

    return ServerSentEvent(produce(), ping_interval=None)


@get("/state/{key:str}", sync_to_thread=False)
def state(key: str) -> dict[str, float]:
    return dict(producers)


app = Litestar([ticks, hold, state])
