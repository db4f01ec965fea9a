"""Concurrent publishes of one process share a round trip: those made while one is in flight
go together in the next.

One round trip is in flight at a time. A publish made when none is goes out at once, alone
(one publisher waits for nothing). Publishes made meanwhile queue, in the order they were
made, and go out together, in that order, as one batch (bounded in events and bytes) as soon
as the round trip in flight returns, within what is left of the ``publish_timeout`` of the
one that waited longest (a publish never takes longer than its deadline, however long it
waited: past it, :class:`NotPublishedError`, never sent). Each caller gets its own id, or
its own error: the batch is sent in the mode where a reused idempotency key refuses that
event only, and an error of the round trip (Redis unavailable, no answer) is raised to every
caller of the batch, each with an exception of its own. A caller cancelled while its event
still waits takes it out of the batch: it was never sent. Events of one task are published
in the order it awaits them, as before: it cannot make its second publish before its first
returned.
"""

from __future__ import annotations

import asyncio
import copy
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from litestar_sse.broadcast._backends.base import NotPublishedError, Outgoing
from litestar_sse.broadcast._backends.redis.commands import NOT_PUBLISHED

__all__ = ("MAX_COALESCED_BYTES", "MAX_COALESCED_EVENTS", "PublishQueue", "Results")

MAX_COALESCED_EVENTS: Final = 256
"""Most publishes sent in one round trip."""

MAX_COALESCED_BYTES: Final = 1 << 20
"""Most bytes of data sent in one round trip (a larger event goes alone)."""

Results = list["str | BaseException"]
"""Per event of a batch, its id or the error its caller gets."""

_Waiting = tuple[Outgoing, "asyncio.Future[str]", float]
"""A publish waiting for a round trip: its event, its caller's future, when it came."""


class PublishQueue:
    """Sends publishes through ``send``, one round trip at a time, coalescing those that
    wait for it.

    Args:
        send: Publishes a batch in one round trip within the seconds it is given; returns per
            event its id or its error (a reused key), and raises what concerns the whole
            round trip.
        timeout: Seconds a publish may take, its wait for a round trip included.
    """

    __slots__ = ("_busy", "_drain", "_send", "_timeout", "_waiting")

    def __init__(
        self, send: Callable[[Sequence[Outgoing], float], Awaitable[Results]], timeout: float
    ) -> None:
        self._send = send
        self._timeout = timeout
        self._busy = False
        self._waiting: deque[_Waiting] = deque()
        self._drain: asyncio.Task[None] | None = None

    async def publish(self, item: Outgoing) -> str:
        """Publish ``item``; return its id, or raise its error."""
        if self._busy:
            loop = asyncio.get_running_loop()
            future: asyncio.Future[str] = loop.create_future()
            self._waiting.append((item, future, loop.time()))
            return await future
        self._busy = True
        try:
            result = (await self._send((item,), self._timeout))[0]
        finally:
            self._release()
        if isinstance(result, BaseException):
            raise result
        return result

    def _release(self) -> None:
        """The round trip in flight returned: send what waits, or be idle."""
        if self._waiting:
            self._drain = asyncio.get_running_loop().create_task(self._send_waiting())
        else:
            self._busy = False

    async def _send_waiting(self) -> None:
        waiting = self._waiting
        try:
            while waiting:
                batch: list[_Waiting] = []
                size = 0
                while waiting and len(batch) < MAX_COALESCED_EVENTS:
                    item, future, _ = waiting[0]
                    if future.done():  # its caller was cancelled: never sent
                        waiting.popleft()
                        continue
                    size += len(item.data)
                    if batch and size > MAX_COALESCED_BYTES:
                        break
                    batch.append(waiting.popleft())
                if batch:
                    # what is left of the deadline of the one that waited longest
                    left = self._timeout - (asyncio.get_running_loop().time() - batch[0][2])
                    await self._send_batch(batch, left)
        finally:
            self._drain = None
            self._busy = False
            if waiting:  # cut off (the loop is closing): those left get what the task got
                for _, future, _ in waiting:
                    if not future.done():
                        future.cancel()
                waiting.clear()

    async def _send_batch(self, batch: list[_Waiting], timeout: float) -> None:
        try:
            if timeout <= 0:
                raise NotPublishedError(detail=NOT_PUBLISHED)
            results = await self._send([item for item, _, _ in batch], timeout)
        except Exception as exc:
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(_own_copy(exc))
            return
        except BaseException:
            for _, future, _ in batch:
                future.cancel()
            raise
        for (_, future, _), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)


def _own_copy(exc: Exception) -> Exception:
    """An exception of the same type, detail and cause as ``exc`` for one caller: one
    instance raised in several tasks would gather all their tracebacks."""
    try:
        mine = copy.copy(exc)
    except Exception:  # an exception that cannot be copied: shared
        return exc
    mine.__cause__ = exc.__cause__
    mine.__traceback__ = None
    return mine
