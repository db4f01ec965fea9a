"""Bad field values, at every public entry point, and bad data through a real handler.

Values a stream cannot carry (a line break in an event type, NUL in an id, a negative retry,
...) are refused where they enter: when the message, response or event is built, with an error
whose message names the argument. Items a handler yields are checked when they are sent: the
stream then ends cleanly after the events before it, and the error is logged. Data is never
refused: any string arrives, line breaks as LF and lone surrogates as U+FFFD.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar import Litestar, get
from litestar.exceptions import ImproperlyConfiguredException
from litestar.response import ServerSentEventMessage as LitestarMessage
from litestar.testing import TestClient

from litestar_sse import ServerSentEvent, ServerSentEventMessage, SSEConfig, SSEPlugin
from litestar_sse.broadcast import Broadcaster
from litestar_sse.codec import encode_event
from litestar_sse.codec._decoder import DecodedEvent, EventDecoder
from tests.sse_wire import Ev, LogCapture, both

FAST = settings(max_examples=100, deadline=None)

# -- entry points ----------------------------------------------------------------------------
# Each builds something from one field value and is named after the argument that takes it.

Build = Callable[[Any], object]


def _publish(event: Any) -> object:
    async def scenario() -> None:
        async with Broadcaster() as broadcaster:
            await broadcaster.publish("t", "x", event=event)

    asyncio.run(scenario())
    return None


EVENT_TYPE: dict[str, tuple[str, Build]] = {
    "encode_event": ("event", lambda v: encode_event("x", event=v)),
    "message": ("event", lambda v: ServerSentEventMessage("x", event=v)),
    "response": ("event_type", lambda v: ServerSentEvent([1], event_type=v)),
    "publish": ("event", _publish),
    "broadcaster": ("gap_event", lambda v: Broadcaster(gap_event=v)),
}
EVENT_ID: dict[str, tuple[str, Build]] = {
    "encode_event": ("id", lambda v: encode_event("x", id=v)),
    "message": ("id", lambda v: ServerSentEventMessage("x", id=v)),
    "response": ("event_id", lambda v: ServerSentEvent([1], event_id=v)),
}
RETRY: dict[str, tuple[str, Build]] = {
    "encode_event": ("retry", lambda v: encode_event("x", retry=v)),
    "message": ("retry", lambda v: ServerSentEventMessage("x", retry=v)),
    "response": ("retry_duration", lambda v: ServerSentEvent([1], retry_duration=v)),
    "config": ("retry", lambda v: SSEConfig(retry=v)),
}
COMMENT: dict[str, tuple[str, Build]] = {
    "encode_event": ("comment", lambda v: encode_event("x", comment=v)),
    "message": ("comment", lambda v: ServerSentEventMessage("x", comment=v)),
    "response": ("comment_message", lambda v: ServerSentEvent([1], comment_message=v)),
}


def assert_refused(build: Build, field: str, value: Any, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        build(value)
    # The message starts with the argument's name, so a log line says what was wrong. (A
    # response raises Litestar's ImproperlyConfiguredException, whose str() adds "500: ".)
    message = getattr(info.value, "detail", None) or str(info.value)
    assert message.startswith(f"SSE {field} "), message
    if error is ValueError and field in ("event_type", "event_id", "retry_duration"):
        assert isinstance(info.value, ImproperlyConfiguredException)


# -- strategies ------------------------------------------------------------------------------

_any_text = st.text(st.characters(exclude_categories=()), max_size=20)
_breaks = st.sampled_from(["\r", "\n", "\r\n"])
with_line_break = st.tuples(_any_text, _breaks, _any_text).map("".join)
with_nul = st.tuples(_any_text, st.just("\x00"), _any_text).map("".join)
with_surrogate = st.tuples(_any_text, st.characters(categories=["Cs"]), _any_text).map("".join)
"""Contains a surrogate code point, which UTF-8 cannot carry (paired or not: a Python str
holds code points, and two surrogates in a row are still two of them)."""

# What every entry point accepts: no CR, LF, NUL or surrogate.
good_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\x00"), max_size=20
)

not_a_str = st.one_of(
    st.integers(), st.floats(), st.binary(), st.lists(st.integers(), max_size=2), st.booleans()
)


# -- refused at construction -------------------------------------------------------------------


@FAST
@given(value=st.one_of(with_line_break, with_surrogate))
@pytest.mark.parametrize("entry", list(EVENT_TYPE))
def test_event_type_with_line_break_or_surrogate_is_refused(entry: str, value: str) -> None:
    field, build = EVENT_TYPE[entry]
    assert_refused(build, field, value, ValueError)


@FAST
@given(value=st.one_of(with_line_break, with_nul, with_surrogate))
@pytest.mark.parametrize("entry", list(EVENT_ID))
def test_event_id_with_line_break_nul_or_surrogate_is_refused(entry: str, value: str) -> None:
    field, build = EVENT_ID[entry]
    assert_refused(build, field, value, ValueError)


@FAST
@given(value=st.integers(max_value=-1))
@pytest.mark.parametrize("entry", list(RETRY))
def test_negative_retry_is_refused(entry: str, value: int) -> None:
    field, build = RETRY[entry]
    assert_refused(build, field, value, ValueError)


@FAST
@given(value=st.integers(min_value=2**63) | st.sampled_from([10**4300, 10**5000]))
@pytest.mark.parametrize("entry", list(RETRY))
def test_retry_past_any_client_is_refused(entry: str, value: int) -> None:
    # past 4,300 digits Python cannot even write it: the encoder used to fail mid-stream
    field, build = RETRY[entry]
    assert_refused(build, field, value, ValueError)


@FAST
@given(value=st.one_of(st.floats(), st.text(max_size=5), st.booleans(), st.binary(max_size=3)))
@pytest.mark.parametrize("entry", list(RETRY))
def test_retry_that_is_not_an_int_is_refused(entry: str, value: object) -> None:
    field, build = RETRY[entry]
    assert_refused(build, field, value, ValueError)


@FAST
@given(value=not_a_str)
@pytest.mark.parametrize(
    ("fields", "entry"),
    [(EVENT_TYPE, name) for name in EVENT_TYPE] + [(COMMENT, name) for name in COMMENT],
)
def test_event_type_or_comment_that_is_not_a_str_is_refused(
    fields: dict[str, tuple[str, Build]], entry: str, value: object
) -> None:
    field, build = fields[entry]
    assert_refused(build, field, value, TypeError)


@FAST
@given(value=not_a_str.filter(lambda v: type(v) is not int))
@pytest.mark.parametrize("entry", list(EVENT_ID))
def test_event_id_that_is_not_a_str_or_int_is_refused(entry: str, value: object) -> None:
    field, build = EVENT_ID[entry]
    assert_refused(build, field, value, TypeError)


@FAST
@given(event=good_text, event_id=st.one_of(good_text, st.integers(min_value=0)))
def test_every_entry_point_accepts_values_the_stream_can_carry(
    event: str, event_id: str | int
) -> None:
    # The refusals above are not a blanket "no": what the stream can carry goes through.
    for _, build in EVENT_TYPE.values():
        build(event)
    for _, build in EVENT_ID.values():
        build(event_id)
    for _, build in RETRY.values():
        build(0)


@FAST
@given(comment=_any_text)
def test_any_comment_is_accepted_and_never_makes_an_event(comment: str) -> None:
    # Comments may span lines (one comment line each) and lone surrogates become U+FFFD.
    stream = encode_event(None, comment=comment)
    assert ServerSentEventMessage(None, comment=comment).encode() == stream
    ServerSentEvent([1], comment_message=comment)
    decoder = EventDecoder()
    items = decoder.feed_with_comments(stream)
    assert not [item for item in items if isinstance(item, DecodedEvent)]
    assert len(items) == len(re.split(r"\r\n|\r|\n", comment))


def test_a_huge_rejected_value_gives_a_short_message() -> None:
    with pytest.raises(ValueError, match=r"^SSE id must not contain NUL") as info:
        encode_event("x", id="\x00" + "x" * 4_000_000)
    assert len(str(info.value)) < 200


def test_encode_event_refuses_data_of_the_wrong_type() -> None:
    with pytest.raises(TypeError, match=r"^SSE data must be str, bytes or None, got int"):
        encode_event(5)  # type: ignore[arg-type]


# -- refused when sent: yielded dicts and messages -----------------------------------------------

BAD_ITEMS: dict[str, tuple[Any, str, type[Exception]]] = {
    "event-lf": ({"data": "x", "event": "a\nb"}, "event", ValueError),
    "event-cr": ({"data": "x", "event": "a\rb"}, "event", ValueError),
    "event-crlf": ({"data": "x", "event": "a\r\nb"}, "event", ValueError),
    "event-surrogate": ({"data": "x", "event": "\udc80"}, "event", ValueError),
    "event-not-str": ({"data": "x", "event": 5}, "event", TypeError),
    "id-lf": ({"data": "x", "id": "1\n2"}, "id", ValueError),
    "id-nul": ({"data": "x", "id": "1\x00"}, "id", ValueError),
    "id-surrogate": ({"data": "x", "id": "\ud800"}, "id", ValueError),
    "id-float": ({"data": "x", "id": 1.5}, "id", TypeError),
    "retry-negative": ({"data": "x", "retry": -1}, "retry", ValueError),
    "retry-str": ({"data": "x", "retry": "10"}, "retry", ValueError),
    "retry-bool": ({"data": "x", "retry": True}, "retry", ValueError),
    "retry-huge": ({"data": "x", "retry": 10**5000}, "retry", ValueError),
    "comment-not-str": ({"data": "x", "comment": b"c"}, "comment", TypeError),
    "sep": ({"data": "x", "sep": "\n\n"}, "sep", ValueError),
    # Code written for Litestar's own SSE yields its message class, which checks nothing.
    "litestar-message-event": (LitestarMessage(data="x", event="a\nb"), "event", ValueError),
    "litestar-message-id": (LitestarMessage(data="x", id="a\x00b"), "id", ValueError),
}


@pytest.mark.parametrize("plugin", [False, True], ids=["plain", "plugin"])
@pytest.mark.parametrize("producer", ["async", "sync"])
@pytest.mark.parametrize(("item", "field", "error"), list(BAD_ITEMS.values()), ids=list(BAD_ITEMS))
def test_bad_yielded_item_ends_the_stream_cleanly_and_is_logged(
    item: Any, field: str, error: type[Exception], producer: str, plugin: bool
) -> None:
    items = [{"data": "before", "id": "1"}, item, {"data": "after", "id": "2"}]

    async def agen() -> AsyncIterator[Any]:
        for i in items:
            yield i

    def sgen() -> Iterator[Any]:
        yield from items

    @get("/", sync_to_thread=False)
    def handler() -> ServerSentEvent:
        return ServerSentEvent(agen() if producer == "async" else sgen())

    app = Litestar([handler], plugins=[SSEPlugin()] if plugin else [])
    logs = LogCapture()
    with TestClient(app) as client, logs:
        response = client.get("/")
    assert response.status_code == 200
    body = response.content
    # Nothing of the bad item reached the wire: the body is the first event, whole.
    assert body == b"id: 1\r\ndata: before\r\n\r\n"
    assert both(body) == [Ev("before", id="1")]
    (record,) = logs.errors
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], error)
    assert str(record.exc_info[1]).startswith(f"SSE {field} ")
    assert "the stream was ended" in record.getMessage()


# -- data: anything goes through a real handler ---------------------------------------------------

_NEXT: list[Any] = []


@get("/data", sync_to_thread=False)
def data_handler() -> ServerSentEvent:
    return ServerSentEvent(list(_NEXT))


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient[Litestar]]:
    with TestClient(Litestar([data_handler])) as test_client:
        yield test_client


def as_received(text: str) -> str:
    """What a client reads for ``text``: CR, LF and CRLF as LF; each surrogate code point that
    is not the high half of a pair followed by its low half as U+FFFD."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        following = text[i + 1] if i + 1 < len(text) else ""
        if "\ud800" <= char <= "\udbff" and "\udc00" <= following <= "\udfff":
            out.append(chr(0x10000 + (ord(char) - 0xD800) * 0x400 + ord(following) - 0xDC00))
            i += 2
            continue
        if "\ud800" <= char <= "\udfff":
            out.append("\ufffd")
        elif char == "\r":
            out.append("\n")
            if following == "\n":
                i += 1
        else:
            out.append(char)
        i += 1
    return "".join(out)


_troublesome = st.sampled_from(["\r", "\n", "\r\n", "\x00", "\ufeff", "\u2028", "\ud83d\ude00"])
any_string = st.lists(
    st.one_of(st.characters(exclude_categories=()), st.characters(categories=["Cs"]), _troublesome),
    max_size=30,
).map("".join)
"""Strings of every code point, surrogates (alone or in pairs) and line breaks often."""


@FAST
@given(texts=st.lists(any_string, min_size=1, max_size=3))
def test_any_string_is_delivered_through_a_handler(
    client: TestClient[Litestar], texts: list[str]
) -> None:
    _NEXT[:] = texts
    response = client.get("/data")
    assert response.status_code == 200
    assert both(response.content) == [Ev(as_received(text)) for text in texts]


def test_four_mebibytes_of_data_with_mixed_line_breaks(client: TestClient[Litestar]) -> None:
    rng = random.Random(4)
    lines = ["".join(rng.choice("ab \u00e9\u20ac:") for _ in range(n)) for n in range(200)]
    breaks = ["\r", "\n", "\r\n", "\r\r", "\n\n", "\r\n\r\n"]
    pieces: list[str] = []
    size = 0
    while size < 4 * 1024 * 1024:
        pieces.append(rng.choice(lines) + rng.choice(breaks))
        size += len(pieces[-1])
    data = "".join(pieces)
    _NEXT[:] = [data, "end"]
    response = client.get("/data")
    assert response.status_code == 200
    events = EventDecoder().feed(response.content)
    assert [event.data for event in events] == [re.sub(r"\r\n|\r", "\n", data), "end"]
