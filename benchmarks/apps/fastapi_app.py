"""FastAPI 0.165's ``fastapi.sse``: a generator path operation with
``response_class=EventSourceResponse``; FastAPI validates and JSON-encodes each item itself.

FastAPI always inserts keep-alive comments after 15 s of silence (the private
``fastapi.routing._PING_INTERVAL``) and offers no setting, so "default" and "ping 15 s" are the
same app. Other intervals (the idle scenario's 1 s) patch that private constant: the only way.
"""

# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at
# decoration time and must resolve them to real types.
from collections.abc import AsyncIterable, Iterable

from benchmarks.apps import PATH, ASGIApp
from benchmarks.workload import DEFAULT_COUNT, Payload, Source, StreamSpec, item_fields

FASTAPI_DEFAULT_PING = 15.0


def check() -> None:
    from fastapi.sse import EventSourceResponse  # noqa: F401


def build(spec: StreamSpec, variant: str = "") -> ASGIApp:
    import anyio
    import fastapi.routing
    from fastapi import FastAPI
    from fastapi.sse import EventSourceResponse

    from benchmarks.apps.models import ItemModel

    if spec.ping is not None and spec.ping != FASTAPI_DEFAULT_PING:
        fastapi.routing._PING_INTERVAL = spec.ping  # type: ignore[attr-defined]

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    route = app.get(PATH, response_class=EventSourceResponse)

    if spec.idle:

        @route
        async def idle_stream() -> AsyncIterable[int]:
            yield 0
            await anyio.sleep_forever()

    elif spec.source is Source.SYNC and spec.payload is Payload.OBJECT:

        @route
        def sync_objects(n: int = DEFAULT_COUNT) -> Iterable[ItemModel]:
            for i in range(n):
                yield ItemModel(**item_fields(i))

    elif spec.source is Source.SYNC:

        @route
        def sync_ints(n: int = DEFAULT_COUNT) -> Iterable[int]:
            # The same loop as every other handler, not ``yield from``.
            for i in range(n):  # noqa: UP028
                yield i

    elif spec.payload is Payload.OBJECT:

        @route
        async def objects(n: int = DEFAULT_COUNT) -> AsyncIterable[ItemModel]:
            for i in range(n):
                yield ItemModel(**item_fields(i))

    else:

        @route
        async def ints(n: int = DEFAULT_COUNT) -> AsyncIterable[int]:
            for i in range(n):
                yield i

    asgi: ASGIApp = app
    return asgi
