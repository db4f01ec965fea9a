"""``Retention(idle_ttl=...)``: topics made per request or per job go once nobody publishes to
them, and keep every event while they are active."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from litestar_sse.broadcast import (
    Broadcaster,
    BroadcastMessage,
    Gap,
    MemoryBackend,
    RedisStreamBackend,
    Retention,
)
from tests.redis_support import RedisProcess, unique_prefix

pytestmark = pytest.mark.anyio


async def test_memory_forgets_topics_idle_for_their_ttl_and_keeps_active_ones_whole() -> None:
    now = [0.0]
    backend = MemoryBackend(retention=Retention(max_events=None, idle_ttl=60), clock=lambda: now[0])
    async with Broadcaster(backend) as broadcaster:
        first = await broadcaster.publish("job:1", "start")
        for step in range(1, 10):  # 450 s of activity, never 60 s idle: all of it stays
            now[0] = step * 50
            await broadcaster.publish("job:1", f"step {step}")
        history = [item async for item in broadcaster.history("job:1")]
        assert history[0].id == first  # type: ignore[union-attr]
        assert len(history) == 10
        for request in range(100):  # one topic per request, each published to once
            now[0] += 0.1
            await broadcaster.publish(f"request:{request}", "reply")
        assert backend.topics_retained == 101
        now[0] += 61
        for _ in range(60):  # each publish sweeps two idle topics
            await broadcaster.publish("ticker", "tick")
        assert backend.topics_retained == 1
        # a client resuming from before the topic went is told, not silently given nothing
        assert [item async for item in broadcaster.history("job:1", after=first)] == [
            Gap("retention", ("job:1",))
        ]
        assert await broadcaster.topic_of(first) is None


async def test_memory_idle_ttl_applies_on_read_too() -> None:
    now = [0.0]
    backend = MemoryBackend(retention=Retention(idle_ttl=10), clock=lambda: now[0])
    async with Broadcaster(backend) as broadcaster:
        before = await broadcaster.publish("other", "x")
        await broadcaster.publish("job", "done")
        now[0] = 10
        subscription = await broadcaster.open_subscription("job", last_event_id=before)
        assert subscription.gap == "retention"
        subscription.close()


async def test_redis_streams_expire_once_idle_and_a_resume_gets_a_gap(
    redis_server: RedisProcess,
) -> None:
    prefix = unique_prefix()

    def retention(topic: str) -> Retention:
        if topic.startswith("request:"):
            return Retention(idle_ttl=0.3, max_age=60)
        return Retention()

    backend = RedisStreamBackend(redis_server.url, prefix=prefix, retention=retention)
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        async with Broadcaster(backend) as broadcaster:
            first = await broadcaster.publish("request:1", "progress")
            last = await broadcaster.publish("request:1", "reply")
            await broadcaster.publish("forever", "x")
            ttl = await client.pttl(f"{prefix}topic:request:1")
            assert 0 < ttl <= 300  # the idle TTL, not max_age + 1 s
            assert await client.pttl(f"{prefix}topic:forever") == -1
            assert [item async for item in broadcaster.history("request:1", after=first)] == [
                BroadcastMessage("request:1", last, None, "reply")
            ]
            key = f"{prefix}topic:request:1"
            for _ in range(200):  # Redis expires the key by itself (TTL 0.3 s)
                if not await client.exists(key):
                    break
                await asyncio.sleep(0.05)
            assert not await client.exists(key)
            assert [item async for item in broadcaster.history("request:1", after=first)] == [
                Gap("retention", ("request:1",))
            ]
    finally:
        await client.aclose()


async def per_topic_records(client: aioredis.Redis, prefix: str) -> dict[str, int]:
    """What Redis holds per topic under ``prefix``: keys other than the shared ones, and the
    fields of the hashes where earlier versions kept per-topic ids."""
    shared = {f"{prefix}meta", f"{prefix}log", f"{prefix}trimmed", f"{prefix}newest"}
    keys = [key.decode() async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
    return {
        "keys": len([key for key in keys if key not in shared and ":wake:" not in key]),
        "trimmed": await client.hlen(f"{prefix}trimmed"),
        "newest": await client.hlen(f"{prefix}newest"),
    }


async def test_redis_keeps_nothing_of_a_topic_once_it_expired(redis_server: RedisProcess) -> None:
    # 50,000 per-request topics expired, but HLEN newest went 50,000 -> 100,000 after a
    # second round: about 98 bytes per topic, never freed.
    prefix = unique_prefix()
    retention = Retention(max_events=1, idle_ttl=0.2)
    backend = RedisStreamBackend(
        redis_server.url, prefix=prefix, retention=retention, idempotency_window=0.2
    )
    client = aioredis.Redis.from_url(redis_server.url)
    nothing = {"keys": 0, "trimmed": 0, "newest": 0}
    try:
        async with Broadcaster(backend) as broadcaster:
            for round_ in range(2):
                first = await broadcaster.publish("request:0", "before")
                for request in range(300):  # two events each: one trimmed (max_events=1)
                    await broadcaster.publish(f"request:{request}", "progress")
                    await broadcaster.publish(f"request:{request}", "reply")
                    await broadcaster.publish(
                        f"request:{request}", "reply", idempotency_key=f"k{round_}"
                    )
                assert (await per_topic_records(client, prefix))["keys"] > 0
                deadline = asyncio.get_running_loop().time() + 30
                while await per_topic_records(client, prefix) != nothing:
                    assert asyncio.get_running_loop().time() < deadline, await per_topic_records(
                        client, prefix
                    )
                    await asyncio.sleep(0.1)
                # gone whole, and a resume from before it is still told what it missed
                assert [item async for item in broadcaster.history("request:0", after=first)] == [
                    Gap("retention", ("request:0",))
                ]
            # a topic that never had events, resumed from a recent id: nothing missed
            recent = await broadcaster.publish("other", "x")
            assert [item async for item in broadcaster.history("request:new", after=recent)] == []
            subscription = await broadcaster.open_subscription("request:new", last_event_id=recent)
            assert subscription.gap is None
            subscription.close()
    finally:
        await client.aclose()


async def test_redis_reads_the_records_of_earlier_versions_and_moves_them(
    redis_server: RedisProcess,
) -> None:
    # Earlier versions kept each topic's trimmed and newest ids in two shared hashes.
    prefix = unique_prefix()
    backend = RedisStreamBackend(redis_server.url, prefix=prefix, retention=Retention(idle_ttl=60))
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        async with Broadcaster(backend) as broadcaster:
            first = await broadcaster.publish("x", "start")
            second = await broadcaster.publish("x", "again")
            # as an earlier version left it: the stream of "gone" expired, its newest id kept
            await client.hset(f"{prefix}newest", "gone", second.split("-", 1)[1])
            await client.hset(f"{prefix}trimmed", "x", second.split("-", 1)[1])
            assert [item async for item in broadcaster.history("gone", after=first)] == [
                Gap("retention", ("gone",))
            ]
            assert [item async for item in broadcaster.history("x", after=first)] == [
                Gap("retention", ("x",))
            ]
            await broadcaster.publish("x", "moved")
            assert await client.hlen(f"{prefix}trimmed") == 0
            assert [item async for item in broadcaster.history("x", after=first)] == [
                Gap("retention", ("x",))
            ]
    finally:
        await client.aclose()
