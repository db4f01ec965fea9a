"""The broadcast app that ``benchmarks/slow_subscribers.py`` and the soak test run under uvicorn.

``uvicorn benchmarks.slow_subscribers_app:app``, configured from the environment:
``SLOW_REDIS_URL`` (the Redis backend, else the in-memory one), ``SLOW_PREFIX`` (its key
prefix), ``SLOW_OVERFLOW`` (the overflow policy, ``drop_oldest`` by default so that clients
that stop reading stay connected) and ``SLOW_MAX_CONNECTIONS``. Every other setting is the
default, send timeout excepted: it is off, so that nothing but the broadcaster's own limits
bounds what a client that stops reading costs.

* ``GET /events?topic=a&topic=b`` subscribes (``Last-Event-ID`` resumes);
* ``POST /publish?topic=a&count=300&size=32768`` publishes ``count`` events of ``size`` bytes
  to each topic, and returns the last id;
* ``GET /state`` gives the process id and the broadcaster's counters.
"""

from __future__ import annotations

import os
from typing import Any

from litestar import Litestar, Request, get, post
from litestar.params import FromQuery

from litestar_sse import ServerSentEvent, SSEConfig, SSEPlugin
from litestar_sse.broadcast import Broadcaster, MemoryBackend
from litestar_sse.broadcast.types import BroadcastBackend

_redis_url = os.environ.get("SLOW_REDIS_URL")
backend: BroadcastBackend
if _redis_url:
    from litestar_sse.broadcast import RedisStreamBackend

    backend = RedisStreamBackend(_redis_url, prefix=os.environ.get("SLOW_PREFIX", "slow:"))
else:
    backend = MemoryBackend()

broadcaster = Broadcaster(
    backend,
    overflow="disconnect" if os.environ.get("SLOW_OVERFLOW") == "disconnect" else "drop_oldest",
)
_max_connections = os.environ.get("SLOW_MAX_CONNECTIONS")


@get("/events")
async def events(request: Request[Any, Any, Any], topic: FromQuery[list[str]]) -> ServerSentEvent:
    return await broadcaster.subscribe(topic, connection=request)


@post("/publish")
async def publish(topic: FromQuery[list[str]], count: int, size: int) -> dict[str, str]:
    payload = "x" * size
    last = ""
    for index in range(count):
        for name in topic:
            last = await broadcaster.publish(name, f"{index}:{payload}")
    return {"last": last}


@get("/state", sync_to_thread=False)
def state() -> dict[str, int]:
    stats = broadcaster.stats()
    return {
        "pid": os.getpid(),
        "subscribers": sum(stats.subscribers.values()),
        "delivered": stats.delivered,
        "dropped": stats.dropped,
        "disconnected": stats.disconnected,
    }


app = Litestar(
    [events, publish, state],
    plugins=[
        SSEPlugin(
            SSEConfig(
                broadcaster=broadcaster,
                send_timeout=None,
                max_connections=int(_max_connections) if _max_connections else None,
            )
        )
    ],
)
