"""The in-memory history stays bounded, however many topics clients make it keep."""

from __future__ import annotations

import gc
import tracemalloc
from collections import deque
from typing import Any

import pytest
from conftest import EventReader

from litestar_sse.broadcast import Broadcaster, MemoryBackend, Retention

pytestmark = pytest.mark.anyio


def allocated() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def test_publishing_to_many_distinct_topics_keeps_memory_bounded() -> None:
    backend = MemoryBackend()  # the defaults: 10,000 topics, 64 MiB
    tracemalloc.start()
    try:
        async with Broadcaster(backend) as broadcaster:
            first = await broadcaster.publish("topic:0", "x" * 100)
            for index in range(1, 12_000):
                await broadcaster.publish(f"topic:{index}", "x" * 100)
            full = allocated()
            ids = ["", ""]  # only the last two: the test itself keeps nothing per topic
            for index in range(12_000, 60_000):
                ids = [ids[-1], await broadcaster.publish(f"topic:{index}", "x" * 100)]
            after = allocated()
            assert backend.topics_retained == 10_000
            # 48,000 more topics, and not a topic's worth more memory per 100 of them
            assert after - full < (full // 10_000) * 480, (full, after)
            assert backend.history_bytes == 10_000 * (130 + 160)  # 130 bytes per event
            # a topic published to recently resumes exactly; a forgotten one reports a gap
            again = await broadcaster.publish("topic:59999", "again")
            reader = EventReader(
                await broadcaster.open_subscription("topic:59999", last_event_id=ids[-2])
            )
            assert reader.subscription.gap is None
            assert [e.id for e in await reader.take(2)] == [ids[-1], again]
            old = await broadcaster.open_subscription("topic:0", last_event_id=first)
            assert (old.gap, old.gap_topics) == ("retention", ("topic:0",))
            old.close()
            reader.subscription.close()
    finally:
        tracemalloc.stop()


async def test_history_bytes_are_bounded_across_topics() -> None:
    backend = MemoryBackend(retention=Retention(max_events=None), max_history_bytes=2**20)
    tracemalloc.start()
    try:
        async with Broadcaster(backend) as broadcaster:
            first = await broadcaster.publish("t0", "y" * 1000)
            for index in range(1, 1000):
                await broadcaster.publish(f"t{index % 3}", "y" * 1000)
            full = allocated()
            last: deque[str] = deque(maxlen=4)
            for index in range(9000):
                last.append(await broadcaster.publish(f"t{index % 3}", "y" * 1000))
            assert allocated() - full < 2**20 // 10
            assert 2**20 - 1300 < backend.history_bytes <= 2**20
            # the oldest events went first: a client from the start has a gap, a recent one
            # resumes exactly
            assert (await broadcaster.open_subscription("t0", last_event_id=first)).gap == (
                "retention"
            )
            recent = EventReader(
                await broadcaster.open_subscription(["t0", "t1", "t2"], last_event_id=last[0])
            )
            assert recent.subscription.gap is None
            assert [e.id for e in await recent.take(3)] == list(last)[1:]
            recent.subscription.close()
    finally:
        tracemalloc.stop()


async def test_an_event_larger_than_the_history_is_delivered_but_not_kept() -> None:
    backend = MemoryBackend(max_history_bytes=1000)
    async with Broadcaster(backend) as broadcaster:
        reader = EventReader(await broadcaster.open_subscription("t"))
        before = await broadcaster.publish("t", "small")
        await broadcaster.publish("t", "z" * 5000)
        assert [e.data for e in await reader.take(2)] == ["small", "z" * 5000]
        assert backend.history_bytes <= 1000
        resumed = await broadcaster.open_subscription("t", last_event_id=before)
        assert resumed.gap == "retention"
        resumed.close()
        reader.subscription.close()


@pytest.mark.parametrize("name", ["max_topics_retained", "max_history_bytes"])
@pytest.mark.parametrize(
    ("value", "error"), [(0, ValueError), (-5, ValueError), (1.5, TypeError), ("1", TypeError)]
)
def test_the_limits_are_checked_like_every_count(
    name: str, value: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match=f"{name} must be"):
        MemoryBackend(**{name: value})


def test_the_limits_can_be_lifted() -> None:
    backend = MemoryBackend(max_topics_retained=None, max_history_bytes=None)
    assert (backend.max_topics_retained, backend.max_history_bytes) == (None, None)
