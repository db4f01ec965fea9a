"""litestar_sse (this repository): ``litestar_sse.ServerSentEvent`` returned from a handler.

Object payloads are handed over as typed objects (msgspec Struct by default; the dataclass and
pydantic variants are extra rows) and the library does the JSON encoding.
"""

from collections.abc import Callable
from typing import cast

from benchmarks.apps import PATH, ASGIApp
from benchmarks.workload import (
    DEFAULT_COUNT,
    Payload,
    Source,
    StreamSpec,
    async_items,
    item_dataclass,
    item_fields,
    item_struct,
    sync_items,
)


def check() -> None:
    from litestar_sse import ServerSentEvent  # noqa: F401


def _item_factory(variant: str) -> Callable[[int], object]:
    if variant == "dataclass":
        return item_dataclass
    if variant == "pydantic":
        from benchmarks.apps.models import ItemModel

        return lambda i: ItemModel(**item_fields(i))
    return item_struct


def build(spec: StreamSpec, variant: str = "") -> ASGIApp:
    from litestar import Litestar, get

    from litestar_sse import ServerSentEvent

    item = _item_factory(variant) if spec.payload is Payload.OBJECT else None
    sync = spec.source is Source.SYNC
    idle = spec.idle
    ping = spec.ping

    @get(PATH)
    async def stream(n: int = DEFAULT_COUNT) -> ServerSentEvent:
        content = sync_items(n, item) if sync else async_items(n, item, idle)
        if ping is None:
            return ServerSentEvent(content)
        return ServerSentEvent(content, ping_interval=ping)

    # Litestar types its __call__ with its own TypedDicts; structurally it is an ASGI app.
    return cast(ASGIApp, Litestar([stream], openapi_config=None))
