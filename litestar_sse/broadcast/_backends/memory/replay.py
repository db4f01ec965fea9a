"""The replay of the in-memory backend: pages of references into its history, never copies.

Each page finds, in every replayed topic's history, the first event after what was already
replayed (a binary search: the history is in position order), and merges the topics in
position order up to the snapshot's head. Nothing is held between pages but one position per
topic, so a client that resumes and stops reading costs the server one page at most.
"""

from __future__ import annotations

import heapq
import itertools
from bisect import bisect_right
from collections import deque
from collections.abc import Iterator, Mapping
from operator import itemgetter
from typing import Final, Protocol

from litestar_sse.broadcast._backends.replay import Replay, ReplayPage

__all__ = ("MemoryReplay", "TopicHistory")

_first: Final = itemgetter(0)


class TopicHistory(Protocol):
    """What the replay reads of one topic's history in the backend."""

    entries: deque[tuple[int, float, bytes]]
    """``(position, time, event)``, oldest first."""
    trimmed: int
    """Position of the newest event removed from the history."""


class MemoryReplay(Replay):
    """Replays the events of ``topics`` after position ``last`` up to ``head``.

    Args:
        logs: The backend's histories, by topic (read as they are at each page).
        topics: The topics with events to replay.
        last: The position the client resumes after.
        head: The newest position when the snapshot was taken.
        head_id: Its id.
    """

    __slots__ = ("_cursors", "_head", "_logs", "head_id")

    def __init__(
        self,
        logs: Mapping[str, TopicHistory],
        topics: list[str],
        last: int,
        head: int,
        head_id: str,
    ) -> None:
        self._logs = logs
        self._cursors = dict.fromkeys(topics, last)
        """Per topic still replayed: the position of the last event replayed."""
        self._head = head
        self.head_id = head_id

    async def read(self, max_bytes: int) -> ReplayPage:
        """The next events of the history, in position order, within ``max_bytes``."""
        logs = self._logs
        lost: list[str] = []
        streams: list[Iterator[tuple[int, str, bytes]]] = []
        for topic, cursor in list(self._cursors.items()):
            log = logs.get(topic)
            if log is None or log.trimmed > cursor:  # its history dropped events not replayed
                lost.append(topic)
                del self._cursors[topic]
                continue
            entries = log.entries
            start = bisect_right(entries, cursor, key=_first)
            if start >= len(entries) or entries[start][0] > self._head:
                del self._cursors[topic]  # replayed to the head
                continue
            streams.append(_from(entries, start, topic))
        events: list[bytes] = []
        size, head = 0, self._head
        for position, topic, chunk in heapq.merge(*streams):
            if position > head or (events and size + len(chunk) > max_bytes):
                break
            events.append(chunk)
            size += len(chunk)
            self._cursors[topic] = position
        return ReplayPage(events, tuple(lost), done=not self._cursors)


def _from(
    entries: deque[tuple[int, float, bytes]], start: int, topic: str
) -> Iterator[tuple[int, str, bytes]]:
    for position, _, chunk in itertools.islice(entries, start, None):
        yield position, topic, chunk
