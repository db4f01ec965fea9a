"""Layer 5, the send loop: ASGI responses that stream items as ``http.response.body`` events.

* :mod:`~litestar_sse.asgi._state`: a stream's states, why it stops, and the timer's decisions
  (pure functions, no event loop);
* :mod:`~litestar_sse.asgi._stream`: ``ASGIStreamingResponse``, the send loop with disconnects
  and the send timeout; ``stop()``, the one way a stream stops early, how each stop ends the
  body, ``abort()``, the bound on a producer's cleanup, and the timer's checks;
* :mod:`~litestar_sse.asgi._runtime`: the primitives of the running event loop, asyncio's or
  trio's (the timer wheel, futures, tasks, how a stream stops its own task);
* :mod:`~litestar_sse.asgi._sse`: ``ASGIStreamingSSEResponse``, the same with idle pings;
* :mod:`~litestar_sse.asgi._disconnect`: the ``on_disconnect`` callback;
* :mod:`~litestar_sse.asgi._timer_wheel`: one event-loop timer for every stream's pings and
  send timeout;
* :mod:`~litestar_sse.asgi._threaded_iterator`: one worker thread per blocking iterator;
* :mod:`~litestar_sse.asgi._slices`: why large bodies are sent in slices of at most 64 KiB;
* :mod:`~litestar_sse.asgi._transport`: the server's connection under a stream: what its
  client has taken, and its reset (the hard end of a client that does not read).
"""

from litestar_sse.asgi._disconnect import DisconnectHandler
from litestar_sse.asgi._sse import ASGIStreamingSSEResponse
from litestar_sse.asgi._state import DisconnectReason, StopReason, StreamState
from litestar_sse.asgi._stream import ASGIStreamingResponse
from litestar_sse.asgi._threaded_iterator import set_sync_thread_limit, sync_threads_in_use

__all__ = (
    "ASGIStreamingResponse",
    "ASGIStreamingSSEResponse",
    "DisconnectHandler",
    "DisconnectReason",
    "StopReason",
    "StreamState",
    "set_sync_thread_limit",
    "sync_threads_in_use",
)
