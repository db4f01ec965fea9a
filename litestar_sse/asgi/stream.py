"""The send loop: ``ASGIStreamingResponse``, a streaming body with disconnects and a send timeout.

This is the hot path, so it avoids per-event overhead. There is no lock, no thread hop and no
extra task per event. Each stream has:

* the task the server runs the app in. It pulls items, encodes them and sends them.
* one watcher task awaiting ``receive()``. On ``http.disconnect`` it stops the stream.
* at most one entry on the loop's timer wheel, only when pings or a send timeout are set. It
  wakes at most once per interval and does what :mod:`~litestar_sse.asgi.state` decides: ping
  an idle stream (the SSE subclass), stop one whose send is stuck, or wait.

The stream's whole state is one :class:`~litestar_sse.asgi.state.StreamState` plus the
:data:`~litestar_sse.asgi.state.StopReason` once it stops. Every way of stopping goes through
:meth:`ASGIStreamingResponse.stop`. Stopping is plain asyncio cancellation of the sending task,
which is edge-triggered: a producer's ``finally`` block may ``await`` to clean up without
shielding.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from time import monotonic
from typing import TYPE_CHECKING, Any, Final

from litestar.response.streaming import ASGIStreamingResponse as _LitestarASGIStreamingResponse

from litestar_sse.asgi.cancellation import cancel_requested, take_back_cancel
from litestar_sse.asgi.counters import COUNTERS
from litestar_sse.asgi.disconnect import DisconnectHandler, run_disconnect_handler, takes_reason
from litestar_sse.asgi.slices import MAX_SEND_BYTES, SlicedWrites
from litestar_sse.asgi.sources import as_async_source, close_source, encode_chunk
from litestar_sse.asgi.state import CLIENT_GONE, StopReason, StreamState
from litestar_sse.asgi.threaded_iterator import stream_batches
from litestar_sse.asgi.timed import TimedStream
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
_STOPPING: Final = StreamState.STOPPING
_FINISHING: Final = StreamState.FINISHING
_DONE: Final = StreamState.DONE

# Events after which the send loop gives the event loop a turn. Once a connection is lost,
# uvicorn's send() returns at once without writing: a producer that never awaits would then
# never let the disconnect watcher run, and would spin the event loop until it ends (for ever
# if it is endless). One ``sleep(0)`` per 256 events costs ~3% of the send loop with a send()
# that does nothing, less with a real server's.
_YIELD_EVERY: Final = 256


class ASGIStreamingResponse(TimedStream, SlicedWrites, _LitestarASGIStreamingResponse):
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
            (it stopped reading). The stream is then stopped and the producer closed.
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
        "_closing",
        "_context",
        "_host",
        "_iterated",
        "_last_write",
        "_loop",
        "_partial",
        "_partial_sent",
        "_pass_reason",
        "_send",
        "_source",
        "_state",
        "_tail",
        "_timer_slot",
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the response. A HEAD request gets the headers only; the producer never runs."""
        if scope.get("method") == "HEAD":
            # Litestar passes is_head_response only for file responses; without this a HEAD on
            # an endless stream would run it forever while the server discards the body.
            self.is_head_response = True
        try:
            await super().__call__(scope, receive, send)
        finally:
            if not self._iterated:
                await self._discard_producer()

    async def _discard_producer(self) -> None:
        """Close the producer of a body that was never sent (``HEAD``, a refused stream, a
        stop before the start, a client gone before the headers): its resources (a broadcast
        subscription, a generator's ``finally``) are released now, not by the garbage
        collector. A producer that never started runs no code."""
        self._iterated = True
        producer = self.iterator
        close = getattr(producer, "aclose", None)
        try:
            if close is not None:
                await close()
            elif inspect.isgenerator(producer):
                producer.close()
        except Exception:
            self.get_logger().exception("Exception raised while closing an unsent producer")

    @property
    def state(self) -> StreamState:
        """Where the stream is in its life."""
        return self._state

    # -- stopping ------------------------------------------------------------------------------

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
        host = self._host
        # The host's cancellation is pending while STOPPING; from FINISHING it is cancelled
        # anew. From NEW, send_body sees STOPPING when it starts; from the host itself (a send
        # that raised OSError) the send loop returns on its own.
        if host is not None and state is not _STOPPING and host is not asyncio.current_task():
            host.cancel()

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
        watcher = loop.create_task(self._watch_disconnect(receive))
        COUNTERS.streams_started += 1
        if self._state is _NEW:
            self._state = _IDLE
        if self.ping_interval is not None or self.send_timeout is not None:
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
            watcher.cancel()
            self._timer_slot = None  # the wheel's pending entry is ignored from now on
            self._drop_ping()
            source, self._source = self._source, None
            await close_source(source, self.get_logger())
        if self.stop_reason in CLIENT_GONE and self.on_disconnect is not None:
            await run_disconnect_handler(
                self.on_disconnect, self.stop_reason, self._pass_reason, self.get_logger()
            )

    async def _run(self, send: Send) -> None:
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
            idle, writing = _IDLE, _WRITING  # locals: this loop runs once per event
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
                        if len(body) <= MAX_SEND_BYTES:
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
                    if sends == _YIELD_EVERY:
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

    async def _wait_turn(self) -> None:
        """Wait until an event may be written: after the ping in flight; never once stopping."""
        while self._state is _PINGING:
            await self._wait_for_ping()
        if self._state is _STOPPING:
            # The producer swallowed our cancellation (or ended right after it): stop as the
            # reason says (a clean stop still sends its closing and the end of body).
            raise asyncio.CancelledError

    async def _finish(self, send: Send) -> None:
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
            "Exception raised while producing a streaming response; the stream was ended"
        )
        if self.on_error is not None:
            try:
                self._tail = self.on_error(exc)
            except Exception:
                logger.exception("Exception raised by the on_error handler")
