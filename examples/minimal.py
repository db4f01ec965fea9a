"""The smallest useful stream: a counter.

Run it and watch it::

    .venv/bin/uvicorn examples.minimal:app
    curl -N http://127.0.0.1:8000/count

or open http://127.0.0.1:8000 in a browser.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from litestar import Litestar, MediaType, get
from litestar.params import FromQuery

from litestar_sse import ServerSentEvent

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>litestar-sse: counter</title>
<link rel="icon" href="data:,">
<h1>Count: <output id="count">…</output></h1>
<script>
  const source = new EventSource("/count");
  source.onmessage = (event) => {
    document.getElementById("count").textContent = event.data;
  };
</script>
"""


async def counter(limit: int | None, interval: float) -> AsyncIterator[int]:
    number = 0
    while limit is None or number < limit:
        number += 1
        yield number
        await asyncio.sleep(interval)


@get("/count")
async def count(
    limit: FromQuery[int | None] = None, interval: FromQuery[float] = 1.0
) -> ServerSentEvent:
    """Count up forever, one event per ``interval`` seconds (``?limit=N`` to stop at N)."""
    return ServerSentEvent(counter(limit, interval), ping_interval=15)


@get("/", media_type=MediaType.HTML)
async def index() -> str:
    return PAGE


app = Litestar([count, index])
