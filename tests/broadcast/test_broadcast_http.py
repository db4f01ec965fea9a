"""Subscribing through a Litestar app: headers, Last-Event-ID, 403, slow clients, coalescing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from conftest import ASGIStream, BackendFactory, until
from litestar import Litestar, Request, get
from litestar.connection import ASGIConnection
from litestar.params import FromQuery

from litestar_sse import ServerSentEvent
from litestar_sse.broadcast import GAP_HEADER, RESUMED_FROM_HEADER, Broadcaster, MemoryBackend

pytestmark = pytest.mark.anyio


def make_app(broadcaster: Broadcaster, **subscribe_kwargs: Any) -> Litestar:
    @get("/events")
    async def events(
        request: Request[Any, Any, Any], topic: FromQuery[list[str]]
    ) -> ServerSentEvent:
        return await broadcaster.subscribe(topic, connection=request, **subscribe_kwargs)

    return Litestar([events])


def header(stream: ASGIStream, name: str) -> str | None:
    return stream.headers.get(name.lower())


async def test_subscribe_streams_events_and_unsubscribes_on_disconnect(
    make_backend: BackendFactory,
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        head = await broadcaster.publish("news", "before")
        app = make_app(broadcaster)
        async with ASGIStream(app, "/events", query="topic=news") as stream:
            assert stream.status == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert header(stream, RESUMED_FROM_HEADER) == head
            assert header(stream, GAP_HEADER) is None
            assert broadcaster.stats().subscribers == {"news": 1}
            event_id = await broadcaster.publish("news", {"title": "hello"}, event="story")
            (event,) = await stream.wait_events(1)
            assert (event.event, event.id, json.loads(event.data)) == (
                "story",
                event_id,
                {"title": "hello"},
            )
        assert broadcaster.stats().subscribers == {}


@pytest.mark.parametrize("via", ["header", "query"])
async def test_last_event_id_from_the_request_resumes(
    make_backend: BackendFactory, via: str
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        first = await broadcaster.publish("t", "seen")
        await broadcaster.publish("t", "missed 1")
        await broadcaster.publish("t", "missed 2")
        app = make_app(broadcaster)
        headers = {"Last-Event-ID": first} if via == "header" else {}
        query = "topic=t" + (f"&lastEventId={first}" if via == "query" else "")
        async with ASGIStream(app, "/events", query=query, headers=headers) as stream:
            assert header(stream, RESUMED_FROM_HEADER) == first
            events = await stream.wait_events(2)
            assert [event.data for event in events] == ["missed 1", "missed 2"]


@pytest.mark.parametrize("last_event_id", ["garbage", "00000000-1", "\u00e9", "a-b-c-d"])
async def test_unusable_last_event_id_is_a_gap_with_header_never_an_error(
    last_event_id: str,
) -> None:
    async with Broadcaster() as broadcaster:
        head = await broadcaster.publish("t", "x")
        app = make_app(broadcaster)
        headers = {"Last-Event-ID": last_event_id.encode().decode("latin-1")}
        async with ASGIStream(app, "/events", query="topic=t", headers=headers) as stream:
            assert stream.status == 200
            assert header(stream, GAP_HEADER) in ("invalid", "epoch")
            assert header(stream, RESUMED_FROM_HEADER) == head
            (gap,) = await stream.wait_events(1)
            assert gap.event == "gap"
            assert gap.id == head


async def test_authorize_refuses_with_403_before_the_stream() -> None:
    calls: list[tuple[Any, str]] = []

    def authorize(connection: ASGIConnection[Any, Any, Any, Any] | None, topic: str) -> bool:
        calls.append((connection, topic))
        return not topic.startswith("private")

    async with Broadcaster(authorize=authorize) as broadcaster:
        app = make_app(broadcaster)
        async with ASGIStream(app, "/events", query="topic=public&topic=private-1") as stream:
            await stream.wait_for(lambda: stream.task_done)
            assert stream.status == 403
            assert b"private-1" in b"".join(stream.body_sends)
        assert broadcaster.stats().subscribers == {}
        assert [topic for _, topic in calls] == ["public", "private-1"]
        assert isinstance(calls[0][0], Request)
        async with ASGIStream(app, "/events", query="topic=public") as stream:
            assert stream.status == 200


async def test_async_authorize() -> None:
    async def authorize(connection: Any, topic: str) -> bool:
        await asyncio.sleep(0)
        return connection.headers.get("x-user") == topic

    async with Broadcaster(authorize=authorize) as broadcaster:
        app = make_app(broadcaster)
        headers = {"X-User": "ann"}
        async with ASGIStream(app, "/events", query="topic=bob", headers=headers) as stream:
            await stream.wait_for(lambda: stream.task_done)
            assert stream.status == 403
        async with ASGIStream(app, "/events", query="topic=ann", headers=headers) as stream:
            assert stream.status == 200
            await broadcaster.publish("ann", "for ann")
            assert [e.data for e in await stream.wait_events(1)] == ["for ann"]


async def test_queued_events_go_out_in_one_send(make_backend: BackendFactory) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        app = make_app(broadcaster)
        async with ASGIStream(app, "/events", query="topic=t") as stream:
            stream.gate = asyncio.Event()  # the client stops reading
            await broadcaster.publish("t", 0)
            await until(lambda: broadcaster.stats().delivered == 1)  # stuck in its send
            for index in range(1, 50):
                await broadcaster.publish("t", index)
            await until(lambda: broadcaster.stats().received == 50)
            stream.gate.set()
            events = await stream.wait_events(50)
            assert [int(event.data) for event in events] == list(range(50))
            assert len(stream.body_sends) == 2


async def test_a_stuck_client_delays_nobody_and_is_disconnected() -> None:
    reasons: list[str] = []
    async with Broadcaster(max_queue=10) as broadcaster:
        app = make_app(broadcaster, on_disconnect=reasons.append)
        async with (
            ASGIStream(app, "/events", query="topic=t") as stuck,
            ASGIStream(app, "/events", query="topic=t") as reader,
        ):
            stuck.gate = asyncio.Event()
            last = ""
            for index in range(200):
                last = await broadcaster.publish("t", index)
                if index % 4 == 0:
                    await asyncio.sleep(0)  # let the reader read (it stays < 10 behind)
            events = await reader.wait_events(200)
            assert events[-1].id == last
            assert broadcaster.stats().disconnected == 1
            assert broadcaster.stats().subscribers == {"t": 1}
            # cut while stuck in its send, as a send timeout would: the connection is freed
            await stuck.wait_for(lambda: stuck.task_done)
            assert not stuck.ended
            assert len(stuck.events) == 0
            assert reasons == ["overflow"]  # the true reason, not "send_timeout"
            # ... and the client resumes exactly where it stopped
            resume = {"Last-Event-ID": stuck.headers["sse-resumed-from"]}
            async with ASGIStream(app, "/events", query="topic=t", headers=resume) as again:
                events = await again.wait_events(200)
                assert [int(event.data) for event in events] == list(range(200))


async def test_drop_oldest_skips_to_the_newest_events_with_a_gap() -> None:
    async with Broadcaster(max_queue=10, overflow="drop_oldest") as broadcaster:
        app = make_app(broadcaster)
        async with ASGIStream(app, "/events", query="topic=t") as stream:
            stream.gate = asyncio.Event()
            await broadcaster.publish("t", 0)
            await until(lambda: broadcaster.stats().delivered == 1)
            for index in range(1, 100):
                await broadcaster.publish("t", index)
            stream.gate.set()
            events = await stream.wait_events(12)
            assert events[0].data == "0"
            assert events[1].event == "gap"
            assert json.loads(events[1].data) == {"reason": "overflow", "dropped": 89}
            assert [int(event.data) for event in events[2:]] == list(range(90, 100))
            assert events[1].id == events[0].id  # a gap event does not move Last-Event-ID
            stats = broadcaster.stats()
            assert (stats.dropped, stats.disconnected) == (89, 0)
            await broadcaster.publish("t", "live")
            assert (await stream.wait_events(13))[-1].data == "live"


async def test_close_ends_the_streams_cleanly() -> None:
    broadcaster = Broadcaster()
    await broadcaster.start()
    app = make_app(broadcaster)
    async with ASGIStream(app, "/events", query="topic=t") as stream:
        await broadcaster.publish("t", "bye")
        await broadcaster.close()
        await stream.wait_for(lambda: stream.task_done)
        assert [event.data for event in stream.events] == ["bye"]
        assert stream.ended


async def test_response_options_are_passed_on() -> None:
    async with Broadcaster(sep="\n") as broadcaster:
        app = make_app(broadcaster, ping_interval=0.05, headers={"X-Extra": "1"})
        async with ASGIStream(app, "/events", query="topic=t") as stream:
            assert header(stream, "x-extra") == "1"
            await stream.wait_for(lambda: b": ping\n" in b"".join(stream.body_sends))
            await broadcaster.publish("t", "a")
            await stream.wait_events(1)
            assert b"data: a\n\n" in b"".join(stream.body_sends)


async def test_memory_ids_of_two_broadcasters_are_foreign_to_each_other() -> None:
    async with Broadcaster(MemoryBackend()) as one, Broadcaster(MemoryBackend()) as other:
        event_id = await one.publish("t", "x")
        subscription = await other.open_subscription("t", last_event_id=event_id)
        assert subscription.gap == "epoch"
        subscription.close()
