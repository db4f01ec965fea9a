"""``BroadcastStats``: what one broadcaster counted, read when asked (metrics' source).

Every counter is a plain integer increment where the thing happens (the fan-out, a
subscription, a publish); nothing is computed per event for the stats. They are read here,
on demand, by :meth:`Broadcaster.stats() <litestar_sse.broadcast.Broadcaster.stats>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from litestar_sse.broadcast.fanout import FanOut

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
    """

    subscribers: dict[str, int]
    published: int
    received: int
    delivered: int
    dropped: int
    disconnected: int


def read_stats(fanout: FanOut, published: int) -> BroadcastStats:
    """The counters of the broadcaster whose fan-out is ``fanout``, read now."""
    return BroadcastStats(
        subscribers=fanout.subscriber_counts(),
        published=published,
        received=fanout.received,
        delivered=fanout.delivered,
        dropped=fanout.dropped,
        disconnected=fanout.disconnected,
    )
