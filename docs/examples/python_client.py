"""Reading a stream from Python with httpx and the package's own decoder."""

import httpx

from litestar_sse.codec import DecodedEvent, aiter_events


async def read_events(client: httpx.AsyncClient, url: str) -> list[DecodedEvent]:
    async with client.stream("GET", url, headers={"Accept": "text/event-stream"}) as response:
        response.raise_for_status()
        # Each event is yielded as soon as its blank line arrives.
        return [event async for event in aiter_events(response.aiter_bytes())]
