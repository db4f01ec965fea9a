"""A broadcaster's lifecycle: its backend started once, closed once, never restarted behind
the app's back."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from litestar_sse.asgi import _runtime as runtime

if TYPE_CHECKING:
    from litestar_sse.broadcast._backends.base import BroadcastBackend
    from litestar_sse.broadcast._hub.fanout import FanOut

__all__ = ("Lifecycle",)


class Lifecycle:
    """Starts and closes one broadcaster's backend; :meth:`ready` before every use.

    Args:
        backend: The backend to start and close.
        fanout: The local subscribers, ended when the broadcaster closes.
    """

    __slots__ = ("_backend", "_closed", "_fanout", "_starting")

    def __init__(self, backend: BroadcastBackend, fanout: FanOut) -> None:
        self._backend = backend
        self._fanout = fanout
        self._starting: asyncio.Future[None] | None = None
        self._closed = False

    @property
    def started(self) -> bool:
        """Whether a start was asked for (and not undone by a close)."""
        return self._starting is not None

    async def start(self) -> None:
        """Start the backend (idempotent; after :meth:`close`, start it again)."""
        if self._closed:
            self._closed = False
            self._starting = None
        if self._starting is None:
            self._starting = starting = runtime.create_future()
            try:
                await self._backend.start()
            except BaseException as exc:
                starting.set_exception(exc)
                starting.exception()  # retrieved: callers see it below
                self._starting = None
                raise
            starting.set_result(None)
        await runtime.shielded(self._starting)

    async def close(self) -> None:
        """End every subscription (after what it holds) and stop the backend. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._fanout.end_all()
        if self._starting is not None:
            await self._backend.close()

    async def ready(self) -> None:
        """Start if needed; raise once closed.

        Raises:
            RuntimeError: the broadcaster is closed.
        """
        if self._closed:
            # Never restarted behind the app's back: a task still publishing after shutdown
            # would otherwise reconnect to Redis and leak the connection.
            raise RuntimeError("This Broadcaster is closed")
        if self._starting is None or not self._starting.done():
            await self.start()
