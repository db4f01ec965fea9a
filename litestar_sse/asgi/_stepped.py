"""A send stepped by hand outside the stream's task, and finished by a task if it waits.

A server's ``send()`` for a small body normally completes without suspending (uvicorn writes
to its transport and returns). So a keep-alive ping (from the timer wheel) and a broadcast
chunk (from the hub's pass over its idle subscribers) are sent right where they are decided,
by stepping the ``send()`` coroutine once: no task woken, no task made. Only a send that has
to wait (flow control) is finished by a task, which awaits :class:`Resumed`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from contextvars import Context
from typing import Any

__all__ = ("Resumed", "start_send")


def start_send(
    send: Callable[[Any], Awaitable[None]], message: Any, context: Context | None = None
) -> Resumed | None:
    """Step ``send(message)`` once (in ``context``, if given): ``None`` if the send completed
    there, else the :class:`Resumed` a task awaits to finish it. Raises what that step
    raises (``OSError``: the client is gone)."""
    steps = send(message).__await__()
    try:
        awaited = next(steps) if context is None else context.run(next, steps)
    except StopIteration:
        return None
    return Resumed(steps, awaited)


class Resumed:
    """Awaitable that finishes a coroutine which was stepped by hand and is now waiting.

    ``awaited`` is what the coroutine yielded (the future it waits for); the task awaiting this
    object waits for it exactly as if it had been running the coroutine from the start. Never
    awaited (its task was cancelled first), it warns of nothing: the coroutine is closed when
    it is collected, as any suspended one.
    """

    __slots__ = ("awaited", "steps")

    def __init__(self, steps: Generator[Any, None, Any], awaited: Any) -> None:
        self.steps = steps
        self.awaited = awaited

    def __await__(self) -> Generator[Any, None, Any]:
        try:
            yield self.awaited
        except BaseException:
            close = getattr(self.steps, "close", None)
            if close is not None:
                close()
            raise
        return (yield from self.steps)
