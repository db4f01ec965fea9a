"""httpx-sse: parse a stream; reconnecting and resuming are left to the caller."""

import httpx
from httpx_sse import aconnect_sse


async def tokens(client: httpx.AsyncClient, url: str) -> list[str]:
    async with aconnect_sse(client, "POST", url, json={"prompt": "hi"}) as event_source:
        event_source.response.raise_for_status()
        return [sse.json()["token"] async for sse in event_source.aiter_sse()]
