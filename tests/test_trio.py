"""On trio (Litestar's ``TestClient(backend="trio")``): the broadcast hub with its memory
backend, and the Redis backend's refusal at the app's startup, not mid-stream."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, Request, get, post
from litestar.params import FromQuery
from litestar.testing import TestClient

from litestar_sse import ServerSentEvent
from litestar_sse.broadcast import Broadcaster, MemoryBackend, RedisStreamBackend
from litestar_sse.testing import sse_stream


def broadcast_app(broadcaster: Broadcaster) -> Litestar:
    @get("/events")
    async def events(request: Request[Any, Any, Any]) -> ServerSentEvent:
        return await broadcaster.subscribe(["news"], connection=request)

    @post("/publish")
    async def publish(text: FromQuery[str]) -> str:
        return await broadcaster.publish("news", text)

    return Litestar(
        [events, publish], on_startup=[broadcaster.start], on_shutdown=[broadcaster.close]
    )


def test_the_memory_backend_on_trio() -> None:
    broadcaster = Broadcaster(MemoryBackend())
    app = broadcast_app(broadcaster)
    with TestClient(app, backend="trio", timeout=10) as client:
        first = client.post("/publish", params={"text": "before"}).text
        with sse_stream(client, "GET", "/events", headers={"Last-Event-ID": first}) as stream:
            client.post("/publish", params={"text": "one"})
            client.post("/publish", params={"text": "two"})
            events = iter(stream)
            assert [next(events).data, next(events).data] == ["one", "two"]
        assert broadcaster.stats().subscribers in ({}, {"news": 0})


def test_the_redis_backend_refuses_trio_at_startup() -> None:
    broadcaster = Broadcaster(RedisStreamBackend("redis://127.0.0.1:9"))  # never reached
    app = broadcast_app(broadcaster)
    with pytest.raises(BaseException) as raised, TestClient(app, backend="trio"):  # noqa: PT011
        pass  # the lifespan's startup fails (inside an exception group on some versions)
    errors = [raised.value]
    while hasattr(errors[-1], "exceptions"):  # an exception group
        errors.append(errors[-1].exceptions[0])  # type: ignore[attr-defined]
    assert isinstance(errors[-1], RuntimeError)
    assert "RedisStreamBackend needs asyncio" in str(errors[-1])
    assert "use MemoryBackend on trio" in str(errors[-1])
