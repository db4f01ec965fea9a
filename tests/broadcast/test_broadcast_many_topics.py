"""Many topics: what one event costs does not grow with the topics subscribers follow.

The cost is counted, not timed: the lines of the broadcast package that run for one event
(``sys.settrace``), and, on Redis, the keys each command of the reader names (``MONITOR``).
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import redis
from conftest import BackendFactory, EventReader
from redis.asyncio import Redis

import litestar_sse.broadcast
from litestar_sse.broadcast import Broadcaster, RedisStreamBackend
from litestar_sse.broadcast._backends.redis.scripts import _HELPERS, PUBLISH
from tests.redis_support import RedisProcess, unique_prefix

pytestmark = pytest.mark.anyio

PACKAGE = str(Path(litestar_sse.broadcast.__file__).parent)


class LineCount:
    """Lines of the broadcast package run while it is active (every task of the thread)."""

    def __init__(self) -> None:
        self.lines = 0

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            self.lines += 1
        return self._local

    def _global(self, frame: FrameType, event: str, arg: Any) -> Any:
        return self._local if frame.f_code.co_filename.startswith(PACKAGE) else None


@contextmanager
def counting_lines() -> Iterator[LineCount]:
    count = LineCount()
    previous = sys.gettrace()
    sys.settrace(count._global)
    try:
        yield count
    finally:
        sys.settrace(previous)


async def lines_for_one_event(broadcaster: Broadcaster, topics: int) -> int:
    """Five subscribers of ``topics`` topics each, idle; the lines one event to one of their
    topics costs, from publish to the last delivery."""
    names = [f"t{index}" for index in range(topics)]
    readers = [EventReader(await broadcaster.open_subscription(names)) for _ in range(5)]
    await broadcaster.publish("t0", "warm up")
    for reader in readers:
        await reader.take(1)
    waits = [asyncio.ensure_future(reader.take(1)) for reader in readers]
    await asyncio.sleep(0.05)  # every reader idle
    with counting_lines() as count:
        await broadcaster.publish(names[-1], "x")
        await asyncio.gather(*waits)
    for reader in readers:
        reader.subscription.close()
    return count.lines


async def test_one_event_costs_the_same_whatever_the_topics_followed(
    make_backend: BackendFactory,
) -> None:
    async with Broadcaster(make_backend(), max_topics=None) as broadcaster:
        few = await lines_for_one_event(broadcaster, 10)
    async with Broadcaster(make_backend(), max_topics=None) as broadcaster:
        many = await lines_for_one_event(broadcaster, 3000)
    # Was about 40 lines per topic followed and subscriber (every topic's cursor checked and
    # every topic's waiter list joined again, by every subscriber, for every event).
    assert many < few * 2, (few, many)


async def test_a_dropped_multi_topic_subscription_is_collected_after_it_waited() -> None:
    async with Broadcaster() as broadcaster:
        reader = EventReader(await broadcaster.open_subscription(["a", "b"]))
        await broadcaster.publish("a", "x")
        await reader.take(1)
        wait = asyncio.ensure_future(reader.subscription.__anext__())
        await asyncio.sleep(0.01)  # waiting for the next event
        wait.cancel()
        await asyncio.gather(wait, return_exceptions=True)
        del reader, wait
        await asyncio.sleep(0)  # the loop lets go of the cancelled task
        gc.collect()
        assert broadcaster.stats().subscribers == {}


# -- Redis -----------------------------------------------------------------------------------


async def commands_for_one_event(server: RedisProcess, topics: int) -> list[str]:
    """The commands the backend sends for one event while a subscriber follows ``topics``
    topics, as Redis' ``MONITOR`` reports them."""
    prefix = unique_prefix()
    backend = RedisStreamBackend(server.url, prefix=prefix)
    names = [f"t{index}" for index in range(topics)]
    monitor_client = Redis.from_url(server.url)
    async with Broadcaster(backend, max_topics=None) as broadcaster:
        reader = EventReader(await broadcaster.open_subscription(names))
        await broadcaster.publish("t0", "warm up")
        await reader.take(1)
        await asyncio.sleep(0.05)
        commands: list[str] = []
        async with monitor_client.monitor() as monitor:

            async def listen() -> None:
                while True:
                    command = (await monitor.next_command())["command"]
                    if prefix in command:
                        commands.append(command)

            listener = asyncio.ensure_future(listen())
            await asyncio.sleep(0.1)
            await broadcaster.publish(names[-1], "x")
            await reader.take(1)
            await asyncio.sleep(0.1)
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        reader.subscription.close()
    await monitor_client.aclose()
    return commands


def streams_named(command: str) -> int:
    """How many streams an ``XREAD`` names."""
    words = [word.upper() for word in command.split()]
    if not words or words[0] != "XREAD":
        return 0
    after = words.index("STREAMS") + 1
    return (len(words) - after) // 2


async def test_the_redis_reader_reads_only_the_streams_with_news(
    redis_server: RedisProcess,
) -> None:
    commands = await commands_for_one_event(redis_server, 2000)
    reads = [streams_named(command) for command in commands if "XREAD" in command.upper()]
    assert reads, commands
    # the change log and the wake stream, then the one topic with an event; it was all 2,001
    # streams, in every read and in every blocking wait
    assert max(reads) <= 2, reads
    assert max(len(command) for command in commands) < 2000, "a command names many keys"


async def test_a_reader_further_behind_than_the_log_reads_every_stream_and_misses_nothing(
    redis_server: RedisProcess,
) -> None:
    prefix = unique_prefix()
    backend = RedisStreamBackend(redis_server.url, prefix=prefix)
    async with Broadcaster(backend, max_topics=None) as broadcaster:
        topics = [f"t{index}" for index in range(700)]  # more than one batch of keys
        reader = EventReader(await broadcaster.open_subscription(topics))
        # A publisher elsewhere, while this process' loop is busy: the log keeps 5 entries,
        # and the reader is 40 events behind when it reads again.
        sent = [(topics[index * 17 % 700], str(index)) for index in range(40)]
        ids = publish_while_the_loop_is_blocked(redis_server, prefix, sent, log_length=5)
        events = await reader.take(40)
        assert [(e.id, e.data) for e in events] == [(i, str(n)) for n, i in enumerate(ids)]
        live = await broadcaster.publish("t1", "live")  # and it follows the log again
        assert [e.id for e in await reader.take(1)] == [live]
        reader.subscription.close()


def publish_while_the_loop_is_blocked(
    server: RedisProcess, prefix: str, events: list[tuple[str, str]], log_length: int
) -> list[str]:
    """Publish ``(topic, data)`` pairs as another process would, with a synchronous client:
    this process' event loop, and so its reader, runs only once they are all stored."""
    sync = redis.Redis.from_url(server.url)
    publish = sync.register_script(PUBLISH)
    ids = []
    for topic, data in events:
        stream = f"{prefix}topic:{topic}"
        epoch, stream_id = publish(
            keys=[f"{prefix}meta", f"{prefix}trimmed", f"{prefix}newest", f"{prefix}log",
                  stream, f"{prefix}state:{topic}", stream],
            args=["ffffffff", log_length, "1", 1, topic, 1000, 0, 0, 0, "", data, ""],
        )  # fmt: skip
        ids.append(f"{epoch.decode()}-{stream_id.decode()}")
    assert sync.xlen(f"{prefix}log") <= log_length
    sync.close()
    return ids


PUBLISH_WITHOUT_LOG = (
    _HELPERS
    + """
-- A publish as versions without the change log made it (its trimming left out).
local epoch = epoch_of(KEYS[1], ARGV[1])
local clock = redis.call('HMGET', KEYS[1], 'ms', 'n')
local ms, n = tonumber(clock[1]) or 0, tonumber(clock[2]) or 0
local now = now_ms()
if now > ms then ms, n = now, 0 else n = n + 1 end
local ms_text, n_text = string.format('%d', ms), string.format('%d', n)
redis.call('HSET', KEYS[1], 'ms', ms_text, 'n', n_text)
local id = ms_text .. '-' .. n_text
redis.call('XADD', KEYS[3], id, unpack(ARGV, 5))
return {epoch, id}
"""
)


async def test_events_published_without_the_log_are_still_read(
    redis_server: RedisProcess,
) -> None:
    # A process of an older version publishes without writing the change log (a rolling
    # deploy): the clock is then ahead of the log, and the reader reads every stream.
    prefix = unique_prefix()
    backend = RedisStreamBackend(redis_server.url, prefix=prefix)
    async with Broadcaster(backend) as broadcaster:
        reader = EventReader(await broadcaster.open_subscription(["a", "b"]))
        client = Redis.from_url(redis_server.url)
        old = client.register_script(PUBLISH_WITHOUT_LOG)
        ids = [await broadcaster.publish("a", "new 0")]
        for index, topic in enumerate("bab"):
            epoch, stream_id = await old(
                keys=[f"{prefix}meta", f"{prefix}trimmed", f"{prefix}topic:{topic}"],
                args=["ffffffff", 1000, 0, topic, "d", f"old {index}"],
            )  # fmt: skip
            ids.append(f"{epoch.decode()}-{stream_id.decode()}")
        ids.append(await broadcaster.publish("b", "new 1"))
        events = await reader.take(5)
        assert [e.id for e in events] == ids
        assert [e.data for e in events] == ["new 0", "old 0", "old 1", "old 2", "new 1"]
        await client.aclose()
        reader.subscription.close()


async def test_bursts_larger_than_read_count_keep_the_order_across_topics(
    redis_server: RedisProcess,
) -> None:
    prefix = unique_prefix()
    backend = RedisStreamBackend(redis_server.url, prefix=prefix, read_count=3)
    async with Broadcaster(backend) as broadcaster:
        reader = EventReader(await broadcaster.open_subscription(["a", "b", "c"]))
        other = EventReader(await broadcaster.open_subscription("c"))
        sent = [("abcd"[index % 4], str(index)) for index in range(40)]
        ids = publish_while_the_loop_is_blocked(redis_server, prefix, sent, log_length=1000)
        expected = [(i, str(n)) for n, i in enumerate(ids) if n % 4 != 3]
        events = await reader.take(len(expected))
        assert [(e.id, e.data) for e in events] == expected
        assert [e.data for e in await other.take(10)] == [str(n) for n in range(2, 40, 4)]
        reader.subscription.close()
        other.subscription.close()
