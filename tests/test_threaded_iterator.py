"""ThreadedIterator: one worker thread per stream, batches handed to the event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from litestar_sse.asgi import ASGIStreamingResponse
from litestar_sse.asgi._threaded_iterator import (
    DEFAULT_SYNC_THREAD_LIMIT,
    ThreadedIterator,
    set_sync_thread_limit,
    sync_threads_in_use,
)
from tests.polling import wait_until, wait_until_sync

pytestmark = pytest.mark.anyio


async def drain(threaded: ThreadedIterator[Any]) -> list[list[Any]]:
    batches = []
    while True:
        try:
            batches.append(await asyncio.wait_for(threaded.next_batch(), 5))
        except StopAsyncIteration:
            return batches


async def test_all_items_in_order() -> None:
    batches = await drain(ThreadedIterator(iter(range(1000))))
    assert [x for batch in batches for x in batch] == list(range(1000))
    assert all(batches)  # never an empty batch


async def test_items_ready_together_come_in_one_batch() -> None:
    produced = threading.Event()
    release = threading.Event()

    def gen() -> Iterator[int]:
        yield from range(10)
        produced.set()
        assert release.wait(5)
        yield 10

    threaded = ThreadedIterator(gen())
    assert await asyncio.to_thread(produced.wait, 5)
    assert await threaded.next_batch() == list(range(10))
    release.set()
    assert await drain(threaded) == [[10]]


async def test_error_is_raised_after_the_items_before_it() -> None:
    def gen() -> Iterator[int]:
        yield 1
        yield 2
        raise LookupError("broken")

    threaded = ThreadedIterator(gen())
    got: list[int] = []

    async def read_all() -> None:
        while True:
            got.extend(await asyncio.wait_for(threaded.next_batch(), 5))

    with pytest.raises(LookupError, match="broken"):
        await read_all()
    assert got == [1, 2]
    with pytest.raises(StopAsyncIteration):  # the error is raised once, then the end
        await threaded.next_batch()


async def test_error_from_close_is_reported() -> None:
    class Closing:
        def __iter__(self) -> Iterator[int]:
            return self

        def __next__(self) -> int:
            raise StopIteration

        def close(self) -> None:
            raise OSError("close failed")

    threaded = ThreadedIterator(Closing())
    with pytest.raises(OSError, match="close failed"):
        await asyncio.wait_for(threaded.next_batch(), 5)


async def test_iterator_without_close() -> None:
    class Counter:
        def __init__(self) -> None:
            self.n = 0

        def __iter__(self) -> Iterator[int]:
            return self

        def __next__(self) -> int:
            self.n += 1
            if self.n > 3:
                raise StopIteration
            return self.n

    assert [x for b in await drain(ThreadedIterator(Counter())) for x in b] == [1, 2, 3]


async def test_stop_closes_generator_in_the_worker_thread() -> None:
    info: dict[str, Any] = {}
    closed = threading.Event()

    def gen() -> Iterator[int]:
        info["thread"] = threading.current_thread()
        try:
            i = 0
            while True:
                time.sleep(0.002)
                yield i
                i += 1
        finally:
            info["closed_in"] = threading.current_thread()
            closed.set()

    threaded = ThreadedIterator(gen())
    assert await asyncio.wait_for(threaded.next_batch(), 5)
    threaded.stop()
    assert await asyncio.to_thread(closed.wait, 5)
    assert info["closed_in"] is info["thread"]
    assert info["thread"] is not threading.current_thread()
    assert await asyncio.to_thread(wait_until_sync, lambda: not info["thread"].is_alive())
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(threaded.next_batch(), 5)


async def test_buffer_is_bounded_and_producer_blocks() -> None:
    produced = 0
    closed = threading.Event()

    def gen() -> Iterator[int]:
        nonlocal produced
        try:
            while True:
                produced += 1
                yield produced
        finally:
            closed.set()

    threaded = ThreadedIterator(gen(), max_buffer=5)
    # 5 buffered, and the 6th produced and waiting for space
    assert await asyncio.to_thread(wait_until_sync, lambda: produced == 6)
    await asyncio.sleep(0.1)
    assert produced == 6
    assert await threaded.next_batch() == [1, 2, 3, 4, 5]
    # reading made space: the waiting 6th goes in, 7-10 fill the buffer, the 11th waits
    assert await asyncio.to_thread(wait_until_sync, lambda: produced == 11)
    await asyncio.sleep(0.05)
    assert produced == 11
    # stop() wakes the producer blocked on a full buffer, which then closes the generator
    threaded.stop()
    assert await asyncio.to_thread(closed.wait, 5)
    assert produced == 11


async def test_stop_while_producer_blocks_inside_next() -> None:
    release = threading.Event()
    closed = threading.Event()

    def gen() -> Iterator[int]:
        try:
            yield 1
            assert release.wait(5)  # a blocking read, e.g. from a queue
            yield 2
            yield 3
        finally:
            closed.set()

    threaded = ThreadedIterator(gen())
    assert await threaded.next_batch() == [1]
    threaded.stop()
    await asyncio.sleep(0.05)
    assert not closed.is_set()  # it cannot be interrupted inside next() ...
    release.set()
    assert await asyncio.to_thread(closed.wait, 5)  # ... but stops right after it


async def test_slow_producer_does_not_block_the_loop() -> None:
    def gen() -> Iterator[int]:
        for i in range(3):
            time.sleep(0.1)
            yield i

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.ensure_future(ticker())
    try:
        batches = await drain(ThreadedIterator(gen()))
    finally:
        task.cancel()
    assert [x for b in batches for x in b] == [0, 1, 2]
    assert ticks >= 10


# -- a bounded number of worker threads ------------------------------------------------------


@pytest.fixture
def two_threads() -> Iterator[None]:
    set_sync_thread_limit(2)
    try:
        yield
    finally:
        set_sync_thread_limit(DEFAULT_SYNC_THREAD_LIMIT)


def worker_threads() -> int:
    return sum(t.name == "litestar-sse-sync-iterator" for t in threading.enumerate())


class Peer:
    """An ASGI client that records body chunks and can leave."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.gone = asyncio.Event()

    async def send(self, message: Any) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            self.chunks.append(message["body"])

    async def receive(self) -> Any:
        await self.gone.wait()
        return {"type": "http.disconnect"}


def blocked_after_one(release: threading.Event) -> Iterator[bytes]:
    yield b"data: a\r\n\r\n"
    release.wait(10)  # blocked in next(): Python cannot interrupt it


async def test_sync_iterators_beyond_the_limit_wait_for_a_thread(two_threads: None) -> None:
    releases = [threading.Event() for _ in range(3)]
    peers = [Peer() for _ in range(3)]
    scope = {"type": "http", "method": "GET", "headers": []}
    tasks = [
        asyncio.ensure_future(
            ASGIStreamingResponse(iterator=blocked_after_one(release))(scope, p.receive, p.send)
        )
        for release, p in zip(releases, peers, strict=True)
    ]
    await wait_until(lambda: sum(bool(p.chunks) for p in peers) == 2)
    await asyncio.sleep(0.1)
    assert sum(bool(p.chunks) for p in peers) == 2  # the third waits for a thread
    assert sync_threads_in_use() == 2
    assert worker_threads() <= 2
    waiting = next(i for i, p in enumerate(peers) if not p.chunks)
    done = next(i for i, p in enumerate(peers) if p.chunks)
    releases[done].set()  # one iterator returns: its thread ends, its slot passes on
    await wait_until(lambda: bool(peers[waiting].chunks))
    for release in releases:
        release.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    await wait_until(lambda: sync_threads_in_use() == 0)


async def test_clients_that_leave_do_not_multiply_threads(two_threads: None) -> None:
    """A thread blocked in next() outlives its client; the limit bounds how many there are."""
    release = threading.Event()
    scope = {"type": "http", "method": "GET", "headers": []}
    try:
        for _ in range(20):
            peer = Peer()
            response = ASGIStreamingResponse(iterator=blocked_after_one(release))
            task = asyncio.ensure_future(response(scope, peer.receive, peer.send))
            await asyncio.sleep(0.01)
            peer.gone.set()  # the client leaves, whether its stream got a thread or not
            await asyncio.wait_for(task, 5)
            assert worker_threads() <= 2
    finally:
        release.set()
    await wait_until(lambda: sync_threads_in_use() == 0)


def test_the_limit_is_checked_like_every_count() -> None:
    with pytest.raises(ValueError, match="limit"):
        set_sync_thread_limit(0)
    with pytest.raises(TypeError):
        set_sync_thread_limit(None)  # type: ignore[arg-type]
