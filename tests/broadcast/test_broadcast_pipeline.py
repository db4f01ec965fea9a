"""Every read of a broadcaster takes the one subscription pipeline, and its guarantees hold
on every path.

Before, expiry and revocation were enforced only by ``subscribe()``: streams built on
``open_subscription`` or ``subscribe_messages`` outlived their authorization; a re-check whose
``authorize`` hung disabled the expiry; ``Authorization(expires_at=nan)`` busy-looped; a client
choosing event types could forge ``gap`` / ``unauthorized`` events; the in-memory ``topic_of``
walked every topic for an old or forged id; and ``subscribe()`` without ``connection=`` failed
silently.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import ASGIStream, BackendFactory, EventReader
from litestar import Litestar, Request, get
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromQuery

from litestar_sse import ServerSentEvent, ServerSentEventMessage
from litestar_sse.broadcast import (
    Authorization,
    AuthorizationEnded,
    BacklogEnd,
    Broadcaster,
    BroadcastMessage,
    MemoryBackend,
)

pytestmark = pytest.mark.anyio


def expiring(seconds: float) -> Any:
    def authorize(connection: Any, topic: str) -> Authorization:
        return Authorization(expires_at=time.time() + seconds)

    return authorize


async def next_item(subscription: Any, timeout: float = 5.0) -> Any:
    return await asyncio.wait_for(anext(subscription), timeout)


# -- finding 2: open_subscription and subscribe_messages end with their authorization -------


async def test_a_typed_subscription_ends_at_its_expiry(make_backend: BackendFactory) -> None:
    async with Broadcaster(make_backend(), authorize=expiring(0.4)) as broadcaster:
        subscription = await broadcaster.subscribe_messages("t")
        assert isinstance(await next_item(subscription), BacklogEnd)
        await broadcaster.publish("t", "while allowed")
        item = await next_item(subscription)
        assert isinstance(item, BroadcastMessage)
        assert item.data == "while allowed"
        started = time.monotonic()
        ended = await next_item(subscription)
        assert ended == AuthorizationEnded("expired")
        assert time.monotonic() - started < 3
        await broadcaster.publish("t", "after the expiry")
        with pytest.raises(StopAsyncIteration):
            await next_item(subscription)
        assert broadcaster.stats().subscribers == {}


async def test_a_typed_subscription_ends_during_its_backlog(
    make_backend: BackendFactory,
) -> None:
    # The backlog is read after the expiry: nothing of it is yielded any more.
    async with Broadcaster(make_backend(), authorize=expiring(0.2)) as broadcaster:
        first = await broadcaster.publish("t", 0)
        for n in range(1, 5):
            await broadcaster.publish("t", n)
        subscription = await broadcaster.subscribe_messages("t", last_event_id=first, page_size=1)
        assert (await next_item(subscription)).data == "1"
        await asyncio.sleep(0.4)
        assert await next_item(subscription) == AuthorizationEnded("expired")
        with pytest.raises(StopAsyncIteration):
            await next_item(subscription)


async def test_a_byte_subscription_ends_at_its_expiry(make_backend: BackendFactory) -> None:
    async with Broadcaster(make_backend(), authorize=expiring(0.4)) as broadcaster:
        reader = EventReader(await broadcaster.open_subscription("t"))
        await broadcaster.publish("t", "while allowed")
        assert [e.data for e in await reader.take(1)] == ["while allowed"]
        events = await reader.read_chunk(timeout=3)
        assert [(e.event, json.loads(e.data)) for e in events] == [
            ("unauthorized", {"reason": "expired"})
        ]
        await broadcaster.publish("t", "after the expiry")
        assert await reader.read_chunk() == []
        assert reader.ended


@pytest.mark.parametrize("api", ["open_subscription", "subscribe_messages"])
async def test_a_revocation_ends_every_kind_of_subscription(
    make_backend: BackendFactory, api: str
) -> None:
    revoked: set[str] = set()

    def authorize(connection: Any, topic: str) -> bool:
        return topic not in revoked

    async with Broadcaster(
        make_backend(), authorize=authorize, reauthorize_every=0.05
    ) as broadcaster:
        if api == "open_subscription":
            reader = EventReader(await broadcaster.open_subscription("t"))
            await broadcaster.publish("t", "one")
            assert [e.data for e in await reader.take(1)] == ["one"]
            revoked.add("t")
            events = await reader.read_chunk(timeout=3)
            assert [(e.event, e.data) for e in events] == [("unauthorized", '{"reason":"revoked"}')]
            assert await reader.read_chunk() == []
        else:
            subscription = await broadcaster.subscribe_messages("t")
            assert isinstance(await next_item(subscription), BacklogEnd)
            revoked.add("t")
            assert await next_item(subscription, 3) == AuthorizationEnded("revoked")
            with pytest.raises(StopAsyncIteration):
                await next_item(subscription)
        assert broadcaster.stats().subscribers == {}


def streaming_app(broadcaster: Broadcaster) -> Litestar:
    """Streams built on the two other subscription APIs, as an app writes them."""

    @get("/bytes")
    async def raw(request: Request[Any, Any, Any]) -> ServerSentEvent:
        return ServerSentEvent(await broadcaster.open_subscription("t", connection=request))

    @get("/values")
    async def values(request: Request[Any, Any, Any]) -> ServerSentEvent:
        subscription = await broadcaster.subscribe_messages("t", connection=request)

        async def items() -> AsyncIterator[ServerSentEventMessage]:
            async with subscription:
                async for item in subscription:
                    if isinstance(item, BroadcastMessage):
                        yield ServerSentEventMessage(data=item.data, id=item.id)
                    elif isinstance(item, AuthorizationEnded):
                        yield ServerSentEventMessage(event="unauthorized", data=item.reason)

        return ServerSentEvent(items())

    return Litestar([raw, values])


@pytest.mark.parametrize("path", ["/bytes", "/values"])
async def test_no_event_published_after_the_expiry_reaches_the_client(
    make_backend: BackendFactory, path: str
) -> None:
    # Before: such streams went on for as long as the client stayed (49 events past it).
    expires_at = math.inf

    def authorize(connection: Any, topic: str) -> Authorization:
        return Authorization(expires_at=expires_at)

    published: dict[str, float] = {}
    async with Broadcaster(make_backend(), authorize=authorize) as broadcaster:
        app = streaming_app(broadcaster)  # built first: it takes a while
        expires_at = time.time() + 0.4
        async with ASGIStream(app, path) as stream:
            assert stream.status == 200
            while not stream.task_done and time.time() < expires_at + 3:
                published[await broadcaster.publish("t", "tick")] = time.time()
                await asyncio.sleep(0.02)
            assert stream.task_done
        assert stream.events[-1].event == "unauthorized"
        delivered = [e.id for e in stream.events[:-1]]
        assert len(delivered) >= 5
        assert all(published[event_id] < expires_at for event_id in delivered)
        assert broadcaster.stats().subscribers == {}


async def test_a_history_read_stops_at_the_expiry() -> None:
    async with Broadcaster(authorize=expiring(0.2)) as broadcaster:
        for n in range(3):
            await broadcaster.publish("t", n)
        history = broadcaster.history("t", page_size=1)
        assert (await anext(history)).data == "0"
        await asyncio.sleep(0.3)
        with pytest.raises(PermissionDeniedException):
            async for _ in history:
                pass


# -- finding 4: a hanging re-check neither postpones the expiry nor keeps the stream --------


def make_app(broadcaster: Broadcaster) -> Litestar:
    @get("/events")
    async def events(request: Request[Any, Any, Any], topic: FromQuery[str]) -> Any:
        return await broadcaster.subscribe(topic, connection=request)

    return Litestar([events])


def hanging_after_first(expires_in: float) -> Any:
    asked: set[str] = set()

    async def authorize(connection: Any, topic: str) -> Authorization:
        if topic in asked:
            await asyncio.Event().wait()  # a re-check that never answers
        asked.add(topic)
        return Authorization(expires_at=time.time() + expires_in)

    return authorize


async def test_the_expiry_has_its_own_clock_while_a_recheck_hangs(
    make_backend: BackendFactory,
) -> None:
    # Before, the watch awaited the hanging re-check and checked the expiry only between
    # sleeps: the stream stayed open past expires_at for as long as authorize hung.
    authorize = hanging_after_first(0.5)
    async with (
        Broadcaster(make_backend(), authorize=authorize, reauthorize_every=0.1) as broadcaster,
        ASGIStream(make_app(broadcaster), "/events", query="topic=t") as stream,
    ):
        assert stream.status == 200
        started = time.monotonic()
        await stream.wait_for(lambda: stream.task_done, timeout=4)
        assert time.monotonic() - started < 4
        last = stream.events[-1]
        assert (last.event, json.loads(last.data)) == ("unauthorized", {"reason": "expired"})
        assert [e.event for e in stream.events].count("unauthorized") == 1


async def test_a_recheck_that_does_not_answer_in_time_revokes(
    make_backend: BackendFactory,
) -> None:
    async with Broadcaster(
        make_backend(),
        authorize=hanging_after_first(3600),
        reauthorize_every=0.05,
        authorize_timeout=0.2,
    ) as broadcaster:
        async with ASGIStream(make_app(broadcaster), "/events", query="topic=t") as stream:
            assert stream.status == 200
            await stream.wait_for(lambda: stream.task_done, timeout=4)
            last = stream.events[-1]
            assert (last.event, json.loads(last.data)) == ("unauthorized", {"reason": "revoked"})
        subscription = await broadcaster.subscribe_messages("u")  # first answer: allowed
        assert isinstance(await next_item(subscription), BacklogEnd)
        assert await next_item(subscription, 3) == AuthorizationEnded("revoked")


async def test_an_authorize_that_does_not_answer_in_time_refuses() -> None:
    async def authorize(connection: Any, topic: str) -> bool:
        await asyncio.Event().wait()
        return True

    async with Broadcaster(authorize=authorize, authorize_timeout=0.05) as broadcaster:
        with pytest.raises(PermissionDeniedException):
            await broadcaster.open_subscription("t")
        assert await broadcaster.topic_of(await broadcaster.publish("t", 1)) is None
        with pytest.raises(PermissionDeniedException):
            await anext(broadcaster.history("t"))
        assert broadcaster.stats().subscribers == {}


# -- finding 12: non-finite expiries ---------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 10**400])
def test_a_non_finite_expiry_is_refused(value: Any) -> None:
    with pytest.raises(ValueError, match=r"finite.*expires_at=None"):
        Authorization(expires_at=value)


def test_finite_expiries_and_none_are_accepted() -> None:
    assert Authorization(expires_at=1e12).epoch() == 1e12
    assert Authorization(expires_at=2_000_000_000).epoch() == 2e9
    assert Authorization().epoch() is None
    with pytest.raises(TypeError):
        Authorization(expires_at=True)
    with pytest.raises(TypeError, match="authorize_timeout"):
        Broadcaster(authorize_timeout=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="authorize_timeout"):
        Broadcaster(authorize_timeout=0)


async def test_a_far_expiry_keeps_the_stream() -> None:
    # A huge (finite) expiry arms a bounded timer, never an overflowing one.
    def authorize(connection: Any, topic: str) -> Authorization:
        return Authorization(expires_at=1e15)

    async with Broadcaster(authorize=authorize) as broadcaster:
        reader = EventReader(await broadcaster.open_subscription("t"))
        await broadcaster.publish("t", "x")
        assert [e.data for e in await reader.take(1)] == ["x"]
        reader.subscription.close()


# -- finding 13: the broadcaster's own event types are reserved ------------------------------


async def test_control_event_types_cannot_be_published(make_backend: BackendFactory) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        for name in ("gap", "unauthorized"):
            with pytest.raises(ValueError, match=r"reserved.*'gap' and 'unauthorized'"):
                await broadcaster.publish("t", "forged", event=name)
        assert await broadcaster.publish("t", "fine", event="gaps")
    renamed = Broadcaster(make_backend(), gap_event="x-gap", unauthorized_event="x-auth")
    async with renamed:
        with pytest.raises(ValueError, match="'x-gap' and 'x-auth'"):
            await renamed.publish("t", "forged", event="x-auth")
        assert await renamed.publish("t", "an app event of that name", event="gap")


# -- finding 14: topic_of costs the same for any id, whatever the number of topics ----------


class CountingDict(dict[str, Any]):
    """The backend's topics, counting every topic looked at."""

    visited = 0

    def __getitem__(self, key: str) -> Any:
        CountingDict.visited += 1
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        CountingDict.visited += 1
        return super().get(key, default)

    def __reversed__(self) -> Any:
        for key in super().__reversed__():
            CountingDict.visited += 1
            yield key

    def __iter__(self) -> Any:
        for key in super().__iter__():
            CountingDict.visited += 1
            yield key


async def test_topic_of_looks_at_one_topic_for_any_id() -> None:
    backend = MemoryBackend()
    async with Broadcaster(backend) as broadcaster:
        old = await broadcaster.publish("first", "old")
        for n in range(2000):
            await broadcaster.publish(f"topic-{n}", n)
        newest = await broadcaster.publish("last", "new")
        epoch = old.split("-")[0]
        backend._logs = CountingDict(backend._logs)
        cases = {
            old: "first",
            newest: "last",
            f"{epoch}-500": "topic-498",
            f"{epoch}-999999": None,  # forged: beyond the newest
            f"{epoch}-0": None,
            "nope": None,
        }
        for event_id, topic in cases.items():
            CountingDict.visited = 0
            assert await broadcaster.topic_of(event_id) == topic
            assert CountingDict.visited <= 1, event_id


async def test_redis_topic_of_is_one_lookup_in_the_change_log(redis_server: Any) -> None:
    # Already bounded on Redis (one XRANGE of one entry, O(log n)); kept so it stays so.
    import redis.asyncio as redis

    from litestar_sse.broadcast import RedisStreamBackend
    from tests.redis_support import unique_prefix

    async def calls(client: Any) -> dict[str, int]:
        stats = await client.info("commandstats")
        return {name: entry["calls"] for name, entry in stats.items()}

    backend = RedisStreamBackend(redis_server.url, prefix=unique_prefix())
    client = redis.Redis.from_url(redis_server.url)
    async with Broadcaster(backend) as broadcaster:
        old = await broadcaster.publish("first", "old")
        for n in range(300):
            await broadcaster.publish(f"topic-{n}", n)
        epoch = old.split("-", 1)[0]
        forged = [old, f"{epoch}-99999999999-0", f"{epoch}-1-0", "nope-1-0", "x"]
        before = await calls(client)
        answers = [await broadcaster.topic_of(event_id) for event_id in forged]
        after = await calls(client)
        assert answers == ["first", None, None, None, None]
        spent = {name: n - before.get(name, 0) for name, n in after.items()}
        assert spent.get("cmdstat_xrange", 0) <= len(forged)
        assert spent.get("cmdstat_hget", 0) <= len(forged)
        walking = ("cmdstat_scan", "cmdstat_keys", "cmdstat_xrevrange", "cmdstat_evalsha")
        assert not any(spent.get(name) for name in walking), spent
    await client.aclose()


async def test_topic_of_forgets_events_that_left_the_history() -> None:
    from litestar_sse.broadcast import Retention

    async with Broadcaster(MemoryBackend(retention=Retention(max_events=2))) as broadcaster:
        ids = [await broadcaster.publish("a", n) for n in range(3)]
        other = await broadcaster.publish("b", "x")
        assert [await broadcaster.topic_of(i) for i in ids] == [None, "a", "a"]
        assert await broadcaster.topic_of(other) == "b"


# -- issue 21, finding 3: subscribe() without the request -----------------------------------


async def test_subscribe_without_the_request_is_refused_at_the_call() -> None:
    async with Broadcaster() as broadcaster:
        with pytest.raises(TypeError, match="connection=request"):
            await broadcaster.subscribe("t", connection=None)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="connection"):
            await broadcaster.subscribe("t")  # type: ignore[call-arg]
        assert broadcaster.stats().subscribers == {}
