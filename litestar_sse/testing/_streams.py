"""``sse_stream`` and ``async_sse_stream``: open a stream with a test client, read its events."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread

from litestar_sse._compat import async_client_portal, client_portal
from litestar_sse.asgi import _runtime as runtime
from litestar_sse.codec._decoder import (
    DEFAULT_MAX_EVENT_LENGTH,
    DEFAULT_MAX_LINE_LENGTH,
    DecodedComment,
    DecodedEvent,
)
from litestar_sse.testing._connection import END, build_connection
from litestar_sse.testing._reader import StreamReader

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal
    from litestar.testing import AsyncTestClient, TestClient

__all__ = ("AsyncSSEStream", "SSEStream", "async_sse_stream", "sse_stream")

T = TypeVar("T")


class SSEStream(StreamReader):
    """An event stream opened by :func:`sse_stream`.

    Iterating yields each :class:`~litestar_sse.codec.DecodedEvent` as soon as it is complete and
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
        if message is END and self._connection.error is not None:
            raise self._connection.error
        self._handle(message)

    def _start(self) -> None:
        deadline = _deadline(self.timeout)
        while not self.status_code:
            self._read_message(deadline)


class AsyncSSEStream(StreamReader):
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
        if message is END and self._connection.error is not None:
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
        max_line_length: The decoder's limits (see :class:`~litestar_sse.codec.EventDecoder`): a
            longer line, or an event with longer data, raises
            :class:`~litestar_sse.codec.DecodeError` while reading the stream.
        max_event_length: See ``max_line_length``.
        **request_kwargs: Passed to ``client.build_request``: ``headers``, ``params``,
            ``json``, ``content``, ``data``, ``files``, ``cookies``.

    Yields:
        The :class:`SSEStream`, once the response has started (status and headers known).
        Leaving the block disconnects.

    Raises:
        TimeoutError: no response start within ``timeout``.
    """
    connection = build_connection(client, method, url, last_event_id, request_kwargs)
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
    connection = build_connection(client, method, url, last_event_id, request_kwargs)
    with async_client_portal(client) as portal:
        stream = AsyncSSEStream(portal, connection, timeout, max_line_length, max_event_length)
        await stream._call(connection.start)
        if portal is not None:
            finished = portal.start_task_soon(connection.run)
            wait_for_end: Callable[[], Awaitable[object]] = functools.partial(
                anyio.to_thread.run_sync, lambda: finished.result(timeout=timeout)
            )
        else:
            running = runtime.spawn(connection.run())  # asyncio's task, or trio's
            wait_for_end = functools.partial(_end_task, running, timeout)
        try:
            await stream._start()
            yield stream
        finally:
            await stream.close()
            with contextlib.suppress(Exception):
                await wait_for_end()


async def _end_task(task: Any, grace: float | None) -> None:
    """Wait ``grace`` seconds for the app to end after the disconnect, then cancel it."""
    if runtime.on_trio():
        with anyio.move_on_after(math.inf if grace is None else grace):
            await task  # a runtime.TrioTask: waits for its end, never cancels it
    else:
        await asyncio.wait({task}, timeout=grace)
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
