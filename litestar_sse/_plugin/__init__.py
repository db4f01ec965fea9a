"""Layer 7, the plugin: app-wide settings and everything that needs the app.

* :mod:`~litestar_sse._plugin.sse_plugin`: ``SSEPlugin``, which wires the rest into an app;
* :mod:`~litestar_sse._plugin.config`: ``SSEConfig`` and the per-app state responses read;
* :mod:`~litestar_sse._plugin.handlers`: generator handlers and ``event_stream``;
* :mod:`~litestar_sse._plugin.openapi`: event streams in the OpenAPI document;
* :mod:`~litestar_sse._plugin.last_event_id`: the ``last_event_id`` dependency;
* :mod:`~litestar_sse._plugin.registry`: open streams, connection limit, lifetime, shutdown;
* :mod:`~litestar_sse._plugin.lifecycle`: the lifespan that ends streams at shutdown.
"""

from litestar_sse._plugin.sse_plugin import SSEPlugin

__all__ = ("SSEPlugin",)
