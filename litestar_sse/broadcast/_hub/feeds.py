"""The recent events of one topic with local subscribers, and who to wake when it grows.

A topic keeps three kinds of waiting subscribers. One of a single topic whose stream takes
pushed chunks (a :class:`~litestar_sse.ServerSentEvent` on asyncio) is a *pusher*: once per
turn of the loop in which events came, one pass (:meth:`TopicFeed.flush`) hands each pusher's
chunk to its stream, which sends it there and then; the subscriber's task stays asleep, on the
one future it waits on for as long as its stream keeps up (no object made per wait, none for
the garbage collector to promote). Another single-topic subscriber registers the future it
waits on each time it waits, and the next event resolves it: waking the topic's idle
subscribers is one pass over their futures, no call into each subscriber. One of several
topics has an :class:`Inbox`, kept by each of its topics while it is up to date with it:
the next event there notes the topic in the inbox (once: the topic then forgets the inbox
until the subscriber took its events) and wakes it. Taking events then looks at the noted
topics only, so an event costs the same whether a subscriber follows two topics or
thousands, and a publish to a topic touches only that topic's subscribers.

A topic keeps its recent events as references to the one ``bytes`` object each event was
encoded into, shared by every subscriber, and the byte offset at which each starts, so what a
subscriber has not taken is known in bytes as well as in events, in constant time. Beside
each, while the topic has subscribers that read values instead of bytes (a typed
subscription), the event as a value, made once when it arrives and shared by those readers:
they never parse the bytes back.
"""

from __future__ import annotations

import asyncio
import sys
import weakref
from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar_sse.broadcast._events.values import BroadcastMessage

__all__ = ("Inbox", "Subscriber", "TopicFeed")


class Subscriber(Protocol):
    """What a topic needs of a subscription (:class:`~.subscription.Subscription`)."""

    def check_lag(self, feed: TopicFeed, head: int) -> None:
        """Disconnect the subscriber if it fell too far behind ``feed`` (whose head is
        ``head``)."""

    def push(self) -> None:
        """Hand what it has not taken to its stream's sink (it waits, and has one)."""


class Inbox:
    """What a topic holds of one multi-topic subscriber: its topics with news, and the
    future it waits on. No reference back to the subscription, so one dropped without being
    closed can still be collected (its finalizer then removes the inbox from the topics)."""

    __slots__ = ("future", "ready")

    def __init__(self) -> None:
        self.future: asyncio.Future[None] | None = None
        self.ready: dict[TopicFeed, None] = {}
        """The topics that got events since the subscriber last took them (an ordered set)."""


class TopicFeed:
    """The recent events of one topic that has local subscribers.

    ``chunks[i]`` is the event at absolute index ``base + i`` and starts at byte ``starts[i]``
    of everything the topic delivered (``total`` bytes so far); ``values[i]`` is the same
    event as a value, or ``None`` if no subscriber read values when it arrived. At least
    ``keep`` events, and the events within ``keep_bytes`` of the head (the newest one
    whatever its size), stay behind the head, so a subscriber lagging by up to that much can
    still read them.
    """

    __slots__ = (
        "_joined",
        "_trim_bytes",
        "base",
        "call_soon",
        "chunks",
        "count",
        "disconnect_slow",
        "flushing",
        "inboxes",
        "keep",
        "keep_bytes",
        "name",
        "positions",
        "pushers",
        "readers",
        "starts",
        "subscriptions",
        "taken",
        "total",
        "values",
        "waiters",
    )

    def __init__(
        self, name: str, keep: int, *, disconnect_slow: bool, keep_bytes: int = sys.maxsize
    ) -> None:
        self.name = name
        self.keep = keep
        self.keep_bytes = keep_bytes
        self._trim_bytes = 2 * keep_bytes
        self.disconnect_slow = disconnect_slow
        self.base = 0
        self.chunks: list[bytes] = []
        self.positions: list[int] = []
        self.starts: list[int] = []
        self.values: list[BroadcastMessage | None] = []
        self.readers = 0
        """Open subscriptions of this topic that read values: while there are any, each
        event arrives with its value (see :meth:`~.fanout.FanOut.deliver`)."""
        self.total = 0
        """Bytes of every event appended so far."""
        self.count = 0
        """Open subscriptions of this topic."""
        self.taken = 0
        """Of ``total``, the bytes each subscription took (or skipped), all added up: the
        subscriptions have ``count * total - taken`` bytes of this topic not taken yet."""
        self.subscriptions: weakref.WeakSet[Subscriber] = weakref.WeakSet()
        self.waiters: dict[asyncio.Future[None], None] = {}
        """The futures single-topic subscriptions wait on for the next event, all pending
        (an ordered set: they are woken in the order they came)."""
        self.inboxes: dict[Inbox, None] = {}
        """Multi-topic subscriptions up to date with this topic (an ordered set)."""
        self.pushers: dict[Subscriber, None] = {}
        """Single-topic subscriptions that wait and whose stream takes pushed chunks (an
        ordered set): the next events go to them from one pass, :meth:`flush`, run once per
        turn of the loop however many events came in it."""
        self.call_soon: Callable[[Callable[[], None]], object] | None = None
        """Schedules :meth:`flush`: the ``call_soon`` of the pushers' loop (set by the last
        one to wait; no reference to any subscriber)."""
        self.flushing = False
        """A :meth:`flush` is scheduled."""
        self._joined: tuple[int, int, bytes] | None = None
        """The last events joined into one chunk (absolute start and end, the bytes)."""

    @property
    def head(self) -> int:
        """Absolute index one past the newest event."""
        return self.base + len(self.chunks)

    def bytes_from(self, index: int) -> int:
        """Bytes of the events from absolute ``index`` (or the oldest kept) to the head."""
        offset = index - self.base
        starts = self.starts
        if offset >= len(starts):
            return 0
        return self.total - starts[offset if offset > 0 else 0]

    def span_bytes(self, start: int, end: int) -> int:
        """Bytes of the events from relative index ``start`` to ``end`` (exclusive)."""
        starts = self.starts
        return (self.total if end >= len(starts) else starts[end]) - starts[start]

    def newest_within(self, max_events: int, max_bytes: int) -> int:
        """Absolute index of the oldest event to keep so that at most ``max_events`` events
        and ``max_bytes`` bytes remain up to the head (the newest event always remains)."""
        starts = self.starts
        count = len(starts)
        first = count - max_events if count > max_events else 0
        if count and self.total - starts[first] > max_bytes:
            first = min(bisect_left(starts, self.total - max_bytes, first), count - 1)
        return self.base + first

    def batch_end(self, start: int, budget: int) -> int:
        """End (exclusive, relative) of the events from relative index ``start`` whose bytes
        together stay within ``budget``; at least one event."""
        starts = self.starts
        limit = starts[start] + budget
        if self.total <= limit:
            return len(starts)
        # starts[j] <= limit: the events start..j-1 fit
        return max(start + 1, bisect_right(starts, limit, start + 1) - 1)

    def joined(self, start: int, end: int) -> bytes:
        """The events ``start:end`` (relative) joined into one chunk, made once for every
        subscriber that takes the same events (subscribers in step after a burst)."""
        base = self.base
        last = self._joined
        if last is not None and last[0] == base + start and last[1] == base + end:
            return last[2]
        body = b"".join(self.chunks[start:end])
        self._joined = (base + start, base + end, body)
        return body

    def append(self, position: int, chunk: bytes, value: BroadcastMessage | None = None) -> None:
        """Add an event (and its ``value``, for the subscribers that read values) and wake
        the idle subscribers."""
        chunks = self.chunks
        chunks.append(chunk)
        self.positions.append(position)
        self.values.append(value)
        starts = self.starts
        starts.append(self.total)
        self.total += len(chunk)
        if len(chunks) >= 2 * self.keep + 16 or self.total - starts[0] > self._trim_bytes:
            self._trim()
        waiters = self.waiters
        if waiters:
            self.waiters = {}
            for future in waiters:
                # pending but for a wait cancelled since (its task has not run yet)
                if not future.done():
                    future.set_result(None)
        if self.pushers and not self.flushing:
            call_soon = self.call_soon
            assert call_soon is not None
            self.flushing = True
            call_soon(self.flush)
        inboxes = self.inboxes
        if inboxes:
            # Each is told once; it registers again when it has taken this topic's events.
            self.inboxes = {}
            for inbox in inboxes:
                inbox.ready[self] = None
                waiting = inbox.future
                if waiting is not None and not waiting.done():
                    waiting.set_result(None)

    def flush(self) -> None:
        """Push the events that came since the last pass to the subscribers waiting with a
        sink: one pass, no subscriber task woken (a subscriber that cannot take them now
        leaves the set and is woken instead)."""
        self.flushing = False
        pushers = self.pushers
        if pushers:
            for subscriber in list(pushers):
                subscriber.push()

    def _trim(self) -> None:
        # Once per ``keep + 16`` events or ``keep_bytes`` bytes: the only time the subscriber
        # list is walked. A subscriber stuck in a send never asks for more, so under the
        # ``disconnect`` policy it is found here, at most about ``keep`` events (or
        # ``keep_bytes`` bytes) after it fell too far behind.
        head = self.head
        if self.disconnect_slow:
            for subscription in list(self.subscriptions):
                subscription.check_lag(self, head)
        drop = self.newest_within(self.keep, self.keep_bytes) - self.base
        if drop > 0:
            del self.chunks[:drop]
            del self.positions[:drop]
            del self.values[:drop]
            del self.starts[:drop]
            self.base += drop
