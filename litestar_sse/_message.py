"""Messages, and turning whatever a handler yields into the bytes of one event.

This layer knows the codec and msgspec, not Litestar: the response layer hands it the app's
JSON hook (built from ``type_encoders``) so typed objects are serialized the way the rest of the
app serializes them.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import AsyncIterable, Callable, Mapping
from typing import Any, Final, Protocol

import msgspec

from litestar_sse.codec._encoder import (
    DEFAULT_SEPARATOR,
    check_comment,
    check_event_id,
    check_event_type,
    check_retry,
    check_separator,
    encode_comment,
    encode_data,
    encode_fields,
    to_utf8,
)

__all__ = (
    "MESSAGE_FIELDS",
    "SEND_AS_IS",
    "ItemEncoder",
    "RawEvent",
    "ServerSentEventMessage",
    "WireSource",
    "data_text",
    "default_enc_hook",
    "is_litestar_message",
    "is_message_type",
    "make_item_encoder",
    "unsupported_type_message",
    "wire_chunks_of",
)

LITESTAR_MESSAGE_MODULE: Final = "litestar.response.sse"
"""Where Litestar defines its ``ServerSentEventMessage``."""

ItemEncoder = Callable[[Any], bytes]
"""Turns one yielded item into the bytes of one complete event."""

JSONEncode = Callable[[Any], bytes]

MESSAGE_FIELDS: Final = frozenset(("data", "event", "id", "retry", "comment", "sep"))

# Types an item encoder has seen go straight to JSON; bounded against endless dynamic types.
_TYPE_CACHE_SIZE: Final = 256


def unsupported_type_message(obj: Any) -> str:
    """What to say when ``obj`` cannot be sent as JSON: its type, and how to make it sendable."""
    kind = type(obj)
    name = kind.__qualname__
    where = kind.__module__
    shown = name if where in ("builtins", "__main__") else f"{where}.{name}"
    return (
        f"Cannot JSON-encode an object of type {shown}: register an encoder for it in "
        f"type_encoders (Litestar(type_encoders={{{name}: ...}}), or on the route, the "
        "response or the Broadcaster), or send a type msgspec knows (a Struct, dataclass, "
        "dict, str...)"
    )


def default_enc_hook(obj: Any) -> Any:
    """JSON fallback for types msgspec does not know, used when no app encoders are given.

    Raises:
        TypeError: a type neither msgspec nor pydantic knows; the message names the type and
            ``type_encoders``.
    """
    model_dump = getattr(obj, "model_dump", None)
    if callable(model_dump):  # pydantic v2 model
        return model_dump(mode="json")
    raise TypeError(unsupported_type_message(obj))


_default_json_encode: Final = msgspec.json.Encoder(enc_hook=default_enc_hook).encode


class ServerSentEventMessage(msgspec.Struct, frozen=True):
    """One event, with every field the protocol has.

    Field names and order match :class:`litestar.response.ServerSentEventMessage`. Values are
    validated here, at construction, so a bad value never reaches the wire.

    Args:
        data: The payload. ``str`` (line breaks become several ``data`` lines), ``bytes``
            (UTF-8), ``int``, ``None`` (no ``data`` line: a client dispatches nothing), or any
            object msgspec can encode (Struct, dataclass, dict, list, pydantic model, ...),
            which is sent as one line of JSON.
        event: Event type, the name a browser's ``addEventListener`` listens for.
        id: Event id; the client sends it back as ``Last-Event-ID`` when it reconnects.
        retry: Reconnection time for the client, in milliseconds.
        comment: Comment lines; clients ignore them. A message with a comment and nothing else
            (no ``event``, ``id`` or ``retry``; ``data`` left empty or ``None``) is a comment:
            only its comment lines are written, no blank line, so no client sees an event.
        sep: Line ending: ``"\\r\\n"``, ``"\\n"`` or ``"\\r"``. ``None`` (the default): the
            stream's separator (the response's ``sep``, else the app's
            :class:`~litestar_sse.SSEConfig`), ``"\\r\\n"`` for a message encoded on its own.
    """

    data: Any = ""
    event: str | None = None
    id: str | int | None = None
    retry: int | None = None
    comment: str | None = None
    sep: str | None = None

    def __post_init__(self) -> None:
        if self.event is not None:
            check_event_type(self.event)
        if self.id is not None:
            check_event_id(self.id)
        if self.retry is not None:
            check_retry(self.retry)
        if self.comment is not None:
            check_comment(self.comment)
        if self.sep is not None:
            check_separator(self.sep)

    def encode(self, json_encode: JSONEncode | None = None, *, sep: str | None = None) -> bytes:
        """Return the bytes of this event, blank line included (a comment: its lines only).

        Args:
            json_encode: Serializer for structured ``data``; defaults to msgspec's JSON encoder.
            sep: The separator when the message sets none (``"\\r\\n"`` if ``None``).
        """
        line_end = self.sep or sep or DEFAULT_SEPARATOR
        if _is_comment(self):
            return _encode_comment_only(self.comment, line_end)
        sep_bytes = line_end.encode()
        prefix = encode_fields(
            event=self.event, id=self.id, retry=self.retry, comment=self.comment, sep=line_end
        )
        data = self.data
        if data is None:
            return prefix + sep_bytes
        json_encode = json_encode or _default_json_encode
        return prefix + _encode_payload(data, sep_bytes, json_encode) + sep_bytes


def _is_comment(message: ServerSentEventMessage) -> bool:
    """Whether ``message`` is a comment: no event fields, no data (a comment, or nothing)."""
    data = message.data
    return (
        (data is None or (type(data) is str and not data))
        and message.event is None
        and message.id is None
        and message.retry is None
        and (message.comment is not None or data is None)
    )


def _encode_comment_only(comment: str | None, sep: str) -> bytes:
    # Comment lines and no blank line: the blank line would end an event, which decoders that
    # dispatch on every blank line once an id was seen (openai-python, httpx-sse) turn into an
    # empty event. The next event's lines follow; a comment line inside them is ignored.
    return b"" if comment is None else encode_comment(comment, sep.encode())


class RawEvent(msgspec.Struct, frozen=True):
    """Text written to the stream exactly as given: no framing, no validation.

    For pre-encoded events (for example from a cache or another service). The caller is
    responsible for it being well-formed, including the blank line that ends an event.
    """

    text: str | bytes

    def encode(self) -> bytes:
        """Return the text as bytes (UTF-8 for ``str``)."""
        text = self.text
        return text if isinstance(text, bytes) else to_utf8(text)


class WireSource(Protocol):
    """A stream's content whose items, taken from :meth:`wire_chunks`, are already the bytes
    of whole events (a broadcast subscription). A stream sends them as they are: the choice
    is made once per stream, from the content, never per item, so ``bytes`` that a handler
    yields keep their meaning (data)."""

    def wire_chunks(self) -> AsyncIterable[bytes]:
        """The content's items as wire bytes: chunks of whole events, sent as they are."""
        ...


def wire_chunks_of(content: object) -> AsyncIterable[bytes] | None:
    """The wire bytes of ``content`` if it is a :class:`WireSource`, else ``None``."""
    wire_chunks = getattr(type(content), "wire_chunks", None)
    if wire_chunks is None or not callable(wire_chunks):
        return None
    return wire_chunks(content)  # type: ignore[no-any-return]


SEND_AS_IS: Final[ItemEncoder] = bytes
"""The item encoder of a :class:`WireSource`'s chunks: ``bytes`` gives back the very ``bytes``
object it is handed (a C call, no Python frame per item)."""


def data_text(data: Any, json_encode: JSONEncode) -> bytes:
    """The text of an event's data, the one rule for every kind of payload.

    ``str`` as UTF-8 and ``bytes`` (``bytearray``, ``memoryview``) as they are (both are text);
    an ``int`` in decimal; anything
    else (a Struct, dataclass, dict, list, pydantic model, a ``bool``, a ``str`` subclass...)
    as JSON, by ``json_encode``. The item encoders below inline this for speed, and a test ties
    them to it.
    """
    kind = type(data)
    if kind is str:
        return to_utf8(data)
    if kind is bytes:
        return data  # type: ignore[no-any-return]
    if kind is int:
        return _decimal(data)
    if kind is bytearray or kind is memoryview:
        return bytes(data)
    return json_encode(data)


def _decimal(number: int) -> bytes:
    try:
        return b"%d" % number
    except ValueError:  # past sys.get_int_max_str_digits(): say what to do about it
        raise ValueError(
            f"An int of {number.bit_length()} bits is too large to send in decimal "
            "(sys.set_int_max_str_digits() sets the limit); send it as a str"
        ) from None


def _encode_payload(data: Any, sep: bytes, json_encode: JSONEncode) -> bytes:
    # Every line break becomes a new data line, JSON's included: JSON made by msgspec has none,
    # but a msgspec.Raw (or a custom encoder) can, and must not start a new field or event.
    return encode_data(data_text(data, json_encode), sep)


def message_from_mapping(item: Mapping[str, Any]) -> ServerSentEventMessage:
    """Build a message from a yielded dict of message fields, without mutating it.

    Raises:
        ValueError: a key that is not a message field. A dict yielded by an untyped stream is
            the fields of an event, not its data: the message says how to send it as data.
    """
    unknown = item.keys() - MESSAGE_FIELDS
    if unknown:
        raise ValueError(
            f"Unknown SSE message field(s) {sorted(map(str, unknown))} in a yielded dict: in an "
            f"untyped stream a dict is the fields of an event (allowed: {sorted(MESSAGE_FIELDS)}), "
            'not its data. To send the dict as JSON data, yield {"data": the_dict} (or '
            "ServerSentEventMessage(data=the_dict)), or annotate the handler with its type "
            "(AsyncIterator[dict[str, Any]], a TypedDict or a Struct), where dicts are data."
        )
    return ServerSentEventMessage(**item)


def is_litestar_message(kind: type) -> bool:
    """Whether ``kind`` is ``litestar.response.ServerSentEventMessage`` (or a subclass).

    Code written for Litestar's SSE yields it and must get an event, not the message as a JSON
    object. This layer does not import Litestar: it looks for the class only in a module
    already loaded (an instance cannot exist before), ``litestar.response.sse`` on every
    supported Litestar (``tests/test_compat.py`` checks that).
    """
    module = sys.modules.get(LITESTAR_MESSAGE_MODULE)
    litestar_message = getattr(module, "ServerSentEventMessage", None)
    return litestar_message is not None and issubclass(kind, litestar_message)


def is_message_type(kind: Any) -> bool:
    """Whether items of type ``kind`` carry their own event fields instead of being ``data``."""
    if not isinstance(kind, type):
        return False
    return issubclass(kind, (ServerSentEventMessage, RawEvent)) or is_litestar_message(kind)


def _from_litestar_message(item: Any) -> ServerSentEventMessage:
    # Litestar's message cannot leave its separator unset: its default (CRLF) means "unset",
    # so the stream's separator applies to it too.
    sep = item.sep
    return ServerSentEventMessage(
        data=item.data,
        event=item.event,
        id=item.id,
        retry=item.retry,
        comment=item.comment,
        sep=None if sep == DEFAULT_SEPARATOR else sep,
    )


def _encode_with_defaults(
    message: ServerSentEventMessage,
    defaults: tuple[str | None, str | int | None, int | None, str | None],
    stream_sep: str,
    json_encode: JSONEncode,
) -> bytes:
    data = message.data
    event, id, retry, comment = defaults
    line_end = message.sep or stream_sep
    sep = line_end.encode()
    prefix = encode_fields(
        event=event if message.event is None else message.event,
        id=id if message.id is None else message.id,
        retry=retry if message.retry is None else message.retry,
        comment=comment if message.comment is None else message.comment,
        sep=line_end,
    )
    return prefix + _encode_payload(data, sep, json_encode) + sep


@functools.lru_cache(maxsize=512)
def make_item_encoder(
    *,
    event: str | None = None,
    id: str | int | None = None,
    retry: int | None = None,
    comment: str | None = None,
    sep: str = DEFAULT_SEPARATOR,
    json_encode: JSONEncode | None = None,
    dicts_are_data: bool = False,
) -> ItemEncoder:
    """Build the function that turns each yielded item into an event's bytes.

    The response-level fields (``event``, ``id``, ``retry``, ``comment``) are validated and
    encoded once, here, and prefixed to every plain yield (int, str, bytes, typed object).
    For a ``ServerSentEventMessage`` or a dict they are defaults: each field the item leaves
    unset (absent or ``None``) takes the response's value, and the item's own value wins;
    ``sep`` is the separator of every item that sets none. An item without data
    (``data=None``) forms no event and gets no defaults, a comment-only message is its comment
    lines, and a ``RawEvent`` is sent as it is. JSON data is always looked at for line breaks
    (a ``msgspec.Raw`` or an encoder hook may put one in): one becomes a new ``data`` line,
    never a new field or event. With ``dicts_are_data`` a dict is JSON data like any other
    object (a stream typed as a mapping), not event fields.

    Encoders are stateless and cached: responses with the same fields share one.

    Raises:
        ValueError: an invalid field value, named in the message.
    """
    prefix = encode_fields(event=event, id=id, retry=retry, comment=comment, sep=sep)
    sep_bytes = sep.encode()
    end = sep_bytes + sep_bytes
    data_prefix = prefix + b"data: "
    int_template = data_prefix.replace(b"%", b"%%") + b"%d" + end
    encode_json = json_encode or _default_json_encode
    message_type = ServerSentEventMessage
    no_defaults = event is None and id is None and retry is None and comment is None

    def encode_json_data(item: Any) -> bytes:
        text = encode_json(item)
        # Whatever the type says: a msgspec.Raw (in any field, whatever its annotation) or an
        # encoder hook's output may hold line breaks. (An int operand: CPython's
        # bytes.__contains__ is 5x slower on a bytes one.)
        if 10 in text or 13 in text:
            return prefix + encode_data(text, sep_bytes) + sep_bytes
        return data_prefix + text + end

    def encode_message(message: ServerSentEventMessage) -> bytes:
        # The response-level fields are defaults: the message's own values win. A message that
        # sets none of them, with the response's separator, reuses the prefix encoded above.
        data = message.data
        # A comment has empty data: only then is the message looked at for one.
        if no_defaults or data is None or (type(data) is str and not data and _is_comment(message)):
            return message.encode(encode_json, sep=sep)
        own = message.event, message.id, message.retry, message.comment
        if own == (None, None, None, None) and message.sep in (None, sep):
            return prefix + _encode_payload(data, sep_bytes, encode_json) + sep_bytes
        return _encode_with_defaults(message, (event, id, retry, comment), sep, encode_json)

    def encode_item(item: Any) -> bytes:
        kind = type(item)
        if kind is int:
            # Past sys.get_int_max_str_digits() this raises CPython's ValueError, which says
            # what to do: a producer error, as for any item that cannot be sent.
            return int_template % item  # type: ignore[no-any-return]
        if kind is str:
            if "\r" in item or "\n" in item:
                return prefix + encode_data(item, sep_bytes) + sep_bytes
            return data_prefix + to_utf8(item) + end
        if kind is message_type:
            return encode_message(item)
        if kind is bytes:
            return prefix + encode_data(item, sep_bytes) + sep_bytes
        if kind is dict and not dicts_are_data:
            return encode_message(message_from_mapping(item))
        if kind is RawEvent:
            return item.encode()  # type: ignore[no-any-return]
        # Any other type: classified once, then looked up (a typed stream yields one type).
        if kind in json_types:
            return encode_json_data(item)
        if kind is bytearray or kind is memoryview:
            return prefix + encode_data(bytes(item), sep_bytes) + sep_bytes
        if isinstance(item, message_type):
            return encode_message(item)
        if isinstance(item, RawEvent):
            return item.encode()
        if is_litestar_message(kind):
            return encode_message(_from_litestar_message(item))
        if len(json_types) < _TYPE_CACHE_SIZE:
            json_types.add(kind)
        return encode_json_data(item)

    json_types: set[type] = set()  # types seen that are sent as JSON data
    return encode_item
