"""Events as values: history, typed subscriptions with a backlog marker, ``until``,
``topic_of``, on both backends (memory and Redis)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import BackendFactory, until
from litestar.exceptions import PermissionDeniedException

from litestar_sse.broadcast import BacklogEnd, Broadcaster, BroadcastMessage, Gap, Retention
from litestar_sse.broadcast.types import MessageItem, MessageSubscription

pytestmark = pytest.mark.anyio


def other_epoch(event_id: str) -> str:
    epoch, _, position = event_id.partition("-")
    return "".join("0" if c != "0" else "1" for c in epoch) + "-" + position


async def take(subscription: MessageSubscription, count: int) -> list[MessageItem]:
    return [await asyncio.wait_for(subscription.__anext__(), 5) for _ in range(count)]


async def test_history_is_every_kept_event_as_values_in_order_page_by_page(
    make_backend: BackendFactory,
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        ids = [
            await broadcaster.publish("a", "one", event="note"),
            await broadcaster.publish("b", {"n": 2}),
            await broadcaster.publish("c", "not read"),
            await broadcaster.publish("a", "three\r\nlines\nhere"),
            await broadcaster.publish("b", 4),
        ]
        everything = [item async for item in broadcaster.history(["a", "b"], page_size=2)]
        assert everything == [
            BroadcastMessage("a", ids[0], "note", "one"),
            BroadcastMessage("b", ids[1], None, '{"n":2}'),
            BroadcastMessage("a", ids[3], None, "three\nlines\nhere"),
            BroadcastMessage("b", ids[4], None, "4"),
        ]
        after = [item async for item in broadcaster.history(["a", "b"], after=ids[1])]
        assert after == everything[2:]
        bounded = broadcaster.history(["b", "a"], after=ids[0], until=ids[3], page_size=1)
        assert [item async for item in bounded] == everything[1:3]
        assert [item async for item in broadcaster.history("a", after=ids[4])] == []


async def test_history_says_where_events_cannot_be_read(make_backend: BackendFactory) -> None:
    backend = make_backend(retention=Retention(max_events=2))
    async with Broadcaster(backend) as broadcaster:
        before = await broadcaster.publish("a", "0")
        first = await broadcaster.publish("a", "1")
        kept = [await broadcaster.publish("a", str(n)) for n in (2, 3)]
        in_b = await broadcaster.publish("b", "b")

        async def read(after: str) -> list[Any]:
            return [item async for item in broadcaster.history(["a", "b"], after=after)]

        # "1" was trimmed: a reader that had it misses nothing; one that had only "0" does
        assert [item.data for item in await read(first)] == ["2", "3", "b"]  # type: ignore[union-attr]
        assert await read(before) == [
            Gap("retention", ("a",)),
            BroadcastMessage("b", in_b, None, "b"),
        ]
        assert await read("not-ours!") == [Gap("invalid", ("a", "b"))]
        assert await read(other_epoch(kept[0])) == [Gap("epoch", ("a", "b"))]


async def test_a_typed_subscription_replays_marks_the_backlog_end_then_goes_live(
    make_backend: BackendFactory,
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        start = await broadcaster.publish("a", "seen")
        missed = [await broadcaster.publish(topic, f"missed {topic}") for topic in "abab"]
        async with await broadcaster.subscribe_messages(
            ["a", "b"], last_event_id=start, page_size=1
        ) as subscription:
            first = await take(subscription, 1)
            # published while the backlog is read: after the marker, once
            during = await broadcaster.publish("b", "during")
            rest = await take(subscription, 4)
            live = await broadcaster.publish("a", "live")
            after = await take(subscription, 2)
        items = first + rest + after
        assert items == [
            BroadcastMessage(topic, event_id, None, f"missed {topic}")
            for topic, event_id in zip("abab", missed, strict=True)
        ] + [
            BacklogEnd(subscription.resumed_from),
            BroadcastMessage("b", during, None, "during"),
            BroadcastMessage("a", live, None, "live"),
        ]
        assert subscription.resumed_from == missed[-1]
        assert subscription.closed


async def test_without_an_id_the_backlog_is_only_the_marker(make_backend: BackendFactory) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        await broadcaster.publish("a", "old")
        subscription = await broadcaster.subscribe_messages("a")
        marker = await take(subscription, 1)
        assert marker == [BacklogEnd(subscription.resumed_from)]
        new = await broadcaster.publish("a", "new")
        assert await take(subscription, 1) == [BroadcastMessage("a", new, None, "new")]
        await subscription.aclose()


async def test_until_ends_the_subscription_right_after_the_chosen_event(
    make_backend: BackendFactory,
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        start = await broadcaster.publish("job", "queued")
        await broadcaster.publish("job", "step 1")

        def is_result(message: BroadcastMessage) -> bool:
            return message.event == "result"

        live = await broadcaster.subscribe_messages("job", last_event_id=start, until=is_result)
        await broadcaster.publish("job", "step 2")
        result = await broadcaster.publish("job", "done", event="result")
        await broadcaster.publish("job", "after the result")
        items = [item async for item in live]
        assert [getattr(item, "data", None) for item in items] == ["step 1", None, "step 2", "done"]
        assert isinstance(items[-1], BroadcastMessage)
        assert items[-1].id == result
        assert live.closed
        assert broadcaster.stats().subscribers == {}

        # the chosen event is in the backlog: the subscription ends there, never goes live
        replayed = await broadcaster.subscribe_messages("job", last_event_id=start, until=is_result)
        items = [item async for item in replayed]
        assert [getattr(item, "data", None) for item in items] == ["step 1", "step 2", "done"]
        assert broadcaster.stats().subscribers == {}


async def test_live_messages_of_several_topics_carry_their_topic(
    make_backend: BackendFactory,
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        subscription = await broadcaster.subscribe_messages(["x", "y", "z"])
        assert isinstance((await take(subscription, 1))[0], BacklogEnd)
        sent = [(topic, await broadcaster.publish(topic, topic * 2)) for topic in "yxzzy"]
        got = await take(subscription, len(sent))
        assert got == [BroadcastMessage(t, i, None, t * 2) for t, i in sent]
        subscription.close()


async def test_a_slow_typed_reader_is_told_what_it_skipped(make_backend: BackendFactory) -> None:
    async with Broadcaster(make_backend(), max_queue=2, overflow="drop_oldest") as broadcaster:
        subscription = await broadcaster.subscribe_messages("fast")
        await take(subscription, 1)
        ids = [await broadcaster.publish("fast", str(n)) for n in range(5)]
        await until(lambda: broadcaster.stats().received == 5)  # all queued, none taken
        got = await take(subscription, 3)
        assert got == [
            Gap("overflow", dropped=3),
            BroadcastMessage("fast", ids[3], None, "3"),
            BroadcastMessage("fast", ids[4], None, "4"),
        ]
        subscription.close()


async def test_topic_of_names_the_topic_of_a_known_id_only(make_backend: BackendFactory) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        ids = {topic: await broadcaster.publish(topic, "x") for topic in ("a", "b", "a:2")}
        for topic in ("b", "a", "a"):
            await broadcaster.publish(topic, "later")
        for topic, event_id in ids.items():
            assert await broadcaster.topic_of(event_id) == topic
        epoch, _, position = ids["b"].partition("-")
        for unknown in ("", "garbage", other_epoch(ids["b"]), f"{epoch}-9{position}"):
            assert await broadcaster.topic_of(unknown) is None
        with pytest.raises(TypeError):
            await broadcaster.topic_of(42)  # type: ignore[arg-type]


async def test_reads_ask_authorize_like_a_subscription(make_backend: BackendFactory) -> None:
    asked: list[tuple[object, str]] = []

    def authorize(connection: object, topic: str) -> bool:
        asked.append((connection, topic))
        return not topic.startswith("private:")

    async with Broadcaster(make_backend(), authorize=authorize) as broadcaster:
        secret = await broadcaster.publish("private:alice", "secret")
        public = await broadcaster.publish("public", "hello")
        # a forged or guessed id names no topic the caller could not subscribe to
        assert await broadcaster.topic_of(secret) is None
        assert await broadcaster.topic_of(public) == "public"
        with pytest.raises(PermissionDeniedException):
            [item async for item in broadcaster.history("private:alice")]
        with pytest.raises(PermissionDeniedException):
            await broadcaster.subscribe_messages("private:alice", last_event_id=public)
        assert {topic for _, topic in asked} == {"private:alice", "public"}


async def test_bad_arguments_fail_at_the_call(make_backend: BackendFactory) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        with pytest.raises(ValueError, match="page_size"):
            broadcaster.history("a", page_size=0)
        with pytest.raises(TypeError, match="after"):
            broadcaster.history("a", after=5)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="topic"):
            broadcaster.history("")
        with pytest.raises(TypeError, match="until"):
            await broadcaster.subscribe_messages("a", until="done")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="until"):
            [item async for item in broadcaster.history("a", until="nope")]
        assert broadcaster.stats().subscribers == {}
    with pytest.raises(ValueError, match="idle_ttl"):
        Retention(idle_ttl=0)
    with pytest.raises(TypeError, match="idle_ttl"):
        Retention(idle_ttl="60")  # type: ignore[arg-type]
