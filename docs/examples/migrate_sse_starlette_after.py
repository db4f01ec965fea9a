"""After: the same endpoint with ``litestar_sse``."""

import asyncio
from collections.abc import AsyncIterator

from litestar import Litestar, get

from litestar_sse import RawEvent, ServerSentEvent, ServerSentEventMessage


def on_close() -> None:
    print("client closed the stream")


async def ticker() -> AsyncIterator[object]:
    # No is_disconnected() polling: a disconnect cancels the generator where it waits.
    for number in range(3):
        yield ServerSentEventMessage(data=number, event="tick", id=number)
        await asyncio.sleep(0)
    yield {"event": "summary", "data": {"ticks": 3}}  # non-str data is sent as JSON
    yield RawEvent(b": raw bytes are written as they are\r\n\r\n")  # plain bytes are data


@get("/ticks")
async def ticks() -> ServerSentEvent:
    return ServerSentEvent(ticker(), ping_interval=15, send_timeout=30, on_disconnect=on_close)


app = Litestar([ticks])
