"""Server-Sent Events for Litestar.

Spec-exact encoding and decoding, ``Stream`` / ``ServerSentEvent`` responses with idle pings,
send timeouts and prompt cleanup on disconnect, and ``SSEPlugin``: generator handlers, app-wide
defaults, OpenAPI, ``Last-Event-ID`` and graceful shutdown. ``listening_socket`` makes a
server's connections notice clients that vanished without closing them. Test helpers live in
``litestar_sse.testing``. Broadcast (topics with replay, in one process or over Redis) lives in
``litestar_sse.broadcast``; its main names are importable from here too.

Every name is imported when first used, so ``import litestar_sse.codec`` (the sans-I/O codec)
loads neither Litestar nor the rest of the package. The layers, each importing only those
below it, are drawn in ``docs/architecture.rst`` and checked by import-linter (``make test``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litestar_sse.asgi import (
        ASGIStreamingResponse,
        ASGIStreamingSSEResponse,
        DisconnectHandler,
        DisconnectReason,
        StopReason,
        StreamState,
    )
    from litestar_sse.asgi.threaded_iterator import set_sync_thread_limit
    from litestar_sse.broadcast import (
        Broadcaster,
        BroadcastStats,
        MemoryBackend,
        Retention,
    )
    from litestar_sse.broadcast import RedisStreamBackend as RedisStreamBackend
    from litestar_sse.codec import (
        SEPARATORS,
        DecodedComment,
        DecodedEvent,
        DecodeError,
        EventDecoder,
        encode_event,
    )
    from litestar_sse.error_events import ErrorEvent, anthropic_error, openai_error
    from litestar_sse.message import RawEvent, ServerSentEventMessage
    from litestar_sse.plugin import SSEPlugin
    from litestar_sse.plugin.config import SSEConfig
    from litestar_sse.plugin.event_stream import event_stream
    from litestar_sse.plugin.last_event_id import last_event_id_sent, provide_last_event_id
    from litestar_sse.response import ServerSentEvent, Stream, StreamContentError
    from litestar_sse.sockets import listening_socket

# Where each public name lives. ``RedisStreamBackend`` is not in ``__all__``: ``from
# litestar_sse import *`` must work without the optional redis package.
_HOMES: dict[str, str] = {
    "ASGIStreamingResponse": "litestar_sse.asgi",
    "ASGIStreamingSSEResponse": "litestar_sse.asgi",
    "DisconnectHandler": "litestar_sse.asgi",
    "DisconnectReason": "litestar_sse.asgi",
    "StopReason": "litestar_sse.asgi",
    "StreamState": "litestar_sse.asgi",
    "set_sync_thread_limit": "litestar_sse.asgi.threaded_iterator",
    "BroadcastStats": "litestar_sse.broadcast",
    "Broadcaster": "litestar_sse.broadcast",
    "MemoryBackend": "litestar_sse.broadcast",
    "RedisStreamBackend": "litestar_sse.broadcast",
    "Retention": "litestar_sse.broadcast",
    "SEPARATORS": "litestar_sse.codec",
    "DecodeError": "litestar_sse.codec",
    "DecodedComment": "litestar_sse.codec",
    "DecodedEvent": "litestar_sse.codec",
    "EventDecoder": "litestar_sse.codec",
    "encode_event": "litestar_sse.codec",
    "ErrorEvent": "litestar_sse.error_events",
    "anthropic_error": "litestar_sse.error_events",
    "openai_error": "litestar_sse.error_events",
    "RawEvent": "litestar_sse.message",
    "ServerSentEventMessage": "litestar_sse.message",
    "SSEPlugin": "litestar_sse.plugin",
    "SSEConfig": "litestar_sse.plugin.config",
    "event_stream": "litestar_sse.plugin.event_stream",
    "last_event_id_sent": "litestar_sse.plugin.last_event_id",
    "provide_last_event_id": "litestar_sse.plugin.last_event_id",
    "ServerSentEvent": "litestar_sse.response",
    "Stream": "litestar_sse.response",
    "StreamContentError": "litestar_sse.response",
    "listening_socket": "litestar_sse.sockets",
}

__all__ = (
    "SEPARATORS",
    "ASGIStreamingResponse",
    "ASGIStreamingSSEResponse",
    "BroadcastStats",
    "Broadcaster",
    "DecodeError",
    "DecodedComment",
    "DecodedEvent",
    "DisconnectHandler",
    "DisconnectReason",
    "ErrorEvent",
    "EventDecoder",
    "MemoryBackend",
    "RawEvent",
    "Retention",
    "SSEConfig",
    "SSEPlugin",
    "ServerSentEvent",
    "ServerSentEventMessage",
    "StopReason",
    "Stream",
    "StreamContentError",
    "StreamState",
    "anthropic_error",
    "encode_event",
    "event_stream",
    "last_event_id_sent",
    "listening_socket",
    "openai_error",
    "provide_last_event_id",
    "set_sync_thread_limit",
)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # imported once: the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    # Not RedisStreamBackend: without the optional redis package, getting it raises ImportError,
    # which would break help() and inspect.getmembers() on the package.
    return sorted({*globals(), *__all__})
