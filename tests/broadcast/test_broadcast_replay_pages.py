"""A resume is read a page at a time while it is sent, never whole, on both backends.

The snapshot only decides where the client resumes; the missed events are read once the
stream runs, a page within a byte budget at a time (``XRANGE ... COUNT`` on Redis,
references into the history in memory), so a client that resumes and does not read holds one
page, and Redis never answers more than a page at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import tracemalloc
from collections.abc import Callable, Sequence

import pytest
from conftest import BackendFactory, EventReader, until
from redis.asyncio import Redis

from litestar_sse.broadcast import Broadcaster, MemoryBackend, Retention
from litestar_sse.broadcast._backends.base import BroadcastBackend, Snapshot
from litestar_sse.broadcast._hub.backlog import FIRST_PAGE_BYTES, REPLAY_PAGE_BYTES
from litestar_sse.broadcast.types import Subscription
from tests.redis_support import RedisProcess, unique_prefix

pytestmark = pytest.mark.anyio

Reader = Callable[[Subscription], EventReader]
KIB = 1024


async def publish_many(
    broadcaster: Broadcaster, topics: list[str], per_topic: int, size: int
) -> str:
    """``per_topic`` events of ``size`` bytes on each topic, interleaved; the last id."""
    last = ""
    for index in range(per_topic):
        ids = await asyncio.gather(
            *(broadcaster.publish(topic, f"{topic}:{index}:" + "p" * size) for topic in topics)
        )
        last = ids[-1]
    return last


def keeping_everything(make_backend: BackendFactory) -> BroadcastBackend:
    """A backend that keeps every event: no count limit, nor (in memory) a byte limit."""
    backend = make_backend(retention=Retention(max_events=None))
    if isinstance(backend, MemoryBackend):
        backend.max_history_bytes = None
    return backend


async def test_a_long_resume_over_many_topics_comes_in_order_exactly_once(
    make_backend: BackendFactory, reader_of: Reader
) -> None:
    topics = [f"t{index}" for index in range(12)]
    backend = make_backend(retention=Retention(max_events=None))
    async with Broadcaster(backend, max_queue_bytes=48 * KIB) as broadcaster:  # small pages
        start = await broadcaster.publish("t0", "before")
        published = []
        for index in range(300):
            topic = topics[(index * 7) % len(topics)] if index % 5 else "t3"
            published.append(await broadcaster.publish(topic, f"{index}:" + "q" * 700))
        reader = reader_of(await broadcaster.open_subscription(topics, last_event_id=start))
        assert reader.subscription.gap is None
        events = await reader.take(300)
        assert [event.id for event in events] == published
        assert len(reader.chunks) > 300 * 700 // (48 * KIB)  # many sends, none over the budget
        assert max(len(chunk) for chunk in reader.chunks) <= 48 * KIB
        live = await broadcaster.publish("t5", "live")
        assert [event.id for event in await reader.take(1)] == [live]


async def test_resumers_that_do_not_read_hold_a_page_each_not_their_replay(
    make_backend: BackendFactory,
) -> None:
    topics = [f"t{index}" for index in range(20)]
    backend = keeping_everything(make_backend)
    async with Broadcaster(backend) as broadcaster:
        start = await broadcaster.publish("t0", "before")
        await publish_many(broadcaster, topics, 50, 2000)  # 2 MB to replay per client
        gc.collect()
        tracemalloc.start()
        try:
            resumers = [
                await broadcaster.open_subscription(topics, last_event_id=start) for _ in range(10)
            ]
            in_flight = [  # each sends its first chunk, then stops reading
                await asyncio.wait_for(subscription.__anext__(), 10) for subscription in resumers
            ]
            grown = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        # each holds at most a page (and one chunk): it was its whole replay, 2 MB each
        assert grown < 10 * (2 * REPLAY_PAGE_BYTES + 128 * KIB), grown
        assert len(in_flight) == 10
        for subscription in resumers:
            subscription.close()


async def test_a_resumer_that_stops_reading_holds_a_small_page(
    make_backend: BackendFactory,
) -> None:
    # A Redis resumer that read nothing held +267 KiB (a 256 KiB page each, a copy of its
    # own) against +20 KiB on the memory backend: 300 of them, +78 MiB. The first page is
    # small, the pages grow as the client reads, up to one send's worth.
    topics = [f"t{index}" for index in range(20)]
    backend = keeping_everything(make_backend)
    async with Broadcaster(backend) as broadcaster:
        start = await broadcaster.publish("t0", "before")
        await publish_many(broadcaster, topics, 50, 2000)  # 2 MB to replay per client
        gc.collect()
        tracemalloc.start()
        try:
            resumers = [
                await broadcaster.open_subscription(topics, last_event_id=start) for _ in range(20)
            ]
            # each sends its first chunk, then stops reading
            in_flight = [await asyncio.wait_for(anext(s), 10) for s in resumers]
            ids = [chunk.encode().count(b"id: ") for chunk in in_flight[:1]]
            gc.collect()
            first_chunk = tracemalloc.get_traced_memory()[0] // 20
            # each sends a few more (a socket buffer takes them), then stops reading
            for _ in range(6):
                in_flight = [await asyncio.wait_for(anext(s), 10) for s in resumers]
                ids.append(in_flight[0].encode().count(b"id: "))
            gc.collect()
            later = tracemalloc.get_traced_memory()[0] // 20
        finally:
            tracemalloc.stop()
        assert first_chunk < 80 * KIB, first_chunk
        assert later < 160 * KIB, later  # a 256 KiB page: 247 KB on Redis
        assert all(len(chunk.encode()) <= REPLAY_PAGE_BYTES for chunk in in_flight)
        assert ids[0] * 2000 < FIRST_PAGE_BYTES < ids[-1] * 2000  # the pages grew
        # one that reads on gets every other event, once
        reader = EventReader(resumers[0])
        assert len(await reader.take(20 * 50 - sum(ids), timeout=30)) == 20 * 50 - sum(ids)
        await reader.nothing_for(0.1)
        for subscription in resumers:
            subscription.close()


async def net_output_bytes(client: Redis) -> int:
    return int((await client.info("stats"))["total_net_output_bytes"])


async def test_redis_answers_a_resume_a_page_at_a_time(redis_server: RedisProcess) -> None:
    from litestar_sse.broadcast import RedisStreamBackend

    topics = [f"t{index}" for index in range(20)]
    backend = RedisStreamBackend(redis_server.url, prefix=unique_prefix())
    client = Redis.from_url(redis_server.url)
    try:
        async with Broadcaster(backend) as broadcaster:
            start = await broadcaster.publish("t0", "before")
            await publish_many(broadcaster, topics, 100, 2000)  # 4 MB in all
            before = await net_output_bytes(client)
            reader = EventReader(await broadcaster.open_subscription(topics, last_event_id=start))
            first = await reader.read_chunk()
            sent = await net_output_bytes(client) - before
            assert sent < 2 * REPLAY_PAGE_BYTES, sent  # the snapshot read all 4 MB
            events = first + await reader.take(20 * 100 - len(first), timeout=30)  # the rest
            assert sorted(tuple(event.data.split(":")[:2]) for event in events) == sorted(
                (topic, str(index)) for topic in topics for index in range(100)
            )
            positions = [tuple(map(int, event.id.split("-")[1:])) for event in events]
            assert positions == sorted(positions)  # in id order, each once
            reader.subscription.close()
    finally:
        await client.aclose()


async def test_events_the_history_drops_during_a_replay_are_reported_as_a_gap(
    make_backend: BackendFactory, reader_of: Reader
) -> None:
    backend = make_backend(retention=Retention(max_events=300))
    async with Broadcaster(backend) as broadcaster:
        first = await broadcaster.publish("t", "first")
        published = [await broadcaster.publish("t", f"{i}:" + "r" * 10_000) for i in range(299)]
        reader = reader_of(await broadcaster.open_subscription("t", last_event_id=first))
        assert reader.subscription.gap is None
        await reader.read_chunk()  # the replay started: one page read
        live = [await broadcaster.publish("t", f"live {i}") for i in range(400)]  # trims it all
        events = list(reader.events)
        while len(events) < 401 or events[-1].id != live[-1]:
            events += await reader.take(1)
        replayed = [event for event in events if event.event != "gap" and event.id in published]
        assert [event.id for event in replayed] == published[: len(replayed)]
        assert len(replayed) < len(published)
        gap = events[len(replayed)]
        assert (gap.event, gap.id) == ("gap", published[-1])  # the newest id at the snapshot
        assert json.loads(gap.data) == {"reason": "retention", "topics": ["t"]}
        assert [event.id for event in events[len(replayed) + 1 :]] == live
        assert (reader.subscription.gap, reader.subscription.gap_topics) == ("retention", ("t",))


async def test_a_replay_interrupted_by_an_unreachable_redis_ends_the_stream(
    redis_process: Callable[..., RedisProcess], reader_of: Reader
) -> None:
    from litestar_sse.broadcast import RedisStreamBackend

    server = redis_process()  # started
    backend = RedisStreamBackend(server.url, prefix=unique_prefix(), watch_timeout=1)
    async with Broadcaster(backend) as broadcaster:
        start = await broadcaster.publish("t", "before")
        published = [await broadcaster.publish("t", f"{i}:" + "s" * 20_000) for i in range(50)]
        reader = reader_of(await broadcaster.open_subscription("t", last_event_id=start))
        await reader.read_chunk()
        server.stop()
        while not reader.ended:
            await reader.read_chunk(timeout=10)
        # what it got is a prefix, without a gap: the client resumes from its last id
        assert [event.id for event in reader.events] == published[: len(reader.events)]
        assert 0 < len(reader.events) < len(published)
        await until(lambda: broadcaster.stats().subscribers == {})


class ReadAheadBackend(MemoryBackend):
    """A backend that reads the whole replay at snapshot time, as a third-party one may."""

    async def snapshot(self, topics: Sequence[str], last_event_id: str | None) -> Snapshot:
        snapshot = await super().snapshot(topics, last_event_id)
        if snapshot.replay is None:
            return snapshot
        events = await snapshot.replay.read_all()
        return dataclasses.replace(snapshot, history=events, replay=None)


async def test_a_backend_giving_the_history_at_once_is_replayed_in_bounded_sends(
    reader_of: Reader,
) -> None:
    async with Broadcaster(ReadAheadBackend()) as broadcaster:
        start = await broadcaster.publish("t", "before")
        ids = [await broadcaster.publish("t", f"{i}:" + "h" * 3000) for i in range(100)]
        reader = reader_of(await broadcaster.open_subscription("t", last_event_id=start))
        assert [event.id for event in await reader.take(100)] == ids
        assert max(len(chunk) for chunk in reader.chunks) <= 64 * KIB
        assert len(reader.chunks) >= 5
