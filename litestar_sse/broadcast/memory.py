"""``MemoryBackend``: history and fan-out inside one process, no setup.

One sequence numbers every event of the hub, across topics, so one id resumes any set of
topics exactly. The epoch is random per backend instance: an id from before a restart, or from
another worker process, is recognised as foreign and answered with a gap event.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Final

from litestar_sse.broadcast.backend import (
    BroadcastBackend,
    Retention,
    RetentionPolicy,
    Snapshot,
    resolve_retention,
)
from litestar_sse.broadcast.ids import new_epoch, parse_memory_position, split_event_id

__all__ = ("MemoryBackend",)

_Entry = tuple[int, float, bytes]
_first: Final = itemgetter(0)


class _TopicLog:
    __slots__ = ("entries", "max_age", "trimmed")

    def __init__(self, retention: Retention, trimmed: int) -> None:
        self.entries: deque[_Entry] = deque(maxlen=retention.max_events)
        self.max_age = retention.max_age
        self.trimmed = trimmed
        """Position of the newest event removed from the history (0: none)."""

    def expire(self, now: float) -> None:
        if self.max_age is None:
            return
        entries, oldest = self.entries, now - self.max_age
        while entries and entries[0][1] <= oldest:
            self.trimmed = entries.popleft()[0]


class MemoryBackend(BroadcastBackend):
    """Keeps each topic's recent events in this process; the default backend.

    With ``max_age``, the history of a topic that is no longer published to still expires,
    and the topic is then forgotten, so many short-lived topics do not accumulate. A client
    resuming from before such a topic was forgotten gets a gap event for it (it cannot be
    told apart from a topic that never had events).

    Args:
        retention: History kept per topic (by count and by age), or a function giving each
            topic its own :class:`Retention` (called once per topic).
        clock: Monotonic clock, in seconds, for ``max_age`` (replaceable in tests).

    Attributes:
        epoch: The random epoch of this backend's ids.
    """

    def __init__(
        self,
        *,
        retention: RetentionPolicy = Retention(),  # noqa: B008 - immutable
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.epoch = new_epoch()
        self._epoch_prefix = self.epoch.encode() + b"-"
        self._retention = retention
        self._clock = clock
        self._position = 0
        self._logs: dict[str, _TopicLog] = {}
        self._rotation: deque[str] = deque()
        self._forgotten = 0
        """Newest position of the topics whose whole history expired and was dropped."""

    def _log(self, topic: str) -> _TopicLog:
        log = self._logs.get(topic)
        if log is None:
            # A topic dropped earlier may have had events up to _forgotten: assume it did.
            retention = resolve_retention(self._retention, topic)
            log = self._logs[topic] = _TopicLog(retention, self._forgotten)
            if retention.max_age is not None:
                self._rotation.append(topic)
        return log

    def _sweep(self, now: float) -> None:
        # Two topics per publish, in turn: the history of a topic nobody publishes to any
        # more still expires, and an empty one is dropped, at a constant cost per publish.
        rotation = self._rotation
        for _ in range(min(2, len(rotation))):
            topic = rotation.popleft()
            log = self._logs.get(topic)
            if log is None:
                continue
            log.expire(now)
            if log.entries:
                rotation.append(topic)
            else:
                self._forgotten = max(self._forgotten, log.trimmed)
                del self._logs[topic]

    async def publish(self, topic: str, event: bytes | None, data: bytes) -> str:
        """Number the event, keep it in the topic's history and deliver it locally."""
        self._position = position = self._position + 1
        event_id = self._epoch_prefix + b"%d" % position
        chunk = self.sink.format.event(event_id, event, data)
        log = self._log(topic)
        entries = log.entries
        if entries.maxlen is not None and len(entries) >= entries.maxlen:
            # deque(maxlen) drops the oldest on append: remember what it was.
            log.trimmed = entries[0][0] if entries.maxlen else position
        now = self._clock()
        entries.append((position, now, chunk))
        log.expire(now)
        if self._rotation:
            self._sweep(now)
        self.sink.deliver(topic, position, chunk)
        return event_id.decode()

    async def snapshot(self, topics: Sequence[str], last_event_id: str | None) -> Snapshot:
        """Replay from the hub's history; atomic with registration (no await inside)."""
        head = f"{self.epoch}-{self._position}"
        if last_event_id is None:
            return Snapshot(resumed_from=head)
        parts = split_event_id(last_event_id)
        if parts is None:
            return Snapshot(resumed_from=head, gap="invalid", gap_topics=tuple(topics))
        if parts[0] != self.epoch:
            return Snapshot(resumed_from=head, gap="epoch", gap_topics=tuple(topics))
        last = parse_memory_position(parts[1])
        if last is None or last > self._position:
            return Snapshot(resumed_from=head, gap="invalid", gap_topics=tuple(topics))
        now = self._clock()
        missed: list[_Entry] = []
        gaps: list[str] = []
        for topic in topics:
            log = self._logs.get(topic)
            if log is None:
                if self._forgotten > last:
                    gaps.append(topic)  # it may have been one of the dropped topics
                continue
            log.expire(now)
            if log.trimmed > last:
                gaps.append(topic)
                continue
            for entry in reversed(log.entries):
                if entry[0] <= last:
                    break
                missed.append(entry)
        missed.sort(key=_first)
        history = [chunk for _, _, chunk in missed]
        if gaps:
            return Snapshot(
                resumed_from=head, history=history, gap="retention", gap_topics=tuple(gaps)
            )
        return Snapshot(resumed_from=last_event_id, history=history)
