"""Local fan-out: one ring of recent events per topic, one cursor per subscriber.

This is the hot path of a broadcast. Publishing appends one reference to the topic's ring and
wakes only the subscribers that are idle (waiting for an event); a subscriber that is busy
sending is not touched at all. When a subscriber comes back for more, the events waiting for
it go out joined, up to 64 KiB, in one send (a burst costs one ASGI send per subscriber, not
one per event); a larger event goes alone, as the ``bytes`` object all subscribers share.
Publishing never awaits a subscriber. A subscriber of several topics is told which of them
have news (see :mod:`~litestar_sse.broadcast.feeds`), so an event costs the same whether it
follows two topics or thousands.

A subscriber is *slow* when what it has not written yet (what its topics hold for it, and the
chunk it is writing, counted up to 64 KiB) is more than ``max_queue`` events of one topic or
``max_queue_bytes`` bytes, and not a single event (see
:mod:`~litestar_sse.broadcast.taking`): with ``drop_oldest`` it skips to the newest events
within both and gets a gap event; with ``disconnect`` its stream ends and the client resumes
from history with ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from litestar_sse.broadcast.backend import BACKEND_ERRORS
from litestar_sse.broadcast.backlog import JOIN_BYTES, REPLAY_PAGE_BYTES, Backlog, take_backlog
from litestar_sse.broadcast.encoding import GAP_REASONS
from litestar_sse.broadcast.feeds import Inbox, TopicFeed
from litestar_sse.broadcast.taking import Held, TakingLimits
from litestar_sse.message import RawEvent

if TYPE_CHECKING:
    from litestar_sse.broadcast.backend import Snapshot
    from litestar_sse.broadcast.encoding import EventFormat

__all__ = ("PEAK_PERIOD", "FanOut", "Subscription")

logger: Final = logging.getLogger("litestar_sse.broadcast")

PEAK_PERIOD: Final = 10.0
"""Seconds of a period of ``queue_bytes_max`` (see :meth:`FanOut.queued_bytes`)."""


class FanOut:
    """The local subscribers of a broadcaster, by topic, and its counters (integers added
    to where things happen; read by :mod:`~litestar_sse.broadcast.stats`).

    Args:
        format: How gap events are written.
        max_queue: Events of one topic a subscriber may lag behind before it counts as slow.
        drop_oldest: Slow subscribers skip events (``True``) or are disconnected.
        on_idle: Called with a topic when its last local subscriber leaves.
        max_queue_bytes: Bytes a subscriber may have queued and in flight before it counts
            as slow (``None``: no limit in bytes).
    """

    __slots__ = (
        "_peak_since",
        "_subscriptions",
        "delivered",
        "disconnected",
        "drop_oldest",
        "dropped",
        "errors",
        "feeds",
        "format",
        "gaps",
        "join_bytes",
        "max_queue",
        "max_queue_bytes",
        "on_idle",
        "queue_peak",
        "queue_peak_before",
        "received",
        "replayed",
        "resumes",
        "sending_bytes",
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
        self.received = 0
        self.delivered = 0
        self.dropped = 0
        self.disconnected = 0
        self.resumes = 0
        self.replayed = 0
        self.gaps = dict.fromkeys(GAP_REASONS, 0)
        """Gap events handed to subscribers, by reason."""
        self.errors = dict.fromkeys(BACKEND_ERRORS, 0)
        """Calls that found the backend unavailable, by what failed (``BACKEND_ERRORS``)."""
        self.sending_bytes = 0
        """Bytes of the chunks the subscribers are writing, each up to ``join_bytes``."""
        self.queue_peak = 0
        """The most bytes one subscriber had queued when it was looked at (when it came for
        events, or its topic's ring was trimmed), in this period of :data:`PEAK_PERIOD`."""
        self.queue_peak_before = 0
        """The same in the period before."""
        self._peak_since = time.monotonic()

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
                feed = TopicFeed(
                    topic,
                    self.max_queue,
                    disconnect_slow=not self.drop_oldest,
                    keep_bytes=self.max_queue_bytes,
                )
                self.feeds[topic] = feed
            feed.count += 1
            feed.taken += feed.total  # it starts at the head: nothing of it to take
            feeds.append(feed)
        subscription = Subscription(self, tuple(feeds))
        self._subscriptions.add(subscription)
        inbox = subscription._inbox
        for feed in feeds:
            feed.subscriptions.add(subscription)
            if inbox is not None:
                feed.inboxes[inbox] = None
        return subscription

    def release(
        self, feeds: tuple[TopicFeed, ...], inbox: Inbox | None, held: Held | None = None
    ) -> None:
        """Forget one subscriber of ``feeds`` (runs once per subscription), and what it
        ``held`` of them."""
        for index, feed in enumerate(feeds):
            if inbox is not None:
                feed.inboxes.pop(inbox, None)
            if held is not None:
                feed.taken -= held.offsets[index]
            feed.count -= 1
            if feed.count == 0 and self.feeds.get(feed.name) is feed:
                del self.feeds[feed.name]
                self.on_idle(feed.name)

    def drop_sending(self, held: Held) -> None:
        """A subscriber's stream ended: the chunk it was writing is not queued any more."""
        self.sending_bytes -= held.sending
        held.sending = 0
        held.writing = False

    def end_all(self, final: bytes | None = None) -> None:
        """End every subscription once it has sent what it holds (and ``final``); a replay
        still being read stops where it is."""
        for subscription in list(self._subscriptions):
            subscription._end(final)

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
        queued = self.sending_bytes
        for feed in self.feeds.values():
            queued += feed.count * feed.total - feed.taken
        now = time.monotonic()
        if now - self._peak_since >= PEAK_PERIOD:
            self.queue_peak_before, self.queue_peak = self.queue_peak, 0
            self._peak_since = now
        return queued, max(self.queue_peak, self.queue_peak_before)


class Subscription(TakingLimits):
    """One subscriber: an async iterator of :class:`~litestar_sse.RawEvent` chunks.

    Each chunk holds the events that were waiting, joined up to 64 KiB, or one larger event.
    Iterate it as the content of a :class:`~litestar_sse.ServerSentEvent`, or directly. A
    resuming subscription first sends the events its client missed, read a page at a time.
    The iteration ends when the broadcaster closes, when the backend lost its history (after
    a final gap event) or could not be reached for the replay, or when the subscriber was
    too slow under the ``disconnect`` policy. :meth:`close` (or ``aclose``, or leaving
    ``async with``) unsubscribes; so does dropping the last reference to it.

    Attributes:
        topics: The topics subscribed to.
        resumed_from: The id after which this subscription's events start.
        gap: Why the subscriber missed events before it started (``"invalid"``, ``"epoch"``,
            ``"retention"``), or ``None`` when it resumed exactly (or did not resume). It
            becomes ``"retention"`` if the history loses events while they are replayed.
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
        "_held",
        "_inbox",
        "_resumed",
        "_slot",
        "_unsending",
        "gap",
        "gap_topics",
        "on_close",
        "on_overflow",
        "on_start",
        "resumed_from",
        "topics",
    )

    _fanout: FanOut

    def __init__(self, fanout: FanOut, feeds: tuple[TopicFeed, ...]) -> None:
        self._fanout = fanout
        self._feeds = feeds
        self._cursors = [feed.head for feed in feeds]
        self._held = Held([feed.total for feed in feeds])
        # Several topics: an inbox the topics note their news in, and each topic's cursor slot.
        self._inbox = Inbox() if len(feeds) > 1 else None
        self._slot = {feed: index for index, feed in enumerate(feeds)} if len(feeds) > 1 else None
        self._future: asyncio.Future[None] | None = None
        self._after: int | None = None
        self._backlog: Backlog | None = None
        self._sending = self._sending_events = 0
        self._closed = False
        self._final: bytes | None = None
        self._resumed = False
        self._finalizer = weakref.finalize(self, fanout.release, feeds, self._inbox, self._held)
        self._finalizer.atexit = False
        # apart: a subscriber ended for being slow may still be writing its last chunk
        self._unsending = weakref.finalize(self, fanout.drop_sending, self._held)
        self._unsending.atexit = False
        self.topics = tuple(feed.name for feed in feeds)
        self.resumed_from = ""
        self.gap: str | None = None
        self.gap_topics: tuple[str, ...] = ()
        self.on_overflow: Callable[[], None] | None = None
        """Called when the ``disconnect`` policy drops this subscriber (e.g. to cut its
        stream while it is stuck in a send)."""
        self.on_start: Callable[[], None] | None = None
        """Called once, when the subscription is first iterated (``aiter``): when its stream
        starts, which a stream refused or stopped before it starts never does."""
        self.on_close: Callable[[], None] | None = None
        """Called once, by :meth:`close` (its stream ended)."""

    def prime(self, snapshot: Snapshot, *, resumed: bool = False) -> None:
        """Send the replay (and gap event) of ``snapshot`` ahead of live events.

        The replay is read when the subscription is iterated, a page at a time. ``resumed``:
        the subscriber resumed from an id (counted when the subscription starts).
        """
        self._resumed = resumed
        self.resumed_from = snapshot.resumed_from
        self.gap = snapshot.gap
        self.gap_topics = snapshot.gap_topics
        self._after = snapshot.live_after
        if snapshot.history or snapshot.replay is not None or snapshot.gap is not None:
            page_bytes = min(REPLAY_PAGE_BYTES, self._fanout.max_queue_bytes)
            self._backlog = Backlog(snapshot, self._fanout.format, page_bytes)

    # -- iteration ---------------------------------------------------------------------------

    def __aiter__(self) -> Subscription:
        if self._resumed:  # a resume served: its stream started
            self._resumed = False
            self._fanout.resumes += 1
        on_start = self.on_start
        if on_start is not None:
            self.on_start = None
            try:
                on_start()
            except Exception:
                logger.exception("on_start of a broadcast subscription failed")
        return self

    async def __anext__(self) -> RawEvent:
        self._sending = self._sending_events = 0  # the stream wrote the previous chunk
        # (the stats count it until the next chunk replaces it, or the stream waits idle)
        if self._backlog is not None:
            body = await take_backlog(self)
            if body is not None:
                return RawEvent(body)
        while True:
            body = self._collect()
            if body is not None:
                return RawEvent(body)
            if self._closed:
                final, self._final = self._final, None
                if final is not None:  # the epoch gap event of FanOut.reset
                    self._fanout.gaps["epoch"] += 1
                    return RawEvent(final)
                raise StopAsyncIteration
            held = self._held
            if held.sending:  # nothing in flight while it waits
                self._fanout.sending_bytes -= held.sending
                held.sending = 0
            # Idle: one future per wait, woken by the next append to any of our topics. A
            # future left behind by a cancelled wait is done, and waking skips done futures.
            self._future = future = asyncio.get_running_loop().create_future()
            inbox = self._inbox
            if inbox is None:
                self._feeds[0].waiters[self] = None
            else:
                inbox.future = future  # registered with every topic already
            await future

    def _collect(self) -> bytes | None:
        """Take the next chunk queued for this subscriber (or ``None``)."""
        if len(self._feeds) != 1:
            return self._collect_many()
        feed = self._feeds[0]
        chunks = feed.chunks
        size = len(chunks)
        base = feed.base
        cursor = self._cursors[0]
        start = cursor - base  # relative; negative when trimmed events were still due
        if start >= size:
            return None
        # Inlined (no property, no helper call): this runs twice per send.
        fanout = self._fanout
        lag = size - start
        if lag > 1:
            if lag > fanout.max_queue or start < 0:
                return self._slow([(feed, cursor)])
            queued = feed.total - feed.starts[start]
            if queued > fanout.max_queue_bytes:
                return self._slow([(feed, cursor)])
            if queued > fanout.queue_peak:
                fanout.queue_peak = queued
        if self._after is not None:
            start = self._skip_replayed(feed, start, self._after)
            if start == size:
                self._move(0, base + size)
                return None
        if start == size - 1:  # one event: the common case at a steady rate
            end = size
            body = chunks[start]
        else:
            join_bytes = fanout.join_bytes
            end = (
                size
                if feed.total - feed.starts[start] <= join_bytes
                else feed.batch_end(start, join_bytes)
            )
            body = chunks[start] if end - start == 1 else b"".join(chunks[start:end])
        self._cursors[0] = base + end
        count = end - start
        fanout.delivered += count
        self._sending = sent = len(body)
        self._sending_events = count
        if not self._closed:  # the counters of the stats (see _move and _handing), inlined
            held = self._held
            offset = feed.total if end == size else feed.starts[end]
            feed.taken += offset - held.offsets[0]
            held.offsets[0] = offset
            if sent > fanout.join_bytes:
                sent = fanout.join_bytes
            fanout.sending_bytes += sent - held.sending
            held.sending = sent
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

    def _overflow(self, lag: int) -> None:
        fanout = self._fanout
        fanout.disconnected += 1
        fanout.dropped += lag
        self._move_to_heads()
        self._backlog = None
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
        if self._backlog is not None:
            # A replay cut short: no live event after it either, or the client's Last-Event-ID
            # would skip what was not replayed. It resumes from the last event it got.
            self._backlog = None
            self._move_to_heads()
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
        self._backlog = None
        self._move_to_heads()
        self._sending = self._sending_events = 0  # nothing in flight any more
        self._unsending()
        self._end(None)
        on_close, self.on_close = self.on_close, None
        if on_close is not None:
            on_close()

    async def aclose(self) -> None:
        """Unsubscribe (the ASGI layer calls this when the stream ends)."""
        self.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.close()
