"""The first stream again, as a generator handler: the handler itself yields the events."""

import asyncio
from collections.abc import AsyncIterator

from litestar import Litestar, get
from litestar.params import FromQuery

from litestar_sse import ServerSentEventMessage, SSEPlugin, event_stream


@get("/count")
@event_stream
async def count(limit: FromQuery[int] = 5) -> AsyncIterator[ServerSentEventMessage]:
    for number in range(1, limit + 1):
        yield ServerSentEventMessage(data=number, event="count")
        await asyncio.sleep(1)


app = Litestar([count], plugins=[SSEPlugin()])
