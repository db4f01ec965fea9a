"""``Subscription``: one subscriber of the fan-out, an async iterator of its events' bytes.

It holds a cursor per topic into the topics' rings (:mod:`~litestar_sse.broadcast.feeds`),
the replay it sends first (:mod:`~litestar_sse.broadcast.backlog`), and the guard that
watches its authorization while it is read; how it takes its batches and meets its limits is
in :mod:`~litestar_sse.broadcast.taking`. Made by :meth:`~.fanout.FanOut.open`.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

from litestar_sse.asgi import runtime
from litestar_sse.broadcast.backlog import REPLAY_PAGE_BYTES, Backlog, take_backlog
from litestar_sse.broadcast.feeds import Inbox
from litestar_sse.broadcast.taking import Held, Limits, TakingLimits
from litestar_sse.message import RawEvent

if TYPE_CHECKING:
    from litestar_sse.broadcast.backend import Snapshot
    from litestar_sse.broadcast.feeds import TopicFeed

__all__ = ("Guard", "Hub", "Subscription")

logger: Final = logging.getLogger("litestar_sse.broadcast")


class Hub(Limits, Protocol):
    """What a subscription needs of the fan-out it belongs to
    (:class:`~litestar_sse.broadcast.fanout.FanOut`): its limits, its counters, and to be
    told when it is over."""

    resumes: int
    disconnected: int
    sending_bytes: int
    queue_peak: int

    def release(
        self, feeds: tuple[TopicFeed, ...], inbox: Inbox | None, held: Held | None = None
    ) -> None:
        """Forget one subscriber of ``feeds``, and what it ``held`` of them."""

    def drop_sending(self, held: Held) -> None:
        """The subscriber's stream ended: the chunk it was writing is not queued any more."""


class Guard(Protocol):
    """What watches a subscription (its authorization's expiry and re-checks): started when
    it is given to the subscription, cancelled when the subscription ends."""

    def start(self, subscription: Subscription) -> None:
        """Start watching ``subscription``."""

    def cancel(self) -> None:
        """Stop watching: the subscription ended."""


class Subscription(TakingLimits):
    """One subscriber: an async iterator of :class:`~litestar_sse.RawEvent` chunks.

    Each chunk holds the events that were waiting, joined up to 64 KiB, or one larger event.
    Iterate it as the content of a :class:`~litestar_sse.ServerSentEvent`, or directly. A
    resuming subscription first sends the events its client missed, read a page at a time.
    The iteration ends when the broadcaster closes, when the backend lost its history (after
    a final gap event) or could not be reached for the replay, when the subscriber was too
    slow under the ``disconnect`` policy, or when its authorization ended (:meth:`revoke`,
    after the ``unauthorized_event``). :meth:`close` (or ``aclose``, or leaving
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
        "_guard",
        "_held",
        "_inbox",
        "_resumed",
        "_slot",
        "_unsending",
        "gap",
        "gap_topics",
        "on_close",
        "on_overflow",
        "on_revoke",
        "on_start",
        "resumed_from",
        "revoked",
        "topics",
    )

    _fanout: Hub

    def __init__(self, fanout: Hub, feeds: tuple[TopicFeed, ...]) -> None:
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
        for feed in feeds:  # from now on, every event of these topics is kept for it
            feed.subscriptions.add(self)
            if self._inbox is not None:
                feed.inboxes[self._inbox] = None
        self._finalizer.atexit = False
        # apart: a subscriber ended for being slow may still be writing its last chunk
        self._unsending = weakref.finalize(self, fanout.drop_sending, self._held)
        self._unsending.atexit = False
        self.topics = tuple(feed.name for feed in feeds)
        self.resumed_from = ""
        self.gap: str | None = None
        self.gap_topics: tuple[str, ...] = ()
        self.revoked: str | None = None
        """Why its authorization ended it (``"expired"``, ``"revoked"``), or ``None``."""
        self._guard: Guard | None = None
        self.on_overflow: Callable[[], None] | None = None
        """Called when the ``disconnect`` policy drops this subscriber (e.g. to cut its
        stream while it is stuck in a send)."""
        self.on_start: Callable[[], None] | None = None
        """Called once, when the subscription is first iterated (``aiter``): when its stream
        starts, which a stream refused or stopped before it starts never does."""
        self.on_close: Callable[[], None] | None = None
        """Called once, by :meth:`close` (its stream ended)."""
        self.on_revoke: Callable[[bytes], None] | None = None
        """Called with the closing event when :meth:`revoke` ends this subscription (e.g. to
        stop its stream at once, with that event last)."""

    def guard(self, guard: Guard) -> None:
        """Have ``guard`` watch this subscription from now to its end (the broadcaster's
        authorization watch); call it on the event loop, once, before it is read."""
        if self._guard is not None:
            raise RuntimeError("This subscription already has a guard")
        if self._closed:
            return
        self._guard = guard
        guard.start(self)

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
                if final is not None:  # revoke's closing, or the epoch gap of FanOut.reset
                    if self.revoked is None:
                        self._fanout.gaps["epoch"] += 1
                    return RawEvent(final)
                raise StopAsyncIteration
            held = self._held
            if held.sending:  # nothing in flight while it waits
                self._fanout.sending_bytes -= held.sending
                held.sending = 0
            # Idle: one future per wait, woken by the next append to any of our topics. A
            # future left behind by a cancelled wait is done, and waking skips done futures.
            self._future = future = runtime.create_future()
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
        if self._guard is not None:
            self._guard.cancel()
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

    def revoke(self, reason: str, closing: bytes, *, cut: bool = True) -> None:
        """End now because its authorization ended (``reason``: ``"expired"``, ``"revoked"``).

        Nothing queued or left to replay is sent any more: ``closing`` (the broadcaster's
        ``unauthorized_event``) is the last chunk the iteration yields. With ``cut``,
        :attr:`on_revoke` is called with ``closing`` too (a stream stops at once).
        """
        if self._closed:
            return
        self.revoked = reason
        self._backlog = None
        self._move_to_heads()
        self._end(closing)
        on_revoke = self.on_revoke
        if cut and on_revoke is not None:
            self.on_revoke = None
            try:
                on_revoke(closing)
            except Exception:
                logger.exception("on_revoke of a broadcast subscription failed")

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
