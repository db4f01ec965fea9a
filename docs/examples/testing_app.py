"""The app the testing examples test: an endless, resumable ticker and a quiet stream."""

import asyncio
from collections.abc import AsyncIterator

from litestar import Litestar, get
from litestar.di import NamedDependency
from litestar.params import FromQuery

from litestar_sse import ServerSentEventMessage, SSEConfig, SSEPlugin, event_stream


@get("/ticks")
@event_stream
async def ticks(
    last_event_id: NamedDependency[str | None], limit: FromQuery[int | None] = None
) -> AsyncIterator[ServerSentEventMessage]:
    """One tick every 10 ms, forever unless ``limit`` is given; resumes after the last id."""
    n = int(last_event_id) if last_event_id and last_event_id.isdecimal() else 0
    end = None if limit is None else n + limit
    while end is None or n < end:
        n += 1
        yield ServerSentEventMessage(data=f"tick {n}", event="tick", id=n)
        await asyncio.sleep(0.01)


@get("/quiet", response_headers={"X-Room": "quiet"})
@event_stream
async def quiet() -> AsyncIterator[str]:
    """One event, then silence: only pings from then on."""
    yield "hello"
    await asyncio.sleep(3600)


def create_app(ping_interval: float = 15.0) -> Litestar:
    return Litestar([ticks, quiet], plugins=[SSEPlugin(SSEConfig(ping_interval=ping_interval))])


app = create_app()
