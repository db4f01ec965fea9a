"""Local fan-out: one ring of recent events per topic, one cursor per subscriber.

This is the hot path of a broadcast. Publishing appends one reference to the topic's ring and
touches only the subscribers that are idle (waiting for an event); a subscriber that is busy
sending is not touched at all. An idle stream of one topic is sent its events from one pass
of the topic per turn of the event loop, by its stream's sink, without waking its task (see
:mod:`~litestar_sse.broadcast._hub.feeds`); another idle subscriber is woken. Either way the
events waiting for a subscriber go out joined, up to 64 KiB, in one send (a burst costs one
ASGI send per subscriber, not one per event; subscribers in step share the joined bytes); a
larger event goes alone, as the ``bytes`` object all subscribers share. Publishing never
awaits a subscriber. A subscriber of several topics is told which of them
have news (see :mod:`~litestar_sse.broadcast._hub.feeds`), so an event costs the same whether it
follows two topics or thousands.

A subscriber is *slow* when what it has not written yet (what its topics hold for it, and the
chunk it is writing, counted up to 64 KiB) is more than ``max_queue`` events of one topic or
``max_queue_bytes`` bytes, and not a single event (see
:mod:`~litestar_sse.broadcast._hub.limits`): with ``drop_oldest`` it skips to the newest events
within both and gets a gap event; with ``disconnect`` its stream ends and the client resumes
from history with ``Last-Event-ID``.
"""

from __future__ import annotations

import logging
import sys
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from litestar_sse.broadcast._events.values import message_value
from litestar_sse.broadcast._hub.backlog import JOIN_BYTES
from litestar_sse.broadcast._hub.counters import PEAK_PERIOD, HubCounters
from litestar_sse.broadcast._hub.feeds import Inbox, TopicFeed
from litestar_sse.broadcast._hub.limits import Held
from litestar_sse.broadcast._hub.subscription import Subscription

if TYPE_CHECKING:
    from litestar_sse.broadcast._events.format import EventFormat

__all__ = ("PEAK_PERIOD", "FanOut", "Subscription")

logger: Final = logging.getLogger("litestar_sse.broadcast")


class FanOut:
    """The local subscribers of a broadcaster, by topic. Its :class:`HubCounters` are handed
    to each subscription, which counts there (read by :mod:`~litestar_sse.broadcast._stats`).

    Args:
        format: How gap events are written.
        max_queue: Events of one topic a subscriber may lag behind before it counts as slow.
        drop_oldest: Slow subscribers skip events (``True``) or are disconnected.
        on_idle: Called with a topic when its last local subscriber leaves.
        max_queue_bytes: Bytes a subscriber may have queued and in flight before it counts
            as slow (``None``: no limit in bytes).
    """

    __slots__ = (
        "_subscriptions",
        "counters",
        "drop_oldest",
        "feeds",
        "format",
        "join_bytes",
        "max_queue",
        "max_queue_bytes",
        "on_idle",
    )

    def __init__(
        self,
        format: EventFormat,
        *,
        max_queue: int,
        drop_oldest: bool,
        on_idle: Callable[[str], None],
        max_queue_bytes: int | None = None,
    ) -> None:
        self.format = format
        self.max_queue = max_queue
        self.max_queue_bytes = sys.maxsize if max_queue_bytes is None else max_queue_bytes
        self.join_bytes = min(JOIN_BYTES, self.max_queue_bytes)
        """Most bytes of events joined into one chunk."""
        self.drop_oldest = drop_oldest
        self.on_idle = on_idle
        self.feeds: dict[str, TopicFeed] = {}
        self._subscriptions: weakref.WeakSet[Subscription] = weakref.WeakSet()
        self.counters = HubCounters()
        """What this fan-out and its subscriptions counted."""

    def deliver(
        self,
        topic: str,
        position: int,
        chunk: bytes,
        event_id: bytes,
        event: bytes | None,
        data: bytes,
    ) -> None:
        """Hand one encoded event (``chunk``, encoded from ``event_id``, ``event`` and
        ``data``) to the subscribers of ``topic``; never blocks. Its value is made once, only
        while the topic has subscribers that read values."""
        self.counters.received += 1
        feed = self.feeds.get(topic)
        if feed is not None:
            feed.append(
                position,
                chunk,
                message_value(topic, event_id, event, data) if feed.readers else None,
            )

    def open(self, topics: tuple[str, ...], *, values: bool = False) -> Subscription:
        """Register a subscriber to ``topics``: it gets every event delivered from now on
        (with ``values``, as values too: see :meth:`Subscription.next_values`)."""
        feeds = []
        for topic in topics:
            feed = self.feeds.get(topic)
            if feed is None:
                feed = TopicFeed(
                    topic,
                    self.max_queue,
                    disconnect_slow=not self.drop_oldest,
                    keep_bytes=self.max_queue_bytes,
                )
                self.feeds[topic] = feed
            feed.count += 1
            if values:
                feed.readers += 1
            feed.taken += feed.total  # it starts at the head: nothing of it to take
            feeds.append(feed)
        subscription = Subscription(self, tuple(feeds), self.counters, values=values)
        self._subscriptions.add(subscription)
        return subscription

    def release(
        self,
        feeds: tuple[TopicFeed, ...],
        inbox: Inbox | None,
        held: Held | None = None,
        values: bool = False,
    ) -> None:
        """Forget one subscriber of ``feeds`` (runs once per subscription), and what it
        ``held`` of them; ``values``: it read values."""
        for index, feed in enumerate(feeds):
            if values:
                feed.readers -= 1
            if inbox is not None:
                feed.inboxes.pop(inbox, None)
            if held is not None:
                feed.taken -= held.offsets[index]
            feed.count -= 1
            if feed.count == 0 and self.feeds.get(feed.name) is feed:
                del self.feeds[feed.name]
                self.on_idle(feed.name)

    def note_error(self, failed: str) -> None:
        """Count a call that found the backend unavailable (``failed``: one of
        ``BACKEND_ERRORS``), for the stats: the broadcaster's publishes and the pipeline's
        reads; subscriptions count their own replays."""
        self.counters.note_error(failed)

    def drop_sending(self, held: Held) -> None:
        """A subscriber's stream ended: the chunk it was writing is not queued any more."""
        self.counters.sending_bytes -= held.sending
        held.sending = 0
        held.writing = False

    def end_all(self, final: bytes | None = None) -> None:
        """End every subscription once it has sent what it holds (and ``final``); a replay
        still being read stops where it is."""
        for subscription in list(self._subscriptions):
            subscription.end(final)

    def reset(self, final: bytes) -> None:
        """The backend lost its history: end every subscription after ``final`` (the one
        final event a subscription sends: an ``epoch`` gap event)."""
        self.end_all(final)

    def subscriber_counts(self) -> dict[str, int]:
        """Open subscriptions per topic."""
        return {name: feed.count for name, feed in self.feeds.items()}

    def queued_bytes(self) -> tuple[int, int]:
        """Bytes queued for every subscriber together (what their topics hold for them, and
        the chunks they are writing), from counters kept as they go: a few operations per
        topic, none per subscriber. And the most one subscriber had queued when it was
        looked at, in the last :data:`PEAK_PERIOD` seconds at least (the current period and
        the one before; a read starts a new period once the current one is that old)."""
        queued = self.counters.sending_bytes
        for feed in self.feeds.values():
            queued += feed.count * feed.total - feed.taken
        return queued, self.counters.peak()
