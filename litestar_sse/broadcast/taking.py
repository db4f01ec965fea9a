"""What a subscriber takes from its topics: the limits that make it slow, and its batches.

Functions over the topics' rings (:class:`~.feeds.TopicFeed`) and a subscriber's cursors,
and :class:`TakingLimits`, the part of :class:`~.subscription.Subscription` that applies them.
They never copy an event: a batch is made of references to the shared ``bytes`` objects,
joined within a budget (one event alone, if it is larger, goes out as the shared object).
"""

from __future__ import annotations

import heapq
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from litestar_sse.broadcast.encoding import EventFormat
    from litestar_sse.broadcast.feeds import Inbox, TopicFeed

__all__ = ("Held", "Limits", "TakingLimits", "drop_to_limits", "over_limit", "take_batch")


class Limits(Protocol):
    """The limits and counters of the fan-out a subscriber belongs to."""

    format: EventFormat
    max_queue: int
    max_queue_bytes: int
    join_bytes: int
    drop_oldest: bool
    dropped: int
    delivered: int
    sending_bytes: int
    queue_peak: int
    replayed: int
    gaps: dict[str, int]
    errors: dict[str, int]


class Held:
    """What one subscription counts in its topics' and its fan-out's counters, for its
    finalizer to take back (no reference to the subscription itself)."""

    __slots__ = ("offsets", "sending", "writing")

    def __init__(self, offsets: list[int]) -> None:
        self.offsets = offsets
        """Per topic, the byte offset (in the topic's ``total``) up to which it took events."""
        self.sending = 0
        """Bytes of the chunk being written, as counted in ``FanOut.sending_bytes``."""
        self.writing = True
        """False once the stream ended: nothing more is in flight."""


class TakingLimits:
    """How a subscriber of several topics takes its events, what it has in flight, and its
    fate past a limit: the part of :class:`~.subscription.Subscription` that applies the
    functions below (the subscription holds the other attributes)."""

    __slots__ = ("_sending", "_sending_events")

    _held: Held

    _sending: int
    """Bytes of the chunk handed out last, until the stream comes back for more."""
    _sending_events: int

    if TYPE_CHECKING:
        _fanout: Limits
        _cursors: list[int]
        _feeds: tuple[TopicFeed, ...]
        _slot: dict[TopicFeed, int] | None
        _inbox: Inbox | None
        _after: int | None
        _closed: bool

        def _overflow(self, lag: int) -> None: ...
        def _skip_replayed(self, feed: TopicFeed, start: int, after: int) -> int: ...

    def _collect_many(self) -> bytes | None:
        # Only the topics that noted news in the inbox: every other one is up to date.
        inbox = self._inbox
        assert inbox is not None
        assert self._slot is not None
        if not inbox.ready:
            return None
        fanout = self._fanout
        cursors, slot = self._cursors, self._slot
        ready = [feed for feed in inbox.ready if feed.head > cursors[slot[feed]]]
        pending = self._pending(ready)
        if over_limit(pending, fanout.max_queue, fanout.max_queue_bytes):
            return self._slow(pending)
        self._note_queued(pending)
        found: list[tuple[TopicFeed, int]] = []
        after = self._after  # for every topic: the first past the seam clears it
        for feed in ready:
            start = cursors[slot[feed]] - feed.base
            if after is not None:
                start = self._skip_replayed(feed, start, after)
                self._move(slot[feed], feed.base + start)
            if start < len(feed.chunks):
                found.append((feed, start))
        body, count = None, 0
        if found:
            body, count, ends = take_batch(found, fanout.join_bytes)
            for (feed, _), end in zip(found, ends, strict=True):
                self._move(slot[feed], feed.base + end)
        for feed in list(inbox.ready):
            if cursors[slot[feed]] >= feed.head:
                # up to date with it again: it notes its next event in the inbox
                del inbox.ready[feed]
                feed.inboxes[inbox] = None
        if body is None:
            return None
        fanout.delivered += count
        return self._handing(body, count)

    def _check_lag(self, feed: TopicFeed, head: int) -> None:
        if self._closed:
            return
        # The topics with news (and this one); the others are up to date.
        pending = self._pending({**self._inbox.ready, feed: None} if self._inbox else [feed])
        fanout = self._fanout
        self._note_queued(pending)
        if over_limit(
            pending,
            fanout.max_queue,
            fanout.max_queue_bytes,
            events=self._sending_events,
            # a larger event is shared: the server holds one slice of it at a time
            size=min(self._sending, fanout.join_bytes),
        ):
            self._overflow(sum(f.head - c for f, c in zip(self._feeds, self._cursors, strict=True)))

    def _handing(self, body: bytes, count: int) -> bytes:
        """Note ``body`` (``count`` events) as in flight until the stream asks again."""
        self._sending = size = len(body)
        self._sending_events = count
        held = self._held
        if held.writing:  # once the stream ended, nothing is in flight
            fanout = self._fanout
            counted = size if size < fanout.join_bytes else fanout.join_bytes
            fanout.sending_bytes += counted - held.sending
            held.sending = counted
        return body

    def _move(self, slot: int, cursor: int) -> None:
        """Move the cursor in topic ``slot`` to the absolute index ``cursor``, and count the
        bytes taken (or skipped) in the topic's ``taken``."""
        self._cursors[slot] = cursor
        if self._closed:  # once closed, the fan-out took its counts back
            return
        feed = self._feeds[slot]
        index = cursor - feed.base
        starts = feed.starts
        offset = feed.total if index >= len(starts) else starts[index if index > 0 else 0]
        offsets = self._held.offsets
        feed.taken += offset - offsets[slot]
        offsets[slot] = offset

    def _move_to_heads(self) -> None:
        for slot, feed in enumerate(self._feeds):
            self._move(slot, feed.head)

    def _note_queued(self, pending: list[tuple[TopicFeed, int]]) -> None:
        """Keep the most bytes one subscriber had queued (``FanOut.queue_peak``)."""
        queued = sum(feed.bytes_from(cursor) for feed, cursor in pending)
        queued += min(self._sending, self._fanout.join_bytes)
        fanout = self._fanout
        if queued > fanout.queue_peak:
            fanout.queue_peak = queued

    def _pending(self, feeds: Iterable[TopicFeed]) -> list[tuple[TopicFeed, int]]:
        """Each of ``feeds`` with this subscriber's cursor in it."""
        slot, cursors = self._slot, self._cursors
        return [(feed, cursors[0 if slot is None else slot[feed]]) for feed in feeds]

    def _slow(self, pending: list[tuple[TopicFeed, int]]) -> bytes | None:
        """Past a limit: disconnect, or skip to the newest events and hand out a gap event."""
        fanout = self._fanout
        if not fanout.drop_oldest:
            self._overflow(sum(feed.head - cursor for feed, cursor in pending))
            return None
        cursors, dropped = drop_to_limits(pending, fanout.max_queue, fanout.max_queue_bytes)
        for (feed, _), cursor in zip(pending, cursors, strict=True):
            self._move(0 if self._slot is None else self._slot[feed], cursor)
        fanout.dropped += dropped
        fanout.gaps["overflow"] += 1
        return self._handing(fanout.format.gap("overflow", dropped=dropped), 0)

    def queued_bytes(self) -> int:
        """Bytes this subscriber has not written yet, as its ``max_queue_bytes`` counts them:
        what its topics hold for it, and the chunk it is writing (up to the join budget).
        For tests and tools: the stats read counters instead."""
        pending = self._pending(self._inbox.ready if self._inbox else self._feeds)
        queued = sum(feed.bytes_from(cursor) for feed, cursor in pending)
        return queued + min(self._sending, self._fanout.join_bytes)


def over_limit(
    pending: Iterable[tuple[TopicFeed, int]],
    max_queue: int,
    max_bytes: int,
    *,
    events: int = 0,
    size: int = 0,
) -> bool:
    """Whether a subscriber is slow: what its topics hold for it (each topic with the
    subscriber's absolute cursor), plus ``events`` and ``size`` in flight, is more than
    ``max_queue`` events of one topic or ``max_bytes`` bytes, and is not one event. Events
    that left a ring before the subscriber took them count as too many."""
    for feed, cursor in pending:
        lag = feed.head - cursor
        if lag > max_queue or (lag and cursor < feed.base):
            return events + lag > 1
        events += lag
        size += feed.bytes_from(cursor)
    return events > 1 and size > max_bytes


def drop_to_limits(
    pending: list[tuple[TopicFeed, int]], max_queue: int, max_bytes: int
) -> tuple[list[int], int]:
    """Skip to the newest events within the limits (the ``drop_oldest`` policy): at most
    ``max_queue`` per topic and ``max_bytes`` in all, the newest event whatever its size.
    Return the new absolute cursors and how many events were skipped."""
    found = []
    for feed, cursor in pending:
        keep_from = max(cursor, feed.newest_within(max_queue, sys.maxsize))
        found.append((feed, keep_from - feed.base))
    if len(found) == 1:
        feed, _ = found[0]
        cursors = [max(pending[0][1], feed.newest_within(max_queue, max_bytes))]
    else:
        cursors = [
            feed.base + start
            for (feed, _), start in zip(found, _bytes_cut(found, max_bytes), strict=True)
        ]
    return cursors, sum(new - old for new, (_, old) in zip(cursors, pending, strict=True))


def _bytes_cut(found: list[tuple[TopicFeed, int]], max_bytes: int) -> list[int]:
    """Relative index where each topic resumes once the oldest events of all of them
    together are dropped until at most ``max_bytes`` remain (the newest always remains)."""
    pending = sorted(
        (feed.positions[index], order, index)
        for order, (feed, start) in enumerate(found)
        for index in range(start, len(feed.chunks))
    )
    starts = [start for _, start in found]
    size = 0
    for number, (_, order, index) in enumerate(reversed(pending)):
        size += len(found[order][0].chunks[index])
        if size > max_bytes and number > 0:  # this event and every older one go
            for _, dropped_order, dropped_index in pending[: len(pending) - number]:
                starts[dropped_order] = max(starts[dropped_order], dropped_index + 1)
            break
    return starts


def take_batch(found: list[tuple[TopicFeed, int]], budget: int) -> tuple[bytes, int, list[int]]:
    """The oldest events of the topics in ``found`` (each with the relative index of its
    first event not taken), in position order, joined within ``budget`` bytes (at least one
    event): the body, its number of events, and each topic's relative index past them."""
    if len(found) == 1:
        feed, start = found[0]
        end = feed.batch_end(start, budget)
        chunks = feed.chunks
        return (
            chunks[start] if end == start + 1 else b"".join(chunks[start:end]),
            end - start,
            [end],
        )
    ends = [start for _, start in found]
    parts: list[bytes] = []
    size = 0
    streams = [_pending(feed, start, order) for order, (feed, start) in enumerate(found)]
    for _, order, index in heapq.merge(*streams):
        chunk = found[order][0].chunks[index]
        if parts and size + len(chunk) > budget:
            break
        parts.append(chunk)
        size += len(chunk)
        ends[order] = index + 1
    return parts[0] if len(parts) == 1 else b"".join(parts), len(parts), ends


def _pending(feed: TopicFeed, start: int, order: int) -> Iterator[tuple[int, int, int]]:
    """``(position, order, relative index)`` of the events of ``feed`` from ``start`` on."""
    positions = feed.positions
    for index in range(start, len(positions)):
        yield positions[index], order, index
