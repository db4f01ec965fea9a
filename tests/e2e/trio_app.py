"""The app ``tests/e2e/test_trio_server.py`` serves with ``hypercorn -k trio``.

``/ticks`` sends an event every 0.3 s with pings every 0.1 s between them; its producer's
``finally`` (and ``on_disconnect``) write to the file named by ``SSE_TRIO_MARKS``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from litestar import Litestar, get

from litestar_sse import ServerSentEvent, SSEConfig, SSEPlugin, event_stream

MARKS = Path(os.environ.get("SSE_TRIO_MARKS", "/dev/null"))


def mark(text: str) -> None:
    with MARKS.open("a", encoding="utf-8") as out:
        out.write(text + "\n")


async def ticks() -> AsyncIterator[int]:
    import sniffio

    mark(f"library {sniffio.current_async_library()}")
    try:
        for number in range(1000):
            yield number
            await anyio.sleep(0.3)
    finally:
        mark("finally")


@get("/ticks")
async def ticks_route() -> ServerSentEvent:
    return ServerSentEvent(
        ticks(), ping_interval=0.1, send_timeout=5, on_disconnect=lambda reason: mark(reason)
    )


@get("/plugin")
@event_stream()
async def plugin_route() -> AsyncIterator[str]:
    for word in ("a", "b", "c"):
        yield word


app = Litestar([ticks_route, plugin_route], plugins=[SSEPlugin(SSEConfig(ping_interval=None))])
