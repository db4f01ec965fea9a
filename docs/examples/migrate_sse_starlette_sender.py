"""sse-starlette's ``data_sender_callable`` and ``shutdown_event``, the litestar-sse way."""

import asyncio
from collections.abc import AsyncIterator

from litestar import Litestar, get

from litestar_sse import ServerSentEventMessage, SSEConfig, SSEPlugin, event_stream


async def run_job(queue: asyncio.Queue[int | None]) -> None:
    """What ``data_sender_callable`` did: produce on its own, here into a bounded queue."""
    for percent in (0, 50, 100):
        await queue.put(percent)  # waits while the client is 10 events behind
        await asyncio.sleep(0)
    await queue.put(None)  # done


@get("/jobs/progress")
@event_stream
async def progress() -> AsyncIterator[ServerSentEventMessage]:
    queue: asyncio.Queue[int | None] = asyncio.Queue(maxsize=10)
    sender = asyncio.create_task(run_job(queue))
    try:
        while (percent := await queue.get()) is not None:
            yield ServerSentEventMessage(data=percent, event="progress")
    finally:
        # The client left, the stream ended or the server is shutting down: the sender stops.
        sender.cancel()


# No flag for the generator to watch: at shutdown every open stream gets this closing event
# after the event it is sending, then the end of its body, and its generator is closed.
config = SSEConfig(
    shutdown_event=ServerSentEventMessage(event="shutdown", data="", retry=5_000),
    shutdown_grace_period=5,
)
app = Litestar([progress], plugins=[SSEPlugin(config)])
