"""The Redis backend: one reader per process, several processes, restarts and lost data."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from conftest import EventReader
from redis.asyncio import Redis

from litestar_sse.broadcast import Broadcaster, RedisStreamBackend, Retention
from litestar_sse.broadcast.errors import BackendUnavailableError
from tests.redis_support import RedisProcess, unique_prefix

pytestmark = pytest.mark.anyio


async def publish_when_back(broadcaster: Broadcaster, topic: str, data: str) -> str:
    """Publish, retrying while Redis is still coming back."""
    for _ in range(200):
        try:
            return await broadcaster.publish(topic, data)
        except BackendUnavailableError:
            await asyncio.sleep(0.05)
    raise AssertionError("Redis did not come back")


async def test_one_blocked_reader_connection_serves_every_subscriber(
    redis_server: RedisProcess,
) -> None:
    client = Redis.from_url(redis_server.url, client_name="one-reader")
    backend = RedisStreamBackend(client, prefix=unique_prefix())
    async with Broadcaster(backend) as broadcaster:
        subscriptions = [
            await broadcaster.open_subscription([f"t{i % 10}", f"t{(i + 3) % 10}"])
            for i in range(100)
        ]
        await broadcaster.publish("t3", "x")
        for subscription in subscriptions:
            if "t3" in subscription.topics:
                assert [e.data for e in await EventReader(subscription).take(1)] == ["x"]
        await asyncio.sleep(0.2)  # idle: the reader is blocked in its XREAD
        clients = [c for c in await client.client_list() if c["name"] == "one-reader"]
        blocked = [c for c in clients if "b" in c["flags"]]
        assert len(blocked) == 1
        assert blocked[0]["cmd"] == "xread"
        assert len(clients) <= 3
        for subscription in subscriptions:
            subscription.close()
    await client.aclose()


async def test_processes_share_topics_and_resume_on_each_other(
    redis_server: RedisProcess,
) -> None:
    prefix = unique_prefix()
    async with (
        Broadcaster(RedisStreamBackend(redis_server.url, prefix=prefix)) as one,
        Broadcaster(RedisStreamBackend(redis_server.url, prefix=prefix)) as two,
    ):
        on_two = EventReader(await two.open_subscription(["a", "b"]))
        on_one = EventReader(await one.open_subscription(["a", "b"]))
        first = await one.publish("a", "from one")
        second = await two.publish("b", "from two")
        for reader in (on_one, on_two):
            assert [(e.id, e.data) for e in await reader.take(2)] == [
                (first, "from one"),
                (second, "from two"),
            ]
        on_one.subscription.close()
        missed = [await two.publish("ab"[i % 2], f"missed {i}") for i in range(5)]
        resumed = EventReader(await two.open_subscription(["a", "b"], last_event_id=second))
        assert [e.id for e in await resumed.take(5)] == missed
        resumed.subscription.close()
        on_two.subscription.close()


async def test_restart_with_persistence_loses_nothing_and_repeats_nothing(
    redis_process: Callable[..., RedisProcess],
) -> None:
    server = redis_process(persistent=True)
    backend = RedisStreamBackend(server.url, prefix="restart:")
    async with Broadcaster(backend) as broadcaster:
        reader = EventReader(await broadcaster.open_subscription(["a", "b"]))
        published = [await broadcaster.publish("a", f"before {i}") for i in range(3)]
        await reader.take(3)
        published.append(await broadcaster.publish("b", "just before the stop"))
        server.stop()

        with pytest.raises(BackendUnavailableError):
            await broadcaster.publish("a", "while down")
        with pytest.raises(BackendUnavailableError):
            await broadcaster.open_subscription("a")
        with pytest.raises(BackendUnavailableError):
            await broadcaster.open_subscription("new-topic")

        server.start()
        published.append(await publish_when_back(broadcaster, "b", "after 0"))
        published += [await broadcaster.publish("ab"[i % 2], f"after {i}") for i in range(1, 4)]
        await reader.take(len(published) - 3, timeout=10)
        assert [event.id for event in reader.events] == published
        assert not any(event.event == "gap" for event in reader.events)
        # a client that was away during the outage resumes exactly, in the same epoch
        again = EventReader(await broadcaster.open_subscription("a", last_event_id=published[0]))
        assert again.subscription.gap is None
        expected = [published[1], published[2], published[6]]
        assert [(e.id, e.data) for e in await again.take(3)] == list(
            zip(expected, ["before 1", "before 2", "after 2"], strict=True)
        )
        again.subscription.close()


@pytest.mark.parametrize("protocol", [2, 3])
async def test_no_request_fails_on_a_connection_left_over_from_before_a_restart(
    redis_process: Callable[..., RedisProcess], protocol: int
) -> None:
    # redis-py reuses a pooled connection without noticing that Redis closed it, so each one
    # idle across the restart used to fail the first command sent on it: a 503 although
    # Redis was back. A burst as wide as the pool must see none of them.
    server = redis_process(persistent=True)
    client = Redis.from_url(server.url, protocol=protocol)
    burst = 12
    async with Broadcaster(RedisStreamBackend(client, prefix=unique_prefix())) as broadcaster:
        first = await broadcaster.publish("t", "first")
        # fill the pool: as many connections as the burst, all idle once done (concurrent
        # publishes share a connection: they coalesce into one round trip)
        await asyncio.gather(*(client.ping() for _ in range(burst)))
        assert len(client.connection_pool._available_connections) >= burst
        server.stop()
        with pytest.raises(BackendUnavailableError):
            await broadcaster.publish("t", "while down")
        server.start()  # returns once Redis answers PING

        async def resume() -> str | None:
            subscription = await broadcaster.open_subscription("t", last_event_id=first)
            subscription.close()
            return subscription.gap

        results = await asyncio.gather(
            *(broadcaster.publish("t", f"after {i}") for i in range(burst)),
            *(resume() for _ in range(burst)),
            return_exceptions=True,
        )
        assert [r for r in results if isinstance(r, BaseException)] == []
        assert results[burst:] == [None] * burst  # resumed in the same epoch, no gap
    await client.aclose()


async def test_restart_without_data_starts_a_new_epoch_with_a_gap(
    redis_process: Callable[..., RedisProcess],
) -> None:
    server = redis_process(persistent=False)
    async with Broadcaster(RedisStreamBackend(server.url, prefix="wipe:")) as broadcaster:
        reader = EventReader(await broadcaster.open_subscription("t"))
        old = await broadcaster.publish("t", "old")
        await reader.take(1)
        server.stop()
        server.start()
        (gap,) = await reader.take(1, timeout=10)
        assert json.loads(gap.data) == {"reason": "epoch"}
        assert gap.id.split("-")[0] != old.split("-")[0]
        assert await reader.read_chunk() == []
        assert reader.ended  # the client reconnects, from the gap's id
        stats = broadcaster.stats()
        assert stats.gaps["epoch"] == 1  # the open stream's last event
        assert stats.backend_errors["reader"] >= 1  # its rounds while Redis was away
        assert stats.backend_reconnects == 1
        fresh = await publish_when_back(broadcaster, "t", "fresh")
        resumed = EventReader(await broadcaster.open_subscription("t", last_event_id=gap.id))
        assert resumed.subscription.gap is None
        assert [(e.id, e.data) for e in await resumed.take(1)] == [(fresh, "fresh")]
        stale = await broadcaster.open_subscription("t", last_event_id=old)
        assert stale.gap == "epoch"
        stale.close()
        resumed.subscription.close()


async def test_data_wiped_under_a_running_reader_is_detected(
    redis_process: Callable[..., RedisProcess],
) -> None:
    server = redis_process()
    backend = RedisStreamBackend(server.url, prefix="flush:", block_timeout=0.1)
    async with Broadcaster(backend) as broadcaster:
        reader = EventReader(await broadcaster.open_subscription("t"))
        await broadcaster.publish("t", "x")
        await reader.take(1)
        await backend.redis.flushall()
        (gap,) = await reader.take(1, timeout=5)
        assert gap.event == "gap"
        assert reader.ended or await reader.read_chunk() == []


async def test_a_clock_behind_what_was_read_starts_a_new_epoch(
    redis_server: RedisProcess,
) -> None:
    prefix = unique_prefix()
    backend = RedisStreamBackend(redis_server.url, prefix=prefix, block_timeout=0.1)
    async with Broadcaster(backend) as broadcaster:
        reader = EventReader(await broadcaster.open_subscription("t"))
        old = await broadcaster.publish("t", "x")
        await reader.take(1)
        # as if Redis came back from an older copy that lost the newest writes
        await backend.redis.hset(f"{prefix}meta", mapping={"ms": 1, "n": 0})
        (gap,) = await reader.take(1, timeout=5)
        assert json.loads(gap.data) == {"reason": "epoch"}
        assert gap.id.split("-")[0] != old.split("-")[0]


async def test_resp3_clients_work(redis_server: RedisProcess) -> None:
    client = Redis.from_url(redis_server.url, protocol=3)
    async with Broadcaster(RedisStreamBackend(client, prefix=unique_prefix())) as broadcaster:
        reader = EventReader(await broadcaster.open_subscription(["a", "b"]))
        ids = [await broadcaster.publish(topic, topic) for topic in "abab"]
        assert [event.id for event in await reader.take(4)] == ids
        resumed = EventReader(await broadcaster.open_subscription("a", last_event_id=ids[0]))
        assert [event.id for event in await resumed.take(1)] == [ids[2]]
        reader.subscription.close()
        resumed.subscription.close()
    await client.aclose()


async def test_a_client_with_decoded_responses_is_refused(redis_server: RedisProcess) -> None:
    client = Redis.from_url(redis_server.url, decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses"):
        RedisStreamBackend(client)
    await client.aclose()


async def test_stream_keys_are_trimmed_exactly(redis_server: RedisProcess) -> None:
    prefix = unique_prefix()
    backend = RedisStreamBackend(
        redis_server.url, prefix=prefix, retention=Retention(max_events=10)
    )
    async with Broadcaster(backend) as broadcaster:
        ids = [await broadcaster.publish("t", index) for index in range(25)]
        assert await backend.redis.xlen(f"{prefix}topic:t") == 10
        trimmed = await backend.redis.hget(f"{prefix}state:t", "t")
        assert trimmed.decode() == ids[14].split("-", 1)[1]


async def test_retention_limits_are_not_remembered_for_every_topic_ever_published(
    redis_server: RedisProcess,
) -> None:
    """(A cache of per-topic limits grew by one entry per topic: clients may choose topics.)"""
    from litestar_sse.broadcast._backends.redis import backend as redis_module

    prefix = unique_prefix()
    backend = RedisStreamBackend(
        redis_server.url,
        prefix=prefix,
        retention=lambda topic: Retention(max_events=5 if topic.startswith("a") else 10),
    )
    async with Broadcaster(backend) as broadcaster:
        for index in range(redis_module._LIMITS_CACHE_SIZE + 100):
            await broadcaster.publish(f"t{index}", index)
        assert len(backend._limits_of) <= redis_module._LIMITS_CACHE_SIZE
        ids = [await broadcaster.publish("a", index) for index in range(8)]
        assert await backend.redis.xlen(f"{prefix}topic:a") == 5
        assert ids


@pytest.mark.parametrize("max_connections", [3, None], ids=["pool-of-3", "default-pool"])
async def test_a_burst_beyond_the_connection_pool_waits_instead_of_failing(
    redis_server: RedisProcess, max_connections: int | None
) -> None:
    # A restart makes every client reconnect at once: far more subscriptions (and publishes)
    # in flight than the client's pool has connections (redis-py's default pool has 100, and
    # says "Too many connections" beyond). They queue for a connection instead of answering
    # 503 while Redis is fine, and the reader, starved of none, keeps delivering.
    client = Redis.from_url(redis_server.url, max_connections=max_connections)
    burst = 3 * (max_connections or 100)
    async with Broadcaster(RedisStreamBackend(client, prefix=unique_prefix())) as broadcaster:
        first = EventReader(await broadcaster.open_subscription("t"))
        seen = await broadcaster.publish("t", "before")
        subscriptions = await asyncio.gather(
            *(
                broadcaster.open_subscription(["t", f"t{i}"], last_event_id=seen)
                for i in range(burst)
            ),
        )
        ids = await asyncio.gather(*(broadcaster.publish("t", i) for i in range(burst)))
        assert len(set(ids)) == burst
        received = await first.take(burst + 1, timeout=10)
        assert [event.id for event in received] == sorted([seen, *ids], key=_position)
        for subscription in subscriptions:
            assert subscription.gap is None
            subscription.close()
        first.subscription.close()
    await client.aclose()


def _position(event_id: str) -> tuple[int, int]:
    ms, n = event_id.split("-")[1:]
    return int(ms), int(n)
