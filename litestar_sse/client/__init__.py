"""A Python ``EventSource``: reads an event stream as a browser does, reconnecting, resuming
with ``Last-Event-ID`` exactly once, and telling the caller when events were missed.

Needs httpx: ``pip install 'litestar-sse[client]'`` (and ``httpx[http2]`` for HTTP/2).
``import litestar_sse`` never imports this module, nor httpx. :class:`EventSource` reads from
async code (``AsyncEventSource`` is the same class, under the name httpx's ``AsyncClient``
suggests); :class:`SyncEventSource` reads from synchronous code. See docs/client.rst.
"""

try:
    import httpx  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a fresh interpreter
    raise ImportError(
        "litestar_sse.client needs httpx: pip install 'litestar-sse[client]'"
    ) from exc

from litestar_sse.client._async import EventSource
from litestar_sse.client._events import (
    DataDecodeError,
    Event,
    EventSourceError,
    Gap,
    GapError,
    ResponseError,
)
from litestar_sse.client._sync import SyncEventSource

AsyncEventSource = EventSource
"""The same class as :class:`EventSource`."""

__all__ = (
    "AsyncEventSource",
    "DataDecodeError",
    "Event",
    "EventSource",
    "EventSourceError",
    "Gap",
    "GapError",
    "ResponseError",
    "SyncEventSource",
)
