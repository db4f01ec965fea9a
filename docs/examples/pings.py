"""Idle pings keep a quiet stream alive through proxies; a send timeout drops stuck clients."""

import asyncio
from collections.abc import AsyncIterator

from litestar import Litestar, get

from litestar_sse import ServerSentEvent

PING_INTERVAL = 15.0  # seconds of silence before a ": ping" comment is sent
SEND_TIMEOUT = 30.0  # seconds one write may take before the client is given up
WORK_SECONDS = 60.0  # each step of the job is long and sends nothing meanwhile


async def slow_job() -> AsyncIterator[dict[str, object]]:
    for step in range(1, 4):
        await asyncio.sleep(WORK_SECONDS)
        yield {"event": "step", "data": step}


@get("/job")
async def job() -> ServerSentEvent:
    return ServerSentEvent(
        slow_job(),
        ping_interval=PING_INTERVAL,
        ping_message="keep-alive",
        send_timeout=SEND_TIMEOUT,
    )


app = Litestar([job])
