"""The app of the hostile-clients soak test (``tests.soak.hostile_app:app``), under uvicorn.

A broadcaster on Redis with the library's defaults (``max_queue_bytes`` 1 MiB, ``max_topics``
100, ``publish_timeout`` 2 s, ``watch_timeout`` 10 s; the plugin's ``send_timeout`` 30 s)
except for one setting: ``overflow="drop_oldest"``, so that subscribers that stop reading stay
subscribed (and hold what the limits let them hold) until ``send_timeout`` cuts them, rather
than being disconnected as soon as they fall behind.

Configured from the environment: ``HOSTILE_REDIS_URL`` and ``HOSTILE_PREFIX`` (required), and
``HOSTILE_SEND_TIMEOUT`` (seconds; empty for ``None``; the plugin's default when unset).

* ``GET /events?topic=a&topic=b`` subscribes (``Last-Event-ID`` resumes);
* ``POST /publish/{topic}`` publishes the request body, with the ``Idempotency-Key`` header
  as its key if there is one: ``{"id": ...}``, or the ``503`` of the backend's errors;
* ``GET /health``: a constant answer, touching neither Redis nor the streams;
* ``GET /stats``: open streams, broadcast counters, asyncio tasks, threads, VmRSS; with
  ``?gc=1`` after a ``gc.collect()`` and a ``malloc_trim(0)`` (for the baseline readings only:
  a full collection pauses the server).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import dataclasses
import gc
import os
import threading
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, get, post
from litestar.params import FromQuery

from benchmarks.processes import raise_fd_limit
from litestar_sse import ServerSentEvent, SSEConfig, SSEPlugin
from litestar_sse.broadcast import Broadcaster, RedisStreamBackend

raise_fd_limit()

broadcaster = Broadcaster(
    RedisStreamBackend(os.environ["HOSTILE_REDIS_URL"], prefix=os.environ["HOSTILE_PREFIX"]),
    overflow="drop_oldest",
)

_config: dict[str, Any] = {}
if "HOSTILE_SEND_TIMEOUT" in os.environ:
    _value = os.environ["HOSTILE_SEND_TIMEOUT"]
    _config["send_timeout"] = float(_value) if _value else None
plugin = SSEPlugin(SSEConfig(broadcaster=broadcaster, **_config))


@get("/events")
async def events(request: Request[Any, Any, Any], topic: FromQuery[list[str]]) -> ServerSentEvent:
    return await broadcaster.subscribe(topic, connection=request)


@post("/publish/{topic:str}", status_code=201)
async def publish(request: Request[Any, Any, Any], topic: str) -> dict[str, str]:
    data = (await request.body()).decode()
    key = request.headers.get("idempotency-key")
    return {"id": await broadcaster.publish(topic, data, idempotency_key=key)}


@get("/health", sync_to_thread=False)
def health() -> dict[str, bool]:
    return {"ok": True}


def _status(name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {name} in /proc/self/status")


def _malloc_trim() -> None:
    """Hand malloc's free pages back to the system (glibc), so that RSS follows live memory."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)


@get("/stats", sync_to_thread=False)
def stats(request: Request[Any, Any, Any]) -> dict[str, Any]:
    if request.query_params.get("gc") == "1":
        gc.collect()
        _malloc_trim()
    counters = dataclasses.asdict(broadcaster.stats())
    return {
        "pid": os.getpid(),
        "open_streams": plugin.open_streams,
        "subscribers": sum(counters["subscribers"].values()),
        "subscribers_by_topic": {
            topic: count for topic, count in counters.pop("subscribers").items() if count
        },
        "broadcast": counters,
        "tasks": len(asyncio.all_tasks()),
        "threads": _status("Threads"),
        "python_threads": threading.active_count(),
        "rss_kib": _status("VmRSS"),
    }


app = Litestar([events, publish, health, stats], plugins=[plugin])
