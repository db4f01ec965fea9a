"""Admission before cost: a subscription whose stream never starts costs nothing and lingers not.

With ``SSEConfig(max_connections=...)`` the limit is checked when the response is sent, after
the handler subscribed. A refused stream (503) or a ``HEAD`` must then unsubscribe at once,
not when the garbage collector finds the response and its subscription (they refer to each
other), and must not have read the events its client missed.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import ASGIStream, BackendFactory
from litestar import Litestar, Request, route
from litestar.params import FromQuery

from litestar_sse import ServerSentEvent, SSEConfig, SSEPlugin
from litestar_sse.broadcast import Broadcaster

pytestmark = pytest.mark.anyio


def make_app(broadcaster: Broadcaster, max_connections: int = 1) -> Litestar:
    @route("/events", http_method=["GET", "HEAD"])
    async def events(
        request: Request[Any, Any, Any], topic: FromQuery[list[str]]
    ) -> ServerSentEvent:
        return await broadcaster.subscribe(topic, connection=request)

    return Litestar([events], plugins=[SSEPlugin(SSEConfig(max_connections=max_connections))])


@pytest.fixture
def no_gc() -> Iterator[None]:
    """Only reference counting frees objects: what needs the collector stays."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.usefixtures("no_gc")
async def test_a_refused_subscription_is_unsubscribed_at_once(
    make_backend: BackendFactory,
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        app = make_app(broadcaster)
        async with ASGIStream(app, "/events", query="topic=t") as admitted:
            assert admitted.status == 200
            for _ in range(5):
                async with ASGIStream(app, "/events", query="topic=t") as refused:
                    await refused.wait_for(lambda r=refused: r.task_done)  # type: ignore[misc]
                    assert refused.status == 503
            assert broadcaster.stats().subscribers == {"t": 1}
        assert broadcaster.stats().subscribers == {}


@pytest.mark.usefixtures("no_gc")
async def test_a_head_subscription_is_unsubscribed_at_once(make_backend: BackendFactory) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        app = make_app(broadcaster, max_connections=10)
        for _ in range(3):
            async with ASGIStream(app, "/events", query="topic=t", method="HEAD") as head:
                await head.wait_for(lambda h=head: h.task_done)  # type: ignore[misc]
                assert head.status == 200
        assert broadcaster.stats().subscribers == {}


async def test_a_refused_resume_has_not_read_its_replay(make_backend: BackendFactory) -> None:
    from litestar_sse.broadcast import RedisStreamBackend

    topics = [f"t{index}" for index in range(20)]
    backend = make_backend()
    async with Broadcaster(backend) as broadcaster:
        start = await broadcaster.publish("t0", "before")
        for index in range(100):  # 4 MB to replay
            for topic in topics:
                await broadcaster.publish(topic, f"{index}:" + "m" * 2000)
        app = make_app(broadcaster)
        query = "&".join(f"topic={topic}" for topic in topics)
        resume = {"Last-Event-ID": start}
        redis = backend.redis if isinstance(backend, RedisStreamBackend) else None
        async with ASGIStream(app, "/events", query="topic=other") as admitted:
            assert admitted.status == 200
            delivered = broadcaster.stats().delivered
            sent = await redis_output(redis)
            async with ASGIStream(app, "/events", query=query, headers=resume) as refused:
                await refused.wait_for(lambda: refused.task_done)
                assert refused.status == 503
            assert broadcaster.stats().delivered == delivered  # nothing was replayed
            # Redis answered a few bytes per topic, not the 4 MB of missed events
            assert await redis_output(redis) - sent < 64 * 1024
        async with ASGIStream(app, "/events", query=query, headers=resume) as admitted:
            events = await admitted.wait_events(2000, timeout=30)  # now it replays
            assert len(events) == 2000


async def redis_output(client: Any) -> int:
    """Bytes Redis has sent to its clients so far (0 without Redis)."""
    if client is None:
        return 0
    return int((await client.info("stats"))["total_net_output_bytes"])
