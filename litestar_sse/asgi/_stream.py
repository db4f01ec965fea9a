"""The send loop: ``ASGIStreamingResponse``, a streaming body with disconnects and a send timeout.

This is the hot path, so it avoids per-event overhead. There is no lock, no thread hop and no
extra task per event. Each stream has:

* the task the server runs the app in. It pulls items, encodes them and sends them.
* a watch awaiting ``receive()``; on ``http.disconnect`` it stops the stream. On uvicorn it is
  no task: the coroutine of ``receive()`` is stepped by the loop's callbacks
  (:mod:`~litestar_sse.asgi._watch`); elsewhere, and on trio, a task of its own.
* at most one entry on the loop's timer wheel, only when pings, a send timeout or a deadline
  (the plugin's maximum lifetime) are set. It wakes at most once per interval and does what
  :mod:`~litestar_sse.asgi._state` decides: ping an idle stream (the SSE subclass), stop one
  whose send is stuck, end one whose deadline has come, or wait. The check runs in the
  request's contextvars context.

The stream's whole state is one :class:`~litestar_sse.asgi._state.StreamState` plus the
:data:`~litestar_sse.asgi._state.StopReason` once it stops.

**How a stream stops.** Every way a stream ends early goes through
:meth:`ASGIStreamingResponse.stop`: a disconnect, a send timeout, a slow broadcast subscriber,
a shutdown, the maximum lifetime, a revoked authorization. On asyncio, stopping is plain
cancellation of the stream's own task, taken back by the task once it reaches ``_run``'s
handler (:mod:`~litestar_sse.asgi._cancellation`), so a producer's ``finally`` block may
``await`` without shielding, and a cancellation that is someone else's (the server's) is never
swallowed. On trio, the producer loop runs in a ``CancelScope`` that ``stop()`` cancels (a
scope only ever catches its own cancellation); as always on trio, a ``finally`` that runs
while the scope is cancelled needs a shielded scope to await, but a producer stopped at a
``yield`` is closed outside it and may await (see :mod:`~litestar_sse.asgi._runtime`).

A stream ends in one of three ways:

* its producer is exhausted (or raised): ``_finish`` sends the producer error's tail, if any,
  and the end of the body;
* a hard stop: nothing more is sent;
* a clean stop (with ``closing`` bytes): ``_end_cleanly`` completes the write in flight (a
  body sent in slices, see :mod:`~litestar_sse.asgi._slices`), then sends the closing bytes
  and the end of the body.

A stopped producer cleans up (an async generator's ``finally`` runs, and may ``await``) in the
stream's task, before ``on_disconnect``. That cleanup is bounded by ``cleanup_timeout``: past
it, it is cancelled and a warning names the route. :meth:`ASGIStreamingResponse.abort` is the
hard end beyond every stop: it cuts a clean end, a cleanup in progress, and resets the
connection of a client that does not read (:mod:`~litestar_sse.asgi._transport`).

One class, whole: the stopping, the timer's checks and the sliced writes share the stream's
state, so they are not split into mixins.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import math
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
)
from time import monotonic
from typing import TYPE_CHECKING, Any, Final

from litestar.response.streaming import ASGIStreamingResponse as _LitestarASGIStreamingResponse

from litestar_sse._compat import build_asgi_response, unwrap_started_send
from litestar_sse._validation import check_seconds
from litestar_sse.asgi._cancellation import cancel_requested, take_back_cancel
from litestar_sse.asgi._counters import COUNTERS
from litestar_sse.asgi._disconnect import DisconnectHandler, run_disconnect_handler, takes_reason
from litestar_sse.asgi._runtime import (
    checkpoint,
    current_task,
    current_wheel,
    sleep_of_run,
    spawn,
)
from litestar_sse.asgi._slices import MAX_SEND_BYTES
from litestar_sse.asgi._sources import (
    Push,
    as_async_source,
    close_producer,
    encode_chunk,
)
from litestar_sse.asgi._state import CLIENT_GONE, StopReason, StreamState, next_check, on_timer
from litestar_sse.asgi._stepped import Resumed, start_send
from litestar_sse.asgi._threaded_iterator import stream_batches
from litestar_sse.asgi._timer_wheel import Alarm, timer_wheel
from litestar_sse.asgi._transport import (
    bytes_taken,
    connection_of,
    pending_output,
    receiving_transport,
    reset_connection,
)
from litestar_sse.asgi._watch import DisconnectWatch, watch_in_task

if TYPE_CHECKING:
    from litestar.background_tasks import BackgroundTask, BackgroundTasks
    from litestar.datastructures.cookie import Cookie
    from litestar.enums import MediaType
    from litestar.types import Receive, Scope, Send

    from litestar_sse._message import ItemEncoder

__all__ = ("DEFAULT_CLEANUP_TIMEOUT", "ASGIStreamingResponse")

DEFAULT_CLEANUP_TIMEOUT: Final = 5.0
"""Seconds a stopped producer's cleanup may take before it is cancelled: the plugin's default
shutdown grace period, so a cleanup never holds its request longer than a shutdown waits."""

_LOGGER: Final = logging.getLogger("litestar_sse")

_NEW: Final = StreamState.NEW
_IDLE: Final = StreamState.IDLE
_WRITING: Final = StreamState.WRITING
_PINGING: Final = StreamState.PINGING
_STOPPING: Final = StreamState.STOPPING
_FINISHING: Final = StreamState.FINISHING
_DONE: Final = StreamState.DONE

# A stream in these states has written, or is writing, bytes its client may not have taken.
_OPEN: Final = frozenset((_IDLE, _WRITING, _PINGING))

# Events after which the send loop gives the event loop a turn. Once a connection is lost,
# uvicorn's send() returns at once without writing: a producer that never awaits would then
# never let the disconnect watcher run, and would spin the event loop until it ends (for ever
# if it is endless). One ``sleep(0)`` per 256 events costs ~3% of the send loop with a send()
# that does nothing, less with a real server's.
_YIELD_EVERY: Final = 256

# Headers shared by the streams that send them (see _share_headers), up to this many.
_SHARED_HEADERS_MAX: Final = 256
_SHARED_HEADERS: dict[tuple[bytes, bytes], tuple[bytes, bytes]] = {}


class ASGIStreamingResponse(_LitestarASGIStreamingResponse):
    """A streaming response with disconnect handling, a send timeout and prompt cleanup.

    Accepts every keyword argument of :class:`litestar.response.streaming.ASGIStreamingResponse`
    and keeps its ``send_body(send, receive)`` entry point.

    Args:
        iterator: A sync or async iterable of chunks. Lists, tuples and ranges are iterated
            inline; any other sync iterator runs in one worker thread for the whole stream,
            so a blocking iterator never blocks the event loop. A chunk larger than 64 KiB
            is sent in slices (see :mod:`~litestar_sse.asgi._slices`). If the body is never
            sent (a ``HEAD`` request, a refused stream), the iterator is closed at once.
        item_encoder: Turns each item into bytes. Defaults to passing ``bytes`` through and
            encoding ``str`` with ``encoding``.
        send_timeout: Seconds a single send may take before the client is considered gone
            (it stopped reading). The stream is then stopped, its connection reset (where the
            server shows it, see :mod:`~litestar_sse.asgi._transport`) and the producer closed.
        cleanup_timeout: Seconds the producer's cleanup may take once the stream stopped (an
            async generator's ``finally`` that awaits): past it, the cleanup is cancelled and a
            warning names the route. A sync iterator closes in its worker thread, which cannot
            be interrupted: past it, its thread's slot is given back and the thread left to
            finish. ``None`` waits for ever.
        on_disconnect: Called once if the client goes away before the stream ends: it
            disconnected, a send timed out, or the server reported the connection closed.
            If it accepts one positional argument, it gets the reason: ``"disconnect"`` or
            ``"send_timeout"`` (or ``"overflow"``, for a broadcast subscriber).
        logger: Where producer errors are logged. Defaults to the ``litestar_sse`` logger.
        on_error: Called with the exception when the producer (or ``item_encoder``) raises,
            after it is logged; the bytes it returns are sent before the end of the body (an
            error event a client can act on). Without it, the body just ends.
    """

    __slots__ = (
        "__weakref__",  # a broadcast subscription's authorization watch holds it weakly
        "_cancels",
        "_cleanup_began",
        "_cleanup_scope",
        "_cleanup_timer",
        "_closing",
        "_connection",
        "_context",
        "_deadline",
        "_host",
        "_iterated",
        "_last_write",
        "_partial",
        "_partial_sent",
        "_pass_reason",
        "_push_encode",
        "_request",
        "_scope",
        "_send",
        "_source",
        "_state",
        "_tail",
        "_taken_by",
        "_taken_due",
        "_timed",
        "_timer_slot",
        "_wheel",
        "cleanup_timeout",
        "item_encoder",
        "logger",
        "on_disconnect",
        "on_error",
        "send_timeout",
        "stop_reason",
    )

    ping_interval: float | None = None
    """Seconds of idleness after which the timer calls :meth:`_ping` (the SSE subclass's)."""

    def __init__(
        self,
        *,
        iterator: Iterable[Any] | AsyncIterable[Any],
        background: BackgroundTask | BackgroundTasks | None = None,
        body: bytes | str = b"",
        content_length: int | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        encoding: str = "utf-8",
        headers: dict[str, Any] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        item_encoder: ItemEncoder | None = None,
        send_timeout: float | None = None,
        on_disconnect: DisconnectHandler | None = None,
        logger: logging.Logger | None = None,
        on_error: Callable[[Exception], bytes] | None = None,
        cleanup_timeout: float | None = DEFAULT_CLEANUP_TIMEOUT,
    ) -> None:
        # Litestar's own __init__ would wrap sync iterators in a per-item thread hop.
        build_asgi_response(
            self,
            background=background,
            body=body,
            content_length=content_length,
            cookies=cookies,
            encoded_headers=encoded_headers,
            encoding=encoding,
            headers=headers,
            is_head_response=is_head_response,
            media_type=media_type,
            status_code=status_code,
        )
        if not isinstance(iterator, (AsyncIterable, Iterable)):
            raise TypeError(f"iterator must be a sync or async iterable, got {type(iterator)!r}")
        self.iterator = iterator  # type: ignore[assignment]
        self.item_encoder = item_encoder
        self.send_timeout = check_seconds(send_timeout, "send_timeout")
        self.cleanup_timeout = check_seconds(cleanup_timeout, "cleanup_timeout")
        self.on_disconnect = on_disconnect
        self._pass_reason = on_disconnect is not None and takes_reason(on_disconnect)
        self.logger = logger
        if on_error is not None and not callable(on_error):
            raise TypeError(f"on_error must be callable, got {type(on_error).__name__}")
        self.on_error = on_error
        self._tail = b""  # sent before the end of the body: on_error's bytes
        self._state = _NEW
        self.stop_reason: StopReason | None = None
        """Why the stream stopped before its producer ended (``None`` while it has not)."""
        # For a graceful stop: the bytes sent before the end of the body (None: a hard stop).
        self._closing: bytes | None = None
        self._host: asyncio.Task[Any] | None = None
        self._context: contextvars.Context | None = None
        self._source: AsyncIterator[Any] | None = None
        self._last_write = 0.0
        self._iterated = False  # the producer was handed to the send loop
        self._partial: bytes | None = None  # a body sent in slices, while it is
        self._partial_sent = 0
        # The slot of this stream's pending check on the loop's timer wheel, None when none.
        self._timer_slot: int | None = None
        self._deadline: float | None = None  # see set_deadline
        self._cancels = 0  # cancellations of the stream's task by its own stop, not taken back
        # On trio: the CancelScope around the producer loop (then the clean end) that stop()
        # cancels, and the one around the producer's cleanup that a cut cancels. None on asyncio.
        self._scope: Any = None
        self._cleanup_scope: Any = None
        self._cleanup_began: float | None = None  # while the stopped producer cleans up
        self._cleanup_timer: Alarm | None = None  # its cleanup_timeout, on the timer wheel
        # The server's transport (False: it shows none), from receive() when the stream starts,
        # else looked up on the stop path (see asgi/_transport.py).
        self._connection: Any = None
        # When the timer next asks what the client took, and the bytes it must have taken by
        # then (-1: none), see TimedStream._check_taken.
        self._taken_due = 0.0
        self._taken_by = -1
        self._request: Scope | None = None  # for the logs: see _route
        # A pushed chunk's encoder (None: sent as it is) and whether the timer watches the
        # stream (see _pushing), set once the stream starts.
        self._push_encode: ItemEncoder | None = None
        self._timed = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the response. A HEAD request gets the headers only; the producer never runs."""
        if scope.get("method") == "HEAD":
            # Litestar passes is_head_response only for file responses; without this a HEAD on
            # an endless stream would run it forever while the server discards the body.
            self.is_head_response = True
        self._request = scope
        # Litestar's ASGIResponse.__call__, inline: one coroutine frame fewer per open stream.
        try:
            await self.start_response(send=send)
            _share_headers(self.headers.headers)
            if self.is_head_response:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                await self.send_body(send=send, receive=receive)
            await self.after_response()
        finally:
            if not self._iterated:
                await self._discard_producer()
            self._closed()

    def _closed(self) -> None:
        """Called when the response is over, sent or not (a hook for subclasses)."""

    async def _discard_producer(self) -> None:
        """Close the producer of a body that was never sent (see :func:`close_producer`)."""
        self._iterated = True
        failure = "Exception raised while closing an unsent producer"
        await close_producer(self.iterator, self.get_logger(), failure)

    # -- the stream -------------------------------------------------------------------------

    async def send_body(self, send: Send, receive: Receive) -> None:
        """Send every item as an ``http.response.body`` event, then end the body.

        Returns when the stream is exhausted, the client disconnected, a send timed out or the
        stream was stopped by :meth:`stop`.
        """
        # The response started: Litestar's wrappers that only noted it are skipped from here.
        send = unwrap_started_send(send)
        opening = self._open_body(send)
        if opening is not None:
            await opening
        try:
            try:
                loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                loop = None  # trio (see asgi/_runtime.py): asked once per stream
            if loop is not None:
                host: Any = asyncio.current_task()
                assert host is not None
                self._wheel = timer_wheel(loop)
            else:
                import trio

                host = trio.lowlevel.current_task()
                self._scope = trio.CancelScope()  # before _host: stop() cancels it from now on
                self._wheel = current_wheel()
            self._host, self._send = host, send
            # Pings and send-timeout checks run from the loop's timer wheel, outside this task:
            # they run in the request's context, so tracing and logging middleware that read a
            # ContextVar in send() see this request. (The task's own context from Python 3.12,
            # a copy of it before; trio's task context.)
            get_context = getattr(host, "get_context", None)
            if get_context is not None:
                self._context = get_context()
            else:
                self._context = getattr(host, "context", None) or contextvars.copy_context()
            # The server's transport, where its receive() shows it (uvicorn): for the timer's
            # check of what the client took, and a hard end's reset (asgi/_transport.py).
            self._connection = connection = receiving_transport(receive)
            COUNTERS.streams_started += 1
            if self._state is _NEW:
                self._state = _IDLE
            # After IDLE: a receive() that reports the disconnect at once stops the stream here.
            watcher: Any
            if connection is not None and loop is not None:
                # uvicorn's receive() waits on plain futures: no task of its own (asgi/_watch.py).
                watcher = DisconnectWatch(receive, self._disconnected, loop, self._context)
            elif loop is not None:
                watcher = loop.create_task(watch_in_task(receive, self._disconnected))
            else:
                watcher = spawn(watch_in_task(receive, self._disconnected), "litestar_sse.watcher")
            if (
                self.ping_interval is not None
                or self.send_timeout is not None
                or self._deadline is not None
            ):
                self._last_write = monotonic()
                self._arm_timer(self._last_write)
            try:
                if loop is not None:
                    await self._run(send)
                else:
                    await self._run_on_trio(send)
            finally:
                self._state = _DONE
                COUNTERS.streams_ended += 1
                if self.stop_reason is not None:
                    stops = COUNTERS.stops
                    stops[self.stop_reason] = stops.get(self.stop_reason, 0) + 1
                self._context = None  # the request's context: not kept alive by the response
                self._disarm_timer()  # the wheel keeps no reference to an ended stream
                self._drop_ping()
                source, self._source = self._source, None
                if source is not None:
                    await self._close_source(source)
                connection = self._connection
                if connection and connection.is_closing() and not watcher.done():
                    # Reset by the stop (see asgi/_transport.py): the server reports the loss to
                    # receive() within a turn or two; returning before it would make the server
                    # log an error for a response it sees as incomplete.
                    ended = watcher.ended() if isinstance(watcher, DisconnectWatch) else watcher
                    await asyncio.wait((ended,), timeout=1.0)
                watcher.cancel()
            if self.stop_reason in CLIENT_GONE and self.on_disconnect is not None:
                await run_disconnect_handler(
                    self.on_disconnect, self.stop_reason, self._pass_reason, self.get_logger()
                )
        finally:
            self._body_closed()

    def _open_body(self, send: Send) -> Awaitable[None] | None:
        """Called as the body starts, before the send loop: an awaitable to await first, or
        ``None``. A hook for subclasses (the plugin's registry), which costs no frame of its
        own for the stream's whole life, as overriding ``send_body`` would."""
        return None

    def _body_closed(self) -> None:
        """Called once the body ended, after ``on_disconnect``: the hook's other end."""

    async def _close_source(self, source: AsyncIterator[Any]) -> None:
        """Close the producer (its ``finally`` may await), within ``cleanup_timeout``."""
        if getattr(source, "ag_frame", True) is None:
            return  # an async generator that ended: nothing left to run
        self._begin_cleanup()
        try:
            if self._scope is None:
                await close_producer(source, self.get_logger())
            else:  # trio: a cut cancels this scope
                import trio

                with trio.CancelScope() as self._cleanup_scope:
                    await close_producer(source, self.get_logger())
                self._cleanup_scope = None
        except asyncio.CancelledError:
            if self._cleanup_began is not None or not self._take_back_cancels():
                raise  # not our cut: the server's (or a task group's) cancellation
        finally:
            self._end_cleanup()

    async def _run_on_trio(self, send: Send) -> None:
        """:meth:`_run` on trio: in the ``CancelScope`` that :meth:`stop` cancels, then a clean
        end (if the stop asked for one) in a new scope, which a harder stop cancels in turn."""
        import trio

        with self._scope as scope:
            await self._run(send)
        if scope.cancelled_caught and self._state is _STOPPING and self._closing is not None:
            with trio.CancelScope() as self._scope:
                if self._state is _STOPPING and self._closing is not None:
                    await self._end_cleanly(send, self._closing)

    async def _write(self, body: bytes, events: int) -> bool:
        """Write one chunk of ``events`` events, as the loop above does inline; False: gone."""
        COUNTERS.events_sent += events
        if self._state is not _IDLE:
            await self._wait_turn()
        self._state = _WRITING
        self._last_write = monotonic()
        try:
            if len(body) <= MAX_SEND_BYTES:
                await self._send({"type": "http.response.body", "body": body, "more_body": True})
            else:
                await self._send_slices(self._send, body, True)
        except OSError:
            self.stop("disconnect")
            return False
        if self._state is _WRITING:
            self._state = _IDLE
        return True

    def _disconnected(self) -> None:
        """The server reported the client gone (its ``http.disconnect``)."""
        if self._state in _OPEN:
            self.stop("disconnect")

    # -- stopping (every early end goes through stop) ------------------------------------------

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
        self.stop_reason = reason
        self._closing = closing
        self._state = _STOPPING
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
        if host is None:
            return False
        scope = self._scope
        if scope is not None:  # trio: the producer loop's scope (a cut of our own is fine)
            scope.cancel()
            return host is not current_task()
        if host is asyncio.current_task():
            return False
        if self._connection is None:
            self._connection = connection_of(host)
        self._cancels += 1
        host.cancel()
        return True

    def _take_back_cancels(self) -> bool:
        """Take back every cancellation of ours; False if someone else cancelled the task too."""
        host, ours = self._host, self._cancels
        self._cancels = 0
        return host is not None and take_back_cancel(host, ours)

    # -- the producer's cleanup ----------------------------------------------------------------

    def _begin_cleanup(self) -> None:
        """The producer is closing in the stream's task: bound it by ``cleanup_timeout``."""
        if self._cleanup_began is not None:
            return
        self._cleanup_began = monotonic()
        if self.cleanup_timeout is not None:
            # On the loop's timer wheel: no loop timer per stopped stream.
            self._cleanup_timer = self._wheel.call_later(
                self.cleanup_timeout, self._cut_cleanup, "cleanup_timeout"
            )

    def _end_cleanup(self) -> None:
        """The producer's cleanup ended (or was cut)."""
        self._cleanup_began = None
        timer = self._cleanup_timer
        if timer is not None:
            self._cleanup_timer = None
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
            self._route(),
            took,
            why,
        )
        if self._scope is not None:  # trio: the producer's cleanup has a scope of its own
            if self._cleanup_scope is not None:
                self._cleanup_scope.cancel()
            return
        host = self._host
        if host is not None and not host.done():
            self._cancels += 1
            host.cancel()

    def _reset_stuck_connection(self) -> None:
        """Reset the connection if the client left bytes of it unread (see :meth:`abort`)."""
        connection = self._connection
        if (
            connection is None
            and self._scope is None
            and self._host is not None
            and not self._host.done()
        ):
            connection = self._connection = connection_of(self._host)
        if connection and pending_output(connection) > 0:
            reset_connection(connection)

    async def _run(self, send: Send) -> None:
        """Stream the producer, and end the body as the stream's stop (if any) says."""
        try:
            try:
                if self._state is _STOPPING:  # stopped before it started: no producer runs
                    if self._closing is not None:
                        await self._end_cleanly(send, self._closing)
                    return
                # The producer's loop, inline here: one frame fewer per open stream.
                self._iterated = True
                encode = self.item_encoder or functools.partial(
                    encode_chunk, encoding=self.encoding
                )
                if COUNTERS.count_bytes:  # only once metrics are exported: a call per event
                    encode = COUNTERS.counting(encode)
                timed = self._timer_slot is not None
                source: Any = self.iterator
                iterator = as_async_source(source)
                if iterator is not None:
                    self._source = iterator
                    push_to = getattr(iterator, "push_to", None)
                    if push_to is not None and self._scope is None:
                        # asyncio: its chunks may be sent from the source's own pass while
                        # this task waits (a broadcast's idle subscribers): see _pushing.
                        push_to(self._pushing(encode, timed))
                    sends = 0  # added to the process's counters every _YIELD_EVERY events
                    # Locals: read once per event.
                    idle, writing, most, every = _IDLE, _WRITING, MAX_SEND_BYTES, _YIELD_EVERY
                    pause = sleep_of_run()  # the turn given every `every` events
                    try:
                        async for item in iterator:
                            body = encode(item)
                            # Inline: a coroutine call per event would cost more than all of this.
                            if self._state is not idle:
                                await self._wait_turn()
                            if timed:  # only the timer needs to know that a write is in flight
                                self._state = writing
                                self._last_write = monotonic()
                            try:
                                if len(body) <= most:
                                    await send(
                                        {
                                            "type": "http.response.body",
                                            "body": body,
                                            "more_body": True,
                                        }
                                    )
                                else:
                                    await self._send_slices(send, body, timed)
                            except OSError:
                                self.stop("disconnect")
                                return
                            if timed and self._state is writing:
                                self._state = idle
                            sends += 1
                            if sends == every:
                                COUNTERS.events_sent += sends
                                sends = 0
                                # let the disconnect watcher run (see above)
                                await pause(0)
                    except Exception as exc:
                        self._producer_failed(exc)
                    finally:
                        COUNTERS.events_sent += sends
                elif not await stream_batches(
                    iter(source),
                    encode,
                    self._write,
                    self._producer_failed,
                    yield_every=_YIELD_EVERY,
                    cleanup_timeout=self.cleanup_timeout,
                    route=self._route(),
                ):
                    return
                await self._finish(send)
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

    def _pushing(self, encode: ItemEncoder, timed: bool) -> Push:
        """The sink of a :class:`~litestar_sse.asgi._sources.PushSource` (see
        :meth:`_push`): a bound method, nothing made per stream but it."""
        self._push_encode = None if encode is bytes else encode
        self._timed = timed
        return self._push

    def _push(self, body: bytes) -> bytes | Awaitable[None] | None:
        """Send a chunk from outside this task (the source's pass), as the loop of
        :meth:`_run` would send it.

        The ``send()`` coroutine is stepped once, in the request's context: a send that
        completes at once (the rule on uvicorn) wakes no task. One that waits is handed to
        this task to finish (:class:`_PushInFlight`); a chunk this stream cannot send now (a
        ping in flight, a stop, a chunk sent in slices) goes back to the source, which yields
        it to the loop.
        """
        if self._state is not _IDLE or len(body) > MAX_SEND_BYTES:
            return body
        timed = self._timed
        if timed:
            self._last_write = monotonic()
        COUNTERS.events_sent += 1
        encode = self._push_encode  # None: a wire source's chunks, sent as they are
        message = {
            "type": "http.response.body",
            "body": body if encode is None else encode(body),
            "more_body": True,
        }
        try:
            sending = start_send(self._send, message, self._context)
        except OSError:
            self.stop("disconnect")
            return None
        except Exception as exc:
            return _Raising(exc)  # raised in the task, as its own send's error would be
        if sending is None:
            return None
        if timed:  # the timer's send timeout covers it from now on
            self._state = _WRITING
        return _PushInFlight(self, sending)

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
            if self._scope is not None:
                await checkpoint()  # trio: raises Cancelled, the stop cancelled our scope
            raise asyncio.CancelledError

    async def _finish(self, send: Send) -> None:
        """End the body after the producer: its error's tail, if any, then the end."""
        if self._state is not _IDLE:
            await self._wait_turn()
        # From here on the watcher ignores the server's post-response ``http.disconnect``; the
        # send timeout still covers the last send.
        self._state = _FINISHING
        self._last_write = monotonic()
        with contextlib.suppress(OSError):
            if self._tail:
                await send({"type": "http.response.body", "body": self._tail, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _end_cleanly(self, send: Send, closing: bytes) -> None:
        # Shutdown or maximum lifetime: the client gets whole events and a clean end of body,
        # then reconnects (with Last-Event-ID) elsewhere or later. FINISHING first, so that a
        # ping still in flight is covered by the send timeout while this waits for it.
        self._state = _FINISHING
        await self._wait_for_ping()
        self._last_write = monotonic()
        with contextlib.suppress(OSError):
            await self._send_rest(send)  # never half an event before the closing
            if closing:
                await send({"type": "http.response.body", "body": closing, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    # -- the timer's checks -------------------------------------------------------------------

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
        self._timer_slot = None
        now = monotonic()
        action, self._last_write = on_timer(
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
            self._deadline = None
            self._expire()
        self._arm_timer(now)

    def _check_taken(self, now: float) -> bool:
        """True if the client has not taken, within ``send_timeout``, the bytes that were
        waiting for it on the server's side (its transport's and kernel's buffers) at the
        check that set the mark; a write does not have to block for that (see
        :mod:`~litestar_sse.asgi._transport`). Called by the timer once ``_taken_due`` passed:
        the kernel is asked (two system calls) once per half ``send_timeout`` while nothing
        waits, once per ``send_timeout`` while something does, not at every ping. Where the
        server or the system does not tell, never cuts."""
        timeout = self.send_timeout
        assert timeout is not None
        connection = self._connection  # from receive() at the start (see stream.send_body)
        taken = bytes_taken(connection) if connection else None
        if taken is None:
            self._taken_due, self._taken_by = now + timeout / 2, -1
            return False
        if 0 <= taken < self._taken_by:
            return True
        pending = pending_output(connection)
        if pending:  # these bytes must be taken by the next query, send_timeout from now
            self._taken_due, self._taken_by = now + timeout, taken + pending
        else:
            self._taken_due, self._taken_by = now + timeout / 2, -1
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
        self._timer_slot = self._wheel.schedule(self, max(deadline, now + 0.001))

    def _disarm_timer(self) -> None:
        """Take the stream's pending check off the wheel: an ended stream is not kept there."""
        slot = self._timer_slot
        if slot is not None:
            self._timer_slot = None
            self._wheel.cancel(self, slot)

    def _expire(self) -> None:
        """End the stream: its deadline (``set_deadline``) has come."""
        self.stop("lifetime")

    def set_deadline(self, deadline: float | None) -> None:
        """End the stream at ``deadline`` (a ``time.monotonic()`` value), checked by the
        timer wheel with its pings and send timeout: no timer of its own per stream. Call it
        before the stream starts; :meth:`_expire` then ends it."""
        self._deadline = deadline

    def _ping(self) -> None:
        """Start a keep-alive write: called when the stream was idle for ``ping_interval``."""

    async def _wait_for_ping(self) -> None:
        """Return once no keep-alive write is in flight."""

    def _drop_ping(self) -> None:
        """Cancel a keep-alive write still in flight: the stream ended."""

    # -- sliced writes ------------------------------------------------------------------------

    async def _send_slices(self, send: Send, body: bytes, timed: bool) -> None:
        """Send ``body`` in slices; ``timed``: each slice restarts the send timeout."""
        self._partial, self._partial_sent = body, 0
        await self._send_from(send, body, 0, timed)
        self._partial = None

    async def _send_from(self, send: Send, body: bytes, start: int, timed: bool) -> None:
        size = len(body)
        while start < size:
            if timed:
                self._last_write = monotonic()
            end = start + MAX_SEND_BYTES
            await send({"type": "http.response.body", "body": body[start:end], "more_body": True})
            start = self._partial_sent = end

    async def _send_rest(self, send: Send) -> None:
        """Complete the body whose slices a stop interrupted, if any of it was sent.

        A slice whose send was cancelled counts as not sent: a server writes a body whole or
        not at all (uvicorn waits for its flow control first, then writes).
        """
        body, self._partial = self._partial, None
        if body is not None and self._partial_sent:
            await self._send_from(send, body, self._partial_sent, True)

    # -- helpers -------------------------------------------------------------------------------

    def _route(self) -> str:
        """The request's method and route (its path template) for a log line, made when one is
        written rather than kept by every open stream."""
        scope: Any = self._request
        if scope is None:
            return "?"
        return f"{scope.get('method', '')} {scope.get('path_template') or scope.get('path')}"

    def get_logger(self) -> logging.Logger:
        """The logger producer errors go to."""
        return self.logger or _LOGGER

    def _producer_failed(self, exc: Exception) -> None:
        # Called in the except block: the log carries the traceback.
        COUNTERS.producer_errors += 1
        logger = self.get_logger()
        logger.exception(
            "Exception raised while producing a streaming response; the stream was ended (%s)",
            _summary(exc),
        )
        if self.on_error is not None:
            try:
                self._tail = self.on_error(exc)
            except Exception:
                logger.exception("Exception raised by the on_error handler")


def _share_headers(headers: list[tuple[bytes, bytes]]) -> None:
    """Replace each header, once sent, by an equal one shared by every stream: a response keeps
    its headers for its whole life, and most streams send the same few. Bounded: past
    :data:`_SHARED_HEADERS_MAX` distinct headers (values that differ per request), new ones
    stay the stream's own."""
    shared = _SHARED_HEADERS
    for index, header in enumerate(headers):
        if type(header) is not tuple:
            continue
        kept = shared.get(header)
        if kept is None:
            if len(shared) >= _SHARED_HEADERS_MAX:
                continue
            kept = shared[header] = header
        headers[index] = kept


def _summary(exc: BaseException) -> str:
    """``Type: message`` of an exception for a log line, shortened (the traceback follows)."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 500 else f"{text[:480]}... ({len(text)} characters)"


class _PushInFlight:
    """A pushed chunk's send that waits: finished by the stream's task, which then goes on
    as after any send of its loop (``OSError``: the client is gone)."""

    __slots__ = ("sending", "stream")

    def __init__(self, stream: ASGIStreamingResponse, sending: Resumed) -> None:
        self.stream = stream
        self.sending = sending

    def __await__(self) -> Generator[Any, None, None]:
        stream = self.stream
        try:
            yield from self.sending.__await__()
        except OSError:
            stream.stop("disconnect")  # cancels this task: its next await raises
            return
        if stream._state is _WRITING:
            stream._state = _IDLE


class _Raising:
    """A pushed chunk's send that raised: raised again in the stream's task, where its own
    send's error would have been."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __await__(self) -> Generator[Any, None, None]:
        raise self.error
        yield  # a generator: awaitable, and never awaited without a warning
