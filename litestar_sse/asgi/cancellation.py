"""Telling a stream's own cancellation (by ``stop()``) from anyone else's, and taking it back.

``Task.cancelling()`` and ``Task.uncancel()`` are Python 3.11+; on 3.10 every cancellation is
taken as requested, and ours is not taken back (nothing counts them there).
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ("cancel_requested", "take_back_cancel")


def cancel_requested(task: asyncio.Task[Any] | None) -> bool:
    """Whether anyone asked to cancel ``task`` (3.10, which cannot tell: assume so)."""
    cancelling = getattr(task, "cancelling", None)
    return cancelling is None or cancelling() > 0


def take_back_cancel(task: asyncio.Task[Any]) -> bool:
    """Take back the one cancellation we asked for; False if others asked too."""
    cancelling = getattr(task, "cancelling", None)
    if cancelling is not None and cancelling() > 1:
        return False  # cancelled by someone else too (the server, a task group)
    uncancel = getattr(task, "uncancel", None)
    if uncancel is not None:
        uncancel()
    return True
