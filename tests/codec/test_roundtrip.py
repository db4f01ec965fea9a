"""Encoder -> decoder round trips, encoder validation, and agreement with httpx-sse."""

from __future__ import annotations

import re
from itertools import pairwise

import pytest
from httpx_sse._decoders import SSEDecoder, SSELineDecoder
from hypothesis import given, settings
from hypothesis import strategies as st

from litestar_sse.codec._decoder import DecodedComment, DecodedEvent, EventDecoder, decode_stream
from litestar_sse.codec._encoder import SEPARATORS, encode_event

E = DecodedEvent
C = DecodedComment

SEP_IDS = {"\r\n": "crlf", "\n": "lf", "\r": "cr"}
sep_param = pytest.mark.parametrize("sep", SEPARATORS, ids=[SEP_IDS[s] for s in SEPARATORS])

_SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def expected_text(text: str) -> str:
    """What a client reads back for ``text``: line breaks as LF, unpaired surrogates as U+FFFD."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Adjacent high+low surrogates in a Python str are one UTF-16 pair: one character on the wire.
    text = _SURROGATE_PAIR.sub(
        lambda m: chr(0x10000 + ((ord(m[0][0]) - 0xD800) << 10) + ord(m[0][1]) - 0xDC00), text
    )
    return _SURROGATE.sub("\ufffd", text)


def feed_all(stream: bytes, *, comments: bool = False) -> list[DecodedEvent | DecodedComment]:
    decoder = EventDecoder(max_line_length=None)
    out: list[DecodedEvent | DecodedComment] = []
    out.extend(decoder.feed_with_comments(stream) if comments else decoder.feed(stream))
    decoder.close()
    return out


# ----------------------------------------------------------------------------- data


DATA_CASES: dict[str, tuple[str | bytes, str]] = {
    "simple": ("hello", "hello"),
    "empty": ("", ""),
    "lf": ("a\nb", "a\nb"),
    "crlf": ("a\r\nb", "a\nb"),
    "cr": ("a\rb", "a\nb"),
    "mixed": ("a\r\nb\rc\nd", "a\nb\nc\nd"),
    "cr-lf-separate": ("a\r\rb\n\nc", "a\n\nb\n\nc"),
    "only-lf": ("\n", "\n"),
    "only-crlf": ("\r\n", "\n"),
    "only-cr": ("\r", "\n"),
    "leading-break": ("\nx", "\nx"),
    "trailing-break": ("x\n", "x\n"),
    "many-breaks": ("\n\r\n\r", "\n\n\n"),
    "unicode-breaks-kept": (
        "a\u2028b\u2029c\x0bd\x0ce\x85f\x1cg\x1dh\x1ei",
        "a\u2028b\u2029c\x0bd\x0ce\x85f\x1cg\x1dh\x1ei",
    ),
    "leading-spaces": ("   three", "   three"),
    "single-space": (" ", " "),
    "leading-space-each-line": (" a\n  b", " a\n  b"),
    "tab": ("\tx", "\tx"),
    "trailing-spaces": ("x  ", "x  "),
    "looks-like-fields": (
        "data: x\nid: 1\nevent: e\nretry: 5",
        "data: x\nid: 1\nevent: e\nretry: 5",
    ),
    "looks-like-comment": (": not a comment", ": not a comment"),
    "colons": ("a:b::c:", "a:b::c:"),
    "nul": ("\x00a\x00", "\x00a\x00"),
    "bom-inside": ("\ufeffx", "\ufeffx"),
    "astral": ("\U0001f600 \U0010ffff", "\U0001f600 \U0010ffff"),
    "lone-high-surrogate": ("a\ud800b", "a\ufffdb"),
    "lone-low-surrogate": ("\udc00", "\ufffd"),
    "surrogate-pair-codepoints": ("\ud83d\ude00", "\U0001f600"),
    "json": ('{"a": [1, 2], "b": "c\\nd"}', '{"a": [1, 2], "b": "c\\nd"}'),
    "utf8-bytes": ("caf\u00e9".encode(), "caf\u00e9"),
    "long-line": ("z" * 100_000, "z" * 100_000),
}


@sep_param
@pytest.mark.parametrize(("data", "expected"), list(DATA_CASES.values()), ids=list(DATA_CASES))
def test_data_round_trip(data: str | bytes, expected: str, sep: str) -> None:
    assert feed_all(encode_event(data, sep=sep)) == [E(expected)]


@sep_param
def test_no_data_means_no_event(sep: str) -> None:
    decoder = EventDecoder()
    assert decoder.feed(encode_event(None, event="e", id="7", retry=10, sep=sep)) == []
    # The id and retry still take effect, as in a browser.
    assert decoder.last_event_id == "7"
    assert decoder.retry == 10
    assert decoder.feed(encode_event("x", sep=sep)) == [E("x", id="7")]


# ---------------------------------------------------------------------- other fields

FIELD_CASES: dict[str, tuple[dict[str, object], DecodedEvent]] = {
    "event": ({"event": "update"}, E("d", "update")),
    "event-empty-means-message": ({"event": ""}, E("d")),
    "event-leading-space": ({"event": " spaced"}, E("d", " spaced")),
    "event-colon": ({"event": "a:b"}, E("d", "a:b")),
    "event-unicode": ({"event": "\u00e9v\u00e9nement"}, E("d", "\u00e9v\u00e9nement")),
    "event-unicode-break": ({"event": "a\u2028b"}, E("d", "a\u2028b")),
    "id": ({"id": "abc"}, E("d", id="abc")),
    "id-empty": ({"id": ""}, E("d")),
    "id-int": ({"id": 42}, E("d", id="42")),
    "id-zero": ({"id": 0}, E("d", id="0")),
    "id-leading-space": ({"id": " x"}, E("d", id=" x")),
    "id-unicode": ({"id": "\u2026"}, E("d", id="\u2026")),
    "retry": ({"retry": 1500}, E("d", retry=1500)),
    "retry-zero": ({"retry": 0}, E("d", retry=0)),
    "retry-large": ({"retry": 10**15}, E("d", retry=10**15)),
    "all": (
        {"event": "e", "id": "9", "retry": 3, "comment": "hi"},
        E("d", "e", "9", 3),
    ),
}


@sep_param
@pytest.mark.parametrize(("fields", "expected"), list(FIELD_CASES.values()), ids=list(FIELD_CASES))
def test_fields_round_trip(fields: dict[str, object], expected: DecodedEvent, sep: str) -> None:
    assert feed_all(encode_event("d", sep=sep, **fields)) == [expected]  # type: ignore[arg-type]


@sep_param
def test_id_reset_round_trip(sep: str) -> None:
    stream = (
        encode_event("1", id="a", sep=sep) + encode_event("2", sep=sep) + encode_event("3", id="")
    )
    assert feed_all(stream) == [E("1", id="a"), E("2", id="a"), E("3")]


# ------------------------------------------------------------------------- comments

COMMENT_CASES: dict[str, tuple[str, list[DecodedComment]]] = {
    "simple": ("keep-alive", [C("keep-alive")]),
    "empty": ("", [C("")]),
    "leading-space": (" x", [C(" x")]),
    "multi-line": ("a\r\nb\rc\nd", [C("a"), C("b"), C("c"), C("d")]),
    "blank-lines-inside": ("a\n\nb", [C("a"), C(""), C("b")]),
    "trailing-break": ("a\n", [C("a"), C("")]),
    "looks-like-data": ("data: x\n\ndata: y", [C("data: x"), C(""), C("data: y")]),
    "lone-surrogate": ("\udfff", [C("\ufffd")]),
}


@sep_param
@pytest.mark.parametrize(
    ("comment", "expected"), list(COMMENT_CASES.values()), ids=list(COMMENT_CASES)
)
def test_comment_never_produces_events(
    comment: str, expected: list[DecodedComment], sep: str
) -> None:
    stream = encode_event(comment=comment, sep=sep)
    assert feed_all(stream) == []
    assert feed_all(stream, comments=True) == expected


@sep_param
def test_comment_before_data(sep: str) -> None:
    stream = encode_event("x", comment="a\nb", sep=sep)
    assert feed_all(stream, comments=True) == [C("a"), C("b"), E("x")]


# ------------------------------------------------------------------ encoder refusals

BAD_FIELDS: dict[str, tuple[dict[str, object], str]] = {
    "event-lf": ({"event": "a\nb"}, "event"),
    "event-cr": ({"event": "a\rb"}, "event"),
    "event-crlf": ({"event": "a\r\n"}, "event"),
    "event-lone-surrogate": ({"event": "\udfff"}, "event"),
    "id-lf": ({"id": "a\nb"}, "id"),
    "id-cr": ({"id": "\r"}, "id"),
    "id-nul": ({"id": "a\x00b"}, "id"),
    "id-lone-surrogate": ({"id": "\ud800"}, "id"),
    "retry-negative": ({"retry": -1}, "retry"),
    "retry-bool": ({"retry": True}, "retry"),
    "retry-float": ({"retry": 1.5}, "retry"),
    "retry-str": ({"retry": "10"}, "retry"),
    "sep-double": ({"sep": "\n\n"}, "sep"),
    "sep-empty": ({"sep": ""}, "sep"),
    "sep-lfcr": ({"sep": "\n\r"}, "sep"),
    "sep-unicode": ({"sep": "\u2028"}, "sep"),
}


@pytest.mark.parametrize(("fields", "name"), list(BAD_FIELDS.values()), ids=list(BAD_FIELDS))
def test_encoder_refuses_bad_fields(fields: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        encode_event("x", **fields)  # type: ignore[arg-type]


# ------------------------------------------------------------------ property tests

# Characters of every category (lone surrogates included), with line breaks and other
# troublemakers drawn often enough to matter.
_any_char = st.characters(exclude_categories=())
_tricky = st.sampled_from(["\r\n", "\r", "\n", " ", ":", "\x00", "\ufeff", "\u2028", "\x85"])
texts = st.lists(st.one_of(_any_char, _tricky), max_size=40).map("".join)
# Field values the encoder accepts: no CR/LF and no lone surrogates (plus no NUL for ids).
_field_char = st.characters(exclude_categories=["Cs"], exclude_characters="\r\n")
event_types = st.text(_field_char, max_size=20)
event_ids = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\x00"), max_size=20),
    st.integers(min_value=0),
)
retries = st.integers(min_value=0, max_value=2**63 - 1)
seps = st.sampled_from(SEPARATORS)

FAST = settings(max_examples=200, deadline=None)


@FAST
@given(
    data=texts,
    event=st.none() | event_types,
    id=st.none() | event_ids,
    retry=st.none() | retries,
    comment=st.none() | texts,
    sep=seps,
)
def test_property_round_trip(
    data: str,
    event: str | None,
    id: str | int | None,
    retry: int | None,
    comment: str | None,
    sep: str,
) -> None:
    stream = encode_event(data, event=event, id=id, retry=retry, comment=comment, sep=sep)
    assert not stream.startswith(b"\xef\xbb\xbf")
    assert stream.endswith(sep.encode() * 2)
    expected = E(
        expected_text(data),
        event or "message",
        "" if id is None else str(id),
        retry,
    )
    assert decode_stream(stream) == [expected]
    # Byte-at-a-time delivery must not change anything.
    assert decode_stream([stream[i : i + 1] for i in range(len(stream))]) == [expected]


@FAST
@given(
    events=st.lists(
        st.tuples(st.none() | texts, st.none() | event_types, st.none() | event_ids, seps),
        max_size=6,
    ),
    cuts=st.lists(st.integers(min_value=0), max_size=8),
)
def test_property_concatenated_events_any_chunking(
    events: list[tuple[str | None, str | None, str | int | None, str]], cuts: list[int]
) -> None:
    stream = b"".join(
        encode_event(data, event=event, id=id, sep=sep) for data, event, id, sep in events
    )
    expected, last_id = [], ""
    for data, event, id, _sep in events:
        if id is not None:
            last_id = str(id)
        if data is not None:
            expected.append(E(expected_text(data), event or "message", last_id))
    points = sorted({cut % (len(stream) + 1) for cut in cuts} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in pairwise(points)]
    assert decode_stream(chunks) == expected


# ------------------------------------------------------------- agreement with httpx-sse


def httpx_sse_decode(stream: bytes) -> list[DecodedEvent]:
    """Decode with httpx-sse's line splitter and event decoder, as its ``iter_sse`` does."""
    lines = SSELineDecoder()
    decoder = SSEDecoder()
    out = []
    for line in [*lines.decode(stream.decode("utf-8", "replace")), *lines.flush()]:
        sse = decoder.decode(line.rstrip("\n"))
        if sse is not None:
            out.append(E(sse.data, sse.event, sse.id, sse.retry))
    return out


ORDINARY_STREAMS = {
    "simple": encode_event("hello"),
    "multi-line-lf": encode_event("a\nb\nc", sep="\n"),
    "multi-line-cr": encode_event("a\nb\nc", sep="\r"),
    "typed-with-id-retry": encode_event("x", event="update", id="1", retry=500),
    "id-persists": encode_event("1", id="a") + encode_event("2") + encode_event("3", id="b"),
    "retry-per-event": encode_event("1", retry=5) + encode_event("2"),
    "empty-data": encode_event(""),
    "comments-around-data": encode_event("x", comment="note") + b": loose comment\n",
    "unicode": encode_event("\u00e9\u20ac\U0001f600 \u2028 \x85", event="\u00e9"),
    "unknown-field": b"foo: bar\ndata: x\n\n",
    "one-space-stripped": b"data:  x\ndata:y\n\n",
}


@pytest.mark.parametrize("stream", list(ORDINARY_STREAMS.values()), ids=list(ORDINARY_STREAMS))
def test_agrees_with_httpx_sse(stream: bytes) -> None:
    ours = decode_stream(stream)
    assert ours  # every stream here carries at least one event
    assert httpx_sse_decode(stream) == ours


@FAST
@given(
    data=st.text(max_size=40),
    event=st.none() | st.text(_field_char, min_size=1, max_size=10),
    id=st.none() | st.text(_field_char.filter(lambda c: c != "\x00"), min_size=1, max_size=10),
    retry=st.none() | retries,
    sep=seps,
)
def test_property_agrees_with_httpx_sse(
    data: str, event: str | None, id: str | None, retry: int | None, sep: str
) -> None:
    # Streams where each block carries data: the case both decoders are built for.
    stream = encode_event(data, event=event, id=id, retry=retry, sep=sep) + encode_event(
        data, sep=sep
    )
    assert httpx_sse_decode(stream) == decode_stream(stream)
