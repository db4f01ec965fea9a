"""Test helpers: open an event stream with Litestar's test clients and read parsed events.

Litestar's ``TestClient`` runs the app until the response is complete before it returns, so an
endless stream would never return. :func:`sse_stream` instead runs the app for one request on
the client's event loop (its blocking portal, where the app's lifespan runs too) and hands every
body chunk over as it is sent; leaving the ``with`` block disconnects, as a browser closing the
page does, so the app sees ``http.disconnect`` and closes its producer.

Example:
    .. code-block:: python

        from itertools import islice

        from litestar.testing import TestClient
        from litestar_sse.testing import sse_stream

        with TestClient(app) as client:
            with sse_stream(client, "GET", "/events", last_event_id="41") as stream:
                assert stream.status_code == 200
                first, second = islice(stream, 2)  # DecodedEvent objects
                assert stream.comments == []  # pings seen so far

The async variant :func:`async_sse_stream` works the same with ``AsyncTestClient``:
``async with async_sse_stream(client, "GET", "/events") as stream: async for event in stream``.

Events are parsed by :class:`~litestar_sse.EventDecoder`, exactly as a browser would.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio
import anyio.to_thread
import httpx

from litestar_sse.codec.decoder import (
    DEFAULT_MAX_EVENT_LENGTH,
    DEFAULT_MAX_LINE_LENGTH,
    DecodedComment,
    DecodedEvent,
    EventDecoder,
)
from litestar_sse.compat import async_client_portal, client_portal, client_scope

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
    from litestar.testing import AsyncTestClient, TestClient
    from litestar.types import HTTPDisconnectEvent, HTTPRequestEvent, Message

__all__ = ("AsyncSSEStream", "SSEStream", "async_sse_stream", "sse_stream")

T = TypeVar("T")

_END: Final = object()
_WBITS: Final = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_BUFFER: Final = 64  # body chunks in flight before the app's send waits for the test


class _AppConnection:
    """One request to the app, served on the portal's event loop.

    The app's ``send`` puts messages into a bounded in-memory stream that the test reads across
    the thread boundary; ``receive`` gives the request body, then waits for the disconnect.
    """

    __slots__ = (
        "_disconnected",
        "_error",
        "_messages_in",
        "_messages_out",
        "_request_sent",
        "app",
        "body",
        "scope",
    )

    def __init__(self, app: Any, scope: dict[str, Any], body: bytes) -> None:
        self.app = app
        self.scope = scope
        self.body = body
        self._request_sent = False
        self._error: BaseException | None = None

    async def start(self) -> None:
        """Create the loop-bound primitives (called on the portal's loop)."""
        self._disconnected = anyio.Event()
        out: tuple[MemoryObjectSendStream[Any], MemoryObjectReceiveStream[Any]]
        out = anyio.create_memory_object_stream(_BUFFER)
        self._messages_in, self._messages_out = out

    async def run(self) -> None:
        """Run the app to the end; the test reads ``_END`` after the last message."""
        try:
            await self.app(self.scope, self._receive, self._send)
        except BaseException as exc:  # handed to the test, re-raised there
            self._error = exc
            if not isinstance(exc, Exception):
                raise
        finally:
            self._messages_in.close()  # the test reads what is buffered, then the end

    async def _receive(self) -> HTTPRequestEvent | HTTPDisconnectEvent:
        if not self._request_sent:
            self._request_sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self._disconnected.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        if self._disconnected.is_set():
            return  # like a server whose client has gone: the message is dropped
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await self._messages_in.send(message)

    async def next_message(self, wait: float | None) -> Any:
        """The app's next message, ``_END`` once it returned; TimeoutError after ``wait`` s."""
        try:
            with anyio.fail_after(wait):
                return await self._messages_out.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return _END
        except TimeoutError:
            raise TimeoutError("Nothing more from the event stream within the timeout") from None

    def next_message_left(self) -> Any:
        """The next message the app sent before its loop stopped, ``_END`` when none is left.

        Litestar 3's ``TestClient`` stops its event loop when the client exits, which may
        happen while a test still reads the stream (a shutdown test): nothing runs any more,
        so the buffer is read directly.
        """
        try:
            return self._messages_out.receive_nowait()
        except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
            return _END

    def drop(self) -> None:
        """Close the test's end of the buffer once the app's loop has stopped."""
        self._messages_out.close()

    async def disconnect(self) -> None:
        """Tell the app the client has gone, and unblock any send waiting for room."""
        self._disconnected.set()
        self._messages_out.close()

    @property
    def error(self) -> BaseException | None:
        """The exception the app raised, if any."""
        return self._error


def _build_connection(
    client: TestClient[Any] | AsyncTestClient[Any],
    method: str,
    url: str,
    last_event_id: str | None,
    request_kwargs: Mapping[str, Any],
) -> _AppConnection:
    request = client.build_request(method, url, **request_kwargs)
    if last_event_id is not None:
        request.headers["Last-Event-ID"] = last_event_id
    body = request.read()
    scope = client_scope(client, request)
    scope.update(method=request.method, http_version="1.1", extensions={})
    return _AppConnection(client.app, scope, body)


class _StreamState:
    """What both stream classes share: the decoder and what was read so far."""

    # A dict: autodoc shows each public slot with its text, on both stream classes.
    __slots__ = {
        "_connection": None,
        "_decoder": None,
        "_inflate": None,
        "_pending": None,
        "_portal": None,
        "body": "Every body byte received so far (inflated, for a gzip or deflate response).",
        "comments": "The text of every comment line (``: ping`` ...) received so far, in order.",
        "ended": "True once the app ended the body.",
        "headers": "The response headers.",
        "status_code": "The response status.",
        "timeout": "Seconds to wait for each event (or the end); ``None`` waits forever.",
    }

    def __init__(
        self,
        portal: BlockingPortal | None,
        connection: _AppConnection,
        timeout: float | None,
        max_line_length: int | None,
        max_event_length: int | None,
    ) -> None:
        self._portal = portal
        self._connection = connection
        self.timeout = timeout
        self.status_code = 0
        self.headers = httpx.Headers()
        self.body = bytearray()
        self.comments: list[str] = []
        self.ended = False
        self._decoder = EventDecoder(
            max_line_length=max_line_length, max_event_length=max_event_length
        )
        self._inflate: Any = None
        self._pending: deque[DecodedEvent | DecodedComment] = deque()

    @property
    def last_event_id(self) -> str:
        """The last event id, as a browser would send it back when reconnecting."""
        return self._decoder.last_event_id

    def _handle(self, message: Any) -> None:
        if message is _END:
            if not self.status_code:
                raise RuntimeError("The app returned without starting a response")
            self._end()
            return
        kind = message["type"]
        if kind == "http.response.start":
            self.status_code = message["status"]
            self.headers = httpx.Headers(
                [
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in message["headers"]
                ]
            )
            coding = self.headers.get("content-encoding", "").strip().lower()
            if coding in _WBITS:
                # Litestar's compression middleware flushes per chunk: inflate as it comes.
                self._inflate = zlib.decompressobj(_WBITS[coding])
        elif kind == "http.response.body":
            chunk = message.get("body", b"")
            if chunk and self._inflate is not None:
                chunk = self._inflate.decompress(chunk)
            if chunk:
                self.body += chunk
                for item in self._decoder.feed_with_comments(chunk):
                    if isinstance(item, DecodedComment):
                        self.comments.append(item.text)
                    self._pending.append(item)
            if not message.get("more_body", False):
                self._end()

    def _pop(self, events_only: bool) -> DecodedEvent | DecodedComment | None:
        pending = self._pending
        while pending:
            item = pending.popleft()
            if not events_only or isinstance(item, DecodedEvent):
                return item
        return None

    def _end(self) -> None:
        if not self.ended:
            self.ended = True
            self._decoder.close()


class SSEStream(_StreamState):
    """An event stream opened by :func:`sse_stream`.

    Iterating yields each :class:`~litestar_sse.DecodedEvent` as soon as it is complete and
    stops when the app ends the body. Waiting longer than the stream's ``timeout`` for the next
    event raises :class:`TimeoutError` (pings do not count as events). Comments (pings) are
    collected in :attr:`comments`; :meth:`iter_with_comments` yields them in stream order too.
    """

    def __iter__(self) -> Iterator[DecodedEvent]:
        return self._items(events_only=True)  # type: ignore[return-value]

    def iter_with_comments(self) -> Iterator[DecodedEvent | DecodedComment]:
        """Yield events and comments in stream order until the body ends."""
        return self._items(events_only=False)

    def _items(self, *, events_only: bool) -> Iterator[DecodedEvent | DecodedComment]:
        while True:
            deadline = _deadline(self.timeout)
            while (item := self._pop(events_only)) is None:
                if self.ended:
                    return
                self._read_message(deadline)
            yield item

    @property
    def _sync_portal(self) -> BlockingPortal:
        assert self._portal is not None  # sse_stream always runs the app on a portal
        return self._portal

    def read(self) -> bytes:
        """Read until the body ends (within ``timeout``) and return the whole body."""
        deadline = _deadline(self.timeout)
        while not self.ended:
            self._read_message(deadline)
        return bytes(self.body)

    def close(self) -> None:
        """Disconnect: the app sees ``http.disconnect`` and closes its producer."""
        try:
            self._sync_portal.call(self._connection.disconnect)
        except RuntimeError:  # the client (and its loop) already stopped: nothing runs
            self._connection.drop()

    def _read_message(self, deadline: float | None) -> None:
        try:
            message = self._sync_portal.call(self._connection.next_message, _remaining(deadline))
        except RuntimeError:  # the client exited and its loop stopped
            message = self._connection.next_message_left()
        if message is _END and self._connection.error is not None:
            raise self._connection.error
        self._handle(message)

    def _start(self) -> None:
        deadline = _deadline(self.timeout)
        while not self.status_code:
            self._read_message(deadline)


class AsyncSSEStream(_StreamState):
    """An event stream opened by :func:`async_sse_stream`; see :class:`SSEStream`."""

    def __aiter__(self) -> AsyncIterator[DecodedEvent]:
        return self._items(events_only=True)  # type: ignore[return-value]

    def iter_with_comments(self) -> AsyncIterator[DecodedEvent | DecodedComment]:
        """Yield events and comments in stream order until the body ends."""
        return self._items(events_only=False)

    async def _items(self, *, events_only: bool) -> AsyncIterator[DecodedEvent | DecodedComment]:
        while True:
            deadline = _deadline(self.timeout)
            while (item := self._pop(events_only)) is None:
                if self.ended:
                    return
                await self._read_message(deadline)
            yield item

    async def read(self) -> bytes:
        """Read until the body ends (within ``timeout``) and return the whole body."""
        deadline = _deadline(self.timeout)
        while not self.ended:
            await self._read_message(deadline)
        return bytes(self.body)

    async def close(self) -> None:
        """Disconnect: the app sees ``http.disconnect`` and closes its producer."""
        with contextlib.suppress(RuntimeError):  # the client (and its loop) already stopped
            await self._call(self._connection.disconnect)

    async def _call(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        # On the app's loop: the client's portal (Litestar 2), else the test's own (Litestar 3).
        if self._portal is None:
            return await function(*args)
        return await anyio.to_thread.run_sync(self._portal.call, function, *args)

    async def _read_message(self, deadline: float | None) -> None:
        message = await self._call(self._connection.next_message, _remaining(deadline))
        if message is _END and self._connection.error is not None:
            raise self._connection.error
        self._handle(message)

    async def _start(self) -> None:
        deadline = _deadline(self.timeout)
        while not self.status_code:
            await self._read_message(deadline)


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


@contextlib.contextmanager
def sse_stream(
    client: TestClient[Any],
    method: str,
    url: str,
    *,
    last_event_id: str | None = None,
    timeout: float | None = 5.0,
    max_line_length: int | None = DEFAULT_MAX_LINE_LENGTH,
    max_event_length: int | None = DEFAULT_MAX_EVENT_LENGTH,
    **request_kwargs: Any,
) -> Iterator[SSEStream]:
    """Open an event stream on a ``TestClient``; the stream is read as the app sends it.

    Args:
        client: A :class:`litestar.testing.TestClient` (entered or not: an entered client
            shares its event loop and lifespan with the stream).
        method: The HTTP method, ``"GET"``, ``"POST"``, ...
        url: The URL, relative to the client's base URL.
        last_event_id: Sent as the ``Last-Event-ID`` header, as a reconnecting browser does.
        timeout: Seconds to wait for the response to start, for each event while iterating
            and for the end in ``read()``; then :class:`TimeoutError` is raised. ``None`` waits
            forever.
        max_line_length: The decoder's limits (see :class:`~litestar_sse.EventDecoder`): a
            longer line, or an event with longer data, raises
            :class:`~litestar_sse.DecodeError` while reading the stream.
        max_event_length: See ``max_line_length``.
        **request_kwargs: Passed to ``client.build_request``: ``headers``, ``params``,
            ``json``, ``content``, ``data``, ``files``, ``cookies``.

    Yields:
        The :class:`SSEStream`, once the response has started (status and headers known).
        Leaving the block disconnects.

    Raises:
        TimeoutError: no response start within ``timeout``.
    """
    connection = _build_connection(client, method, url, last_event_id, request_kwargs)
    with client_portal(client) as portal:
        portal.call(connection.start)
        finished = portal.start_task_soon(connection.run)
        stream = SSEStream(portal, connection, timeout, max_line_length, max_event_length)
        try:
            stream._start()
            yield stream
        finally:
            stream.close()
            with contextlib.suppress(Exception):
                finished.result(timeout=timeout)


@contextlib.asynccontextmanager
async def async_sse_stream(
    client: AsyncTestClient[Any],
    method: str,
    url: str,
    *,
    last_event_id: str | None = None,
    timeout: float | None = 5.0,  # noqa: ASYNC109 (per read of the stream, not for this call)
    max_line_length: int | None = DEFAULT_MAX_LINE_LENGTH,
    max_event_length: int | None = DEFAULT_MAX_EVENT_LENGTH,
    **request_kwargs: Any,
) -> AsyncIterator[AsyncSSEStream]:
    """Open an event stream on an ``AsyncTestClient``; see :func:`sse_stream`.

    The app runs where the client runs it: on its portal's event loop (Litestar 2), or on the
    test's own loop (Litestar 3). Either way the test's loop is never blocked while waiting
    for events.
    """
    connection = _build_connection(client, method, url, last_event_id, request_kwargs)
    with async_client_portal(client) as portal:
        stream = AsyncSSEStream(portal, connection, timeout, max_line_length, max_event_length)
        await stream._call(connection.start)
        if portal is not None:
            finished = portal.start_task_soon(connection.run)
            wait_for_end: Callable[[], Awaitable[object]] = functools.partial(
                anyio.to_thread.run_sync, lambda: finished.result(timeout=timeout)
            )
        else:
            running = asyncio.get_running_loop().create_task(connection.run())
            wait_for_end = functools.partial(_end_task, running, timeout)
        try:
            await stream._start()
            yield stream
        finally:
            await stream.close()
            with contextlib.suppress(Exception):
                await wait_for_end()


async def _end_task(task: asyncio.Task[None], grace: float | None) -> None:
    """Wait ``grace`` seconds for the app to end after the disconnect, then cancel it."""
    await asyncio.wait({task}, timeout=grace)
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
