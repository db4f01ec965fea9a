"""Generator handlers: the handler yields, and each item it yields becomes one event."""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
from litestar import Litestar, get

from litestar_sse import ServerSentEventMessage, SSEPlugin, event_stream


class Quote(msgspec.Struct):
    symbol: str
    price: float


# Rows as a database driver or an HTTP client hands them over: plain dicts.
ROWS: list[Any] = [{"symbol": "INIT", "price": 1.1}]


@get("/ticks")
@event_stream
async def ticks() -> AsyncIterator[int]:
    for n in range(3):
        yield n  # data: 0, data: 1, data: 2


@get("/lines", media_type="text/event-stream", sync_to_thread=False)
def lines() -> Iterator[str]:
    # The other marker, on a sync generator: iterated in a worker thread.
    yield "first"
    yield "second"


@get("/quotes")
@event_stream
async def quotes() -> AsyncIterator[Quote | ServerSentEventMessage]:
    yield Quote("ACME", 12.5)  # a Quote: sent as JSON
    for row in ROWS:
        yield row  # not a Quote: converted (and validated) first, then sent as JSON
    yield ServerSentEventMessage(event="close", data="market closed")  # sent as it is


app = Litestar([ticks, lines, quotes], plugins=[SSEPlugin()])
