"""The streams of one MCP session, and the ids that open them to that session only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, unquote

from litestar_sse.broadcast import BacklogEnd, BroadcastMessage, Gap
from litestar_sse.broadcast._topics import check_topic
from litestar_sse.mcp._sdk import (
    GET_STREAM_KEY,
    EventCallback,
    EventId,
    EventMessage,
    EventStore,
    JSONRPCMessage,
    StreamId,
    jsonrpc_message_adapter,
)

if TYPE_CHECKING:
    from types import TracebackType

    from litestar_sse.broadcast import Broadcaster
    from litestar_sse.broadcast.types import MessageItem, MessageSubscription, Until

__all__ = ("SessionEventStore", "StreamSubscription", "is_response")

MAC_BYTES: Final = 16
"""Bytes of the HMAC-SHA256 kept in an event id: 128 bits, beyond guessing."""
MAX_EVENT_ID_CHARS: Final = 256
"""Longer ``Last-Event-ID`` values are refused before any work (ours are about 50)."""


def is_response(message: BroadcastMessage) -> bool:
    """Whether a stored message is a JSON-RPC response or error: the last message of a
    request's stream (the ``until`` of :meth:`SessionEventStore.subscribe`)."""
    if '"id"' not in message.data:
        return False
    try:
        value = json.loads(message.data)
    except ValueError:
        return False
    return (
        isinstance(value, dict)
        and "id" in value
        and "method" not in value
        and ("result" in value or "error" in value)
    )


class SessionEventStore(EventStore):
    """The MCP SDK's ``EventStore`` for the streams of one session.

    Made by :class:`~litestar_sse.mcp.BroadcastEventStore`
    (:meth:`~litestar_sse.mcp.BroadcastEventStore.open_session`,
    :meth:`~litestar_sse.mcp.BroadcastEventStore.find_session`), never directly. Each
    stream is a topic, ``<store prefix><session space>/<stream id>`` (the space a random
    name the session was given, the stream id percent-encoded), so equal stream ids of two
    sessions (request ids, which every session counts from 0) never share a topic.

    An MCP event id is ``<broadcast id>.<tag>``, the tag an HMAC-SHA256 of the broadcast id
    under the session's own random key. A ``Last-Event-ID`` is the only thing a resuming
    client shows, so it is checked before anything is read: an id whose tag does not match
    this session's key (guessed, altered, or another session's) replays nothing, and costs
    no read of the backend.

    Attributes:
        broadcaster: Where the messages are published.
        prefix: Start of every topic of this session.
        page_size: Messages read from history at once when replaying.
    """

    def __init__(
        self, broadcaster: Broadcaster, *, prefix: str, key: bytes, page_size: int
    ) -> None:
        self.broadcaster = broadcaster
        self.prefix = check_topic(prefix)
        self._key = key
        self.page_size = page_size
        self.initialize: dict[str, Any] | None = None
        """The params of the client's ``initialize``, kept in the registry so that another
        worker can take the session over (see :class:`~litestar_sse.mcp.MCPSessions`)."""
        self.owner: dict[str, Any] | None = None
        """Who opened the session, as the SDK's authentication identifies a credential
        (``None`` without it), kept in the registry for every worker."""

    def topic(self, stream_id: StreamId) -> str:
        """The topic of stream ``stream_id``.

        Raises:
            InvalidTopicError: the topic would be longer than 256 bytes (a ``ValueError``).
        """
        if not isinstance(stream_id, str):
            raise TypeError(f"stream_id must be a str, got {stream_id!r:.60}")
        return check_topic(self.prefix + quote(stream_id, safe=""))

    def stream_of(self, topic: str) -> StreamId | None:
        """The stream id whose topic is ``topic``, or ``None`` if it is not one of this
        session's."""
        if not topic.startswith(self.prefix):
            return None
        rest = topic[len(self.prefix) :]
        return None if not rest or "/" in rest else unquote(rest)

    def event_id(self, broadcast_id: str) -> EventId:
        """The MCP event id of the stored message whose broadcast id is ``broadcast_id``."""
        return f"{broadcast_id}.{self._tag(broadcast_id)}"

    def broadcast_id(self, event_id: object) -> str | None:
        """The broadcast id inside ``event_id``, or ``None`` if this session did not hand it
        out (its tag does not match, or it is no event id at all)."""
        if not isinstance(event_id, str) or len(event_id) > MAX_EVENT_ID_CHARS:
            return None
        if not event_id.isascii():
            return None
        broadcast_id, dot, tag = event_id.rpartition(".")
        if not dot or not broadcast_id:
            return None
        if not hmac.compare_digest(tag, self._tag(broadcast_id)):
            return None
        return broadcast_id

    def _tag(self, broadcast_id: str) -> str:
        digest = hmac.new(self._key, broadcast_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:MAC_BYTES]).rstrip(b"=").decode()

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        """Publish ``message`` (``None``: a priming event, stored with empty data) to the
        stream's topic; return its MCP event id.

        Raises:
            InvalidTopicError: the stream id makes too long a topic (a ``ValueError``).
            BackendUnavailableError: the backend cannot be reached (a ``503``).
        """
        topic = self.topic(stream_id)
        data = "" if message is None else message.model_dump_json(by_alias=True, exclude_unset=True)
        return self.event_id(await self.broadcaster.publish(topic, data))

    async def resume(self, last_event_id: object) -> tuple[StreamId, StreamSubscription] | None:
        """Follow the stream of ``last_event_id`` from after it: the messages stored since
        (replayed from history), then live ones, until the stream's JSON-RPC response (the
        standalone ``GET`` stream has none: until closed).

        ``None`` when this session did not hand out the id, when it is unknown (too old for
        the broadcaster's lookup, or its stream dropped as idle), or when messages after it
        were dropped from history (the client would miss them without knowing).

        Raises:
            BackendUnavailableError: the backend cannot be reached (a ``503``).
        """
        broadcast_id = self.broadcast_id(last_event_id)
        if broadcast_id is None:
            return None
        topic = await self.broadcaster.topic_of(broadcast_id)
        stream_id = None if topic is None else self.stream_of(topic)
        if topic is None or stream_id is None:
            return None
        until = None if stream_id == GET_STREAM_KEY else is_response
        subscription = await self.broadcaster.subscribe_messages(
            topic, last_event_id=broadcast_id, until=until, page_size=self.page_size
        )
        stream = StreamSubscription(self, subscription)
        try:
            first = await stream.first()
        except BaseException:
            stream.close()
            raise
        if isinstance(first, Gap):
            stream.close()
            return None
        return stream_id, stream

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        """Send the messages of ``last_event_id``'s stream stored after it, in order, then
        those stored while sending, until the stream's response; return the stream's id.

        The SDK's transport calls this on a ``GET`` with ``Last-Event-ID``. Following the
        stream to its response here (rather than returning after the replay) is what lets a
        client resume wherever the request runs: on another worker, what that worker stores
        arrives through the broadcaster. ``None``, and nothing sent, as :meth:`resume`.

        Raises:
            BackendUnavailableError: the backend cannot be reached (a ``503``).
        """
        resumed = await self.resume(last_event_id)
        if resumed is None:
            return None
        stream_id, stream = resumed
        async with stream:
            async for message in stream:
                if message.data:  # not a priming event
                    jsonrpc = jsonrpc_message_adapter.validate_json(message.data)
                    await send_callback(EventMessage(jsonrpc, message.id))
        return stream_id

    async def subscribe(
        self,
        stream_id: StreamId,
        *,
        last_event_id: EventId | None = None,
        until: Until | None = is_response,
    ) -> StreamSubscription:
        """Follow a stream: the messages after ``last_event_id`` (an MCP event id of this
        session; none without it), then live ones, ending after the JSON-RPC response by
        default. The messages carry their MCP event ids.

        For a hand-written server's request streams: subscribe before the request runs, and
        every message it stores arrives once. Pass ``until=None`` for a stream that has no
        last message (the standalone ``GET`` stream).

        Raises:
            ValueError: ``last_event_id`` is not an id of this session.
        """
        after = None
        if last_event_id is not None:
            after = self.broadcast_id(last_event_id)
            if after is None:
                raise ValueError(f"{last_event_id!r:.80} is not an event id of this session")
        subscription = await self.broadcaster.subscribe_messages(
            self.topic(stream_id), last_event_id=after, until=until, page_size=self.page_size
        )
        return StreamSubscription(self, subscription)


class StreamSubscription:
    """The messages of one MCP stream, with their MCP event ids; made by
    :meth:`SessionEventStore.subscribe` and :meth:`SessionEventStore.resume`.

    Iterate it for :class:`~litestar_sse.broadcast.BroadcastMessage` values (priming events
    have empty data). It ends after the stream's last message, at the first
    :class:`~litestar_sse.broadcast.Gap` (messages missed: the client resumes from its last
    id and is told what is left), or when closed (:meth:`close`, or leaving ``async with``).
    """

    def __init__(self, store: SessionEventStore, subscription: MessageSubscription) -> None:
        self._store = store
        self._subscription = subscription
        self._peeked: list[BroadcastMessage | Gap | None] = []

    async def first(self) -> BroadcastMessage | Gap | None:
        """The first message (or gap, or ``None`` at the end), kept for the iteration."""
        if not self._peeked:
            self._peeked.append(await self._next())
        return self._peeked[0]

    async def _next(self) -> BroadcastMessage | Gap | None:
        async for item in self._subscription:
            if not isinstance(item, BacklogEnd):
                return self._with_event_id(item)
        return None

    def _with_event_id(self, item: MessageItem) -> BroadcastMessage | Gap:
        if isinstance(item, BroadcastMessage):
            return replace(item, id=self._store.event_id(item.id))
        assert isinstance(item, Gap)  # BacklogEnd is skipped by the caller
        return item

    def __aiter__(self) -> StreamSubscription:
        return self

    async def __anext__(self) -> BroadcastMessage:
        item = self._peeked.pop() if self._peeked else await self._next()
        if not isinstance(item, BroadcastMessage):  # the end, or messages missed
            self.close()
            raise StopAsyncIteration
        return item

    def close(self) -> None:
        """End the subscription now."""
        self._subscription.close()

    async def __aenter__(self) -> StreamSubscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
