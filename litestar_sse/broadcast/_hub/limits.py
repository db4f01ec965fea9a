"""What a subscriber takes from its topics: the limits that make it slow, and its batches.

Functions over the topics' rings (:class:`~.feeds.TopicFeed`) and a subscriber's cursors,
applied by :class:`~.subscription.Subscription`.
They never copy an event: a batch is made of references to the shared ``bytes`` objects,
joined within a budget (one event alone, if it is larger, goes out as the shared object), or
of the shared values of the same events, for a subscriber that reads values.
"""

from __future__ import annotations

import heapq
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from litestar_sse.broadcast._events.format import EventFormat
    from litestar_sse.broadcast._hub.feeds import TopicFeed

__all__ = ("Held", "Limits", "drop_to_limits", "over_limit", "take_batch")


class Limits(Protocol):
    """The limits of the fan-out a subscriber belongs to."""

    format: EventFormat
    max_queue: int
    max_queue_bytes: int
    join_bytes: int
    drop_oldest: bool


class Held:
    """What one subscription counts in its topics' and its fan-out's counters, for its
    finalizer to take back (no reference to the subscription itself)."""

    __slots__ = ("offsets", "sending", "writing")

    def __init__(self, offsets: list[int]) -> None:
        self.offsets = offsets
        """Per topic, the byte offset (in the topic's ``total``) up to which it took events."""
        self.sending = 0
        """Bytes of the chunk being written, up to the join budget (as counted in
        ``HubCounters.sending_bytes`` while ``writing``): what a limit counts in flight."""
        self.writing = True
        """False once the stream ended: nothing more is in flight."""


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


def take_batch(
    found: list[tuple[TopicFeed, int]], budget: int, values: list[Any] | None = None
) -> tuple[bytes, int, list[int]]:
    """The oldest events of the topics in ``found`` (each with the relative index of its
    first event not taken), in position order, joined within ``budget`` bytes (at least one
    event): the body, its number of events, and each topic's relative index past them.

    With ``values``, the same events' values are added to it in the same order instead, and
    the body is empty (nothing joined)."""
    if len(found) == 1:
        feed, start = found[0]
        end = feed.batch_end(start, budget)
        if values is not None:
            values.extend(feed.values[start:end])
            return b"", end - start, [end]
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
        feed = found[order][0]
        chunk = feed.chunks[index]
        if parts and size + len(chunk) > budget:
            break
        parts.append(chunk)
        size += len(chunk)
        ends[order] = index + 1
        if values is not None:
            values.append(feed.values[index])
    if values is not None:
        return b"", len(parts), ends
    return parts[0] if len(parts) == 1 else b"".join(parts), len(parts), ends


def _pending(feed: TopicFeed, start: int, order: int) -> Iterator[tuple[int, int, int]]:
    """``(position, order, relative index)`` of the events of ``feed`` from ``start`` on."""
    positions = feed.positions
    for index in range(start, len(positions)):
        yield positions[index], order, index
