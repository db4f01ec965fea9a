"""Everything a stream may yield, and the event each item becomes."""

from collections.abc import Iterator

import msgspec
from litestar import Litestar, get

from litestar_sse import RawEvent, ServerSentEvent, ServerSentEventMessage


class Price(msgspec.Struct):
    symbol: str
    value: float


def every_kind() -> Iterator[object]:
    yield 42  # data: 42
    yield "two\nlines"  # data: two / data: lines  (the client joins them with "\n")
    yield "café".encode()  # bytes are UTF-8 text: data: café
    yield {"data": "hello", "event": "greeting", "id": "1"}  # the fields of one event
    yield ServerSentEventMessage(data="bye", event="greeting", id="2", retry=10_000)
    yield RawEvent("event: raw\ndata: written as is\n\n")  # no framing, no checks
    yield Price("ACME", 12.5)  # typed objects are sent as JSON: data: {"symbol":...}


@get("/kinds", sync_to_thread=False)
def kinds() -> ServerSentEvent:
    return ServerSentEvent(every_kind())


app = Litestar([kinds])
