"""Server-Sent Events for Litestar.

Spec-exact encoding and decoding, ``Stream`` / ``ServerSentEvent`` responses with idle pings,
send timeouts and prompt cleanup on disconnect, and ``SSEPlugin``: generator handlers, app-wide
defaults, OpenAPI, ``Last-Event-ID`` and graceful shutdown. Test helpers live in
``litestar_sse.testing``.
"""

from litestar_sse.asgi import ASGIStreamingResponse, ASGIStreamingSSEResponse, DisconnectHandler
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
from litestar_sse.response import ServerSentEvent, Stream

__all__ = (
    "SEPARATORS",
    "ASGIStreamingResponse",
    "ASGIStreamingSSEResponse",
    "DecodeError",
    "DecodedComment",
    "DecodedEvent",
    "DisconnectHandler",
    "EventDecoder",
    "RawEvent",
    "SSEConfig",
    "SSEPlugin",
    "ServerSentEvent",
    "ServerSentEventMessage",
    "Stream",
    "encode_event",
    "event_stream",
    "provide_last_event_id",
)
