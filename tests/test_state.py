"""The stream's states and the timer's decisions, as pure functions of the state and the clock."""

from __future__ import annotations

import math

import pytest

from litestar_sse.asgi._state import StreamState, TimerAction, next_check, on_timer

S = StreamState


def decide(
    now: float,
    last_write: float = 0.0,
    *,
    state: StreamState = S.IDLE,
    ping: float | None = 1.0,
    timeout: float | None = None,
) -> TimerAction:
    return on_timer(state, now=now, last_write=last_write, ping_interval=ping, send_timeout=timeout)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (0.5, TimerAction("wait", 0.0)),  # not idle long enough
        (1.0, TimerAction("ping", 1.0)),  # due exactly
        (1.3, TimerAction("ping", 1.0)),  # a late check: counted from when it was due
        (2.5, TimerAction("ping", 2.5)),  # later than a whole interval: start afresh
    ],
)
def test_an_idle_stream_is_pinged_when_due(now: float, expected: TimerAction) -> None:
    assert decide(now) == expected


def test_lateness_never_adds_up_over_many_pings() -> None:
    last_write, pinged_at = 0.0, []
    for tick in range(1, 50):
        now = tick * 1.0 + 0.009  # every check runs 9 ms late (one timer-wheel slot)
        action, last_write = decide(now, last_write)
        if action == "ping":
            pinged_at.append(last_write)
    assert pinged_at == [float(n) for n in range(1, 50)]


@pytest.mark.parametrize("state", [S.WRITING, S.PINGING, S.FINISHING, S.STOPPING])
def test_only_an_idle_stream_is_pinged(state: StreamState) -> None:
    """Not during a write, nor once the body ends, nor while the stream is stopping (the
    send loop has not yet taken its stop: a ping then would follow the stop)."""
    assert decide(5.0, state=state).action == "wait"
    assert decide(5.0, ping=None).action == "wait"


@pytest.mark.parametrize("state", [S.NEW, S.DONE])
def test_a_stream_not_running_needs_no_more_checks(state: StreamState) -> None:
    assert decide(5.0, state=state, timeout=1.0).action == "done"


@pytest.mark.parametrize("state", [S.WRITING, S.PINGING, S.FINISHING])
@pytest.mark.parametrize(
    ("now", "action"), [(2.9, "wait"), (3.0, "stop"), (10.0, "stop")], ids=["before", "due", "late"]
)
def test_a_stuck_write_is_stopped_after_the_send_timeout(
    state: StreamState, now: float, action: str
) -> None:
    """An event, a ping, or the last writes of the body (the closing of a clean stop)."""
    assert decide(now, state=state, timeout=3.0).action == action


@pytest.mark.parametrize("state", [S.IDLE, S.STOPPING])
def test_a_send_timeout_does_not_cut_a_stream_that_is_not_writing(state: StreamState) -> None:
    assert decide(100.0, state=state, ping=None, timeout=3.0) == TimerAction("wait", 0.0)


def check_at(now: float, state: StreamState, *, ping: float | None, timeout: float | None) -> float:
    return next_check(state, now=now, last_write=10.0, ping_interval=ping, send_timeout=timeout)


@pytest.mark.parametrize(
    ("state", "ping", "timeout", "expected"),
    [
        (S.IDLE, 1.0, None, 11.0),  # the next ping
        (S.IDLE, 1.0, 0.5, 10.7),  # a send could start any time: one timeout from now
        (S.IDLE, None, None, math.inf),  # nothing to check
        (S.WRITING, None, 3.0, 13.0),  # when the write in flight times out
        (S.WRITING, 1.0, 3.0, 11.2),  # the ping again one interval from now, before the timeout
        (S.WRITING, 1.0, None, 11.2),
        (S.FINISHING, None, 3.0, 13.0),
        # stopping: soon enough to cover the writes of a clean end once they start, never in
        # the past (last_write + ping_interval may be)
        (S.STOPPING, 1.0, 3.0, 11.2),
        (S.STOPPING, None, 3.0, 13.2),
        (S.STOPPING, None, None, math.inf),
    ],
)
def test_next_check(
    state: StreamState, ping: float | None, timeout: float | None, expected: float
) -> None:
    assert check_at(10.2, state, ping=ping, timeout=timeout) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("state", "now", "expected"),
    [
        (S.IDLE, 9.9, "wait"),
        (S.IDLE, 10.0, "expire"),  # before a ping that is due too
        (S.WRITING, 10.5, "expire"),  # a write in flight: a clean end waits for it
        (S.PINGING, 10.5, "expire"),
        (S.FINISHING, 10.5, "wait"),  # ending already
        (S.STOPPING, 10.5, "wait"),
        (S.WRITING, 40.5, "stop"),  # a stuck write is a send timeout first
    ],
)
def test_a_stream_expires_at_its_deadline_unless_it_is_ending(
    state: StreamState, now: float, expected: str
) -> None:
    action = on_timer(
        state, now=now, last_write=9.0, ping_interval=1.0, send_timeout=30.0, deadline=10.0
    )
    assert action.action == expected


@pytest.mark.parametrize("state", [S.IDLE, S.WRITING, S.PINGING])
def test_the_next_check_is_never_after_the_deadline(state: StreamState) -> None:
    assert (
        next_check(
            state, now=5.0, last_write=5.0, ping_interval=None, send_timeout=None, deadline=8.0
        )
        == 8.0
    )
    assert (
        next_check(
            state, now=5.0, last_write=5.0, ping_interval=1.0, send_timeout=None, deadline=8.0
        )
        == 6.0
    )


def test_an_ending_stream_is_not_checked_for_its_deadline() -> None:
    assert (
        next_check(
            S.FINISHING,
            now=5.0,
            last_write=5.0,
            ping_interval=None,
            send_timeout=None,
            deadline=8.0,
        )
        == math.inf
    )
