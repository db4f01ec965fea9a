"""MCP Streamable HTTP resumability on a :class:`~litestar_sse.broadcast.Broadcaster`.

:class:`BroadcastEventStore` implements the MCP python SDK's ``EventStore`` interface
(``mcp.server.streamable_http.EventStore``): every JSON-RPC message an MCP server sends on a
stream is published to a topic of that stream, and a client that reconnects with nothing but
``Last-Event-ID`` gets the messages it missed. With a
:class:`~litestar_sse.broadcast.RedisStreamBackend`, any worker process on any machine can
answer the reconnection; with the in-memory backend, the process that sent the messages.

Needs the MCP SDK: ``pip install 'litestar-sse[mcp]'``. Importing :mod:`litestar_sse` itself
never imports it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

try:
    from mcp.server.streamable_http import (
        EventCallback,
        EventId,
        EventMessage,
        EventStore,
        StreamId,
    )
    from mcp.types import JSONRPCMessage, jsonrpc_message_adapter
except ImportError as exc:  # pragma: no cover - exercised in a fresh interpreter
    raise ImportError(
        "litestar_sse.mcp needs the MCP python SDK: pip install 'litestar-sse[mcp]'"
    ) from exc

from litestar_sse.broadcast import BroadcastMessage, Gap
from litestar_sse.broadcast.pipeline import DEFAULT_PAGE_SIZE
from litestar_sse.broadcast.topics import check_topic
from litestar_sse.validation import check_required_count

if TYPE_CHECKING:
    from litestar_sse.broadcast import Broadcaster, MessageSubscription, Until

__all__ = ("BroadcastEventStore", "is_response")


def is_response(message: BroadcastMessage) -> bool:
    """Whether a stored message is a JSON-RPC response or error: the last message of a
    request's stream (the ``until`` of :meth:`BroadcastEventStore.subscribe`)."""
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


class BroadcastEventStore(EventStore):
    """The MCP SDK's ``EventStore`` on a :class:`~litestar_sse.broadcast.Broadcaster`.

    Each stream is a topic, ``<prefix><stream id>`` (the stream id percent-encoded, so any
    id makes a valid topic), and each stored message one event of it, whose broadcast id is
    the MCP event id. A priming event (``message=None``) is an event with empty data;
    :meth:`replay_events_after` skips it, as the SDK expects. Use it as the SDK's
    ``event_store``, or from a hand-written server (``examples/mcp_server.py``).

    Stream ids must be unique across sessions. The SDK's transport uses a request's JSON-RPC
    id as its stream id, which every session starts counting again: give each session its
    own view with :meth:`for_session`, whose replay also refuses the ids of other sessions'
    streams.

    Give the stream topics a retention that drops them once idle, so that a topic per request
    does not pile up: ``Retention(idle_ttl=600)`` for topics starting with ``prefix`` (see
    :class:`~litestar_sse.broadcast.Retention`). A client resuming after that is told its
    stream is unknown (``replay_events_after`` returns ``None``).

    Args:
        broadcaster: Where messages are published; started on first use if needed.
        prefix: Start of every topic of this store (a valid topic name on its own).
        page_size: Messages read from history at once when replaying.

    Raises:
        InvalidTopicError: ``prefix`` is not a valid start of a topic (a ``ValueError``).
    """

    def __init__(
        self,
        broadcaster: Broadcaster,
        *,
        prefix: str = "mcp:",
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        self.broadcaster = broadcaster
        self.prefix = check_topic(prefix)
        size = check_required_count(page_size, "page_size", minimum=1)
        self.page_size = size

    def for_session(self, session_id: str) -> BroadcastEventStore:
        """The view of this store for one MCP session: its topics are
        ``<prefix><session id>/<stream id>``, and it replays only their ids."""
        if not isinstance(session_id, str) or not session_id:
            raise ValueError(f"session_id must be a non-empty str, got {session_id!r:.60}")
        prefix = f"{self.prefix}{quote(session_id, safe='')}/"
        return BroadcastEventStore(self.broadcaster, prefix=prefix, page_size=self.page_size)

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
        store's (another prefix, or a stream of one of its sessions' views)."""
        if not topic.startswith(self.prefix):
            return None
        rest = topic[len(self.prefix) :]
        return None if not rest or "/" in rest else unquote(rest)

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        """Publish ``message`` (``None``: a priming event) to the stream's topic; return the
        event's id.

        Raises:
            InvalidTopicError: the stream id makes too long a topic (a ``ValueError``).
            BackendUnavailableError: the backend cannot be reached (a ``503``).
        """
        topic = self.topic(stream_id)
        data = "" if message is None else message.model_dump_json(by_alias=True, exclude_unset=True)
        return await self.broadcaster.publish(topic, data)

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        """Send the messages of ``last_event_id``'s stream stored after it, in order; return
        the stream's id.

        ``None`` (and nothing sent) when the id is unknown (never handed out, from another
        history, too old for the broadcaster's lookup, or its stream dropped as idle), is
        the id of another store's or session's stream, or when messages after it were
        dropped from history (the client would miss them without knowing).

        Raises:
            BackendUnavailableError: the backend cannot be reached (a ``503``).
        """
        if not isinstance(last_event_id, str):
            return None
        topic = await self.broadcaster.topic_of(last_event_id)
        stream_id = None if topic is None else self.stream_of(topic)
        if topic is None or stream_id is None:
            return None
        history = self.broadcaster.history(topic, after=last_event_id, page_size=self.page_size)
        async for item in history:
            if isinstance(item, Gap):  # first, before any message (unless trimmed meanwhile)
                return None
            if item.data:  # not a priming event
                message = jsonrpc_message_adapter.validate_json(item.data)
                await send_callback(EventMessage(message, item.id))
        return stream_id

    async def subscribe(
        self,
        stream_id: StreamId,
        *,
        last_event_id: EventId | None = None,
        until: Until | None = is_response,
    ) -> MessageSubscription:
        """Follow a stream: the messages after ``last_event_id`` (none without it), a
        ``BacklogEnd``, then live ones, ending after the JSON-RPC response by default.

        For a hand-written server's request streams: subscribe before the request runs, and
        every message it stores arrives once. Pass ``until=None`` for a stream that has no
        last message (the standalone ``GET`` stream).
        """
        return await self.broadcaster.subscribe_messages(
            self.topic(stream_id),
            last_event_id=last_event_id,
            until=until,
            page_size=self.page_size,
        )
