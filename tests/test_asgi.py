"""The send loop, driven directly with fake ASGI ``send``/``receive`` under asyncio.

Timing bounds are wide on purpose (the CI machine has two busy cores): tests assert ordering
and counts, and time only with large margins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from litestar_sse._message import make_item_encoder
from litestar_sse.asgi import ASGIStreamingResponse, ASGIStreamingSSEResponse, StreamState
from litestar_sse.codec._decoder import DecodedComment, DecodedEvent, EventDecoder
from tests.polling import wait_until_sync
from tests.sse_wire import Ev, Recorder, both, comments, http_scope, items

pytestmark = pytest.mark.anyio

PING = b": ping\r\n"  # a comment line, no blank line: no decoder dispatches anything
END = {"type": "http.response.body", "body": b"", "more_body": False}
LOGGER = "litestar_sse"


def sse(iterator: Any, **kwargs: Any) -> ASGIStreamingSSEResponse:
    kwargs.setdefault("item_encoder", make_item_encoder())
    return ASGIStreamingSSEResponse(iterator=iterator, **kwargs)


async def never() -> Any:
    """A receive() that never reports anything."""
    await asyncio.Event().wait()


class Client:
    """Fake ASGI peer: records sends, can block them, and can report a disconnect."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.disconnect = asyncio.Event()
        self.sent_at_disconnect: int | None = None
        self.body_sent = asyncio.Event()
        self.block_after: int | None = None  # body sends allowed before send() hangs forever
        self.blocked = asyncio.Event()
        self.in_flight = 0
        self.max_in_flight = 0
        self.send_delay = 0.0

    @property
    def chunks(self) -> list[bytes]:
        return [m["body"] for m in self.messages if m["type"] == "http.response.body"]

    @property
    def body_messages(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "http.response.body"]

    async def send(self, message: Any) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if message["type"] == "http.response.body":
                n = len(self.body_messages)
                if self.block_after is not None and n >= self.block_after:
                    self.blocked.set()
                    await asyncio.Event().wait()
                if self.send_delay:
                    await asyncio.sleep(self.send_delay)
            self.messages.append(dict(message))
            if message["type"] == "http.response.body" and message.get("body"):
                self.body_sent.set()
        finally:
            self.in_flight -= 1

    async def receive(self) -> Any:
        await self.disconnect.wait()
        self.sent_at_disconnect = len(self.messages)
        return {"type": "http.disconnect"}

    async def run(self, response: Any, *, timeout: float = 10.0) -> None:
        await asyncio.wait_for(response(http_scope(), self.receive, self.send), timeout)


# -- disconnects -----------------------------------------------------------------------------


@pytest.mark.parametrize("handler_kind", ["sync", "async"])
async def test_disconnect_while_producer_awaits(handler_kind: str) -> None:
    state: dict[str, Any] = {"finally": False, "cleanup_awaited": False, "calls": 0}

    async def producer() -> AsyncIterator[str]:
        try:
            yield "first"
            await asyncio.Event().wait()  # idle until cancelled
            yield "never"
        finally:
            state["finally"] = True
            await asyncio.sleep(0.01)  # cleanup may await after a disconnect
            state["cleanup_awaited"] = True

    def on_sync() -> None:
        state["calls"] += 1

    async def on_async() -> None:
        await asyncio.sleep(0)
        state["calls"] += 1

    client = Client()
    response = sse(producer(), on_disconnect=on_sync if handler_kind == "sync" else on_async)
    task = asyncio.ensure_future(client.run(response))
    await asyncio.wait_for(client.body_sent.wait(), 5)
    client.disconnect.set()
    await task
    assert state == {"finally": True, "cleanup_awaited": True, "calls": 1}
    assert client.sent_at_disconnect is not None
    assert len(client.messages) == client.sent_at_disconnect  # nothing sent after it
    assert both(client.chunks) == [Ev("first")]
    assert all(m["more_body"] for m in client.body_messages)  # no end of body either


@pytest.mark.parametrize("source", ["async", "list", "sync"])
async def test_server_reporting_closed_connection_counts_as_a_disconnect(source: str) -> None:
    """A server that raises OSError from send() (ASGI spec 2.4) ends the stream at once."""
    state: dict[str, Any] = {"finally": False, "calls": 0}

    async def agen() -> AsyncIterator[int]:
        try:
            for number in range(100):
                yield number
        finally:
            state["finally"] = True

    def sgen() -> Iterator[int]:
        try:
            for number in range(100):
                yield number
                time.sleep(0.001)
        finally:
            state["finally"] = True

    content: Any = {"async": agen, "list": lambda: list(range(100)), "sync": sgen}[source]()
    client = Client()
    bodies: list[bytes] = []

    async def send(message: Any) -> None:
        if message["type"] == "http.response.body":
            if len(bodies) == 2:
                raise OSError("connection closed")
            bodies.append(message["body"])

    def on_disconnect() -> None:
        state["calls"] += 1

    response = sse(content, on_disconnect=on_disconnect)
    await asyncio.wait_for(response(http_scope(), client.receive, send), 10)
    assert len(bodies) == 2  # nothing after the failed send, not even the end of body
    assert state["calls"] == 1
    if source == "async":
        assert state["finally"]
    if source == "sync":
        assert await asyncio.to_thread(wait_until_sync, lambda: state["finally"])


async def test_disconnect_while_send_is_blocked_closes_async_generator() -> None:
    state: dict[str, Any] = {"finally": False, "cleanup_awaited": False}
    on_disconnect_calls: list[int] = []

    async def producer() -> AsyncIterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            state["finally"] = True
            await asyncio.sleep(0)
            state["cleanup_awaited"] = True

    client = Client()
    client.block_after = 2
    gen = producer()
    response = sse(gen, on_disconnect=lambda: on_disconnect_calls.append(1))
    task = asyncio.ensure_future(client.run(response))
    await asyncio.wait_for(client.blocked.wait(), 5)
    assert not state["finally"]
    client.disconnect.set()
    await task
    assert state == {"finally": True, "cleanup_awaited": True}
    assert on_disconnect_calls == [1]
    assert gen.ag_frame is None  # closed, not just abandoned
    assert both(client.chunks) == [Ev("0"), Ev("1")]
    assert len(client.messages) == client.sent_at_disconnect


async def test_sync_generator_interrupted_runs_finally_in_worker_thread() -> None:
    finished = threading.Event()
    info: dict[str, Any] = {}

    def producer() -> Iterator[int]:
        try:
            i = 0
            while True:
                time.sleep(0.005)
                yield i
                i += 1
        finally:
            info["thread"] = threading.current_thread()
            finished.set()

    client = Client()
    response = sse(producer())
    task = asyncio.ensure_future(client.run(response))
    await asyncio.wait_for(client.body_sent.wait(), 5)
    client.disconnect.set()
    await task
    assert await asyncio.to_thread(finished.wait, 5)
    assert info["thread"] is not threading.main_thread()
    assert info["thread"].name == "litestar-sse-sync-iterator"
    sent = len(client.messages)
    await asyncio.sleep(0.05)
    assert len(client.messages) == sent == client.sent_at_disconnect


@pytest.mark.parametrize("source", ["async", "list", "sync"])
async def test_disconnect_stops_a_producer_that_never_awaits(source: str) -> None:
    """Once the connection is lost, uvicorn's send() returns at once without writing (no
    error, no wait). A producer that never awaits then never gives the disconnect watcher a
    turn: the stream must still end promptly, not run its producer to the end (or, endless,
    spin the event loop for ever)."""
    loop = asyncio.get_running_loop()
    total = 200_000
    encoded = [0]
    lost = asyncio.Event()
    closed = threading.Event()
    calls: list[int] = []

    def encode(item: int) -> bytes:
        encoded[0] += 1
        if source == "sync" and encoded[0] % 256 == 0:
            # Encoding that takes a while (holding the GIL, not sleeping): meanwhile the
            # worker thread refills the buffer, so the next batch is there without a wait.
            deadline = time.perf_counter() + 0.01
            while time.perf_counter() < deadline:
                pass
        return b"data: %d\r\n\r\n" % item

    async def agen() -> AsyncIterator[int]:
        try:
            for number in range(total):
                yield number
        finally:
            closed.set()

    def sgen() -> Iterator[int]:
        try:
            yield from range(total)
        finally:
            closed.set()

    async def send(message: Any) -> None:
        if lost.is_set():
            return  # uvicorn, after connection_lost
        if message["type"] == "http.response.body" and message["body"]:
            # The write waits for the socket to drain; it drains and, in the same loop turn,
            # the connection is lost: the send loop is woken before the disconnect watcher.
            drained = loop.create_future()
            loop.call_soon(drained.set_result, None)
            loop.call_soon(lost.set)
            await drained

    async def receive() -> Any:
        await lost.wait()
        return {"type": "http.disconnect"}

    content: Any = {"async": agen, "list": lambda: list(range(total)), "sync": sgen}[source]()
    response = ASGIStreamingSSEResponse(
        iterator=content, item_encoder=encode, on_disconnect=lambda: calls.append(1)
    )
    await asyncio.wait_for(response(http_scope(), receive, send), 30)
    assert encoded[0] < total // 10, f"the producer ran on after the disconnect: {encoded[0]}"
    assert calls == [1]
    if source != "list":
        assert await asyncio.to_thread(closed.wait, 5)


async def test_blocking_sync_iterator_does_not_block_the_loop() -> None:
    def producer() -> Iterator[int]:
        for i in range(3):
            time.sleep(0.15)
            yield i

    ticks = 0
    stop = False

    async def ticker() -> None:
        nonlocal ticks
        while not stop:
            await asyncio.sleep(0.01)
            ticks += 1

    tick_task = asyncio.ensure_future(ticker())
    client = Client()
    started = time.monotonic()
    await client.run(sse(producer()))
    elapsed = time.monotonic() - started
    stop = True
    await tick_task
    assert both(b"".join(client.chunks)) == [Ev("0"), Ev("1"), Ev("2")]
    # 0.45 s of blocking in the producer: a blocked loop would tick ~0 times
    assert elapsed >= 0.4
    assert ticks >= 10


async def test_queued_sync_items_are_coalesced_into_one_send() -> None:
    first_sent = threading.Event()
    all_queued = threading.Event()

    def producer() -> Iterator[int]:
        yield 0
        # produce the rest only while the first send is still in progress
        assert first_sent.wait(5)
        yield from range(1, 51)
        all_queued.set()

    class HoldFirstSend(Client):
        async def send(self, message: Any) -> None:
            await super().send(message)
            if message["type"] == "http.response.body" and len(self.body_messages) == 1:
                first_sent.set()
                assert await asyncio.to_thread(all_queued.wait, 5)
                await asyncio.sleep(0.02)

    client = HoldFirstSend()
    await client.run(sse(producer()))
    chunks = [c for c in client.chunks if c]
    assert len(chunks) == 2
    assert both(chunks[0]) == [Ev("0")]
    assert both(chunks[1]) == [Ev(str(i)) for i in range(1, 51)]
    assert client.body_messages[-1] == END


@pytest.mark.parametrize("how", ["finished", "stopped"])
async def test_every_send_gets_a_message_of_its_own(how: str) -> None:
    """Middleware (compression) rewrites the messages it passes on; none may be shared."""

    class Rewriting(Client):
        async def send(self, message: Any) -> None:
            await super().send(message)
            message["body"] = b"rewritten"

    for _ in range(2):
        client = Rewriting()
        response = sse([1] if how == "finished" else [])
        if how == "stopped":
            response.stop("shutdown", closing=b"")
        await client.run(response)
        assert client.body_messages[-1] == END


async def test_list_content_is_sent_one_event_per_send() -> None:
    client = Client()
    await client.run(sse([1, 2, 3]))
    assert client.chunks == [b"data: 1\r\n\r\n", b"data: 2\r\n\r\n", b"data: 3\r\n\r\n", b""]


# -- pings -----------------------------------------------------------------------------------


async def test_idle_stream_gets_pings() -> None:
    async def producer() -> AsyncIterator[str]:
        yield "start"
        await asyncio.sleep(0.6)
        yield "end"

    client = Client()
    await client.run(sse(producer(), ping_interval=0.05))
    chunks = client.chunks
    pings = [c for c in chunks if c == PING]
    assert 3 <= len(pings) <= 14  # ~11 expected
    assert chunks[0] == b"data: start\r\n\r\n"
    assert chunks[-2] == b"data: end\r\n\r\n"
    assert chunks[-1] == b""
    assert set(chunks[1:-2]) == {PING}  # only pings while idle
    assert both(chunks) == [Ev("start"), Ev("end")]
    assert comments(chunks) == ["ping"] * len(pings)


@pytest.mark.parametrize(
    ("message", "sep", "expected"),
    [
        ("keepalive", "\n", b": keepalive\n"),
        ("", "\r", b": \r"),
        ("two\nlines", "\r\n", b": two\r\n: lines\r\n"),
    ],
)
async def test_ping_message_and_separator(message: str, sep: str, expected: bytes) -> None:
    async def producer() -> AsyncIterator[str]:
        await asyncio.sleep(0.3)
        yield "x"

    client = Client()
    response = sse(
        producer(), ping_interval=0.05, ping_message=message, sep=sep,
        item_encoder=make_item_encoder(sep=sep),
    )  # fmt: skip
    await client.run(response)
    pings = [c for c in client.chunks if c not in (b"", b"data: x" + sep.encode() * 2)]
    assert pings
    assert set(pings) == {expected}


@pytest.mark.parametrize("send_timeout", [None, 0.5, 5.0])
async def test_ping_interval_holds_with_a_longer_send_timeout(send_timeout: float | None) -> None:
    async def producer() -> AsyncIterator[str]:
        yield "start"
        await asyncio.sleep(0.6)
        yield "end"

    client = Client()
    await client.run(sse(producer(), ping_interval=0.05, send_timeout=send_timeout))
    pings = [c for c in client.chunks if c == PING]
    # ~11 pings in 0.6 s; a timer that waits for send_timeout after each ping sends 1 or 2
    assert len(pings) >= 4
    assert both(client.chunks) == [Ev("start"), Ev("end")]


@pytest.mark.parametrize("send_timeout", [None, 5.0])
async def test_ping_after_a_slow_send_with_a_longer_send_timeout(
    send_timeout: float | None,
) -> None:
    async def producer() -> AsyncIterator[str]:
        yield "slow"
        await asyncio.sleep(0.8)
        yield "end"

    class SlowFirstSend(Client):
        async def send(self, message: Any) -> None:
            if message.get("body") == b"data: slow\r\n\r\n":
                await asyncio.sleep(0.15)  # the timer fires while this send is in flight
            await super().send(message)

    client = SlowFirstSend()
    await client.run(sse(producer(), ping_interval=0.1, send_timeout=send_timeout))
    assert len([c for c in client.chunks if c == PING]) >= 3  # ~7 expected


async def test_no_ping_while_data_flows_faster_than_the_interval() -> None:
    async def producer() -> AsyncIterator[int]:
        for i in range(25):
            await asyncio.sleep(0.02)
            yield i

    client = Client()
    await client.run(sse(producer(), ping_interval=0.25))
    assert PING not in client.chunks
    assert len(both(client.chunks)) == 25


async def test_no_ping_without_ping_interval() -> None:
    async def producer() -> AsyncIterator[int]:
        yield 1
        await asyncio.sleep(0.2)
        yield 2

    client = Client()
    await client.run(sse(producer(), ping_interval=None))
    assert client.chunks == [b"data: 1\r\n\r\n", b"data: 2\r\n\r\n", b""]


async def test_pings_never_overlap_an_event_send() -> None:
    big = "x" * 5000 + "\n" + "y" * 5000

    async def producer() -> AsyncIterator[str]:
        for _ in range(15):
            await asyncio.sleep(0.015)
            yield big

    client = Client()
    client.send_delay = 0.02  # slow client: timers fire while a send is in progress
    await client.run(sse(producer(), ping_interval=0.01))
    assert client.max_in_flight == 1  # never two concurrent send() calls
    chunks = client.chunks
    assert PING in chunks  # the test exercised pings at all
    for chunk in chunks[:-1]:
        # every send is whole events (ending in a blank line) or a whole ping line
        decoder = EventDecoder()
        got = decoder.feed_with_comments(chunk)
        assert got
        assert chunk.endswith(b"\r\n\r\n") or chunk == PING
        assert all(
            (isinstance(x, DecodedEvent) and x.data == big.replace("\n", "\n"))
            or x == DecodedComment("ping")
            for x in got
        )
    assert len(both(chunks)) == 15


async def test_ping_period_does_not_drift_when_the_loop_lags() -> None:
    """Each ping is due one interval after the previous was due, not after it actually ran.

    A loop that is late by ``lag`` on every timer would otherwise stretch every period to
    ``interval + lag``: with 10,000 streams, clients counted missing pings.
    """
    interval, lag, window = 0.05, 0.02, 2.0

    async def producer() -> AsyncIterator[str]:
        yield "start"
        await asyncio.Event().wait()

    async def hog() -> None:
        while True:
            await asyncio.sleep(0.001)
            time.sleep(lag)  # noqa: ASYNC251 - block the loop on purpose: timers fire late

    client = Client()
    hogger = asyncio.create_task(hog())
    task = asyncio.create_task(client.run(sse(producer(), ping_interval=interval)))
    await asyncio.sleep(window)
    client.disconnect.set()
    await task
    hogger.cancel()
    pings = client.chunks.count(PING)
    # Drifting: about window / (interval + lag / 2) = 33 (measured 31). Due-based: 40.
    assert pings >= 37, pings


async def test_ping_timer_counts_from_the_last_write() -> None:
    async def producer() -> AsyncIterator[int]:
        for i in range(6):
            yield i
            await asyncio.sleep(0.1)

    client = Client()
    # each gap is 0.1 s < 0.3 s interval: a timer that ignores writes would ping anyway
    await client.run(sse(producer(), ping_interval=0.3))
    assert PING not in client.chunks


# -- the reason given to on_disconnect -------------------------------------------------------


async def _reason_of(cut: str, handler_kind: str) -> list[object]:
    """Run a stream that the client leaves as ``cut`` says; what ``on_disconnect`` received."""
    got: list[object] = []

    async def producer() -> AsyncIterator[int]:
        i = 0
        while True:
            yield i
            i += 1
            await asyncio.sleep(0.01)

    def with_reason(reason: str) -> None:
        got.append(reason)

    async def with_reason_async(reason: str, extra: int = 0) -> None:
        got.append(reason)

    def without(*, optional: str = "kw") -> None:
        got.append(None)

    handler: Any = {"sync": with_reason, "async": with_reason_async, "none": without}[handler_kind]
    client = Client()
    if cut == "send_timeout":
        client.block_after = 2
        await client.run(sse(producer(), send_timeout=0.1, on_disconnect=handler))
    elif cut == "oserror":

        async def send(message: Any) -> None:
            if message["type"] == "http.response.body" and message["body"]:
                raise OSError("connection closed")

        await sse(producer(), on_disconnect=handler)(http_scope(), client.receive, send)
    else:
        task = asyncio.ensure_future(client.run(sse(producer(), on_disconnect=handler)))
        await asyncio.wait_for(client.body_sent.wait(), 5)
        client.disconnect.set()
        await task
    return got


@pytest.mark.parametrize(
    ("cut", "reason"),
    [("disconnect", "disconnect"), ("oserror", "disconnect"), ("send_timeout", "send_timeout")],
)
@pytest.mark.parametrize("handler_kind", ["sync", "async"])
async def test_on_disconnect_gets_the_reason_if_it_takes_one(
    cut: str, reason: str, handler_kind: str
) -> None:
    assert await _reason_of(cut, handler_kind) == [reason]


async def test_on_disconnect_without_a_positional_parameter_is_called_without() -> None:
    assert await _reason_of("send_timeout", "none") == [None]


@pytest.mark.parametrize(
    "handler",
    [lambda a, b: None, lambda *, reason: None, "not callable"],
    ids=["two-required", "keyword-only", "not-callable"],
)
def test_on_disconnect_that_cannot_be_called_is_refused_at_construction(handler: Any) -> None:
    with pytest.raises(TypeError, match="on_disconnect must"):
        sse([1], on_disconnect=handler)


# -- send timeout ----------------------------------------------------------------------------


async def test_send_timeout_cuts_a_stuck_send(caplog: pytest.LogCaptureFixture) -> None:
    state = {"finally": False}
    on_disconnect: list[int] = []

    async def producer() -> AsyncIterator[str]:
        try:
            while True:
                yield "x" * 1000
                await asyncio.sleep(0)
        finally:
            state["finally"] = True

    client = Client()
    client.block_after = 3
    caplog.set_level(logging.WARNING, LOGGER)
    started = time.monotonic()
    response = sse(producer(), send_timeout=0.2, on_disconnect=lambda: on_disconnect.append(1))
    await client.run(response)
    elapsed = time.monotonic() - started
    assert state["finally"]
    assert 0.15 <= elapsed < 5
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "did not read" in warnings[0].getMessage()
    assert warnings[0].exc_info is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(client.chunks) == 3  # nothing after the stuck send; no end-of-body either
    assert on_disconnect == [1]  # a client that stopped reading is gone: the callback runs once


async def test_send_timeout_covers_pings(caplog: pytest.LogCaptureFixture) -> None:
    state = {"finally": False}

    async def producer() -> AsyncIterator[str]:
        try:
            yield "only"
            await asyncio.Event().wait()
        finally:
            state["finally"] = True

    client = Client()
    client.block_after = 1  # the first ping never completes
    caplog.set_level(logging.WARNING, LOGGER)
    started = time.monotonic()
    await client.run(sse(producer(), ping_interval=0.05, send_timeout=0.25))
    elapsed = time.monotonic() - started
    assert state["finally"]
    assert 0.25 <= elapsed < 5
    assert client.chunks == [b"data: only\r\n\r\n"]
    assert any("did not read" in r.getMessage() for r in caplog.records)


async def test_send_timeout_does_not_fire_for_a_slow_but_moving_client() -> None:
    async def producer() -> AsyncIterator[int]:
        for i in range(8):
            yield i

    client = Client()
    client.send_delay = 0.05  # each send well under the timeout, total well over it
    await client.run(sse(producer(), send_timeout=0.2))
    assert len(both(client.chunks)) == 8
    assert client.body_messages[-1]["more_body"] is False


async def test_send_timeout_for_sync_iterator() -> None:
    finished = threading.Event()

    def producer() -> Iterator[int]:
        try:
            i = 0
            while True:
                time.sleep(0.001)
                yield i
                i += 1
        finally:
            finished.set()

    client = Client()
    client.block_after = 1
    response = ASGIStreamingResponse(
        iterator=producer(), item_encoder=lambda i: b"%d," % i, send_timeout=0.2
    )
    await client.run(response)
    assert await asyncio.to_thread(finished.wait, 5)
    assert len(client.chunks) == 1


# -- the disconnect watcher ------------------------------------------------------------------


class ServerTransport:
    """What uvicorn's request cycle shows as its ``transport`` (asgi/_transport.py)."""

    def abort(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class UvicornCycle:
    """A ``receive`` shaped like uvicorn's: a method of an object with a ``transport``."""

    def __init__(self, receive: Any) -> None:
        self._receive = receive
        self.transport = ServerTransport()

    async def receive(self) -> Any:
        return await self._receive()


def served(receive: Any, server: str) -> Any:
    """``receive`` as a plain function, or as uvicorn's (watched without a task)."""
    return receive if server == "plain" else UvicornCycle(receive).receive


SERVERS = ["plain", "uvicorn"]


class UvicornClient(Client):
    """The fake peer whose receive() is uvicorn-shaped (a method, a transport beside it)."""

    def __init__(self) -> None:
        super().__init__()
        self.transport = ServerTransport()


async def test_a_uvicorn_receive_is_watched_without_a_task_of_its_own() -> None:
    """On uvicorn an open stream is one task (the server's), not two: no watcher task, and
    still every disconnect is heard, with nothing sent after it."""
    streams = 20
    cleaned: list[int] = []
    reasons: list[object] = []

    async def producer(number: int) -> AsyncIterator[int]:
        try:
            yield number
            await asyncio.Event().wait()  # idle until the client leaves
        finally:
            cleaned.append(number)

    clients = [UvicornClient() for _ in range(streams)]
    before = asyncio.all_tasks()
    runs = [
        asyncio.ensure_future(
            sse(producer(n), on_disconnect=reasons.append)(http_scope(), c.receive, c.send)
        )
        for n, c in enumerate(clients)
    ]
    await asyncio.wait_for(asyncio.gather(*(c.body_sent.wait() for c in clients)), 5)
    assert len(asyncio.all_tasks() - before) == streams  # the streams' own tasks only
    for client in clients:
        client.disconnect.set()
    await asyncio.wait_for(asyncio.gather(*runs), 5)
    assert sorted(cleaned) == list(range(streams))
    assert reasons == ["disconnect"] * streams
    for n, client in enumerate(clients):
        assert len(client.messages) == client.sent_at_disconnect  # nothing after it
        assert both(client.chunks) == [Ev(str(n))]


@pytest.mark.parametrize("server", SERVERS)
async def test_a_receive_that_yields_to_the_loop_still_reports_the_disconnect(
    server: str,
) -> None:
    reasons: list[object] = []
    gone = asyncio.Event()

    async def producer() -> AsyncIterator[int]:
        yield 1
        await asyncio.Event().wait()

    async def receive() -> Any:
        await asyncio.sleep(0)  # a bare yield, then a future
        await gone.wait()
        await asyncio.sleep(0)
        return {"type": "http.disconnect"}

    send = Recorder()

    async def recording_send(message: Any) -> None:
        await send(message)
        if message.get("body"):
            gone.set()

    response = sse(producer(), on_disconnect=reasons.append)
    await asyncio.wait_for(response(http_scope(), served(receive, server), recording_send), 5)
    assert reasons == ["disconnect"]
    assert send.chunks == [b"data: 1\r\n\r\n"]
    assert not send.ended


@pytest.mark.parametrize("server", SERVERS)
async def test_watcher_handles_many_messages_without_recursion(server: str) -> None:
    state = {"finally": False}
    calls: list[int] = []

    async def producer() -> AsyncIterator[int]:
        try:
            yield 1
            await asyncio.Event().wait()
        finally:
            state["finally"] = True

    sent_first = asyncio.Event()
    remaining = 5000

    async def receive() -> Any:
        nonlocal remaining
        if remaining:
            remaining -= 1
            return {"type": "http.request", "body": b"", "more_body": remaining > 0}
        await sent_first.wait()
        return {"type": "http.disconnect"}

    send = Recorder()

    async def recording_send(message: Any) -> None:
        await send(message)
        if message.get("body"):
            sent_first.set()

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(min(limit, 1000))
    try:
        response = sse(producer(), on_disconnect=lambda: calls.append(1))
        await asyncio.wait_for(response(http_scope(), served(receive, server), recording_send), 10)
    finally:
        sys.setrecursionlimit(limit)
    assert remaining == 0
    assert state["finally"]
    assert calls == [1]
    assert send.chunks == [b"data: 1\r\n\r\n"]


@pytest.mark.parametrize("server", SERVERS)
async def test_disconnect_after_the_end_is_ignored(server: str) -> None:
    """Servers report ``http.disconnect`` once the response is complete: not a client drop."""
    calls: list[int] = []

    class DisconnectAtEnd(Client if server == "plain" else UvicornClient):  # type: ignore[misc]
        async def send(self, message: Any) -> None:
            await super().send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.disconnect.set()
                await asyncio.sleep(0.02)  # the watcher sees it while the last send runs

    async def producer() -> AsyncIterator[int]:
        yield 1

    client = DisconnectAtEnd()
    await client.run(sse(producer(), on_disconnect=lambda: calls.append(1)))
    assert client.sent_at_disconnect is not None  # the watcher did receive it
    assert client.body_messages[-1]["more_body"] is False
    assert calls == []


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("when", ["at_once", "after_a_wait"])
async def test_receive_raising_is_not_a_disconnect(server: str, when: str) -> None:
    async def receive() -> Any:
        if when == "after_a_wait":
            await asyncio.sleep(0.01)
        raise RuntimeError("server without receive")

    send = Recorder()
    await sse([1, 2])(http_scope(), served(receive, server), send)
    assert send.body == b"data: 1\r\n\r\ndata: 2\r\n\r\n"
    assert send.ended


@pytest.mark.parametrize("server", SERVERS)
async def test_a_receive_whose_wait_is_cancelled_is_not_a_disconnect(server: str) -> None:
    """A future that receive() waits for, cancelled under it: the watch ends as a watching
    task would, nothing escapes into the event loop's exception handler, the stream goes on."""
    loop = asyncio.get_running_loop()
    escaped: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: escaped.append(context))

    async def receive() -> Any:
        waiter = loop.create_future()
        loop.call_later(0.01, waiter.cancel)
        return await waiter

    async def producer() -> AsyncIterator[int]:
        yield 1
        await asyncio.sleep(0.05)  # the wait is cancelled meanwhile
        yield 2

    send = Recorder()
    try:
        await sse(producer())(http_scope(), served(receive, server), send)
    finally:
        loop.set_exception_handler(previous)
    assert send.body == b"data: 1\r\n\r\ndata: 2\r\n\r\n"
    assert send.ended
    assert escaped == []


async def test_oserror_from_send_is_a_disconnect() -> None:
    state = {"finally": False}

    async def producer() -> AsyncIterator[int]:
        try:
            for i in range(100):
                yield i
        finally:
            state["finally"] = True

    count = 0

    async def send(message: Any) -> None:
        nonlocal count
        if message["type"] == "http.response.body":
            count += 1
            if count == 3:
                raise ConnectionResetError("peer gone")

    await asyncio.wait_for(sse(producer())(http_scope(), never, send), 5)  # type: ignore[arg-type]
    assert state["finally"]
    assert count == 3


# -- stopping: clean and hard stops ----------------------------------------------------------


@pytest.mark.parametrize("reason", ["shutdown", "lifetime"])
async def test_clean_stop_sends_closing_event_then_end(reason: Any) -> None:
    state = {"finally": False}
    calls: list[int] = []

    async def producer() -> AsyncIterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
                await asyncio.sleep(0.01)
        finally:
            state["finally"] = True

    client = Client()
    response = sse(producer(), on_disconnect=lambda: calls.append(1), ping_interval=10)
    closing = b"event: close\r\ndata: bye\r\n\r\n"
    task = asyncio.ensure_future(client.run(response))
    await asyncio.wait_for(client.body_sent.wait(), 5)
    response.stop(reason, closing=closing)
    response.stop("shutdown", closing=b"data: other\r\n\r\n")  # a later clean stop: ignored
    await task
    assert state["finally"]
    assert calls == []
    assert response.stop_reason == reason
    assert response.state is StreamState.DONE
    last_two = client.body_messages[-2:]
    assert last_two == [
        {"type": "http.response.body", "body": closing, "more_body": True},
        END,
    ]
    events = both(client.chunks)
    assert events[-1] == Ev("bye", "close")
    assert [e.data for e in events[:-1]] == [str(i) for i in range(len(events) - 1)]


async def test_clean_stop_without_closing_event_and_sync_producer() -> None:
    finished = threading.Event()

    def producer() -> Iterator[int]:
        try:
            while True:
                time.sleep(0.01)
                yield 1
        finally:
            finished.set()

    client = Client()
    response = sse(producer())
    task = asyncio.ensure_future(client.run(response))
    await asyncio.wait_for(client.body_sent.wait(), 5)
    response.stop("shutdown", closing=b"")
    await task
    assert client.body_messages[-1] == END
    assert all(e == Ev("1") for e in both(client.chunks))
    assert await asyncio.to_thread(finished.wait, 5)


@pytest.mark.parametrize("timed", [False, True], ids=["no-timer", "with-timer"])
async def test_clean_stop_when_producer_swallows_the_cancellation(timed: bool) -> None:
    async def producer() -> AsyncIterator[str]:
        yield "first"
        with contextlib.suppress(asyncio.CancelledError):  # a badly behaved producer
            await asyncio.Event().wait()
        yield "after-cancel"
        yield "more"

    client = Client()
    response = sse(producer(), ping_interval=30 if timed else None)
    task = asyncio.ensure_future(client.run(response))
    await asyncio.wait_for(client.body_sent.wait(), 5)
    response.stop("shutdown", closing=b"data: bye\r\n\r\n")
    await task
    assert both(client.chunks) == [Ev("first"), Ev("bye")]
    assert client.body_messages[-1] == END
    host_cancelling = getattr(task, "cancelling", lambda: 0)()
    assert host_cancelling == 0


@pytest.mark.parametrize(
    ("reason", "expected_body", "reasons"),
    [
        ("shutdown", [Ev("bye")], []),
        ("lifetime", [Ev("bye")], []),
        ("disconnect", [], ["disconnect"]),
        ("overflow", [], ["overflow"]),
    ],
)
async def test_a_stop_before_the_stream_started_ends_it_at_once(
    reason: Any, expected_body: list[Ev], reasons: list[str]
) -> None:
    ran: list[bool] = []

    async def producer() -> AsyncIterator[int]:
        ran.append(True)
        yield 1

    got: list[str] = []
    client = Client()
    response = sse(producer(), on_disconnect=got.append, ping_interval=0.05)
    closing = b"data: bye\r\n\r\n" if reason in ("shutdown", "lifetime") else None
    response.stop(reason, closing=closing)  # before the server called it: nothing to cancel
    await asyncio.wait_for(client.run(response), 5)
    assert ran == []
    assert both(client.chunks) == expected_body
    assert got == reasons
    if reason in ("shutdown", "lifetime"):
        assert client.body_messages[-1] == END


async def test_stop_after_the_end_does_nothing() -> None:
    client = Client()
    response = sse([1])
    await client.run(response)
    n = len(client.messages)
    response.stop("shutdown")
    await asyncio.sleep(0.01)
    assert len(client.messages) == n


async def test_a_stuck_clean_end_is_stopped_by_the_send_timeout() -> None:
    """The closing write of a clean stop is covered by send_timeout like any other write.

    (A stop used to be ignored once another was under way: a client that stopped reading
    during a shutdown kept its stream until the registry's grace period ran out.)
    """
    got: list[str] = []

    async def producer() -> AsyncIterator[int]:
        yield 1
        await asyncio.Event().wait()

    client = Client()
    client.block_after = 1  # the first event goes out; the closing write never completes
    response = sse(producer(), on_disconnect=got.append, send_timeout=0.2)
    task = asyncio.ensure_future(client.run(response))
    await asyncio.wait_for(client.body_sent.wait(), 5)
    response.stop("shutdown", closing=b"data: bye\r\n\r\n")
    await asyncio.wait_for(task, 5)
    assert got == ["send_timeout"]
    assert response.stop_reason == "send_timeout"
    assert both(client.chunks) == [Ev("1")]  # nothing after the stuck write, no end of body


async def test_a_hard_stop_overrides_a_clean_one_in_progress() -> None:
    async def producer() -> AsyncIterator[int]:
        yield 1
        await asyncio.Event().wait()

    client = Client()
    client.block_after = 1
    response = sse(producer())
    task = asyncio.ensure_future(client.run(response))
    await asyncio.wait_for(client.body_sent.wait(), 5)
    response.stop("shutdown", closing=b"data: bye\r\n\r\n")
    await asyncio.wait_for(client.blocked.wait(), 5)  # the closing write is stuck
    assert response.state is StreamState.FINISHING
    response.stop("shutdown")  # the grace period is over: no closing
    await asyncio.wait_for(task, 5)  # cancelled by its own stop: not an error
    assert response.state is StreamState.DONE
    assert both(client.chunks) == [Ev("1")]


@pytest.mark.parametrize("reason", ["disconnect", "send_timeout", "overflow"])
def test_a_client_gone_stop_cannot_end_cleanly(reason: Any) -> None:
    with pytest.raises(ValueError, match="cannot end cleanly"):
        sse([1]).stop(reason, closing=b"")


async def test_outside_cancellation_propagates() -> None:
    state = {"finally": False}

    async def producer() -> AsyncIterator[int]:
        try:
            yield 1
            await asyncio.Event().wait()
        finally:
            state["finally"] = True

    client = Client()
    task = asyncio.ensure_future(client.run(sse(producer(), ping_interval=0.05)))
    await asyncio.wait_for(client.body_sent.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert state["finally"]


# -- producer errors and odd producers -------------------------------------------------------


async def test_producer_error_is_logged_and_body_ends_cleanly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def producer() -> AsyncIterator[int]:
        yield 1
        raise KeyError("lost")

    client = Client()
    await client.run(sse(producer(), ping_interval=1))
    assert client.chunks == [b"data: 1\r\n\r\n", b""]
    assert client.body_messages[-1]["more_body"] is False
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.name == LOGGER
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], KeyError)


async def test_error_in_producer_cleanup_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def producer() -> AsyncIterator[int]:
        try:
            yield 1
            await asyncio.Event().wait()
        finally:
            raise RuntimeError("cleanup failed")

    client = Client()
    task = asyncio.ensure_future(client.run(sse(producer())))
    await asyncio.wait_for(client.body_sent.wait(), 5)
    client.disconnect.set()
    await task  # the error does not escape into the server
    assert "cleanup failed" in caplog.text


async def test_on_disconnect_error_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def producer() -> AsyncIterator[int]:
        yield 1
        await asyncio.Event().wait()

    def on_disconnect() -> None:
        raise RuntimeError("handler failed")

    client = Client()
    task = asyncio.ensure_future(client.run(sse(producer(), on_disconnect=on_disconnect)))
    await asyncio.wait_for(client.body_sent.wait(), 5)
    client.disconnect.set()
    await task
    assert "handler failed" in caplog.text


async def test_logger_argument_is_used(caplog: pytest.LogCaptureFixture) -> None:
    async def producer() -> AsyncIterator[int]:
        yield 1
        raise ValueError("custom")

    custom = logging.getLogger("tests.custom")
    client = Client()
    await client.run(sse(producer(), logger=custom))
    assert [r.name for r in caplog.records if r.levelno >= logging.ERROR] == ["tests.custom"]


# -- HEAD and plain streams ------------------------------------------------------------------


@pytest.mark.parametrize("via", ["flag", "scope"])
async def test_head_response_sends_no_body_and_never_starts_the_producer(via: str) -> None:
    started: list[bool] = []

    async def producer() -> AsyncIterator[int]:
        started.append(True)
        yield 1

    send = Recorder()
    response = sse(producer(), is_head_response=via == "flag")
    await asyncio.wait_for(
        response(http_scope(method="HEAD"), never, send),  # type: ignore[arg-type]
        5,
    )
    assert started == []
    assert len(send.starts) == 1
    assert send.bodies == [END]


async def test_plain_stream_chunks() -> None:
    async def producer() -> AsyncIterator[Any]:
        yield "caf\u00e9"
        yield b"|"
        yield bytearray(b"ba")
        yield memoryview(b"mv")

    client = Client()
    await client.run(ASGIStreamingResponse(iterator=producer(), media_type="text/plain"))
    assert client.chunks == ["caf\u00e9".encode(), b"|", b"ba", b"mv", b""]


async def test_item_encoder_output_goes_out_unchanged() -> None:
    raw = [b"event: a\ndata: 1\n\n", b": c\n\n", b"data: \xe2\x98\x83\n\n"]
    client = Client()
    await client.run(sse(raw, item_encoder=lambda b: b))
    assert client.chunks == [*raw, b""]
    assert items(client.chunks) == [
        DecodedEvent("1", "a"),
        DecodedComment("c"),
        DecodedEvent("\u2603"),
    ]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"ping_interval": -1}, ValueError),
        ({"ping_interval": 0}, ValueError),  # as everywhere: None is "no pings"
        ({"ping_interval": True}, TypeError),
        ({"send_timeout": 0}, ValueError),
        ({"send_timeout": float("nan")}, ValueError),
        ({"sep": "x"}, ValueError),
        ({"iterator": 5}, TypeError),
    ],
)
def test_asgi_constructor_validation(kwargs: dict[str, Any], error: type[Exception]) -> None:
    kwargs.setdefault("iterator", [])
    with pytest.raises(error):
        ASGIStreamingSSEResponse(**kwargs)


async def test_many_streams_concurrently() -> None:
    async def producer(n: int) -> AsyncIterator[int]:
        for i in range(20):
            await asyncio.sleep(0)
            yield n * 100 + i

    clients = [Client() for _ in range(50)]
    await asyncio.gather(
        *(c.run(sse(producer(n), ping_interval=0.5)) for n, c in enumerate(clients))
    )
    for n, c in enumerate(clients):
        assert [e.data for e in both(c.chunks)] == [str(n * 100 + i) for i in range(20)]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.cancelling() is new in 3.11")
@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_a_producer_raising_cancelled_error_itself_ends_the_body_properly(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """(It escaped the app: the server saw a cancelled app and cut the chunked body.)"""

    async def agen() -> AsyncIterator[int]:
        yield 1
        raise asyncio.CancelledError  # e.g. leaked from a timeout helper; nobody cancelled us

    def gen() -> Iterator[int]:
        yield 1
        raise asyncio.CancelledError

    client = Client()
    with caplog.at_level(logging.ERROR, LOGGER):
        await client.run(sse(agen() if kind == "async" else gen()))
    assert both(client.chunks) == [Ev("1")]
    assert client.body_messages[-1] == END
    assert "raised CancelledError by itself" in caplog.text


@pytest.mark.parametrize(
    "timers",
    [
        {"send_timeout": 30.0},
        {"ping_interval": 15.0},
        {"ping_interval": 15.0, "send_timeout": 30.0},
    ],
)
async def test_an_ended_stream_is_not_kept_by_its_pending_timer_check(
    timers: dict[str, float],
) -> None:
    # The wheel held an ended stream (and through its send, the request) until its next check:
    # up to send_timeout or ping_interval later, for every stream of a churning server.
    import gc
    import weakref

    client = Client()
    response = sse(iter(["a", "b"]), **timers)
    await client.run(response)
    assert both(client.chunks) == [Ev("a"), Ev("b")]
    gone = weakref.ref(response)
    del response
    gc.collect()
    assert gone() is None


async def test_a_deadline_ends_the_stream_from_the_timer_wheel(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # max_lifetime for every stream of an app, checked with the pings on the one wheel: a
    # stream with neither pings nor a send timeout expires too, and once it stops there is
    # nothing left to check (no error from scheduling a check at infinity).
    ended: list[str | None] = []

    async def quiet() -> AsyncIterator[str]:
        yield "open"
        await asyncio.Event().wait()
        yield "never"

    async def one() -> None:
        client = Client()
        response = sse(quiet())
        response.set_deadline(time.monotonic() + 0.15)
        begun = time.monotonic()
        await client.run(response)
        assert 0.1 < time.monotonic() - begun < 1.5
        assert both(client.chunks) == [Ev("open")]
        ended.append(response.stop_reason)

    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        await asyncio.gather(*(one() for _ in range(20)))
    assert ended == ["lifetime"] * 20
    assert caplog.records == []


# -- what an open stream holds -----------------------------------------------------------------


def _awaited_frames(task: asyncio.Task[Any]) -> list[str]:
    """The functions of litestar_sse the task's coroutine chain is suspended in, outermost
    first (each holds a frame for as long as the stream is open)."""
    names: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None:
        code = getattr(awaited, "cr_code", None) or getattr(awaited, "ag_code", None)
        if code is not None and "litestar_sse" in code.co_filename:
            names.append(code.co_qualname)
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
    return names


@pytest.mark.parametrize("managed", [False, True], ids=["response", "plugin_stream"])
async def test_an_open_stream_holds_one_frame_per_step_of_the_send_loop(managed: bool) -> None:
    """An idle stream is suspended in the send loop's own steps only: no frame of a wrapping
    ``__call__`` or ``send_body`` (the SSE response's, the plugin's, Litestar's), each of
    which an open stream would otherwise keep for its whole life. The plugin's stream still
    registers, sends its preamble and leaves its registry."""
    from litestar_sse._plugin.registry import ManagedSSEResponse, StreamRegistry

    async def producer() -> AsyncIterator[int]:
        yield 1
        await asyncio.Event().wait()

    client = UvicornClient()
    registry = StreamRegistry()
    response: Any = (
        ManagedSSEResponse(
            registry=registry,
            preamble=b"retry: 5\r\n",
            iterator=producer(),
            item_encoder=make_item_encoder(),
        )
        if managed
        else sse(producer())
    )
    task = asyncio.ensure_future(response(http_scope(), client.receive, client.send))
    await asyncio.wait_for(client.body_sent.wait(), 5)
    await asyncio.sleep(0.01)
    assert _awaited_frames(task) == [
        "ASGIStreamingResponse.__call__",
        "ASGIStreamingResponse.send_body",
        "ASGIStreamingResponse._run",
    ]
    if managed:
        assert len(registry) == 1
        assert response in registry._streams
    client.disconnect.set()
    await asyncio.wait_for(task, 5)
    if managed:
        assert len(registry) == 0
        assert not registry._streams
        assert b"".join(client.chunks).startswith(b"retry: 5\r\ndata: 1\r\n\r\n")


async def test_streams_share_the_headers_they_send() -> None:
    """Every stream keeps its response's headers for its whole life: once sent, equal headers
    are one object for all of them, and each still sends all of its own."""
    clients = [UvicornClient() for _ in range(2)]
    responses = [sse([1], headers={"x-stream": "same"}) for _ in clients]
    for client, response in zip(clients, responses, strict=True):
        await client.run(response)
    starts = [c.messages[0] for c in clients]
    assert starts[0]["headers"] == starts[1]["headers"]
    assert (b"x-stream", b"same") in starts[0]["headers"]
    first, second = (r.headers.headers for r in responses)
    assert first == second
    assert all(a is b for a, b in zip(first, second, strict=True))
