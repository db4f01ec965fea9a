"""Layer 3, the send loop: ASGI responses that stream items as ``http.response.body`` events.

* :mod:`~litestar_sse.asgi.stream`: ``ASGIStreamingResponse`` and ``ASGIStreamingSSEResponse``;
* :mod:`~litestar_sse.asgi.timer_wheel`: one event-loop timer for every stream's pings and
  send timeout;
* :mod:`~litestar_sse.asgi.threaded_iterator`: one worker thread per blocking iterator.
"""

from litestar_sse.asgi.stream import (
    ASGIStreamingResponse,
    ASGIStreamingSSEResponse,
    CutReason,
    DisconnectHandler,
    DisconnectReason,
)

__all__ = (
    "ASGIStreamingResponse",
    "ASGIStreamingSSEResponse",
    "CutReason",
    "DisconnectHandler",
    "DisconnectReason",
)
