"""Events pushed to idle streams: one pass of the topic sends each waiting subscriber's chunk
through its stream's sink, and the subscriber's task sleeps on.

First the hub's side, with a sink of the test's own (what a stream's sink may answer: sent,
the chunk handed back, a send still in flight, an error); then whole streams of a Litestar app
driven by a fake server whose ``send`` can wait, fail, or see a ping in flight.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
from collections.abc import Awaitable, Generator
from typing import Any

import pytest
from litestar import Litestar, get
from litestar.types import ASGIApp, Receive, Scope, Send

from litestar_sse import ServerSentEvent
from litestar_sse.broadcast import BatchEvent, Broadcaster, MemoryBackend
from litestar_sse.broadcast._hub.subscription import Subscription
from litestar_sse.codec._decoder import DecodedComment, EventDecoder
from tests.polling import wait_until

pytestmark = pytest.mark.anyio

TOPIC = "t"


def datas(chunks: list[bytes]) -> list[str]:
    return [event.data for event in EventDecoder().feed(b"".join(chunks))]


class Sink:
    """A stream's sink as the hub sees it: records each chunk and answers ``answer``."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.answer: Any = None

    def __call__(self, body: bytes) -> Any:
        self.chunks.append(body)
        answer = self.answer
        return body if answer == "back" else answer


class Waiting:
    """What a sink answers for a send that waits: awaited by the subscriber's task."""

    def __init__(self) -> None:
        self.release = asyncio.get_running_loop().create_future()
        self.awaited = False

    def __await__(self) -> Generator[Any, None, None]:
        self.awaited = True
        yield from self.release.__await__()


async def _pushed(broadcaster: Broadcaster) -> tuple[Subscription, Sink, asyncio.Task[bytes]]:
    subscription = await broadcaster.open_subscription(TOPIC)
    sink = Sink()
    subscription.wire_chunks().push_to(sink)
    waiting = asyncio.ensure_future(subscription.next_chunk())
    await asyncio.sleep(0)  # it waits
    return subscription, sink, waiting


async def test_an_idle_subscriber_is_sent_its_events_while_its_task_sleeps() -> None:
    async with Broadcaster(MemoryBackend()) as broadcaster:
        _, sink, waiting = await _pushed(broadcaster)
        for count, data in enumerate(("one", "two", "three"), 1):
            await broadcaster.publish(TOPIC, data)
            await wait_until(lambda count=count: len(sink.chunks) == count)  # type: ignore[misc]
        await wait_until(lambda: datas(sink.chunks) == ["one", "two", "three"])
        assert len(sink.chunks) == 3  # one push per turn that had events
        assert not waiting.done()  # the subscriber's task never came back for them
        assert broadcaster.stats().delivered == 3
        waiting.cancel()


async def test_the_events_of_one_turn_go_out_in_one_push() -> None:
    async with Broadcaster(MemoryBackend()) as broadcaster:
        _, sink, waiting = await _pushed(broadcaster)
        await broadcaster.publish_many([BatchEvent(TOPIC, str(n)) for n in range(5)])
        await wait_until(lambda: bool(sink.chunks))
        assert len(sink.chunks) == 1
        assert datas(sink.chunks) == ["0", "1", "2", "3", "4"]
        assert not waiting.done()
        waiting.cancel()


async def test_subscribers_in_step_share_the_bytes_of_a_burst() -> None:
    async with Broadcaster(MemoryBackend()) as broadcaster:
        _, first, one = await _pushed(broadcaster)
        _, second, two = await _pushed(broadcaster)
        await broadcaster.publish_many([BatchEvent(TOPIC, str(n)) for n in range(3)])
        await wait_until(lambda: bool(first.chunks and second.chunks))
        assert datas(first.chunks) == datas(second.chunks) == ["0", "1", "2"]
        assert first.chunks[0] is second.chunks[0]  # joined once, for both
        one.cancel()
        two.cancel()


async def test_a_chunk_the_stream_hands_back_is_what_the_iteration_yields() -> None:
    async with Broadcaster(MemoryBackend()) as broadcaster:
        subscription, sink, waiting = await _pushed(broadcaster)
        sink.answer = "back"  # e.g. a ping in flight: the stream sends it itself
        await broadcaster.publish(TOPIC, "held")
        chunk = await asyncio.wait_for(waiting, 5)
        assert datas([chunk]) == ["held"]
        sink.answer = None
        again = asyncio.ensure_future(subscription.next_chunk())
        await asyncio.sleep(0)
        await broadcaster.publish(TOPIC, "pushed")
        await wait_until(lambda: datas(sink.chunks) == ["held", "pushed"])
        assert not again.done()
        again.cancel()


async def test_a_send_that_waits_is_finished_by_the_subscriber_before_it_takes_more() -> None:
    async with Broadcaster(MemoryBackend()) as broadcaster:
        _, sink, waiting = await _pushed(broadcaster)
        sink.answer = in_flight = Waiting()
        await broadcaster.publish(TOPIC, "first")
        await wait_until(lambda: in_flight.awaited)
        sink.answer = None
        await broadcaster.publish(TOPIC, "second")
        await broadcaster.publish(TOPIC, "third")
        await asyncio.sleep(0.01)
        assert datas(sink.chunks) == ["first"]  # nothing pushed while a send is in flight
        assert broadcaster.stats().queue_bytes > 0
        in_flight.release.set_result(None)
        # The subscriber finished the send, then takes what came meanwhile itself.
        chunk = await asyncio.wait_for(waiting, 5)
        assert datas([chunk]) == ["second", "third"]


async def test_a_send_error_is_raised_in_the_subscribers_task() -> None:
    class Failing:
        def __await__(self) -> Generator[Any, None, None]:
            raise RuntimeError("the server refused the message")
            yield

    async with Broadcaster(MemoryBackend()) as broadcaster:
        _, sink, waiting = await _pushed(broadcaster)
        sink.answer = Failing()
        await broadcaster.publish(TOPIC, "x")
        with pytest.raises(RuntimeError, match="refused"):
            await asyncio.wait_for(waiting, 5)


async def test_the_end_of_the_broadcaster_wakes_a_pushed_subscriber() -> None:
    broadcaster = Broadcaster(MemoryBackend())
    async with broadcaster:
        subscription, sink, waiting = await _pushed(broadcaster)
        await broadcaster.publish(TOPIC, "last")
        await wait_until(lambda: bool(sink.chunks))
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, 5)
    assert subscription.closed


# -- whole streams ----------------------------------------------------------------------------

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


class Server:
    """A fake ASGI server for one request: records what is sent, and can make a send wait
    (flow control) or fail (the connection is gone)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.hold: asyncio.Future[None] | None = None
        self.hold_when: Any = None  # a body the next send waits on
        self.held = asyncio.Event()
        self.fail_when: Any = None
        self.gone = asyncio.Event()
        self.started = asyncio.Event()

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])

    async def send(self, message: Any) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            body = message.get("body", b"")
            if self.fail_when is not None and self.fail_when(body):
                raise OSError("connection lost")
            if self.hold_when is not None and self.hold_when(body):
                self.hold_when = None
                self.hold = asyncio.get_running_loop().create_future()
                self.held.set()
                await self.hold
            self.messages.append(dict(message))
            self.started.set()
        finally:
            self.in_flight -= 1

    async def receive(self) -> Any:
        await self.gone.wait()
        return {"type": "http.disconnect"}


def _scope(path: str = "/events") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 1234),
        "server": ("test", 80),
        "state": {},
    }


def _app(broadcaster: Broadcaster, **options: Any) -> Litestar:
    disconnects: list[str] = []

    @get("/events")
    async def events() -> ServerSentEvent:
        subscription = await broadcaster.open_subscription(TOPIC)
        return ServerSentEvent(subscription, on_disconnect=disconnects.append, **options)

    def request_id(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            REQUEST_ID.set("request-1")

            async def noting(message: Any) -> None:
                if message.get("body"):
                    SEEN.append(REQUEST_ID.get())
                await send(message)

            await app(scope, receive, noting)

        return middleware

    app = Litestar([events], middleware=[request_id])
    app.state.disconnects = disconnects
    return app


SEEN: list[str] = []


async def _serve(app: Litestar, server: Server) -> asyncio.Task[None]:
    task = asyncio.ensure_future(app(_scope(), server.receive, server.send))  # type: ignore[arg-type]
    await asyncio.wait_for(server.started.wait(), 5)
    await asyncio.sleep(0.01)  # the stream waits for its first event
    return task


async def _end(broadcaster: Broadcaster, task: Awaitable[None]) -> None:
    await broadcaster.close()
    await asyncio.wait_for(task, 5)


async def test_pushed_sends_run_in_the_requests_context() -> None:
    SEEN.clear()
    broadcaster = Broadcaster(MemoryBackend())
    await broadcaster.start()
    server = Server()
    task = await _serve(_app(broadcaster), server)
    REQUEST_ID.set("the publisher's")
    for n in range(3):
        await broadcaster.publish(TOPIC, str(n))
        await asyncio.sleep(0)
    await wait_until(lambda: len(datas([server.body])) == 3)
    await _end(broadcaster, task)
    assert datas([server.body]) == ["0", "1", "2"]
    assert len(SEEN) == 3
    assert set(SEEN) == {"request-1"}  # never the publisher's context


async def test_a_ping_in_flight_holds_the_events_back_until_it_is_written() -> None:
    broadcaster = Broadcaster(MemoryBackend())
    await broadcaster.start()
    server = Server()
    task = await _serve(_app(broadcaster, ping_interval=0.05), server)
    server.hold_when = lambda body: body.startswith(b":")
    await asyncio.wait_for(server.held.wait(), 5)  # a ping waits in the server's send
    for n in range(3):
        await broadcaster.publish(TOPIC, str(n))
        await asyncio.sleep(0)
    await asyncio.sleep(0.02)
    assert datas([server.body]) == []
    assert server.hold is not None
    server.hold.set_result(None)
    await wait_until(lambda: len(datas([server.body])) == 3)
    await _end(broadcaster, task)
    assert server.most_in_flight == 1  # never two sends at once
    got = EventDecoder().feed_with_comments(server.body)
    assert got[0] == DecodedComment("ping")
    assert [item.data for item in got if not isinstance(item, DecodedComment)] == ["0", "1", "2"]


async def test_a_send_that_waits_keeps_later_events_in_order() -> None:
    broadcaster = Broadcaster(MemoryBackend())
    await broadcaster.start()
    server = Server()
    task = await _serve(_app(broadcaster), server)
    server.hold_when = lambda body: b"data: 1\r\n" in body
    for n in range(6):
        await broadcaster.publish(TOPIC, str(n))
        await asyncio.sleep(0)
        if n == 1:
            await asyncio.wait_for(server.held.wait(), 5)
    assert datas([server.body]) == ["0"]
    assert server.hold is not None
    server.hold.set_result(None)
    await wait_until(lambda: len(datas([server.body])) == 6)
    await broadcaster.publish(TOPIC, "6")  # pushed again once the stream caught up
    await wait_until(lambda: len(datas([server.body])) == 7)
    await _end(broadcaster, task)
    assert datas([server.body]) == [str(n) for n in range(7)]
    assert server.most_in_flight == 1


async def test_a_pushed_send_that_finds_the_client_gone_ends_the_stream() -> None:
    broadcaster = Broadcaster(MemoryBackend())
    await broadcaster.start()
    server = Server()
    app = _app(broadcaster)
    task = await _serve(app, server)
    server.fail_when = lambda body: b"data: gone" in body
    await broadcaster.publish(TOPIC, "kept")
    await wait_until(lambda: datas([server.body]) == ["kept"])
    await broadcaster.publish(TOPIC, "gone")
    await asyncio.wait_for(task, 5)  # the stream ended on its own
    assert app.state.disconnects == ["disconnect"]
    assert broadcaster.stats().subscribers.get(TOPIC, 0) == 0
    await broadcaster.close()


async def test_a_subscriber_of_several_topics_is_woken_as_before() -> None:
    async with Broadcaster(MemoryBackend()) as broadcaster:
        several = await broadcaster.open_subscription([TOPIC, "u"])
        sink = Sink()
        several.wire_chunks().push_to(sink)
        waiting = asyncio.ensure_future(several.next_chunk())
        await asyncio.sleep(0)
        await broadcaster.publish(TOPIC, "x")
        chunk = await asyncio.wait_for(waiting, 5)
        assert datas([chunk]) == ["x"]
        assert sink.chunks == []


async def test_a_pushed_subscription_dropped_unclosed_is_still_collected() -> None:
    async with Broadcaster(MemoryBackend()) as broadcaster:
        subscription, sink, waiting = await _pushed(broadcaster)
        sink.answer = "back"
        await broadcaster.publish(TOPIC, "x")
        await asyncio.wait_for(waiting, 5)  # its wait is over: it waits nowhere now
        assert broadcaster.stats().subscribers == {TOPIC: 1}
        del subscription, sink, waiting
        gc.collect()  # nothing of the topic keeps it: its finalizer unsubscribes it
        assert broadcaster.stats().subscribers.get(TOPIC, 0) == 0
