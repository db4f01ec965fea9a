"""Publish, subscribe, resume and gaps: every behaviour on both backends (memory and Redis)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
from collections.abc import Callable

import msgspec
import pydantic
import pytest
from conftest import BackendFactory, EventReader, until

from litestar_sse.broadcast import Broadcaster, MemoryBackend, Retention
from litestar_sse.broadcast.types import Subscription
from litestar_sse.codec._decoder import DecodedEvent

pytestmark = pytest.mark.anyio

Reader = Callable[[Subscription], EventReader]


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Note(msgspec.Struct):
    text: str


class User(pydantic.BaseModel):
    name: str


def data_of(events: list[DecodedEvent]) -> list[str]:
    return [event.data for event in events]


def gap_of(event: DecodedEvent) -> dict[str, object]:
    assert event.event == "gap", event
    return json.loads(event.data)  # type: ignore[no-any-return]


def other_epoch(event_id: str) -> str:
    epoch, _, position = event_id.partition("-")
    flipped = "".join("0" if c != "0" else "1" for c in epoch)
    return f"{flipped}-{position}"


async def test_publish_reaches_subscribers_with_one_shared_id(
    make_backend: BackendFactory, reader_of: Reader
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        first = reader_of(await broadcaster.open_subscription("news"))
        second = reader_of(await broadcaster.open_subscription(["news"]))
        event_id = await broadcaster.publish("news", "hello", event="greeting")
        for reader in (first, second):
            (event,) = await reader.take(1)
            assert event == DecodedEvent(data="hello", event="greeting", id=event_id)
        # encoded once: every subscriber got the very same bytes
        assert first.chunks == second.chunks


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("text", "text"),
        ("two\nlines", "two\nlines"),
        (b"bytes \xc3\xa9", "bytes \u00e9"),
        (42, "42"),
        ({"a": [1, 2]}, '{"a":[1,2]}'),
        (Point(1, 2), '{"x":1,"y":2}'),
        (Note("hi"), '{"text":"hi"}'),
        (User(name="ann"), '{"name":"ann"}'),
        ([1, "two"], '[1,"two"]'),
    ],
)
async def test_data_is_encoded_like_the_core(
    make_backend: BackendFactory, reader_of: Reader, data: object, expected: str
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        reader = reader_of(await broadcaster.open_subscription("t"))
        await broadcaster.publish("t", data)
        (event,) = await reader.take(1)
        assert event.data == expected


async def test_topics_are_separate_and_multi_topic_keeps_publish_order(
    make_backend: BackendFactory, reader_of: Reader
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        only_a = reader_of(await broadcaster.open_subscription("a"))
        both = reader_of(await broadcaster.open_subscription(["a", "b"]))
        sequence = ["a", "b", "b", "a", "c", "b", "a"]
        for index, topic in enumerate(sequence):
            await broadcaster.publish(topic, f"{topic}{index}")
        expected_both = [f"{t}{i}" for i, t in enumerate(sequence) if t != "c"]
        assert data_of(await both.take(len(expected_both))) == expected_both
        expected_a = [f"{t}{i}" for i, t in enumerate(sequence) if t == "a"]
        assert data_of(await only_a.take(len(expected_a))) == expected_a
        await only_a.nothing_for(0.05)


async def test_resume_replays_exactly_the_missed_events_then_live(
    make_backend: BackendFactory, reader_of: Reader
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        reader = reader_of(await broadcaster.open_subscription(["a", "b"]))
        await broadcaster.publish("a", "a0")
        await broadcaster.publish("b", "b1")
        seen = await reader.take(2)
        reader.subscription.close()
        for index in range(2, 6):
            await broadcaster.publish("ab"[index % 2], f"{'ab'[index % 2]}{index}")
        await broadcaster.publish("c", "other")
        resumed = await broadcaster.open_subscription(["a", "b"], last_event_id=seen[-1].id)
        assert resumed.gap is None
        assert resumed.resumed_from == seen[-1].id
        again = reader_of(resumed)
        assert data_of(await again.take(4)) == ["a2", "b3", "a4", "b5"]
        await broadcaster.publish("a", "live")
        assert data_of(await again.take(1)) == ["live"]


async def test_fresh_subscription_starts_after_the_newest_event(
    make_backend: BackendFactory, reader_of: Reader
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        await broadcaster.publish("t", "old")
        newest = await broadcaster.publish("other", "old too")
        subscription = await broadcaster.open_subscription("t")
        assert subscription.resumed_from == newest
        assert subscription.gap is None
        reader = reader_of(subscription)
        await broadcaster.publish("t", "new")
        assert data_of(await reader.take(1)) == ["new"]


@pytest.mark.parametrize("seed", range(4))
async def test_resume_is_exact_at_the_seam_under_concurrent_publishing(
    make_backend: BackendFactory, seed: int
) -> None:
    """A client that keeps reconnecting while events pour in sees each event once, in order."""
    rng = random.Random(seed)
    async with Broadcaster(make_backend(retention=Retention(max_events=None))) as broadcaster:
        published: list[tuple[str, str, str]] = []
        done = asyncio.Event()

        async def publish() -> None:
            for index in range(300):
                topic = rng.choice("abc")
                event_id = await broadcaster.publish(topic, f"{topic}{index}")
                published.append((topic, event_id, f"{topic}{index}"))
                await asyncio.sleep(0)
                if rng.random() < 0.05:
                    await asyncio.sleep(0.002)
            done.set()

        received: list[tuple[str, str]] = []

        def complete() -> bool:
            return done.is_set() and len(received) == sum(t != "c" for t, _, _ in published)

        async def next_events(reader: EventReader) -> list[DecodedEvent]:
            if done.is_set():
                return await reader.read_chunk()
            # Until the publisher is done, the last events may already be here: wait for
            # either more events or the end of publishing. The read is a task of its own, not
            # under wait_for: on Python 3.11, wait_for drops a result that arrives as it is
            # cancelled, and the test then lost the events of that chunk.
            chunk = asyncio.ensure_future(reader.subscription.__anext__())
            finished = asyncio.ensure_future(done.wait())
            await asyncio.wait({chunk, finished}, return_when=asyncio.FIRST_COMPLETED)
            finished.cancel()
            if not chunk.done():
                chunk.cancel()
                await asyncio.gather(chunk, return_exceptions=True)
            # A read that completed as it was cancelled still holds its events.
            return [] if chunk.cancelled() else reader.decode(chunk.result())

        subscription = await broadcaster.open_subscription(["a", "b"])
        publisher = asyncio.create_task(publish())
        reconnects = 0
        while True:
            reader = EventReader(subscription)
            for _ in range(rng.randint(1, 4)):
                if complete():
                    break
                events = await next_events(reader)
                received.extend((event.id, event.data) for event in events)
                assert not any(event.event == "gap" for event in events)
            subscription.close()
            if complete():
                break
            if rng.random() < 0.5:
                await asyncio.sleep(rng.random() * 0.005)
            last = received[-1][0] if received else subscription.resumed_from
            subscription = await broadcaster.open_subscription(["a", "b"], last_event_id=last)
            assert subscription.gap is None
            reconnects += 1
        await publisher
        expected = [(event_id, data) for topic, event_id, data in published if topic != "c"]
        assert received == expected
        assert reconnects >= 5


async def test_retention_by_count_gives_a_gap_then_live(
    make_backend: BackendFactory, reader_of: Reader
) -> None:
    async with Broadcaster(make_backend(retention=Retention(max_events=3))) as broadcaster:
        ids = [await broadcaster.publish("t", f"e{i}") for i in range(6)]
        # e3, e4, e5 are kept: resuming after e2 is still exact
        exact = reader_of(await broadcaster.open_subscription("t", last_event_id=ids[2]))
        assert exact.subscription.gap is None
        assert data_of(await exact.take(3)) == ["e3", "e4", "e5"]

        subscription = await broadcaster.open_subscription("t", last_event_id=ids[1])
        assert subscription.gap == "retention"
        assert subscription.gap_topics == ("t",)
        assert subscription.resumed_from == ids[-1]
        reader = reader_of(subscription)
        (gap,) = await reader.take(1)
        assert gap_of(gap) == {"reason": "retention", "topics": ["t"]}
        assert gap.id == ids[-1]
        live = await broadcaster.publish("t", "live")
        assert await reader.take(1) == [DecodedEvent(data="live", id=live)]


async def test_retention_by_age_gives_a_gap(
    make_backend: BackendFactory, reader_of: Reader
) -> None:
    async with Broadcaster(make_backend(retention=Retention(max_age=0.2))) as broadcaster:
        first = await broadcaster.publish("t", "old")
        await broadcaster.publish("t", "old too")
        fresh = reader_of(await broadcaster.open_subscription("t", last_event_id=first))
        assert data_of(await fresh.take(1)) == ["old too"]
        await asyncio.sleep(0.3)
        subscription = await broadcaster.open_subscription("t", last_event_id=first)
        assert subscription.gap == "retention"
        (gap,) = await reader_of(subscription).take(1)
        assert gap_of(gap)["reason"] == "retention"


async def test_multi_topic_resume_replays_kept_topics_and_reports_the_others(
    make_backend: BackendFactory, reader_of: Reader
) -> None:
    def retention(topic: str) -> Retention:
        return Retention(max_events=1 if topic == "short" else 100)

    async with Broadcaster(make_backend(retention=retention)) as broadcaster:
        start = await broadcaster.publish("long", "l0")
        await broadcaster.publish("short", "s1")
        await broadcaster.publish("long", "l2")
        await broadcaster.publish("short", "s3")
        head = await broadcaster.publish("long", "l4")
        subscription = await broadcaster.open_subscription(["short", "long"], last_event_id=start)
        assert subscription.gap == "retention"
        assert subscription.gap_topics == ("short",)
        events = await reader_of(subscription).take(3)
        assert data_of(events[:2]) == ["l2", "l4"]
        assert gap_of(events[2]) == {"reason": "retention", "topics": ["short"]}
        assert events[2].id == head


async def test_an_id_from_another_epoch_gives_a_gap(
    make_backend: BackendFactory, reader_of: Reader
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        event_id = await broadcaster.publish("t", "x")
        subscription = await broadcaster.open_subscription("t", last_event_id=other_epoch(event_id))
        assert subscription.gap == "epoch"
        reader = reader_of(subscription)
        (gap,) = await reader.take(1)
        assert gap_of(gap) == {"reason": "epoch", "topics": ["t"]}
        assert gap.id == event_id
        await broadcaster.publish("t", "live")
        assert data_of(await reader.take(1)) == ["live"]


@pytest.mark.parametrize(
    "garbage",
    [
        "nonsense",
        "42",
        "-",
        "-1",
        "abc-",
        "ABCDEF01-1",
        "zz-1",
        "a-01",
        "a-1-2-3",
        "a-+1",
        "a- 1",
        "a-99999999999999999999999999999",
        "a-1-99999999999",
        "\u00e9t\u00e9-1",
        "x" * 2000,
    ],
)
async def test_garbage_last_event_id_is_a_gap_never_an_error(
    make_backend: BackendFactory, reader_of: Reader, garbage: str
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        await broadcaster.publish("t", "before")
        subscription = await broadcaster.open_subscription("t", last_event_id=garbage)
        assert subscription.gap in ("invalid", "epoch")
        reader = reader_of(subscription)
        (gap,) = await reader.take(1)
        assert gap_of(gap)["reason"] == subscription.gap
        await broadcaster.publish("t", "live")
        assert data_of(await reader.take(1)) == ["live"]


async def test_an_id_from_the_future_is_invalid(
    make_backend: BackendFactory, reader_of: Reader
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        event_id = await broadcaster.publish("t", "x")
        epoch, _, position = event_id.partition("-")
        future = f"{epoch}-{int(position) + 1000}" if position.isdigit() else f"{epoch}-9{position}"
        subscription = await broadcaster.open_subscription("t", last_event_id=future)
        assert subscription.gap == "invalid"
        assert subscription.resumed_from == event_id


async def test_empty_last_event_id_means_none(make_backend: BackendFactory) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        head = await broadcaster.publish("t", "x")
        subscription = await broadcaster.open_subscription("t", last_event_id="")
        assert (subscription.gap, subscription.resumed_from) == (None, head)
        subscription.close()


async def test_stats_count_subscribers_and_events(
    make_backend: BackendFactory, reader_of: Reader
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        readers = [reader_of(await broadcaster.open_subscription("a")) for _ in range(3)]
        both = reader_of(await broadcaster.open_subscription(["a", "b"]))
        assert broadcaster.stats().subscribers == {"a": 4, "b": 1}
        for index in range(5):
            await broadcaster.publish("a", index)
        await broadcaster.publish("b", "b")
        for reader in readers:
            await reader.take(5)
        await both.take(6)
        stats = broadcaster.stats()
        assert (stats.published, stats.delivered, stats.dropped) == (6, 3 * 5 + 6, 0)
        assert stats.received == 6
        both.subscription.close()
        assert broadcaster.stats().subscribers == {"a": 3}


async def test_close_ends_subscriptions_after_what_they_hold(make_backend: BackendFactory) -> None:
    broadcaster = Broadcaster(make_backend())
    await broadcaster.start()
    reader = EventReader(await broadcaster.open_subscription("t"))
    await broadcaster.publish("t", "last words")
    await until(lambda: broadcaster.stats().received == 1)  # the Redis reader fans it out
    await broadcaster.close()
    assert data_of(await reader.take(1)) == ["last words"]
    assert await reader.read_chunk() == []
    assert reader.ended
    with pytest.raises(RuntimeError):
        await broadcaster.publish("t", "too late")
    await broadcaster.close()  # idempotent


async def test_a_closed_broadcaster_starts_again_and_resumes(
    make_backend: BackendFactory,
) -> None:
    # An app's lifespan may run more than once (test clients do); the plugin starts and closes
    # the broadcaster in each. In between, publishing fails instead of restarting it.
    broadcaster = Broadcaster(make_backend())
    await broadcaster.start()
    seen = await broadcaster.publish("t", "before")
    await broadcaster.close()
    with pytest.raises(RuntimeError, match="closed"):
        await broadcaster.publish("t", "while closed")
    await broadcaster.start()
    missed = await broadcaster.publish("t", "missed")
    reader = EventReader(await broadcaster.open_subscription("t", last_event_id=seen))
    live = await broadcaster.publish("t", "live")
    events = await reader.take(2)
    assert [(e.id, e.data) for e in events] == [(missed, "missed"), (live, "live")]
    await broadcaster.close()
    assert await reader.read_chunk() == []


async def test_dropping_an_unread_subscription_unsubscribes(make_backend: BackendFactory) -> None:
    import gc

    async with Broadcaster(make_backend()) as broadcaster:
        subscription = await broadcaster.open_subscription(["a", "b"])
        assert broadcaster.stats().subscribers == {"a": 1, "b": 1}
        del subscription
        gc.collect()
        assert broadcaster.stats().subscribers == {}


async def test_invalid_arguments_are_refused(make_backend: BackendFactory) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        with pytest.raises(ValueError, match="topic"):
            await broadcaster.publish("", "x")
        with pytest.raises(ValueError, match="CR or LF"):
            await broadcaster.publish("t", "x", event="a\nb")
        with pytest.raises(TypeError, match="None"):
            await broadcaster.publish("t", None)
        with pytest.raises(ValueError, match="at least one topic"):
            await broadcaster.open_subscription([])
        with pytest.raises(ValueError, match="topic"):
            await broadcaster.open_subscription(["a", 1])  # type: ignore[list-item]
        assert broadcaster.stats().subscribers == {}


async def test_slow_subscriber_is_disconnected_and_resumes_losslessly(
    make_backend: BackendFactory, reader_of: Reader
) -> None:
    async with Broadcaster(make_backend(), max_queue=5) as broadcaster:
        subscription = await broadcaster.open_subscription("t")
        ids = [await broadcaster.publish("t", index) for index in range(20)]
        await until(lambda: broadcaster.stats().received == 20)
        reader = reader_of(subscription)
        assert await reader.read_chunk() == []
        assert reader.ended
        stats = broadcaster.stats()
        assert (stats.disconnected, stats.dropped, stats.subscribers) == (1, 20, {})
        # the client reconnects from the last id it got: nothing is lost within retention
        again = reader_of(
            await broadcaster.open_subscription("t", last_event_id=subscription.resumed_from)
        )
        events = await again.take(20)
        assert [event.id for event in events] == ids


async def test_slow_subscriber_with_drop_oldest_skips_with_a_gap(
    make_backend: BackendFactory, reader_of: Reader
) -> None:
    async with Broadcaster(make_backend(), max_queue=5, overflow="drop_oldest") as broadcaster:
        reader = reader_of(await broadcaster.open_subscription(["a", "b"]))
        for index in range(20):
            await broadcaster.publish("ab"[index % 2], index)
        await until(lambda: broadcaster.stats().received == 20)
        events = await reader.take(11)
        assert gap_of(events[0]) == {"reason": "overflow", "dropped": 10}
        assert data_of(events[1:]) == [str(index) for index in range(10, 20)]
        assert broadcaster.stats().dropped == 10
        await broadcaster.publish("a", "live")
        assert data_of(await reader.take(1)) == ["live"]


async def test_a_slow_subscriber_stuck_in_a_send_is_found_without_reading(
    make_backend: BackendFactory,
) -> None:
    async with Broadcaster(make_backend(), max_queue=4) as broadcaster:
        stuck = await broadcaster.open_subscription("t")
        cut: list[bool] = []
        stuck.on_overflow = lambda: cut.append(True)
        for index in range(40):
            await broadcaster.publish("t", index)
        await until(lambda: bool(cut))
        assert stuck.closed
        assert broadcaster.stats().disconnected == 1


async def test_idle_topics_expire_entirely_and_resumes_report_a_gap(
    make_backend: BackendFactory, reader_of: Reader
) -> None:
    async with Broadcaster(make_backend(retention=Retention(max_age=0.1))) as broadcaster:
        before = await broadcaster.publish("idle", "old")
        await broadcaster.publish("idle", "old too")
        await asyncio.sleep(1.3)  # Redis drops the key 1 s after max_age
        for index in range(4):  # publishing elsewhere sweeps the in-memory history
            await broadcaster.publish(f"busy{index}", "x")
        backend = broadcaster.backend
        if isinstance(backend, MemoryBackend):
            assert "idle" not in backend._logs
        else:
            assert not await backend.redis.exists(backend.keys.topic("idle"))  # type: ignore[attr-defined]
        subscription = await broadcaster.open_subscription("idle", last_event_id=before)
        assert subscription.gap == "retention"
        subscription.close()
        # a new event on the topic does not hide the expired ones
        await broadcaster.publish("idle", "new")
        subscription = await broadcaster.open_subscription("idle", last_event_id=before)
        assert subscription.gap == "retention"
        subscription.close()
