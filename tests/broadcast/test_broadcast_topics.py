"""Topic names: one rule, checked at publish and subscribe; a bad one never hurts the others."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ASGIStream, BackendFactory, EventReader
from litestar import Litestar, Request, get, post
from litestar.params import FromPath, FromQuery

from litestar_sse import ServerSentEvent
from litestar_sse.broadcast import MAX_TOPIC_BYTES, Broadcaster, RedisStreamBackend
from litestar_sse.broadcast.errors import InvalidTopicError, TooManyTopicsError
from tests.processes import free_port, start_listening, stop
from tests.redis_support import RedisProcess, unique_prefix

pytestmark = pytest.mark.anyio

BAD_TOPICS = [
    pytest.param("", id="empty"),
    pytest.param("\ud800", id="lone-surrogate"),
    pytest.param("room:\udfff", id="lone-low-surrogate"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\nb", id="lf"),
    pytest.param("a\rb", id="cr"),
    pytest.param("a\tb", id="tab"),
    pytest.param("\x7f", id="del"),
    pytest.param("\x85", id="c1-control"),
    pytest.param("x" * (MAX_TOPIC_BYTES + 1), id="too-long"),
    pytest.param("\u00e9" * (MAX_TOPIC_BYTES // 2 + 1), id="too-long-in-utf8"),
    pytest.param(1, id="int"),
    pytest.param(b"t", id="bytes"),
    pytest.param(None, id="none"),
]
GOOD_TOPICS = ["t", "room:42", "a b", "caf\u00e9 \u2713 \U0001f600", "x" * MAX_TOPIC_BYTES]


@pytest.mark.parametrize("topic", BAD_TOPICS)
async def test_a_bad_topic_is_refused_at_publish_and_subscribe(
    make_backend: BackendFactory, topic: Any
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        with pytest.raises(InvalidTopicError, match="topic") as refused:
            await broadcaster.publish(topic, "x")
        assert isinstance(refused.value, ValueError)
        assert refused.value.status_code == 400
        with pytest.raises(InvalidTopicError, match="topic"):
            await broadcaster.open_subscription(topic)
        with pytest.raises(InvalidTopicError, match="topic"):
            await broadcaster.open_subscription(["fine", topic])
        assert broadcaster.stats().subscribers == {}
        assert broadcaster.stats().published == 0
        # the broadcaster is unharmed
        reader = EventReader(await broadcaster.open_subscription("fine"))
        event_id = await broadcaster.publish("fine", "still works")
        assert [(e.id, e.data) for e in await reader.take(1)] == [(event_id, "still works")]
        reader.subscription.close()


async def test_good_topics_round_trip_with_resume_and_gap(make_backend: BackendFactory) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        reader = EventReader(await broadcaster.open_subscription(GOOD_TOPICS))
        ids = [await broadcaster.publish(topic, topic) for topic in GOOD_TOPICS]
        assert [(e.id, e.data) for e in await reader.take(len(ids))] == list(
            zip(ids, GOOD_TOPICS, strict=True)
        )
        resumed = EventReader(
            await broadcaster.open_subscription(GOOD_TOPICS, last_event_id=ids[0])
        )
        assert [e.data for e in await resumed.take(len(ids) - 1)] == GOOD_TOPICS[1:]
        foreign = await broadcaster.open_subscription(GOOD_TOPICS, last_event_id="0-1")
        assert set(foreign.gap_topics) == set(GOOD_TOPICS)
        for subscription in (reader.subscription, resumed.subscription, foreign):
            subscription.close()


async def test_one_bad_topic_among_concurrent_subscriptions_fails_only_itself(
    redis_server: RedisProcess,
) -> None:
    # A lone surrogate used to reach the Redis reader, which could not encode its key: the
    # step that takes on new topics failed, and every subscription waiting on it got a 503.
    backend = RedisStreamBackend(redis_server.url, prefix=unique_prefix())
    async with Broadcaster(backend) as broadcaster:
        topics = [f"good{i}" for i in range(29)]
        results = await asyncio.gather(
            *(broadcaster.open_subscription(topic) for topic in topics),
            broadcaster.open_subscription("bad\ud800"),
            return_exceptions=True,
        )
        assert isinstance(results[-1], InvalidTopicError)
        readers = [EventReader(result) for result in results[:-1]]  # type: ignore[arg-type]
        ids = [await broadcaster.publish(topic, topic) for topic in topics]
        for reader, event_id, topic in zip(readers, ids, topics, strict=True):
            assert [(e.id, e.data) for e in await reader.take(1)] == [(event_id, topic)]
            reader.subscription.close()


async def test_the_redis_reader_survives_a_topic_it_cannot_encode(
    redis_server: RedisProcess,
) -> None:
    # Below the broadcaster's check: the backend itself fails that one call, in the caller.
    backend = RedisStreamBackend(redis_server.url, prefix=unique_prefix())
    async with Broadcaster(backend) as broadcaster:
        with pytest.raises(UnicodeEncodeError):
            await backend.watch(["\ud800"])
        reader = EventReader(await broadcaster.open_subscription("after"))
        event_id = await broadcaster.publish("after", "x")
        assert [e.id for e in await reader.take(1)] == [event_id]
        reader.subscription.close()


def test_a_prefix_redis_cannot_take_is_refused() -> None:
    for prefix in ("a\ud800:", "a\n:"):
        with pytest.raises(ValueError, match="prefix"):
            RedisStreamBackend("redis://127.0.0.1:1/0", prefix=prefix)


async def test_a_subscription_may_follow_at_most_max_topics(make_backend: BackendFactory) -> None:
    async with Broadcaster(make_backend(), max_topics=3) as broadcaster:
        subscription = await broadcaster.open_subscription(["a", "b", "c", "a", "b"])
        assert subscription.topics == ("a", "b", "c")  # distinct topics count
        subscription.close()
        with pytest.raises(TooManyTopicsError, match="at most 3 topics") as refused:
            await broadcaster.open_subscription(["a", "b", "c", "d"])
        assert isinstance(refused.value, ValueError)
        assert refused.value.status_code == 400
        # an endless iterable is not read to its end
        endless = (f"t{i}" for i in itertools.count())
        with pytest.raises(TooManyTopicsError):
            await broadcaster.open_subscription(endless)
        assert next(endless) == "t4"
        assert broadcaster.stats().subscribers == {}
    async with Broadcaster(make_backend()) as broadcaster:
        assert broadcaster.max_topics == 100
        subscription = await broadcaster.open_subscription([f"t{i}" for i in range(100)])
        subscription.close()
        with pytest.raises(TooManyTopicsError, match="at most 100 topics"):
            await broadcaster.open_subscription([f"t{i}" for i in range(101)])
    async with Broadcaster(make_backend(), max_topics=None) as broadcaster:
        subscription = await broadcaster.open_subscription([f"t{i}" for i in range(300)])
        subscription.close()


@pytest.mark.parametrize(
    ("value", "error"), [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError)]
)
def test_max_topics_is_checked_like_every_count(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="max_topics"):
        Broadcaster(max_topics=value)


# -- over HTTP -------------------------------------------------------------------------------


def topic_app(broadcaster: Broadcaster) -> Litestar:
    @get("/events")
    async def events(
        request: Request[Any, Any, Any], topic: FromQuery[list[str]]
    ) -> ServerSentEvent:
        return await broadcaster.subscribe(topic, connection=request)

    @post("/publish/{topic:str}")
    async def publish(topic: FromPath[str]) -> str:
        return await broadcaster.publish(topic, "x")

    return Litestar([events, publish])


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("GET", "/events", "topic="),
        ("GET", "/events", "topic=ok&topic="),
        ("GET", "/events", "topic=a%00b"),
        ("GET", "/events", "topic=a%0Ab"),
        ("GET", "/events", "topic=" + "x" * (MAX_TOPIC_BYTES + 1)),
        ("GET", "/events", "&".join(f"topic=t{i}" for i in range(101))),
        ("POST", "/publish/a\x00b", ""),  # the ASGI path is decoded
        ("POST", "/publish/a\x7fb", ""),
    ],
)
async def test_a_bad_topic_from_the_request_is_a_400(
    make_backend: BackendFactory, method: str, path: str, query: str
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        app = topic_app(broadcaster)
        async with ASGIStream(app, path, query=query, method=method) as stream:
            await stream.wait_for(lambda: stream.task_done)
            assert stream.status == 400
            assert b"topic" in b"".join(stream.body_sends).lower()
        assert broadcaster.stats().subscribers == {}


@pytest.fixture
def redis_app(redis_server: RedisProcess, tmp_path: Path) -> Iterator[str]:
    """``tests.broadcast.apps:app`` under a real uvicorn, on Redis; yields its URL."""
    port = free_port()
    env = {
        **os.environ,
        "BROADCAST_REDIS_URL": redis_server.url,
        "BROADCAST_PREFIX": unique_prefix(),
    }
    command = [
        sys.executable, "-m", "uvicorn", "tests.broadcast.apps:app",
        "--host", "127.0.0.1", "--port", str(port), "--lifespan", "on",
    ]  # fmt: skip
    process = start_listening(command, port, tmp_path / "server.log", env=env)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


async def test_bad_topics_over_uvicorn_are_400_and_the_server_keeps_serving(
    redis_app: str,
) -> None:
    async with httpx.AsyncClient(base_url=redis_app, timeout=10) as client:
        for query in ("topic=", "topic=a%00b", "topic=a%0Db", "topic=ok&topic=%1B"):
            response = await client.get(f"/events?{query}")
            assert response.status_code == 400, (query, response.text)
            assert "topic" in response.json()["detail"]
        many = "&".join(f"topic=t{i}" for i in range(101))
        response = await client.get(f"/events?{many}")
        assert response.status_code == 400, response.text
        assert "at most 100 topics" in response.json()["detail"]
        response = await client.post("/publish/a%00b", content=b"x")
        assert response.status_code == 400, response.text
        # everything else still works: subscribe, publish, receive
        async with client.stream("GET", "/events?topic=ok") as stream:
            assert stream.status_code == 200
            published = await client.post("/publish/ok", content=b"hello")
            event_id = published.json()["id"]
            received = b""
            async for chunk in stream.aiter_bytes():
                received += chunk
                if b"hello" in received:
                    break
            assert f"id: {event_id}".encode() in received
