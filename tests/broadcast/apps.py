"""The app of the multi-process tests: one Redis-backed broadcaster per uvicorn process.

Configured from the environment: ``BROADCAST_REDIS_URL``, ``BROADCAST_PREFIX`` and
``BROADCAST_PUBLISH_TIMEOUT`` (seconds). ``POST /publish/{topic}`` passes an
``Idempotency-Key`` request header on to ``publish``. Run as
``uvicorn tests.broadcast.apps:app`` from the repository root.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request, get, post
from litestar.params import FromQuery

from litestar_sse import ServerSentEvent
from litestar_sse.broadcast import Broadcaster, RedisStreamBackend

broadcaster = Broadcaster(
    RedisStreamBackend(
        os.environ["BROADCAST_REDIS_URL"],
        prefix=os.environ.get("BROADCAST_PREFIX", "apps:"),
        publish_timeout=float(os.environ.get("BROADCAST_PUBLISH_TIMEOUT", "2")),
    )
)


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    async with broadcaster:
        yield


@get("/events")
async def events(request: Request[Any, Any, Any], topic: FromQuery[list[str]]) -> ServerSentEvent:
    return await broadcaster.subscribe(topic, connection=request)


@post("/publish/{topic:str}")
async def publish(request: Request[Any, Any, Any], topic: str) -> dict[str, str]:
    data = (await request.body()).decode()
    key = request.headers.get("idempotency-key")
    return {"id": await broadcaster.publish(topic, data, idempotency_key=key)}


@get("/stats")
async def stats() -> dict[str, Any]:
    return {"pid": os.getpid(), "subscribers": broadcaster.stats().subscribers}


app = Litestar([events, publish, stats], lifespan=[lifespan])
