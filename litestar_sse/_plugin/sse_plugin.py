"""``SSEPlugin``: register it once and Server-Sent Events feel native in a Litestar app."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from litestar.di import Provide
from litestar.plugins import InitPlugin
from litestar.plugins.base import ReceiveRoutePlugin
from litestar.response import ServerSentEvent as _LitestarServerSentEvent
from litestar.routes import HTTPRoute

from litestar_sse._compat import set_handler_response
from litestar_sse._message import RawEvent, ServerSentEventMessage
from litestar_sse._plugin.config import STATE_KEY, AppSSE, SSEConfig
from litestar_sse._plugin.error_responses import label_error_responses
from litestar_sse._plugin.event_stream import (
    EVENT_STREAM,
    check_not_a_stray_generator,
    is_event_stream_media_type,
    mark_prepared,
    stream_item_type_of,
)
from litestar_sse._plugin.handlers import GeneratorSSEResponse, make_generator_response_class
from litestar_sse._plugin.last_event_id import provide_last_event_id
from litestar_sse._plugin.lifecycle import ShutdownTrigger
from litestar_sse._plugin.openapi import SSESchemaPlugin, sse_operation_class
from litestar_sse._response import ServerSentEvent, Stream

if TYPE_CHECKING:
    from litestar.config.app import AppConfig
    from litestar.handlers.http_handlers import HTTPRouteHandler
    from litestar.routes import BaseRoute

__all__ = ("SSEPlugin", "add_signature_name")

_SIGNATURE_NAMES: dict[str, Any] = {
    "ServerSentEvent": ServerSentEvent,
    "ServerSentEventMessage": ServerSentEventMessage,
    "RawEvent": RawEvent,
    "Stream": Stream,
}


def add_signature_name(name: str, value: Any) -> None:
    """Make ``name`` resolve in handler annotations of the apps the plugin serves.

    As for ``ServerSentEvent``, ``Stream`` and the message classes, which are always there:
    annotations naming it then work in modules that import it only for type checking. The
    broadcast layer adds ``Broadcaster`` when it is imported (the plugin never imports it).
    """
    _SIGNATURE_NAMES.setdefault(name, value)


class SSEPlugin(InitPlugin, ReceiveRoutePlugin):
    """Server-Sent Events for a Litestar app: generator handlers, defaults, OpenAPI, shutdown.

    Example:
        .. code-block:: python

            from collections.abc import AsyncIterator

            import msgspec
            from litestar import Litestar, post
            from litestar.di import NamedDependency
            from litestar.params import JSONBody

            from litestar_sse import SSEConfig, SSEPlugin, event_stream


            class Prompt(msgspec.Struct):
                text: str


            class Token(msgspec.Struct):
                text: str


            @post("/chat", status_code=200)
            @event_stream
            async def chat(
                data: JSONBody[Prompt], last_event_id: NamedDependency[str | None]
            ) -> AsyncIterator[Token]:
                for word in data.text.split():
                    yield Token(word)  # data: {"text":"..."}


            app = Litestar([chat], plugins=[SSEPlugin(SSEConfig(ping_interval=10))])

    What it adds to the app (merged into the app's configuration, never replacing what the
    app set itself):

    * **Generator handlers.** A route handler whose function yields items streams them as
      events, with any HTTP method: mark it with ``media_type="text/event-stream"`` on the
      route decorator or with :func:`~litestar_sse.event_stream`, and annotate it as returning
      ``AsyncIterator[T]`` (or ``AsyncIterable``, ``AsyncGenerator``, ``Iterator``,
      ``Iterable``, ``Generator``). Items of a declared type ``T`` are validated and sent as
      JSON with the app's ``type_encoders``; see :mod:`litestar_sse._plugin.handlers`.
    * **App-wide defaults.** Every :class:`~litestar_sse.ServerSentEvent` and generator
      handler takes ping interval, ping text, retry, separator, send timeout and extra headers
      from :class:`~litestar_sse.SSEConfig` unless it sets its own.
    * **OpenAPI.** Generator handlers and handlers returning ``ServerSentEvent`` are documented
      as ``text/event-stream`` with the schema of one event (OpenAPI 3.2 §4.14.4): ``data``,
      ``event``, ``id``, ``retry``, with ``data`` described as JSON of ``T``'s schema.
    * **Last-Event-ID.** A dependency ``last_event_id: NamedDependency[str | None]`` (from the
      ``Last-Event-ID`` header, else the ``lastEventId`` query parameter; ``None`` when absent
      or unusable, never an error); an app dependency of the same name is kept instead.
    * **Shutdown, connection limit, lifetime.** Open streams are tracked; at shutdown each
      completes the event it is sending, gets the optional ``shutdown_event`` and the end of
      its body, within ``shutdown_grace_period``. Beyond ``max_connections`` new streams get a
      503 with ``Retry-After``; streams older than ``max_lifetime`` end cleanly. HEAD
      requests get the headers only, and streams work behind Litestar's compression.
    * **Broadcast.** With ``SSEConfig(broadcaster=...)``, a dependency ``broadcaster`` (an app
      dependency of the same name is kept instead), started with the app and closed after the
      streams' graceful end. See :doc:`/broadcast`.

    The plugin's state lives in the app (its ``state``), so one plugin instance may serve
    several apps; each app gets its own open-stream registry.

    Args:
        config: The app-wide defaults; ``SSEConfig()`` if omitted.
    """

    __slots__ = ("_apps", "_schema_plugin", "config")

    def __init__(self, config: SSEConfig | None = None) -> None:
        self.config = config if config is not None else SSEConfig()
        self._schema_plugin = SSESchemaPlugin()
        # The state of each app the plugin serves, held weakly: an app that is gone (a test's)
        # takes its state with it.
        self._apps: weakref.WeakSet[AppSSE] = weakref.WeakSet()

    @property
    def open_streams(self) -> int:
        """The number of open event streams, over every app this plugin is registered with."""
        return sum(len(app_sse.registry) for app_sse in self._apps)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Register the dependency, lifespan, OpenAPI plugin and state the plugin needs."""
        app_sse = AppSSE(self.config)
        self._apps.add(app_sse)
        app_config.state[STATE_KEY] = app_sse
        for name, value in _SIGNATURE_NAMES.items():
            app_config.signature_namespace.setdefault(name, value)
        app_config.dependencies.setdefault(
            "last_event_id", Provide(provide_last_event_id, sync_to_thread=False)
        )
        if self.config.broadcaster is not None:
            # Before the trigger's lifespan: started first, closed after the streams ended.
            self.config.broadcaster.join_app(app_config, self.config)
        trigger = ShutdownTrigger(
            app_sse.registry,
            grace_period=self.config.shutdown_grace_period,
            install_signal_handlers=self.config.install_signal_handlers,
        )
        # Appended last: entered last and so exited first, before the app's own resources.
        app_config.lifespan.append(trigger.lifespan)
        if self._schema_plugin not in app_config.plugins:
            app_config.plugins.append(self._schema_plugin)
        return app_config

    def receive_route(self, route: BaseRoute) -> None:
        """Turn the route's event-stream handlers into streams and document them as such."""
        if not isinstance(route, HTTPRoute):
            return
        for handler in route.route_handlers:
            self._prepare_handler(handler)

    def _prepare_handler(self, handler: HTTPRouteHandler) -> None:
        response_class = handler.response_class
        if isinstance(response_class, type) and issubclass(response_class, GeneratorSSEResponse):
            return  # already prepared (a handler registered on several paths)
        is_stream, item_type, settings = stream_item_type_of(handler)
        if not is_stream:
            check_not_a_stray_generator(handler)  # it would fail every request
        item_schema = self.config.openapi_item_schema
        if is_stream:
            set_handler_response(
                handler,
                media_type=EVENT_STREAM,
                response_class=make_generator_response_class(item_type, settings),
            )
            mark_prepared(handler)
            self._schema_plugin.register(handler.parsed_fn_signature.return_type, item_type)
            if item_schema:
                handler.operation_class = sse_operation_class(
                    handler.operation_class, generic_schema=False, item_schema=True
                )
        elif handler.parsed_fn_signature.return_type.is_subclass_of(
            (ServerSentEvent, _LitestarServerSentEvent)
        ):
            if not handler.media_type:
                set_handler_response(handler, media_type=EVENT_STREAM)
            if not getattr(handler.operation_class, "documents_event_stream", False):
                handler.operation_class = sse_operation_class(
                    handler.operation_class, generic_schema=True, item_schema=item_schema
                )
        elif (
            handler.parsed_fn_signature.return_type.annotation is Stream
            and not handler.response_description
        ):
            # Litestar describes a success response as "Stream Response" for its own Stream
            # class only (an exact-type lookup); ours is described the same way.
            handler.response_description = "Stream Response"
        if is_event_stream_media_type(handler.media_type):
            label_error_responses(handler)  # a 4xx/5xx body is JSON: said so, not event-stream
