"""Large bodies go out in bounded slices; a body that is never sent closes its producer.

A server copies each body it frames (uvicorn joins it with the chunk header) and keeps what
the socket did not take, so one send of a big event holds a private copy of all of it per
stream. Slices bound that copy; they must still read as one event, with no ping between them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from litestar_sse._message import make_item_encoder
from litestar_sse.asgi._slices import MAX_SEND_BYTES
from tests.sse_wire import Ev, both, http_scope
from tests.test_asgi import END, Client, never, sse

pytestmark = pytest.mark.anyio

BIG = "x" * (MAX_SEND_BYTES * 8 + 123)  # under the decoder's 1 MiB line limit


async def test_a_large_event_goes_out_in_slices_and_arrives_whole() -> None:
    async def producer() -> AsyncIterator[str]:
        yield "small"
        yield BIG
        yield "after"

    client = Client()
    client.send_delay = 0.004  # slower than the ping interval over the whole event
    response = sse(producer(), ping_interval=0.01, send_timeout=5)
    await client.run(response)
    bodies = [chunk for chunk in client.chunks if chunk]
    assert max(len(chunk) for chunk in bodies) <= MAX_SEND_BYTES
    assert len(bodies) >= 9
    # no ping between the slices of the event: it decodes whole, right after "small"
    assert both(client.chunks) == [Ev("small"), Ev(BIG), Ev("after")]
    event_start = next(i for i, chunk in enumerate(bodies) if chunk.startswith(b"data: xx"))
    event_end = next(i for i, chunk in enumerate(bodies) if chunk.endswith(b"x\r\n\r\n"))
    assert not any(b": ping" in chunk for chunk in bodies[event_start : event_end + 1])


async def test_a_large_item_of_a_sync_iterator_goes_out_in_slices() -> None:
    def producer() -> Iterator[str]:
        yield BIG

    client = Client()
    await client.run(sse(producer()))
    assert max(len(chunk) for chunk in client.chunks) <= MAX_SEND_BYTES
    assert both(client.chunks) == [Ev(BIG)]


class GatedClient(Client):
    """Holds the ``hold_at``-th body send until ``release`` is set."""

    def __init__(self, hold_at: int) -> None:
        super().__init__()
        self.hold_at = hold_at
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, message: Any) -> None:
        body = message["type"] == "http.response.body"
        if body and len(self.body_messages) == self.hold_at and not self.release.is_set():
            self.held.set()
            await self.release.wait()  # a stop cancels it here: this slice is not sent
        await super().send(message)


async def test_a_clean_stop_in_the_middle_of_a_large_event_completes_it_first() -> None:
    async def producer() -> AsyncIterator[str]:
        yield BIG
        await asyncio.Event().wait()
        yield "never"  # pragma: no cover

    client = GatedClient(hold_at=3)  # two slices went out, the third waits
    response = sse(producer(), ping_interval=30)
    task = asyncio.ensure_future(client.run(response))
    await asyncio.wait_for(client.held.wait(), 5)
    response.stop("shutdown", closing=b"data: bye\r\n\r\n")
    await asyncio.sleep(0)
    client.release.set()
    await task
    assert both(client.chunks) == [Ev(BIG), Ev("bye")]
    assert client.body_messages[-1] == END


class ClosableSource:
    """An async iterator that records being closed and being iterated."""

    def __init__(self) -> None:
        self.closed = 0
        self.iterated = False

    def __aiter__(self) -> ClosableSource:
        return self

    async def __anext__(self) -> str:
        self.iterated = True
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self.closed += 1


async def test_a_head_request_closes_the_producer_at_once() -> None:
    source = ClosableSource()

    def generator() -> Iterator[int]:
        yield 1  # pragma: no cover

    sync_source = generator()
    for producer in (source, sync_source):
        response = sse(producer)
        await asyncio.wait_for(response(http_scope(method="HEAD"), never, Client().send), 5)
    assert (source.closed, source.iterated) == (1, False)
    assert sync_source.gi_frame is None  # closed


async def test_a_stream_stopped_before_it_started_closes_its_producer() -> None:
    source = ClosableSource()
    response = sse(source, item_encoder=make_item_encoder())
    response.stop("shutdown", closing=b"")
    client = Client()
    await client.run(response)
    assert (source.closed, source.iterated) == (1, False)
    assert client.body_messages == [END]
