"""The broadcaster's reads as values: history, typed subscriptions, the topic of an id.

A base class of :class:`~litestar_sse.broadcast.Broadcaster`. Everything here answers only
what a subscription to the same topics would: ``authorize`` is asked for every topic before
anything of it is read or named.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, Final

from litestar.exceptions import PermissionDeniedException

from litestar_sse.broadcast.authorization import authorize_topics
from litestar_sse.broadcast.backend import BackendUnavailableError
from litestar_sse.broadcast.history import Gap, HistoryItem
from litestar_sse.broadcast.messages import MessageSubscription, Until
from litestar_sse.broadcast.topics import topic_tuple
from litestar_sse.plugin.last_event_id import read_last_event_id
from litestar_sse.validation import check_required_count

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection

    from litestar_sse.broadcast.backend import BroadcastBackend
    from litestar_sse.broadcast.encoding import EventFormat
    from litestar_sse.broadcast.fanout import FanOut, Subscription

__all__ = ("DEFAULT_PAGE_SIZE", "BroadcastReads", "client_last_event_id")

DEFAULT_PAGE_SIZE: Final = 500
"""Events read from the backend at once when reading history."""

# Stands for an id the client sent that no event can have (too long, not UTF-8, NUL, CR or
# LF): no backend recognises it, so the client gets the "invalid" gap like for any foreign id.
_UNUSABLE_ID: Final = "\x00"


def client_last_event_id(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The ``Last-Event-ID`` the client sent (header or query), or ``None``; an id it sent that
    no event can have becomes one that no backend recognises (an ``invalid`` gap)."""
    sent, last_event_id = read_last_event_id(connection)  # type: ignore[arg-type]
    return _UNUSABLE_ID if sent and last_event_id is None else last_event_id


class BroadcastReads:
    """History as values, typed subscriptions, the topic of an id (a base of
    :class:`~litestar_sse.broadcast.Broadcaster`)."""

    # Set by Broadcaster.__init__.
    backend: BroadcastBackend
    authorize: Any
    max_topics: int | None
    format: EventFormat
    _fanout: FanOut

    async def _ready(self) -> None:
        raise NotImplementedError

    async def open_subscription(
        self,
        topics: str | Iterable[str],
        *,
        last_event_id: str | None = None,
        connection: ASGIConnection[Any, Any, Any, Any] | None = None,
    ) -> Subscription:
        raise NotImplementedError

    async def _allowed(self, connection: Any, topic: str) -> bool:
        if self.authorize is None:
            return True
        try:
            await authorize_topics(self.authorize, connection, (topic,))
        except PermissionDeniedException:  # refused, or its authorization already expired
            return False
        return True

    async def topic_of(
        self, event_id: str, *, connection: ASGIConnection[Any, Any, Any, Any] | None = None
    ) -> str | None:
        """The topic of the event ``event_id``, or ``None`` if it is unknown.

        For protocols whose clients resume with nothing but an id (an MCP client's
        ``Last-Event-ID``). Bounded: the in-memory backend answers while the event is kept
        in history, Redis while the event is among the newest 100,000 (its change log);
        older, foreign or malformed ids are ``None``. An id is client input, and ids are
        easy to guess: when ``authorize`` refuses the topic for ``connection``, the answer
        is ``None`` too, so a forged id reveals no more than a subscription would.

        Raises:
            TypeError: ``event_id`` is not a ``str``.
            BackendUnavailableError: the backend cannot be reached (``503``).
        """
        if not isinstance(event_id, str):
            raise TypeError(f"event_id must be a str, got {event_id!r:.60}")
        await self._ready()
        try:
            topic = await self.backend.topic_of(event_id)
        except BackendUnavailableError:
            self._fanout.errors["read"] += 1
            raise
        if topic is None or not await self._allowed(connection, topic):
            return None
        return topic

    def history(
        self,
        topics: str | Iterable[str],
        *,
        after: str | None = None,
        until: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        connection: ASGIConnection[Any, Any, Any, Any] | None = None,
    ) -> AsyncIterator[HistoryItem]:
        """The kept events of ``topics`` as :class:`BroadcastMessage` values, in order.

        ``async for item in broadcaster.history("jobs:7", after=last_id): ...``. Read from
        the backend ``page_size`` events at a time, so a long history never sits in memory
        at once. Where events after ``after`` cannot be read (the id is not ours, is from
        another epoch, or the history no longer reaches back to it), a :class:`Gap` comes
        first (or where it was found, if the history is trimmed while being read).

        Args:
            topics: One topic or several (their events are merged in publication order).
            after: Read the events after this id; ``None``: from the oldest kept.
            until: Read up to this id, included; ``None``: up to the newest.
            page_size: Events read from the backend at once.
            connection: The request, for ``authorize`` (asked for every topic on the first
                iteration; a refusal raises ``PermissionDeniedException``, a ``403``).

        Raises:
            InvalidTopicError: an invalid topic, or none (at the call).
            TooManyTopicsError: more topics than ``max_topics`` (at the call).
            TypeError, ValueError: a bad ``after``, ``until`` or ``page_size`` (at the call;
                an ``until`` that is no id of this history, on the first iteration).
        """
        names = topic_tuple(topics, self.max_topics)
        size = check_required_count(page_size, "page_size", minimum=1)
        for name, value in (("after", after), ("until", until)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be an event id (str) or None, got {value!r:.60}")
        return self._authorized_history(names, after, until, size, connection)

    async def _authorized_history(
        self,
        names: tuple[str, ...],
        after: str | None,
        until: str | None,
        page_size: int,
        connection: Any,
    ) -> AsyncIterator[HistoryItem]:
        for topic in names:
            if not await self._allowed(connection, topic):
                raise PermissionDeniedException(detail=f"Not allowed to read topic {topic!r}")
        await self._ready()
        async for item in self._pages(names, after, until, page_size):
            yield item

    async def _pages(
        self, names: tuple[str, ...], after: str | None, until: str | None, page_size: int
    ) -> AsyncIterator[HistoryItem]:
        check_gaps = after is not None
        reported: set[str] = set()
        while True:
            try:
                page = await self.backend.read_history(
                    names, after, until, page_size, check_gaps=check_gaps
                )
            except BackendUnavailableError:
                self._fanout.errors["read"] += 1
                raise
            if page.gap is not None:
                new = tuple(topic for topic in page.gap_topics if topic not in reported)
                reported.update(new)
                if new:
                    yield Gap(page.gap, new)
                if page.gap in ("invalid", "epoch"):
                    return
            for message in page.messages:
                yield message
            if not page.more or not page.messages:
                return
            after = page.messages[-1].id

    async def subscribe_messages(
        self,
        topics: str | Iterable[str],
        *,
        last_event_id: str | None = None,
        connection: ASGIConnection[Any, Any, Any, Any] | None = None,
        until: Until | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> MessageSubscription:
        """Subscribe to ``topics`` and get values: the backlog, a marker, then live events.

        The :class:`MessageSubscription` yields the events after ``last_event_id`` as
        :class:`BroadcastMessage` values (read from history ``page_size`` at a time, with a
        :class:`Gap` where some cannot be replayed), then one :class:`BacklogEnd`, then live
        events, in publication order, each exactly once. Without ``last_event_id`` (and no
        ``Last-Event-ID`` on ``connection``) the backlog is empty: only the marker.

        Args:
            topics: One topic or several.
            last_event_id: Replay the events after this id; by default read from
                ``connection`` as :meth:`subscribe` does.
            connection: The request, for ``authorize`` and ``Last-Event-ID``.
            until: ``until(message) -> bool``: end the subscription right after the first
                message (replayed or live) it is true of, such as the reply that closes a
                request's stream.
            page_size: Events read from history at once.

        Raises:
            InvalidTopicError: an invalid topic, or none (``400``).
            TooManyTopicsError: more topics than ``max_topics`` (``400``).
            PermissionDeniedException: ``authorize`` refused a topic (``403``).
            BackendUnavailableError: the backend cannot be reached (``503``).
            TypeError, ValueError: a bad ``until``, ``last_event_id`` or ``page_size``.
        """
        names = topic_tuple(topics, self.max_topics)
        size = check_required_count(page_size, "page_size", minimum=1)
        if until is not None and not callable(until):
            raise TypeError(f"until must be a callable taking a BroadcastMessage, got {until!r}")
        if last_event_id is not None and not isinstance(last_event_id, str):
            raise TypeError(f"last_event_id must be a str or None, got {last_event_id!r:.60}")
        if last_event_id is None and connection is not None:
            last_event_id = client_last_event_id(connection)
        # Live from the head, without a resume (authorize is asked there); the backlog is
        # read up to that same head, where live events start.
        subscription = await self.open_subscription(names, last_event_id="", connection=connection)
        backlog = None
        if last_event_id:
            backlog = self._pages(names, last_event_id, subscription.resumed_from, size)
        return MessageSubscription(subscription, backlog, self.format, until)
