"""``EventSource``: read an event stream from async code, reconnecting and resuming."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator, Mapping, Sequence
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar, overload

import anyio
import httpx

from litestar_sse.client._events import (
    Event,
    EventSourceError,
    Gap,
)
from litestar_sse.client._h2 import areset_stream
from litestar_sse.client._session import (
    DEFAULT_LIMITS,
    Session,
    check_response,
)
from litestar_sse.codec import DecodedEvent

__all__ = ("EventSource",)

T = TypeVar("T")


class EventSource(Generic[T]):
    """An event stream read from async code, as a browser's ``EventSource`` reads it, and more.

    Use it as an async context manager and iterate it::

        async with EventSource("https://example.org/rooms/7/events") as source:
            async for event in source:
                print(event.event, event.data, event.id)

    It reconnects after a dropped connection or a stream that ended, waiting the server's
    ``retry`` (else ``retry`` here), longer when attempts fail in a row, and resumes with
    ``Last-Event-ID``: an event whose blank line never arrived is never yielded, nor its id
    sent. It stops on ``204``; ends with :class:`ResponseError` on a ``4xx`` other than
    ``408``/``429`` or a response that is not ``text/event-stream``; tries ``408``, ``429``
    and ``5xx`` again, honouring ``Retry-After``. When the server says events were missed
    (``SSE-Gap`` and its gap event), a :class:`Gap` is yielded where they were lost.

    Leaving the ``async with`` (``break``, an exception, cancellation) ends the request at once,
    over HTTP/2 too, so the server stops producing.

    Args:
        url: The stream's URL.
        method: The request's method. Sources whose method is not idempotent (``POST``...)
            do not reconnect unless ``reconnect=True``.
        params: Query parameters.
        headers: Request headers (``Accept: text/event-stream`` and ``Cache-Control:
            no-store`` are sent unless given here).
        content: A request body, bytes or text.
        json: A request body sent as JSON.
        data: A request body sent as a form.
        auth: httpx authentication (a tuple, an ``httpx.Auth``...).
        client: An ``httpx.AsyncClient`` to send with (its base URL, cookies, transport,
            HTTP/2...). Not closed by the source. Without one, the source makes its own and
            closes it.
        http2: With no ``client``: speak HTTP/2 where the server does (``httpx[http2]``).
        timeout: Seconds to connect, to write the request and to wait for a pooled
            connection (``None``: the client's timeouts).
        idle_timeout: Seconds without a byte (an event or a ping comment) after which the
            connection counts as dead and the source reconnects. ``None`` (the default)
            waits for ever, as a browser does; set it to a few times the server's ping
            interval (``SSEConfig.ping_interval``, 15 s by default) to notice dead peers.
        follow_redirects: Follow redirects (a loop ends the source with an error).
        reconnect: Reconnect after the stream ends or breaks. ``None`` (the default): only
            for idempotent methods, so a ``POST`` is never sent twice unless asked; without
            reconnecting, a stream that ends ends the iteration and a broken one raises.
        retry: Seconds to wait before reconnecting until the server sends ``retry``
            (browsers wait about 3 s).
        min_delay: The shortest wait between two attempts, whatever the server says (a
            server sending ``retry: 0`` cannot make the source reconnect in a tight loop).
        max_delay: The longest wait when attempts fail in a row (the wait doubles per
            failure, with jitter). A longer server ``retry`` or ``Retry-After`` is honoured.
        max_attempts: Failed attempts in a row after which the source raises
            :class:`EventSourceError` (``None``: never gives up, as a browser).
        last_event_id: Resume after this id from the first request on.
        data_type: Decode each event's data into this type (a msgspec ``Struct``, a
            dataclass, a pydantic model, ``dict``...) as :attr:`Event.value`, with msgspec's
            JSON rules, the server's.
        gap_event: The event type of the server's gap events (``None``: no event is read as
            a gap, only the ``SSE-Gap`` header is).
        gaps: ``"yield"`` a :class:`Gap`, or ``"raise"`` a :class:`GapError` (the source stays
            usable: iterate again to read on).
        max_line_length: The longest line accepted, in characters; a longer one ends the
            source with :class:`EventSourceError` (``None``: no limit).
        max_event_length: The largest event data accepted, in characters (``None``: no
            limit).

    Raises:
        ValueError: A setting is out of range (the message names it).
        TypeError: ``content`` cannot be sent twice.
    """

    @overload
    def __init__(
        self: EventSource[str],
        url: httpx.URL | str,
        *,
        method: str = ...,
        params: Any = ...,
        headers: Mapping[str, str] | None = ...,
        content: bytes | str | None = ...,
        json: Any = ...,
        data: Mapping[str, Any] | None = ...,
        auth: Any = ...,
        client: httpx.AsyncClient | None = ...,
        http2: bool = ...,
        timeout: float | None = ...,
        idle_timeout: float | None = ...,
        follow_redirects: bool = ...,
        reconnect: bool | None = ...,
        retry: float = ...,
        min_delay: float = ...,
        max_delay: float = ...,
        max_attempts: int | None = ...,
        last_event_id: str | None = ...,
        data_type: None = ...,
        gap_event: str | None = ...,
        gaps: Literal["yield", "raise"] = ...,
        max_line_length: int | None = ...,
        max_event_length: int | None = ...,
    ) -> None: ...

    @overload
    def __init__(
        self: EventSource[T],
        url: httpx.URL | str,
        *,
        method: str = ...,
        params: Any = ...,
        headers: Mapping[str, str] | None = ...,
        content: bytes | str | None = ...,
        json: Any = ...,
        data: Mapping[str, Any] | None = ...,
        auth: Any = ...,
        client: httpx.AsyncClient | None = ...,
        http2: bool = ...,
        timeout: float | None = ...,
        idle_timeout: float | None = ...,
        follow_redirects: bool = ...,
        reconnect: bool | None = ...,
        retry: float = ...,
        min_delay: float = ...,
        max_delay: float = ...,
        max_attempts: int | None = ...,
        last_event_id: str | None = ...,
        data_type: type[T],
        gap_event: str | None = ...,
        gaps: Literal["yield", "raise"] = ...,
        max_line_length: int | None = ...,
        max_event_length: int | None = ...,
    ) -> None: ...

    def __init__(
        self,
        url: httpx.URL | str,
        *,
        method: str = "GET",
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        auth: Any = None,
        client: httpx.AsyncClient | None = None,
        http2: bool = False,
        timeout: float | None = 10.0,
        idle_timeout: float | None = None,
        follow_redirects: bool = True,
        reconnect: bool | None = None,
        retry: float = 3.0,
        min_delay: float = 0.1,
        max_delay: float = 30.0,
        max_attempts: int | None = None,
        last_event_id: str | None = None,
        data_type: Any = None,
        gap_event: str | None = "gap",
        gaps: Literal["yield", "raise"] = "yield",
        max_line_length: int | None = DEFAULT_LIMITS[0],
        max_event_length: int | None = DEFAULT_LIMITS[1],
    ) -> None:
        self._session = Session(
            url,
            method=method,
            params=params,
            headers=headers,
            content=content,
            json=json,
            data=data,
            auth=auth,
            timeout=timeout,
            idle_timeout=idle_timeout,
            follow_redirects=follow_redirects,
            reconnect=reconnect,
            retry=retry,
            min_delay=min_delay,
            max_delay=max_delay,
            max_attempts=max_attempts,
            last_event_id=last_event_id,
            data_type=data_type,
            gap_event=gap_event,
            gaps=gaps,
            max_line_length=max_line_length,
            max_event_length=max_event_length,
            client=client,
            client_type=httpx.AsyncClient,
            other_source="use SyncEventSource with an httpx.Client",
        )
        self._client = client
        self._own_client = client is None
        self._http2 = http2
        self._items: AsyncGenerator[Sequence[DecodedEvent | Gap], None] | None = None
        self._pending: deque[DecodedEvent | Gap] = deque()
        self._closed = False
        self.response: httpx.Response | None = None
        """The latest response (its status and headers); ``None`` before the first."""

    @property
    def last_event_id(self) -> str:
        """The id of the last event received: sent as ``Last-Event-ID`` on reconnect."""
        return self._session.reader.last_event_id

    @property
    def resumed_from(self) -> str | None:
        """The latest response's ``SSE-Resumed-From`` header: the id after which it resumed."""
        return self._session.reader.resumed_from

    @property
    def retry(self) -> float:
        """Seconds the source waits before reconnecting: the server's ``retry``, if it sent
        one (never below ``min_delay``)."""
        return self._session.retry

    async def __aenter__(self) -> EventSource[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> EventSource[T]:
        return self

    async def __anext__(self) -> Event[T] | Gap:
        pending = self._pending
        if not pending:
            if self._items is None:
                if self._closed:
                    raise StopAsyncIteration
                self._items = self._run()
            # A chunk's events come as one batch: the generator resumes once per chunk.
            pending.extend(await self._items.__anext__())
        return self._session.deliver(pending.popleft())

    async def aclose(self) -> None:
        """End the request (``RST_STREAM`` over HTTP/2) and close the source's own client."""
        self._closed = True
        items, self._items = self._items, None
        self._pending.clear()
        with anyio.CancelScope(shield=True):
            if items is not None:
                await items.aclose()
            if self._own_client and self._client is not None:
                await self._client.aclose()

    async def _run(self) -> AsyncGenerator[Sequence[DecodedEvent | Gap], None]:
        session = self._session
        settings, reader, backoff, spec = (
            session.settings,
            session.reader,
            session.backoff,
            session.request,
        )
        if self._client is None:
            self._client = httpx.AsyncClient(http2=self._http2)
        client = self._client
        while True:
            wait_at_least = None
            try:
                request = spec.build(client, reader.last_event_id, settings.idle_timeout)
                response = await client.send(
                    request, stream=True, auth=spec.auth, follow_redirects=spec.follow_redirects
                )
            except httpx.TooManyRedirects as exc:
                raise EventSourceError(f"redirect loop: {exc}") from exc
            except httpx.TransportError as exc:
                session.unreachable(exc)
            else:
                self.response = response
                verdict, why = check_response(
                    response.status_code, response.headers.get("content-type")
                )
                if verdict != "open":
                    await response.aclose()
                    if verdict == "done":
                        return
                    wait_at_least = session.refused(
                        verdict, why, response.status_code, response.headers
                    )
                else:
                    reader.open(response.headers)
                    broken: httpx.TransportError | None = None
                    delivered = False
                    try:
                        async for chunk in response.aiter_bytes():
                            items = reader.feed(chunk)
                            if items:
                                if not delivered:
                                    delivered = True
                                    backoff.succeeded()
                                yield items
                    except httpx.TransportError as exc:  # cut, reset, or idle too long
                        broken = exc
                    finally:
                        with anyio.CancelScope(shield=True):
                            await areset_stream(response)
                            await response.aclose()
                    gaps = reader.close()
                    if gaps:
                        yield gaps
                    if session.ended(broken, delivered):
                        return
            await anyio.sleep(session.next_delay(wait_at_least))
