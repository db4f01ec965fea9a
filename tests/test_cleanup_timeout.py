"""A stopped producer's cleanup is bounded by ``cleanup_timeout``: a ``finally`` that awaits
something that never returns is cancelled, logged and counted; a sync producer whose close
hangs in its worker thread gives its thread's slot back. Driven with fake ASGI peers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from litestar_sse import Stream
from litestar_sse._message import make_item_encoder
from litestar_sse.asgi import ASGIStreamingResponse, ASGIStreamingSSEResponse
from litestar_sse.asgi._counters import COUNTERS
from litestar_sse.asgi._threaded_iterator import (
    DEFAULT_SYNC_THREAD_LIMIT,
    set_sync_thread_limit,
    sync_threads_in_use,
)
from litestar_sse.asgi._timer_wheel import Alarm, timer_wheel
from tests.polling import wait_until
from tests.sse_wire import http_scope

pytestmark = pytest.mark.anyio

LOGGER = "litestar_sse"


class Peer:
    """Records body chunks; can leave (``http.disconnect``) or stop taking writes."""

    def __init__(self, *, block_after: int | None = None) -> None:
        self.chunks: list[bytes] = []
        self.gone = asyncio.Event()
        self.block_after = block_after
        self.blocked = asyncio.Event()

    async def send(self, message: Any) -> None:
        if message["type"] != "http.response.body":
            return
        if self.block_after is not None and len(self.chunks) >= self.block_after:
            self.blocked.set()
            await asyncio.Event().wait()  # a client that stopped reading
        if message.get("body"):
            self.chunks.append(message["body"])

    async def receive(self) -> Any:
        await self.gone.wait()
        return {"type": "http.disconnect"}


def scope(path: str) -> dict[str, Any]:
    return {**http_scope(), "path": path, "path_template": path}


def hung_producer(state: dict[str, Any], *, idle_at: str) -> AsyncIterator[str]:
    async def producer() -> AsyncIterator[str]:
        try:
            yield "first"
            if idle_at == "await":
                await asyncio.Event().wait()  # stopped here: the cancellation lands inside
            yield "second"  # or stopped at this yield (its send is stuck): closed by aclose()
        finally:
            state["cleanup_began"] = time.monotonic()
            try:
                await asyncio.Event().wait()  # a lost lock, a call without a timeout...
            except asyncio.CancelledError:
                state["cut"] = True
                raise

    return producer()


@pytest.mark.parametrize("idle_at", ["await", "yield"])
async def test_a_hung_async_cleanup_is_cut_after_cleanup_timeout(
    idle_at: str, caplog: pytest.LogCaptureFixture
) -> None:
    state: dict[str, Any] = {}
    calls: list[tuple[str, bool]] = []
    peer = Peer(block_after=1 if idle_at == "yield" else None)
    response = ASGIStreamingSSEResponse(
        iterator=hung_producer(state, idle_at=idle_at),
        item_encoder=make_item_encoder(),
        cleanup_timeout=0.3,
        on_disconnect=lambda reason: calls.append((reason, state.get("cut", False))),
    )
    cut_before = COUNTERS.cleanups_cut
    caplog.set_level("WARNING", LOGGER)
    task = asyncio.ensure_future(response(scope("/hung/{id}"), peer.receive, peer.send))
    await wait_until(lambda: bool(peer.chunks))
    if idle_at == "yield":
        await asyncio.wait_for(peer.blocked.wait(), 5)
    peer.gone.set()
    await wait_until(lambda: "cleanup_began" in state)
    await asyncio.wait_for(task, 5)  # ends: the request is not held for ever
    took = time.monotonic() - state["cleanup_began"]
    assert 0.25 <= took < 3
    assert state["cut"]
    assert calls == [("disconnect", True)]  # once, after the cleanup was cut
    assert COUNTERS.cleanups_cut == cut_before + 1
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelname == "WARNING"]
    assert len(warnings) == 1, caplog.text
    assert "GET /hung/{id}" in warnings[0].getMessage()
    assert "cleanup_timeout" in warnings[0].getMessage()


async def test_cleanup_timeout_none_waits_for_the_cleanup() -> None:
    release = asyncio.Event()
    calls: list[float] = []

    async def producer() -> AsyncIterator[str]:
        try:
            yield "first"
            await asyncio.Event().wait()
        finally:
            await release.wait()

    peer = Peer()
    response = ASGIStreamingResponse(
        iterator=producer(), cleanup_timeout=None, on_disconnect=lambda: calls.append(1)
    )
    task = asyncio.ensure_future(response(scope("/slow"), peer.receive, peer.send))
    await wait_until(lambda: bool(peer.chunks))
    peer.gone.set()
    await asyncio.sleep(0.5)
    assert not task.done()
    assert calls == []
    release.set()
    await asyncio.wait_for(task, 5)
    assert calls == [1]


async def test_a_quick_cleanup_is_not_cut(caplog: pytest.LogCaptureFixture) -> None:
    state: dict[str, bool] = {}

    async def producer() -> AsyncIterator[str]:
        try:
            yield "first"
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.05)
            state["done"] = True

    peer = Peer()
    response = ASGIStreamingResponse(iterator=producer(), cleanup_timeout=2)
    task = asyncio.ensure_future(response(scope("/quick"), peer.receive, peer.send))
    await wait_until(lambda: bool(peer.chunks))
    cut_before = COUNTERS.cleanups_cut
    peer.gone.set()
    await asyncio.wait_for(task, 5)
    assert state == {"done": True}
    assert COUNTERS.cleanups_cut == cut_before
    assert "cleaning up" not in caplog.text


async def test_abort_cuts_a_cleanup_in_progress_at_once() -> None:
    """The hard end (the shutdown grace period is over) does not wait for cleanup_timeout."""
    state: dict[str, Any] = {}
    peer = Peer()
    response = ASGIStreamingSSEResponse(
        iterator=hung_producer(state, idle_at="await"),
        item_encoder=make_item_encoder(),
        cleanup_timeout=60,
    )
    task = asyncio.ensure_future(response(scope("/shutdown"), peer.receive, peer.send))
    await wait_until(lambda: bool(peer.chunks))
    response.stop("shutdown", closing=b"data: bye\r\n\r\n")
    await wait_until(lambda: "cleanup_began" in state)
    response.abort("shutdown")
    await asyncio.wait_for(task, 2)
    assert state["cut"]
    assert b"data: bye\r\n\r\n" not in peer.chunks  # ended hard: nothing more was sent


async def test_an_outside_cancellation_during_a_cleanup_still_propagates() -> None:
    async def producer() -> AsyncIterator[str]:
        try:
            yield "first"
            await asyncio.Event().wait()
        finally:
            await asyncio.Event().wait()

    peer = Peer()
    response = ASGIStreamingResponse(iterator=producer(), cleanup_timeout=0.2)
    task = asyncio.ensure_future(response(scope("/x"), peer.receive, peer.send))
    await wait_until(lambda: bool(peer.chunks))
    peer.gone.set()
    await asyncio.sleep(0.05)
    task.cancel()  # the server's own cancellation, during the cleanup
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)


def test_cleanup_timeout_is_checked_like_every_duration() -> None:
    bad_values = ((0, ValueError), (-1, ValueError), (float("nan"), ValueError), ("1", TypeError))
    for bad, error in bad_values:
        with pytest.raises(error, match="cleanup_timeout"):
            ASGIStreamingResponse(iterator=[], cleanup_timeout=bad)  # type: ignore[arg-type]
        with pytest.raises(error, match="cleanup_timeout"):
            Stream([], cleanup_timeout=bad)  # type: ignore[arg-type]


# -- a sync producer closed in its worker thread ---------------------------------------------


@pytest.fixture
def one_thread() -> Iterator[None]:
    set_sync_thread_limit(1)
    try:
        yield
    finally:
        set_sync_thread_limit(DEFAULT_SYNC_THREAD_LIMIT)


async def test_a_hung_sync_close_gives_its_thread_slot_back(
    one_thread: None, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()
    closing = threading.Event()

    def hangs_on_close() -> Iterator[bytes]:
        try:
            yield b"data: a\r\n\r\n"
            while True:
                time.sleep(0.01)
                yield b": tick\r\n"
        finally:
            closing.set()
            release.wait(30)  # a close that cannot be interrupted

    caplog.set_level("WARNING", LOGGER)
    cut_before = COUNTERS.cleanups_cut
    try:
        first = Peer()
        response = ASGIStreamingResponse(iterator=hangs_on_close(), cleanup_timeout=0.3)
        task = asyncio.ensure_future(response(scope("/sync"), first.receive, first.send))
        await wait_until(lambda: bool(first.chunks))
        assert sync_threads_in_use() == 1
        first.gone.set()
        await asyncio.wait_for(task, 5)
        await wait_until(closing.is_set)
        await wait_until(lambda: sync_threads_in_use() == 0, timeout=5)  # the slot is back

        second = Peer()  # so the next sync stream gets a thread, though the first still runs
        again = ASGIStreamingResponse(iterator=iter([b"data: b\r\n\r\n"]), cleanup_timeout=0.3)
        await asyncio.wait_for(again(scope("/sync"), second.receive, second.send), 5)
        assert second.chunks == [b"data: b\r\n\r\n"]
    finally:
        release.set()
    await asyncio.sleep(0.1)  # the first thread finishes: its late end gives nothing back twice
    assert sync_threads_in_use() == 0
    assert COUNTERS.cleanups_cut == cut_before + 1
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("GET /sync" in w and "worker thread is left to finish" in w for w in warnings)


async def test_a_sync_stream_that_ended_leaves_nothing_on_the_timer_wheel() -> None:
    # The bound of a stopped thread is an alarm on the wheel; a thread that ends in time takes
    # it off, or the wheel keeps the thread and its iterator for cleanup_timeout after every
    # stream (the churn soak saw them pile up).
    closed = threading.Event()

    def ticks() -> Iterator[bytes]:
        try:
            while True:
                time.sleep(0.005)
                yield b": tick\r\n"
        finally:
            closed.set()

    peer = Peer()
    response = ASGIStreamingResponse(iterator=ticks(), cleanup_timeout=30)
    task = asyncio.ensure_future(response(scope("/sync"), peer.receive, peer.send))
    await wait_until(lambda: bool(peer.chunks))
    peer.gone.set()
    await asyncio.wait_for(task, 5)
    await wait_until(closed.is_set)
    await wait_until(lambda: sync_threads_in_use() == 0, timeout=5)
    wheel = timer_wheel(asyncio.get_running_loop())
    held = [e for entries in wheel._slots.values() for e in entries if isinstance(e, Alarm)]
    assert held == []
