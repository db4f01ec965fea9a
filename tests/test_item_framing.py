"""How every kind of item is framed: the stream's separator, comments, line breaks in the data.

Each test reads the bytes a real app sends (Litestar's test client) or an item encoder makes,
with our decoder, httpx_sse and the openai SDK's own decoder (which dispatches an empty event
on every blank line once it has seen an id).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest
from litestar import Litestar, get
from litestar.response import ServerSentEventMessage as LitestarMessage
from litestar.testing import TestClient
from openai._streaming import SSEDecoder

from litestar_sse import (
    RawEvent,
    ServerSentEvent,
    ServerSentEventMessage,
    SSEConfig,
    SSEPlugin,
    event_stream,
)
from litestar_sse._message import make_item_encoder
from litestar_sse.broadcast._events.format import EventFormat
from litestar_sse.codec import encode_event
from litestar_sse.codec._encoder import encode_comment, encode_data
from tests.sse_wire import Ev, both, comments

# -- the stream's separator reaches every item (issue 21, finding 5) ----------------------------


def mixed_items() -> list[Any]:
    return [
        "plain",
        {"data": "dict"},
        ServerSentEventMessage(data="msg"),
        ServerSentEventMessage(data="msg-id", id="7", event="e"),
        LitestarMessage(data="litestar"),
        ServerSentEventMessage(comment="note"),
        ServerSentEventMessage(data="own", sep="\r"),  # its own separator wins
    ]


EXPECTED_LF = (
    b"data: plain\n\n"
    b"data: dict\n\n"
    b"data: msg\n\n"
    b"event: e\nid: 7\ndata: msg-id\n\n"
    b"data: litestar\n\n"
    b": note\n"
    b"data: own\r\r"
)


def body(app: Litestar, path: str = "/") -> bytes:
    with TestClient(app) as client:
        response = client.get(path)
        assert response.status_code == 200
        return response.content


def test_the_responses_separator_reaches_messages() -> None:
    @get("/", sync_to_thread=False)
    def handler() -> ServerSentEvent:
        return ServerSentEvent(mixed_items(), sep="\n")

    assert body(Litestar([handler])) == EXPECTED_LF


def test_the_apps_separator_reaches_messages() -> None:
    @get("/", sync_to_thread=False)
    def handler() -> ServerSentEvent:
        return ServerSentEvent(mixed_items())

    @get("/gen")
    @event_stream
    async def generator() -> AsyncIterator[Any]:
        for item in mixed_items():
            yield item

    config = SSEConfig(sep="\n", ping_interval=None)
    app = Litestar([handler, generator], plugins=[SSEPlugin(config)])
    assert body(app) == EXPECTED_LF
    assert body(app, "/gen") == EXPECTED_LF


def test_a_routes_separator_reaches_messages() -> None:
    @get("/")
    @event_stream(sep="\n")
    async def handler() -> AsyncIterator[ServerSentEventMessage]:
        yield ServerSentEventMessage(data="a", id="1")
        yield ServerSentEventMessage(data="b")

    app = Litestar([handler], plugins=[SSEPlugin(SSEConfig(ping_interval=None))])
    assert body(app) == b"id: 1\ndata: a\n\ndata: b\n\n"


def test_shutdown_and_lifetime_events_take_the_apps_separator() -> None:
    from litestar_sse._plugin.config import AppSSE

    config = SSEConfig(sep="\n", shutdown_event=ServerSentEventMessage(event="bye", data=""))
    assert AppSSE(config).registry.shutdown_event == b"event: bye\ndata: \n\n"


def test_a_message_on_its_own_is_crlf() -> None:
    assert ServerSentEventMessage(data="x").encode() == b"data: x\r\n\r\n"
    assert ServerSentEventMessage(data="x").encode(sep="\n") == b"data: x\n\n"
    assert ServerSentEventMessage(data="x", sep="\r").encode(sep="\n") == b"data: x\r\r"


# -- a message with a comment and no data is a comment (issue 21, finding 6) --------------------


def openai_decoder(body: bytes) -> list[tuple[str | None, str, str | None]]:
    """Events as the openai SDK's decoder dispatches them: (event, data, id)."""
    return [(e.event, e.data, e.id) for e in SSEDecoder().iter_bytes(iter([body]))]


@pytest.mark.parametrize(
    "comment_item",
    [
        ServerSentEventMessage(comment="keep-alive"),
        ServerSentEventMessage(data=None, comment="keep-alive"),
        ServerSentEventMessage(data="", comment="keep-alive"),
        {"comment": "keep-alive"},
        LitestarMessage(comment="keep-alive"),
    ],
    ids=["message", "data=None", "data=''", "dict", "litestar message"],
)
def test_a_comment_only_message_is_no_event_for_any_decoder(comment_item: Any) -> None:
    @get("/", sync_to_thread=False)
    def handler() -> ServerSentEvent:
        first = ServerSentEventMessage(data="1", id="1")
        return ServerSentEvent([first, comment_item, comment_item, "2"])

    raw = body(Litestar([handler]))
    assert raw == b"id: 1\r\ndata: 1\r\n\r\n: keep-alive\r\n: keep-alive\r\ndata: 2\r\n\r\n"
    # Chromium, Node's eventsource and httpx_sse follow the spec; openai-python dispatches on
    # every blank line once it has seen an id (an empty event there breaks its JSON parsing).
    assert both(raw) == [Ev("1", id="1"), Ev("2", id="1")]
    assert openai_decoder(raw) == [(None, "1", "1"), (None, "2", "1")]
    assert comments(raw) == ["keep-alive", "keep-alive"]


def test_a_comment_gets_no_response_level_fields() -> None:
    encode = make_item_encoder(event="tick", id="r1", retry=750, comment="rc")
    assert encode(ServerSentEventMessage(comment="own")) == b": own\r\n"
    assert encode({"comment": "own"}) == b": own\r\n"


def test_a_comment_with_an_event_field_is_still_an_event() -> None:
    raw = ServerSentEventMessage(event="done", comment="c").encode()
    assert raw == b": c\r\nevent: done\r\ndata: \r\n\r\n"
    assert both(raw) == [Ev("", "done")]


def test_an_empty_data_less_message_writes_nothing() -> None:
    assert ServerSentEventMessage(data=None).encode() == b""
    assert encode_event(None) == b""
    assert encode_event(None, comment="c", sep="\n") == b": c\n"
    assert encode_event(None, id="5", sep="\n") == b"id: 5\n\n"  # an id-only block: kept


# -- typed data never carries a raw line break (issue 19, finding 11) ---------------------------

INJECTION = msgspec.Raw(b'"x"\n\nevent: forged\r\nid: forged\rdata: {"admin":true}')


class Named(msgspec.Struct):
    name: str  # annotated str, holding a Raw: the app's bug, still never a forged field


@dataclasses.dataclass
class NamedDC:
    name: str


@pytest.mark.parametrize("kind", [Named, NamedDC], ids=["struct", "dataclass"])
def test_a_raw_in_a_str_field_never_breaks_a_line(kind: Callable[[Any], Any]) -> None:
    encode = make_item_encoder()
    # The same type twice: the second item must be looked at as the first was.
    raw = encode(kind(msgspec.Raw(b'"plain"'))) + encode(kind(INJECTION)) + encode(kind(INJECTION))
    events = both(raw)
    assert [e.event for e in events] == ["message"] * 3
    assert [e.id for e in events] == [""] * 3
    assert events[1].data == '{"name":"x"\n\nevent: forged\nid: forged\ndata: {"admin":true}}'


def test_a_raw_in_a_str_field_never_breaks_a_line_on_the_wire() -> None:
    @get("/")
    @event_stream
    async def handler() -> AsyncIterator[Named]:
        for _ in range(3):
            yield Named(INJECTION)  # type: ignore[arg-type]

    raw = body(Litestar([handler], plugins=[SSEPlugin(SSEConfig(ping_interval=None))]))
    assert [(e.event, e.id) for e in both(raw)] == [("message", "")] * 3
    assert openai_decoder(raw) == [(None, both(raw)[0].data, None)] * 3


# -- a payload of line breaks costs a few passes in C, not a Python call per line --------------
# (issue 19, finding 10)


def python_calls(fn: Callable[[], object]) -> int:
    """How many Python and C function calls ``fn()`` makes (a count, not a time)."""
    calls = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


N = 200_000  # line breaks


@pytest.mark.parametrize(
    ("name", "encode"),
    [
        ("encode_data str", lambda: encode_data("\n" * N, b"\r\n")),
        ("encode_data bytes CRLF", lambda: encode_data(b"\r\n" * N, b"\r\n")),
        ("encode_comment", lambda: encode_comment("\r" * N, b"\r\n")),
        ("item encoder str", lambda: make_item_encoder()("\n" * N)),
        ("item encoder bytes", lambda: make_item_encoder()(b"\n" * N)),
        ("item encoder raw JSON", lambda: make_item_encoder()(msgspec.Raw(b"\n" * N))),
        ("message", lambda: ServerSentEventMessage(data="\n" * N).encode()),
        ("broadcast event", lambda: EventFormat("\r\n", "gap").event(b"1", None, b"\n" * N)),
    ],
)
def test_line_breaks_cost_a_constant_number_of_calls(
    name: str, encode: Callable[[], bytes]
) -> None:
    assert python_calls(encode) < 40  # was one Python-level join step per line: > N


def test_the_wire_cost_of_line_breaks_is_a_prefix_and_a_separator_each() -> None:
    # Each line break is a new data line: "data: " and the separator, 8 bytes with CRLF, the
    # most the protocol can take for one byte of payload.
    raw = make_item_encoder()("\n" * N)
    assert len(raw) == 8 * (N + 1) + 2
    assert raw == b"data: \r\n" * (N + 1) + b"\r\n"
    text = "a\r\nb\rc\nd\u2028e\x85f"  # only CR, LF and CRLF end a line
    assert both(make_item_encoder()(text)) == [Ev("a\nb\nc\nd\u2028e\x85f")]
    assert both(encode_data(text.encode(), b"\n") + b"\n") == [Ev("a\nb\nc\nd\u2028e\x85f")]


def test_a_lone_surrogate_in_a_multi_line_text_is_replaced() -> None:
    assert encode_data("a\ud800\nb", b"\n") == "data: a\ufffd\ndata: b\n".encode()


def test_raw_events_are_not_reframed() -> None:
    assert make_item_encoder(sep="\n")(RawEvent("data: x\r\n\r\n")) == b"data: x\r\n\r\n"
