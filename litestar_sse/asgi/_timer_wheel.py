"""One event-loop timer for the keep-alive, send-timeout and lifetime checks of every stream.

A timer handle per stream makes the loop wake once per stream per ping: with 3,000 streams
pinged every second that is 3,000 ``epoll`` wake-ups a second, each a system call. Here checks
are grouped in slots of :data:`RESOLUTION` seconds and the loop wakes at most once per slot,
running every check that is due. A check may run up to one slot late; the stream computes its
next deadline from when the ping was due, so lateness never accumulates.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import weakref
from collections.abc import Callable
from time import monotonic
from typing import Any, Final, Protocol

__all__ = ("RESOLUTION", "Alarm", "TimerWheel", "timer_wheel")

RESOLUTION: Final = 0.01
"""Width of a slot in seconds: the most a check can run after its deadline."""

_logger: Final = logging.getLogger("litestar_sse")


class Timed(Protocol):
    """What the wheel calls: ``on_timer(slot)``, ignored unless ``slot`` is the one it asked for."""

    def on_timer(self, slot: int) -> None: ...


class TimerWheel:
    """Slots of due streams, served by a single ``call_at`` handle on one event loop."""

    __slots__ = ("_armed", "_handle", "_heap", "_loop", "_running", "_slots")

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop
        self._slots: dict[int, list[Timed]] = {}
        self._heap: list[int] = []
        self._armed: int | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._running = False
        """In :meth:`_run`, which arms the handle once at its end for whatever is left."""

    def schedule(self, stream: Timed, deadline: float) -> int:
        """Call ``stream.on_timer(slot)`` at ``deadline`` (a ``time.monotonic`` value) or up to
        one slot later; return the slot. Stale entries are not removed: the stream ignores them.
        """
        slot = math.ceil(deadline / RESOLUTION)
        entries = self._slots.get(slot)
        if entries is not None:
            entries.append(stream)
            return slot
        self._slots[slot] = [stream]
        heapq.heappush(self._heap, slot)
        if not self._running and (self._armed is None or slot < self._armed):
            self._arm(slot)
        return slot

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Alarm:
        """Call ``callback(*args)`` once, ``delay`` seconds from now (up to a slot later), from
        the wheel: the bounds of a stream's stop path, without a loop timer per stream."""
        return Alarm(self, monotonic() + delay, callback, args)

    def cancel(self, stream: Timed, slot: int) -> None:
        """Forget ``stream``'s entry in ``slot``: a stream that ended is not kept until then.

        A slot holds the few streams due in the same :data:`RESOLUTION`; an emptied slot stays
        on the heap and is skipped when its time comes.
        """
        entries = self._slots.get(slot)
        if entries is None:
            return
        for index, entry in enumerate(entries):
            if entry is stream:
                del entries[index]
                break
        if not entries:
            del self._slots[slot]

    def _arm(self, slot: int) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed = slot
        # The loop's clock may not be time.monotonic (uvloop): hand over the delay only.
        delay = max(slot * RESOLUTION - monotonic(), 0.0)
        loop = self._loop
        assert loop is not None  # trio's wheel (asgi/_runtime.py) arms its own way
        self._handle = loop.call_at(loop.time() + delay, self._run)

    def _run(self) -> None:
        self._handle = None
        self._armed = None
        current = math.floor(monotonic() / RESOLUTION)
        heap, slots = self._heap, self._slots
        self._running = True
        try:
            while heap and heap[0] <= current:
                slot = heapq.heappop(heap)
                for stream in slots.pop(slot, ()):
                    try:
                        stream.on_timer(slot)
                    except Exception:  # noqa: PERF203 - one failing stream must not stop others
                        _logger.exception("Exception raised by a stream's timer check")
        finally:
            self._running = False
        if heap:
            self._arm(heap[0])


class Alarm:
    """A one-shot call on a :class:`TimerWheel` (see :meth:`TimerWheel.call_later`)."""

    __slots__ = ("_args", "_callback", "_slot", "_wheel")

    def __init__(
        self,
        wheel: TimerWheel,
        deadline: float,
        callback: Callable[..., Any],
        args: tuple[Any, ...],
    ) -> None:
        self._wheel = wheel
        self._callback = callback
        self._args = args
        self._slot: int | None = wheel.schedule(self, deadline)

    def on_timer(self, slot: int) -> None:
        """Called by the wheel: make the call, unless cancelled."""
        if slot == self._slot:
            self._slot = None
            self._callback(*self._args)

    def cancel(self) -> None:
        """Do not make the call; the wheel forgets it."""
        slot, self._slot = self._slot, None
        if slot is not None:
            self._wheel.cancel(self, slot)


_wheels: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TimerWheel] = (
    weakref.WeakKeyDictionary()
)


def timer_wheel(loop: asyncio.AbstractEventLoop) -> TimerWheel:
    """The wheel of ``loop``, created on first use."""
    wheel = _wheels.get(loop)
    if wheel is None:
        wheel = _wheels[loop] = TimerWheel(loop)
    return wheel
