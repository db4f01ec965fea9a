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

A stopped producer cleans up (an async generator's ``finally`` runs, and may ``await``) in the
stream's task, before ``on_disconnect``. That cleanup is bounded by ``cleanup_timeout``: past
it, it is cancelled and a warning names the route (:meth:`~StoppingStream._cut_cleanup`).
:meth:`~StoppingStream.abort` is the hard end beyond every stop: it cuts a clean end, a
cleanup in progress, and resets the connection of a client that does not read
(:mod:`~litestar_sse.asgi.transport`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from time import monotonic
from typing import TYPE_CHECKING, Any, Final

from litestar_sse.asgi.cancellation import cancel_requested, take_back_cancel
from litestar_sse.asgi.counters import COUNTERS
from litestar_sse.asgi.state import CLIENT_GONE, StopReason, StreamState
from litestar_sse.asgi.timer_wheel import Alarm, timer_wheel
from litestar_sse.asgi.transport import connection_of, pending_output, reset_connection

if TYPE_CHECKING:
    from litestar.types import Send

__all__ = ("DEFAULT_CLEANUP_TIMEOUT", "StoppingStream")

DEFAULT_CLEANUP_TIMEOUT: Final = 5.0
"""Seconds a stopped producer's cleanup may take before it is cancelled: the plugin's default
shutdown grace period, so a cleanup never holds its request longer than a shutdown waits."""

_LOGGER: Final = logging.getLogger("litestar_sse")

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
        cleanup_timeout: float | None
        _state: StreamState
        _closing: bytes | None
        _host: asyncio.Task[object] | None
        _loop: asyncio.AbstractEventLoop
        _last_write: float
        _tail: bytes
        _cancels: int
        _cleanup_began: float | None
        _cleanup_timer: Alarm | None
        _connection: Any
        _route: str

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
        # The host's cancellation is pending while STOPPING; from FINISHING it is cancelled
        # anew. From NEW, send_body sees STOPPING when it starts; from the host itself (a send
        # that raised OSError) the send loop returns on its own.
        if state is not _STOPPING and self._cancel_host() and state is not _FINISHING:
            self._begin_cleanup()  # the producer runs its cleanup as the cancellation lands

    def abort(self, reason: StopReason) -> None:
        """End the stream now, whatever it is doing: the hard end beyond :meth:`stop`.

        A hard stop, which overrides a clean one still in progress (its grace period is over);
        a producer cleanup still running is cancelled at once; and a connection that still
        holds bytes the client did not take (it is not reading) is reset, so that neither the
        stream nor its connection outlives the call by more than a turn of the event loop.
        Also applies to a stream whose body ended but whose connection is stuck that way. Safe
        to call more than once, and after the end.
        """
        self.stop(reason)
        if self._cleanup_began is not None:
            self._cut_cleanup(f"{reason}: ended hard")
        self._reset_stuck_connection()

    def _cancel_host(self) -> bool:
        """Cancel the stream's task, counted as ours; False if it is not running elsewhere."""
        host = self._host
        if host is None or host is asyncio.current_task():
            return False
        if self._connection is None:
            self._connection = connection_of(host)
        self._cancels += 1  # type: ignore[misc]
        host.cancel()
        return True

    def _take_back_cancels(self) -> bool:
        """Take back every cancellation of ours; False if someone else cancelled the task too."""
        host, ours = self._host, self._cancels
        self._cancels = 0  # type: ignore[misc]
        return host is not None and take_back_cancel(host, ours)

    # -- the producer's cleanup ----------------------------------------------------------------

    def _begin_cleanup(self) -> None:
        """The producer is closing in the stream's task: bound it by ``cleanup_timeout``."""
        if self._cleanup_began is not None:
            return
        self._cleanup_began = monotonic()  # type: ignore[misc]
        if self.cleanup_timeout is not None:
            # On the loop's timer wheel: no loop timer per stopped stream.
            self._cleanup_timer = timer_wheel(self._loop).call_later(  # type: ignore[misc]
                self.cleanup_timeout, self._cut_cleanup, "cleanup_timeout"
            )

    def _end_cleanup(self) -> None:
        """The producer's cleanup ended (or was cut)."""
        self._cleanup_began = None  # type: ignore[misc]
        timer = self._cleanup_timer
        if timer is not None:
            self._cleanup_timer = None  # type: ignore[misc]
            timer.cancel()

    def _cut_cleanup(self, why: str) -> None:
        """Cancel the producer's cleanup, which ran too long; log it and count it."""
        began = self._cleanup_began
        if began is None:
            return
        self._end_cleanup()  # cut once; the task ends the cleanup when the cancellation lands
        took = monotonic() - began
        COUNTERS.cleanups_cut += 1
        _LOGGER.warning(
            "The producer of the event stream %s was still cleaning up after %.1f s (%s); "
            "its cleanup was cancelled",
            self._route,
            took,
            why,
        )
        host = self._host
        if host is not None and not host.done():
            self._cancels += 1  # type: ignore[misc]
            host.cancel()

    def _reset_stuck_connection(self) -> None:
        """Reset the connection if the client left bytes of it unread (see :meth:`abort`)."""
        connection = self._connection
        if connection is None and self._host is not None and not self._host.done():
            connection = self._connection = connection_of(self._host)
        if connection and pending_output(connection) > 0:
            reset_connection(connection)

    async def _run(self, send: Send) -> None:
        """Stream the producer, and end the body as the stream's stop (if any) says."""
        try:
            try:
                if self._state is not _STOPPING:
                    await self._stream(send)
                elif self._closing is not None:  # stopped before it started: no producer runs
                    await self._end_cleanly(send, self._closing)
            finally:
                self._end_cleanup()  # what the producer did as the stop landed is over
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
        return self._state is _STOPPING and self._take_back_cancels()

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
