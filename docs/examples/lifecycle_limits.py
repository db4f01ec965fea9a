"""Bounded streams: a connection limit, a maximum lifetime and a clean end at shutdown."""

import asyncio
from collections.abc import AsyncIterator

from litestar import Litestar, route

from litestar_sse import ServerSentEventMessage, SSEConfig, SSEPlugin, event_stream

config = SSEConfig(
    # The 501st open stream of this process is answered 503 with "Retry-After: 10".
    max_connections=500,
    retry_after=10,
    # Each stream ends after 30 minutes; the browser reconnects (to any server) at once.
    max_lifetime=30 * 60,
    lifetime_event=ServerSentEventMessage(data=None, retry=0, comment="lifetime reached"),
    # On SIGTERM or SIGINT every stream gets this event and the end of its body; those
    # still open 5 s later are cut.
    shutdown_event=ServerSentEventMessage(event="shutdown", data="restarting", retry=5_000),
    shutdown_grace_period=5,
)


@route("/feed", http_method=["GET", "HEAD"])
@event_stream
async def feed() -> AsyncIterator[int]:
    n = 0
    while True:
        n += 1
        yield n
        await asyncio.sleep(1)


app = Litestar([feed], plugins=[SSEPlugin(config)])
