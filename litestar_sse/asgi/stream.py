"""The send loop: ``ASGIStreamingResponse``, a streaming body with disconnects and a send timeout.

This is the hot path, so it avoids per-event overhead. There is no lock, no thread hop and no
extra task per event. Each stream has:

* the task the server runs the app in. It pulls items, encodes them and sends them.
* one watcher task awaiting ``receive()``. On ``http.disconnect`` it stops the stream.
* at most one entry on the loop's timer wheel, only when pings, a send timeout or a deadline
  (the plugin's maximum lifetime) are set. It wakes at most once per interval and does what
  :mod:`~litestar_sse.asgi.state` decides: ping an idle stream (the SSE subclass), stop one
  whose send is stuck, end one whose deadline has come, or wait.

The stream's whole state is one :class:`~litestar_sse.asgi.state.StreamState` plus the
:data:`~litestar_sse.asgi.state.StopReason` once it stops. Every way of stopping goes through
:meth:`~litestar_sse.asgi.stopping.StoppingStream.stop`, which also ends the body (the
module :mod:`~litestar_sse.asgi.stopping`).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from time import monotonic
from typing import TYPE_CHECKING, Any, Final

from litestar.response.streaming import ASGIStreamingResponse as _LitestarASGIStreamingResponse

from litestar_sse.asgi.counters import COUNTERS
from litestar_sse.asgi.disconnect import DisconnectHandler, run_disconnect_handler, takes_reason
from litestar_sse.asgi.slices import MAX_SEND_BYTES, SlicedWrites
from litestar_sse.asgi.sources import (
    as_async_source,
    close_producer,
    encode_chunk,
)
from litestar_sse.asgi.state import CLIENT_GONE, StopReason, StreamState
from litestar_sse.asgi.stopping import DEFAULT_CLEANUP_TIMEOUT, StoppingStream
from litestar_sse.asgi.threaded_iterator import stream_batches
from litestar_sse.asgi.timed import TimedStream
from litestar_sse.asgi.timer_wheel import Alarm
from litestar_sse.asgi.transport import receiving_transport
from litestar_sse.compat import build_asgi_response
from litestar_sse.validation import check_seconds

if TYPE_CHECKING:
    from litestar.background_tasks import BackgroundTask, BackgroundTasks
    from litestar.datastructures.cookie import Cookie
    from litestar.enums import MediaType
    from litestar.types import Receive, Scope, Send

    from litestar_sse.message import ItemEncoder

__all__ = ("ASGIStreamingResponse",)

_FALLBACK_LOGGER: Final = logging.getLogger("litestar_sse")

_NEW: Final = StreamState.NEW
_IDLE: Final = StreamState.IDLE
_WRITING: Final = StreamState.WRITING
_PINGING: Final = StreamState.PINGING
_DONE: Final = StreamState.DONE

# Events after which the send loop gives the event loop a turn. Once a connection is lost,
# uvicorn's send() returns at once without writing: a producer that never awaits would then
# never let the disconnect watcher run, and would spin the event loop until it ends (for ever
# if it is endless). One ``sleep(0)`` per 256 events costs ~3% of the send loop with a send()
# that does nothing, less with a real server's.
_YIELD_EVERY: Final = 256


class ASGIStreamingResponse(
    StoppingStream, TimedStream, SlicedWrites, _LitestarASGIStreamingResponse
):
    """A streaming response with disconnect handling, a send timeout and prompt cleanup.

    Accepts every keyword argument of :class:`litestar.response.streaming.ASGIStreamingResponse`
    and keeps its ``send_body(send, receive)`` entry point.

    Args:
        iterator: A sync or async iterable of chunks. Lists, tuples and ranges are iterated
            inline; any other sync iterator runs in one worker thread for the whole stream,
            so a blocking iterator never blocks the event loop. A chunk larger than 64 KiB
            is sent in slices (see :mod:`~litestar_sse.asgi.slices`). If the body is never
            sent (a ``HEAD`` request, a refused stream), the iterator is closed at once.
        item_encoder: Turns each item into bytes. Defaults to passing ``bytes`` through and
            encoding ``str`` with ``encoding``.
        send_timeout: Seconds a single send may take before the client is considered gone
            (it stopped reading). The stream is then stopped, its connection reset (where the
            server shows it, see :mod:`~litestar_sse.asgi.transport`) and the producer closed.
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
        "_cleanup_timer",
        "_closing",
        "_connection",
        "_context",
        "_deadline",
        "_host",
        "_iterated",
        "_last_write",
        "_loop",
        "_partial",
        "_partial_sent",
        "_pass_reason",
        "_route",
        "_send",
        "_source",
        "_state",
        "_tail",
        "_taken_by",
        "_taken_due",
        "_timer_slot",
        "cleanup_timeout",
        "item_encoder",
        "logger",
        "on_disconnect",
        "on_error",
        "send_timeout",
        "stop_reason",
    )

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
        self._cleanup_began: float | None = None  # while the stopped producer cleans up
        self._cleanup_timer: Alarm | None = None  # its cleanup_timeout, on the timer wheel
        # The server's transport (False: it shows none), from receive() when the stream starts,
        # else looked up on the stop path (see asgi/transport.py).
        self._connection: Any = None
        # When the timer next asks what the client took, and the bytes it must have taken by
        # then (-1: none), see TimedStream._check_taken.
        self._taken_due = 0.0
        self._taken_by = -1
        self._route = "?"  # for the logs: the route's path template

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the response. A HEAD request gets the headers only; the producer never runs."""
        if scope.get("method") == "HEAD":
            # Litestar passes is_head_response only for file responses; without this a HEAD on
            # an endless stream would run it forever while the server discards the body.
            self.is_head_response = True
        self._route = f"{scope.get('method', '')} {scope.get('path_template') or scope.get('path')}"
        try:
            await super().__call__(scope, receive, send)
        finally:
            if not self._iterated:
                await self._discard_producer()

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
        loop = asyncio.get_running_loop()
        host = asyncio.current_task()
        assert host is not None
        self._loop, self._host, self._send = loop, host, send
        # Pings and send-timeout checks run from the loop's timer wheel, outside this task:
        # they run in the request's context, so tracing and logging middleware that read a
        # ContextVar in send() see this request. (The task's own context from Python 3.12,
        # a copy of it before.)
        get_context = getattr(host, "get_context", None)
        self._context = get_context() if get_context is not None else contextvars.copy_context()
        # The server's transport, where its receive() shows it (uvicorn): for the timer's
        # check of what the client took, and a hard end's reset (asgi/transport.py).
        self._connection = receiving_transport(receive)
        watcher = loop.create_task(self._watch_disconnect(receive))
        COUNTERS.streams_started += 1
        if self._state is _NEW:
            self._state = _IDLE
        if (
            self.ping_interval is not None
            or self.send_timeout is not None
            or self._deadline is not None
        ):
            self._last_write = monotonic()
            self._arm_timer(self._last_write)
        try:
            await self._run(send)
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
                # Reset by the stop (see asgi/transport.py): the server reports the loss to
                # receive() within a turn or two; returning before it would make the server
                # log an error for a response it sees as incomplete.
                await asyncio.wait((watcher,), timeout=1.0)
            watcher.cancel()
        if self.stop_reason in CLIENT_GONE and self.on_disconnect is not None:
            await run_disconnect_handler(
                self.on_disconnect, self.stop_reason, self._pass_reason, self.get_logger()
            )

    async def _close_source(self, source: AsyncIterator[Any]) -> None:
        """Close the producer (its ``finally`` may await), within ``cleanup_timeout``."""
        if getattr(source, "ag_frame", True) is None:
            return  # an async generator that ended: nothing left to run
        self._begin_cleanup()
        try:
            await close_producer(source, self.get_logger())
        except asyncio.CancelledError:
            if self._cleanup_began is not None or not self._take_back_cancels():
                raise  # not our cut: the server's (or a task group's) cancellation
        finally:
            self._end_cleanup()

    async def _stream(self, send: Send) -> None:
        self._iterated = True
        encode = self.item_encoder or functools.partial(encode_chunk, encoding=self.encoding)
        if COUNTERS.count_bytes:  # only once metrics are exported: a call per event
            encode = COUNTERS.counting(encode)
        timed = self._timer_slot is not None
        source: Any = self.iterator
        iterator = as_async_source(source)
        if iterator is not None:
            self._source = iterator
            sends = 0  # added to the process's counters every _YIELD_EVERY events
            # Locals: read once per event.
            idle, writing, most, every = _IDLE, _WRITING, MAX_SEND_BYTES, _YIELD_EVERY
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
                                {"type": "http.response.body", "body": body, "more_body": True}
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
                        await asyncio.sleep(0)  # let the disconnect watcher run (see above)
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
            route=self._route,
        ):
            return
        await self._finish(send)

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

    async def _watch_disconnect(self, receive: Receive) -> None:
        try:
            while (await receive())["type"] != "http.disconnect":
                pass  # request body the handler did not read
        except Exception:
            return
        if self._state in (_IDLE, _WRITING, _PINGING):
            self.stop("disconnect")

    # -- helpers -------------------------------------------------------------------------------

    def get_logger(self) -> logging.Logger:
        """The logger producer errors go to."""
        return self.logger or _FALLBACK_LOGGER

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


def _summary(exc: BaseException) -> str:
    """``Type: message`` of an exception for a log line, shortened (the traceback follows)."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 500 else f"{text[:480]}... ({len(text)} characters)"
