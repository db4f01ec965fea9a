"""The app served by the shutdown tests: endless streams and a final event at shutdown."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from litestar import Litestar, get

from litestar_sse import ServerSentEventMessage, SSEConfig, SSEPlugin, event_stream


@get("/events")
@event_stream
async def events() -> AsyncIterator[int]:
    """One event at once, then nothing: a stream that never ends by itself."""
    yield 0
    while True:
        await asyncio.sleep(3600)
        yield 1


@get("/flood")
@event_stream
async def flood() -> AsyncIterator[str]:
    """Events as fast as the client reads: a client that stops reading blocks a send."""
    chunk = "x" * 65536
    while True:
        yield chunk


config = SSEConfig(
    ping_interval=None,
    shutdown_event=ServerSentEventMessage(event="shutdown", data="bye", retry=5000),
    shutdown_grace_period=float(os.environ.get("SSE_GRACE", "2")),
    install_signal_handlers=os.environ.get("SSE_SIGNALS", "1") == "1",
)
app = Litestar([events, flood], plugins=[SSEPlugin(config)])
