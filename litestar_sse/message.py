"""Messages, and turning whatever a handler yields into the bytes of one event.

This layer knows the codec and msgspec, not Litestar: the response layer hands it the app's
JSON hook (built from ``type_encoders``) so typed objects are serialized the way the rest of the
app serializes them.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping
from typing import Any, Final

import msgspec
import msgspec.inspect as mi

from litestar_sse.codec.encoder import (
    DEFAULT_SEPARATOR,
    check_comment,
    check_event_id,
    check_event_type,
    check_retry,
    check_separator,
    encode_data,
    encode_fields,
    to_utf8,
)

__all__ = (
    "MESSAGE_FIELDS",
    "ItemEncoder",
    "RawEvent",
    "ServerSentEventMessage",
    "data_text",
    "default_enc_hook",
    "is_litestar_message",
    "is_message_type",
    "make_item_encoder",
    "may_break_lines",
)

LITESTAR_MESSAGE_MODULE: Final = "litestar.response.sse"
"""Where Litestar defines its ``ServerSentEventMessage``."""

ItemEncoder = Callable[[Any], bytes]
"""Turns one yielded item into the bytes of one complete event."""

JSONEncode = Callable[[Any], bytes]

MESSAGE_FIELDS: Final = frozenset(("data", "event", "id", "retry", "comment", "sep"))

# Types an item encoder has seen go straight to JSON; bounded against endless dynamic types.
_TYPE_CACHE_SIZE: Final = 256


def default_enc_hook(obj: Any) -> Any:
    """JSON fallback for types msgspec does not know, used when no app encoders are given."""
    model_dump = getattr(obj, "model_dump", None)
    if callable(model_dump):  # pydantic v2 model
        return model_dump(mode="json")
    raise NotImplementedError(f"Cannot JSON-encode object of type {type(obj).__name__}")


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
        comment: Comment lines; clients ignore them.
        sep: Line ending: ``"\\r\\n"`` (default), ``"\\n"`` or ``"\\r"``.
    """

    data: Any = ""
    event: str | None = None
    id: str | int | None = None
    retry: int | None = None
    comment: str | None = None
    sep: str = DEFAULT_SEPARATOR

    def __post_init__(self) -> None:
        if self.event is not None:
            check_event_type(self.event)
        if self.id is not None:
            check_event_id(self.id)
        if self.retry is not None:
            check_retry(self.retry)
        if self.comment is not None:
            check_comment(self.comment)
        check_separator(self.sep)

    def encode(self, json_encode: JSONEncode | None = None) -> bytes:
        """Return the bytes of this event, blank line included.

        Args:
            json_encode: Serializer for structured ``data``; defaults to msgspec's JSON encoder.
        """
        sep = self.sep.encode()
        prefix = encode_fields(
            event=self.event, id=self.id, retry=self.retry, comment=self.comment, sep=self.sep
        )
        data = self.data
        if data is None:
            return prefix + sep
        return prefix + _encode_payload(data, sep, json_encode or _default_json_encode) + sep


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


def message_from_mapping(item: Mapping[str, Any], sep: str) -> ServerSentEventMessage:
    """Build a message from a yielded dict of message fields, without mutating it."""
    unknown = item.keys() - MESSAGE_FIELDS
    if unknown:
        raise ValueError(
            f"Unknown SSE message field(s) {sorted(map(str, unknown))} in yielded dict; "
            f"allowed: {sorted(MESSAGE_FIELDS)}. To send a dict as JSON data, yield "
            "{'data': the_dict} or ServerSentEventMessage(data=the_dict)."
        )
    if "sep" in item:
        return ServerSentEventMessage(**item)
    return ServerSentEventMessage(**item, sep=sep)


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
    return ServerSentEventMessage(
        data=item.data,
        event=item.event,
        id=item.id,
        retry=item.retry,
        comment=item.comment,
        sep=item.sep,
    )


def _encode_with_defaults(
    message: ServerSentEventMessage,
    defaults: tuple[str | None, str | int | None, int | None, str | None],
    json_encode: JSONEncode,
) -> bytes:
    data = message.data
    event, id, retry, comment = defaults
    sep = message.sep.encode()
    prefix = encode_fields(
        event=event if message.event is None else message.event,
        id=id if message.id is None else message.id,
        retry=retry if message.retry is None else message.retry,
        comment=comment if message.comment is None else message.comment,
        sep=message.sep,
    )
    return prefix + _encode_payload(data, sep, json_encode) + sep


_PLAIN_JSON: Final = (
    mi.IntType, mi.FloatType, mi.StrType, mi.BoolType, mi.NoneType, mi.BytesType,
    mi.ByteArrayType, mi.MemoryViewType, mi.DateTimeType, mi.DateType, mi.TimeType,
    mi.TimeDeltaType, mi.UUIDType, mi.DecimalType, mi.EnumType, mi.LiteralType,
)  # fmt: skip


def may_break_lines(kind: type) -> bool:
    """Whether the JSON msgspec makes of a ``kind`` object may hold a raw line break.

    msgspec escapes line breaks inside strings, so only a ``msgspec.Raw``, a value typed
    ``Any`` (which may be one) or a type that only an encoder hook knows can put one in. Told
    from the type's annotations, once per type: a Struct or dataclass of plain fields is sent
    without looking at its bytes, anything else is looked at. (A field holding a value of
    another type than its annotation says is the app's bug, as for msgspec itself.)
    """
    try:
        info = mi.type_info(kind)
    except Exception:
        return True
    seen: set[int] = set()

    def unsafe(node: Any) -> bool:
        if isinstance(node, _PLAIN_JSON):
            return False
        if id(node) in seen:  # a recursive type: already being looked at
            return False
        seen.add(id(node))
        if isinstance(node, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
            return unsafe(node.item_type)
        if isinstance(node, mi.TupleType):
            return any(unsafe(item) for item in node.item_types)
        if isinstance(node, mi.DictType):
            return unsafe(node.key_type) or unsafe(node.value_type)
        if isinstance(node, mi.UnionType):
            return any(unsafe(member) for member in node.types)
        if isinstance(node, (mi.StructType, mi.DataclassType, mi.TypedDictType, mi.NamedTupleType)):
            return any(unsafe(field.type) for field in node.fields)
        return True  # Any, Raw, a custom type (an encoder hook), ...

    return unsafe(info)


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
    unset (absent or ``None``) takes the response's value, and the item's own value wins. An
    item without data (``data=None``) forms no event and gets no defaults; a ``RawEvent`` is
    sent as it is. With ``dicts_are_data`` a dict is JSON data like any other object (a stream
    typed as a mapping), not event fields.

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
        # A msgspec.Raw or a custom encoder's output may hold line breaks. (An int operand:
        # CPython's bytes.__contains__ is 5x slower on a bytes one.)
        if 10 in text or 13 in text:
            return prefix + encode_data(text, sep_bytes) + sep_bytes
        return data_prefix + text + end

    def encode_message(message: ServerSentEventMessage) -> bytes:
        # The response-level fields are defaults: the message's own values win. A message that
        # sets none of them, with the response's separator, reuses the prefix encoded above.
        data = message.data
        if no_defaults or data is None:
            return message.encode(encode_json)
        own = message.event, message.id, message.retry, message.comment
        if own == (None, None, None, None) and message.sep == sep:
            return prefix + _encode_payload(data, sep_bytes, encode_json) + sep_bytes
        return _encode_with_defaults(message, (event, id, retry, comment), encode_json)

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
            return item.encode(encode_json) if no_defaults else encode_message(item)
        if kind is bytes:
            return prefix + encode_data(item, sep_bytes) + sep_bytes
        if kind is dict and not dicts_are_data:
            return encode_message(message_from_mapping(item, sep))
        if kind is RawEvent:
            return item.encode()  # type: ignore[no-any-return]
        # Any other type: classified once, then looked up (a typed stream yields one type).
        checked = json_types.get(kind)
        if checked is False:  # JSON of this type cannot hold a raw line break: as it is
            return data_prefix + encode_json(item) + end
        if checked:
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
            json_types[kind] = may_break_lines(kind)
        return encode_json_data(item)

    # JSON types seen, and whether their JSON may hold a raw line break (then it is checked).
    json_types: dict[type, bool] = {}
    return encode_item
