"""Fuzzing the incremental decoder: arbitrary bytes, arbitrary chunkings, tight limits.

Besides comparing chunkings with each other, the properties compare :class:`EventDecoder`
with ``reference_decode`` below, a second decoder written line by line from the WHATWG
algorithm ("Interpreting an event stream", https://html.spec.whatwg.org/multipage/
server-sent-events.html#event-stream-interpretation). It is deliberately naive: it decodes
the whole input at once and walks it one character at a time, so it shares no code and no
trick (CR/LF replacement, pending pieces, ...) with ours.

The number of examples per property comes from ``SSE_FUZZ_EXAMPLES`` (``make soak`` sets a
large one); the default keeps this file to a few seconds.
"""

from __future__ import annotations

import codecs
import os
from dataclasses import dataclass, field
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from litestar_sse.codec._decoder import DecodedComment, DecodedEvent, DecodeError, EventDecoder

EXAMPLES = int(os.environ.get("SSE_FUZZ_EXAMPLES", "250"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# pytest-timeout's default (60 s) is per test; a soak run with many examples needs more.
pytestmark = pytest.mark.timeout(max(60, EXAMPLES // 20))

Item = DecodedEvent | DecodedComment


# ------------------------------------------------------------------- reference decoder


@dataclass
class Reference:
    """What the spec's algorithm yields for an input, plus the sizes the limits look at."""

    items: list[Item] = field(default_factory=list)
    id_buffer: str = ""
    """The last event ID buffer once every complete line was processed."""
    last_event_id: str = ""
    """The last event ID string: the buffer's value at the last dispatch."""
    retry: int | None = None
    """The reconnection time set by the last valid ``retry`` field."""
    longest_line: int = 0
    """Characters of the longest line, the unterminated last one included."""
    longest_data: int = 0
    """The most characters an event's data reached (joined with LF), dispatched or not."""


def reference_decode_text(text: str) -> Reference:
    """Run the spec's line processing over ``text`` (already UTF-8 decoded, BOM removed)."""
    ref = Reference()
    # "Lines must be separated by either a U+000D CARRIAGE RETURN U+000A LINE FEED (CRLF)
    # character pair, a single U+000A LINE FEED (LF) character, or a single U+000D CARRIAGE
    # RETURN (CR) character."
    lines: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\r":
            lines.append("".join(current))
            current = []
            if i + 1 < len(text) and text[i + 1] == "\n":
                i += 1
        elif char == "\n":
            lines.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    # "Once the end of the file is reached, any pending data must be discarded."
    ref.longest_line = max([len(current), *map(len, lines)])

    data_buffer = ""
    event_type_buffer = ""
    block_retry: int | None = None  # ours reports the block's valid retry on DecodedEvent

    for line in lines:
        if line == "":
            # Dispatch the event.
            # 1. "Set the last event ID string of the event source to the value of the last
            #    event ID buffer."
            ref.last_event_id = ref.id_buffer
            # 2. "If the data buffer is an empty string, set the data buffer and the event type
            #    buffer to the empty string and return."
            if data_buffer != "":
                # 3. "If the data buffer's last character is a U+000A LINE FEED (LF)
                #    character, then remove the last character from the data buffer."
                data = data_buffer[:-1] if data_buffer.endswith("\n") else data_buffer
                # 5./6. type "message" unless the event type buffer is not empty.
                event_type = event_type_buffer if event_type_buffer != "" else "message"
                ref.items.append(DecodedEvent(data, event_type, ref.last_event_id, block_retry))
            # 7. "Set the data buffer and the event type buffer to the empty string."
            data_buffer = ""
            event_type_buffer = ""
            block_retry = None
            continue
        if line.startswith(":"):
            # "If the line starts with a U+003A COLON character (:): Ignore the line."
            # (DecodedComment: the text after the colon, less one leading space.)
            comment = line[1:]
            ref.items.append(DecodedComment(comment[1:] if comment.startswith(" ") else comment))
            continue
        if ":" in line:
            # "Collect the characters on the line before the first U+003A COLON character
            # (:), and let field be that string. Collect the characters on the line after
            # the first U+003A COLON character (:), and let value be that string. If value
            # starts with a U+0020 SPACE character, remove it from value."
            colon = line.index(":")
            name, value = line[:colon], line[colon + 1 :]
            if value.startswith(" "):
                value = value[1:]
        else:
            # "using the whole line as the field name, and the empty string as the field value"
            name, value = line, ""
        if name == "event":
            event_type_buffer = value
        elif name == "data":
            # "Append the field value to the data buffer, then append a single U+000A LINE
            # FEED (LF) character to the data buffer."
            data_buffer += value + "\n"
            ref.longest_data = max(ref.longest_data, len(data_buffer) - 1)
        elif name == "id":
            # "If the field value does not contain U+0000 NULL, then set the last event ID
            # buffer to the field value. Otherwise, ignore the field."
            if "\x00" not in value:
                ref.id_buffer = value
        elif name == "retry":
            reconnection_time = _retry_value(value)
            if reconnection_time is not None:
                ref.retry = block_retry = reconnection_time
        # "Otherwise: The field is ignored."
    return ref


def _retry_value(value: str) -> int | None:
    # "If the field value consists of only ASCII digits, then interpret the field value as an
    # integer in base ten, and set the event stream's reconnection time to that integer.
    # Otherwise, ignore the field." (An empty value is taken as not a number.)
    if not value or any(c not in "0123456789" for c in value):
        return None
    # The one documented deviation: past Python's int/str conversion limit (thousands of
    # significant digits) a retry value is ignored. Leading zeros do not count.
    try:
        return int(value.lstrip("0") or "0")
    except ValueError:
        return None


def strip_bom(text: str) -> str:
    # The UTF-8 decode algorithm ignores one leading BOM.
    return text[1:] if text.startswith("\ufeff") else text


def reference_decode(stream: bytes) -> Reference:
    """The spec's result for a complete stream: UTF-8 decode with replacement, then lines."""
    return reference_decode_text(strip_bom(stream.decode("utf-8", "replace")))


def reference_decode_received(stream: bytes) -> Reference:
    """The spec's result for what has been *received*: a trailing incomplete UTF-8 sequence
    is not a character yet (it may still complete), so it is left out, not replaced."""
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(stream, final=False)
    return reference_decode_text(strip_bom(text))


# ------------------------------------------------------------------------- our decoder


@dataclass(frozen=True)
class Outcome:
    """Everything a decoder exposes after a stream, for comparing chunkings."""

    items: list[Item]
    events: list[DecodedEvent]
    id_before_close: str
    retry_before_close: int | None
    id_after_close: str
    retry_after_close: int | None


def run(chunks: list[bytes]) -> Outcome:
    with_comments = EventDecoder()
    events_only = EventDecoder()
    items: list[Item] = []
    events: list[DecodedEvent] = []
    for chunk in chunks:
        items.extend(with_comments.feed_with_comments(chunk))
        events.extend(events_only.feed(chunk))
    before = (with_comments.last_event_id, with_comments.retry)
    assert (events_only.last_event_id, events_only.retry) == before
    with_comments.close()
    return Outcome(items, events, *before, with_comments.last_event_id, with_comments.retry)


def expected_outcome(ref: Reference) -> Outcome:
    return Outcome(
        ref.items,
        [item for item in ref.items if isinstance(item, DecodedEvent)],
        ref.id_buffer,
        ref.retry,
        ref.last_event_id,
        ref.retry,
    )


# --------------------------------------------------------------------------- strategies

TOKENS = [
    # field names, with and without the colon and the optional space
    b"data:", b"data: ", b"data", b"id:", b"id: ", b"id", b"event:", b"event: ", b"retry:",
    b"retry: ", b"retry", b"Data:", b"foo:", b":", b": ", b"::", b" ",
    # line breaks, alone and in the pairs that must not become two lines
    b"\r", b"\n", b"\r\n", b"\n\r", b"\r\r\n",
    # NUL, a BOM (only the first one of a stream is dropped), part of a BOM
    b"\x00", b"\xef\xbb\xbf", b"\xef\xbb",
    # invalid UTF-8: stray bytes, truncated sequences, an encoded surrogate, an overlong form
    b"\xff", b"\xfe", b"\x80", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xed\xa0\x80", b"\xc0\xaf",
    # valid multi-byte characters, including Unicode line breaks that are not SSE ones
    "\u00e9".encode(), "\u20ac".encode(), "\U0001f600".encode(), "\u2028".encode(),
    "\x85".encode(),
    # digits, for retry (the last one is an Arabic-Indic digit, not an ASCII one)
    b"0", b"7", b"42", b"007", b"9" * 25, b"-1", b"\xd9\xa1",
    b"x", b"xxxxxxxx", b"hello",
]  # fmt: skip

_digits = st.integers(min_value=0, max_value=10**12).map(lambda n: str(n).encode())
_token = st.one_of(st.sampled_from(TOKENS), _digits, st.binary(max_size=3))
token_soup = st.lists(_token, max_size=80).map(b"".join)
"""Byte strings glued from SSE-ish tokens in any order."""

_no_break = st.one_of(
    st.sampled_from([b"x", b"yy", b" ", b":", b"\x00", b"\xff", b"\xe2\x82", b"\xef\xbb\xbf"]),
    st.sampled_from(["\u00e9".encode(), "\U0001f600".encode(), b"\t", b"0", b"12"]),
    _token,
).filter(lambda t: b"\r" not in t and b"\n" not in t)
_value = st.lists(_no_break, max_size=4).map(b"".join)
_id_value = st.lists(st.sampled_from([b"1", b"a-7", b"\x00", b" ", b"\xff", b"\xc3"]), max_size=3)
_retry_text = st.one_of(
    _digits,
    st.sampled_from([b"", b"007", b" 1", b"1 ", b"-1", b"1.5", b"1e3", b"\xd9\xa1", b"9" * 30]),
)
_colon = st.sampled_from([b":", b": ", b":  ", b"", b"::"])
_line_end = st.sampled_from(
    [b"\n", b"\r", b"\r\n", b"\n\n", b"\r\r", b"\r\n\r\n", b"\n\r", b"\r\n\n", b""]
)


def _line(names: list[bytes], values: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.tuples(st.sampled_from(names), _colon, values, _line_end).map(b"".join)


_lines = st.one_of(
    _line([b"data"], _value),
    _line([b"id"], _id_value.map(b"".join)),
    _line([b"event"], _value),
    _line([b"retry"], _retry_text),
    _line([b""], _value),  # comments
    _line([b"Data", b"dat", b"foo", b"data ", b" data", b"id\x00"], _value),  # ignored fields
    _line_end,  # blank lines
    _token,  # junk
)
field_lines = st.tuples(
    st.sampled_from([b"", b"", b"\xef\xbb\xbf", b"\xef\xbb"]),
    st.lists(_lines, min_size=1, max_size=40).map(b"".join),
).map(b"".join)
"""Streams made of lines that mostly mean something: fields, comments, blank lines, with
junk values, every line ending and an occasional (partial) BOM in front."""

_single_end = st.sampled_from([b"\n", b"\r", b"\r\n"])
_data_line = st.tuples(st.just(b"data"), _colon, _value, _single_end).map(b"".join)
event_heavy = st.lists(
    st.one_of(
        _data_line,
        _data_line,
        _line([b"id"], _id_value.map(b"".join)),
        _line([b"retry"], _retry_text),
        _single_end,
    ),
    min_size=1,
    max_size=40,
).map(b"".join)
"""Mostly ``data`` lines, some ids, retries and blank lines: events of every length."""

streams = st.one_of(st.binary(max_size=300), token_soup, field_lines, field_lines)


@st.composite
def chunked(
    draw: st.DrawFn, payloads: st.SearchStrategy[bytes] = streams
) -> tuple[bytes, list[bytes]]:
    """A stream and one way of cutting it into chunks (empty chunks included)."""
    stream = draw(payloads)
    cuts = draw(st.lists(st.integers(min_value=0, max_value=len(stream)), max_size=16))
    points = [0, *sorted(cuts), len(stream)]
    return stream, [stream[a:b] for a, b in pairwise(points)]


def bytewise(stream: bytes) -> list[bytes]:
    return [stream[i : i + 1] for i in range(len(stream))]


# ---------------------------------------------------------------------------- properties


@FUZZ
@given(case=chunked())
def test_chunking_never_changes_the_result(case: tuple[bytes, list[bytes]]) -> None:
    """One piece, byte at a time or any chunks: the same events, comments, id and retry."""
    stream, chunks = case
    whole = run([stream])
    assert run(bytewise(stream)) == whole
    assert run(chunks) == whole
    assert whole.events == [item for item in whole.items if isinstance(item, DecodedEvent)]


@FUZZ
@given(case=chunked())
def test_agrees_with_the_spec_reference(case: tuple[bytes, list[bytes]]) -> None:
    """Under the limits, ours and the naive spec reading agree on everything they expose."""
    stream, chunks = case
    assert run(chunks) == expected_outcome(reference_decode(stream))


def _limit_near(size: int) -> st.SearchStrategy[int | None]:
    # Around the size the stream actually reaches, so that limits are crossed often, at
    # every possible place, and sometimes not at all.
    return st.none() | st.integers(min_value=0, max_value=size + 1)


@FUZZ
@given(case=chunked(st.one_of(streams, event_heavy)), data=st.data())
def test_limits_fail_exactly_when_crossed_and_leave_a_usable_decoder(
    case: tuple[bytes, list[bytes]], data: st.DataObject
) -> None:
    """With tight limits, for any chunking:

    * the only exception is DecodeError, raised by exactly the first chunk after which a line
      (terminated or not) is longer than ``max_line_length`` or an event's data is longer than
      ``max_event_length``. So the error comes no later than one chunk past the limit, and the
      decoder never holds more than ``max_line_length`` characters of a line or
      ``max_event_length`` of an event's data;
    * what was returned before it is what the spec yields for the chunks before that one;
    * afterwards the decoder is reset as by ``close()``: ``last_event_id`` and ``retry`` are
      those of the chunks before, and it reads a new stream (leading BOM included) normally.
    """
    stream, chunks = case
    sizes = reference_decode_received(stream)
    # Often only the event limit: the line limit, checked first, would hide it.
    max_line_length = data.draw(
        st.none() | st.none() | _limit_near(sizes.longest_line), label="max_line_length"
    )
    max_event_length = data.draw(_limit_near(sizes.longest_data), label="max_event_length")
    decoder = EventDecoder(max_line_length=max_line_length, max_event_length=max_event_length)
    items: list[Item] = []
    failed_at: int | None = None
    for index, chunk in enumerate(chunks):
        try:
            items.extend(decoder.feed_with_comments(chunk))
        except DecodeError:
            failed_at = index
            break

    def over_limit(ref: Reference) -> bool:
        return (max_line_length is not None and ref.longest_line > max_line_length) or (
            max_event_length is not None and ref.longest_data > max_event_length
        )

    # Sizes only grow as the stream goes on, so "the first chunk after which a limit is
    # exceeded" is: within the limits before it, past them with it.
    if failed_at is None:
        assert not over_limit(reference_decode_received(b"".join(chunks)))
        assert items == reference_decode(b"".join(chunks)).items
        return
    before = reference_decode_received(b"".join(chunks[:failed_at]))
    assert not over_limit(before)
    assert over_limit(reference_decode_received(b"".join(chunks[: failed_at + 1])))
    assert items == before.items
    assert decoder.last_event_id == before.last_event_id
    assert decoder.retry == before.retry
    # Usable again, as for a new stream after a reconnect (its lines fit any limit >= 4).
    if max_line_length is not None and max_line_length < 4:
        assert decoder.feed(b"\xef\xbb\xbf\r\n\n") == []
        assert decoder.last_event_id == before.last_event_id
        return
    new_stream = b"\xef\xbb\xbfdata\r\n\r\nid:z\n\n"
    assert decoder.feed(new_stream) == [DecodedEvent("", id=before.last_event_id)]
    assert decoder.last_event_id == "z"


@FUZZ
@given(
    lines=st.lists(
        st.sampled_from([b"data", b"data:", b"data: x", b"data:yy", b": c"]), min_size=1
    ),
    chunk_size=st.integers(min_value=1, max_value=64),
    max_event_length=st.integers(min_value=0, max_value=40),
    sep=st.sampled_from([b"\n", b"\r", b"\r\n"]),
)
def test_data_lines_without_a_blank_line_are_bounded(
    lines: list[bytes], chunk_size: int, max_event_length: int, sep: bytes
) -> None:
    """Short ``data`` lines that never end their event: the line limit alone would never
    trip. The event limit does, at the chunk that takes the data past it."""
    stream = sep.join(lines) + sep
    data = [line.partition(b":")[2].removeprefix(b" ") for line in lines if line != b": c"]
    length = len(b"\n".join(data)) if data else 0
    decoder = EventDecoder(max_line_length=16, max_event_length=max_event_length)
    fed = 0
    error: DecodeError | None = None
    for start in range(0, len(stream), chunk_size):
        try:
            decoder.feed(stream[start : start + chunk_size])
        except DecodeError as exc:
            error = exc
            break
        fed = start + chunk_size
    if error is None:
        assert length <= max_event_length
        return
    assert "max_event_length" in str(error)
    assert length > max_event_length
    # Everything fed before the failing chunk was within the limit.
    assert reference_decode_received(stream[:fed]).longest_data <= max_event_length
