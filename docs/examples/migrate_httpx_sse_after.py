"""litestar_sse.client: the same reading; statuses, Content-Type and limits are checked."""

import httpx

from litestar_sse.client import Event, EventSource


async def tokens(client: httpx.AsyncClient, url: str) -> list[str]:
    async with EventSource(url, client=client, method="POST", json={"prompt": "hi"}) as source:
        return [event.json()["token"] async for event in source if isinstance(event, Event)]
