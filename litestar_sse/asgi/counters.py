"""What the send loops of this process did, as plain counters: the source of the metrics.

One :data:`COUNTERS` per process, updated by every stream without a lock (everything runs on
event loops, and ``+=`` on an int attribute is atomic enough under the GIL for counters that
are only ever read for monitoring). The hot path pays nothing per event: a stream adds its
events and bytes every 256 events and when it ends, so a scrape may lag a live stream by at
most that much.

:mod:`litestar_sse.metrics` exports them to Prometheus.
"""

from __future__ import annotations

from typing import Final

__all__ = ("COUNTERS", "StreamCounters")


class StreamCounters:
    """Totals since the process started (or since :meth:`reset`)."""

    __slots__ = (
        "bytes_sent",
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
        """Bytes of those chunks."""
        self.pings_sent = 0
        """Keep-alive pings started."""
        self.producer_errors = 0
        """Producers (or item encoders) that raised."""
        self.stops: dict[str, int] = {}
        """Streams stopped before their producer ended, by reason (``disconnect``,
        ``send_timeout``, ``overflow``, ``shutdown``, ``lifetime``)."""

    def reset(self) -> None:
        """Set every counter back to zero (for tests)."""
        self.__init__()  # type: ignore[misc]

    @property
    def open_streams(self) -> int:
        """Streams whose body is being sent now."""
        return self.streams_started - self.streams_ended


COUNTERS: Final = StreamCounters()
"""The counters of this process."""
