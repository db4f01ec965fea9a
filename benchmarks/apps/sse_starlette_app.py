"""sse-starlette 3.7's ``EventSourceResponse`` in a plain Starlette app.

Its default configuration pings every 15 s, so the "default" and "ping 15 s" specs build the
same response. Dicts would be sent as Python repr, so object payloads are msgspec JSON text.
"""

from __future__ import annotations

from benchmarks.apps import PATH, ASGIApp
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
    from sse_starlette import EventSourceResponse  # noqa: F401


def build(spec: StreamSpec, variant: str = "") -> ASGIApp:
    from sse_starlette import EventSourceResponse
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route

    item = item_json if spec.payload is Payload.OBJECT else None
    sync = spec.source is Source.SYNC
    idle = spec.idle
    ping = spec.ping

    async def stream(request: Request) -> EventSourceResponse:
        n = int(request.query_params.get("n", DEFAULT_COUNT))
        content = sync_items(n, item) if sync else async_items(n, item, idle)
        if ping is None:
            return EventSourceResponse(content)
        return EventSourceResponse(content, ping=ping)

    app: ASGIApp = Starlette(routes=[Route(PATH, stream)])
    return app
