"""The app of the fault tests (``tests/soak/test_faults.py``), run by uvicorn in a subprocess.

Configured from the environment:

``FAULT_REDIS_URL``, ``FAULT_PREFIX``
    The broadcaster's Redis and key prefix. ``FAULT_BACKEND=memory`` (or no URL) uses an
    in-memory history instead.
``FAULT_PING``, ``FAULT_SEND_TIMEOUT``
    The app's ``ping_interval`` and ``send_timeout`` in seconds (empty: ``None``).
``FAULT_RETRY_MS``, ``FAULT_GRACE``
    The ``retry`` of the shutdown event, and the shutdown grace period.

Routes: ``GET /events?topic=`` subscribes, ``POST /publish/{topic}`` publishes the request
body (``{"id": ...}``, or the 503 of ``BackendUnavailableError``), ``GET /feed?name=`` streams
data without pause, ``GET /idle?name=`` only pings, and ``GET /stats`` tells how the named
streams ended (when, and why: ``send_timeout`` or ``disconnect``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery

from litestar_sse import (
    DisconnectReason,
    ServerSentEvent,
    ServerSentEventMessage,
    SSEConfig,
    SSEPlugin,
)
from litestar_sse.broadcast import Broadcaster, MemoryBackend
from litestar_sse.broadcast.types import BroadcastBackend


def _seconds(name: str, default: str) -> float | None:
    value = os.environ.get(name, default)
    return float(value) if value else None


def _backend() -> BroadcastBackend:
    url = os.environ.get("FAULT_REDIS_URL")
    if not url or os.environ.get("FAULT_BACKEND") == "memory":
        return MemoryBackend()
    from litestar_sse.broadcast import RedisStreamBackend

    return RedisStreamBackend(url, prefix=os.environ.get("FAULT_PREFIX", "faults:"))


STREAMS: dict[str, dict[str, Any]] = {}
"""What happened to each named ``/feed`` and ``/idle`` stream, by name (wall-clock times)."""


def tracked(content: AsyncIterator[str], record: dict[str, Any]) -> ServerSentEvent:
    """A stream that records when it ended and why (``on_disconnect``'s reason), in ``STREAMS``."""

    def gone(reason: DisconnectReason) -> None:
        record["ended"] = time.time()
        record["reason"] = reason

    return ServerSentEvent(content, on_disconnect=gone)


def _record(name: str) -> dict[str, Any]:
    record = STREAMS[name] = {"opened": time.time(), "last_yield": None, "sent": 0}
    record.update(ended=None, reason=None)
    return record


async def _feed(record: dict[str, Any], size: int, every: float) -> AsyncIterator[str]:
    chunk = "x" * size
    while True:
        # The send that follows the last yield is the one stuck once the buffers are full.
        record["last_yield"] = time.time()
        record["sent"] += size
        yield chunk
        await asyncio.sleep(every)


async def _nothing() -> AsyncIterator[str]:
    await asyncio.Event().wait()
    yield ""  # never reached: pings only


@get("/events")
async def events(
    request: Request[Any, Any, Any],
    topic: FromQuery[str],
    broadcaster: NamedDependency[Broadcaster],
) -> ServerSentEvent:
    return await broadcaster.subscribe(topic, connection=request)


@post("/publish/{topic:str}", status_code=201)
async def publish(
    request: Request[Any, Any, Any], topic: str, broadcaster: NamedDependency[Broadcaster]
) -> dict[str, str]:
    data = (await request.body()).decode()
    return {"id": await broadcaster.publish(topic, data)}


@get("/feed")
async def feed(name: str, size: int = 1024, every: float = 0.01) -> ServerSentEvent:
    record = _record(name)
    return tracked(_feed(record, size, every), record)


@get("/idle")
async def idle(name: str) -> ServerSentEvent:
    return tracked(_nothing(), _record(name))


@get("/stats")
async def stats(broadcaster: NamedDependency[Broadcaster]) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "open_streams": plugin.open_streams,
        "broadcast": dataclasses.asdict(broadcaster.stats()),
        "streams": STREAMS,
    }


plugin = SSEPlugin(
    SSEConfig(
        broadcaster=Broadcaster(_backend()),
        ping_interval=_seconds("FAULT_PING", "15"),
        send_timeout=_seconds("FAULT_SEND_TIMEOUT", ""),
        shutdown_event=ServerSentEventMessage(
            event="shutdown", data="restarting", retry=int(os.environ.get("FAULT_RETRY_MS", "1000"))
        ),
        shutdown_grace_period=float(os.environ.get("FAULT_GRACE", "5")),
    )
)
app = Litestar([events, publish, feed, idle, stats], plugins=[plugin])
