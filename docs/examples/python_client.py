"""Reading a stream from Python: litestar_sse.client (pip install 'litestar-sse[client]')."""

import httpx

from litestar_sse.client import Event, EventSource


async def read_events(client: httpx.AsyncClient, url: str) -> list[Event[str]]:
    # reconnect=False: this stream ends when it is done, instead of being resumed.
    async with EventSource(url, client=client, reconnect=False) as source:
        # Each event is yielded as soon as its blank line arrives.
        return [event async for event in source if isinstance(event, Event)]
