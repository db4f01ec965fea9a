"""What a subscriber sends before live events, and how queued events become sends.

A resuming subscriber first sends its replay, read from the backend a page at a time (see
:mod:`~litestar_sse.broadcast._backends.replay`), then a gap event if events were missed for
good. Both here and for live events, several events waiting together go out in one send,
joined up to :data:`JOIN_BYTES`: the join is the one copy a subscriber makes of shared events,
so it is bounded; a larger event goes alone, as the very ``bytes`` object every subscriber shares.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Final

from litestar_sse.broadcast._backends.replay import SequenceReplay

if TYPE_CHECKING:
    from litestar_sse.broadcast._backends.base import Snapshot
    from litestar_sse.broadcast._backends.replay import Replay
    from litestar_sse.broadcast._events.format import EventFormat

__all__ = (
    "DEFAULT_MAX_QUEUE_BYTES",
    "FIRST_PAGE_BYTES",
    "JOIN_BYTES",
    "REPLAY_PAGE_BYTES",
    "Backlog",
)

logger: Final = logging.getLogger("litestar_sse.broadcast")

DEFAULT_MAX_QUEUE_BYTES: Final = 1 << 20
"""Default ``max_queue_bytes`` of a :class:`~litestar_sse.broadcast.Broadcaster`: 1 MiB."""

JOIN_BYTES: Final = 64 * 1024
"""Most bytes of events joined into one send (an event larger than that goes alone)."""

REPLAY_PAGE_BYTES: Final = 64 * 1024
"""Most bytes of one replay page (less when ``max_queue_bytes`` is lower): one send's worth
(:data:`JOIN_BYTES`), so a page goes out whole in one send, and a client whose stream stops
in a send holds no more of its replay than that send. Pages of 256 KiB held up to 192 KiB
more per such client on Redis, where a page is a copy of its own (300 clients: +78 MiB)."""

FIRST_PAGE_BYTES: Final = 16 * 1024
"""Most bytes of the first replay page. Each next page may hold twice as many, up to
:data:`REPLAY_PAGE_BYTES`: a page is read only once the stream sent the previous one, so the
pages grow as fast as the client reads, and a client that resumes and reads nothing holds
this much of its replay."""


class Backlog:
    """The replay of one subscriber, then its gap event: what it sends before live events.
    (A typed subscription marks where its backlog ended with a
    :class:`~litestar_sse.broadcast.BacklogEnd`: the same backlog, seen as values.)

    Args:
        snapshot: Where the subscriber resumed: its ``history``, ``replay`` and gap.
        format: Writes the gap event.
        page_bytes: Most bytes read from the replay at once; the first page reads at most
            :data:`FIRST_PAGE_BYTES`, and each next one twice the previous, up to this.
    """

    __slots__ = (
        "_format",
        "_gap_due",
        "_max_page_bytes",
        "_page",
        "_page_bytes",
        "_replays",
        "gap",
        "gap_topics",
        "head_id",
    )

    def __init__(self, snapshot: Snapshot, format: EventFormat, page_bytes: int) -> None:
        replays: deque[Replay] = deque()
        if snapshot.history:  # a backend that read the events already
            replays.append(SequenceReplay(snapshot.history))
        if snapshot.replay is not None:
            replays.append(snapshot.replay)
        self._replays = replays
        self._format = format
        self._max_page_bytes = page_bytes
        self._page_bytes = min(FIRST_PAGE_BYTES, page_bytes)
        self._page: deque[bytes] = deque()
        self.gap = snapshot.gap
        """Why events were missed, as far as known (``"retention"`` once the history lost
        events during the replay)."""
        self._gap_due = snapshot.gap is not None
        self.gap_topics: list[str] = list(snapshot.gap_topics)
        """The topics whose missed events cannot be replayed (more may be found on the way)."""
        self.head_id = snapshot.resumed_from
        """The id of the gap event: the newest id when the snapshot was taken."""
        if snapshot.gap is None and snapshot.replay is not None:
            self.head_id = snapshot.replay.head_id

    async def take(self, budget: int) -> tuple[bytes, int] | None:
        """The next send (events joined within ``budget``, or the gap event) and how many
        events it holds; ``None`` once everything was taken.

        Raises:
            BackendUnavailableError: the backend cannot be reached for the next page.
        """
        page, replays = self._page, self._replays
        while not page and replays:
            read = await replays[0].read(self._page_bytes)
            # the stream sent the previous page: the next may be larger
            self._page_bytes = min(2 * self._page_bytes, self._max_page_bytes)
            page.extend(read.events)
            if read.lost:
                self.gap = self.gap or "retention"
                self._gap_due = True
                self.gap_topics.extend(topic for topic in read.lost if topic not in self.gap_topics)
            if read.done:
                replays.popleft()
        if page:
            first = page.popleft()
            if not page or len(first) + len(page[0]) > budget:
                return first, 1
            parts, size = [first], len(first)
            while page and size + len(page[0]) <= budget:
                chunk = page.popleft()
                parts.append(chunk)
                size += len(chunk)
            return b"".join(parts), len(parts)
        if not self._gap_due or self.gap is None:
            return None
        # After the replay and with the newest id, so the client's Last-Event-ID never moves
        # backwards and a later reconnect does not report the same gap again.
        self._gap_due = False
        return self._format.gap(self.gap, event_id=self.head_id, topics=self.gap_topics), 0
