"""A stream's state, why it stops, and the timer's decisions: pure, no I/O, no event loop.

In the spirit of h11: the send loop keeps one :class:`StreamState` and feeds the functions here
``monotonic()``; they answer what to do, and the tests drive them with any clock they like.

The states and what moves a stream between them::

    NEW --send_body--> IDLE <--> WRITING    an event's write is in flight (tracked when a
                                            timer watches the stream: pings, send timeout)
                       IDLE <--> PINGING    a keep-alive write is in flight; events wait for it
    IDLE / WRITING / PINGING --stop(reason)--> STOPPING   the send loop is being interrupted
    IDLE --producer exhausted--> FINISHING               the last write: the end of the body
    STOPPING --graceful (a closing is given)--> FINISHING  closing bytes, then the end of body
    FINISHING --stop(reason) without closing--> STOPPING   a stuck last write, or grace is over
    any --send_body returns--> DONE

Why a stream stops is a :data:`StopReason`: the client is gone (``disconnect``,
``send_timeout``, ``overflow``: nothing more can be sent, and ``on_disconnect`` gets that
reason) or the server ends it (``shutdown``, ``lifetime``: cleanly if a closing is given).
"""

from __future__ import annotations

import enum
import math
from typing import Final, Literal, NamedTuple

__all__ = (
    "CLIENT_GONE",
    "DisconnectReason",
    "StopReason",
    "StreamState",
    "TimerAction",
    "next_check",
    "on_timer",
)

DisconnectReason = Literal["disconnect", "send_timeout", "overflow"]
"""Why the client is gone: it closed the connection (or the server reported it closed), it
stopped reading and a send waited longer than ``send_timeout``, or (a broadcast subscriber)
it fell further behind than its queue allows and was stopped, to resume from history."""

StopReason = Literal[
    "disconnect", "send_timeout", "overflow", "shutdown", "lifetime", "unauthorized"
]
"""Why a stream stops before its producer ended: a :data:`DisconnectReason`, or the server
ending it (``"shutdown"``, ``"lifetime"``, ``"unauthorized"``: its client's permission
expired or was revoked)."""

CLIENT_GONE: Final[frozenset[str]] = frozenset(("disconnect", "send_timeout", "overflow"))
"""The reasons that mean the client is gone: ``on_disconnect`` runs for these."""


class StreamState(enum.Enum):
    """Where a stream is in its life (see the module's diagram)."""

    NEW = "new"
    IDLE = "idle"
    WRITING = "writing"
    PINGING = "pinging"
    STOPPING = "stopping"
    FINISHING = "finishing"
    DONE = "done"


_IDLE: Final = StreamState.IDLE
_STOPPING: Final = StreamState.STOPPING
_DONE: Final = StreamState.DONE
_NEW: Final = StreamState.NEW
_FINISHING: Final = StreamState.FINISHING
# A write whose send timeout runs: an event, a ping, or the last write(s) of the body.
_WRITES: Final = frozenset((StreamState.WRITING, StreamState.PINGING, StreamState.FINISHING))


class TimerAction(NamedTuple):
    """What a timer check decided."""

    action: Literal["wait", "ping", "stop", "expire", "done"]
    """``"ping"``: start a ping now; ``"stop"``: the write in flight is stuck, stop the stream
    for ``send_timeout``; ``"expire"``: the stream's ``deadline`` (its maximum lifetime) has
    come, end it; ``"wait"``: check again at :func:`next_check`; ``"done"``: no more checks
    (the stream ended or never started)."""
    last_write: float
    """The stream's new ``last_write``: when the ping was due, for a ping."""


def on_timer(
    state: StreamState,
    *,
    now: float,
    last_write: float,
    ping_interval: float | None,
    send_timeout: float | None,
    deadline: float | None = None,
) -> TimerAction:
    """Decide what a timer check does at ``now``.

    ``last_write`` is when the last write began (or when the last ping was due). A stream whose
    write has been in flight for ``send_timeout`` seconds or more is stopped. Past its
    ``deadline`` a stream that is not ending already expires. An idle stream idle for
    ``ping_interval`` seconds or more gets a ping, counted from when it was due rather than from
    when the (possibly late) check ran, so loop lag never adds up; a check later than a whole
    interval starts afresh from ``now``. A stopping stream is none of these: it waits for its
    send loop.
    """
    if state is _DONE or state is _NEW:
        return TimerAction("done", last_write)
    idle_for = now - last_write
    if state in _WRITES:
        if send_timeout is not None and idle_for >= send_timeout:
            return TimerAction("stop", last_write)
        if deadline is not None and now >= deadline and state is not _FINISHING:
            return TimerAction("expire", last_write)
    elif state is _IDLE and deadline is not None and now >= deadline:
        return TimerAction("expire", last_write)
    elif state is _IDLE and ping_interval is not None and idle_for >= ping_interval:
        due = last_write + ping_interval
        return TimerAction("ping", due if now - due < ping_interval else now)
    return TimerAction("wait", last_write)


def next_check(
    state: StreamState,
    *,
    now: float,
    last_write: float,
    ping_interval: float | None,
    send_timeout: float | None,
    deadline: float | None = None,
) -> float:
    """The time of the next check (``math.inf``: none is needed).

    While a write is in flight: when its send timeout falls due, and one ping interval from now
    (the write, often a ping that just started, may end long before the timeout). An idle
    stream: when the next ping falls due, and one send timeout from now (a write could start
    any time). Either way no later than the stream's ``deadline``. A stopping stream: one
    interval from now, so that the writes of a graceful end are covered by the send timeout
    once they start.
    """
    if state is _STOPPING:
        intervals = [s for s in (ping_interval, send_timeout) if s is not None]
        return now + min(intervals) if intervals else math.inf
    if state in _WRITES:
        due = math.inf if send_timeout is None else last_write + send_timeout
        if ping_interval is not None:
            due = min(due, now + ping_interval)
    else:
        due = math.inf if ping_interval is None else last_write + ping_interval
        if send_timeout is not None:
            due = min(due, now + send_timeout)
    if deadline is not None and state is not _FINISHING:
        due = min(due, deadline)
    return due
