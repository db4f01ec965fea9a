"""Server-Sent Events for Litestar.

Spec-exact encoding and decoding, ``Stream`` / ``ServerSentEvent`` responses with idle pings,
send timeouts and prompt cleanup on disconnect.
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
from litestar_sse.message import RawEvent, ServerSentEventMessage
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
    "ServerSentEvent",
    "ServerSentEventMessage",
    "Stream",
    "encode_event",
)
