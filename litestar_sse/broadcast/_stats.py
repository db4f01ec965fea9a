"""``BroadcastStats``: what one broadcaster counted, read when asked (metrics' source).

Every counter is a plain integer increment where the thing happens, in the fan-out's one
:class:`~litestar_sse.broadcast._hub.counters.HubCounters` (which its subscriptions are handed)
or the broadcaster's publish count; nothing is computed per event for the stats. They are read here,
on demand, by :meth:`Broadcaster.stats() <litestar_sse.broadcast.Broadcaster.stats>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from litestar_sse.broadcast._backends.base import BroadcastBackend
    from litestar_sse.broadcast._hub.fanout import FanOut

__all__ = ("BroadcastStats", "read_stats")


@dataclass(frozen=True)
class BroadcastStats:
    """Counters of one broadcaster, in this process, since it was created.

    Attributes:
        subscribers: Open subscriptions per topic.
        published: Events published through this broadcaster (a repeat that its
            ``idempotency_key`` kept from being stored again counts too).
        received: Events that reached the local fan-out (from this process or, with Redis,
            from any process).
        delivered: Events handed to subscribers' streams (replayed ones included); an event
            sent to 100 subscribers counts 100.
        dropped: Events slow subscribers skipped (``drop_oldest``) or lost when they were
            disconnected (``disconnect``; their clients may resume them from history).
        disconnected: Subscribers disconnected for being too slow.
        queue_bytes: Bytes queued for the subscribers now, all together: the events each
            has not written yet, and the chunk it is writing, as ``max_queue_bytes`` counts
            them (an event shared by 100 subscribers counts 100 times; the page of a replay
            being sent is not counted). Read from counters kept as events are taken: a few
            operations per topic, none per subscriber.
        queue_bytes_max: The most bytes one subscriber had queued when it was looked at (when
            it came for events, or its topic found it lagging), over the last 10 seconds at
            least (to compare with ``max_queue_bytes``): a peak, not a walk of the
            subscribers. A subscriber that stopped reading shows once its topic checks it
            (``disconnect``), or when it reads again (``drop_oldest``).
        resumes: Subscriptions that resumed from a ``Last-Event-ID``, counted when their
            stream started (a stream refused or stopped before it started is not): exact
            resumes, replays and gaps alike. Streams of :meth:`Broadcaster.subscribe` only:
            ``subscribe_messages`` and ``history`` read the history as values, uncounted.
        replayed: Events replayed to resuming subscribers (also counted in ``delivered``).
        gaps: Gap events handed to subscribers, by reason: ``invalid`` (an id not ours),
            ``epoch`` (an id of another history, or the Redis history was lost while the
            stream was open), ``retention`` (the history no longer reaches back to the id, or
            lost events during the replay), ``overflow`` (a slow subscriber skipped events
            under ``drop_oldest``). Every reason is present, with 0 when none was sent.
        backend_errors: Calls that found the backend (Redis) unavailable, by what failed:
            ``not_published`` and ``outcome_unknown`` (a publish raised
            :class:`~litestar_sse.broadcast.errors.NotPublishedError` or
            :class:`~litestar_sse.broadcast.errors.PublishOutcomeUnknownError`), ``subscribe``
            (a subscription was refused), ``replay`` (a stream ended because a page of its
            replay could not be read), ``read`` (``history``, ``topic_of`` or the backlog of
            ``subscribe_messages``), ``reader`` (a failed round of the Redis backend's reader,
            each retry counting). Every kind is present, with 0 when there was none.
        backend_reconnects: Times the Redis backend's reader read again after failing: the
            outages it recovered from.
    """

    subscribers: dict[str, int]
    published: int
    received: int
    delivered: int
    dropped: int
    disconnected: int
    queue_bytes: int = 0
    queue_bytes_max: int = 0
    resumes: int = 0
    replayed: int = 0
    gaps: dict[str, int] = field(default_factory=dict)
    backend_errors: dict[str, int] = field(default_factory=dict)
    backend_reconnects: int = 0


def read_stats(fanout: FanOut, published: int, backend: BroadcastBackend) -> BroadcastStats:
    """The counters of the broadcaster whose fan-out is ``fanout``, read now."""
    queue_bytes, queue_bytes_max = fanout.queued_bytes()
    counters = fanout.counters
    backend_stats = backend.stats()
    return BroadcastStats(
        subscribers=fanout.subscriber_counts(),
        published=published,
        received=counters.received,
        delivered=counters.delivered,
        dropped=counters.dropped,
        disconnected=counters.disconnected,
        queue_bytes=queue_bytes,
        queue_bytes_max=queue_bytes_max,
        resumes=counters.resumes,
        replayed=counters.replayed,
        gaps=dict(counters.gaps),
        backend_errors={**counters.errors, "reader": backend_stats.reader_errors},
        backend_reconnects=backend_stats.reconnects,
    )
