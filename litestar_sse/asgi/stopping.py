"""How a stream stops: :meth:`StoppingStream.stop`, and the ends of a body that follow it.

:class:`StoppingStream` is a mixin of :class:`~litestar_sse.asgi.stream.ASGIStreamingResponse`.
Every way a stream ends early goes through :meth:`~StoppingStream.stop`: a disconnect, a send
timeout, a slow broadcast subscriber, a shutdown, the maximum lifetime, a revoked
authorization. Stopping is plain asyncio cancellation of the stream's own task, taken back by
the task once it reaches :meth:`~StoppingStream._run`'s handler, so a producer's ``finally``
block may ``await`` without shielding, and a cancellation that is someone else's (the server's)
is never swallowed.

A stream ends in one of three ways:

* its producer is exhausted (or raised): :meth:`~StoppingStream._finish` sends the producer
  error's tail, if any, and the end of the body;
* a hard stop: nothing more is sent;
* a clean stop (with ``closing`` bytes): :meth:`~StoppingStream._end_cleanly` completes the
  write in flight, then sends the closing bytes and the end of the body.
"""

from __future__ import annotations

import asyncio
import contextlib
from time import monotonic
from typing import TYPE_CHECKING

from litestar_sse.asgi.cancellation import cancel_requested, take_back_cancel
from litestar_sse.asgi.state import CLIENT_GONE, StopReason, StreamState

if TYPE_CHECKING:
    from litestar.types import Send

__all__ = ("StoppingStream",)

_IDLE = StreamState.IDLE
_PINGING = StreamState.PINGING
_STOPPING = StreamState.STOPPING
_FINISHING = StreamState.FINISHING
_DONE = StreamState.DONE


class StoppingStream:
    """The stopping and the ends of a stream (a mixin: the stream holds the attributes)."""

    # Empty, as for TimedStream: the attributes are slots of ASGIStreamingResponse.
    __slots__ = ()

    if TYPE_CHECKING:
        stop_reason: StopReason | None
        _state: StreamState
        _closing: bytes | None
        _host: asyncio.Task[object] | None
        _last_write: float
        _tail: bytes

        async def _stream(self, send: Send) -> None: ...
        def _producer_failed(self, exc: Exception) -> None: ...
        async def _wait_for_ping(self) -> None: ...
        async def _send_rest(self, send: Send) -> None: ...

    @property
    def state(self) -> StreamState:
        """Where the stream is in its life."""
        return self._state

    def stop(self, reason: StopReason, *, closing: bytes | None = None) -> None:
        """Stop the stream now and close its producer. The one way every stream stops early.

        Without ``closing``, nothing more is sent. With ``closing`` (bytes, possibly empty) the
        stream ends cleanly: the write in flight completes, then ``closing`` and the end of the
        body are sent; a client-gone reason (``"disconnect"``, ``"send_timeout"``,
        ``"overflow"``) cannot end cleanly and refuses a ``closing``. For those reasons
        ``on_disconnect`` then runs with the reason.

        Safe to call from any callback on the event loop, and more than once: a clean stop
        never overrides another stop, a stop without ``closing`` overrides a clean one still
        in progress (its write is stuck, or its grace period is over), and nothing changes once
        the stream ended. Called before the stream started, it ends the stream as soon as it
        starts, without running the producer; called from the stream's own task (its
        producer), it stops the stream at its next write.
        """
        if closing is not None and reason in CLIENT_GONE:
            raise ValueError(f"a stream stopped for {reason!r} cannot end cleanly: no closing")
        state = self._state
        if state is _DONE:
            return
        if self.stop_reason is not None:
            if closing is not None or self._closing is None:
                return  # stopping already, at least as hard
        elif state is _FINISHING and closing is not None:
            return  # the body is already ending cleanly
        self.stop_reason = reason  # type: ignore[misc]
        self._closing = closing  # type: ignore[misc]
        self._state = _STOPPING  # type: ignore[misc]
        host = self._host
        # The host's cancellation is pending while STOPPING; from FINISHING it is cancelled
        # anew. From NEW, send_body sees STOPPING when it starts; from the host itself (a send
        # that raised OSError) the send loop returns on its own.
        if host is not None and state is not _STOPPING and host is not asyncio.current_task():
            host.cancel()

    async def _run(self, send: Send) -> None:
        """Stream the producer, and end the body as the stream's stop (if any) says."""
        try:
            if self._state is not _STOPPING:
                await self._stream(send)
            elif self._closing is not None:  # stopped before it started: no producer runs
                await self._end_cleanly(send, self._closing)
        except asyncio.CancelledError as exc:
            if self._state is not _STOPPING and not cancel_requested(self._host):
                # Nobody cancelled this task: the producer raised CancelledError itself. It is
                # a producer error, and the body still ends properly (it was cut short).
                try:
                    raise RuntimeError("the producer raised CancelledError by itself") from exc
                except RuntimeError as error:
                    self._producer_failed(error)
                await self._finish(send)
                return
            if not self._own_cancellation():
                raise
            if self._closing is None:
                return
            try:
                await self._end_cleanly(send, self._closing)
            except asyncio.CancelledError:
                if not self._own_cancellation():  # else: a hard stop during the clean end
                    raise

    def _own_cancellation(self) -> bool:
        """Whether the task was cancelled by :meth:`stop` alone; if so, take the cancel back."""
        host = self._host
        return self._state is _STOPPING and host is not None and take_back_cancel(host)

    async def _wait_turn(self) -> None:
        """Wait until an event may be written: after the ping in flight; never once stopping."""
        while self._state is _PINGING:
            await self._wait_for_ping()
        if self._state is _STOPPING:
            # The producer swallowed our cancellation (or ended right after it): stop as the
            # reason says (a clean stop still sends its closing and the end of body).
            raise asyncio.CancelledError

    async def _finish(self, send: Send) -> None:
        """End the body after the producer: its error's tail, if any, then the end."""
        if self._state is not _IDLE:
            await self._wait_turn()
        # From here on the watcher ignores the server's post-response ``http.disconnect``; the
        # send timeout still covers the last send.
        self._state = _FINISHING  # type: ignore[misc]
        self._last_write = monotonic()  # type: ignore[misc]
        with contextlib.suppress(OSError):
            if self._tail:
                await send({"type": "http.response.body", "body": self._tail, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _end_cleanly(self, send: Send, closing: bytes) -> None:
        # Shutdown or maximum lifetime: the client gets whole events and a clean end of body,
        # then reconnects (with Last-Event-ID) elsewhere or later. FINISHING first, so that a
        # ping still in flight is covered by the send timeout while this waits for it.
        self._state = _FINISHING  # type: ignore[misc]
        await self._wait_for_ping()
        self._last_write = monotonic()  # type: ignore[misc]
        with contextlib.suppress(OSError):
            await self._send_rest(send)  # never half an event before the closing
            if closing:
                await send({"type": "http.response.body", "body": closing, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
