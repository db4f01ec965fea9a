"""An LLM-style stream: a POST with a JSON body, a header, and the caller's own client."""

import httpx

from litestar_sse.client import Event, EventSource


async def complete(client: httpx.AsyncClient, prompt: str) -> str:
    async with EventSource(
        "/v1/completions",
        method="POST",  # not idempotent: never sent twice unless reconnect=True
        json={"prompt": prompt, "stream": True},
        headers={"Authorization": "Bearer sk-..."},
        client=client,  # its base URL, pool, HTTP/2 and timeouts
    ) as source:
        tokens = [
            event.json()["token"]
            async for event in source
            if isinstance(event, Event) and event.data != "[DONE]"
        ]
    return "".join(tokens)
