"""The app the end-to-end tests run under a real uvicorn (``tests.e2e.apps:app``).

Each stream records what happened to it under a key chosen by the test; ``GET /state/{key}``
returns that record, so a test can see server-side cleanup from the client side.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from litestar import Litestar, Request, get, route

from litestar_sse import RawEvent, ServerSentEvent, ServerSentEventMessage

PING_INTERVAL = 0.2
FLOOD_EVENT_SIZE = 64 * 1024
SEND_TIMEOUT = 0.5

_lock = threading.Lock()
STATE: dict[str, dict[str, Any]] = {}


def _key(request: Request[Any, Any, Any]) -> str:
    # Read by hand: inferred parameters are deprecated in recent Litestar.
    return str(request.path_params["key"])


def _state(key: str) -> dict[str, Any]:
    with _lock:
        return STATE.setdefault(
            key,
            {
                "started": False,
                "sent": 0,
                "finally": False,
                "cleanup_awaited": False,
                "on_disconnect": 0,
                "finally_thread": None,
                "stalled_since": None,
                "closed_at": None,
            },
        )


@get("/state/{key:str}", sync_to_thread=False)
def state(request: Request[Any, Any, Any]) -> dict[str, Any]:
    key = _key(request)
    with _lock:
        return dict(STATE.get(key, {}))


@get("/sse/disconnect/{key:str}")
async def disconnect_async(request: Request[Any, Any, Any]) -> ServerSentEvent:
    key = _key(request)
    record = _state(key)

    async def events() -> AsyncIterator[int]:
        record["started"] = True
        try:
            i = 0
            while True:
                yield i
                record["sent"] += 1
                i += 1
                await asyncio.sleep(0.05)
        finally:
            record["finally"] = True
            await asyncio.sleep(0.02)  # cleanup that awaits, after the client left
            record["cleanup_awaited"] = True

    def on_disconnect() -> None:
        record["on_disconnect"] += 1

    return ServerSentEvent(events(), on_disconnect=on_disconnect)


@get("/sse/disconnect-sync/{key:str}")
async def disconnect_sync(request: Request[Any, Any, Any]) -> ServerSentEvent:
    key = _key(request)
    record = _state(key)

    def events() -> Iterator[int]:
        record["started"] = True
        try:
            i = 0
            while True:
                time.sleep(0.05)  # a blocking producer, run in the worker thread
                yield i
                record["sent"] += 1
                i += 1
        finally:
            record["finally_thread"] = threading.current_thread().name
            record["finally"] = True

    async def on_disconnect() -> None:
        await asyncio.sleep(0)
        record["on_disconnect"] += 1

    return ServerSentEvent(events(), on_disconnect=on_disconnect)


@get("/sse/idle")
async def idle() -> ServerSentEvent:
    async def events() -> AsyncIterator[str]:
        yield "hello"
        await asyncio.Event().wait()
        yield "never"  # pragma: no cover

    return ServerSentEvent(events(), ping_interval=PING_INTERVAL)


@get("/sse/busy")
async def busy() -> ServerSentEvent:
    async def events() -> AsyncIterator[int]:
        for i in range(30):
            yield i
            await asyncio.sleep(0.05)

    return ServerSentEvent(events(), ping_interval=PING_INTERVAL)


@get("/sse/flood/{key:str}")
async def flood(request: Request[Any, Any, Any]) -> ServerSentEvent:
    key = _key(request)
    record = _state(key)
    payload = "x" * FLOOD_EVENT_SIZE

    async def events() -> AsyncIterator[str]:
        record["started"] = True
        try:
            while True:
                record["stalled_since"] = time.time()  # updated until a send blocks for good
                yield payload
                record["sent"] += 1
        finally:
            record["closed_at"] = time.time()
            record["finally"] = True

    return ServerSentEvent(events(), send_timeout=SEND_TIMEOUT, ping_interval=5)


@get("/sse/error/{key:str}")
async def error(request: Request[Any, Any, Any]) -> ServerSentEvent:
    key = _key(request)

    async def events() -> AsyncIterator[str]:
        yield "one"
        await asyncio.sleep(0.01)
        yield "two"
        raise RuntimeError(f"boom-{key}")

    return ServerSentEvent(events())


MIXED: list[Any] = [
    "plain",
    "multi\nline\r\ndata\rhere",
    "caf\u00e9 \u2028 \U0001f600",
    7,
    {"data": {"json": [1, 2]}, "event": "obj", "id": "id-1"},
    ServerSentEventMessage(data="msg", event="m", retry=2500, comment="note"),
    RawEvent("event: raw\r\ndata: verbatim\r\n\r\n"),
    ["a", None, True],
    ": not a comment",
]


@get("/sse/mixed")
async def mixed(request: Request[Any, Any, Any]) -> ServerSentEvent:
    sep = request.query_params.get("sep", "crlf")
    separator = {"crlf": "\r\n", "lf": "\n", "cr": "\r"}[sep]

    async def events() -> AsyncIterator[Any]:
        for item in MIXED:
            yield item
            await asyncio.sleep(0)

    return ServerSentEvent(events(), event_type="tick", sep=separator)


@route("/sse/head/{key:str}", http_method=["GET", "HEAD"])
async def head(request: Request[Any, Any, Any]) -> ServerSentEvent:
    key = _key(request)
    record = _state(key)

    async def events() -> AsyncIterator[int]:
        record["started"] = True
        while True:
            yield 1
            await asyncio.sleep(0.05)

    return ServerSentEvent(events())


app = Litestar(
    [state, disconnect_async, disconnect_sync, idle, busy, flood, error, mixed, head],
)
