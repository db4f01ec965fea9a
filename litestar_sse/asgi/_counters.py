"""What the send loops of this process did, as plain counters: the source of the metrics.

One :data:`COUNTERS` per process, updated by every stream without a lock (everything runs on
event loops, and ``+=`` on an int attribute is atomic enough under the GIL for counters that
are only ever read for monitoring). The hot path pays nothing per event: a stream adds its
events every 256 events and when it ends, so a scrape may lag a live stream by at most that
much. Bytes are counted per event, so only once :attr:`StreamCounters.count_bytes` is set
(by :func:`litestar_sse.metrics.register_metrics`): the item encoder of every stream started
after that is wrapped in one that counts.

:mod:`litestar_sse.metrics` exports them to Prometheus.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

__all__ = ("COUNTERS", "StreamCounters")


class StreamCounters:
    """Totals since the process started (or since :meth:`reset`)."""

    __slots__ = (
        "bytes_sent",
        "cleanups_cut",
        "count_bytes",
        "events_sent",
        "pings_sent",
        "producer_errors",
        "stops",
        "streams_ended",
        "streams_started",
    )

    def __init__(self) -> None:
        self.streams_started = 0
        """Streams whose body started."""
        self.streams_ended = 0
        """Streams whose body ended, for any reason."""
        self.events_sent = 0
        """Body chunks of events written (a batch of a sync iterator counts its items)."""
        self.bytes_sent = 0
        """Bytes of those chunks, counted while :attr:`count_bytes` is set."""
        self.count_bytes = False
        """Count :attr:`bytes_sent` in streams started from now on (a call per event)."""
        self.pings_sent = 0
        """Keep-alive pings started."""
        self.producer_errors = 0
        """Producers (or item encoders) that raised."""
        self.cleanups_cut = 0
        """Producer cleanups cancelled because they outlasted ``cleanup_timeout`` or a hard end
        (an async ``finally`` that hung), and sync producers whose worker thread was left to
        finish its close (its slot given back)."""
        self.stops: dict[str, int] = {}
        """Streams stopped before their producer ended, by reason (``disconnect``,
        ``send_timeout``, ``overflow``, ``shutdown``, ``lifetime``)."""

    def counting(self, encode: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
        """``encode``, adding the length of what it returns to :attr:`bytes_sent`."""

        def counted(item: Any) -> bytes:
            body = encode(item)
            self.bytes_sent += len(body)
            return body

        return counted

    def reset(self) -> None:
        """Set every counter back to zero (for tests); :attr:`count_bytes` is kept."""
        count_bytes = self.count_bytes
        self.__init__()  # type: ignore[misc]
        self.count_bytes = count_bytes

    @property
    def open_streams(self) -> int:
        """Streams whose body is being sent now."""
        return self.streams_started - self.streams_ended


COUNTERS: Final = StreamCounters()
"""The counters of this process."""
