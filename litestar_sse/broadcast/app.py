"""How a :class:`~litestar_sse.broadcast.Broadcaster` joins an app through ``SSEConfig``.

The plugin layer knows only its :class:`~litestar_sse.plugin.config.AppService` protocol; this
module is the broadcaster's side of it: the ``broadcaster`` dependency, the app's separator and
type encoders, and a lifespan
that starts the broadcaster with the app and closes it after the streams' graceful end.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from litestar.di import Provide

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.config.app import AppConfig
    from litestar.types import TypeEncodersMap

    from litestar_sse.plugin.config import SSEConfig


class AppBroadcaster(Protocol):
    """What this module needs of a :class:`~litestar_sse.broadcast.Broadcaster`."""

    def _use_app_defaults(
        self, *, sep: str | None = None, type_encoders: TypeEncodersMap | None = None
    ) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


Broadcaster = TypeVar("Broadcaster", bound=AppBroadcaster)

__all__ = ("AppBroadcaster", "broadcaster_lifespan", "join_app")


def join_app(broadcaster: Broadcaster, app_config: AppConfig, config: SSEConfig) -> None:
    """Add ``broadcaster`` to the app being created (see the module's docstring).

    An app dependency already named ``broadcaster`` is kept.
    """
    broadcaster._use_app_defaults(sep=config.sep, type_encoders=app_config.type_encoders)
    app_config.dependencies.setdefault(
        "broadcaster",
        Provide(_provider(broadcaster), use_cache=True, sync_to_thread=False),
    )
    app_config.lifespan.append(broadcaster_lifespan(broadcaster))


def _provider(broadcaster: Broadcaster) -> Callable[[], Broadcaster]:
    def provide_broadcaster() -> Broadcaster:
        return broadcaster

    return provide_broadcaster


def broadcaster_lifespan(
    broadcaster: AppBroadcaster,
) -> Callable[[Litestar], contextlib.AbstractAsyncContextManager[None]]:
    """The app's lifespan context for a broadcaster: start it, and close it on exit.

    The plugin registers it just before its own shutdown lifespan, so it is entered before it
    (the broadcaster runs before the app's ``on_startup`` hooks and before any request) and
    exited after it: open streams first get their graceful end, with the ``shutdown_event``, and
    only then does closing the broadcaster end what is left of its subscriptions and disconnect
    its backend. Litestar runs the ``on_shutdown`` hooks after that.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await broadcaster.start()
        try:
            yield
        finally:
            await broadcaster.close()

    return lifespan
