"""A stream's side of the loop's timer wheel: the send-timeout, keep-alive and deadline checks.

:class:`TimedStream` is a mixin of :class:`~litestar_sse.asgi.stream.ASGIStreamingResponse`.
The wheel calls :meth:`TimedStream.on_timer` at the deadline the stream asked for; the check
runs in the request's contextvars context, asks :func:`~litestar_sse.asgi.state.on_timer` what
to do, does it (stop a stuck write, start a ping), and asks for the next deadline. Pings are
hooks here: :class:`~litestar_sse.asgi.sse.ASGIStreamingSSEResponse` sends them.
"""

from __future__ import annotations

import math
from time import monotonic
from typing import TYPE_CHECKING, Any, Final

from litestar_sse.asgi.state import StreamState, next_check, on_timer
from litestar_sse.asgi.timer_wheel import timer_wheel
from litestar_sse.asgi.transport import bytes_taken, pending_output

if TYPE_CHECKING:
    import asyncio
    import contextvars
    import logging

    from litestar_sse.asgi.state import StopReason

__all__ = ("TimedStream",)

# A stream in these states has written, or is writing, bytes its client may not have taken.
_OPEN: Final = frozenset((StreamState.IDLE, StreamState.WRITING, StreamState.PINGING))


class TimedStream:
    """The timer checks of a stream (a mixin: the stream holds the attributes)."""

    # Empty: Litestar's response classes have slots, so a mixin cannot add any. The attributes
    # below are slots of ASGIStreamingResponse (mypy's slot check is told so where they are set).
    __slots__ = ()

    ping_interval: float | None = None
    """Seconds of idleness after which the timer calls :meth:`_ping` (the SSE subclass's)."""

    if TYPE_CHECKING:
        send_timeout: float | None
        _deadline: float | None
        _state: StreamState
        _last_write: float
        _timer_slot: int | None
        _context: contextvars.Context | None
        _loop: asyncio.AbstractEventLoop
        _host: asyncio.Task[Any] | None
        _connection: Any
        _taken_due: float
        _taken_by: int

        def stop(self, reason: StopReason, *, closing: bytes | None = None) -> None: ...
        def get_logger(self) -> logging.Logger: ...
        def _reset_stuck_connection(self) -> None: ...

    def on_timer(self, slot: int) -> None:
        """Keep-alive and send-timeout check, called by the loop's :class:`TimerWheel`.

        Runs in the request's contextvars context, as every other write of the stream does.
        """
        context = self._context
        if context is None:
            self._check_timer(slot)
        else:
            context.run(self._check_timer, slot)

    def _check_timer(self, slot: int) -> None:
        if slot != self._timer_slot:
            return  # a stale entry: the stream ended or re-armed since
        self._timer_slot = None  # type: ignore[misc]
        now = monotonic()
        action, self._last_write = on_timer(  # type: ignore[misc]
            self._state,
            now=now,
            last_write=self._last_write,
            ping_interval=self.ping_interval,
            send_timeout=self.send_timeout,
            deadline=self._deadline,
        )
        if action == "done":
            return
        if action == "stop":
            self.get_logger().warning(
                "SSE client did not read for %.1f s; closing the stream", now - self._last_write
            )
            self.stop("send_timeout")
            self._reset_stuck_connection()  # a graceful close would wait for ever
        elif (
            now >= self._taken_due
            and self.send_timeout is not None
            and self._state in _OPEN
            and self._check_taken(now)
        ):
            self.get_logger().warning(
                "SSE client did not take in %.1f s what was waiting for it; closing the stream",
                self.send_timeout,
            )
            self.stop("send_timeout")
            self._reset_stuck_connection()
        elif action == "ping":
            self._ping()
        elif action == "expire":
            self._deadline = None  # type: ignore[misc]
            self._expire()
        self._arm_timer(now)

    def _check_taken(self, now: float) -> bool:
        """True if the client has not taken, within ``send_timeout``, the bytes that were
        waiting for it on the server's side (its transport's and kernel's buffers) at the
        check that set the mark; a write does not have to block for that (see
        :mod:`~litestar_sse.asgi.transport`). Called by the timer once ``_taken_due`` passed:
        the kernel is asked (two system calls) once per half ``send_timeout`` while nothing
        waits, once per ``send_timeout`` while something does, not at every ping. Where the
        server or the system does not tell, never cuts."""
        timeout = self.send_timeout
        assert timeout is not None
        connection = self._connection  # from receive() at the start (see stream.send_body)
        taken = bytes_taken(connection) if connection else None
        if taken is None:
            self._taken_due, self._taken_by = now + timeout / 2, -1  # type: ignore[misc]
            return False
        if 0 <= taken < self._taken_by:
            return True
        pending = pending_output(connection)
        if pending:  # these bytes must be taken by the next query, send_timeout from now
            self._taken_due, self._taken_by = now + timeout, taken + pending  # type: ignore[misc]
        else:
            self._taken_due, self._taken_by = now + timeout / 2, -1  # type: ignore[misc]
        return False

    def _arm_timer(self, now: float) -> None:
        deadline = next_check(
            self._state,
            now=now,
            last_write=self._last_write,
            ping_interval=self.ping_interval,
            send_timeout=self.send_timeout,
            deadline=self._deadline,
        )
        if deadline == math.inf:
            return  # nothing left to check (a stopping stream with neither option set)
        self._timer_slot = timer_wheel(self._loop).schedule(self, max(deadline, now + 0.001))  # type: ignore[misc]

    def _disarm_timer(self) -> None:
        """Take the stream's pending check off the wheel: an ended stream is not kept there."""
        slot = self._timer_slot
        if slot is not None:
            self._timer_slot = None  # type: ignore[misc]
            timer_wheel(self._loop).cancel(self, slot)

    def _expire(self) -> None:
        """End the stream: its deadline (``set_deadline``) has come."""
        self.stop("lifetime")

    def set_deadline(self, deadline: float | None) -> None:
        """End the stream at ``deadline`` (a ``time.monotonic()`` value), checked by the
        timer wheel with its pings and send timeout: no timer of its own per stream. Call it
        before the stream starts; :meth:`_expire` then ends it."""
        self._deadline = deadline  # type: ignore[misc]

    def _ping(self) -> None:
        """Start a keep-alive write: called when the stream was idle for ``ping_interval``."""

    async def _wait_for_ping(self) -> None:
        """Return once no keep-alive write is in flight."""

    def _drop_ping(self) -> None:
        """Cancel a keep-alive write still in flight: the stream ended."""
