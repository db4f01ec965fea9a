"""Telling a stream's own cancellations (by ``stop()``) from anyone else's, and taking them back.

``Task.cancelling()`` and ``Task.uncancel()`` are Python 3.11+; on 3.10 every cancellation is
taken as requested, and ours are not taken back (nothing counts them there).
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ("cancel_requested", "take_back_cancel")


def cancel_requested(task: asyncio.Task[Any] | None) -> bool:
    """Whether anyone asked to cancel ``task`` (3.10, which cannot tell: assume so)."""
    cancelling = getattr(task, "cancelling", None)
    return cancelling is None or cancelling() > 0


def take_back_cancel(task: asyncio.Task[Any], ours: int = 1) -> bool:
    """Take back the ``ours`` cancellations we asked for; False if others asked too.

    A stream may cancel its task more than once (a stop, then a cut of the producer's
    cleanup); all of them are ours, and all are taken back together.
    """
    cancelling = getattr(task, "cancelling", None)
    if cancelling is None:
        return True
    requested = cancelling()
    if requested > ours:
        return False  # cancelled by someone else too (the server, a task group)
    uncancel = task.uncancel  # type: ignore[attr-defined]  # 3.11+, as cancelling() is
    for _ in range(requested):
        uncancel()
    return True
