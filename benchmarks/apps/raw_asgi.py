"""The floor: a hand-written ASGI app sending pre-formatted SSE bytes, one send per event.

It runs the same handler generator as everybody else and adds nothing but the formatting and
the ASGI messages, so the distance of a framework to it is the framework's own cost.
"""

from __future__ import annotations

from benchmarks.apps import ASGIApp, Message, Receive, Scope, Send
from benchmarks.workload import (
    DEFAULT_COUNT,
    JSON_ENCODER,
    Payload,
    Source,
    StreamSpec,
    async_items,
    item_struct,
    query_count,
    sync_items,
)

HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def check() -> None:
    """Always importable: nothing beyond the standard library and msgspec."""


def _object_event(i: int) -> bytes:
    return b"data: " + JSON_ENCODER.encode(item_struct(i)) + b"\r\n\r\n"


def _int_event(i: int) -> bytes:
    return b"data: %d\r\n\r\n" % i


async def _lifespan(receive: Receive, send: Send) -> None:
    # uvicorn's default lifespan="auto" logs a traceback for apps that ignore lifespan.
    for _ in range(2):
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def build(spec: StreamSpec, variant: str = "") -> ASGIApp:
    """Keep-alive pings are not part of the floor: ``spec.ping`` is ignored on purpose."""
    fmt = _object_event if spec.payload is Payload.OBJECT else _int_event
    start: Message = {"type": "http.response.start", "status": 200, "headers": HEADERS}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        n = query_count(scope.get("query_string", b""), DEFAULT_COUNT)
        await send(start)
        if spec.idle:
            await send({"type": "http.response.body", "body": fmt(0), "more_body": True})
            # Hold the stream open, without pings, until the client leaves. Bounded: uvicorn
            # sends one http.request, then http.disconnect.
            for _ in range(1000):
                if (await receive())["type"] == "http.disconnect":
                    return
        elif spec.source is Source.SYNC:
            # Iterated inline: the floor for a generator that never blocks.
            for data in sync_items(n, fmt):
                await send({"type": "http.response.body", "body": data, "more_body": True})
        else:
            async for data in async_items(n, fmt):
                await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app
