"""Typed subscriptions take live events as values the hub made when they arrived.

Each event a backend delivers becomes one :class:`BroadcastMessage`, shared by every typed
subscriber of the process, made from the parts the event was encoded from: a typed subscriber
never parses back the bytes the backend just wrote, nor looks for an event's topic by its
position. The hub's own gap events (a slow reader's skip, the loss of the history) come as
:class:`Gap` values too. On both backends (memory and Redis).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, NoReturn

import pytest
from conftest import BackendFactory, until

from litestar_sse.broadcast import (
    BacklogEnd,
    Broadcaster,
    BroadcastMessage,
    Gap,
    RedisStreamBackend,
    _messages,
)
from litestar_sse.broadcast._events import values
from litestar_sse.broadcast._hub.subscription import Subscription
from litestar_sse.broadcast.types import MessageItem, MessageSubscription
from tests.redis_support import RedisProcess

pytestmark = pytest.mark.anyio


def _refused(*args: Any, **kwargs: Any) -> NoReturn:
    raise AssertionError("a typed subscription parsed bytes back, or looked up a topic")


@pytest.fixture
def never_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the live path fail if it parses event bytes or bisects for a topic."""
    for module in (_messages, values):
        for name in ("parse_event_block", "split_event_blocks"):
            monkeypatch.setattr(module, name, _refused, raising=False)
    monkeypatch.setattr(Subscription, "topic_at", _refused, raising=False)


async def take(subscription: MessageSubscription, count: int) -> list[MessageItem]:
    return [await asyncio.wait_for(subscription.__anext__(), 5) for _ in range(count)]


async def test_live_values_carry_topic_id_event_and_data_without_parsing(
    make_backend: BackendFactory, never_parse: None
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        subscription = await broadcaster.subscribe_messages(["x", "y", "z"])
        assert isinstance((await take(subscription, 1))[0], BacklogEnd)
        published = [
            ("y", "note", "plain"),
            ("x", None, "three\r\nlines\nhere"),
            ("z", "cr", "a\rb\r\n"),
            ("z", None, "ünïcode ✓"),
            ("y", None, {"n": 2}),
        ]
        ids = [await broadcaster.publish(t, data, event=event) for t, event, data in published]
        got = await take(subscription, len(ids))
        assert got == [
            BroadcastMessage("y", ids[0], "note", "plain"),
            BroadcastMessage("x", ids[1], None, "three\nlines\nhere"),
            BroadcastMessage("z", ids[2], "cr", "a\nb\n"),
            BroadcastMessage("z", ids[3], None, "ünïcode ✓"),
            BroadcastMessage("y", ids[4], None, '{"n":2}'),
        ]
        subscription.close()


async def test_live_values_equal_what_history_reads_of_the_same_events(
    make_backend: BackendFactory,
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        subscription = await broadcaster.subscribe_messages(["a", "b"])
        await take(subscription, 1)
        for topic, data in [("a", "x\r\ny"), ("b", "\n"), ("a", "tail\r"), ("b", "é")]:
            await broadcaster.publish(topic, data, event="e" if topic == "b" else None)
        live = await take(subscription, 4)
        assert live == [item async for item in broadcaster.history(["a", "b"])]
        subscription.close()


async def test_every_typed_subscriber_shares_one_value_per_event(
    make_backend: BackendFactory, never_parse: None
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        one = await broadcaster.subscribe_messages(["a", "b"])
        two = await broadcaster.subscribe_messages("a")
        await take(one, 1)
        await take(two, 1)
        event_id = await broadcaster.publish("a", "shared")
        (first,) = await take(one, 1)
        (second,) = await take(two, 1)
        assert first == BroadcastMessage("a", event_id, None, "shared")
        assert first is second
        one.close()
        two.close()


async def test_a_topic_without_typed_subscribers_keeps_no_values(
    make_backend: BackendFactory,
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        raw = await broadcaster.open_subscription("t")
        await broadcaster.publish("t", "bytes only")
        await until(lambda: broadcaster.stats().received == 1)
        feed = broadcaster._fanout.feeds["t"]
        assert feed.readers == 0
        assert feed.values == [None] * len(feed.chunks)
        typed = await broadcaster.subscribe_messages("t")
        assert feed.readers == 1
        await take(typed, 1)
        await broadcaster.publish("t", "now as a value too")
        (message,) = await take(typed, 1)
        assert feed.values[-1] is message
        typed.close()
        assert feed.readers == 0
        raw.close()


async def test_a_slow_typed_reader_of_several_topics_gets_an_overflow_gap_value(
    make_backend: BackendFactory, never_parse: None
) -> None:
    async with Broadcaster(make_backend(), max_queue=2, overflow="drop_oldest") as broadcaster:
        subscription = await broadcaster.subscribe_messages(["a", "b"])
        await take(subscription, 1)
        ids = [await broadcaster.publish(topic, f"{topic}{n}") for n in range(3) for topic in "ab"]
        await until(lambda: broadcaster.stats().received == 6)  # all queued, none taken
        got = await take(subscription, 5)
        # each topic keeps its newest max_queue events: one of each is skipped
        assert got == [
            Gap("overflow", dropped=2),
            BroadcastMessage("a", ids[2], None, "a1"),
            BroadcastMessage("b", ids[3], None, "b1"),
            BroadcastMessage("a", ids[4], None, "a2"),
            BroadcastMessage("b", ids[5], None, "b2"),
        ]
        assert broadcaster.stats().dropped == 2
        subscription.close()


async def test_a_slow_typed_reader_of_one_topic_is_told_how_many_it_skipped(
    make_backend: BackendFactory, never_parse: None
) -> None:
    async with Broadcaster(make_backend(), max_queue=3, overflow="drop_oldest") as broadcaster:
        subscription = await broadcaster.subscribe_messages("t")
        await take(subscription, 1)
        ids = [await broadcaster.publish("t", str(n)) for n in range(10)]
        await until(lambda: broadcaster.stats().received == 10)
        got = await take(subscription, 4)
        assert got[0] == Gap("overflow", dropped=7)
        assert got[1:] == [BroadcastMessage("t", ids[n], None, str(n)) for n in (7, 8, 9)]
        subscription.close()


async def test_until_stops_at_its_message_among_values_taken_together(
    make_backend: BackendFactory, never_parse: None
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        subscription = await broadcaster.subscribe_messages(
            ["a", "b"], until=lambda message: message.data == "stop"
        )
        await take(subscription, 1)
        ids = [await broadcaster.publish(t, d) for t, d in [("a", "go"), ("b", "stop"), ("a", "x")]]
        await until(lambda: broadcaster.stats().received == 3)  # taken in one batch
        got = [item async for item in subscription]
        assert got == [
            BroadcastMessage("a", ids[0], None, "go"),
            BroadcastMessage("b", ids[1], None, "stop"),
        ]


async def test_a_lost_redis_history_ends_a_typed_subscription_with_an_epoch_gap(
    redis_process: Callable[..., RedisProcess], never_parse: None
) -> None:
    server = redis_process()
    backend = RedisStreamBackend(server.url, prefix="values:", block_timeout=0.1)
    async with Broadcaster(backend) as broadcaster:
        subscription = await broadcaster.subscribe_messages(["t", "u"])
        await take(subscription, 1)
        event_id = await broadcaster.publish("u", "x")
        assert await take(subscription, 1) == [BroadcastMessage("u", event_id, None, "x")]
        await backend.redis.flushall()
        assert await take(subscription, 1) == [Gap("epoch", ("t", "u"))]
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(subscription.__anext__(), 5)
        assert broadcaster.stats().gaps["epoch"] == 1


async def test_a_subscription_opened_for_bytes_refuses_to_give_values(
    make_backend: BackendFactory,
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        raw = await broadcaster.open_subscription("t")
        with pytest.raises(RuntimeError, match=r"values=True"):
            await raw.next_values()
        raw.close()
