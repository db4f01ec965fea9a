"""The ping / send-timeout decisions, as pure functions of the stream's state and the clock."""

from __future__ import annotations

import math

import pytest

from litestar_sse.asgi.timing import TimerAction, next_check, on_timer


def decide(
    now: float,
    last_write: float = 0.0,
    *,
    writing: bool = False,
    streaming: bool = True,
    ping: float | None = 1.0,
    timeout: float | None = None,
) -> TimerAction:
    return on_timer(
        now=now,
        last_write=last_write,
        writing=writing,
        streaming=streaming,
        ping_interval=ping,
        send_timeout=timeout,
    )


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


def test_no_ping_while_a_write_is_in_flight_nor_once_the_body_ends() -> None:
    assert decide(5.0, writing=True).action == "wait"
    assert decide(5.0, streaming=False).action == "wait"
    assert decide(5.0, ping=None).action == "wait"


@pytest.mark.parametrize(
    ("now", "action"), [(2.9, "wait"), (3.0, "cut"), (10.0, "cut")], ids=["before", "due", "late"]
)
def test_a_stuck_write_is_cut_after_the_send_timeout(now: float, action: str) -> None:
    assert decide(now, writing=True, timeout=3.0).action == action


def test_a_send_timeout_does_not_cut_an_idle_stream() -> None:
    assert decide(100.0, ping=None, timeout=3.0) == TimerAction("wait", 0.0)


def check_at(now: float, *, writing: bool, ping: float | None, timeout: float | None) -> float:
    return next_check(
        now=now, last_write=10.0, writing=writing, ping_interval=ping, send_timeout=timeout
    )


@pytest.mark.parametrize(
    ("writing", "ping", "timeout", "expected"),
    [
        (False, 1.0, None, 11.0),  # the next ping
        (False, 1.0, 0.5, 10.7),  # a send could start any time: one timeout from now
        (False, None, None, math.inf),  # nothing to check
        (True, None, 3.0, 13.0),  # when the write in flight times out
        (True, 1.0, 3.0, 11.2),  # the ping again one interval from now, before the timeout
        (True, 1.0, None, 11.2),
    ],
)
def test_next_check(
    writing: bool, ping: float | None, timeout: float | None, expected: float
) -> None:
    assert check_at(10.2, writing=writing, ping=ping, timeout=timeout) == pytest.approx(expected)
