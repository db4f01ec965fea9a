"""How a :class:`~litestar_sse.broadcast.Broadcaster` joins an app through ``SSEConfig``.

The plugin layer knows only its :class:`~litestar_sse._plugin.config.AppService` protocol; this
module is the broadcaster's side of it: the ``broadcaster`` dependency, the app's separator and
type encoders, a lifespan that starts the broadcaster with the app and closes it after the
streams' graceful end, and, for a backend that tracks principals (the in-memory one), a
middleware that makes the publishes of a request its ``client_key``'s (see
:func:`~litestar_sse.broadcast.publishing_as`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from litestar import Request
from litestar.di import Provide
from litestar.enums import ScopeType

from litestar_sse.broadcast._backends.base import publish_as_while

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.config.app import AppConfig
    from litestar.types import ASGIApp, Receive, Scope, Send, TypeEncodersMap

    from litestar_sse._plugin.config import SSEConfig


class AppBroadcaster(Protocol):
    """What this module needs of a :class:`~litestar_sse.broadcast.Broadcaster`."""

    def _use_app_defaults(
        self, *, sep: str | None = None, type_encoders: TypeEncodersMap | None = None
    ) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


Broadcaster = TypeVar("Broadcaster", bound=AppBroadcaster)

__all__ = ("AppBroadcaster", "broadcaster_lifespan", "join_app", "principal_middleware")


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
    backend = getattr(broadcaster, "backend", None)
    if getattr(backend, "tracks_principals", False):
        app_config.middleware.append(principal_middleware(config.client_key))


def principal_middleware(
    client_key: Callable[[Request[Any, Any, Any]], Hashable],
) -> Callable[[ASGIApp], ASGIApp]:
    """An ASGI middleware under which the publishes of an HTTP request (and of the tasks it
    starts) are made as its ``client_key`` (asked once per request: the key is kept, never
    the request, which the tasks it starts may outlive)."""

    def middleware(app: ASGIApp) -> ASGIApp:
        def with_principal(scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
            # Not a coroutine function: an open stream keeps one small frame of this
            # middleware for its whole life, not a coroutine and a context manager.
            if scope["type"] != ScopeType.HTTP:
                return app(scope, receive, send)
            try:
                principal = client_key(Request(scope))
            except Exception:  # a client_key that fails: the shared principal
                principal = None
            return publish_as_while(principal, app(scope, receive, send))

        return with_principal

    return middleware


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
