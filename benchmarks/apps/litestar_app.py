"""Litestar 2.25's own ``litestar.response.ServerSentEvent``.

It renders structured data with ``str()``, so for object payloads the handler yields msgspec
JSON text, as a user would. It has no keep-alive pings: ping specs are unsupported.
"""

# No ``from __future__ import annotations``: Litestar resolves the handler's annotations at
# registration, and the response class is imported inside ``build``.

from typing import cast

from benchmarks.apps import PATH, ASGIApp, Unsupported
from benchmarks.workload import (
    DEFAULT_COUNT,
    Payload,
    Source,
    StreamSpec,
    async_items,
    item_json,
    sync_items,
)


def check() -> None:
    from litestar.response import ServerSentEvent  # noqa: F401


def build(spec: StreamSpec, variant: str = "") -> ASGIApp:
    from litestar import Litestar, get
    from litestar.response import ServerSentEvent

    if spec.ping is not None:
        raise Unsupported("Litestar 2.25 has no keep-alive pings")
    item = item_json if spec.payload is Payload.OBJECT else None
    sync = spec.source is Source.SYNC
    idle = spec.idle

    @get(PATH)
    async def stream(n: int = DEFAULT_COUNT) -> ServerSentEvent:
        content = sync_items(n, item) if sync else async_items(n, item, idle)
        return ServerSentEvent(content)  # type: ignore[arg-type]

    # Litestar types its __call__ with its own TypedDicts; structurally it is an ASGI app.
    return cast(ASGIApp, Litestar([stream], openapi_config=None))
