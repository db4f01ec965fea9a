"""When a stream pings, when it is cut for a stuck send, and when it is checked again.

Pure functions of the stream's timing state and the clock, with no I/O and no event loop, in
the spirit of h11: the send loop feeds them ``monotonic()`` and does what they answer, and the
tests drive them with any clock they like.

The timing state of a stream is three values: ``last_write`` (when the last write began, or
when the last ping was due), ``writing`` (a write is in flight) and ``streaming`` (the body is
not yet ending: no ping may start once it is).
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

__all__ = ("TimerAction", "next_check", "on_timer")


class TimerAction(NamedTuple):
    """What a timer check decided."""

    action: Literal["wait", "ping", "cut"]
    """``"ping"``: start a ping now; ``"cut"``: the write in flight is stuck, end the stream."""
    last_write: float
    """The stream's new ``last_write``: when the ping was due, for a ping."""


def on_timer(
    *,
    now: float,
    last_write: float,
    writing: bool,
    streaming: bool,
    ping_interval: float | None,
    send_timeout: float | None,
) -> TimerAction:
    """Decide what a timer check does at ``now``.

    A write in flight for ``send_timeout`` seconds or more is cut. Otherwise a stream idle for
    ``ping_interval`` seconds or more gets a ping, counted from when it was due rather than from
    when the (possibly late) check ran, so loop lag never adds up; a check later than a whole
    interval starts afresh from ``now``.
    """
    idle_for = now - last_write
    if writing:
        if send_timeout is not None and idle_for >= send_timeout:
            return TimerAction("cut", last_write)
    elif streaming and ping_interval is not None and idle_for >= ping_interval:
        due = last_write + ping_interval
        return TimerAction("ping", due if now - due < ping_interval else now)
    return TimerAction("wait", last_write)


def next_check(
    *,
    now: float,
    last_write: float,
    writing: bool,
    ping_interval: float | None,
    send_timeout: float | None,
) -> float:
    """The time of the next check (``math.inf``: none is needed).

    While a write is in flight: when its send timeout falls due, and one ping interval from now
    (the write, often a ping that just started, may end long before the timeout). Otherwise:
    when the next ping falls due, and one send timeout from now.
    """
    if writing:
        deadline = math.inf if send_timeout is None else last_write + send_timeout
        if ping_interval is not None:
            deadline = min(deadline, now + ping_interval)
        return deadline
    deadline = math.inf if ping_interval is None else last_write + ping_interval
    if send_timeout is not None:
        deadline = min(deadline, now + send_timeout)
    return deadline
