"""ServerSentEventMessage, RawEvent and make_item_encoder, checked on the bytes they produce.

Every encoding is decoded by our decoder and by httpx_sse (see ``sse_wire.both``), so a test
asserts what a client sees, not only what the encoder intended.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import uuid
from typing import Any

import msgspec
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar.response import ServerSentEventMessage as LitestarMessage

from litestar_sse._message import (
    MESSAGE_FIELDS,
    RawEvent,
    ServerSentEventMessage,
    data_text,
    make_item_encoder,
)
from litestar_sse._serialization import json_encoder
from litestar_sse.codec._decoder import DecodedComment
from litestar_sse.codec._encoder import encode_data, encode_fields
from tests.sse_wire import Ev, both, items, ours

BOM = b"\xef\xbb\xbf"


class Point(msgspec.Struct):
    x: int
    y: int


@dataclasses.dataclass
class Box:
    name: str
    size: int


class Model(pydantic.BaseModel):
    name: str
    when: datetime.datetime


class Money:
    """A type no JSON library knows: only a type encoder can serialize it."""

    def __init__(self, cents: int) -> None:
        self.cents = cents


# -- ServerSentEventMessage: fields and validation -------------------------------------------


def test_field_names_and_order_match_litestar() -> None:
    names = tuple(f.name for f in msgspec.structs.fields(ServerSentEventMessage))
    assert names == ("data", "event", "id", "retry", "comment", "sep")
    # positional construction in Litestar's order
    msg = ServerSentEventMessage("d", "kind", "7", 1500, "note")
    assert (msg.data, msg.event, msg.id, msg.retry, msg.comment) == ("d", "kind", "7", 1500, "note")
    assert msg.sep is None  # the stream's separator (CRLF when encoded on its own)


def test_message_is_frozen() -> None:
    msg = ServerSentEventMessage(data="x")
    with pytest.raises(AttributeError):
        msg.data = "y"  # type: ignore[misc]


def test_all_fields_on_the_wire() -> None:
    msg = ServerSentEventMessage(data="hello", event="greet", id="42", retry=3000, comment="hi")
    raw = msg.encode()
    assert raw == b": hi\r\nevent: greet\r\nid: 42\r\nretry: 3000\r\ndata: hello\r\n\r\n"
    assert both(raw) == [Ev("hello", "greet", "42", 3000)]
    assert [x for x in items(raw) if isinstance(x, DecodedComment)] == [DecodedComment("hi")]


def test_int_id_is_sent_in_decimal() -> None:
    assert both(ServerSentEventMessage(data="x", id=17).encode()) == [Ev("x", id="17")]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"event": "a\nb"}, "event"),
        ({"event": "a\rb"}, "event"),
        ({"event": "a\r\nb"}, "event"),
        ({"id": "a\nb"}, "id"),
        ({"id": "a\rb"}, "id"),
        ({"id": "a\x00b"}, "id"),
        ({"retry": -1}, "retry"),
        ({"retry": True}, "retry"),
        ({"retry": False}, "retry"),
        ({"retry": 1.5}, "retry"),
        ({"sep": "\t"}, "sep"),
        ({"sep": "\n\n"}, "sep"),
        ({"sep": ""}, "sep"),
    ],
)
def test_invalid_field_values_raise_value_error_naming_the_field(
    kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValueError, match=rf"\b{field}\b"):
        ServerSentEventMessage(data="x", **kwargs)


@pytest.mark.parametrize("kwargs", [{"event": 3}, {"id": 1.5}, {"comment": 3}])
def test_wrong_field_types_raise_type_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        ServerSentEventMessage(data="x", **kwargs)


def test_retry_zero_is_valid() -> None:
    assert both(ServerSentEventMessage(data="x", retry=0).encode()) == [Ev("x", retry=0)]


@pytest.mark.parametrize("sep", ["\r\n", "\n", "\r"])
def test_separator_is_used_for_every_line(sep: str) -> None:
    msg = ServerSentEventMessage(data="a\nb", event="e", id="1", retry=5, comment="c", sep=sep)
    raw = msg.encode()
    s = sep.encode()
    fields = b": c" + s + b"event: e" + s + b"id: 1" + s + b"retry: 5" + s
    assert raw == fields + b"data: a" + s + b"data: b" + s + s
    assert both(raw) == [Ev("a\nb", "e", "1", 5)]


def test_multiline_comment_becomes_several_comment_lines() -> None:
    raw = ServerSentEventMessage(data="x", comment="one\r\ntwo\rthree\nfour").encode()
    assert [x.text for x in items(raw) if isinstance(x, DecodedComment)] == [
        "one",
        "two",
        "three",
        "four",
    ]
    assert both(raw) == [Ev("x")]


def test_data_none_sends_no_data_line() -> None:
    raw = ServerSentEventMessage(data=None, id="5", retry=100).encode()
    assert b"data" not in raw
    assert raw == b"id: 5\r\nretry: 100\r\n\r\n"
    # Spec: no data, nothing dispatched; but the id still moves the last event id.
    assert ours(raw) == []
    assert ours(raw + ServerSentEventMessage(data="next").encode()) == [Ev("next", id="5")]


# -- data types ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("plain", "plain"),
        ("", ""),
        ("a\nb", "a\nb"),
        ("a\rb", "a\nb"),
        ("a\r\nb", "a\nb"),
        ("a\r\n\r\nb", "a\n\nb"),
        ("mixed\rline\nends\r\nhere", "mixed\nline\nends\nhere"),
        ("trailing\n", "trailing\n"),
        ("\nleading", "\nleading"),
        ("caf\u00e9 \u2603 \U0001f600", "caf\u00e9 \u2603 \U0001f600"),
        # Not line breaks for SSE: kept inside the line (str.splitlines would split them).
        ("a\u2028b\u2029c\x0bd\x0ce\x1cf\x85g", "a\u2028b\u2029c\x0bd\x0ce\x1cf\x85g"),
        (": not a comment", ": not a comment"),
        ("data: nested", "data: nested"),
        (" leading space", " leading space"),
    ],
)
def test_str_data(data: str, expected: str) -> None:
    raw = ServerSentEventMessage(data=data).encode()
    assert not raw.startswith(BOM)
    assert both(raw) == [Ev(expected)]
    # each source line is one data line; nothing else
    assert raw.count(b"data: ") >= expected.count("\n") + 1
    assert make_item_encoder()(data) == raw


def test_u2028_stays_in_one_data_line() -> None:
    raw = ServerSentEventMessage(data="a\u2028b").encode()
    assert raw == b"data: a\xe2\x80\xa8b\r\n\r\n"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"bytes", "bytes"),
        ("caf\u00e9".encode(), "caf\u00e9"),
        (b"a\r\nb\rc\nd", "a\nb\nc\nd"),
        ("\u2603\n\U0001f600".encode(), "\u2603\n\U0001f600"),
    ],
)
def test_bytes_data_is_utf8(data: bytes, expected: str) -> None:
    raw = ServerSentEventMessage(data=data).encode()
    assert both(raw) == [Ev(expected)]
    assert make_item_encoder()(data) == raw


def test_lone_surrogate_becomes_replacement_character() -> None:
    raw = ServerSentEventMessage(data="a\ud800b").encode()
    assert both(raw) == [Ev("a\ufffdb")]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (0, "0"),
        (-12, "-12"),
        (10**30, str(10**30)),
        (True, "true"),
        (False, "false"),
        (1.5, "1.5"),
        ([1, "two", None], '[1,"two",null]'),
        ({"k": [1, 2], "s": "a\nb"}, '{"k":[1,2],"s":"a\\nb"}'),
        ((1, 2), "[1,2]"),
        (Point(1, 2), '{"x":1,"y":2}'),
        (Box("b", 3), '{"name":"b","size":3}'),
        (
            Model(name="m", when=datetime.datetime(2024, 5, 6, 7, 8, 9)),
            '{"name":"m","when":"2024-05-06T07:08:09"}',
        ),
        (datetime.datetime(2024, 1, 2, 3, 4, 5), '"2024-01-02T03:04:05"'),
        (uuid.UUID(int=1), '"00000000-0000-0000-0000-000000000001"'),
    ],
)
def test_typed_data_in_a_message(data: Any, expected: str) -> None:
    raw = ServerSentEventMessage(data=data).encode()
    assert raw.count(b"data: ") == 1  # JSON is always one line
    assert both(raw) == [Ev(expected)]


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (7, "7"),
        (True, "true"),
        (None, "null"),  # a plain yield of None is JSON, unlike ServerSentEventMessage(data=None)
        (2.25, "2.25"),
        ([1, 2], "[1,2]"),
        (Point(3, 4), '{"x":3,"y":4}'),
        (Box("q", 1), '{"name":"q","size":1}'),
        (
            Model(name="n", when=datetime.datetime(2020, 1, 1)),
            '{"name":"n","when":"2020-01-01T00:00:00"}',
        ),
    ],
)
def test_plain_yields_of_typed_objects(item: Any, expected: str) -> None:
    assert both(make_item_encoder()(item)) == [Ev(expected)]


def test_type_encoders_serialize_unknown_types() -> None:
    encode = make_item_encoder(json_encode=json_encoder({Money: lambda m: f"{m.cents} EUR"}))
    assert both(encode(Money(250))) == [Ev('"250 EUR"')]
    assert both(encode({"data": [Money(1)]})) == [Ev('["1 EUR"]')]
    assert both(encode(ServerSentEventMessage(data=Money(2)))) == [Ev('"2 EUR"')]
    # standard types keep their JSON form next to the custom encoder
    assert both(encode(uuid.UUID(int=2))) == [Ev('"00000000-0000-0000-0000-000000000002"')]
    assert both(encode(datetime.date(2024, 2, 29))) == [Ev('"2024-02-29"')]


def test_unknown_type_without_encoder_fails_loudly() -> None:
    with pytest.raises((TypeError, NotImplementedError)):
        make_item_encoder()(Money(1))


# -- RawEvent ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "data: raw\r\n\r\n",
        b"event: x\ndata: y\n\n",
        "data: caf\u00e9\r\r",
        ": just a comment\n\n",
        "not even valid",  # verbatim means verbatim
    ],
)
def test_raw_event_is_written_verbatim(text: str | bytes) -> None:
    expected = text if isinstance(text, bytes) else text.encode()
    assert RawEvent(text).encode() == expected
    encode = make_item_encoder(event="ignored", id="ignored", retry=1, comment="ignored")
    assert encode(RawEvent(text)) == expected


# -- dict yields ----------------------------------------------------------------------------


def test_dict_yield_fields() -> None:
    raw = make_item_encoder()({"data": "d", "event": "e", "id": 3, "retry": 9, "comment": "c"})
    assert both(raw) == [Ev("d", "e", "3", 9)]


def test_dict_with_structured_data_is_json() -> None:
    raw = make_item_encoder()({"data": {"nested": [1, {"a": None}]}})
    assert both(raw) == [Ev('{"nested":[1,{"a":null}]}')]


def test_dict_yields_are_not_mutated() -> None:
    encode = make_item_encoder(event="resp", id="r", retry=5, comment="c", sep="\n")
    yielded = {"data": {"inner": [1, 2]}, "event": "mine", "id": "9"}
    before = copy.deepcopy(yielded)
    raw = encode(yielded)
    assert yielded == before
    # The dict's own event and id win; the response's retry and comment fill the gaps.
    assert both(raw) == [Ev('{"inner":[1,2]}', "mine", "9", 5)]
    yielded_with_sep = {"data": "x", "sep": "\r"}
    before = copy.deepcopy(yielded_with_sep)
    assert encode(yielded_with_sep) == b": c\revent: resp\rid: r\rretry: 5\rdata: x\r\r"
    assert yielded_with_sep == before


def test_dict_takes_response_separator_unless_it_has_its_own() -> None:
    encode = make_item_encoder(sep="\n")
    assert encode({"data": "a\nb"}) == b"data: a\ndata: b\n\n"
    assert encode({"data": "a", "sep": "\r\n"}) == b"data: a\r\n\r\n"


def test_unknown_dict_keys_give_a_clear_error() -> None:
    with pytest.raises(ValueError, match="Unknown SSE message field") as info:
        make_item_encoder()({"data": 1, "evnt": "typo", "extra": 2})
    message = str(info.value)
    assert "evnt" in message
    assert "extra" in message
    for allowed in MESSAGE_FIELDS:
        assert repr(allowed) in message


def test_invalid_dict_values_raise_value_error() -> None:
    with pytest.raises(ValueError, match="event"):
        make_item_encoder()({"data": 1, "event": "a\nb"})


# -- response-level fields ------------------------------------------------------------------


RESPONSE_FIELDS: dict[str, Any] = {"event": "tick", "id": "r1", "retry": 750, "comment": "rc"}


@pytest.mark.parametrize(
    ("item", "data"),
    [
        (5, "5"),
        ("text", "text"),
        ("two\nlines", "two\nlines"),
        (b"by\rtes", "by\ntes"),
        ([1], "[1]"),
        (Point(0, 0), '{"x":0,"y":0}'),
        (False, "false"),
    ],
)
def test_response_fields_apply_to_every_plain_yield(item: Any, data: str) -> None:
    encode = make_item_encoder(**RESPONSE_FIELDS)
    first, second = encode(item), encode(item)
    # no preamble: the first event is the same as every later one
    assert first == second
    assert first.startswith(b": rc\r\nevent: tick\r\nid: r1\r\nretry: 750\r\ndata: ")
    assert both(first + second) == [Ev(data, "tick", "r1", 750)] * 2
    assert [x for x in items(first) if isinstance(x, DecodedComment)] == [DecodedComment("rc")]


@pytest.mark.parametrize(
    "item",
    [
        ServerSentEventMessage(data="own"),
        {"data": "own"},
        LitestarMessage(data="own"),
    ],
    ids=["message", "dict", "litestar message"],
)
def test_response_fields_are_defaults_of_messages_and_dicts(item: Any) -> None:
    # As with Litestar's ServerSentEvent, a client sees the response's id, event and retry on
    # events made of messages and dicts too (Litestar sends them once, before the first
    # event; here each event carries them, so no event without data is ever sent).
    raw = make_item_encoder(**RESPONSE_FIELDS)(item)
    assert both(raw) == [Ev("own", "tick", "r1", 750)]
    assert [x.text for x in items(raw) if isinstance(x, DecodedComment)] == ["rc"]


@pytest.mark.parametrize(
    "item",
    [
        ServerSentEventMessage(data="own", event="e", id="i", retry=1, comment="c"),
        {"data": "own", "event": "e", "id": "i", "retry": 1, "comment": "c"},
    ],
    ids=["message", "dict"],
)
def test_the_items_own_fields_win_over_the_response_defaults(item: Any) -> None:
    raw = make_item_encoder(**RESPONSE_FIELDS)(item)
    assert raw == b": c\r\nevent: e\r\nid: i\r\nretry: 1\r\ndata: own\r\n\r\n"


@pytest.mark.parametrize(
    "item",
    [
        ServerSentEventMessage(data=None, comment="keep-alive"),
        {"data": None, "retry": 5},
        RawEvent("data: own\r\n\r\n"),
    ],
    ids=["data-less message", "data-less dict", "raw"],
)
def test_no_defaults_on_items_without_data_nor_on_raw_events(item: Any) -> None:
    # An id or event added to a data-less block would make an empty event in decoders that
    # dispatch on every blank line (openai-python, httpx-sse).
    encode = make_item_encoder(**RESPONSE_FIELDS)
    plain = make_item_encoder()
    assert encode(item) == plain(item)
    assert b"id:" not in encode(item)


def test_raw_event_subclass_is_sent_as_it_is() -> None:
    class Cached(RawEvent, frozen=True):
        pass

    raw = make_item_encoder(**RESPONSE_FIELDS)(Cached("event: x\ndata: y\n\n"))
    assert raw == b"event: x\ndata: y\n\n"


def test_message_subclass_is_encoded_as_a_message() -> None:
    class Sub(ServerSentEventMessage, frozen=True):
        pass

    raw = make_item_encoder(**RESPONSE_FIELDS)(Sub(data="s", event="own"))
    assert both(raw) == [Ev("s", "own", "r1", 750)]


def test_response_fields_with_percent_signs_survive_int_fast_path() -> None:
    encode = make_item_encoder(event="100%", id="%d%s", comment="%%")
    raw = encode(3)
    assert both(raw) == [Ev("3", "100%", "%d%s")]
    assert [x.text for x in items(raw) if isinstance(x, DecodedComment)] == ["%%"]


@pytest.mark.parametrize(
    "kwargs",
    [{"event": "a\nb"}, {"id": "x\x00"}, {"retry": -5}, {"sep": "x"}, {"id": "a\rb"}],
)
def test_make_item_encoder_validates_response_fields(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        make_item_encoder(**kwargs)


@pytest.mark.parametrize("sep", ["\r\n", "\n", "\r"])
def test_item_encoder_separators_are_byte_exact(sep: str) -> None:
    s = sep.encode()
    encode = make_item_encoder(event="e", sep=sep)
    assert encode(1) == b"event: e" + s + b"data: 1" + s + s
    assert encode("a\r\nb") == b"event: e" + s + b"data: a" + s + b"data: b" + s + s
    assert encode(b"x") == b"event: e" + s + b"data: x" + s + s
    assert encode([1]) == b"event: e" + s + b"data: [1]" + s + s
    assert both(encode("a\nb") + encode(2)) == [Ev("a\nb", "e"), Ev("2", "e")]


def test_no_bom_is_ever_produced() -> None:
    encode = make_item_encoder(comment="c")
    for item in ["\ufeffstarts with a BOM", b"x", 1, [1], {"data": "d"}, Point(1, 1)]:
        raw = encode(item)
        assert not raw.startswith(BOM)
        assert not ServerSentEventMessage(data="x").encode().startswith(BOM)
    # a U+FEFF in the data is data, not a stream BOM: both parsers keep it
    assert both(encode("\ufeffx")) == [Ev("\ufeffx")]


# -- one rule for the data of every kind of item --------------------------------------------


HOSTILE_JSON = b'"x"\n\nevent: pwn\r\nid: forged\r\rdata: y'
PRETTY_JSON = b'{\n  "a": 1,\n  "b": [\n    2\n  ]\n}'


@dataclasses.dataclass
class Holder:
    payload: msgspec.Raw


class Opaque:
    """A type only the app's type_encoders know."""


@pytest.mark.parametrize("raw", [HOSTILE_JSON, PRETTY_JSON], ids=["injection", "pretty"])
@pytest.mark.parametrize(
    ("how", "item", "expected_data"),
    [
        ("top level", lambda raw: msgspec.Raw(raw), lambda raw: raw),
        (
            "nested",
            lambda raw: {"data": {"k": msgspec.Raw(raw)}},
            lambda raw: b'{"k":' + raw + b"}",
        ),
        (
            "dataclass field",
            lambda raw: Holder(msgspec.Raw(raw)),
            lambda raw: b'{"payload":' + raw + b"}",
        ),
        ("message", lambda raw: ServerSentEventMessage(data=msgspec.Raw(raw)), lambda raw: raw),
        ("type_encoders", lambda raw: Opaque(), lambda raw: raw),
    ],
)
@pytest.mark.parametrize("fields", [{}, {"event": "update", "id": "7"}], ids=["plain", "fields"])
def test_json_with_line_breaks_cannot_start_a_field_or_an_event(
    raw: bytes, how: str, item: Any, expected_data: Any, fields: dict[str, Any]
) -> None:
    """A msgspec.Raw (or a custom encoder) may hold raw line breaks: they become data lines.

    (They were written as they were: the hostile payload gave the client a second event and a
    forged last event id, and pretty-printed JSON was cut at its first line.)
    """
    encode_json = json_encoder({Opaque: lambda _: msgspec.Raw(raw)})
    encode = make_item_encoder(json_encode=encode_json, **fields)
    for _ in range(2):  # the first sight of a type, then the cached path
        events = both(encode(item(raw)))
        expected = expected_data(raw).decode().replace("\r\n", "\n").replace("\r", "\n")
        assert events == [Ev(expected, fields.get("event", "message"), fields.get("id", ""))]


def test_dicts_are_data_in_a_stream_of_mappings() -> None:
    encode = make_item_encoder(id="1", dicts_are_data=True)
    assert both(encode({"choices": [1], "data": "x"})) == [Ev('{"choices":[1],"data":"x"}', id="1")]
    assert both(encode({"k": msgspec.Raw(HOSTILE_JSON)}))[0].id == "1"
    assert len(both(encode({"k": msgspec.Raw(HOSTILE_JSON)}))) == 1
    # messages keep their own fields
    assert both(encode(ServerSentEventMessage(data="m", event="e"))) == [Ev("m", "e", "1")]


@given(
    data=st.one_of(
        st.integers(),
        st.text(),
        st.binary().map(lambda b: b.decode("utf-8", "replace").encode()),
        st.lists(st.integers()),
        st.dictionaries(st.text(), st.integers()),
        st.booleans(),
        st.floats(allow_nan=False),
    ),
    event=st.none() | st.just("kind"),
    id=st.none() | st.just("9"),
    sep=st.sampled_from(["\r\n", "\n", "\r"]),
)
@settings(max_examples=300, deadline=None)
def test_the_fast_paths_follow_the_one_rule(
    data: Any, event: str | None, id: str | None, sep: str
) -> None:
    """What make_item_encoder inlines for speed is data_text + encode_data, byte for byte."""
    encode = make_item_encoder(event=event, id=id, sep=sep, dicts_are_data=True)
    sep_bytes = sep.encode()
    expected = (
        encode_fields(event=event, id=id, sep=sep)
        + encode_data(data_text(data, json_encoder(None)), sep_bytes)
        + sep_bytes
    )
    assert encode(data) == expected
    assert ServerSentEventMessage(data=data, event=event, id=id, sep=sep).encode() == expected


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_bytearray_and_memoryview_are_text_like_bytes(kind: Any) -> None:
    """(They were sent as base64 JSON strings.)"""
    encode = make_item_encoder()
    assert both(encode(kind(b"caf\xc3\xa9\nline"))) == [Ev("café\nline")]
    assert ServerSentEventMessage(data=kind(b"x")).encode() == b"data: x\r\n\r\n"
    assert data_text(kind(b"x"), json_encoder(None)) == b"x"


def test_an_int_too_large_for_decimal_is_refused_saying_why() -> None:
    huge = 10**5000  # past CPython's default limit of 4,300 digits
    with pytest.raises(ValueError, match="int_max_str_digits"):  # CPython's own message
        make_item_encoder()(huge)
    with pytest.raises(ValueError, match="too large to send in decimal"):
        ServerSentEventMessage(data=huge).encode()


class Plain(msgspec.Struct):
    id: int
    name: str
    tags: list[str]
    when: datetime.datetime
    ratio: float | None = None


class Nested(msgspec.Struct):
    items: list[Plain]
    by_name: dict[str, Plain]
    parent: Nested | None = None  # recursive
