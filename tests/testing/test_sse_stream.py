"""``litestar_sse.testing``: streams read while the app sends them, with both test clients."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from itertools import islice
from typing import Any

import anyio
import msgspec
import pytest
from litestar import Litestar, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient, TestClient

from litestar_sse import ServerSentEvent, SSEConfig, SSEPlugin, event_stream
from litestar_sse._compat import LITESTAR_3
from litestar_sse.codec import DecodedComment, DecodedEvent
from litestar_sse.testing import async_sse_stream, sse_stream
from tests.backends import on_each_backend

anyio_backend = on_each_backend(__name__)  # asyncio and trio


class Prompt(msgspec.Struct):
    text: str


closed: list[str] = []


@get("/count")
@event_stream
async def count(last_event_id: NamedDependency[str | None]) -> AsyncIterator[int]:
    """An endless stream resuming after ``last_event_id``; records when it is closed."""
    i = int(last_event_id or 0)
    try:
        while True:
            i += 1
            yield i
            await anyio.sleep(0.005)
    finally:
        closed.append("count")


@get("/quiet")
@event_stream
async def quiet() -> AsyncIterator[str]:
    yield "hello"
    await anyio.sleep(3600)


@get("/three")
async def three() -> ServerSentEvent:
    return ServerSentEvent(["a", "b", "c"], event_id="7")


@post("/echo", status_code=200)
@event_stream
async def echo(data: JSONBody[Prompt]) -> AsyncIterator[str]:
    for word in data.text.split():
        yield word


@get("/boom")
@event_stream
async def boom() -> AsyncIterator[str]:
    yield "ok"
    raise RuntimeError("boom")


@get("/headers", sync_to_thread=False)
def headers_echo(request: Request[Any, Any, Any]) -> ServerSentEvent:
    headers = request.headers
    return ServerSentEvent([headers.get("x-custom", "-"), headers.get("last-event-id", "-")])


def make_app(**config: object) -> Litestar:
    return Litestar(
        [count, quiet, three, echo, boom, headers_echo],
        plugins=[SSEPlugin(SSEConfig(**config))],  # type: ignore[arg-type]
    )


@pytest.fixture
def client() -> TestClient[Litestar]:
    with TestClient(make_app(ping_interval=None)) as client:
        yield client  # type: ignore[misc]


def test_endless_stream_is_read_as_it_is_sent(client: TestClient[Litestar]) -> None:
    closed.clear()
    with sse_stream(client, "GET", "/count") as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"] == "text/event-stream; charset=utf-8"
        events = list(islice(stream, 3))
    assert [e.data for e in events] == ["1", "2", "3"]
    assert all(isinstance(e, DecodedEvent) for e in events)
    # leaving the block disconnects: the producer's finally has run by now
    assert closed == ["count"]


def test_last_event_id_is_sent_as_the_header(client: TestClient[Litestar]) -> None:
    with sse_stream(client, "GET", "/count", last_event_id="41") as stream:
        assert next(iter(stream)).data == "42"
    with sse_stream(client, "GET", "/headers", last_event_id="9") as stream:
        assert [e.data for e in stream] == ["-", "9"]


def test_request_options_are_passed_on(client: TestClient[Litestar]) -> None:
    with sse_stream(client, "GET", "/headers", headers={"X-Custom": "yes"}) as stream:
        assert next(e.data for e in stream) == "yes"
    with sse_stream(client, "POST", "/echo", json={"text": "streamed over post"}) as stream:
        assert [e.data for e in stream] == ["streamed", "over", "post"]
        assert stream.ended


def test_finite_stream_ends_iteration_and_keeps_the_raw_body(client: TestClient[Litestar]) -> None:
    with sse_stream(client, "GET", "/three") as stream:
        events = list(stream)
        assert stream.ended
        assert stream.last_event_id == "7"
    assert [(e.data, e.id) for e in events] == [("a", "7"), ("b", "7"), ("c", "7")]
    assert (
        bytes(stream.body)
        == b"id: 7\r\ndata: a\r\n\r\nid: 7\r\ndata: b\r\n\r\nid: 7\r\ndata: c\r\n\r\n"
    )


def test_read_returns_the_whole_body(client: TestClient[Litestar]) -> None:
    with sse_stream(client, "GET", "/three") as stream:
        assert stream.read().count(b"data: ") == 3


def test_timeout_waiting_for_the_next_event(client: TestClient[Litestar]) -> None:
    with sse_stream(client, "GET", "/quiet", timeout=0.2) as stream:
        events = iter(stream)
        assert next(events).data == "hello"
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            next(events)
        assert 0.15 < time.monotonic() - started < 2


def test_pings_are_comments_and_do_not_reset_the_event_timeout() -> None:
    app = make_app(ping_interval=0.02)
    with TestClient(app) as client, sse_stream(client, "GET", "/quiet", timeout=0.3) as stream:
        events = iter(stream)
        assert next(events).data == "hello"
        with pytest.raises(TimeoutError):
            next(events)
        assert stream.comments
        assert set(stream.comments) == {"ping"}


def test_iter_with_comments_keeps_stream_order() -> None:
    app = make_app(ping_interval=0.02)
    with TestClient(app) as client, sse_stream(client, "GET", "/quiet") as stream:
        items = list(islice(stream.iter_with_comments(), 3))
    assert items == [DecodedEvent("hello"), DecodedComment("ping"), DecodedComment("ping")]


def test_error_after_the_stream_started_ends_it(client: TestClient[Litestar]) -> None:
    # the send loop logs producer errors and ends the body cleanly
    with sse_stream(client, "GET", "/boom") as stream:
        assert [e.data for e in stream] == ["ok"]
        assert stream.ended


def test_not_entered_client_works_too() -> None:
    client = TestClient(make_app())
    with sse_stream(client, "GET", "/count") as stream:
        assert [e.data for e in islice(stream, 2)] == ["1", "2"]


def test_status_and_body_of_a_refused_stream() -> None:
    app = make_app(max_connections=1)
    with TestClient(app) as client, sse_stream(client, "GET", "/quiet") as first:
        assert first.status_code == 200
        with sse_stream(client, "GET", "/quiet") as second:
            assert second.status_code == 503
            assert second.headers["retry-after"] == "5"
            assert b"Too many" in second.read()
            assert list(second) == []


def test_app_exception_before_the_response_is_raised() -> None:

    async def broken_app(scope: object, receive: object, send: object) -> None:
        raise ValueError("no response")

    client = TestClient(broken_app)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no response"), sse_stream(client, "GET", "/"):
        pass


@pytest.mark.anyio
async def test_async_client(anyio_backend: str) -> None:
    if anyio_backend == "trio" and not LITESTAR_3:
        pytest.skip("Litestar 2's AsyncTestClient starts a blocking portal: not from a trio test")
    closed.clear()
    async with AsyncTestClient(make_app(ping_interval=0.02)) as client:
        async with async_sse_stream(client, "GET", "/count", last_event_id="10") as stream:
            assert stream.status_code == 200
            got = []
            async for event in stream:
                got.append(event.data)
                if len(got) == 3:
                    break
        assert got == ["11", "12", "13"]
        assert closed == ["count"]

        async with async_sse_stream(client, "GET", "/quiet", timeout=0.2) as stream:
            items = stream.iter_with_comments()
            assert await anext(items) == DecodedEvent("hello")
            assert await anext(items) == DecodedComment("ping")
            with pytest.raises(TimeoutError):
                async for _ in stream:
                    pass

        async with async_sse_stream(client, "GET", "/three") as stream:
            assert (await stream.read()).count(b"data: ") == 3
