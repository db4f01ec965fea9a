"""Before: Litestar's own ``litestar.response.ServerSentEvent``."""

import asyncio
from collections.abc import AsyncIterator

import msgspec
from litestar import Litestar, get
from litestar.response import ServerSentEvent, ServerSentEventMessage


class Score(msgspec.Struct):
    team: str
    points: int


async def release_lock() -> None:
    await asyncio.sleep(0)


async def scores() -> AsyncIterator[object]:
    try:
        for points in range(3):
            # Structured data had to be serialized by hand: a dict would arrive as its repr().
            yield msgspec.json.encode(Score("blue", points)).decode()
        yield ServerSentEventMessage(data="final", event="end")
    finally:
        # Disconnect is delivered as cancellation; cleanup that awaits needed a shield.
        await asyncio.shield(release_lock())


@get("/scores")
async def stream_scores() -> ServerSentEvent:
    return ServerSentEvent(scores(), event_type="score")


app = Litestar([stream_scores])
