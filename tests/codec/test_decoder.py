"""Unit tests for the event-stream decoder, one parsing rule at a time."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from litestar_sse.codec._decoder import (
    DEFAULT_MAX_EVENT_LENGTH,
    DEFAULT_MAX_LINE_LENGTH,
    DecodedComment,
    DecodedEvent,
    DecodeError,
    EventDecoder,
    aiter_events,
    decode_stream,
)

E = DecodedEvent
C = DecodedComment


def _whole(stream: bytes) -> list[bytes]:
    return [stream]


def _bytewise(stream: bytes) -> list[bytes]:
    return [stream[i : i + 1] for i in range(len(stream))]


def _random_splitter(seed: int) -> Callable[[bytes], list[bytes]]:
    def split(stream: bytes) -> list[bytes]:
        rng = random.Random(seed)
        chunks, pos = [], 0
        while pos < len(stream):
            size = rng.randint(0, 7)  # zero-sized chunks happen with real transports too
            chunks.append(stream[pos : pos + size])
            pos += size
        return chunks

    return split


CHUNKINGS = {
    "whole": _whole,
    "bytewise": _bytewise,
    **{f"random{seed}": _random_splitter(seed) for seed in range(4)},
}


def decode(chunks: list[bytes], *, comments: bool = False) -> list[DecodedEvent | DecodedComment]:
    decoder = EventDecoder()
    out: list[DecodedEvent | DecodedComment] = []
    for chunk in chunks:
        out.extend(decoder.feed_with_comments(chunk) if comments else decoder.feed(chunk))
    decoder.close()
    return out


# (stream, expected events); every case is checked under every chunking.
CASES: dict[str, tuple[bytes, list[DecodedEvent]]] = {
    "empty-stream": (b"", []),
    "simple": (b"data: hello\n\n", [E("hello")]),
    "no-space-after-colon": (b"data:hello\n\n", [E("hello")]),
    "only-one-space-stripped": (b"data:  two\n\n", [E(" two")]),
    "tab-not-stripped": (b"data:\tx\n\n", [E("\tx")]),
    "trailing-space-kept": (b"data: x \n\n", [E("x ")]),
    "multi-line-data": (b"data: a\ndata: b\ndata: c\n\n", [E("a\nb\nc")]),
    "data-without-colon": (b"data\n\n", [E("")]),
    "data-with-colon-empty": (b"data:\n\n", [E("")]),
    "data-space-only": (b"data: \n\n", [E("")]),
    "two-empty-data-lines": (b"data\ndata\n\n", [E("\n")]),
    "trailing-empty-data-line": (b"data: a\ndata:\n\n", [E("a\n")]),
    "leading-empty-data-line": (b"data:\ndata: a\n\n", [E("\na")]),
    "colon-in-value": (b"data: a:b: c\n\n", [E("a:b: c")]),
    "double-colon": (b"data::x\n\n", [E(":x")]),
    "crlf": (b"data: a\r\n\r\n", [E("a")]),
    "cr": (b"data: a\r\r", [E("a")]),
    "mixed-breaks": (b"data: a\rdata: b\ndata: c\r\n\r\n", [E("a\nb\nc")]),
    "cr-then-crlf": (b"data: a\r\r\n", [E("a")]),
    "lf-then-cr": (b"data: a\n\r", [E("a")]),
    "crlf-pairs-not-doubled": (b"data: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n", [E("a\nb"), E("c")]),
    "several-events": (b"data: 1\n\ndata: 2\n\ndata: 3\n\n", [E("1"), E("2"), E("3")]),
    "extra-blank-lines": (b"\n\ndata: 1\n\n\n\n\ndata: 2\n\n", [E("1"), E("2")]),
    "event-type": (b"event: ping\ndata: x\n\n", [E("x", "ping")]),
    "event-type-no-space": (b"event:ping\ndata: x\n\n", [E("x", "ping")]),
    "event-empty-is-message": (b"event:\ndata: x\n\n", [E("x")]),
    "event-no-colon-is-message": (b"event\ndata: x\n\n", [E("x")]),
    "event-space-only-is-message": (b"event: \ndata: x\n\n", [E("x")]),
    "event-last-wins": (b"event: a\nevent: b\ndata: x\n\n", [E("x", "b")]),
    "event-after-data": (b"data: x\nevent: late\n\n", [E("x", "late")]),
    "event-reset-after-dispatch": (
        b"event: a\ndata: 1\n\ndata: 2\n\n",
        [E("1", "a"), E("2")],
    ),
    "event-without-data-discarded": (b"event: a\n\ndata: 2\n\n", [E("2")]),
    "event-type-kept-verbatim": (b"event: A b:c\ndata: x\n\n", [E("x", "A b:c")]),
    "id": (b"id: 1\ndata: x\n\n", [E("x", id="1")]),
    "id-persists": (b"id: 1\ndata: x\n\ndata: y\n\n", [E("x", id="1"), E("y", id="1")]),
    "id-changes": (b"id: 1\ndata: x\n\nid: 2\ndata: y\n\n", [E("x", id="1"), E("y", id="2")]),
    "id-reset-empty-colon": (b"id: 1\ndata: x\n\nid:\ndata: y\n\n", [E("x", id="1"), E("y")]),
    "id-reset-no-colon": (b"id: 1\ndata: x\n\nid\ndata: y\n\n", [E("x", id="1"), E("y")]),
    "id-without-data-still-applies": (b"id: 7\n\ndata: y\n\n", [E("y", id="7")]),
    "id-after-data-in-block": (b"data: x\nid: 9\n\n", [E("x", id="9")]),
    "id-with-nul-ignored": (
        b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
        [E("a", id="1"), E("b", id="1")],
    ),
    "id-only-nul-ignored": (b"id: \x00\ndata: b\n\n", [E("b")]),
    "id-verbatim": (b"id: a b:c \xc3\xa9\ndata: x\n\n", [E("x", id="a b:c \xe9")]),
    "retry": (b"retry: 1000\ndata: x\n\n", [E("x", retry=1000)]),
    "retry-no-space": (b"retry:1000\ndata: x\n\n", [E("x", retry=1000)]),
    "retry-zero": (b"retry: 0\ndata: x\n\n", [E("x", retry=0)]),
    "retry-leading-zeros-decimal": (b"retry: 0100\ndata: x\n\n", [E("x", retry=100)]),
    "retry-huge": (
        b"retry: 99999999999999999999\ndata: x\n\n",
        [E("x", retry=99999999999999999999)],
    ),
    "retry-last-valid-wins": (b"retry: 5\nretry: 7\nretry: x\ndata: x\n\n", [E("x", retry=7)]),
    "retry-not-carried-to-next-event": (
        b"retry: 5\ndata: a\n\ndata: b\n\n",
        [E("a", retry=5), E("b")],
    ),
    "retry-in-empty-block-not-attached": (b"retry: 5\n\ndata: b\n\n", [E("b")]),
    "comment-ignored": (b": hello\ndata: x\n\n", [E("x")]),
    "comment-between-data": (b"data: a\n: note\ndata: b\n\n", [E("a\nb")]),
    "comment-only-block": (b": keep-alive\n\n", []),
    "bare-colon": (b":\n\n", []),
    "comment-looking-like-field": (b":data: x\n\n", []),
    "unknown-field": (b"foo: bar\ndata: x\n\n", [E("x")]),
    "unknown-field-no-colon": (b"justtext\ndata: x\n\n", [E("x")]),
    "unknown-field-only": (b"foo: bar\n\n", []),
    "field-names-case-sensitive": (b"Data: x\nDATA: y\nEvent: e\nID: 1\nRetry: 5\n\n", []),
    "leading-space-field-name": (b" data: x\n\n", []),
    "space-before-colon": (b"data : x\n\n", []),
    "nul-in-field-name": (b"data\x00: x\n\n", []),
    "incomplete-event-discarded": (b"data: x\n", []),
    "unterminated-line-discarded": (b"data: x", []),
    "incomplete-after-complete": (b"data: 1\n\ndata: 2\n", [E("1")]),
    "blank-lines-only": (b"\n\r\n\r\n", []),
    "bom-stripped": (b"\xef\xbb\xbfdata: x\n\n", [E("x")]),
    "bom-before-blank-line": (b"\xef\xbb\xbf\n", []),
    "second-bom-is-data": (b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n", [E("y")]),
    "bom-mid-stream-is-data": (b"data: x\n\n\xef\xbb\xbfdata: y\n\n", [E("x")]),
    "bom-in-value-kept": (b"data: \xef\xbb\xbfx\n\n", [E("\ufeffx")]),
    "utf8-multibyte": (
        "data: h\u00e9llo \u20ac \U0001d11e \u4e2d\n\n".encode(),
        [E("h\u00e9llo \u20ac \U0001d11e \u4e2d")],
    ),
    "invalid-utf8-replaced": (b"data: a\xffb\n\n", [E("a\ufffdb")]),
    "truncated-utf8-replaced": (b"data: \xe2\x82\n\n", [E("\ufffd")]),
    "encoded-surrogate-replaced": (b"data: \xed\xa0\x80\n\n", [E("\ufffd\ufffd\ufffd")]),
    "overlong-encoding-replaced": (b"data: \xc0\xaf\n\n", [E("\ufffd\ufffd")]),
    "truncated-utf8-at-eof-discarded": (b"data: x\n\ndata: \xe2\x82", [E("x")]),
    "nul-in-data": (b"data: \x00\n\n", [E("\x00")]),
    "other-unicode-breaks-are-not-breaks": (
        "data: a\u2028b\u2029c\x0bd\x0ce\x85f\x1cg\x1dh\x1ei\n\n".encode(),
        [E("a\u2028b\u2029c\x0bd\x0ce\x85f\x1cg\x1dh\x1ei")],
    ),
    "everything-together": (
        b"\xef\xbb\xbf: stream start\r\nretry: 3000\r\nid: 42\r\nevent: update\r\n"
        b'data: {"a": 1}\r\ndata: second\r\n\r\n: ping\r\n\r\ndata: after\r\n\r\n',
        [E('{"a": 1}\nsecond', "update", "42", 3000), E("after", id="42")],
    ),
}


@pytest.mark.parametrize("chunking", list(CHUNKINGS))
@pytest.mark.parametrize(("stream", "expected"), list(CASES.values()), ids=list(CASES))
def test_case(stream: bytes, expected: list[DecodedEvent], chunking: str) -> None:
    assert decode(CHUNKINGS[chunking](stream)) == expected


@pytest.mark.parametrize(("stream", "expected"), list(CASES.values()), ids=list(CASES))
def test_case_every_two_way_split(stream: bytes, expected: list[DecodedEvent]) -> None:
    for cut in range(len(stream) + 1):
        assert decode([stream[:cut], stream[cut:]]) == expected, cut


@pytest.mark.parametrize(
    "value",
    [
        "-1",
        "+1",
        "1.5",
        "1e3",
        "0x10",
        "1 ",
        " 1",  # the first space is stripped, the second makes the value invalid
        "1_000",
        "",
        "1\u00b2",  # superscript two: str.isdigit() is true for it
        "\u0661\u0662",  # Arabic-Indic digits
        "\uff11",  # fullwidth one
        "abc",
    ],
)
def test_retry_bogus_values_ignored(value: str) -> None:
    decoder = EventDecoder()
    events = decoder.feed(f"retry: 5\ndata: a\n\nretry: {value}\ndata: b\n\n".encode())
    assert events == [E("a", retry=5), E("b")]
    assert decoder.retry == 5


def test_retry_with_thousands_of_digits_is_ignored_not_crashing() -> None:
    # Python refuses int() on strings past its digit limit; such a value is useless anyway.
    decoder = EventDecoder()
    assert decoder.feed(b"retry: " + b"9" * 10_000 + b"\ndata: x\n\n") == [E("x")]
    assert decoder.retry is None
    zeros = b"0" * 10_000 + b"7"
    assert decoder.feed(b"retry: " + zeros + b"\ndata: x\n\n") == [E("x", retry=7)]


def test_retry_property_persists() -> None:
    decoder = EventDecoder()
    assert decoder.retry is None
    decoder.feed(b"retry: 100\n\n")
    assert decoder.retry == 100
    assert decoder.feed(b"data: x\n\n") == [E("x")]
    assert decoder.retry == 100
    decoder.feed(b"retry: 200\n")  # set on parse, before any dispatch
    assert decoder.retry == 200
    decoder.close()
    assert decoder.retry == 200


def test_last_event_id_property() -> None:
    decoder = EventDecoder()
    assert decoder.last_event_id == ""
    decoder.feed(b"id: a\ndata: 1\n\n")
    assert decoder.last_event_id == "a"
    decoder.feed(b"data: 2\n\n")
    assert decoder.last_event_id == "a"
    decoder.feed(b"id: \x00\n\n")
    assert decoder.last_event_id == "a"
    decoder.feed(b"id\n\n")
    assert decoder.last_event_id == ""
    decoder.feed(b"id: b\n\n")
    assert decoder.last_event_id == "b"


def test_close_rolls_back_id_of_incomplete_event() -> None:
    decoder = EventDecoder()
    decoder.feed(b"id: 1\ndata: one\n\nid: 2\ndata: two\n")
    assert decoder.last_event_id == "2"  # the buffer is updated as soon as the line is parsed
    decoder.close()
    assert decoder.last_event_id == "1"  # event 2 never arrived, so do not resume after it


def test_close_discards_pending_and_allows_reuse() -> None:
    decoder = EventDecoder()
    assert decoder.feed(b"id: 1\ndata: one\n\nevent: e\ndata: partial\ndata: unterminated") == [
        E("one", id="1")
    ]
    decoder.close()
    # A new stream: a fresh BOM is accepted, nothing of the old event survives, the ID does.
    assert decoder.feed(b"\xef\xbb\xbf\ndata: next\n\n") == [E("next", id="1")]


def test_close_resets_pending_cr() -> None:
    decoder = EventDecoder()
    decoder.feed(b"data: x\r")
    decoder.close()
    # The LF starts a new stream, so it is a blank line of its own (which dispatches nothing).
    assert decoder.feed(b"\ndata: y\n\n") == [E("y")]


def test_cr_at_chunk_end_dispatches_without_waiting() -> None:
    decoder = EventDecoder()
    assert decoder.feed(b"data: x\r") == []
    assert decoder.feed(b"\r") == [E("x")]
    assert decoder.feed(b"\n") == []  # second half of a CRLF, not another blank line
    assert decoder.feed(b"data: y\r") == []
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\n") == [E("y")]


def test_lf_is_skipped_only_directly_after_cr() -> None:
    decoder = EventDecoder()
    assert decoder.feed(b"data: x\r") == []
    assert decoder.feed(b"") == []  # an empty chunk does not consume the pending CR state
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\n") == [E("x")]


def test_bom_split_across_chunks() -> None:
    decoder = EventDecoder()
    assert decoder.feed(b"\xef") == []
    assert decoder.feed(b"\xbb") == []
    assert decoder.feed(b"\xbfdata: x\n\n") == [E("x")]


def test_bom_alone_then_data() -> None:
    decoder = EventDecoder()
    assert decoder.feed(b"\xef\xbb\xbf") == []
    assert decoder.feed(b"\xef\xbb\xbfdata: x\n\ndata: y\n\n") == [E("y")]


def test_partial_bom_is_not_stripped() -> None:
    assert decode_stream(b"\xef\xbbdata: x\n\n") == []  # field name becomes "\ufffddata"
    assert decode_stream(b"\xef\xbb\n\xef\xbb\xbfdata: x\n\n") == []


def test_multibyte_character_split_across_chunks() -> None:
    encoded = "data: \u20ac\U0001f600\n\n".encode()
    decoder = EventDecoder()
    out = []
    for i in range(len(encoded)):
        out.extend(decoder.feed(encoded[i : i + 1]))
    assert out == [E("\u20ac\U0001f600")]


def test_comments_reported_in_stream_order() -> None:
    stream = b": first\ndata: a\n:second\n\n:  two spaces\n:\n: \ndata: b\n\n"
    expected = [C("first"), C("second"), E("a"), C(" two spaces"), C(""), C(""), E("b")]
    for split in CHUNKINGS.values():
        assert decode(split(stream), comments=True) == expected
    assert decode([stream]) == [E("a"), E("b")]


def test_comment_text_is_decoded_utf8() -> None:
    decoder = EventDecoder()
    assert decoder.feed_with_comments(b": caf\xc3\xa9 \xff\r\n") == [C("caf\xe9 \ufffd")]


def test_feed_returns_only_events() -> None:
    decoder = EventDecoder()
    assert decoder.feed(b": c\n\ndata: x\n\n") == [E("x")]


# ----------------------------------------------------------------------------- line length


def test_line_at_limit_is_accepted() -> None:
    decoder = EventDecoder(max_line_length=10)
    assert decoder.feed(b"data: 1234\r\n\r\n") == [E("1234")]  # 10 characters, CRLF excluded


@pytest.mark.parametrize("chunking", list(CHUNKINGS))
def test_line_over_limit_raises(chunking: str) -> None:
    decoder = EventDecoder(max_line_length=10)
    chunks = CHUNKINGS[chunking](b"data: 12345\n\n")
    with pytest.raises(DecodeError, match=r"max_line_length of 10 characters"):
        _feed_all(decoder, chunks)


def test_limit_counts_characters_not_bytes() -> None:
    decoder = EventDecoder(max_line_length=10)
    assert decoder.feed("data: \u20ac\u20ac\u20ac\u20ac\n\n".encode()) == [E("\u20ac" * 4)]


def test_unterminated_line_over_limit_raises_early() -> None:
    # The peer never sends a line break: fail before buffering without bound.
    decoder = EventDecoder(max_line_length=100)
    decoder.feed(b"x" * 100)
    with pytest.raises(DecodeError):
        decoder.feed(b"x")


def test_comment_lines_count_towards_limit() -> None:
    decoder = EventDecoder(max_line_length=5)
    with pytest.raises(DecodeError):
        decoder.feed_with_comments(b": abcdef\n")


def test_decode_error_is_a_value_error() -> None:
    assert issubclass(DecodeError, ValueError)


def test_decode_error_discards_chunk_and_resets() -> None:
    decoder = EventDecoder(max_line_length=10)
    assert decoder.feed(b"id: 1\ndata: a\n\nid: 2\n") == [E("a", id="1")]
    with pytest.raises(DecodeError):
        decoder.feed(b"data: b\n\nid: 3\ndata: far too long\n\n")
    # Nothing from the failing chunk was dispatched, so the ID must not have moved past "1".
    assert decoder.last_event_id == "1"
    assert decoder.feed(b"data: c\n\n") == [E("c", id="1")]


def test_no_limit() -> None:
    decoder = EventDecoder(max_line_length=None)
    big = "x" * 2_000_000
    assert decoder.feed(f"data: {big}\n\n".encode()) == [E(big)]


def test_default_limit_is_one_mebibyte() -> None:
    decoder = EventDecoder()
    assert decoder.feed(b"data:" + b"x" * (1_048_576 - 5) + b"\n\n") == [E("x" * 1_048_571)]
    with pytest.raises(DecodeError, match="1048576"):
        decoder.feed(b"data:" + b"x" * (1_048_576 - 4) + b"\n\n")


def test_negative_limit_rejected() -> None:
    with pytest.raises(ValueError, match="max_line_length"):
        EventDecoder(max_line_length=-1)


# ----------------------------------------------------------------------------- event length


def test_event_at_limit_is_accepted() -> None:
    # "12345" + LF + "1234": the LF joining the lines counts, as it does in DecodedEvent.data.
    stream = b"data: 12345\ndata: 1234\n\n"
    for split in CHUNKINGS.values():
        decoder = EventDecoder(max_event_length=10)
        assert [e for chunk in split(stream) for e in decoder.feed(chunk)] == [E("12345\n1234")]


@pytest.mark.parametrize("chunking", list(CHUNKINGS))
def test_event_over_limit_raises(chunking: str) -> None:
    decoder = EventDecoder(max_event_length=10)
    chunks = CHUNKINGS[chunking](b"data: 123456\ndata: 1234\n\n")
    with pytest.raises(DecodeError, match=r"max_event_length of 10 characters"):
        _feed_all(decoder, chunks)


def test_empty_data_lines_count_their_line_feeds() -> None:
    decoder = EventDecoder(max_event_length=2)
    assert decoder.feed(b"data\ndata\ndata\n\n") == [E("\n\n")]
    with pytest.raises(DecodeError):
        decoder.feed(b"data\ndata\ndata\ndata\n")


def test_event_limit_counts_characters_not_bytes() -> None:
    decoder = EventDecoder(max_event_length=4)
    assert decoder.feed("data: \u20ac\U0001f600\ndata: \u00e9\n\n".encode()) == [
        E("\u20ac\U0001f600\n\u00e9")
    ]


def test_event_limit_is_per_event() -> None:
    decoder = EventDecoder(max_event_length=3, max_line_length=None)
    assert decoder.feed(b"data: abc\n\n" * 1000) == [E("abc")] * 1000
    # Comments, ids and other fields are not event data.
    assert decoder.feed(b": " + b"c" * 100 + b"\nid: " + b"i" * 100 + b"\ndata: x\n\n") == [
        E("x", id="i" * 100)
    ]


def test_data_lines_without_blank_line_raise_early() -> None:
    # Short lines pass the line limit; the data they pile up must not grow without bound.
    decoder = EventDecoder(max_line_length=16, max_event_length=10_000)
    line = b"data: 0123456789\n"  # 11 characters of data per line, with its joining LF
    fed = 0
    for _ in range(1000):
        try:
            decoder.feed(line * 64)
        except DecodeError as error:
            assert "max_event_length" in str(error)  # noqa: PT017 (must fail in the loop)
            break
        fed += 64 * 11
    # The error came with the chunk that crossed the limit, not later.
    assert 10_000 - 64 * 11 < fed <= 10_000


def test_event_limit_error_discards_chunk_and_rolls_back() -> None:
    decoder = EventDecoder(max_event_length=5)
    assert decoder.feed(b"id: 1\nretry: 10\ndata: a\n\n") == [E("a", id="1", retry=10)]
    with pytest.raises(DecodeError):
        # An event and an id/retry-only block complete before the data grows too long.
        decoder.feed(b"id: 2\ndata: b\n\nretry: 20\nid: 3\n\ndata: far too long\n")
    # Nothing of the failing chunk took effect, as for the line limit.
    assert (decoder.last_event_id, decoder.retry) == ("1", 10)
    assert decoder.feed(b"\xef\xbb\xbfdata: c\n\n") == [E("c", id="1")]  # a new stream


def test_no_event_limit() -> None:
    decoder = EventDecoder(max_line_length=100, max_event_length=None)
    stream = b"data: " + b"x" * 90 + b"\n"
    events = decoder.feed(stream * 1000 + b"\n")
    assert events == [E("\n".join(["x" * 90] * 1000))]


def test_default_event_limit_is_sixteen_mebibytes() -> None:
    assert DEFAULT_MAX_EVENT_LENGTH == 16 * 1024 * 1024
    # Sixteen lines of the longest default length fit; a little more data does not.
    line = b"data:" + b"x" * (DEFAULT_MAX_LINE_LENGTH - 5) + b"\n"
    decoder = EventDecoder()
    for _ in range(16):
        assert decoder.feed(line) == []
    size = 16 * (DEFAULT_MAX_LINE_LENGTH - 5) + 15
    room = DEFAULT_MAX_EVENT_LENGTH - size - 1  # what one more data line may still hold
    assert decoder.feed(b"data:" + b"y" * room + b"\n") == []
    with pytest.raises(DecodeError, match=str(DEFAULT_MAX_EVENT_LENGTH)):
        decoder.feed(b"data\n")


def test_negative_event_limit_rejected() -> None:
    with pytest.raises(ValueError, match="max_event_length"):
        EventDecoder(max_event_length=-1)


def test_helpers_pass_the_event_limit_on() -> None:
    stream = b"data: 1\ndata: 2\n\n"  # data "1\n2": 3 characters
    assert decode_stream(stream, max_event_length=3) == [E("1\n2")]
    with pytest.raises(DecodeError, match="max_event_length of 2"):
        decode_stream(stream, max_event_length=2)

    async def source() -> AsyncIterator[bytes]:
        yield stream

    async def collect(limit: int) -> list[DecodedEvent]:
        return [event async for event in aiter_events(source(), max_event_length=limit)]

    assert asyncio.run(collect(3)) == [E("1\n2")]
    with pytest.raises(DecodeError, match="max_event_length of 2"):
        asyncio.run(collect(2))


# ----------------------------------------------------------------------- helpers & misc


def test_decoded_event_defaults_and_immutability() -> None:
    event = DecodedEvent("x")
    assert (event.data, event.event, event.id, event.retry) == ("x", "message", "", None)
    with pytest.raises(AttributeError):
        event.data = "y"  # type: ignore[misc]


def test_decode_stream_accepts_bytes_and_iterables() -> None:
    stream = b"data: 1\n\ndata: 2\n\ndata: 3"
    expected = [E("1"), E("2")]
    assert decode_stream(stream) == expected
    assert decode_stream([stream[:3], stream[3:]]) == expected
    assert decode_stream(iter(_bytewise(stream))) == expected
    assert decode_stream(bytearray(stream)) == expected  # type: ignore[arg-type]


def test_decode_stream_max_line_length() -> None:
    with pytest.raises(DecodeError):
        decode_stream(b"data: long\n\n", max_line_length=4)


def test_aiter_events() -> None:
    async def source() -> AsyncIterator[bytes]:
        for chunk in (b"data: 1\r", b"\n\r\nevent: e\ndata", b": 2\n\n", b"data: 3\n"):
            yield chunk

    async def collect() -> list[DecodedEvent]:
        return [event async for event in aiter_events(source())]

    assert asyncio.run(collect()) == [E("1"), E("2", "e")]


def test_aiter_events_yields_before_stream_ends() -> None:
    async def source() -> AsyncIterator[bytes]:
        yield b"data: first\n\n"
        raise AssertionError("the first event must be delivered before more input is read")

    async def first() -> DecodedEvent:
        async for event in aiter_events(source()):
            return event
        raise AssertionError("no event")

    assert asyncio.run(first()) == E("first")


def test_many_lines_bytewise_is_fast() -> None:
    # Pending pieces are joined once per line: byte-by-byte feeding must stay linear.
    stream = b"data: " + b"y" * 200_000 + b"\n\n"
    decoder = EventDecoder()
    out: list[DecodedEvent] = []
    for chunk in _chunks(stream, 1):
        out.extend(decoder.feed(chunk))
    assert out == [E("y" * 200_000)]


def _feed_all(decoder: EventDecoder, chunks: list[bytes]) -> None:
    for chunk in chunks:
        decoder.feed(chunk)


def _chunks(stream: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(stream), size):
        yield stream[i : i + size]
