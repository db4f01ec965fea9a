"""The open event streams of one app: connection limit, maximum lifetime and shutdown.

:class:`StreamRegistry` counts and holds the app's open streams; :class:`ManagedSSEResponse`
is the ASGI response of a stream that belongs to one. All the work here is per stream (a set
add and discard, at most one timer), none of it per event.

Everything runs on the event loop that serves the streams: :meth:`StreamRegistry.begin_shutdown`
must be called there (the plugin's signal handler schedules it with ``call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine, Hashable
from time import monotonic
from typing import TYPE_CHECKING, Any

from litestar.response.base import ASGIResponse

from litestar_sse.asgi import ASGIStreamingSSEResponse, StreamState
from litestar_sse.asgi._runtime import call_later, create_future, shielded, wait_for
from litestar_sse.asgi._timer_wheel import Alarm
from litestar_sse.asgi._transport import bytes_taken, pending_output

if TYPE_CHECKING:
    from litestar.types import Receive, Scope, Send

__all__ = ("ManagedSSEResponse", "StreamRegistry")


class StreamRegistry:
    """The open event streams of one app.

    Args:
        max_connections: Most streams open at once; beyond it new ones are answered 503.
        max_connections_per_client: Most streams open at once for one client key (see
            :meth:`admit`); beyond it that client's new ones are answered 503.
        retry_after: ``Retry-After`` seconds of that 503.
        max_lifetime: Seconds after which a stream is ended cleanly, or ``None``.
        lifetime_event: Bytes sent before the end of a stream that reached ``max_lifetime``.
        shutdown_event: Bytes sent before the end of every stream at shutdown.
        grace_period: Seconds a stream that reached ``max_lifetime`` gets to end cleanly
            before it is ended hard (:meth:`~litestar_sse.asgi.ASGIStreamingResponse.abort`),
            as at shutdown.
    """

    __slots__ = (
        "_abort_timer",
        "_idle",
        "_lingering",
        "_open",
        "_per_client",
        "_streams",
        "closing",
        "grace_period",
        "lifetime_event",
        "max_connections",
        "max_connections_per_client",
        "max_lifetime",
        "retry_after",
        "shutdown_event",
    )

    def __init__(
        self,
        *,
        max_connections: int | None = None,
        max_connections_per_client: int | None = None,
        retry_after: int = 5,
        max_lifetime: float | None = None,
        lifetime_event: bytes = b"",
        shutdown_event: bytes = b"",
        grace_period: float = 5.0,
    ) -> None:
        self.max_connections = max_connections
        self.max_connections_per_client = max_connections_per_client
        # Open streams per client key; a key leaves the dict with its last stream.
        self._per_client: dict[Hashable, int] = {}
        self.retry_after = retry_after
        self.max_lifetime = max_lifetime
        self.lifetime_event = lifetime_event
        self.shutdown_event = shutdown_event
        self.grace_period = grace_period
        self.closing = False
        """True once shutdown began: new streams are ended as soon as they start."""
        self._open = 0
        self._streams: set[ManagedSSEResponse] = set()
        # Streams that ended during a shutdown with bytes their client had not taken yet: their
        # connections are reset with the streams still open once the grace period is over.
        self._lingering: list[ManagedSSEResponse] = []
        self._idle: Any = None  # a future of the running loop (asgi/_runtime.py)
        self._abort_timer: Any = None

    def __len__(self) -> int:
        """The number of open streams (admitted and not yet finished)."""
        return self._open

    def admit(self, client: Hashable = None) -> bool:
        """Count a new stream of ``client`` in; False if that would pass a limit.

        ``client`` is the key of the stream's client (``None``: not counted per client).
        """
        if self.max_connections is not None and self._open >= self.max_connections:
            return False
        if client is not None and self.max_connections_per_client is not None:
            count = self._per_client.get(client, 0)
            if count >= self.max_connections_per_client:
                return False
            self._per_client[client] = count + 1
        self._open += 1
        return True

    def leave(self, client: Hashable = None) -> None:
        """Count a stream out (the pair of a successful :meth:`admit`, with its ``client``)."""
        if client is not None and self.max_connections_per_client is not None:
            count = self._per_client.pop(client, 1) - 1
            if count:
                self._per_client[client] = count
        self._open -= 1
        if self._open == 0 and self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    def begin_shutdown(self, grace_period: float) -> None:
        """End every open stream cleanly, and end hard those still open after ``grace_period``.

        Each stream completes the event it is sending, gets ``shutdown_event`` (if any) and the
        end of its body. Streams that start afterwards are ended the same way at once. After
        ``grace_period`` every stream still open is aborted (its write or its producer's
        cleanup cut), and every connection of a stream that ended but whose client has not
        taken its last bytes (it does not read) is reset, so the server does not wait on them.
        Call it on the streams' event loop; calling it again does nothing.
        """
        if self.closing:
            return
        self.closing = True
        self._idle = create_future()
        if self._open == 0:
            self._idle.set_result(None)
        for stream in list(self._streams):
            stream.stop("shutdown", closing=self.shutdown_event)
        self._abort_timer = call_later(grace_period, self._abort_all)

    def reopen(self) -> None:
        """Accept streams again after a shutdown (an app started anew, as test clients do)."""
        self.closing = False
        self._idle = None
        self._lingering.clear()
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None

    async def wait_closed(self, timeout: float) -> bool:
        """Wait until no stream is open, at most ``timeout`` seconds; True if none is."""
        if self._open == 0:
            return True
        if self._idle is None:
            self._idle = create_future()
        try:
            await wait_for(shielded(self._idle), timeout)
        except asyncio.TimeoutError:
            return self._open == 0
        return True

    def _abort_all(self) -> None:
        self._abort_timer = None
        lingering, self._lingering = self._lingering, []
        for stream in [*self._streams, *lingering]:
            stream.abort("shutdown")  # nothing more is sent; a stuck connection is reset


class ManagedSSEResponse(ASGIStreamingSSEResponse):
    """An event stream that belongs to a :class:`StreamRegistry`.

    Takes the arguments of :class:`~litestar_sse.asgi.ASGIStreamingSSEResponse`, plus:

    Args:
        registry: The app's open streams.
        preamble: Bytes sent once, right after the headers (e.g. a ``retry`` field block).
        flush_headers: Send a body chunk (the preamble, even if empty) right after the headers.
            A compressing middleware holds the headers back until the first body chunk; this
            releases them at once, so the client sees the stream open before the first event.
        client: The key of the stream's client, for ``max_connections_per_client``.
    """

    __slots__ = ("_hard_end", "_taken_at_end", "client", "flush_headers", "preamble", "registry")

    def __init__(
        self,
        *,
        registry: StreamRegistry,
        preamble: bytes = b"",
        flush_headers: bool = False,
        client: Hashable = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.registry = registry
        self.client = client
        self.preamble = preamble
        self.flush_headers = flush_headers
        self._hard_end: Alarm | None = None  # max_lifetime's hard end, grace_period after it
        self._taken_at_end: int | None = None  # bytes the client had taken when the body ended

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Coroutine[Any, Any, None]:
        """Send the stream, or a 503 with ``Retry-After`` if the app has too many open.

        A refused stream's producer is closed at once, without running. Not a coroutine
        function: it returns the send loop's own coroutine (the stream leaves the registry in
        :meth:`_closed`), so an open stream keeps no frame of this call.
        """
        if not self.registry.admit(self.client):
            return self._refuse(scope, receive, send)
        return super().__call__(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        registry = self.registry
        busy = ASGIResponse(
            body=b"Too many open event streams, retry later.",
            status_code=503,
            media_type="text/plain",
            headers={"retry-after": str(registry.retry_after), "cache-control": "no-store"},
        )
        try:
            await busy(scope, receive, send)
        finally:
            await self._discard_producer()  # e.g. a broadcast subscription: unsubscribed now

    def _closed(self) -> None:
        self.registry.leave(self.client)

    def _open_body(self, send: Send) -> Awaitable[None] | None:
        """Send the preamble, if any, then register the stream: at once if there is nothing to
        send, else once the preamble is sent (see :meth:`_register`)."""
        if self.preamble or self.flush_headers:
            return self._send_preamble(send)
        self._register()
        return None

    async def _send_preamble(self, send: Send) -> None:
        await send({"type": "http.response.body", "body": self.preamble, "more_body": True})
        self._register()

    def _register(self) -> None:
        """Join the open streams; end at shutdown, or after the lifetime. No await between
        here and the send loop's start, so a stream in the set always has a running send loop
        that stop() can interrupt."""
        registry = self.registry
        registry._streams.add(self)
        if registry.closing:
            self.stop("shutdown", closing=registry.shutdown_event)
        elif registry.max_lifetime is not None:
            # Checked by the loop's timer wheel with the pings: no timer per stream.
            self.set_deadline(monotonic() + registry.max_lifetime)

    def _body_closed(self) -> None:
        """The body ended: the stream leaves the open streams."""
        self.registry._streams.discard(self)
        self._keep_hard_end_if_stuck()

    def _keep_hard_end_if_stuck(self) -> None:
        """The stream ended: keep its hard end only if its connection still holds bytes the
        client has not taken (it does not read), as they were taken so far."""
        hard_end = self._hard_end
        if hard_end is None and not self.registry.closing:
            return  # neither its lifetime nor a shutdown ended it: nothing to end hard
        connection = self._connection
        stuck = bool(connection) and pending_output(connection) > 0
        if stuck:
            self._taken_at_end = bytes_taken(connection)
            if self.registry.closing:
                self.registry._lingering.append(self)
        if hard_end is not None and not stuck:
            self._hard_end = None
            hard_end.cancel()

    def _expire(self) -> None:
        """The stream reached ``max_lifetime``: end it cleanly, with the lifetime event, and
        hard once the grace period is over (its client may not read: see ``abort``)."""
        self.stop("lifetime", closing=self.registry.lifetime_event)
        if self._hard_end is None:
            wheel = self._wheel  # no loop timer per stream
            self._hard_end = wheel.call_later(self.registry.grace_period, self._end_hard)

    def _end_hard(self) -> None:
        self._hard_end = None
        if self.state is StreamState.DONE and bytes_taken(self._connection) != self._taken_at_end:
            return  # the client took bytes since the end: it reads (the connection may serve
            # its next request by now), so the server's graceful close will do
        self.abort("lifetime")
