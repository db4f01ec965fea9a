"""On trio (Litestar's ``TestClient(backend="trio")``): the broadcast hub with its memory
backend, and the Redis backend's refusal at the app's startup, not mid-stream; the send loop's
stops (send timeout, disconnect, a clean stop, a hung cleanup cut) with a fake ASGI peer."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest
from litestar import Litestar, Request, get, post
from litestar.params import FromQuery
from litestar.testing import TestClient

from litestar_sse import ServerSentEvent
from litestar_sse.asgi import ASGIStreamingResponse, ASGIStreamingSSEResponse
from litestar_sse.broadcast import Broadcaster, MemoryBackend, RedisStreamBackend
from litestar_sse.testing import sse_stream
from tests.sse_wire import http_scope


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


# -- the send loop on trio, driven with a fake ASGI peer ------------------------------------


class Peer:
    """Records what is sent; can leave (``http.disconnect``) or stop taking writes."""

    def __init__(self, *, block_after: int | None = None) -> None:
        self.chunks: list[bytes] = []
        self.ended = False  # the end of the body was sent
        self.gone = anyio.Event()
        self.block_after = block_after

    async def send(self, message: Any) -> None:
        if message["type"] != "http.response.body":
            return
        if self.block_after is not None and len(self.chunks) >= self.block_after:
            await anyio.sleep_forever()  # a client that stopped reading
        if message.get("body"):
            self.chunks.append(message["body"])
        if not message.get("more_body", False):
            self.ended = True

    async def receive(self) -> Any:
        await self.gone.wait()
        return {"type": "http.disconnect"}


async def until(predicate: Callable[[], bool]) -> None:
    """Wait (5 s at most) until what the fake peer recorded satisfies ``predicate``."""
    with anyio.fail_after(5):
        while not predicate():  # noqa: ASYNC110 - polling the fake peer's record
            await anyio.sleep(0.01)


def endless(marks: list[str], *, hang_in_finally: bool = False) -> AsyncIterator[str]:
    async def producer() -> AsyncIterator[str]:
        try:
            for number in range(10**9):
                yield str(number)
                await anyio.sleep(0.01)
        finally:
            marks.append("finally")
            if hang_in_finally:
                await anyio.sleep_forever()  # a cleanup that never returns

    return producer()


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.anyio
async def test_a_send_timeout_stops_the_stream_on_trio() -> None:
    marks: list[str] = []
    peer = Peer(block_after=2)
    response = ASGIStreamingSSEResponse(
        iterator=endless(marks),
        send_timeout=0.2,
        on_disconnect=marks.append,
        item_encoder=lambda item: f"data: {item}\n\n".encode(),
    )
    with anyio.fail_after(5):
        await response(http_scope(), peer.receive, peer.send)
    assert peer.chunks == [b"data: 0\n\n", b"data: 1\n\n"]
    assert response.stop_reason == "send_timeout"
    assert marks == ["finally", "send_timeout"]


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.anyio
async def test_a_disconnect_and_pings_on_trio() -> None:
    marks: list[str] = []
    peer = Peer()

    async def once() -> AsyncIterator[bytes]:
        try:
            yield b"data: 0\n\n"
            await anyio.sleep(3600)  # idle: pinged, then stopped here by the disconnect
        finally:
            marks.append("finally")

    response = ASGIStreamingSSEResponse(
        iterator=once(), ping_interval=0.05, on_disconnect=marks.append
    )
    async with anyio.create_task_group() as group:
        group.start_soon(response, http_scope(), peer.receive, peer.send)
        await until(lambda: b": ping\r\n" in peer.chunks)
        peer.gone.set()
    assert peer.chunks[0] == b"data: 0\n\n"
    assert response.stop_reason == "disconnect"
    assert marks == ["finally", "disconnect"]


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.anyio
async def test_a_clean_stop_sends_its_closing_then_the_end_on_trio() -> None:
    marks: list[str] = []
    peer = Peer()
    response = ASGIStreamingResponse(iterator=endless(marks))
    async with anyio.create_task_group() as group:
        group.start_soon(response, http_scope(), peer.receive, peer.send)
        await until(lambda: len(peer.chunks) >= 3)
        response.stop("shutdown", closing=b"event: bye\n\n")
    assert peer.chunks[-1] == b"event: bye\n\n"
    assert peer.ended
    assert response.stop_reason == "shutdown"
    assert marks == ["finally"]


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.anyio
async def test_a_hung_cleanup_is_cut_after_cleanup_timeout_on_trio(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Stopped at a yield (its send is stuck), the producer is closed outside the stream's
    # scope: its finally may await, within cleanup_timeout.
    marks: list[str] = []
    peer = Peer(block_after=1)
    response = ASGIStreamingResponse(
        iterator=endless(marks, hang_in_finally=True), send_timeout=0.1, cleanup_timeout=0.3
    )
    begun = time.monotonic()
    with anyio.fail_after(5):
        await response({**http_scope(), "path_template": "/hung"}, peer.receive, peer.send)
    assert 0.3 < time.monotonic() - begun < 3
    assert marks == ["finally"]
    assert response.stop_reason == "send_timeout"
    assert any(
        "GET /hung" in r.getMessage() and "cleaning up" in r.getMessage() for r in caplog.records
    )
