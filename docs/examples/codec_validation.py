"""Values the stream cannot carry are refused with ``ValueError`` before anything is sent."""

from litestar.exceptions import ImproperlyConfiguredException

from litestar_sse import ServerSentEvent
from litestar_sse.codec import encode_event

BAD_FIELDS: list[dict[str, object]] = [
    {"event": "two\nlines"},  # would start a new field: an injection
    {"id": "nul\x00inside"},  # a browser silently ignores such an id
    {"retry": -1},  # milliseconds, an int >= 0
    {"sep": "\n\n"},  # "\r\n", "\n" or "\r" only
]


def refusal(fields: dict[str, object]) -> str:
    try:
        encode_event("data", **fields)
    except ValueError as error:
        return str(error)  # the message names the field and shows the value
    return "accepted"


def refused_at_construction() -> str:
    # The response checks its fields in the handler, not half-way through the stream, and
    # refuses them as Litestar's responses do: ImproperlyConfiguredException, a ValueError.
    try:
        ServerSentEvent(["a"], event_type="bad\rtype")
    except ImproperlyConfiguredException as error:
        return error.detail
    return "accepted"
