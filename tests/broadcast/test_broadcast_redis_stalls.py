"""Redis stalls (SIGSTOP): publish has its own deadline, says whether the event may have been
stored, and a retry with an idempotency key stores it once."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from conftest import BackendFactory, EventReader
from redis.asyncio import Redis

from litestar_sse.broadcast import Broadcaster, MemoryBackend, RedisStreamBackend
from litestar_sse.broadcast.errors import (
    BackendUnavailableError,
    NotPublishedError,
    PublishOutcomeUnknownError,
)
from tests.processes import free_port, start_listening, stop
from tests.redis_support import RedisProcess, unique_prefix

pytestmark = pytest.mark.anyio

GUARD = 30.0
"""Seconds after which a call that should have given up is reported as stuck (not timed: the
calls below give up after 0.5 s, or never)."""


async def publish_outcome(broadcaster: Broadcaster, key: str) -> type[BaseException] | str:
    try:
        return await asyncio.wait_for(broadcaster.publish("t", key, idempotency_key=key), GUARD)
    except BackendUnavailableError as exc:
        return type(exc)


@pytest.mark.parametrize("socket_timeout", [None, 5.0], ids=["no-socket-timeout", "timeout-5s"])
async def test_a_publish_gives_up_after_its_own_deadline_whatever_the_client(
    redis_process: Callable[..., RedisProcess], socket_timeout: float | None
) -> None:
    # redis-py before 8 has no socket_timeout by default: a publish waited for as long as
    # Redis was stopped, and so did a new subscription.
    server = redis_process()
    client = Redis.from_url(server.url, socket_timeout=socket_timeout)
    backend = RedisStreamBackend(
        client, prefix=unique_prefix(), publish_timeout=0.5, watch_timeout=0.5
    )
    async with Broadcaster(backend) as broadcaster:
        await broadcaster.publish("t", "before")
        with server.stalled():
            with pytest.raises(BackendUnavailableError) as refused:
                await asyncio.wait_for(broadcaster.publish("t", "during"), GUARD)
            assert isinstance(refused.value, (NotPublishedError, PublishOutcomeUnknownError))
            with pytest.raises(BackendUnavailableError):
                await asyncio.wait_for(broadcaster.open_subscription("new topic"), GUARD)
    await client.aclose()


async def test_a_stall_tells_not_published_from_unknown_and_retries_store_each_event_once(
    redis_process: Callable[..., RedisProcess],
) -> None:
    server = redis_process()
    client = Redis.from_url(server.url)
    backend = RedisStreamBackend(client, prefix=unique_prefix(), publish_timeout=0.5)
    async with Broadcaster(backend) as broadcaster:
        reader = EventReader(await broadcaster.open_subscription("t"))
        # idle connections in the pool, as after any burst
        warm = await asyncio.gather(*(broadcaster.publish("t", f"warm {i}") for i in range(5)))
        await reader.take(len(warm))
        keys = [f"message-{index}" for index in range(10)]
        with server.stalled():
            outcomes = {key: await publish_outcome(broadcaster, key) for key in keys}
        # The first went out on an idle connection and waits in its socket: Redis runs it
        # when it resumes. Its failure closed the idle connections, so the others never
        # got a connection ready (its handshake is not answered either): certainly not sent.
        assert outcomes[keys[0]] is PublishOutcomeUnknownError
        assert {outcomes[key] for key in keys[1:]} == {NotPublishedError}

        # Redis resumes. The publisher retries every failed message with its key.
        retried = {key: await publish_outcome(broadcaster, key) for key in keys}
        assert all(isinstance(event_id, str) for event_id in retried.values()), retried
        marker = await broadcaster.publish("t", "after")
        events = await reader.take(len(keys) + 1, timeout=10)
        assert [event.data for event in events[-1:]] == ["after"]
        assert events[-1].id == marker
        # each message exactly once, under the id its retry returned
        assert sorted((event.data, event.id) for event in events[:-1]) == sorted(retried.items())
        # the one Redis ran on resuming came before every retry
        assert events[0].data == keys[0]
        reader.subscription.close()
    await client.aclose()


async def test_over_http_a_stalled_publish_is_a_503_saying_what_happened(
    redis_process: Callable[..., RedisProcess], tmp_path: Path
) -> None:
    server = redis_process()
    port = free_port()
    env = {
        **os.environ,
        "BROADCAST_REDIS_URL": server.url,
        "BROADCAST_PREFIX": unique_prefix(),
        "BROADCAST_PUBLISH_TIMEOUT": "0.5",
    }
    command = [
        sys.executable, "-m", "uvicorn", "tests.broadcast.apps:app",
        "--host", "127.0.0.1", "--port", str(port), "--lifespan", "on",
    ]  # fmt: skip
    app = start_listening(command, port, tmp_path / "server.log", env=env)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=GUARD) as client:

            async def post(key: str) -> httpx.Response:
                return await client.post(
                    "/publish/t", content=key.encode(), headers={"Idempotency-Key": key}
                )

            assert (await post("warm")).status_code == 201
            with server.stalled():
                unknown, refused = await post("one"), await post("two")
            assert (unknown.status_code, unknown.json()["detail"]) == (
                503,
                "Redis did not answer: the event may have been published",
            )
            assert (refused.status_code, refused.json()["detail"]) == (
                503,
                "Redis is unavailable: not published",
            )
            # retried once Redis answers: "one" ran when Redis resumed, so its retry gets its
            # id back; "two" is stored now
            first, second = await post("one"), await post("two")
            assert (first.status_code, second.status_code) == (201, 201)
            again = await post("one")
            assert again.json()["id"] == first.json()["id"]
            async with client.stream(
                "GET", "/events?topic=t", headers={"Last-Event-ID": first.json()["id"]}
            ) as stream:
                body = b""
                async for chunk in stream.aiter_bytes():
                    body += chunk
                    if b"data: two" in body:
                        break
            assert body.count(b"data: ") == 1  # only "two" after "one": nothing twice
    finally:
        stop(app)


async def test_an_idempotency_key_stores_a_message_once_within_the_window(
    make_backend: BackendFactory,
) -> None:
    now = [1000.0]
    if make_backend is MemoryBackend:
        backend = MemoryBackend(idempotency_window=60, clock=lambda: now[0])
    else:
        backend = make_backend(idempotency_window=0.3)
    async with Broadcaster(backend) as broadcaster:
        reader = EventReader(await broadcaster.open_subscription(["t", "u"]))
        first = await broadcaster.publish("t", "hello", idempotency_key="m-1")
        assert await broadcaster.publish("t", "hello", idempotency_key="m-1") == first
        # a key belongs to its topic: on another topic it is another key
        other = await broadcaster.publish("u", "other topic", idempotency_key="m-1")
        second = await broadcaster.publish("t", "hello", idempotency_key="m-2")
        plain = await broadcaster.publish("t", "hello")
        assert len({first, other, second, plain}) == 4
        events = await reader.take(4)
        assert [event.id for event in events] == [first, other, second, plain]
        # past the window the key is forgotten
        if isinstance(backend, MemoryBackend):
            now[0] += 61
        else:
            await asyncio.sleep(0.5)
        again = await broadcaster.publish("t", "hello", idempotency_key="m-1")
        assert again != first
        assert [event.id for event in await reader.take(1)] == [again]
        reader.subscription.close()


@pytest.mark.parametrize("key", ["", "a\nb", "\ud800", "k" * 300, 42])
async def test_a_bad_idempotency_key_is_refused(make_backend: BackendFactory, key: object) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        with pytest.raises(ValueError, match="idempotency key") as refused:
            await broadcaster.publish("t", "x", idempotency_key=key)  # type: ignore[arg-type]
        assert getattr(refused.value, "status_code", None) == 400
        assert broadcaster.stats().published == 0


@pytest.mark.parametrize(
    "name", ["publish_timeout", "watch_timeout", "block_timeout", "idempotency_window"]
)
@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (float("inf"), ValueError), (float("nan"), ValueError), ("1", TypeError),
     (None, TypeError)],
)  # fmt: skip
def test_redis_durations_are_checked_like_every_duration(
    name: str, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match=name):
        RedisStreamBackend("redis://127.0.0.1:1/0", **{name: value})  # type: ignore[arg-type]


def test_the_memory_idempotency_window_is_checked() -> None:
    with pytest.raises(ValueError, match="idempotency_window"):
        MemoryBackend(idempotency_window=0)
