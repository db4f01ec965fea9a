"""Response-level fields are defaults of every event: an item's own fields win."""

from collections.abc import AsyncIterator

from litestar import Litestar, get

from litestar_sse import ServerSentEvent, ServerSentEventMessage


async def updates() -> AsyncIterator[object]:
    yield "first"  # event: update, retry: 5000
    yield {"data": "second"}  # event: update, retry: 5000
    yield ServerSentEventMessage(data="done", event="end")  # event: end, retry: 5000


@get("/updates")
async def stream_updates() -> ServerSentEvent:
    return ServerSentEvent(updates(), event_type="update", retry_duration=5_000)


app = Litestar([stream_updates])
