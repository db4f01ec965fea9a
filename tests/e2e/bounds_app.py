"""The app of the hard-bounds tests: a cleanup that hangs, a flood for clients that do not read,
slow ticks for clients that read a byte now and then. Settings come from the environment."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, get

from litestar_sse import SSEConfig, SSEPlugin, event_stream
from litestar_sse._plugin.config import get_app_sse
from litestar_sse.asgi._counters import COUNTERS


def _seconds(name: str, default: str) -> float | None:
    value = os.environ.get(name, default)
    return None if value == "none" else float(value)


CLEANUPS = {"started": 0, "finished": 0}


@get("/hung")
@event_stream
async def hung() -> AsyncIterator[str]:
    """One event, then idle; its cleanup awaits something that never returns."""
    try:
        yield "hello"
        await asyncio.Event().wait()
        yield "never"
    finally:
        CLEANUPS["started"] += 1
        await asyncio.Event().wait()  # a lost lock, a call without a timeout
        CLEANUPS["finished"] += 1


@get("/flood")
@event_stream
async def flood() -> AsyncIterator[str]:
    """Events as fast as the client takes them: a client that does not read blocks a send."""
    chunk = "x" * 16384
    while True:
        yield chunk


@get("/ticks")
@event_stream
async def ticks() -> AsyncIterator[str]:
    """A small event every 50 ms, as a live feed sends."""
    n = 0
    while True:
        yield f"{n:06d}" + "." * 200
        n += 1
        await asyncio.sleep(0.05)


@get("/state", sync_to_thread=False)
def state(request: Any) -> dict[str, Any]:
    sse = get_app_sse(request)
    assert sse is not None
    return {
        "open": len(sse.registry),
        "cleanups": CLEANUPS,
        "cleanups_cut": COUNTERS.cleanups_cut,
        "stops": COUNTERS.stops,
    }


config = SSEConfig(
    ping_interval=None,
    send_timeout=_seconds("SSE_SEND_TIMEOUT", "30"),
    cleanup_timeout=_seconds("SSE_CLEANUP_TIMEOUT", "5"),
    max_lifetime=_seconds("SSE_MAX_LIFETIME", "3600"),
    shutdown_grace_period=float(os.environ.get("SSE_GRACE", "1")),
    max_connections=int(os.environ.get("SSE_MAX_CONNECTIONS", "1000")),
)
app = Litestar([hung, flood, ticks, state], plugins=[SSEPlugin(config)])
