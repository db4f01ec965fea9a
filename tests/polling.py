"""Waiting for a condition in tests, bounded in time, from async or sync code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def wait_until_sync(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` every 5 ms; True as soon as it holds, False after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Await until ``predicate`` holds, polling every 5 ms; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)
