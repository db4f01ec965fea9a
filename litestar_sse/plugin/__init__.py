"""Layer 7, the plugin: app-wide settings and everything that needs the app.

* :mod:`~litestar_sse.plugin.sse_plugin`: ``SSEPlugin``, which wires the rest into an app;
* :mod:`~litestar_sse.plugin.config`: ``SSEConfig`` and the per-app state responses read;
* :mod:`~litestar_sse.plugin.handlers`: generator handlers and ``event_stream``;
* :mod:`~litestar_sse.plugin.openapi`: event streams in the OpenAPI document;
* :mod:`~litestar_sse.plugin.last_event_id`: the ``last_event_id`` dependency;
* :mod:`~litestar_sse.plugin.registry`: open streams, connection limit, lifetime, shutdown;
* :mod:`~litestar_sse.plugin.lifecycle`: the lifespan that ends streams at shutdown.
"""

from litestar_sse.plugin.sse_plugin import SSEPlugin

__all__ = ("SSEPlugin",)
