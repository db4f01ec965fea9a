"""Server-Sent Events for Litestar.

Spec-exact encoding and decoding, ``Stream`` / ``ServerSentEvent`` responses with idle pings,
send timeouts and prompt cleanup on disconnect, and ``SSEPlugin``: generator handlers, app-wide
defaults, OpenAPI, ``Last-Event-ID`` and graceful shutdown. ``listening_socket`` makes a
server's connections notice clients that vanished without closing them.

The names an app uses are importable from here. The rest has a public module of its own:
``litestar_sse.broadcast`` (topics with replay, in one process or over Redis),
``litestar_sse.codec`` (the sans-I/O encoder and decoder), ``litestar_sse.asgi`` (the ASGI
responses, for writing a response class), ``litestar_sse.testing``, ``litestar_sse.metrics``,
``litestar_sse.client`` and ``litestar_sse.mcp``.

Every name is imported when first used, so ``import litestar_sse.codec`` loads neither
Litestar nor the rest of the package. The layers, each importing only those below it, are
drawn in ``docs/architecture.rst`` and checked by import-linter (``make lint``).
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing
import warnings as _warnings

if _typing.TYPE_CHECKING:
    from litestar_sse._error_events import ErrorEvent as ErrorEvent
    from litestar_sse._error_events import anthropic_error as anthropic_error
    from litestar_sse._error_events import openai_error as openai_error
    from litestar_sse._message import RawEvent as RawEvent
    from litestar_sse._message import ServerSentEventMessage as ServerSentEventMessage
    from litestar_sse._plugin import SSEPlugin as SSEPlugin
    from litestar_sse._plugin.config import SSEConfig as SSEConfig
    from litestar_sse._plugin.event_stream import event_stream as event_stream
    from litestar_sse._plugin.last_event_id import last_event_id_sent as last_event_id_sent
    from litestar_sse._plugin.last_event_id import provide_last_event_id as provide_last_event_id
    from litestar_sse._response import ServerSentEvent as ServerSentEvent
    from litestar_sse._response import Stream as Stream
    from litestar_sse._response import StreamContentError as StreamContentError
    from litestar_sse._sockets import listening_socket as listening_socket
    from litestar_sse.asgi import DisconnectHandler as DisconnectHandler
    from litestar_sse.asgi import DisconnectReason as DisconnectReason
    from litestar_sse.asgi import StopReason as StopReason

# The one list of the public names, and where each lives (the imports above mirror it for
# type checkers; tests/test_layers.py checks that they agree).
_HOMES: dict[str, str] = {
    "ServerSentEvent": "litestar_sse._response",
    "Stream": "litestar_sse._response",
    "StreamContentError": "litestar_sse._response",
    "ServerSentEventMessage": "litestar_sse._message",
    "RawEvent": "litestar_sse._message",
    "SSEPlugin": "litestar_sse._plugin",
    "SSEConfig": "litestar_sse._plugin.config",
    "event_stream": "litestar_sse._plugin.event_stream",
    "last_event_id_sent": "litestar_sse._plugin.last_event_id",
    "provide_last_event_id": "litestar_sse._plugin.last_event_id",
    "ErrorEvent": "litestar_sse._error_events",
    "anthropic_error": "litestar_sse._error_events",
    "openai_error": "litestar_sse._error_events",
    "DisconnectHandler": "litestar_sse.asgi",
    "DisconnectReason": "litestar_sse.asgi",
    "StopReason": "litestar_sse.asgi",
    "listening_socket": "litestar_sse._sockets",
}

# Names that were importable from here before 0.2: still are, with a DeprecationWarning
# naming their home (docs/changes.rst).
_MOVED: dict[str, str] = {
    "ASGIStreamingResponse": "litestar_sse.asgi",
    "ASGIStreamingSSEResponse": "litestar_sse.asgi",
    "StreamState": "litestar_sse.asgi",
    "set_sync_thread_limit": "litestar_sse.asgi",
    "Broadcaster": "litestar_sse.broadcast",
    "BroadcastStats": "litestar_sse.broadcast.types",
    "MemoryBackend": "litestar_sse.broadcast",
    "RedisStreamBackend": "litestar_sse.broadcast",
    "Retention": "litestar_sse.broadcast",
    "SEPARATORS": "litestar_sse.codec",
    "DecodeError": "litestar_sse.codec",
    "DecodedComment": "litestar_sse.codec",
    "DecodedEvent": "litestar_sse.codec",
    "EventDecoder": "litestar_sse.codec",
    "encode_event": "litestar_sse.codec",
}

__all__ = tuple(_HOMES)


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is not None:
        value = getattr(_importlib.import_module(home), name)
        globals()[name] = value  # imported once: the next access is a plain lookup
        return value
    home = _MOVED.get(name)
    if home is not None:
        _warnings.warn(
            f"litestar_sse.{name} moved: import it from {home} (see the 'What changed' page)",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(_importlib.import_module(home), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    # The public names only: not the helpers above, nor the moved names (getting one warns,
    # which would make help() and inspect.getmembers() warn).
    return sorted(__all__)
