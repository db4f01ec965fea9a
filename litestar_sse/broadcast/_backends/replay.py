"""The events a resuming subscriber missed, read a page at a time when its stream wants them.

A backend's :meth:`~litestar_sse.broadcast.types.BroadcastBackend.snapshot` decides where a
subscriber resumes and whether events were lost, which takes a few operations per topic. The
missed events themselves come from a :class:`Replay`, read only once the stream runs (after
the app admitted it: a refused request never reads them) and a page at a time, each page
within a byte budget, the next one only when the stream has sent the previous. A client that
resumes and stops reading therefore holds one page, not its whole replay.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ("Replay", "ReplayPage", "SequenceReplay")


@dataclass(frozen=True)
class ReplayPage:
    """One page of a replay.

    Attributes:
        events: Encoded events, in position order (possibly none).
        lost: Topics whose missed events left the history while the replay was read: they
            are not replayed any further, and the subscriber gets a gap event for them.
        done: True once the replay has nothing more.
    """

    events: list[bytes]
    lost: tuple[str, ...] = ()
    done: bool = False


class Replay(ABC):
    """The missed events of one subscription, in position order, read page by page.

    Attributes:
        head_id: The newest id when the snapshot was taken: every replayed event is at or
            before it, and a gap event found during the replay carries it.
    """

    head_id: str

    @abstractmethod
    async def read(self, max_bytes: int) -> ReplayPage:
        """The next page: events whose bytes add up to at most ``max_bytes`` (but at least one
        event while any remains).

        Raises:
            BackendUnavailableError: the backend cannot be reached.
        """

    async def read_all(self, page_bytes: int = 1 << 20) -> list[bytes]:
        """Every remaining event, in memory at once: for tools and tests, not for streams.

        Raises:
            BackendUnavailableError: the backend cannot be reached.
        """
        events: list[bytes] = []
        while True:
            page = await self.read(page_bytes)
            events.extend(page.events)
            if page.done:
                return events


class SequenceReplay(Replay):
    """A replay from events already in memory (a backend that returns ``Snapshot.history``):
    pages of references, no copy."""

    __slots__ = ("_events", "_next", "head_id")

    def __init__(self, events: Sequence[bytes], head_id: str = "") -> None:
        self._events = events
        self._next = 0
        self.head_id = head_id

    async def read(self, max_bytes: int) -> ReplayPage:
        """The next events, within ``max_bytes``."""
        events, start = self._events, self._next
        end, size = start, 0
        while end < len(events) and (end == start or size + len(events[end]) <= max_bytes):
            size += len(events[end])
            end += 1
        self._next = end
        return ReplayPage(list(events[start:end]), done=end >= len(events))
