"""Producers that misbehave, served by a real uvicorn (``tests.e2e.producer_app:app``).

Each stream records what happened to it under a key chosen by the test (``GET /state/{key}``);
``POST /release/{key}`` unblocks a producer that is blocked in a worker thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from litestar import Litestar, Request, get, post

from litestar_sse import ServerSentEvent

PING_INTERVAL = 0.2

_lock = threading.Lock()
STATE: dict[str, dict[str, Any]] = {}
RELEASE: dict[str, threading.Event] = {}


def _record(request: Request[Any, Any, Any]) -> tuple[str, dict[str, Any]]:
    key = str(request.path_params["key"])
    with _lock:
        RELEASE.setdefault(key, threading.Event())
        return key, STATE.setdefault(
            key, {"started": False, "yielded": 0, "finally": None, "on_disconnect": 0}
        )


def _response(record: dict[str, Any], source: Any) -> ServerSentEvent:
    def on_disconnect() -> None:
        record["on_disconnect"] += 1

    return ServerSentEvent(source, ping_interval=PING_INTERVAL, on_disconnect=on_disconnect)


@get("/state/{key:str}", sync_to_thread=False)
def state(request: Request[Any, Any, Any]) -> dict[str, Any]:
    key = str(request.path_params["key"])
    with _lock:
        return dict(STATE.get(key, {}))


@post("/release/{key:str}", sync_to_thread=False, status_code=204)
def release(request: Request[Any, Any, Any]) -> None:
    _record(request)
    RELEASE[str(request.path_params["key"])].set()


@get("/raises-at-once/{key:str}")
async def raises_at_once(request: Request[Any, Any, Any]) -> ServerSentEvent:
    key, record = _record(request)

    async def events() -> AsyncIterator[str]:
        record["started"] = True
        await asyncio.sleep(0.3)  # long enough for a ping or two before the error
        raise RuntimeError(f"async-boom-{key}")
        yield "never"  # pragma: no cover

    return _response(record, events())


@get("/raises-in-thread/{key:str}")
async def raises_in_thread(request: Request[Any, Any, Any]) -> ServerSentEvent:
    key, record = _record(request)

    def events() -> Iterator[str]:
        record["started"] = True
        yield "one"
        record["yielded"] += 1
        raise RuntimeError(f"thread-boom-{key}")

    return _response(record, events())


@get("/never-yields/{key:str}")
async def never_yields(request: Request[Any, Any, Any]) -> ServerSentEvent:
    _, record = _record(request)

    async def events() -> AsyncIterator[str]:
        record["started"] = True
        try:
            await asyncio.Event().wait()
            yield "never"  # pragma: no cover
        finally:
            record["finally"] = time.time()

    return _response(record, events())


@get("/blocks-in-thread/{key:str}")
async def blocks_in_thread(request: Request[Any, Any, Any]) -> ServerSentEvent:
    key, record = _record(request)
    released = RELEASE[key]

    def events() -> Iterator[str]:
        record["started"] = True
        try:
            yield "before"
            record["yielded"] += 1
            released.wait(timeout=30)  # a blocking call: a queue, a socket, a slow query
            yield "after"  # the worker is closed here if the client left meanwhile
            record["yielded"] += 1
        finally:
            record["finally"] = time.time()
            record["finally_thread"] = threading.current_thread().name

    return _response(record, events())


app = Litestar([state, release, raises_at_once, raises_in_thread, never_yields, blocks_in_thread])
