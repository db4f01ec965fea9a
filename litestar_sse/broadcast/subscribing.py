"""Opening a subscription: ``authorize``, ``Last-Event-ID``, the snapshot, the response.

A base class of :class:`~litestar_sse.broadcast.Broadcaster`, apart from its settings,
lifecycle and publishing. A subscription is registered with the fan-out before the backend
decides where it resumes (so nothing published meanwhile is lost), and its response carries
where it resumed, any gap, and the :class:`~.authorization.Watch` of its authorization.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from litestar_sse.broadcast.authorization import Watch, authorize_topics
from litestar_sse.broadcast.backend import BackendUnavailableError
from litestar_sse.broadcast.reads import BroadcastReads, client_last_event_id
from litestar_sse.broadcast.responses import (
    GAP_HEADER,
    RESUMED_FROM_HEADER,
    SubscriptionResponse,
)
from litestar_sse.broadcast.topics import topic_tuple

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection

    from litestar_sse.broadcast.fanout import FanOut, Subscription

__all__ = ("BroadcastSubscribing",)


class BroadcastSubscribing(BroadcastReads):
    """:meth:`open_subscription` and :meth:`subscribe` (a base of
    :class:`~litestar_sse.broadcast.Broadcaster`)."""

    # Set by Broadcaster.__init__.
    reauthorize_every: float | None
    _fanout: FanOut

    async def open_subscription(
        self,
        topics: str | Iterable[str],
        *,
        last_event_id: str | None = None,
        connection: ASGIConnection[Any, Any, Any, Any] | None = None,
    ) -> Subscription:
        """Subscribe to ``topics`` and return the :class:`Subscription` (an async iterator).

        Args:
            topics: One topic or several.
            last_event_id: Resume after this id. Without it, and with a ``connection``, the
                ``Last-Event-ID`` header (or the ``lastEventId`` query parameter) is used; one
                that cannot be an event id (too long, not UTF-8, with NUL, CR or LF) counts as
                an id that is not ours: a gap with reason ``"invalid"``.
            connection: The request, for ``authorize`` and ``Last-Event-ID``.

        Raises:
            InvalidTopicError: an invalid topic, or none (``400``).
            TooManyTopicsError: more topics than ``max_topics`` (``400``).
            PermissionDeniedException: ``authorize`` refused a topic (``403``).
            BackendUnavailableError: the backend cannot be reached (``503``).
        """
        subscription, _ = await self._open(topics, last_event_id, connection)
        return subscription

    async def _open(
        self,
        topics: str | Iterable[str],
        last_event_id: str | None,
        connection: ASGIConnection[Any, Any, Any, Any] | None,
    ) -> tuple[Subscription, float | None]:
        """:meth:`open_subscription`, and when ``authorize`` says the permission expires."""
        names = topic_tuple(topics, self.max_topics)
        expires = None
        if self.authorize is not None:
            expires = await authorize_topics(self.authorize, connection, names)
        if last_event_id is None and connection is not None:
            last_event_id = client_last_event_id(connection)
        elif last_event_id == "":
            last_event_id = None
        await self._ready()
        # Registered before the history is read: events published meanwhile are queued, and
        # the seam between replay and live is cut by position (Snapshot.live_after).
        subscription = self._fanout.open(names)
        try:
            await self.backend.watch(names)
            snapshot = await self.backend.snapshot(names, last_event_id)
            subscription.prime(snapshot, resumed=last_event_id is not None)
        except BaseException as exc:
            subscription.close()
            if isinstance(exc, BackendUnavailableError):
                self._fanout.errors["subscribe"] += 1
            raise
        return subscription, expires

    async def subscribe(
        self,
        topics: str | Iterable[str],
        *,
        last_event_id: str | None = None,
        connection: ASGIConnection[Any, Any, Any, Any] | None = None,
        **response_kwargs: Any,
    ) -> SubscriptionResponse:
        """Subscribe to ``topics``; return the response that streams their events.

        Return it from a handler. A client resuming with ``Last-Event-ID`` first gets the
        events it missed, then live ones. The response carries ``SSE-Resumed-From`` (the id
        after which its events start) and, when events were missed for good, ``SSE-Gap``
        (the reason: ``invalid``, ``epoch`` or ``retention``) together with a gap event.

        Args:
            topics: One topic or several.
            last_event_id: Resume after this id; by default read from ``connection``.
            connection: The request, for ``authorize`` and ``Last-Event-ID``.
            response_kwargs: Passed to :class:`~litestar_sse.ServerSentEvent`
                (``ping_interval``, ``send_timeout``, ``headers``, ``on_disconnect``, ...).

        Raises:
            InvalidTopicError: an invalid topic, or none (``400``).
            TooManyTopicsError: more topics than ``max_topics`` (``400``).
            PermissionDeniedException: ``authorize`` refused a topic (``403``).
            BackendUnavailableError: the backend cannot be reached (``503``).
        """
        subscription, expires = await self._open(topics, last_event_id, connection)
        headers = {RESUMED_FROM_HEADER: subscription.resumed_from}
        if subscription.gap is not None:
            headers[GAP_HEADER] = subscription.gap
        extra = response_kwargs.pop("headers", None)
        if extra:
            headers.update(extra)
        response_kwargs.setdefault("sep", self.format.sep)
        watch = None
        if self.authorize is not None and (
            expires is not None or self.reauthorize_every is not None
        ):
            watch = Watch(
                authorize=self.authorize,
                connection=connection,
                topics=subscription.topics,
                expires_at=expires,
                every=self.reauthorize_every,
                closing=self.format.unauthorized,
            )
        try:
            return SubscriptionResponse(
                subscription, headers=headers, watch=watch, **response_kwargs
            )
        except BaseException:
            subscription.close()
            raise
