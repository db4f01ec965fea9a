"""Server-Sent Events for Litestar.

Spec-exact encoding and decoding, ``Stream`` / ``ServerSentEvent`` responses with idle pings,
send timeouts and prompt cleanup on disconnect, and ``SSEPlugin``: generator handlers, app-wide
defaults, OpenAPI, ``Last-Event-ID`` and graceful shutdown. ``listening_socket`` makes a
server's connections notice clients that vanished without closing them. Test helpers live in
``litestar_sse.testing``. Broadcast (topics with replay, in one process or over Redis) lives in
``litestar_sse.broadcast``; its main names are importable from here too.
"""

from typing import TYPE_CHECKING, Any

from litestar_sse.asgi import (
    ASGIStreamingResponse,
    ASGIStreamingSSEResponse,
    DisconnectHandler,
    DisconnectReason,
)
from litestar_sse.broadcast import Broadcaster, BroadcastStats, MemoryBackend, Retention
from litestar_sse.codec import (
    SEPARATORS,
    DecodedComment,
    DecodedEvent,
    DecodeError,
    EventDecoder,
    encode_event,
)
from litestar_sse.config import SSEConfig
from litestar_sse.handlers import event_stream
from litestar_sse.last_event_id import provide_last_event_id
from litestar_sse.message import RawEvent, ServerSentEventMessage
from litestar_sse.plugin import SSEPlugin
from litestar_sse.response import ServerSentEvent, Stream, StreamContentError
from litestar_sse.sockets import listening_socket

if TYPE_CHECKING:
    # Not in __all__: ``from litestar_sse import *`` must work without redis installed.
    from litestar_sse.broadcast import RedisStreamBackend as RedisStreamBackend

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
    "EventDecoder",
    "MemoryBackend",
    "RawEvent",
    "Retention",
    "SSEConfig",
    "SSEPlugin",
    "ServerSentEvent",
    "ServerSentEventMessage",
    "Stream",
    "StreamContentError",
    "encode_event",
    "event_stream",
    "listening_socket",
    "provide_last_event_id",
)


def __getattr__(name: str) -> Any:
    # redis is an optional dependency: imported only when the Redis backend is asked for.
    if name == "RedisStreamBackend":
        from litestar_sse import broadcast

        return broadcast.RedisStreamBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
