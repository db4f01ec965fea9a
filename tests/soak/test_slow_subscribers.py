"""Broadcast subscribers that stop reading, under a real uvicorn: the server's memory stays
bounded by the per-subscriber limit, whatever the size of the events they do not read.

The clients set a 4 KiB receive buffer, read the response head and never read again; the
server's RSS is read from ``/proc/<pid>/status``. The app (``benchmarks.slow_subscribers_app``)
uses the defaults (``max_queue_bytes`` 1 MiB) with ``overflow="drop_oldest"``, so that the
silent clients stay subscribed, and no send timeout. ``python -m benchmarks.slow_subscribers``
prints the same figures for bigger cases.
"""

from __future__ import annotations

import pytest

from benchmarks.slow_subscribers import MIB, big, burst
from litestar_sse.broadcast._hub.backlog import DEFAULT_MAX_QUEUE_BYTES
from tests.soak.conftest import record

ARTIFACT = "soak-slow-subscribers.json"
SLACK = 48 * MIB
"""The "small constant": the interpreter's own growth, allocator slack, the history."""


@pytest.mark.timeout(180)
def test_silent_subscribers_under_a_10_mib_burst_stay_within_the_limit() -> None:
    subscribers, count, size = 100, 320, 32 * 1024  # 10 MiB, in events of 32 KiB
    figures = burst(subscribers, count, size)
    record(ARTIFACT, "burst", {**figures, "subscribers": subscribers, "burst_bytes": count * size})
    assert figures["subscribers_after"] == subscribers  # still connected, still not reading
    bound = DEFAULT_MAX_QUEUE_BYTES * subscribers + SLACK
    assert figures["rss_after"] - figures["rss_before"] < bound, figures  # it was +2.0 GiB
    assert figures["peak"] - figures["rss_before"] < bound, figures


@pytest.mark.timeout(180)
def test_a_silent_subscriber_does_not_grow_with_the_size_of_an_unread_event() -> None:
    subscribers, size = 20, 16 * MIB
    figures = big(subscribers, size)
    record(ARTIFACT, "big", {**figures, "subscribers": subscribers, "event_bytes": size})
    assert figures["subscribers_after"] == subscribers
    # the event itself is held once (history, encoding), not once per subscriber
    per_subscriber = (figures["rss_after"] - figures["rss_before"] - 2 * size) / subscribers
    assert per_subscriber < DEFAULT_MAX_QUEUE_BYTES, figures  # it was 15 MiB each
