"""The runtime of the current event loop: asyncio's or trio's primitives behind one face.

Litestar runs on asyncio or on trio (through anyio); so does every stream. The send loop asks
once per stream which library runs it (:func:`on_trio`: one ``asyncio.get_running_loop()``
call, the same as before on asyncio) and then uses that library's own primitives, so asyncio's
path costs what it always did:

================  =======================================  ===================================
primitive         asyncio                                  trio
================  =======================================  ===================================
timer wheel       one ``loop.call_at`` handle              one system task asleep until the
                                                           next slot (:class:`TrioTimerWheel`)
waiter            ``loop.create_future()``                 :class:`TrioFuture` (a trio Event)
call from thread  ``loop.call_soon_threadsafe``            the run's ``TrioToken``
spawn             ``loop.create_task``                     a system task in a ``CancelScope``
stopping a stream ``task.cancel()`` taken back by          a ``CancelScope`` around the
                  ``uncancel()`` (asgi/_cancellation.py)    producer loop, cancelled by stop()
================  =======================================  ===================================

The broadcast hub calls the same functions (:func:`create_future`, :func:`spawn`,
:func:`call_later`, :func:`wait_for`, :func:`sleep`), so it runs on both with its memory
backend. Redis' asyncio client needs asyncio: the Redis backend refuses to start on trio.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine, Generator
from time import monotonic
from typing import Any, Final, TypeVar

from litestar_sse.asgi._timer_wheel import RESOLUTION, TimerWheel, timer_wheel

__all__ = (
    "TrioFuture",
    "TrioTask",
    "TrioTimerWheel",
    "call_later",
    "call_soon_threadsafe_here",
    "checkpoint",
    "create_future",
    "current_task",
    "current_wheel",
    "on_trio",
    "run_local",
    "shielded",
    "sleep",
    "sleep_of_run",
    "spawn",
    "wait_for",
)

T = TypeVar("T")

_LOGGER: Final = logging.getLogger("litestar_sse")


def on_trio() -> bool:
    """Whether the calling code runs on trio (else on asyncio). Call it on an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _trio_running()
    return False


def _trio_running() -> bool:
    try:
        import trio
    except ImportError:  # pragma: no cover - no trio installed: asyncio's message
        return False
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True


# -- the timer wheel ------------------------------------------------------------------------


class TrioTimerWheel(TimerWheel):
    """The timer wheel on trio: one system task sleeps until the next slot.

    ``schedule`` moves the deadline of that task's ``CancelScope``; when it passes, the task
    runs every due check (:meth:`TimerWheel._run`) and sleeps again.
    """

    __slots__ = ("_deadline", "_scope")

    def __init__(self) -> None:
        import trio

        super().__init__(None)
        self._deadline = math.inf
        self._scope: Any = None
        trio.lowlevel.spawn_system_task(self._serve, name="litestar_sse.timer_wheel")

    def _arm(self, slot: int) -> None:
        import trio

        self._armed = slot
        delay = max(slot * RESOLUTION - monotonic(), 0.0)  # in trio's clock below
        self._deadline = trio.current_time() + delay
        if self._scope is not None:
            self._scope.deadline = self._deadline

    async def _serve(self) -> None:
        import trio

        while True:
            with trio.CancelScope(deadline=self._deadline) as scope:
                self._scope = scope
                await trio.sleep_forever()
            self._scope = None
            self._deadline = math.inf
            self._run()  # re-arms for whatever is left


def current_wheel() -> TimerWheel:
    """The timer wheel of the running event loop, created on first use."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return _trio_wheel()
    return timer_wheel(loop)


def _trio_wheel() -> TimerWheel:
    return run_local("litestar_sse.timer_wheel", TrioTimerWheel)


def run_local(name: str, create: Callable[[], T]) -> T:
    """A value of the running trio run, created by ``create`` on first use (one per run)."""
    import trio

    var = _RUN_VARS.get(name)
    if var is None:
        var = _RUN_VARS[name] = trio.lowlevel.RunVar(name)
    try:
        value: T = var.get()
    except LookupError:
        value = create()
        var.set(value)
    return value


_RUN_VARS: dict[str, Any] = {}


# -- waiters, tasks, timers -------------------------------------------------------------------


class TrioFuture:
    """The part of ``asyncio.Future`` the package uses, on trio: set once, awaited by many."""

    __slots__ = ("_cancelled", "_error", "_event", "_result")

    def __init__(self) -> None:
        import trio

        self._event = trio.Event()
        self._result: Any = None
        self._error: BaseException | None = None
        self._cancelled = False

    def done(self) -> bool:
        """Whether a result, an exception or a cancellation was set."""
        return self._event.is_set()

    def cancelled(self) -> bool:
        """Whether it was cancelled."""
        return self._cancelled

    def set_result(self, result: Any) -> None:
        """Set the result and wake every waiter."""
        if self._event.is_set():
            raise asyncio.InvalidStateError("the future is done already")
        self._result = result
        self._event.set()

    def set_exception(self, error: BaseException) -> None:
        """Set the exception the waiters raise, and wake them."""
        if self._event.is_set():
            raise asyncio.InvalidStateError("the future is done already")
        self._error = error
        self._event.set()

    def cancel(self) -> bool:
        """Cancel it: its waiters raise ``asyncio.CancelledError``."""
        if self._event.is_set():
            return False
        self._cancelled = True
        self._event.set()
        return True

    def exception(self) -> BaseException | None:
        """The exception set, if any."""
        return self._error

    def result(self) -> Any:
        """The result; raises the exception set, if any."""
        if self._cancelled:
            raise asyncio.CancelledError
        if self._error is not None:
            raise self._error
        return self._result

    def __await__(self) -> Generator[Any, None, Any]:
        yield from self._event.wait().__await__()
        return self.result()


class TrioTask:
    """A task spawned on trio: a system task in a ``CancelScope``, awaitable until it ends."""

    __slots__ = ("_ended", "_scope", "task")

    def __init__(self, coroutine: Coroutine[Any, Any, Any], name: str | None) -> None:
        import trio

        self._scope = trio.CancelScope()
        self._ended = trio.Event()
        # In the caller's context (a request's: the ping, the disconnect watcher).
        self.task: Any = trio.lowlevel.spawn_system_task(
            self._main, coroutine, name=name or repr(coroutine), context=contextvars.copy_context()
        )

    async def _main(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        try:
            with self._scope:
                await coroutine
        except Exception:  # a system task that raises would crash the whole run
            _LOGGER.exception("Exception raised by a background task of litestar_sse")
        finally:
            coroutine.close()
            self._ended.set()

    def cancel(self) -> bool:
        """Cancel the task (it ends at its next checkpoint)."""
        self._scope.cancel()
        return not self._ended.is_set()

    def done(self) -> bool:
        """Whether the task ended."""
        return self._ended.is_set()

    def __await__(self) -> Generator[Any, None, None]:
        return self._ended.wait().__await__()


def create_future() -> Any:
    """A future of the running loop: ``asyncio.Future`` or :class:`TrioFuture`."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return TrioFuture()
    return loop.create_future()


def spawn(coroutine: Coroutine[Any, Any, Any], name: str | None = None) -> Any:
    """Run ``coroutine`` in a task of its own: an ``asyncio.Task`` or :class:`TrioTask`."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return TrioTask(coroutine, name)
    return loop.create_task(coroutine, name=name)


def current_task() -> Any:
    """The running task (asyncio's or trio's), or ``None`` outside one."""
    try:
        return asyncio.current_task()
    except RuntimeError:
        pass
    try:
        import trio

        return trio.lowlevel.current_task()
    except (ImportError, RuntimeError):
        return None


def call_later(delay: float, callback: Callable[..., Any], *args: Any) -> Any:
    """Call ``callback(*args)`` in ``delay`` seconds; the handle has ``cancel()``. (On trio,
    from the timer wheel: up to a slot late.)"""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return _trio_wheel().call_later(delay, callback, *args)
    return loop.call_later(delay, callback, *args)


def call_soon_threadsafe_here() -> Callable[..., Any]:
    """A function that any thread may call to run ``callback(*args)`` on this event loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        import trio

        return trio.lowlevel.current_trio_token().run_sync_soon
    return loop.call_soon_threadsafe


def sleep_of_run() -> Callable[[float], Awaitable[None]]:
    """The running loop's own sleep (``asyncio.sleep`` or ``trio.sleep``): for a loop that
    gives turns often, looked up once rather than at each turn as :func:`sleep` does."""
    if on_trio():
        import trio

        return trio.sleep
    return asyncio.sleep


async def sleep(seconds: float) -> None:
    """Sleep on the running loop."""
    await sleep_of_run()(seconds)


async def checkpoint() -> None:
    """Give the event loop a turn."""
    await sleep(0)


async def wait_for(awaitable: Awaitable[T], timeout: float | None) -> T:
    """Await ``awaitable`` for ``timeout`` seconds at most; raise :class:`TimeoutError` past it.
    (On asyncio, ``asyncio.wait_for``: an ``asyncio.TimeoutError`` is a ``TimeoutError``.)"""
    if not on_trio():
        return await asyncio.wait_for(awaitable, timeout)
    import trio

    try:
        with trio.fail_after(math.inf if timeout is None else timeout):
            return await awaitable
    except trio.TooSlowError:
        raise asyncio.TimeoutError from None


async def shielded(future: Any) -> Any:
    """Await ``future`` without cancelling it if the waiter is cancelled."""
    if isinstance(future, TrioFuture):
        return await future  # a trio waiter's cancellation never touches the future
    return await asyncio.shield(future)
