"""The SSE wire format, sans-I/O: an encoder and an incremental decoder. No Litestar import."""

from litestar_sse.codec._decoder import (
    DecodedComment,
    DecodedEvent,
    DecodeError,
    EventDecoder,
    aiter_events,
    decode_stream,
)
from litestar_sse.codec._encoder import (
    DEFAULT_SEPARATOR,
    MAX_RETRY,
    SEPARATORS,
    check_comment,
    check_event_id,
    check_event_type,
    check_retry,
    check_separator,
    encode_data,
    encode_event,
    encode_fields,
)

__all__ = (
    "DEFAULT_SEPARATOR",
    "MAX_RETRY",
    "SEPARATORS",
    "DecodeError",
    "DecodedComment",
    "DecodedEvent",
    "EventDecoder",
    "aiter_events",
    "check_comment",
    "check_event_id",
    "check_event_type",
    "check_retry",
    "check_separator",
    "decode_stream",
    "encode_data",
    "encode_event",
    "encode_fields",
)
