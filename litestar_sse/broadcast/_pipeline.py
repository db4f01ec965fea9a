"""The subscription pipeline: the one way into a broadcaster's events, for every read API.

:meth:`~litestar_sse.broadcast.Broadcaster.subscribe`, ``open_subscription``,
``subscribe_messages``, ``history`` and ``topic_of`` (and the MCP event store, built on the
last three) are short paths through the same stages, written once here:

1. **Topic rule.** Every topic is checked (:mod:`~litestar_sse.broadcast._topics`), and at
   most ``max_topics`` of them, before anything else runs.
2. **Authorization.** ``authorize`` is asked for every topic before anything of it is read or
   named, bounded by ``authorize_timeout``: a refusal, an expiry already past or no answer in
   time refuses (``403``; ``topic_of`` answers ``None``). Its earliest expiry is kept.
3. **Admission.** A subscription is registered with the fan-out and told where it resumes
   (a few operations); the events it missed are read only once it is read, so a stream that
   the app's limits refuse (``503``) or a ``HEAD`` costs no replay.
4. **Replay.** From the backend, a page at a time, bounded in bytes; a gap where events
   cannot be replayed.
5. **Watch.** From when it opens to its end, the :class:`~.authorization.Watch` ends it at
   the expiry (a timer of its own) and, with ``reauthorize_every``, when a re-check refuses,
   raises or hangs (fail closed): the stream gets the ``unauthorized_event``, a typed
   subscription an :class:`~.events.values.AuthorizationEnded`, and nothing after. ``history`` is
   a bounded read, not a subscription: it stops at the expiry between two pages.

The broadcaster holds one :class:`SubscriptionPipeline` and delegates to it; a new read API is
a new path through these stages, not a copy of them.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from litestar.exceptions import PermissionDeniedException

from litestar_sse._plugin.last_event_id import read_last_event_id
from litestar_sse._validation import check_required_count, check_seconds
from litestar_sse.broadcast._authorization import TopicRefused, Watch, authorize_topics
from litestar_sse.broadcast._backends.base import BackendUnavailableError
from litestar_sse.broadcast._events.values import Gap, HistoryItem
from litestar_sse.broadcast._messages import MessageSubscription, Until
from litestar_sse.broadcast._responses import (
    GAP_HEADER,
    RESUMED_FROM_HEADER,
    SubscriptionResponse,
)
from litestar_sse.broadcast._topics import topic_tuple

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection

    from litestar_sse.broadcast._authorization import Authorize
    from litestar_sse.broadcast._backends.base import BroadcastBackend
    from litestar_sse.broadcast._hub.fanout import FanOut
    from litestar_sse.broadcast._hub.subscription import Subscription

__all__ = ("DEFAULT_PAGE_SIZE", "SubscriptionPipeline", "client_last_event_id")

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


class SubscriptionPipeline:
    """Topic rule, authorization, admission, replay and watch, for every read of a broadcaster.

    Args:
        backend: Where the events are kept.
        fanout: The local subscribers (and the counters, and the event format).
        ready: Starts the broadcaster if needed (raises once it is closed).
        authorize: ``authorize(connection, topic)``, or ``None``: everything is allowed.
        reauthorize_every: Seconds between re-checks of an open subscription, or ``None``.
        authorize_timeout: Seconds an awaitable answer of ``authorize`` may take.
        max_topics: Most topics one read may name (``None``: no limit).

    Raises:
        ValueError, TypeError: a bad ``reauthorize_every`` or ``authorize_timeout``.
    """

    __slots__ = (
        "_backend",
        "_fanout",
        "_ready",
        "authorize",
        "authorize_timeout",
        "max_topics",
        "reauthorize_every",
    )

    def __init__(
        self,
        *,
        backend: BroadcastBackend,
        fanout: FanOut,
        ready: Callable[[], Awaitable[None]],
        authorize: Authorize | None,
        reauthorize_every: float | None,
        authorize_timeout: float,
        max_topics: int | None,
    ) -> None:
        self._backend = backend
        self._fanout = fanout
        self._ready = ready
        self.authorize = authorize
        self.reauthorize_every = check_seconds(reauthorize_every, "reauthorize_every")
        if reauthorize_every is not None and authorize is None:
            raise ValueError("reauthorize_every needs an authorize callable")
        timeout = check_seconds(authorize_timeout, "authorize_timeout")
        if timeout is None:
            raise TypeError("authorize_timeout must be a positive number of seconds, got None")
        self.authorize_timeout = timeout
        self.max_topics = max_topics

    # -- the stages --------------------------------------------------------------------------

    async def _authorized(self, names: tuple[str, ...], connection: Any) -> float | None:
        """Stage 2: ``authorize`` for every topic; the earliest expiry.

        Raises:
            PermissionDeniedException: refused, expired, or no answer in time.
        """
        if self.authorize is None:
            return None
        return await authorize_topics(
            self.authorize, connection, names, timeout=self.authorize_timeout
        )

    async def _allowed(self, connection: Any, topic: str) -> bool:
        try:
            await self._authorized((topic,), connection)
        except PermissionDeniedException:
            return False
        return True

    async def _open(
        self,
        names: tuple[str, ...],
        connection: Any,
        last_event_id: str | None,
        *,
        resume: bool,
        values: bool = False,
    ) -> Subscription:
        """Stages 2 to 5 for a subscription to ``names`` (stage 1, ``topic_tuple``, checked
        them): ``resume`` from ``last_event_id`` (or the client's ``Last-Event-ID``), or live
        from the head; ``values``: read as values (:meth:`Subscription.next_values`)."""
        expires = await self._authorized(names, connection)
        if not resume or last_event_id == "":  # "" as the header's empty value: no resume
            last_event_id = None
        elif last_event_id is None and connection is not None:
            last_event_id = client_last_event_id(connection)
        await self._ready()
        # Registered before the history is read: events published meanwhile are queued, and
        # the seam between replay and live is cut by position (Snapshot.live_after).
        fanout = self._fanout
        subscription = fanout.open(names, values=values)
        try:
            await self._backend.watch(names)
            snapshot = await self._backend.snapshot(names, last_event_id)
            subscription.prime(snapshot, resumed=last_event_id is not None)
        except BaseException as exc:
            subscription.close()
            if isinstance(exc, BackendUnavailableError):
                fanout.note_error("subscribe")
            raise
        if self.authorize is not None and (
            expires is not None or self.reauthorize_every is not None
        ):
            subscription.guard(
                Watch(
                    authorize=self.authorize,
                    connection=connection,
                    topics=names,
                    expires_at=expires,
                    every=self.reauthorize_every,
                    timeout=self.authorize_timeout,
                    closing=fanout.format.unauthorized,
                )
            )
        return subscription

    async def _pages(
        self,
        names: tuple[str, ...],
        after: str | None,
        until: str | None,
        page_size: int,
        expires: float | None = None,
    ) -> AsyncIterator[HistoryItem]:
        """Stage 4 as values: the history, ``page_size`` events at a time; with ``expires``,
        nothing is read past it."""
        check_gaps = after is not None
        reported: set[str] = set()
        while True:
            if expires is not None and time.time() >= expires:
                raise PermissionDeniedException(detail="Authorization expired while reading")
            try:
                page = await self._backend.read_history(
                    names, after, until, page_size, check_gaps=check_gaps
                )
            except BackendUnavailableError:
                self._fanout.note_error("read")
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

    # -- the paths ---------------------------------------------------------------------------

    async def open_subscription(
        self,
        topics: str | Iterable[str],
        last_event_id: str | None,
        connection: ASGIConnection[Any, Any, Any, Any] | None,
    ) -> Subscription:
        """See :meth:`Broadcaster.open_subscription`."""
        names = topic_tuple(topics, self.max_topics)
        return await self._open(names, connection, last_event_id, resume=True)

    async def subscribe(
        self,
        topics: str | Iterable[str],
        last_event_id: str | None,
        connection: ASGIConnection[Any, Any, Any, Any],
        response_kwargs: dict[str, Any],
    ) -> SubscriptionResponse:
        """See :meth:`Broadcaster.subscribe`."""
        if connection is None:
            raise TypeError(
                "Broadcaster.subscribe() needs the request: pass connection=request (it is "
                "what authorize is asked about, and where a reconnecting client's "
                "Last-Event-ID is read; without it the client would silently miss events)"
            )
        names = topic_tuple(topics, self.max_topics)
        subscription = await self._open(names, connection, last_event_id, resume=True)
        headers = {RESUMED_FROM_HEADER: subscription.resumed_from}
        if subscription.gap is not None:
            headers[GAP_HEADER] = subscription.gap
        extra = response_kwargs.pop("headers", None)
        if extra:
            headers.update(extra)
        response_kwargs.setdefault("sep", self._fanout.format.sep)
        try:
            return SubscriptionResponse(subscription, headers=headers, **response_kwargs)
        except BaseException:
            subscription.close()
            raise

    async def subscribe_messages(
        self,
        topics: str | Iterable[str],
        last_event_id: str | None,
        connection: ASGIConnection[Any, Any, Any, Any] | None,
        until: Until | None,
        page_size: int,
    ) -> MessageSubscription:
        """See :meth:`Broadcaster.subscribe_messages`."""
        names = topic_tuple(topics, self.max_topics)
        size = check_required_count(page_size, "page_size", minimum=1)
        if until is not None and not callable(until):
            raise TypeError(f"until must be a callable taking a BroadcastMessage, got {until!r}")
        if last_event_id is not None and not isinstance(last_event_id, str):
            raise TypeError(f"last_event_id must be a str or None, got {last_event_id!r:.60}")
        if last_event_id is None and connection is not None:
            last_event_id = client_last_event_id(connection)
        # Live from the head, without a resume; the backlog is read up to that same head,
        # where live events start, and is watched with the subscription.
        subscription = await self._open(names, connection, None, resume=False, values=True)
        backlog = None
        if last_event_id:
            backlog = self._pages(names, last_event_id, subscription.resumed_from, size)
        return MessageSubscription(subscription, backlog, until)

    def history(
        self,
        topics: str | Iterable[str],
        after: str | None,
        until: str | None,
        page_size: int,
        connection: ASGIConnection[Any, Any, Any, Any] | None,
    ) -> AsyncIterator[HistoryItem]:
        """See :meth:`Broadcaster.history`."""
        names = topic_tuple(topics, self.max_topics)
        size = check_required_count(page_size, "page_size", minimum=1)
        for name, value in (("after", after), ("until", until)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be an event id (str) or None, got {value!r:.60}")
        return self._history(names, after, until, size, connection)

    async def _history(
        self,
        names: tuple[str, ...],
        after: str | None,
        until: str | None,
        page_size: int,
        connection: Any,
    ) -> AsyncIterator[HistoryItem]:
        try:
            expires = await self._authorized(names, connection)
        except TopicRefused as refused:  # refused, expired, or no answer in time
            raise PermissionDeniedException(
                detail=f"Not allowed to read topic {refused.topic!r}"
            ) from None
        await self._ready()
        async for item in self._pages(names, after, until, page_size, expires):
            yield item

    async def topic_of(
        self, event_id: str, connection: ASGIConnection[Any, Any, Any, Any] | None
    ) -> str | None:
        """See :meth:`Broadcaster.topic_of`."""
        if not isinstance(event_id, str):
            raise TypeError(f"event_id must be a str, got {event_id!r:.60}")
        await self._ready()
        try:
            topic = await self._backend.topic_of(event_id)
        except BackendUnavailableError:
            self._fanout.note_error("read")
            raise
        if topic is None or not await self._allowed(connection, topic):
            return None
        return topic
