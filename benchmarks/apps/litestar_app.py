"""Litestar's own ``litestar.response.ServerSentEvent``: 2.25 (``litestar``) and 3.0.0b0
(``litestar 3.0b0``, variant ``"3"``, run from ``benchmarks/.venv-peers-litestar3``).

It renders structured data with ``str()``, so for object payloads the handler yields msgspec
JSON text, as a user would. Litestar 2 has no keep-alive pings (ping specs are unsupported);
Litestar 3 takes ``ServerSentEvent(content, ping_interval=...)``.
"""

# No ``from __future__ import annotations``: Litestar resolves the handler's annotations at
# registration, and the response class is imported inside ``build``.

from typing import Any, cast

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
    import litestar
    from litestar import Litestar, get
    from litestar.response import ServerSentEvent

    major = litestar.__version__.major
    if variant == "3" and major < 3:
        raise Unsupported(f"Litestar 3 expected, found {litestar.__version__}")
    if spec.ping is not None and major < 3:
        raise Unsupported("Litestar 2.25 has no keep-alive pings")
    item = item_json if spec.payload is Payload.OBJECT else None
    sync = spec.source is Source.SYNC
    idle = spec.idle
    options: dict[str, Any] = {} if spec.ping is None else {"ping_interval": spec.ping}

    @get(PATH)
    async def stream(n: int = DEFAULT_COUNT) -> ServerSentEvent:
        content = sync_items(n, item) if sync else async_items(n, item, idle)
        return ServerSentEvent(content, **options)  # type: ignore[arg-type]

    # Litestar types its __call__ with its own TypedDicts; structurally it is an ASGI app.
    return cast(ASGIApp, Litestar([stream], openapi_config=None))
