"""A first stream: a counter, one event per second."""

import asyncio
from collections.abc import AsyncIterator

from litestar import Litestar, get
from litestar.params import FromQuery

from litestar_sse import ServerSentEvent


async def count_up(limit: int) -> AsyncIterator[int]:
    for number in range(1, limit + 1):
        yield number  # each yield becomes one event: "data: 1", "data: 2", ...
        await asyncio.sleep(1)


@get("/count")
async def count(limit: FromQuery[int] = 5) -> ServerSentEvent:
    return ServerSentEvent(count_up(limit), event_type="count")


app = Litestar([count])
