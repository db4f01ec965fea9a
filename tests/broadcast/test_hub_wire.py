"""The fan-out's wire path and its counters: a subscription's chunks reach the stream as the
bytes they are (no RawEvent made and unwrapped per delivery), chosen once per stream from a
content that says it gives wire bytes; plain bytes a handler yields stay data. And the one
object that holds the hub's counters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, get
from litestar.testing import TestClient

from litestar_sse import RawEvent, ServerSentEvent
from litestar_sse._message import SEND_AS_IS, wire_chunks_of
from litestar_sse.broadcast import Broadcaster, MemoryBackend
from litestar_sse.broadcast._hub.counters import PEAK_PERIOD, HubCounters
from litestar_sse.codec._decoder import EventDecoder

WIRE = b"event: tick\r\nid: 7\r\ndata: one\r\n\r\n"


class Wired:
    """A content whose wire bytes differ from its items: which of the two a stream sends
    shows which path it took."""

    def __init__(self) -> None:
        self.closed = False

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._items()

    async def _items(self) -> AsyncIterator[Any]:
        yield b"as data"

    def wire_chunks(self) -> AsyncIterator[bytes]:
        return self._wire()

    async def _wire(self) -> AsyncIterator[bytes]:
        try:
            yield WIRE
            yield b"data: two\r\n\r\n"
        finally:
            self.closed = True


def _body(content: Any) -> bytes:
    @get("/", sync_to_thread=False)
    def handler() -> ServerSentEvent:
        return ServerSentEvent(content)

    with TestClient(Litestar([handler])) as client:
        response = client.get("/")
    assert response.status_code == 200
    return bytes(response.content)


def test_a_wire_source_is_sent_as_its_bytes() -> None:
    content = Wired()
    assert _body(content) == WIRE + b"data: two\r\n\r\n"
    assert content.closed


def test_bytes_a_handler_yields_stay_data() -> None:
    async def items() -> AsyncIterator[bytes]:
        yield WIRE

    events = list(EventDecoder().feed(_body(items())))
    assert [event.data for event in events] == [WIRE.decode().replace("\r\n", "\n")]
    assert events[0].event == "message"


def test_wire_chunks_of_asks_the_content_once() -> None:
    async def plain() -> AsyncIterator[bytes]:
        yield b"x"

    generator = plain()
    assert wire_chunks_of(generator) is None
    assert wire_chunks_of([b"x"]) is None
    assert wire_chunks_of(Wired()) is not None
    chunk = b"data: shared\r\n\r\n" * 3
    assert SEND_AS_IS(chunk) is chunk  # the very object: no copy per delivery


def test_a_subscription_streams_its_chunks_and_iterates_as_raw_events() -> None:
    broadcaster = Broadcaster(MemoryBackend())

    @get("/events")
    async def events() -> ServerSentEvent:
        subscription = await broadcaster.open_subscription("t")

        async def publish() -> None:
            await broadcaster.publish("t", "one", event="tick")
            await broadcaster.publish("t", "two")
            await broadcaster.close()

        asyncio.get_running_loop().call_later(0.05, lambda: asyncio.ensure_future(publish()))
        return ServerSentEvent(subscription)

    with TestClient(Litestar([events])) as client:
        body = client.get("/events").content
    got = [(event.event, event.data) for event in EventDecoder().feed(body)]
    assert got == [("tick", "one"), ("message", "two")]

    async def direct() -> list[Any]:
        async with Broadcaster(MemoryBackend()) as own:
            subscription = await own.open_subscription("t")
            await own.publish("t", "x")
            return [await anext(subscription)]

    (item,) = asyncio.run(direct())
    assert type(item) is RawEvent  # iterating it directly: the same items as before
    assert item.encode().endswith(b"data: x\r\n\r\n")


def test_a_wait_cancelled_just_before_a_publish_does_not_break_it() -> None:
    async def scenario() -> tuple[list[bytes], int]:
        async with Broadcaster(MemoryBackend()) as broadcaster:
            subscription = await broadcaster.open_subscription("t")
            other = await broadcaster.open_subscription("t")
            waiting = asyncio.ensure_future(subscription.next_chunk())
            woken = asyncio.ensure_future(other.next_chunk())
            await asyncio.sleep(0)  # both wait
            waiting.cancel()  # its future is cancelled; its task has not run yet
            await broadcaster.publish("t", "after")  # wakes the other, skips the cancelled
            chunk = await asyncio.wait_for(woken, 5)
            await asyncio.gather(waiting, return_exceptions=True)
            again = await asyncio.wait_for(subscription.next_chunk(), 5)  # still subscribed
            return [chunk, again], broadcaster.stats().delivered

    chunks, delivered = asyncio.run(scenario())
    assert all(chunk.endswith(b"data: after\r\n\r\n") for chunk in chunks)
    assert delivered == 2


# -- HubCounters -----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_queue_peak_covers_the_current_period_and_the_one_before() -> None:
    clock = Clock()
    counters = HubCounters(clock)
    counters.queue_peak = 50
    assert counters.peak() == 50
    clock.now += PEAK_PERIOD  # a new period: the old peak still counts
    assert counters.peak() == 50
    counters.queue_peak = 20
    assert counters.peak() == 50
    clock.now += PEAK_PERIOD  # two periods on: only the last one
    assert counters.peak() == 20
    clock.now += PEAK_PERIOD  # nothing since
    assert counters.peak() == 0


def test_counters_start_at_zero_with_every_reason_present() -> None:
    counters = HubCounters()
    assert set(counters.gaps) == {"invalid", "epoch", "retention", "overflow"}
    assert all(value == 0 for value in counters.gaps.values())
    counters.note_gap("retention")
    counters.note_error("replay")
    assert counters.gaps["retention"] == 1
    assert counters.errors["replay"] == 1
    assert (counters.received, counters.delivered, counters.sending_bytes) == (0, 0, 0)
