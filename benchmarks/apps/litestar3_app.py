"""Litestar 3.0.0b0's own ``litestar.response.ServerSentEvent`` (Litestar's main branch).

Runs from ``benchmarks/.venv-peers-litestar3`` (see ``peers_env``). Like 2.25 it renders
structured data with ``str()``, so for object payloads the handler yields msgspec JSON text, as
a user would. Pings: ``ServerSentEvent(content, ping_interval=...)``.
"""

# No ``from __future__ import annotations``: Litestar resolves the handler's annotations at
# registration, and the response class is imported inside ``build``.

from typing import cast

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
    import litestar
    from litestar.response import ServerSentEvent

    if litestar.__version__.major < 3:
        raise RuntimeError(f"Litestar 3 expected, found {litestar.__version__}")
    ServerSentEvent([], ping_interval=1)


def build(spec: StreamSpec, variant: str = "") -> ASGIApp:
    from litestar import Litestar, get
    from litestar.response import ServerSentEvent

    item = item_json if spec.payload is Payload.OBJECT else None
    sync = spec.source is Source.SYNC
    idle = spec.idle
    ping = spec.ping

    @get(PATH)
    async def stream(n: int = DEFAULT_COUNT) -> ServerSentEvent:
        content = sync_items(n, item) if sync else async_items(n, item, idle)
        return ServerSentEvent(content, ping_interval=ping)  # type: ignore[arg-type]

    # Litestar types its __call__ with its own TypedDicts; structurally it is an ASGI app.
    return cast(ASGIApp, Litestar([stream], openapi_config=None))
