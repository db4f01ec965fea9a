"""``HubCounters``: what one fan-out counted, kept in one object that the counting parts share.

The fan-out makes one and hands it to each subscription it opens; the subscription counts
where it hands events out (plain integer increments on the hot path, nothing computed per
event). :mod:`~litestar_sse.broadcast._stats` reads it when asked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from litestar_sse.broadcast._backends.base import BACKEND_ERRORS
from litestar_sse.broadcast._events.format import GAP_REASONS

__all__ = ("PEAK_PERIOD", "HubCounters")

PEAK_PERIOD: Final = 10.0
"""Seconds of a period of ``queue_bytes_max`` (see :meth:`HubCounters.peak`)."""


class HubCounters:
    """The counters of one fan-out and of its subscriptions.

    Args:
        clock: Seconds, monotonic (for the periods of the queue peak).
    """

    __slots__ = (
        "_clock",
        "_peak_since",
        "delivered",
        "disconnected",
        "dropped",
        "errors",
        "gaps",
        "queue_peak",
        "queue_peak_before",
        "received",
        "replayed",
        "resumes",
        "sending_bytes",
    )

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.received = 0
        """Events handed to the fan-out."""
        self.delivered = 0
        """Events handed to subscribers' streams (replayed ones included)."""
        self.dropped = 0
        """Events slow subscribers skipped or lost when they were disconnected."""
        self.disconnected = 0
        """Subscribers disconnected for being too slow."""
        self.resumes = 0
        """Subscriptions that resumed from an id, counted when their stream started."""
        self.replayed = 0
        """Events replayed to resuming subscribers."""
        self.gaps = dict.fromkeys(GAP_REASONS, 0)
        """Gap events handed to subscribers, by reason."""
        self.errors = dict.fromkeys(BACKEND_ERRORS, 0)
        """Calls that found the backend unavailable, by what failed (``BACKEND_ERRORS``)."""
        self.sending_bytes = 0
        """Bytes of the chunks the subscribers are writing, each up to the join budget."""
        self.queue_peak = 0
        """The most bytes one subscriber had queued when it was looked at (when it came for
        events, or its topic's ring was trimmed), in this period of :data:`PEAK_PERIOD`."""
        self.queue_peak_before = 0
        """The same in the period before."""
        self._clock = clock
        self._peak_since = clock()

    def note_error(self, failed: str) -> None:
        """Count a call that found the backend unavailable (``failed``: one of
        ``BACKEND_ERRORS``)."""
        self.errors[failed] += 1

    def note_gap(self, reason: str) -> None:
        """Count a gap event handed to a subscriber."""
        self.gaps[reason] = self.gaps.get(reason, 0) + 1

    def peak(self) -> int:
        """The most bytes one subscriber had queued when it was looked at, in the last
        :data:`PEAK_PERIOD` seconds at least (the current period and the one before; a read
        starts a new period once the current one is that old)."""
        now = self._clock()
        if now - self._peak_since >= PEAK_PERIOD:
            self.queue_peak_before, self.queue_peak = self.queue_peak, 0
            self._peak_since = now
        return max(self.queue_peak, self.queue_peak_before)
