"""Tell the client when the producer fails, instead of just ending the stream."""

from collections.abc import AsyncIterator

from litestar import Litestar, get

from litestar_sse import ServerSentEvent, ServerSentEventMessage


async def fetch_pages() -> AsyncIterator[str]:
    yield "page 1"
    raise ConnectionError("upstream went away")


async def pages_or_error() -> AsyncIterator[object]:
    try:
        async for page in fetch_pages():
            yield page
    except ConnectionError:
        # A named event the page listens for; retry tells EventSource to wait a minute
        # before reconnecting.
        yield ServerSentEventMessage(data="upstream unavailable", event="error", retry=60_000)


@get("/pages")
async def pages() -> ServerSentEvent:
    return ServerSentEvent(pages_or_error())


app = Litestar([pages])
