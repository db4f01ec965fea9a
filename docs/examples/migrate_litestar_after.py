"""After: the same endpoint with ``litestar_sse``."""

import asyncio
from collections.abc import AsyncIterator

import msgspec
from litestar import Litestar, get

from litestar_sse import ServerSentEvent, ServerSentEventMessage  # both names, same package


class Score(msgspec.Struct):
    team: str
    points: int


async def release_lock() -> None:
    await asyncio.sleep(0)


async def scores() -> AsyncIterator[object]:
    try:
        for points in range(3):
            yield Score("blue", points)  # sent as JSON with the app's encoders
        yield ServerSentEventMessage(data="final", event="end")
    finally:
        await release_lock()  # a plain await: the generator is cancelled only once


@get("/scores")
async def stream_scores() -> ServerSentEvent:
    return ServerSentEvent(scores(), event_type="score", ping_interval=15, send_timeout=30)


app = Litestar([stream_scores])
