"""The ``on_disconnect`` callback: what it may look like, checked once, and how it is run."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from litestar_sse.asgi._state import DisconnectReason, StopReason

if TYPE_CHECKING:
    import logging

__all__ = ("DisconnectHandler", "run_disconnect_handler", "takes_reason")

DisconnectHandler = (
    Callable[[], "Awaitable[None] | None"] | Callable[[DisconnectReason], "Awaitable[None] | None"]
)
"""Called once when the client goes away before the stream ended (sync or async), with no
argument or with the :data:`~litestar_sse.asgi._state.DisconnectReason` if it accepts one."""


def takes_reason(handler: DisconnectHandler) -> bool:
    """Whether ``on_disconnect`` takes the reason (one positional argument) or nothing.

    Raises :class:`TypeError` at construction for a callable that takes neither.
    """
    if not callable(handler):
        raise TypeError(f"on_disconnect must be callable, got {type(handler).__name__}")
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):
        return False  # no signature to read (some builtins): called without arguments
    for args, takes in ((("disconnect",), True), ((), False)):
        try:
            signature.bind(*args)
        except TypeError:
            continue
        return takes
    raise TypeError(
        f"on_disconnect must accept no argument or one (the reason), got {handler!r}{signature}"
    )


async def run_disconnect_handler(
    handler: DisconnectHandler, reason: StopReason, pass_reason: bool, logger: logging.Logger
) -> None:
    """Call ``handler`` (with ``reason`` if it takes one), awaiting it if async; log its errors."""
    call: Callable[..., Awaitable[None] | None] = handler
    try:
        result = call(reason) if pass_reason else call()
        if result is not None:
            await result
    except Exception:
        logger.exception("Exception raised by the on_disconnect handler")
