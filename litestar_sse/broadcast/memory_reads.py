"""Reading the in-memory history as values: pages of events, and the topic of an id.

The base of :class:`~litestar_sse.broadcast.MemoryBackend`, kept apart from the write path.
Pages are read from what the backend retains; the topic of an id is looked up in a ring of
the newest :data:`TOPIC_INDEX_LENGTH` events' topics (as Redis keeps its change log), a few
operations per call whatever the id and however many topics there are.
"""

from __future__ import annotations

import itertools
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, Final

from litestar_sse.broadcast.backend import BroadcastBackend
from litestar_sse.broadcast.history import (
    BroadcastMessage,
    HistoryPage,
    event_position,
    parse_event_block,
)
from litestar_sse.broadcast.ids import parse_memory_position, split_event_id

__all__ = ("TOPIC_INDEX_LENGTH", "MemoryReads")

TOPIC_INDEX_LENGTH: Final = 100_000
"""Newest events whose topic :meth:`MemoryReads.topic_of` can tell (one reference each)."""

_first: Final = itemgetter(0)


class MemoryReads(BroadcastBackend):
    """The reads of :class:`~litestar_sse.broadcast.MemoryBackend` (its base class)."""

    # Set by MemoryBackend.__init__: its epoch, newest position, the topics' histories (the
    # one published to least recently first), the newest position of the forgotten topics.
    epoch: str
    _position: int
    _logs: dict[str, Any]
    _forgotten: int
    _size: int
    _clock: Callable[[], float]
    _topic_ring: array[int]
    """The topic serial of each of the newest events: position ``p`` at ``(p - 1) %
    TOPIC_INDEX_LENGTH`` (4 bytes an event, no object: a forgotten topic keeps nothing)."""
    _topic_serials: dict[int, str]
    """The serial of each topic with a history -> the topic."""

    def _index_topic(self, position: int, serial: int) -> None:
        """Note the topic (by serial) of the event at ``position``, the newest."""
        ring = self._topic_ring
        if len(ring) < TOPIC_INDEX_LENGTH:
            ring.append(serial)
        else:
            ring[(position - 1) % TOPIC_INDEX_LENGTH] = serial

    async def read_history(
        self,
        topics: Sequence[str],
        after: str | None,
        until: str | None,
        limit: int,
        *,
        check_gaps: bool = True,
    ) -> HistoryPage:
        """Read the kept events of ``topics`` after ``after`` and up to ``until``, at most
        ``limit`` of them, in position order (see ``BroadcastBackend.read_history``).

        Raises:
            ValueError: ``until`` is not an id of this backend's history.
        """
        head_position = self._position
        upto = head_position
        if until is not None:
            parts = split_event_id(until)
            bound = None if parts is None else parse_memory_position(parts[1])
            if parts is None or parts[0] != self.epoch or bound is None:
                raise ValueError(f"until must be an id of this history, got {until!r:.80}")
            upto = min(bound, head_position)
        last = 0
        checked = check_gaps and after is not None
        if after is not None:
            parts = split_event_id(after)
            if parts is None or (checked and parts[0] != self.epoch):
                reason = "invalid" if parts is None else "epoch"
                return HistoryPage(gap=reason, gap_topics=tuple(topics))
            position = parse_memory_position(parts[1])
            if position is None or position > head_position:
                return HistoryPage(gap="invalid", gap_topics=tuple(topics))
            last = position
        now = self._clock()
        found: list[tuple[int, str, bytes]] = []
        gaps: list[str] = []
        more = False
        for topic in topics:
            log = self._logs.get(topic)
            if log is None:
                if checked and self._forgotten > last:
                    gaps.append(topic)  # it may have been one of the dropped topics
                continue
            self._size -= log.expire(now)
            if checked and log.trimmed > last:
                gaps.append(topic)
                continue
            entries = log.entries
            start = bisect_right(entries, last, key=_first)
            for taken, (position, _, chunk) in enumerate(itertools.islice(entries, start, None)):
                if position > upto:
                    break
                if taken == limit:
                    more = True  # the rest of this topic is newer than what this page takes
                    break
                found.append((position, topic, chunk))
        found.sort(key=_first)
        if len(found) > limit:
            del found[limit:]
            more = True
        sep = self.sink.format.sep_bytes
        messages = []
        for position, topic, chunk in found:
            event, _, data = parse_event_block(chunk, sep)  # one event: blank lines ignored
            messages.append(BroadcastMessage(topic, f"{self.epoch}-{position}", event, data))
        gap = "retention" if gaps else None
        return HistoryPage(messages, more, gap, tuple(gaps))

    async def topic_of(self, event_id: str) -> str | None:
        """The topic of ``event_id`` while its event is kept in history and is among the
        newest :data:`TOPIC_INDEX_LENGTH` events; else ``None``.

        A few operations whatever the id: one look-up in the ring of the newest events'
        topics, then one search in that topic's history that the event is still kept.
        """
        parsed = event_position(event_id)
        if parsed is None or parsed[0] != self.epoch:
            return None
        position = parsed[1]
        if not 0 < position <= self._position or position <= self._position - TOPIC_INDEX_LENGTH:
            return None
        topic = self._topic_serials.get(self._topic_ring[(position - 1) % TOPIC_INDEX_LENGTH])
        log = None if topic is None else self._logs.get(topic)
        if topic is None or log is None:
            return None
        entries = log.entries
        if not entries or entries[0][0] > position or entries[-1][0] < position:
            return None
        index = bisect_left(entries, position, key=_first)
        return topic if entries[index][0] == position else None
