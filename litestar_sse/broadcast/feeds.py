"""The recent events of one topic with local subscribers, and who to wake when it grows.

A topic keeps two kinds of waiting subscribers. One of a single topic registers each time it
waits and is woken by the next event. One of several topics has an :class:`Inbox`, kept by
each of its topics while it is up to date with it: the next event there notes the topic in
the inbox (once: the topic then forgets the inbox until the subscriber took its events) and
wakes it. Taking events then looks at the noted topics only, so an event costs the same
whether a subscriber follows two topics or thousands, and a publish to a topic touches only
that topic's subscribers.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Protocol

__all__ = ("Inbox", "Subscriber", "TopicFeed")


class Subscriber(Protocol):
    """What a topic needs of a subscription (:class:`~.fanout.Subscription`)."""

    _future: asyncio.Future[None] | None

    def _check_lag(self, feed: TopicFeed, head: int) -> None:
        """Disconnect the subscriber if it fell too far behind ``feed`` (whose head is
        ``head``)."""


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

    ``chunks[i]`` is the event at absolute index ``base + i``; at least ``keep`` events stay
    behind the head, so a subscriber lagging by up to ``keep`` events can still read them.
    """

    __slots__ = (
        "base",
        "chunks",
        "count",
        "disconnect_slow",
        "inboxes",
        "keep",
        "name",
        "positions",
        "subscriptions",
        "waiters",
    )

    def __init__(self, name: str, keep: int, *, disconnect_slow: bool) -> None:
        self.name = name
        self.keep = keep
        self.disconnect_slow = disconnect_slow
        self.base = 0
        self.chunks: list[bytes] = []
        self.positions: list[int] = []
        self.count = 0
        """Open subscriptions of this topic."""
        self.subscriptions: weakref.WeakSet[Subscriber] = weakref.WeakSet()
        self.waiters: dict[Subscriber, None] = {}
        """Single-topic subscriptions waiting for the next event (an ordered set)."""
        self.inboxes: dict[Inbox, None] = {}
        """Multi-topic subscriptions up to date with this topic (an ordered set)."""

    @property
    def head(self) -> int:
        """Absolute index one past the newest event."""
        return self.base + len(self.chunks)

    def append(self, position: int, chunk: bytes) -> None:
        """Add an event and wake the idle subscribers."""
        chunks = self.chunks
        chunks.append(chunk)
        self.positions.append(position)
        if len(chunks) >= 2 * self.keep + 16:
            self._trim()
        waiters = self.waiters
        if waiters:
            self.waiters = {}
            for subscription in waiters:
                future = subscription._future
                if future is not None and not future.done():
                    future.set_result(None)
        inboxes = self.inboxes
        if inboxes:
            # Each is told once; it registers again when it has taken this topic's events.
            self.inboxes = {}
            for inbox in inboxes:
                inbox.ready[self] = None
                future = inbox.future
                if future is not None and not future.done():
                    future.set_result(None)

    def _trim(self) -> None:
        # Once per ``keep + 16`` events: the only time the subscriber list is walked. A
        # subscriber stuck in a send never asks for more, so under the ``disconnect`` policy
        # it is found here, at most about ``keep`` events after it fell too far behind.
        head = self.head
        if self.disconnect_slow:
            for subscription in list(self.subscriptions):
                subscription._check_lag(self, head)
        drop = len(self.chunks) - self.keep
        del self.chunks[:drop]
        del self.positions[:drop]
        self.base += drop
