"""Run a blocking iterator in a worker thread and hand its items to the event loop in batches.

Peers hop to a thread pool for every item, which costs tens of microseconds each. Here one
worker thread drives the iterator for the whole stream and appends to a bounded buffer. The
event loop is woken only when a waiting consumer has enough to take, and then it takes every
item that is ready at once. A slow iterator still never blocks the loop, and a fast one pays
for one thread switch per batch, not per item.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Final, Generic, TypeVar

from litestar_sse._validation import check_required_count
from litestar_sse.asgi._counters import COUNTERS
from litestar_sse.asgi._runtime import (
    call_soon_threadsafe_here,
    create_future,
    current_wheel,
    on_trio,
    run_local,
    sleep_of_run,
)
from litestar_sse.asgi._timer_wheel import Alarm

__all__ = (
    "DEFAULT_SYNC_THREAD_LIMIT",
    "ThreadedIterator",
    "set_sync_thread_limit",
    "stream_batches",
    "sync_threads_in_use",
)

T = TypeVar("T")

# Every wake-up costs a pipe write and a GIL hand-over, so a fast producer woken per item
# ping-pongs with the loop one item at a time. A producer whose previous batch came less than
# HOT_GAP seconds ago is fast: the consumer then waits for MIN_BATCH items, or LINGER seconds
# at most. Slow producers (the SSE norm) are delivered at once.
HOT_GAP = 0.001
LINGER = 0.0005
MIN_BATCH = 256

DEFAULT_SYNC_THREAD_LIMIT: Final = 40
"""Worker threads for sync iterators, at most, per event loop (anyio's default for its own)."""

_LOGGER: Final = logging.getLogger("litestar_sse")

_limit = DEFAULT_SYNC_THREAD_LIMIT
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _ThreadSlots] = (
    weakref.WeakKeyDictionary()
)


def set_sync_thread_limit(limit: int) -> None:
    """Set how many sync iterators may run in worker threads at once, per event loop.

    A stream whose sync iterator finds every slot taken waits (its headers are sent, its first
    event waits) until a thread ends. A thread that is blocked in ``next()`` or in the
    iterator's ``close()`` after its stream ended cannot be interrupted: it holds its slot for
    the stream's ``cleanup_timeout`` at most, then the slot is given back (a warning says so)
    and the thread is left to finish on its own. An iterator that may block for ever should be
    an async one. Loops created after the call take the new limit; loops already streaming
    keep theirs.
    """
    global _limit
    _limit = check_required_count(limit, "limit", minimum=1)


def sync_threads_in_use() -> int:
    """Worker-thread slots of sync iterators taken now on this event loop (for monitoring);
    a thread left to finish after its stream's ``cleanup_timeout`` no longer holds one."""
    slots = _slots_of()
    return slots.in_use


class _ThreadSlots:
    """The worker-thread slots of one event loop: taken on the loop, given back by threads."""

    __slots__ = ("_free", "_waiters", "in_use")

    def __init__(self, limit: int) -> None:
        self._free = limit
        self._waiters: deque[Any] = deque()  # futures of the loop (asgi/_runtime.py)
        self.in_use = 0

    async def take(self) -> None:
        while self._free == 0:
            waiter = create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:  # cancelled (asyncio's or trio's)
                if waiter.done() and not waiter.cancelled():
                    self._wake_next()  # woken and cancelled at once: pass the wake-up on
                raise
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self._free -= 1
        self.in_use += 1

    def release(self) -> None:
        """Give a slot back (on the loop): its thread ended, or was left to finish."""
        self.in_use -= 1
        self._give_back()

    def _give_back(self) -> None:
        self._free += 1
        self._wake_next()

    def _wake_next(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break


def _slots_of() -> _ThreadSlots:
    """The slots of the running loop, created on first use."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # trio: one set per run
        return run_local("litestar_sse.sync_threads", lambda: _ThreadSlots(_limit))
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = _ThreadSlots(_limit)
    return slots


class ThreadedIterator(Generic[T]):
    """Iterate ``iterator`` in a daemon thread; ``await next_batch()`` from the event loop.

    The thread stops after the item it is producing when :meth:`stop` is called, and closes the
    iterator (running a generator's ``finally``) in the thread that ran it.
    """

    __slots__ = (
        "_abandon",
        "_buffer",
        "_call_soon",
        "_done",
        "_error",
        "_holds_slot",
        "_iterator",
        "_last_take",
        "_max_buffer",
        "_on_trio",
        "_slots",
        "_space",
        "_stopped",
        "_thread",
        "_waiter",
        "_wanted",
    )

    def __init__(
        self,
        iterator: Iterator[T],
        *,
        max_buffer: int = 4096,
        slots: _ThreadSlots | None = None,
    ) -> None:
        self._iterator = iterator
        self._call_soon = call_soon_threadsafe_here()
        self._on_trio = on_trio()
        self._buffer: deque[T] = deque()
        self._max_buffer = max_buffer
        self._space = threading.Condition(threading.Lock())
        self._waiter: Any = None  # a future of the loop (asgi/_runtime.py)
        self._wanted = 1
        self._done = False
        self._stopped = False
        self._error: BaseException | None = None
        self._last_take = 0.0
        self._slots = slots  # given back when the thread ends
        self._holds_slot = slots is not None
        self._abandon: Alarm | None = None  # abandon() at cleanup_timeout, while it runs
        self._thread = threading.Thread(
            target=self._run, name="litestar-sse-sync-iterator", daemon=True
        )
        self._thread.start()

    def _wake(self) -> None:
        # Called with the lock held, from the worker thread.
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self._call_soon(_resolve, waiter)

    def _run(self) -> None:
        buffer, space, limit = self._buffer, self._space, self._max_buffer
        try:
            for item in self._iterator:
                with space:
                    while len(buffer) >= limit and not self._stopped:
                        space.wait()
                    if self._stopped:
                        break
                    buffer.append(item)
                    if self._waiter is not None and len(buffer) >= self._wanted:
                        self._wake()
        except BaseException as exc:  # handed to the event loop, which logs it
            self._error = exc
        finally:
            try:
                close = getattr(self._iterator, "close", None)
                if close is not None:
                    close()
            except BaseException as exc:
                if self._error is None:
                    self._error = exc
            finally:
                with space:
                    self._done = True
                    self._wake()
                if self._slots is not None:
                    with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits
                        self._call_soon(self._give_back_slot)

    async def next_batch(self) -> list[T]:
        """Return every item produced so far (at least one); raise ``StopAsyncIteration`` at end.

        An exception raised by the iterator is re-raised here, after the items before it.
        """
        wanted = MIN_BATCH if time.monotonic() - self._last_take < HOT_GAP else 1
        while True:
            with self._space:
                if self._buffer and (len(self._buffer) >= wanted or self._done):
                    self._last_take = time.monotonic()
                    batch = list(self._buffer)
                    self._buffer.clear()
                    self._space.notify()
                    return batch
                if self._done:
                    if self._error is not None:
                        error, self._error = self._error, None
                        raise error
                    raise StopAsyncIteration
                waiter = create_future()
                self._waiter, self._wanted = waiter, wanted
            if wanted == 1:
                await waiter
                continue
            if self._on_trio:
                import trio

                with trio.move_on_after(LINGER):
                    await waiter
            else:
                timer = asyncio.get_running_loop().call_later(LINGER, _resolve, waiter)
                try:
                    await waiter
                finally:
                    timer.cancel()
            wanted = 1  # lingered long enough: take whatever is there

    def stop(self) -> None:
        """Ask the worker to stop after its current item and close the iterator. Never blocks."""
        with self._space:
            self._stopped = True
            self._buffer.clear()
            self._space.notify()

    def abandon_after(self, delay: float, route: str) -> None:
        """Call :meth:`abandon` in ``delay`` seconds, unless the thread ends before: the alarm
        is cancelled then, so an ended stream's thread and iterator are not kept until it."""
        if self._holds_slot and not self._done:
            wheel = current_wheel()  # no loop timer per stream
            self._abandon = wheel.call_later(delay, self.abandon, route, delay)

    def _give_back_slot(self) -> None:
        alarm, self._abandon = self._abandon, None
        if alarm is not None:
            alarm.cancel()
        if self._holds_slot and self._slots is not None:
            self._holds_slot = False
            self._slots.release()

    def abandon(self, route: str, waited: float) -> None:
        """Give the slot back if the stopped thread is still running after ``waited`` seconds
        (blocked in ``next()`` or ``close()``, which nothing can interrupt); it may finish later."""
        self._abandon = None
        if not self._holds_slot:
            return
        COUNTERS.cleanups_cut += 1
        _LOGGER.warning(
            "The sync producer of the event stream %s was still running %.1f s after its stream "
            "ended (blocked in next() or in its close, which cannot be interrupted); its worker "
            "thread is left to finish on its own and its slot is given back",
            route,
            waited,
        )
        self._give_back_slot()


def _resolve(waiter: Any) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def stream_batches(
    iterator: Iterator[Any],
    encode: Callable[[Any], bytes],
    write: Callable[[bytes, int], Awaitable[bool]],
    on_error: Callable[[Exception], None],
    *,
    yield_every: int,
    cleanup_timeout: float | None = None,
    route: str = "?",
) -> bool:
    """Stream a blocking iterator from its worker thread: each batch encoded, in one ``write``.

    The worker thread takes one of the loop's slots (see :func:`set_sync_thread_limit`),
    waiting for one if none is free. Items that are already waiting go out together, so
    batching adds no latency. ``write``
    (given the bytes and how many items they hold) returns False when the client is gone; this
    then returns False. An exception from the
    iterator or ``encode`` is passed to ``on_error`` (called in the ``except`` block) after what
    was encoded before it is written, and ends the stream (True). Gives the event loop a turn
    every ``yield_every`` items, as a full buffer hands over the next batch without waiting.
    When the stream ends, the worker stops and closes the iterator in its thread; if it is
    still running ``cleanup_timeout`` seconds later, its slot is given back
    (:meth:`ThreadedIterator.abandon`, logged with ``route``).
    """
    slots = _slots_of()
    await slots.take()
    threaded = ThreadedIterator(iterator, slots=slots)
    pause = sleep_of_run()  # the turn given every yield_every items
    sent = 0
    try:
        while True:
            chunks: list[bytes] = []
            failed = False
            try:
                # extend() keeps what was encoded before an item that fails
                chunks.extend(encode(item) for item in await threaded.next_batch())
            except StopAsyncIteration:
                return True
            except Exception as exc:
                on_error(exc)
                failed = True
            if chunks:
                if not await write(b"".join(chunks), len(chunks)):
                    return False
                sent += len(chunks)
                if sent >= yield_every:
                    sent = 0
                    await pause(0)
            if failed:
                return True
    finally:
        threaded.stop()
        if cleanup_timeout is not None:
            threaded.abandon_after(cleanup_timeout, route)
