"""The send loop: ``ASGIStreamingResponse`` and ``ASGIStreamingSSEResponse``.

This is the hot path, so it avoids per-event overhead. There is no lock, no thread hop and no
extra task per event. Each stream has:

* the task the server runs the app in. It pulls items, encodes them and sends them.
* one watcher task awaiting ``receive()``. On ``http.disconnect`` it cancels the stream.
* at most one timer handle (``loop.call_at``), only when pings or a send timeout are set. It
  wakes at most once per interval, sends a ping only after the stream has been idle that long,
  and cuts a send that has been stuck longer than the send timeout.

Cancellation from the watcher is plain asyncio cancellation, which is edge-triggered: a
producer's ``finally`` block may ``await`` to clean up without shielding.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
)
from time import monotonic
from typing import TYPE_CHECKING, Any, Final, Literal

from litestar.response.streaming import ASGIStreamingResponse as _LitestarASGIStreamingResponse

from litestar_sse.asgi import timing
from litestar_sse.asgi.threaded_iterator import ThreadedIterator
from litestar_sse.asgi.timer_wheel import timer_wheel
from litestar_sse.codec.encoder import DEFAULT_SEPARATOR, check_separator, encode_comment
from litestar_sse.compat import build_asgi_response
from litestar_sse.validation import check_seconds

if TYPE_CHECKING:
    from litestar.background_tasks import BackgroundTask, BackgroundTasks
    from litestar.datastructures.cookie import Cookie
    from litestar.enums import MediaType
    from litestar.types import HTTPResponseBodyEvent, Receive, Scope, Send

    from litestar_sse.message import ItemEncoder

__all__ = (
    "ASGIStreamingResponse",
    "ASGIStreamingSSEResponse",
    "DisconnectHandler",
    "DisconnectReason",
)

DisconnectReason = Literal["disconnect", "send_timeout", "overflow"]
"""Why the client is gone: it closed the connection (or the server reported it closed), it
stopped reading and a send waited longer than ``send_timeout``, or (a broadcast subscriber)
it fell further behind than its queue allows and was cut to resume from history."""

DisconnectHandler = (
    Callable[[], "Awaitable[None] | None"] | Callable[[DisconnectReason], "Awaitable[None] | None"]
)
"""Called once when the client goes away before the stream ended (sync or async), with no
argument or with the :data:`DisconnectReason` if it accepts one."""

CutReason = Literal["disconnect", "send_timeout", "overflow", "shutdown", "lifetime"]

_FALLBACK_LOGGER: Final = logging.getLogger("litestar_sse")

_STREAMING, _FINISHING, _DONE = 0, 1, 2
_GRACEFUL: Final = frozenset(("shutdown", "lifetime"))
_CLIENT_GONE: Final = frozenset(("disconnect", "send_timeout", "overflow"))

# Containers whose iteration cannot block: iterated inline, without a worker thread.
_INLINE_ITERABLES: Final = (list, tuple, range, dict, set, frozenset)

# Events after which the send loop gives the event loop a turn. Once a connection is lost,
# uvicorn's send() returns at once without writing: a producer that never awaits would then
# never let the disconnect watcher run, and would spin the event loop until it ends (for ever
# if it is endless). One ``sleep(0)`` per 256 events costs ~3% of the send loop with a send()
# that does nothing, less with a real server's.
_YIELD_EVERY: Final = 256


class ASGIStreamingResponse(_LitestarASGIStreamingResponse):
    """A streaming response with disconnect handling, a send timeout and prompt cleanup.

    Accepts every keyword argument of :class:`litestar.response.streaming.ASGIStreamingResponse`
    and keeps its ``send_body(send, receive)`` entry point.

    Args:
        iterator: A sync or async iterable of chunks. Lists, tuples and ranges are iterated
            inline; any other sync iterator runs in one worker thread for the whole stream,
            so a blocking iterator never blocks the event loop.
        item_encoder: Turns each item into bytes. Defaults to passing ``bytes`` through and
            encoding ``str`` with ``encoding``.
        send_timeout: Seconds a single send may take before the client is considered gone
            (it stopped reading). The stream is then cut and the producer closed.
        on_disconnect: Called once if the client goes away before the stream ends: it
            disconnected, a send timed out, or the server reported the connection closed.
            If it accepts one positional argument, it gets the reason: ``"disconnect"`` or
            ``"send_timeout"`` (or ``"overflow"``, for a broadcast subscriber).
        logger: Where producer errors are logged. Defaults to the ``litestar_sse`` logger.
    """

    __slots__ = (
        "_active",
        "_context",
        "_cut",
        "_hold",
        "_host",
        "_last_write",
        "_loop",
        "_pass_reason",
        "_phase",
        "_ping_bytes",
        "_ping_task",
        "_send",
        "_sending",
        "_timer_slot",
        "closing_event",
        "item_encoder",
        "logger",
        "on_disconnect",
        "ping_interval",
        "send_timeout",
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
        self._pass_reason = on_disconnect is not None and _takes_reason(on_disconnect)
        self.logger = logger
        self.closing_event: bytes = b""
        """Bytes sent before the end of the body when the stream is cut gracefully."""
        self.ping_interval: float | None = None
        self._ping_bytes = b""
        self._cut: CutReason | None = None
        self._host: asyncio.Task[Any] | None = None
        self._context: contextvars.Context | None = None
        self._phase = _STREAMING
        self._active: AsyncIterator[Any] | None = None
        self._sending = False
        self._last_write = 0.0
        # The slot of this stream's pending check on the loop's timer wheel, None when none.
        self._timer_slot: int | None = None
        self._ping_task: asyncio.Task[None] | None = None
        # True while a ping is in flight or after a cut: one check per event covers both.
        self._hold = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the response. A HEAD request gets the headers only; the producer never runs."""
        if scope.get("method") == "HEAD":
            # Litestar passes is_head_response only for file responses; without this a HEAD on
            # an endless stream would run it forever while the server discards the body.
            self.is_head_response = True
        await super().__call__(scope, receive, send)

    # -- the stream -------------------------------------------------------------------------

    async def send_body(self, send: Send, receive: Receive) -> None:
        """Send every item as an ``http.response.body`` event, then end the body.

        Returns when the stream is exhausted, the client disconnected, a send timed out or the
        stream was cut by :meth:`cut`.
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
        self._phase = _STREAMING
        watcher = loop.create_task(self._watch_disconnect(receive))
        if self.ping_interval is not None or self.send_timeout is not None:
            self._last_write = monotonic()
            self._arm_timer(self._last_write)
        try:
            try:
                if self._cut is None:
                    await self._stream(send)
                elif self._cut in _GRACEFUL:  # cut before it started: the producer never runs
                    await self._end_gracefully(send)
            except asyncio.CancelledError:
                if self._cut is None or _cancelled_by_others(host):
                    raise
                uncancel = getattr(host, "uncancel", None)
                if uncancel is not None:
                    uncancel()
                if self._cut in _GRACEFUL:
                    await self._end_gracefully(send)
        finally:
            self._phase = _DONE
            self._context = None  # the request's context: not kept alive by the response
            watcher.cancel()
            self._timer_slot = None  # the wheel's pending entry is ignored from now on
            if self._ping_task is not None:
                self._ping_task.cancel()
            await self._close_source()
        if self._cut in _CLIENT_GONE and self.on_disconnect is not None:
            await self._run_disconnect_handler()

    async def _stream(self, send: Send) -> None:
        source = self.iterator
        encode = self.item_encoder or self._encode_chunk
        timed = self._timer_slot is not None
        if isinstance(source, _INLINE_ITERABLES):
            source = _iterate_inline(source)
        if isinstance(source, AsyncIterable):
            self._active = iterator = aiter(source)
            sends = 0
            try:
                async for item in iterator:
                    body = encode(item)
                    if timed:
                        # Inline: a coroutine call per event would cost more than all of this.
                        if self._hold:
                            await self._wait_for_ping()
                        self._sending = True
                        self._last_write = monotonic()
                    elif self._cut is not None:
                        # The producer swallowed our cancellation: end as the cut says (a
                        # graceful cut still sends the closing event and the end of body).
                        raise asyncio.CancelledError
                    try:
                        await send({"type": "http.response.body", "body": body, "more_body": True})
                    except OSError:
                        self._client_gone()
                        return
                    self._sending = False
                    sends += 1
                    if sends == _YIELD_EVERY:
                        sends = 0
                        await asyncio.sleep(0)  # let the disconnect watcher run (see above)
            except Exception:
                self._log_producer_error()
        else:
            threaded = ThreadedIterator(iter(source))
            try:
                if not await self._stream_batches(threaded, encode, send, timed):
                    return
            finally:
                threaded.stop()
        await self._finish(send)

    async def _stream_batches(
        self, threaded: ThreadedIterator[Any], encode: ItemEncoder, send: Send, timed: bool
    ) -> bool:
        """Send the batches of a threaded iterator; False when the client went away."""
        # Items that are already waiting go out together in one send: no added latency.
        sent = 0
        while True:
            chunks: list[bytes] = []
            failed = False
            try:
                # extend() keeps what was encoded before an item that fails
                chunks.extend(encode(item) for item in await threaded.next_batch())
            except StopAsyncIteration:
                return True
            except Exception:
                self._log_producer_error()
                failed = True
            if chunks:
                if timed:
                    await self._before_write()
                body = b"".join(chunks)
                try:
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                except OSError:
                    self._client_gone()
                    return False
                self._sending = False
                # A full buffer hands over the next batch without waiting: as in _stream, give
                # the disconnect watcher a turn every _YIELD_EVERY items.
                sent += len(chunks)
                if sent >= _YIELD_EVERY:
                    sent = 0
                    await asyncio.sleep(0)
            if failed:
                return True

    async def _finish(self, send: Send) -> None:
        # From here on the watcher ignores the server's post-response ``http.disconnect``; the
        # send timeout still covers the last send.
        if self._cut is not None:
            raise asyncio.CancelledError  # the producer swallowed our cancellation, then ended
        self._phase = _FINISHING
        if self._ping_task is not None:
            await self._ping_task
        self._sending = True
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _end_gracefully(self, send: Send) -> None:
        # Shutdown or maximum lifetime: the client gets whole events and a clean end of body,
        # then reconnects (with Last-Event-ID) elsewhere or later.
        self._phase = _FINISHING
        if self._ping_task is not None:
            self._ping_task.cancel()
            self._ping_task = None
        self._sending = True
        with contextlib.suppress(OSError):
            if self.closing_event:
                await send(
                    {"type": "http.response.body", "body": self.closing_event, "more_body": True}
                )
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _encode_chunk(self, chunk: Any) -> bytes:
        if type(chunk) is bytes:
            return chunk
        if isinstance(chunk, str):
            return chunk.encode(self.encoding)
        if isinstance(chunk, (bytearray, memoryview)):
            return bytes(chunk)
        raise TypeError(f"Stream items must be str or bytes, got {type(chunk).__name__}")

    def _client_gone(self) -> None:
        # The server raised OSError from send(): the connection is closed, as with a disconnect.
        if self._cut is None:
            self._cut = "disconnect"
            self._hold = True

    async def _wait_for_ping(self) -> None:
        if self._cut is not None:
            raise asyncio.CancelledError  # the producer swallowed our cancellation
        if self._ping_task is not None:
            await self._ping_task  # never interleave a ping with an event

    async def _before_write(self) -> None:
        await self._wait_for_ping()
        self._sending = True
        self._last_write = monotonic()

    async def _close_source(self) -> None:
        # An async generator interrupted at a ``yield`` runs its ``finally`` here, in this task,
        # where it may await. One interrupted at an ``await`` already ran it; aclose() is a no-op.
        aclose = getattr(self._active, "aclose", None)
        self._active = None
        if aclose is None:
            return
        try:
            await aclose()
        except Exception:
            self.get_logger().exception("Exception raised while closing the stream's producer")

    async def _run_disconnect_handler(self) -> None:
        handler: Callable[..., Awaitable[None] | None] | None = self.on_disconnect
        assert handler is not None
        try:
            result = handler(self._cut) if self._pass_reason else handler()
            if result is not None:
                await result
        except Exception:
            self.get_logger().exception("Exception raised by the on_disconnect handler")

    # -- disconnects, timers, pings ------------------------------------------------------------

    async def _watch_disconnect(self, receive: Receive) -> None:
        try:
            while (await receive())["type"] != "http.disconnect":
                pass  # request body the handler did not read
        except Exception:
            return
        if self._phase == _STREAMING:
            self.cut("disconnect")

    def cut(self, reason: CutReason) -> None:
        """End the stream now and close its producer.

        For ``"disconnect"``, ``"send_timeout"`` and ``"overflow"`` nothing more is sent, and
        ``on_disconnect`` gets that reason. For ``"shutdown"`` and ``"lifetime"`` the stream
        ends cleanly: the event being sent is completed, then :attr:`closing_event` (if any)
        and the end of the body are sent. Safe to call from any callback on the event loop;
        does nothing once the stream ended. Called before the stream started, it ends the
        stream as soon as it starts, without running the producer.
        """
        if self._phase == _DONE or self._cut is not None:
            return
        if self._phase == _FINISHING and reason in _GRACEFUL:
            return  # the body is already ending cleanly; a cancel could end it twice
        self._cut = reason
        self._hold = True
        if self._host is not None:  # else not started: send_body ends it as soon as it starts
            self._host.cancel()

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
        if self._phase == _DONE:
            return
        now = monotonic()
        action, self._last_write = timing.on_timer(
            now=now,
            last_write=self._last_write,
            writing=self._sending,
            streaming=self._phase == _STREAMING,
            ping_interval=self.ping_interval,
            send_timeout=self.send_timeout,
        )
        if action == "cut":
            self.get_logger().warning(
                "SSE client did not read for %.1f s; closing the stream", now - self._last_write
            )
            self.cut("send_timeout")
            return
        if action == "ping":
            self._start_ping()
        self._arm_timer(now)

    def _arm_timer(self, now: float) -> None:
        deadline = timing.next_check(
            now=now,
            last_write=self._last_write,
            writing=self._sending,
            ping_interval=self.ping_interval,
            send_timeout=self.send_timeout,
        )
        self._timer_slot = timer_wheel(self._loop).schedule(self, max(deadline, now + 0.001))

    def _start_ping(self) -> None:
        # A server's send() for a small body normally completes without suspending (uvicorn
        # writes to the transport and returns), so it is run here, inline: no task per ping.
        # Only a send that has to wait (flow control) is finished in a task.
        self._sending = True
        self._hold = True
        message: HTTPResponseBodyEvent = {
            "type": "http.response.body",
            "body": self._ping_bytes,
            "more_body": True,
        }
        ping = self._send(message).__await__()
        try:
            awaited = next(ping)
        except StopIteration:
            self._ping_sent()
            return
        except OSError:
            self._ping_sent()
            self.cut("disconnect")
            return
        except Exception:
            self._ping_sent()
            self.get_logger().exception("Exception raised while sending a keep-alive ping")
            return
        self._ping_task = self._loop.create_task(self._finish_ping(ping, awaited))

    async def _finish_ping(self, ping: Generator[Any, None, Any], awaited: Any) -> None:
        try:
            await _Resumed(ping, awaited)
        except OSError:
            self.cut("disconnect")
        finally:
            self._ping_task = None
            self._ping_sent()

    def _ping_sent(self) -> None:
        self._sending = False
        self._hold = self._cut is not None

    # -- helpers -------------------------------------------------------------------------------

    def get_logger(self) -> logging.Logger:
        """The logger producer errors go to."""
        return self.logger or _FALLBACK_LOGGER

    def _log_producer_error(self) -> None:
        self.get_logger().exception(
            "Exception raised while producing a streaming response; the stream was ended"
        )


class ASGIStreamingSSEResponse(ASGIStreamingResponse):
    """A ``text/event-stream`` response with idle pings.

    Accepts the keyword arguments of :class:`ASGIStreamingResponse` (and so of Litestar's)
    plus:

    Args:
        ping_interval: Seconds without any write after which a comment ping is sent; ``None``
            disables pings (``0`` is refused, as everywhere). Pings never interleave with an
            event and are covered by ``send_timeout``.
        ping_message: The comment text of a ping.
        sep: Line ending of the ping: ``"\\r\\n"``, ``"\\n"`` or ``"\\r"``.
    """

    __slots__ = ()

    def __init__(
        self,
        *,
        ping_interval: float | None = None,
        ping_message: str = "ping",
        sep: str = DEFAULT_SEPARATOR,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("media_type", "text/event-stream")
        super().__init__(**kwargs)
        self.ping_interval = check_seconds(ping_interval, "ping_interval")
        sep_bytes = check_separator(sep).encode()
        self._ping_bytes = encode_comment(ping_message, sep_bytes) + sep_bytes
        self.headers.setdefault("cache-control", "no-cache")
        self.headers.setdefault("x-accel-buffering", "no")

    def add_keep_alive(self, scope: Scope) -> None:
        """Add ``Connection: keep-alive`` for an HTTP/1.1 request (HTTP/2 forbids the header).

        Not when the client asked for ``Connection: close`` (the server then says so itself),
        nor over a ``Connection`` header the app set. Called when the response is built from a
        request (so ``encode_headers()`` shows it, as with Litestar's response) and again
        when it is sent.
        """
        if (
            scope.get("http_version", "1.1") == "1.1"
            and "connection" not in self.headers
            and not _asks_to_close(scope)
        ):
            self.headers["connection"] = "keep-alive"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the response, with ``Connection: keep-alive`` where it belongs."""
        self.add_keep_alive(scope)
        await super().__call__(scope, receive, send)


def _asks_to_close(scope: Scope) -> bool:
    return any(
        name == b"connection" and b"close" in value.lower() for name, value in scope["headers"]
    )


def _takes_reason(handler: DisconnectHandler) -> bool:
    """Whether ``on_disconnect`` takes the reason (one positional argument) or nothing.

    Raises :class:`TypeError` at construction for a callable that takes neither.
    """
    if not callable(handler):
        raise TypeError(f"on_disconnect must be callable, got {type(handler).__name__}")
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):
        return False  # no signature to read (some builtins): called without arguments
    for args, takes_reason in ((("disconnect",), True), ((), False)):
        try:
            signature.bind(*args)
        except TypeError:
            continue
        return takes_reason
    raise TypeError(
        f"on_disconnect must accept no argument or one (the reason), got {handler!r}{signature}"
    )


async def _iterate_inline(items: Iterable[Any]) -> AsyncIterator[Any]:
    # A container cannot block: it is iterated on the loop, by the same send loop as async
    # producers, with no worker thread.
    for item in items:
        yield item


class _Resumed:
    """Awaitable that finishes a coroutine which was stepped by hand and is now waiting.

    ``awaited`` is what the coroutine yielded (the future it waits for); the task awaiting this
    object waits for it exactly as if it had been running the coroutine from the start.
    """

    __slots__ = ("awaited", "steps")

    def __init__(self, steps: Generator[Any, None, Any], awaited: Any) -> None:
        self.steps = steps
        self.awaited = awaited

    def __await__(self) -> Generator[Any, None, Any]:
        try:
            yield self.awaited
        except BaseException:
            close = getattr(self.steps, "close", None)
            if close is not None:
                close()
            raise
        return (yield from self.steps)


def _cancelled_by_others(task: asyncio.Task[Any]) -> bool:
    cancelling = getattr(task, "cancelling", None)
    return cancelling is not None and cancelling() > 1
