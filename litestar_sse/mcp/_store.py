"""The MCP SDK's ``EventStore`` on a :class:`~litestar_sse.broadcast.Broadcaster`: a session
registry, and each session's streams apart."""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from typing import TYPE_CHECKING, Final, TypeGuard
from urllib.parse import quote

from litestar_sse._validation import check_required_count
from litestar_sse.broadcast import BroadcastMessage
from litestar_sse.broadcast._pipeline import DEFAULT_PAGE_SIZE
from litestar_sse.broadcast._topics import check_topic
from litestar_sse.mcp._current import current_session
from litestar_sse.mcp._sdk import (
    EventCallback,
    EventId,
    EventStore,
    JSONRPCMessage,
    StreamId,
)
from litestar_sse.mcp._session_store import SessionEventStore

if TYPE_CHECKING:
    from litestar_sse.broadcast import Broadcaster

__all__ = ("BroadcastEventStore",)

SESSION_ID: Final = re.compile(r"[\x21-\x7e]{1,128}")
"""What an MCP session id may be: visible ASCII (the transport's rule), 128 at most."""
SESSION_TOPIC: Final = "session/"
"""After the store's prefix, the topics of the session registry (one per session)."""
OPENED: Final = "open"
CLOSED: Final = "closed"


def is_session_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a valid MCP session id (see ``SESSION_ID``)."""
    return isinstance(value, str) and SESSION_ID.fullmatch(value) is not None


class BroadcastEventStore(EventStore):
    """The MCP python SDK's ``EventStore`` (``mcp.server.streamable_http.EventStore``) on a
    :class:`~litestar_sse.broadcast.Broadcaster`, with every session kept apart.

    Every JSON-RPC message an MCP server sends on a stream is published to a topic of that
    stream, and a client that reconnects with nothing but ``Last-Event-ID`` gets the messages
    it missed, then the rest until the response. With a
    :class:`~litestar_sse.broadcast.RedisStreamBackend` any worker process can answer the
    reconnection; with the in-memory backend, the process that sent the messages.

    **Sessions.** Each session gets its own :class:`SessionEventStore`: a random space for
    its topics (the SDK's stream ids are request ids, equal across sessions) and a random
    key that tags its event ids (an id is all a resuming client shows; see
    :class:`SessionEventStore`). The store keeps a registry from session id to those, in the
    broadcaster (topics ``<prefix>session/<session id>``), so every worker knows them:
    :meth:`open_session`, :meth:`find_session`, :meth:`close_session`.

    **With the SDK's server** (``MCPServer.streamable_http_app(event_store=store)`` or its
    ``StreamableHTTPSessionManager``), which hands one store to every session and calls
    ``store_event(stream_id, message)`` without saying whose: serve the SDK's app through
    :class:`~litestar_sse.mcp.MCPSessions`, which tells this store the session of each
    request. Used by the SDK without it, :meth:`store_event` and
    :meth:`replay_events_after` raise ``RuntimeError``: nothing is stored or replayed
    without a session.

    **Retention.** Give this store's topics a retention that drops them once idle, so that a
    topic per request does not pile up, e.g. ``Retention(idle_ttl=600)`` for topics starting
    with ``prefix``, and a longer one for the registry (``<prefix>session/``: at most two
    events each; a session is unknown once its topic is dropped), such as
    ``Retention(max_events=2, idle_ttl=86400)``. Keep the prefix out of reach of client
    subscriptions: its topics hold the sessions' results and keys.

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
        self.page_size = check_required_count(page_size, "page_size", minimum=1)

    # -- sessions ----------------------------------------------------------------------------

    def new_session(self) -> SessionEventStore:
        """A store for a new session, with a fresh space and key, registered nowhere yet
        (:meth:`register` it once the session has its id)."""
        space = secrets.token_urlsafe(12)  # 16 characters: never "session"
        return self._session(f"{self.prefix}{space}/", secrets.token_bytes(32))

    def _session(self, prefix: str, key: bytes) -> SessionEventStore:
        return SessionEventStore(self.broadcaster, prefix=prefix, key=key, page_size=self.page_size)

    async def open_session(self, session_id: str) -> SessionEventStore:
        """Register a new session ``session_id`` and return its store.

        Raises:
            ValueError: ``session_id`` is not 1 to 128 visible ASCII characters.
            BackendUnavailableError: the backend cannot be reached (a ``503``).
        """
        session = self.new_session()
        await self.register(session_id, session)
        return session

    async def register(self, session_id: str, session: SessionEventStore) -> None:
        """Record that ``session`` (from :meth:`new_session`) is the store of session
        ``session_id``, for every worker.

        Raises:
            ValueError: ``session_id`` is not 1 to 128 visible ASCII characters, or
                ``session`` is not one of this store's.
            BackendUnavailableError: the backend cannot be reached (a ``503``).
        """
        if not is_session_id(session_id):
            raise ValueError(
                f"session_id must be 1 to 128 visible ASCII characters, got {session_id!r:.60}"
            )
        if not self._owns(session):
            raise ValueError("session is not a session of this store (see new_session)")
        record = {
            "prefix": session.prefix,
            "key": base64.b64encode(session._key).decode(),
            "initialize": session.initialize,
            "owner": session.owner,
        }
        await self.broadcaster.publish(self._registry_topic(session_id), record, event=OPENED)

    async def find_session(self, session_id: object) -> SessionEventStore | None:
        """The store of session ``session_id``, or ``None`` if it is unknown (never opened,
        closed, dropped from the registry, or no valid session id at all).

        Raises:
            BackendUnavailableError: the backend cannot be reached (a ``503``).
        """
        if not is_session_id(session_id):
            return None
        last = None
        async for item in self.broadcaster.history(self._registry_topic(session_id)):
            if isinstance(item, BroadcastMessage):
                last = item
        if last is None or last.event != OPENED:
            return None
        try:
            record = json.loads(last.data)
            prefix, key = record["prefix"], base64.b64decode(record["key"], validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        if not isinstance(prefix, str) or not prefix.startswith(self.prefix) or len(key) < 16:
            return None
        session = self._session(prefix, key)
        initialize = record.get("initialize")
        session.initialize = initialize if isinstance(initialize, dict) else None
        owner = record.get("owner")
        if owner is not None and not isinstance(owner, dict):
            return None  # a record this store did not write: refuse the session
        session.owner = owner
        return session

    async def close_session(self, session_id: str) -> None:
        """End session ``session_id`` for every worker: :meth:`find_session` no longer
        finds it (its streams stay until their retention drops them).

        Raises:
            BackendUnavailableError: the backend cannot be reached (a ``503``).
        """
        if is_session_id(session_id):
            await self.broadcaster.publish(self._registry_topic(session_id), "{}", event=CLOSED)

    def _registry_topic(self, session_id: str) -> str:
        return check_topic(f"{self.prefix}{SESSION_TOPIC}{quote(session_id, safe='')}")

    def _owns(self, session: object) -> bool:
        return (
            isinstance(session, SessionEventStore)
            and session.broadcaster is self.broadcaster
            and session.prefix.startswith(self.prefix)
            and not session.prefix[len(self.prefix) :].startswith(SESSION_TOPIC)
        )

    # -- the SDK's EventStore: the current request's session ---------------------------------

    def _current(self) -> SessionEventStore:
        session = current_session.get()
        if session is None or not self._owns(session):
            raise RuntimeError(
                "BroadcastEventStore was called outside an MCP session: serve the MCP SDK's "
                "app through litestar_sse.mcp.MCPSessions(app, store), or use the store of "
                "one session (open_session, find_session)"
            )
        return session

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        """Store ``message`` in stream ``stream_id`` of the current request's session (see
        :meth:`SessionEventStore.store_event`).

        Raises:
            RuntimeError: no session is known (the SDK's app is not served through
                :class:`~litestar_sse.mcp.MCPSessions`).
        """
        return await self._current().store_event(stream_id, message)

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        """Resume a stream of the current request's session (see
        :meth:`SessionEventStore.replay_events_after`): ids of other sessions replay
        nothing.

        Raises:
            RuntimeError: no session is known (the SDK's app is not served through
                :class:`~litestar_sse.mcp.MCPSessions`).
        """
        return await self._current().replay_events_after(last_event_id, send_callback)
