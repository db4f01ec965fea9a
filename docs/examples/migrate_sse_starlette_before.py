"""Before: sse-starlette on Starlette."""

import asyncio
import json
from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Message


async def on_close(message: Message) -> None:
    print("client closed the stream")


async def ticker(request: Request) -> AsyncIterator[object]:
    for number in range(3):
        if await request.is_disconnected():
            break
        yield ServerSentEvent(data=str(number), event="tick", id=str(number))
        await asyncio.sleep(0)
    yield {"event": "summary", "data": json.dumps({"ticks": 3})}
    yield b": raw bytes are written as they are\r\n\r\n"


async def ticks(request: Request) -> EventSourceResponse:
    return EventSourceResponse(
        ticker(request), ping=15, send_timeout=30, client_close_handler_callable=on_close
    )


app = Starlette(routes=[Route("/ticks", ticks)])
