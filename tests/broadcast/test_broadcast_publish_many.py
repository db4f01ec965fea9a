"""Batch publish on both backends (each event once, in order, with its id; replay across a
batch; limits; all-or-nothing checks), and concurrent publishes coalesced on Redis."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest
from conftest import BackendFactory, EventReader
from redis.asyncio import Redis

from litestar_sse.broadcast import (
    BatchEvent,
    Broadcaster,
    BroadcastMessage,
    MemoryBackend,
    RedisStreamBackend,
    Retention,
)
from litestar_sse.broadcast.errors import (
    BackendUnavailableError,
    IdempotencyKeyReusedError,
    InvalidTopicError,
    NotPublishedError,
    PublishOutcomeUnknownError,
    TooManyIdempotencyKeysError,
)
from tests.redis_support import RedisProcess, unique_prefix

pytestmark = pytest.mark.anyio


async def kept(broadcaster: Broadcaster, topics: list[str]) -> list[tuple[str, str]]:
    """(id, data) of every kept event of ``topics``, in order."""
    return [
        (item.id, item.data)
        async for item in broadcaster.history(topics)
        if isinstance(item, BroadcastMessage)
    ]


async def test_a_batch_reaches_subscribers_once_in_order_with_the_returned_ids(
    make_backend: BackendFactory,
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        both = EventReader(await broadcaster.open_subscription(["a", "b"]))
        only_b = EventReader(await broadcaster.open_subscription("b"))
        before = await broadcaster.publish("a", "before")
        batch = [
            BatchEvent("a", "one"),
            BatchEvent("b", {"n": 2}, event="update"),
            BatchEvent("a", "three\nlines\nhere", event="text"),
            BatchEvent("c", "nobody listens"),
            BatchEvent("b", 5),
        ]
        ids = await broadcaster.publish_many(batch)
        assert len(set(ids)) == 5
        after = await broadcaster.publish("b", "after")
        events = await both.take(6)
        assert [(e.id, e.event, e.data) for e in events] == [
            (before, "message", "before"),
            (ids[0], "message", "one"),
            (ids[1], "update", '{"n":2}'),
            (ids[2], "text", "three\nlines\nhere"),
            (ids[4], "message", "5"),
            (after, "message", "after"),
        ]
        assert [(e.id, e.data) for e in await only_b.take(3)] == [
            (ids[1], '{"n":2}'),
            (ids[4], "5"),
            (after, "after"),
        ]
        await both.nothing_for(0.2)
        # the ids order the batch among the other events: a resume from any is exact
        again = EventReader(await broadcaster.open_subscription(["a", "b"], last_event_id=ids[1]))
        assert again.subscription.gap is None
        assert [e.id for e in await again.take(3)] == [ids[2], ids[4], after]
        for reader in (both, only_b, again):
            reader.subscription.close()
        assert await broadcaster.publish_many([]) == []
        assert broadcaster.stats().published == 7


async def test_a_resume_from_before_a_batch_replays_it_whole(
    make_backend: BackendFactory,
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        first = await broadcaster.publish("t", "first")
        ids = await broadcaster.publish_many([BatchEvent("t", f"e{i}") for i in range(50)])
        reader = EventReader(await broadcaster.open_subscription("t", last_event_id=first))
        events = await reader.take(50)
        assert [(e.id, e.data) for e in events] == [(ids[i], f"e{i}") for i in range(50)]
        reader.subscription.close()
        assert await kept(broadcaster, ["t"]) == [(first, "first")] + [
            (ids[i], f"e{i}") for i in range(50)
        ]


async def test_per_topic_limits_apply_within_a_batch(make_backend: BackendFactory) -> None:
    backend = make_backend(
        retention=lambda topic: Retention(max_events=3 if topic == "short" else 100)
    )
    async with Broadcaster(backend) as broadcaster:
        ids = await broadcaster.publish_many(
            [BatchEvent("short" if i % 2 else "long", str(i)) for i in range(10)]
        )
        assert await kept(broadcaster, ["short"]) == [(ids[i], str(i)) for i in (5, 7, 9)]
        assert await kept(broadcaster, ["long"]) == [(ids[i], str(i)) for i in range(0, 10, 2)]
        # a resume from an event the batch pushed out of the history is a gap, not a replay
        late = await broadcaster.open_subscription("short", last_event_id=ids[1])
        assert late.gap == "retention"
        late.close()


async def test_idempotency_keys_in_a_batch_store_each_event_once(
    make_backend: BackendFactory,
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        reader = EventReader(await broadcaster.open_subscription("t"))
        stored = await broadcaster.publish("t", "stored", idempotency_key="k0")
        batch = [
            BatchEvent("t", "stored", idempotency_key="k0"),  # a repeat of an earlier publish
            BatchEvent("t", "new", idempotency_key="k1"),
            BatchEvent("t", "new", idempotency_key="k1"),  # a repeat within the batch
            BatchEvent("u", "new", idempotency_key="k1"),  # another topic: another key
            BatchEvent("t", "plain"),
        ]
        ids = await broadcaster.publish_many(batch)
        assert ids[0] == stored
        assert ids[1] == ids[2]
        assert len({stored, ids[1], ids[3], ids[4]}) == 4
        # a retry of the whole batch stores nothing new but the event without a key
        retry = await broadcaster.publish_many(batch)
        assert retry[:4] == ids[:4]
        assert retry[4] != ids[4]
        events = await reader.take(4)
        assert [(e.id, e.data) for e in events] == [
            (stored, "stored"),
            (ids[1], "new"),
            (ids[4], "plain"),
            (retry[4], "plain"),
        ]
        await reader.nothing_for(0.2)
        reader.subscription.close()


@pytest.mark.parametrize("where", ["earlier publish", "same batch"])
async def test_a_key_reused_with_another_event_refuses_the_whole_batch(
    make_backend: BackendFactory, where: str
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        reader = EventReader(await broadcaster.open_subscription(["t", "u"]))
        first = await broadcaster.publish("t", "first", idempotency_key="k")
        batch = [BatchEvent("u", "would be stored"), BatchEvent("t", "other", idempotency_key="k")]
        if where == "same batch":
            batch.insert(1, BatchEvent("t", "claims k", idempotency_key="k2"))
            batch[2] = BatchEvent("t", "another", idempotency_key="k2")
        with pytest.raises(IdempotencyKeyReusedError) as refused:
            await broadcaster.publish_many(batch)
        assert refused.value.status_code == 409
        [event] = await reader.take(1)
        assert event.id == first
        await reader.nothing_for(0.2)  # nothing of the batch
        reader.subscription.close()
        assert await kept(broadcaster, ["t", "u"]) == [(first, "first")]


async def test_new_keys_of_a_batch_that_do_not_fit_store_nothing() -> None:
    async with Broadcaster(MemoryBackend(max_idempotency_keys=3)) as broadcaster:
        await broadcaster.publish("t", "x", idempotency_key="a")
        with pytest.raises(TooManyIdempotencyKeysError):
            await broadcaster.publish_many(
                [BatchEvent("t", str(i), idempotency_key=f"k{i}") for i in range(3)]
            )
        assert [data for _, data in await kept(broadcaster, ["t"])] == ["x"]
        # two new keys fit: the batch is stored, its repeat of "a" included
        ids = await broadcaster.publish_many(
            [BatchEvent("t", "x", idempotency_key="a")]
            + [BatchEvent("t", str(i), idempotency_key=f"k{i}") for i in range(2)]
        )
        assert len(set(ids)) == 3


class Unencodable:
    pass


@pytest.mark.parametrize(
    ("batch", "error", "names"),
    [
        ([BatchEvent("t", "ok"), ("t", "a tuple")], TypeError, "events[1] must be a BatchEvent"),
        ([BatchEvent("t", "ok"), BatchEvent("t", "x", event="gap")], ValueError, "events[1]"),
        ([BatchEvent("t", "ok"), BatchEvent("t", Unencodable())], TypeError, None),
        ([BatchEvent("t", str(i)) for i in range(4)], ValueError, "max_batch=3"),
        ([BatchEvent("t", "x" * 60), BatchEvent("t", "y" * 60)], ValueError, "max_batch_bytes"),
        (BatchEvent("t", "one"), TypeError, "iterable of BatchEvent"),
    ],
    ids=["not-a-batch-event", "reserved-type", "unencodable", "count", "bytes", "not-a-list"],
)
async def test_a_bad_batch_fails_before_anything_is_published(
    make_backend: BackendFactory, batch: Any, error: type[Exception], names: str | None
) -> None:
    broadcaster = Broadcaster(make_backend(), max_batch=3, max_batch_bytes=100)
    async with broadcaster:
        reader = EventReader(await broadcaster.open_subscription("t"))
        with pytest.raises(error, match=None if names is None else re.escape(names)):
            await broadcaster.publish_many(batch)
        await reader.nothing_for(0.2)
        reader.subscription.close()
        assert await kept(broadcaster, ["t"]) == []
        assert broadcaster.stats().published == 0


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"topic": ""}, InvalidTopicError),
        ({"topic": 7}, InvalidTopicError),
        ({"event": "a\nb"}, ValueError),
        ({"event": 3}, TypeError),
        ({"idempotency_key": ""}, ValueError),
    ],
)
def test_a_batch_event_is_checked_when_it_is_made(
    arguments: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        BatchEvent(**{"topic": "t", "data": "x", **arguments})


@pytest.mark.parametrize("setting", ["max_batch", "max_batch_bytes"])
@pytest.mark.parametrize(("value", "error"), [(0, ValueError), (None, TypeError), ("9", TypeError)])
def test_the_batch_bounds_are_checked(setting: str, value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=setting):
        Broadcaster(**{setting: value})


# -- Redis: one round trip for many publishes ----------------------------------------------


async def evalsha_calls(client: Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_concurrent_publishes_share_round_trips_and_keep_their_own_ids(
    redis_process: Callable[..., RedisProcess],
) -> None:
    server = redis_process()
    client = Redis.from_url(server.url)
    async with Broadcaster(RedisStreamBackend(client, prefix=unique_prefix())) as broadcaster:
        reader = EventReader(await broadcaster.open_subscription(["a", "b"]))
        await client.config_resetstat()

        async def publisher(name: str) -> list[str]:
            return [await broadcaster.publish("ab"[i % 2], f"{name}:{i}") for i in range(5)]

        ids = await asyncio.gather(*(publisher(f"p{n}") for n in range(16)))
        # 80 publishes: the first of each round goes alone, the others wait for it together
        calls = await evalsha_calls(client)
        assert calls < 80 / 4, calls
        flat = [event_id for one in ids for event_id in one]
        assert len(set(flat)) == 80
        events = await reader.take(80)
        by_id = {e.id: e.data for e in events}
        assert len(events) == 80
        assert set(by_id) == set(flat)
        for n, one in enumerate(ids):
            # each caller got the id of its own event, and its events are in its order
            assert [by_id[event_id] for event_id in one] == [f"p{n}:{i}" for i in range(5)]
            assert sorted(one, key=[e.id for e in events].index) == one
        reader.subscription.close()
    await client.aclose()


async def test_a_reused_key_refuses_only_its_own_coalesced_publish(
    redis_server: RedisProcess,
) -> None:
    async with Broadcaster(RedisStreamBackend(redis_server.url, prefix=unique_prefix())) as b:
        first = await b.publish("t", "first", idempotency_key="k")
        results = await asyncio.gather(
            b.publish("t", "one"),
            b.publish("t", "two"),
            b.publish("t", "other", idempotency_key="k"),
            b.publish("t", "first", idempotency_key="k"),
            b.publish("t", "three"),
            return_exceptions=True,
        )
        assert isinstance(results[2], IdempotencyKeyReusedError)
        assert results[3] == first
        assert [data for _, data in await kept(b, ["t"])] == ["first", "one", "two", "three"]


async def test_a_publish_cancelled_while_it_waits_is_never_sent(
    redis_server: RedisProcess,
) -> None:
    async with Broadcaster(RedisStreamBackend(redis_server.url, prefix=unique_prefix())) as b:
        sent = asyncio.ensure_future(b.publish("t", "sent"))
        waiting = asyncio.ensure_future(b.publish("t", "cancelled"))
        also = asyncio.ensure_future(b.publish("t", "also sent"))
        await asyncio.sleep(0)  # the first is in flight, the others wait for it
        waiting.cancel()
        await asyncio.gather(sent, also, waiting, return_exceptions=True)
        assert waiting.cancelled()
        assert [data for _, data in await kept(b, ["t"])] == ["sent", "also sent"]


async def test_a_stall_fails_every_coalesced_publish_with_its_own_error(
    redis_process: Callable[..., RedisProcess],
) -> None:
    server = redis_process()
    client = Redis.from_url(server.url)
    backend = RedisStreamBackend(client, prefix=unique_prefix(), publish_timeout=0.5)
    async with Broadcaster(backend) as broadcaster:
        await broadcaster.publish("t", "before")
        with server.stalled():
            results = await asyncio.wait_for(
                asyncio.gather(
                    *(broadcaster.publish("t", f"e{i}", idempotency_key=f"e{i}") for i in range(6)),
                    return_exceptions=True,
                ),
                30,
            )
            batch = await asyncio.wait_for(
                asyncio.gather(
                    broadcaster.publish_many([BatchEvent("t", "b", idempotency_key="b")]),
                    return_exceptions=True,
                ),
                30,
            )
        assert all(isinstance(r, BackendUnavailableError) for r in results + batch), results
        assert isinstance(results[0], PublishOutcomeUnknownError)  # sent, not answered
        assert all(isinstance(r, NotPublishedError) for r in results[1:]), results
        assert len({id(r) for r in results}) == 6  # one exception each
        # retried with their keys once Redis is back: each stored once
        retried = [
            await broadcaster.publish("t", f"e{i}", idempotency_key=f"e{i}") for i in range(6)
        ]
        [again] = await broadcaster.publish_many([BatchEvent("t", "b", idempotency_key="b")])
        stored = await kept(broadcaster, ["t"])
        assert sorted(data for _, data in stored) == sorted(
            ["before", "b"] + [f"e{i}" for i in range(6)]
        )
        assert {event_id for event_id, _ in stored} >= {*retried, again}
    await client.aclose()
