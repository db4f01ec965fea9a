"""Run a blocking iterator in a worker thread and hand its items to the event loop in batches.

Peers hop to a thread pool for every item, which costs tens of microseconds each. Here one
worker thread drives the iterator for the whole stream and appends to a bounded buffer; the
event loop is woken only when the buffer goes from empty to non-empty, and then takes every
item that is ready at once. A slow iterator still never blocks the loop, and a fast one pays
for a thread switch per batch, not per item.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

__all__ = ("ThreadedIterator",)

T = TypeVar("T")


class ThreadedIterator(Generic[T]):
    """Iterate ``iterator`` in a daemon thread; ``await next_batch()`` from the event loop.

    The thread stops after the item it is producing when :meth:`stop` is called, and closes the
    iterator (running a generator's ``finally``) in the thread that ran it.
    """

    __slots__ = (
        "_buffer",
        "_done",
        "_error",
        "_iterator",
        "_lock",
        "_loop",
        "_max_buffer",
        "_space",
        "_stopped",
        "_thread",
        "_waiter",
    )

    def __init__(self, iterator: Iterator[T], *, max_buffer: int = 1024) -> None:
        self._iterator = iterator
        self._loop = asyncio.get_running_loop()
        self._buffer: deque[T] = deque()
        self._max_buffer = max_buffer
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)
        self._waiter: asyncio.Future[None] | None = None
        self._done = False
        self._stopped = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name="litestar-sse-sync-iterator", daemon=True
        )
        self._thread.start()

    def _wake(self) -> None:
        # Called with the lock held, from the worker thread.
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            self._loop.call_soon_threadsafe(_resolve, waiter)

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
                    self._wake()
        except BaseException as exc:  # handed to the event loop, which logs it
            self._error = exc
        finally:
            close = getattr(self._iterator, "close", None)
            try:
                if close is not None:
                    close()
            except BaseException as exc:
                if self._error is None:
                    self._error = exc
            finally:
                with space:
                    self._done = True
                    self._wake()

    async def next_batch(self) -> list[T]:
        """Return every item produced so far (at least one); raise ``StopAsyncIteration`` at end.

        An exception raised by the iterator is re-raised here, after the items before it.
        """
        while True:
            with self._space:
                if self._buffer:
                    batch = list(self._buffer)
                    self._buffer.clear()
                    self._space.notify()
                    return batch
                if self._done:
                    if self._error is not None:
                        error, self._error = self._error, None
                        raise error
                    raise StopAsyncIteration
                waiter: asyncio.Future[None] = self._loop.create_future()
                self._waiter = waiter
            await waiter

    def stop(self) -> None:
        """Ask the worker to stop after its current item and close the iterator. Never blocks."""
        with self._space:
            self._stopped = True
            self._buffer.clear()
            self._space.notify()


def _resolve(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_result(None)
