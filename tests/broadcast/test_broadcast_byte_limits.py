"""Subscribers that stop reading cost a bounded amount of memory, whatever the events' size.

Every subscriber's queue holds references to the one ``bytes`` object each event was encoded
into; a send joins at most 64 KiB of them (the one private copy a subscriber makes), and a
larger event goes out as the shared object. ``max_queue_bytes`` bounds, in bytes, how far
behind a subscriber may fall (queued and in flight) before the overflow policy applies.
"""

from __future__ import annotations

import asyncio
import gc
import json
import tracemalloc
from collections.abc import Callable

import pytest
from conftest import ASGIStream, BackendFactory, EventReader, until
from test_broadcast_http import make_app

from litestar_sse.broadcast import Broadcaster
from litestar_sse.broadcast._hub.backlog import JOIN_BYTES
from litestar_sse.broadcast.types import Subscription

pytestmark = pytest.mark.anyio

Reader = Callable[[Subscription], EventReader]

KIB = 1024


async def next_chunk(subscription: Subscription) -> bytes:
    raw = await asyncio.wait_for(subscription.__anext__(), 5)
    text = raw.text
    assert isinstance(text, bytes)
    return text


async def test_subscribers_behind_a_burst_hold_one_bounded_chunk_each() -> None:
    """50 subscribers that took one chunk after a burst of 960 KiB and stopped there: the
    burst is held once, not once per subscriber."""
    async with Broadcaster() as broadcaster:  # within the default 1 MiB per subscriber
        subscriptions = [await broadcaster.open_subscription("t") for _ in range(50)]
        for _ in range(30):
            await broadcaster.publish("t", "x" * (32 * KIB))
        gc.collect()
        tracemalloc.start()
        try:
            held = [await next_chunk(subscription) for subscription in subscriptions]
            grown = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        assert grown < 50 * (JOIN_BYTES + 8 * KIB), grown  # it was 50 x 960 KiB
        assert all(len(chunk) <= JOIN_BYTES for chunk in held)
        for subscription in subscriptions:
            subscription.close()


async def test_an_event_larger_than_a_send_is_the_shared_object(
    make_backend: BackendFactory,
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        subscriptions = [await broadcaster.open_subscription("t") for _ in range(3)]
        await broadcaster.publish("t", "small")
        await broadcaster.publish("t", "y" * (200 * KIB))
        await broadcaster.publish("t", "small again")
        await until(lambda: broadcaster.stats().received == 3)
        firsts = [await next_chunk(subscription) for subscription in subscriptions]
        bigs = [await next_chunk(subscription) for subscription in subscriptions]
        lasts = [await next_chunk(subscription) for subscription in subscriptions]
        assert all(b"data: small\r\n" in chunk for chunk in firsts)
        assert all(chunk is bigs[0] for chunk in bigs)  # one object, shared
        assert bigs[0].endswith(b"y" * 100 + b"\r\n\r\n")
        assert all(b"data: small again\r\n" in chunk for chunk in lasts)
        for subscription in subscriptions:
            subscription.close()


async def test_a_subscriber_past_max_queue_bytes_is_disconnected_and_resumes(
    make_backend: BackendFactory, reader_of: Reader
) -> None:
    async with Broadcaster(make_backend(), max_queue_bytes=64 * KIB) as broadcaster:
        subscription = await broadcaster.open_subscription("t")
        ids = [await broadcaster.publish("t", "z" * (10 * KIB)) for _ in range(10)]
        await until(lambda: broadcaster.stats().received == 10)
        reader = reader_of(subscription)
        assert await reader.read_chunk() == []  # 100 KiB behind, far from max_queue=1000
        stats = broadcaster.stats()
        assert (stats.disconnected, stats.dropped, stats.subscribers) == (1, 10, {})
        again = reader_of(
            await broadcaster.open_subscription("t", last_event_id=subscription.resumed_from)
        )
        assert [event.id for event in await again.take(10)] == ids


async def test_drop_oldest_keeps_the_newest_events_within_max_queue_bytes(
    make_backend: BackendFactory, reader_of: Reader
) -> None:
    broadcaster = Broadcaster(make_backend(), max_queue_bytes=64 * KIB, overflow="drop_oldest")
    async with broadcaster:
        reader = reader_of(await broadcaster.open_subscription("t"))
        for index in range(10):
            await broadcaster.publish("t", f"{index}:" + "z" * (10 * KIB))
        await until(lambda: broadcaster.stats().received == 10)
        events = await reader.take(7)
        assert events[0].event == "gap"
        assert json.loads(events[0].data) == {"reason": "overflow", "dropped": 4}
        assert [event.data[:2] for event in events[1:]] == [f"{i}:" for i in range(4, 10)]
        assert broadcaster.stats().dropped == 4


async def test_the_byte_limit_counts_every_topic_of_a_subscriber(
    make_backend: BackendFactory, reader_of: Reader
) -> None:
    broadcaster = Broadcaster(make_backend(), max_queue_bytes=64 * KIB, overflow="drop_oldest")
    async with broadcaster:
        reader = reader_of(await broadcaster.open_subscription(["a", "b"]))
        for index in range(10):  # 50 KiB on each topic, 100 KiB in all
            await broadcaster.publish("ab"[index % 2], f"{index}:" + "z" * (10 * KIB))
        await until(lambda: broadcaster.stats().received == 10)
        events = await reader.take(7)
        assert json.loads(events[0].data) == {"reason": "overflow", "dropped": 4}
        assert [event.data[:2] for event in events[1:]] == [f"{i}:" for i in range(4, 10)]


async def test_one_event_larger_than_the_limit_is_still_delivered(
    make_backend: BackendFactory, reader_of: Reader
) -> None:
    async with Broadcaster(make_backend(), max_queue_bytes=256 * KIB) as broadcaster:
        reader = reader_of(await broadcaster.open_subscription("t"))
        await broadcaster.publish("t", "w" * (1000 * KIB))
        (event,) = await reader.take(1)
        assert event.data == "w" * (1000 * KIB)
        await broadcaster.publish("t", "next")
        assert [event.data for event in await reader.take(1)] == ["next"]
        assert broadcaster.stats().disconnected == 0


async def test_a_subscriber_stuck_in_a_send_is_found_by_bytes(
    make_backend: BackendFactory,
) -> None:
    async with Broadcaster(make_backend(), max_queue_bytes=64 * KIB) as broadcaster:
        stuck = await broadcaster.open_subscription("t")
        cut: list[bool] = []
        stuck.on_overflow = lambda: cut.append(True)
        for _ in range(20):  # 200 KiB: the ring is trimmed and its subscribers checked
            await broadcaster.publish("t", "s" * (10 * KIB))
        await until(lambda: bool(cut))
        assert stuck.closed
        assert broadcaster.stats().disconnected == 1


async def test_a_stuck_client_is_cut_by_bytes_while_the_others_read() -> None:
    reasons: list[str] = []
    async with Broadcaster(max_queue_bytes=256 * KIB) as broadcaster:
        app = make_app(broadcaster, on_disconnect=reasons.append)
        async with (
            ASGIStream(app, "/events", query="topic=t") as stuck,
            ASGIStream(app, "/events", query="topic=t") as reader,
        ):
            stuck.gate = asyncio.Event()  # stops reading: its first send never returns
            for index in range(60):  # 60 x 32 KiB, far below max_queue=1000 events
                await broadcaster.publish("t", f"{index}:" + "v" * (32 * KIB))
                await asyncio.sleep(0)
            events = await reader.wait_events(60)
            assert [event.data[:3] for event in events[-2:]] == ["58:", "59:"]
            await stuck.wait_for(lambda: stuck.task_done)
            assert reasons == ["overflow"]
            assert broadcaster.stats().subscribers == {"t": 1}


@pytest.mark.parametrize("value", [0, -1])
def test_max_queue_bytes_is_validated(value: int) -> None:
    with pytest.raises(ValueError, match="max_queue_bytes"):
        Broadcaster(max_queue_bytes=value)
