"""The loop-wide timer wheel: checks run on time, together, and never early."""

from __future__ import annotations

import asyncio
import logging
from time import monotonic

import pytest

from litestar_sse.asgi._timer_wheel import RESOLUTION, TimerWheel, timer_wheel

pytestmark = pytest.mark.anyio


class Recorder:
    def __init__(self, wheel: TimerWheel, deadline: float, *, fail: bool = False) -> None:
        self.deadline = deadline
        self.fired: list[float] = []
        self.fail = fail
        self.slot = wheel.schedule(self, deadline)

    def on_timer(self, slot: int) -> None:
        if slot != self.slot:
            return
        self.fired.append(monotonic())
        if self.fail:
            raise RuntimeError("check failed")


async def test_checks_run_at_their_deadline_never_before_and_at_most_a_slot_late() -> None:
    wheel = TimerWheel(asyncio.get_running_loop())
    start = monotonic()
    recorders = [Recorder(wheel, start + 0.02 + i * 0.013) for i in range(10)]
    await asyncio.sleep(0.3)
    for recorder in recorders:
        assert len(recorder.fired) == 1
        lateness = recorder.fired[0] - recorder.deadline
        assert lateness >= 0
        assert lateness < RESOLUTION + 0.05  # a slot, plus scheduling noise on a busy machine


async def test_many_checks_due_in_one_slot_share_one_loop_wake_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    wheel = TimerWheel(loop)
    handles = 0
    call_at = loop.call_at

    def counting_call_at(
        when: float, callback: object, *args: object, **kwargs: object
    ) -> asyncio.TimerHandle:
        nonlocal handles
        if getattr(callback, "__self__", None) is wheel:
            handles += 1
        return call_at(when, callback, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "call_at", counting_call_at)
    middle = (int(monotonic() / RESOLUTION) + 5.5) * RESOLUTION  # well inside one slot
    spread = RESOLUTION / 4 / 3000
    recorders = [Recorder(wheel, middle + i * spread) for i in range(3000)]
    await asyncio.sleep(0.2)
    assert all(len(r.fired) == 1 for r in recorders)
    assert handles == 1  # one timer for 3,000 streams: the loop woke once, not 3,000 times


async def test_a_failing_check_is_logged_and_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    wheel = TimerWheel(asyncio.get_running_loop())
    deadline = monotonic() + 0.02
    failing = Recorder(wheel, deadline, fail=True)
    others = [Recorder(wheel, deadline) for _ in range(3)]
    with caplog.at_level(logging.ERROR, "litestar_sse"):
        await asyncio.sleep(0.1)
    assert len(failing.fired) == 1
    assert all(len(r.fired) == 1 for r in others)
    assert "timer check" in caplog.text


async def test_stale_entries_are_ignored_after_rescheduling() -> None:
    wheel = TimerWheel(asyncio.get_running_loop())
    recorder = Recorder(wheel, monotonic() + 0.02)
    recorder.slot = wheel.schedule(recorder, monotonic() + 0.08)  # re-armed later
    await asyncio.sleep(0.05)
    assert recorder.fired == []
    await asyncio.sleep(0.1)
    assert len(recorder.fired) == 1


async def test_one_wheel_per_loop() -> None:
    loop = asyncio.get_running_loop()
    assert timer_wheel(loop) is timer_wheel(loop)


async def test_a_cancelled_entry_is_dropped_at_once_and_never_runs() -> None:
    wheel = TimerWheel(asyncio.get_running_loop())
    deadline = monotonic() + 0.05
    kept, dropped = Recorder(wheel, deadline), Recorder(wheel, deadline)
    assert kept.slot == dropped.slot  # the same slot: the other entry stays
    wheel.cancel(dropped, dropped.slot)
    wheel.cancel(dropped, dropped.slot)  # twice, or for a slot already run: nothing happens
    alone = Recorder(wheel, deadline + 0.02)
    wheel.cancel(alone, alone.slot)  # the slot's only entry: the slot goes
    assert alone.slot not in wheel._slots
    assert all(entry is not dropped for entry in wheel._slots[kept.slot])
    await asyncio.sleep(0.2)
    assert len(kept.fired) == 1
    assert dropped.fired == []
    assert alone.fired == []


async def test_call_later_calls_once_at_its_time_and_not_once_cancelled() -> None:
    """The stop path's bounds (cleanup_timeout, the lifetime's hard end) ride on the wheel."""
    wheel = timer_wheel(asyncio.get_running_loop())
    calls: list[tuple[str, float]] = []
    start = monotonic()
    wheel.call_later(0.05, lambda what: calls.append((what, monotonic())), "due")
    cancelled = wheel.call_later(0.05, lambda what: calls.append((what, monotonic())), "no")
    cancelled.cancel()
    cancelled.cancel()  # twice is fine
    await asyncio.sleep(0.3)
    assert [what for what, _ in calls] == ["due"]
    assert calls[0][1] - start >= 0.05
