"""Response-level fields apply to every plain item; dicts and messages carry their own."""

from collections.abc import AsyncIterator

from litestar import Litestar, get

from litestar_sse import ServerSentEvent, ServerSentEventMessage


async def updates() -> AsyncIterator[object]:
    yield "first"  # event: update, retry: 5000
    yield "second"  # event: update, retry: 5000
    yield ServerSentEventMessage(data="done", event="end")  # only its own fields


@get("/updates")
async def stream_updates() -> ServerSentEvent:
    return ServerSentEvent(updates(), event_type="update", retry_duration=5_000)


app = Litestar([stream_updates])
