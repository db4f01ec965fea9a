"""Local fan-out: one ring of recent events per topic, one cursor per subscriber.

This is the hot path of a broadcast. Publishing appends one reference to the topic's ring and
wakes only the subscribers that are idle (waiting for an event); a subscriber that is busy
sending is not touched at all. When a subscriber comes back for more, everything between its
cursor and the head of the ring goes out joined into one chunk, so a burst costs one ASGI
send per subscriber, not one per event. Publishing never awaits a subscriber.

A subscriber of several topics is told which of its topics have news (see
:mod:`~litestar_sse.broadcast.feeds`), so an event costs the same whether it follows two
topics or thousands.

A subscriber whose cursor falls more than ``max_queue`` events behind is *slow*: with
``drop_oldest`` it skips to the newest ``max_queue`` events and gets a gap event; with
``disconnect`` its stream ends and the client resumes from history with ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final

from litestar_sse.broadcast.feeds import Inbox, TopicFeed
from litestar_sse.message import RawEvent

if TYPE_CHECKING:
    from litestar_sse.broadcast.backend import Snapshot
    from litestar_sse.broadcast.encoding import EventFormat

__all__ = ("FanOut", "Subscription")

_BACKLOG_BATCH: Final = 512
"""Replayed events sent per ASGI send."""

_first: Final = itemgetter(0)
logger: Final = logging.getLogger("litestar_sse.broadcast")


class FanOut:
    """The local subscribers of a broadcaster, by topic, and the delivery counters.

    Args:
        format: How gap events are written.
        max_queue: Events a subscriber may lag behind before it counts as slow.
        drop_oldest: Slow subscribers skip events (``True``) or are disconnected.
        on_idle: Called with a topic when its last local subscriber leaves.
    """

    __slots__ = (
        "_subscriptions",
        "delivered",
        "disconnected",
        "drop_oldest",
        "dropped",
        "feeds",
        "format",
        "max_queue",
        "on_idle",
        "received",
    )

    def __init__(
        self,
        format: EventFormat,
        *,
        max_queue: int,
        drop_oldest: bool,
        on_idle: Callable[[str], None],
    ) -> None:
        self.format = format
        self.max_queue = max_queue
        self.drop_oldest = drop_oldest
        self.on_idle = on_idle
        self.feeds: dict[str, TopicFeed] = {}
        self._subscriptions: weakref.WeakSet[Subscription] = weakref.WeakSet()
        self.received = 0
        self.delivered = 0
        self.dropped = 0
        self.disconnected = 0

    def deliver(self, topic: str, position: int, chunk: bytes) -> None:
        """Hand one encoded event to the subscribers of ``topic``; never blocks."""
        self.received += 1
        feed = self.feeds.get(topic)
        if feed is not None:
            feed.append(position, chunk)

    def open(self, topics: tuple[str, ...]) -> Subscription:
        """Register a subscriber to ``topics``: it gets every event delivered from now on."""
        feeds = []
        for topic in topics:
            feed = self.feeds.get(topic)
            if feed is None:
                feed = TopicFeed(topic, self.max_queue, disconnect_slow=not self.drop_oldest)
                self.feeds[topic] = feed
            feed.count += 1
            feeds.append(feed)
        subscription = Subscription(self, tuple(feeds))
        self._subscriptions.add(subscription)
        inbox = subscription._inbox
        for feed in feeds:
            feed.subscriptions.add(subscription)
            if inbox is not None:
                feed.inboxes[inbox] = None
        return subscription

    def release(self, feeds: tuple[TopicFeed, ...], inbox: Inbox | None = None) -> None:
        """Forget one subscriber of ``feeds`` (runs once per subscription)."""
        for feed in feeds:
            if inbox is not None:
                feed.inboxes.pop(inbox, None)
            feed.count -= 1
            if feed.count == 0 and self.feeds.get(feed.name) is feed:
                del self.feeds[feed.name]
                self.on_idle(feed.name)

    def end_all(self, final: bytes | None = None) -> None:
        """End every subscription once it has sent what it holds (and ``final``)."""
        for subscription in list(self._subscriptions):
            subscription._end(final)

    def reset(self, final: bytes) -> None:
        """The backend lost its history: end every subscription after ``final``."""
        self.end_all(final)

    def subscriber_counts(self) -> dict[str, int]:
        """Open subscriptions per topic."""
        return {name: feed.count for name, feed in self.feeds.items()}


class Subscription:
    """One subscriber: an async iterator of :class:`~litestar_sse.RawEvent` chunks.

    Each chunk holds every event that was waiting, joined. Iterate it as the content of a
    :class:`~litestar_sse.ServerSentEvent`, or directly. The iteration ends when the
    broadcaster closes, when the backend lost its history (after a final gap event), or when
    the subscriber was too slow under the ``disconnect`` policy. :meth:`close` (or ``aclose``,
    or leaving ``async with``) unsubscribes; so does dropping the last reference to it.

    Attributes:
        topics: The topics subscribed to.
        resumed_from: The id after which this subscription's events start.
        gap: Why the subscriber missed events before it started (``"invalid"``, ``"epoch"``,
            ``"retention"``), or ``None`` when it resumed exactly (or did not resume).
        gap_topics: The topics whose missed events could not be replayed.
    """

    __slots__ = (
        "__weakref__",
        "_after",
        "_backlog",
        "_closed",
        "_cursors",
        "_fanout",
        "_feeds",
        "_final",
        "_finalizer",
        "_future",
        "_inbox",
        "_slot",
        "gap",
        "gap_topics",
        "on_overflow",
        "resumed_from",
        "topics",
    )

    def __init__(self, fanout: FanOut, feeds: tuple[TopicFeed, ...]) -> None:
        self._fanout = fanout
        self._feeds = feeds
        self._cursors = [feed.head for feed in feeds]
        # Several topics: an inbox the topics note their news in, and each topic's cursor slot.
        self._inbox = Inbox() if len(feeds) > 1 else None
        self._slot = {feed: index for index, feed in enumerate(feeds)} if len(feeds) > 1 else None
        self._future: asyncio.Future[None] | None = None
        self._after: int | None = None
        self._backlog: list[bytes] = []
        self._closed = False
        self._final: bytes | None = None
        self._finalizer = weakref.finalize(self, fanout.release, feeds, self._inbox)
        self._finalizer.atexit = False
        self.topics = tuple(feed.name for feed in feeds)
        self.resumed_from = ""
        self.gap: str | None = None
        self.gap_topics: tuple[str, ...] = ()
        self.on_overflow: Callable[[], None] | None = None
        """Called when the ``disconnect`` policy drops this subscriber (e.g. to cut its
        stream while it is stuck in a send)."""

    def prime(self, snapshot: Snapshot) -> None:
        """Queue the replay (and gap event) of ``snapshot`` ahead of live events."""
        self.resumed_from = snapshot.resumed_from
        self.gap = snapshot.gap
        self.gap_topics = snapshot.gap_topics
        self._after = snapshot.live_after
        backlog = list(snapshot.history)
        self._fanout.delivered += len(backlog)
        if snapshot.gap is not None:
            # After the replay and with the newest id, so the client's Last-Event-ID never
            # moves backwards and a later reconnect does not report the same gap again.
            backlog.append(
                self._fanout.format.gap(
                    snapshot.gap,
                    event_id=snapshot.resumed_from,
                    topics=list(snapshot.gap_topics),
                )
            )
        backlog.reverse()  # popped from the end
        self._backlog = backlog

    # -- iteration ---------------------------------------------------------------------------

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> RawEvent:
        if self._backlog:
            return RawEvent(self._take_backlog())
        while True:
            body = self._collect()
            if body is not None:
                return RawEvent(body)
            if self._closed:
                final, self._final = self._final, None
                if final is not None:
                    return RawEvent(final)
                raise StopAsyncIteration
            # Idle: one future per wait, woken by the next append to any of our topics. A
            # future left behind by a cancelled wait is done, and waking skips done futures.
            self._future = future = asyncio.get_running_loop().create_future()
            inbox = self._inbox
            if inbox is None:
                self._feeds[0].waiters[self] = None
            else:
                inbox.future = future  # registered with every topic already
            await future

    def _take_backlog(self) -> bytes:
        backlog = self._backlog
        if len(backlog) <= _BACKLOG_BATCH:
            self._backlog = []
            return b"".join(reversed(backlog))
        batch = backlog[-_BACKLOG_BATCH:]
        del backlog[-_BACKLOG_BATCH:]
        return b"".join(reversed(batch))

    def _collect(self) -> bytes | None:
        """Take everything queued for this subscriber, as one chunk (or ``None``)."""
        if len(self._feeds) != 1:
            return self._collect_many()
        feed = self._feeds[0]
        chunks = feed.chunks
        base = feed.base
        head = base + len(chunks)
        cursor = self._cursors[0]
        if cursor >= head:
            return None
        fanout = self._fanout
        lag = head - cursor
        dropped = 0
        if lag > fanout.max_queue:
            if not fanout.drop_oldest:
                self._overflow(lag)
                return None
            dropped = lag - fanout.max_queue
            fanout.dropped += dropped
        self._cursors[0] = head
        start = head - lag + dropped - base
        if self._after is not None:
            start = self._skip_replayed(feed, start, self._after)
            if start == len(chunks):
                return None
        count = len(chunks) - start
        fanout.delivered += count
        body = chunks[start] if count == 1 else b"".join(chunks[start:])
        if dropped:
            return fanout.format.gap("overflow", dropped=dropped) + body
        return body

    def _collect_many(self) -> bytes | None:
        # Only the topics that noted news in the inbox: every other one is up to date.
        inbox = self._inbox
        assert inbox is not None
        assert self._slot is not None
        ready = inbox.ready
        if not ready:
            return None
        inbox.ready = {}
        fanout = self._fanout
        cursors, slot = self._cursors, self._slot
        limit = fanout.max_queue
        if not fanout.drop_oldest:
            for feed in ready:
                if feed.head - cursors[slot[feed]] > limit:
                    self._overflow(sum(f.head - cursors[slot[f]] for f in ready))
                    return None
        found: list[tuple[TopicFeed, int]] = []
        dropped = 0
        for feed in ready:
            index = slot[feed]
            head = feed.head
            lag = head - cursors[index]
            cursors[index] = head
            feed.inboxes[inbox] = None  # up to date with it again
            if lag <= 0:
                continue
            skip = lag - limit if lag > limit else 0
            dropped += skip
            found.append((feed, head - lag + skip - feed.base))
        if not found:
            return None
        fanout.dropped += dropped
        if self._after is not None:
            after = self._after
            found = [(feed, self._skip_replayed(feed, start, after)) for feed, start in found]
            found = [(feed, start) for feed, start in found if start < len(feed.chunks)]
            if not found:
                return None
        if len(found) == 1:
            feed, start = found[0]
            chunks = feed.chunks[start:]
        else:
            pairs: list[tuple[int, bytes]] = []
            for feed, start in found:
                pairs.extend(zip(feed.positions[start:], feed.chunks[start:], strict=True))
            pairs.sort(key=_first)
            chunks = [chunk for _, chunk in pairs]
        fanout.delivered += len(chunks)
        body = b"".join(chunks)
        if dropped:
            return fanout.format.gap("overflow", dropped=dropped) + body
        return body

    def _skip_replayed(self, feed: TopicFeed, start: int, after: int) -> int:
        # Live events that the replay (or the gap) already covered: the seam between history
        # and live. Positions only grow, so the first one past the seam ends the check.
        positions = feed.positions
        end = len(positions)
        while start < end and positions[start] <= after:
            start += 1
        if start < end:
            self._after = None
        return start

    # -- ending ------------------------------------------------------------------------------

    def _check_lag(self, feed: TopicFeed, head: int) -> None:
        if self._closed:
            return
        cursor = self._cursors[0 if self._slot is None else self._slot[feed]]
        if head - cursor > self._fanout.max_queue:
            self._overflow(sum(f.head - c for f, c in zip(self._feeds, self._cursors, strict=True)))

    def _overflow(self, lag: int) -> None:
        fanout = self._fanout
        fanout.disconnected += 1
        fanout.dropped += lag
        self._cursors = [feed.head for feed in self._feeds]
        self._end(None)
        logger.info("Broadcast subscriber %d events behind: disconnected", lag)
        if self.on_overflow is not None:
            try:
                self.on_overflow()
            except Exception:
                logger.exception("on_overflow of a broadcast subscription failed")

    def _end(self, final: bytes | None) -> None:
        if self._closed:
            return
        self._closed = True
        self._final = final
        for feed in self._feeds:
            feed.waiters.pop(self, None)
        self._finalizer()
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)

    @property
    def closed(self) -> bool:
        """True once the subscription receives no more live events."""
        return self._closed

    def close(self) -> None:
        """Unsubscribe now; anything not yet taken is discarded."""
        self._backlog = []
        self._cursors = [feed.head for feed in self._feeds]
        self._end(None)

    async def aclose(self) -> None:
        """Unsubscribe (the ASGI layer calls this when the stream ends)."""
        self.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.close()
