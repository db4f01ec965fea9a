"""Graceful shutdown: end every open stream as soon as the server is told to stop.

The app's lifespan shutdown is too late for streams. On SIGINT/SIGTERM uvicorn stops accepting,
then *waits for open responses to finish* and only then runs the lifespan shutdown; granian's
worker does the same (its Rust server drains the connections before the worker's event loop
runs the lifespan shutdown). An endless event stream never finishes, so both wait until the
clients give up, or until a timeout of their own cuts the connections (uvicorn then logs a
traceback per stream).

So at startup, :class:`ShutdownTrigger` chains itself in front of the SIGINT and SIGTERM
handlers the server installed: on the signal it schedules
:meth:`~litestar_sse._plugin.registry.StreamRegistry.begin_shutdown` on the app's event loop
and calls the server's handler, which proceeds as usual and finds the streams ending. Nothing of the
server is patched, and it works however the server installed its handler:

* uvicorn installs a Python handler with ``signal.signal``; it is called after ours;
* granian's worker uses ``loop.add_signal_handler``, which leaves a no-op Python handler and
  wakes the loop through the signal wakeup fd. Replacing the no-op does not touch that path:
  the loop still dispatches the signal to granian, and ours runs too.

Signal handlers can only be installed from the main thread, which is where both servers run
the lifespan. The lifespan shutdown also ends the streams and waits for them (up to the grace
period): the path for apps started elsewhere (test clients run the app in a portal thread) or
under servers that install no handler.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, Final

from litestar_sse.asgi._runtime import call_soon_threadsafe_here

if TYPE_CHECKING:
    from litestar import Litestar

    from litestar_sse._plugin.registry import StreamRegistry

__all__ = ("ShutdownTrigger",)

_SIGNALS: Final = tuple(
    sig for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGBREAK", None)) if sig
)
_LOGGER: Final = logging.getLogger("litestar_sse")

SignalHandler = Callable[[int, "FrameType | None"], Any]


class ShutdownTrigger:
    """Ends an app's streams when the server process is told to stop.

    Args:
        registry: The app's open streams.
        grace_period: Seconds streams get to end cleanly before they are aborted.
        install_signal_handlers: Chain the SIGINT/SIGTERM handlers at startup.
    """

    __slots__ = (
        "_call_soon",
        "_handler",
        "_previous",
        "grace_period",
        "install_signal_handlers",
        "registry",
    )

    def __init__(
        self, registry: StreamRegistry, *, grace_period: float, install_signal_handlers: bool
    ) -> None:
        self.registry = registry
        self.grace_period = grace_period
        self.install_signal_handlers = install_signal_handlers
        # The running loop's call_soon_threadsafe (asyncio's, or trio's token).
        self._call_soon: Callable[..., Any] | None = None
        self._previous: dict[int, SignalHandler] = {}
        # One bound method, so that "is the installed handler ours" is an identity check.
        self._handler: SignalHandler = self._on_signal

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        """The app's lifespan context: chain signal handlers, then end streams on exit."""
        self.start()
        try:
            yield
        finally:
            await self.stop()

    def start(self) -> None:
        """Remember the loop and chain the server's signal handlers (main thread only)."""
        self._call_soon = call_soon_threadsafe_here()
        self.registry.reopen()
        if not self.install_signal_handlers:
            return
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set there; the lifespan shutdown still works
        for sig in _SIGNALS:
            previous = signal.getsignal(sig)
            if callable(previous) and previous is not self._handler:
                self._previous[sig] = previous
                signal.signal(sig, self._handler)

    async def stop(self) -> None:
        """Restore the signal handlers, end every stream and wait for them to close."""
        self._restore_signal_handlers()
        self.registry.begin_shutdown(self.grace_period)
        # The registry aborts streams after the grace period; give the aborted ones a moment.
        await self.registry.wait_closed(self.grace_period + 1.0)
        # The app may be started again (test clients do): it then accepts streams again.
        self.registry.reopen()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        call_soon = self._call_soon
        if call_soon is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed, or shutting down
                call_soon(self.registry.begin_shutdown, self.grace_period)
        previous = self._previous.get(signum)
        if previous is not None:
            previous(signum, frame)

    def _restore_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, previous in self._previous.items():
            if signal.getsignal(sig) is self._handler:
                signal.signal(sig, previous)
        self._previous.clear()
