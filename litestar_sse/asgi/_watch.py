"""The disconnect watch: the server's ``receive()`` awaited from the loop's callbacks, no task.

An open stream must hear ``http.disconnect`` while its producer waits for its next item. A task
per stream that awaits ``receive()`` costs a ``Task``, its coroutine's frame and an entry in
asyncio's set of all tasks: about half a KiB for each idle stream. Here the coroutine of
``receive()`` is stepped the way a task steps it (each future it waits for resumes it through a
done callback, in the request's context), so only that coroutine and a small object are kept.

Only for a ``receive`` known to wait on plain asyncio futures: uvicorn's (the one whose
transport :func:`~litestar_sse.asgi._transport.receiving_transport` finds). Any other server's
``receive`` may need a current task (anyio's cancel scopes do), so it keeps a task of its own
(:func:`watch_in_task`); so does trio. Should uvicorn's ``receive`` ever yield something a
task would refuse, it gets the ``RuntimeError`` a task would throw into it, and the watch ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import contextvars

    from litestar.types import Receive

__all__ = ("DisconnectWatch", "watch_in_task")

OnDisconnect = Callable[[], None]


class DisconnectWatch:
    """Awaits ``receive()`` until ``http.disconnect`` (or an error), then calls ``on_gone``.

    ``cancel()`` ends the watch (the pending ``receive()`` is closed); ``ended()`` is a future
    done once the watch is over, made only when asked for.
    """

    __slots__ = ("_context", "_ended", "_loop", "_on_gone", "_receive", "_steps")

    def __init__(
        self,
        receive: Receive,
        on_gone: OnDisconnect,
        loop: asyncio.AbstractEventLoop,
        context: contextvars.Context | None,
    ) -> None:
        self._receive = receive
        self._on_gone = on_gone
        self._loop = loop
        self._context = context
        self._ended: asyncio.Future[None] | None = None
        self._steps: Generator[Any, None, Any] | None = receive().__await__()
        self._step()  # the first step runs in the stream's own task, in its context

    def done(self) -> bool:
        """Whether the watch is over."""
        return self._steps is None

    def cancel(self) -> None:
        """Stop watching: the pending ``receive()`` is closed, ``on_gone`` is not called."""
        steps, self._steps = self._steps, None
        if steps is not None:
            steps.close()
        self._end()

    def ended(self) -> asyncio.Future[None]:
        """A future done once the watch is over (already done if it is)."""
        if self._ended is None:
            self._ended = self._loop.create_future()
            if self.done():
                self._ended.set_result(None)
        return self._ended

    def _end(self) -> None:
        ended = self._ended
        if ended is not None and not ended.done():
            ended.set_result(None)

    def __call__(self, future: asyncio.Future[Any]) -> None:
        """The done callback of the future ``receive()`` waits for (the watch itself: no bound
        method kept per stream). Its result is read by the coroutine (``Future.__await__``)."""
        self._step()

    def _step(self, error: BaseException | None = None) -> None:
        while True:
            steps = self._steps
            if steps is None:
                return
            try:
                awaited = steps.send(None) if error is None else steps.throw(error)
            except StopIteration as stop:
                message = stop.value
                if isinstance(message, dict) and message.get("type") != "http.disconnect":
                    # A request body the handler did not read: receive again.
                    self._steps = self._receive().__await__()
                    error = None
                    continue
                self._steps = None
                self._gone()
                return
            except (Exception, asyncio.CancelledError):  # as a watching task: a receive() that
                # raises, or whose future was cancelled, is no disconnect
                self._steps = None
                self._end()
                return
            if awaited is None:  # a bare yield (a sleep(0)): step again on the next turn
                self._loop.call_soon(self._step, context=self._context)
                return
            if getattr(awaited, "_asyncio_future_blocking", None) is not None:
                awaited._asyncio_future_blocking = False
                awaited.add_done_callback(self, context=self._context)
                return
            error = RuntimeError(f"bad yield from receive(): {awaited!r}")  # as a task says

    def _gone(self) -> None:
        try:
            self._on_gone()
        finally:
            self._end()


async def watch_in_task(receive: Receive, on_gone: OnDisconnect) -> None:
    """The watch as a task's coroutine: for a ``receive`` that may need a task, and trio."""
    try:
        while (await receive())["type"] != "http.disconnect":
            pass  # request body the handler did not read
    except Exception:
        return
    on_gone()
