"""Drop-in: tests written the way a Litestar user tests Litestar's own SSE classes.

Every test body takes the classes from ``impl``, and runs once with Litestar's own
``litestar.response`` classes and once with litestar_sse's: what passes for Litestar must pass
for us after changing only the import. Running Litestar's side too keeps the tests honest: a
test that stops passing for Litestar is a test of the wrong behaviour. The suite runs on every
Litestar we support (``make test-litestar``); ping tests run for Litestar's classes only where
Litestar has pings (3.x).

Client-visible behaviour is what is compared (events as httpx-sse parses them, headers,
exceptions), not the exact bytes: the differences in bytes are listed, with their reasons, on
the migration page (docs/migration/from-litestar.rst). Handlers are annotated with the class
they return, as Litestar needs (so annotations are evaluated: no ``from __future__``).
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from types import SimpleNamespace
from typing import Any

import httpx_sse
import litestar.response
import litestar.response.sse
import pytest
from litestar import get
from litestar.exceptions import ImproperlyConfiguredException
from litestar.testing import RequestFactory, create_async_test_client

import litestar_sse
from litestar_sse._compat import LITESTAR_3
from litestar_sse.codec import DecodedComment, EventDecoder

pytestmark = pytest.mark.anyio

LITESTAR = SimpleNamespace(
    name="litestar",
    ServerSentEvent=litestar.response.ServerSentEvent,
    ServerSentEventMessage=litestar.response.ServerSentEventMessage,
    Stream=litestar.response.Stream,
    ASGIStreamingSSEResponse=getattr(litestar.response.sse, "ASGIStreamingSSEResponse", None),
)
OURS = SimpleNamespace(
    name="litestar_sse",
    ServerSentEvent=litestar_sse.ServerSentEvent,
    ServerSentEventMessage=litestar_sse.ServerSentEventMessage,
    Stream=litestar_sse.Stream,
    ASGIStreamingSSEResponse=litestar_sse.asgi.ASGIStreamingSSEResponse,
)
BOTH = [pytest.param(LITESTAR, id="litestar"), pytest.param(OURS, id="litestar_sse")]
# Litestar's ServerSentEvent pings from 3.0 on; its ASGIStreamingSSEResponse exists from 3.0.
WITH_PINGS = [
    pytest.param(impl, id=impl.name)
    for impl in (LITESTAR, OURS)
    if "ping_interval" in impl.ServerSentEvent.__init__.__code__.co_varnames
]
WITH_ASGI_CLASS = [
    pytest.param(impl, id=impl.name)
    for impl in (LITESTAR, OURS)
    if impl.ASGIStreamingSSEResponse is not None
]


async def events_of(handler: Any, path: str = "/") -> list[httpx_sse.ServerSentEvent]:
    async with (
        create_async_test_client(handler) as client,
        httpx_sse.aconnect_sse(client, "GET", f"{client.base_url}{path}") as source,
    ):
        return [event async for event in source.aiter_sse()]


async def body_of(handler: Any, path: str = "/") -> tuple[dict[str, str], bytes]:
    async with create_async_test_client(handler) as client:
        response = await client.get(path)
    assert response.status_code == 200
    return dict(response.headers), response.content


def to_asgi_arguments(request: Any) -> dict[str, Any]:
    """``to_asgi_response`` keywords of the installed Litestar (2.x takes ``app`` too)."""
    return {"request": request} if LITESTAR_3 else {"app": None, "request": request}


def fields(events: list[httpx_sse.ServerSentEvent]) -> list[tuple[str, str, str, int | None]]:
    return [(e.event, e.data, e.id, e.retry) for e in events]


# -- items and response-level fields --------------------------------------------------------


@pytest.mark.parametrize("kind", ["str", "bytes", "int"])
@pytest.mark.parametrize("impl", BOTH)
async def test_plain_items_carry_the_response_fields(impl: Any, kind: str) -> None:
    convert: dict[str, Callable[[int], Any]] = {
        "str": str,
        "bytes": lambda i: str(i).encode(),
        "int": int,
    }

    async def numbers() -> AsyncIterator[Any]:
        for i in range(1, 4):
            await asyncio.sleep(0)
            yield convert[kind](i)

    @get("/")
    async def handler() -> impl.ServerSentEvent:
        return impl.ServerSentEvent(numbers(), event_type="tick", event_id="7", retry_duration=1500)

    assert fields(await events_of(handler)) == [("tick", str(i), "7", 1500) for i in (1, 2, 3)]


@pytest.mark.parametrize("impl", BOTH)
async def test_dict_and_message_items_keep_their_fields_and_the_client_keeps_the_id(
    impl: Any,
) -> None:
    async def steps() -> AsyncIterator[Any]:
        for i in (1, 2):
            yield {"data": i, "event": "first", "retry": 1000}
            yield {"data": 2 * i, "event": "second", "retry": 10}
            yield impl.ServerSentEventMessage(data=f"m{i}", event="third")

    @get("/")
    async def handler() -> impl.ServerSentEvent:
        return impl.ServerSentEvent(steps(), event_type="special", event_id="123")

    events = await events_of(handler)
    assert [(e.event, e.data) for e in events] == [
        ("first", "1"),
        ("second", "2"),
        ("third", "m1"),
        ("first", "2"),
        ("second", "4"),
        ("third", "m2"),
    ]
    # The response's id reaches the client with the first event and stays its last event id.
    assert {e.id for e in events} == {"123"}
    assert [e.retry for e in events if e.event != "third"] == [1000, 10, 1000, 10]


@pytest.mark.parametrize("impl", BOTH)
async def test_messages_with_default_data_and_with_a_comment_are_events(impl: Any) -> None:
    async def items() -> AsyncIterator[Any]:
        yield impl.ServerSentEventMessage(event="empty")
        yield impl.ServerSentEventMessage(event="commented", comment="not for the client")
        yield impl.ServerSentEventMessage(data=5, event="number", id="n", retry=3)

    @get("/")
    async def handler() -> impl.ServerSentEvent:
        return impl.ServerSentEvent(items())

    assert fields(await events_of(handler)) == [
        ("empty", "", "", None),
        ("commented", "", "", None),
        ("number", "5", "n", 3),
    ]


@pytest.mark.parametrize("impl", BOTH)
async def test_multi_line_text_is_one_event_of_several_data_lines(impl: Any) -> None:
    @get("/")
    async def handler() -> impl.ServerSentEvent:
        return impl.ServerSentEvent(["one\ntwo\r\nthree", "four"])

    assert [e.data for e in await events_of(handler)] == ["one\ntwo\nthree", "four"]


# -- content --------------------------------------------------------------------------------


def _sync_numbers() -> Iterator[str]:
    yield from ("0", "1", "2")


async def _async_numbers() -> AsyncIterator[str]:
    for text in ("0", "1", "2"):
        yield text


CONTENTS: dict[str, tuple[Callable[[], Any], list[str]]] = {
    "str": (lambda: "single", ["single"]),
    "bytes": (lambda: b"single", ["single"]),
    "list": (lambda: ["0", "1", "2"], ["0", "1", "2"]),
    "sync generator": (_sync_numbers, ["0", "1", "2"]),
    "async generator": (_async_numbers, ["0", "1", "2"]),
    "callable": (lambda: _sync_numbers, ["0", "1", "2"]),
}


@pytest.mark.parametrize("content", list(CONTENTS))
@pytest.mark.parametrize("impl", BOTH)
async def test_every_kind_of_content(impl: Any, content: str) -> None:
    make, expected = CONTENTS[content]

    @get("/")
    async def handler() -> impl.ServerSentEvent:
        return impl.ServerSentEvent(make())

    assert [e.data for e in await events_of(handler)] == expected


@pytest.mark.parametrize("impl", BOTH)
def test_content_that_cannot_stream_is_refused_when_the_response_is_created(impl: Any) -> None:
    with pytest.raises(ImproperlyConfiguredException):
        impl.ServerSentEvent(content=object())


@pytest.mark.parametrize("content", [1, None])
@pytest.mark.parametrize("impl", BOTH)
def test_a_stream_of_content_that_is_not_iterable_raises_type_error(
    impl: Any, content: Any
) -> None:
    # Litestar's Stream fails when the response is built, ours when it is created: both
    # inside the block, as in Litestar's own test of this.
    with pytest.raises(TypeError):
        impl.Stream(content).to_asgi_response(**to_asgi_arguments(RequestFactory().get("/")))


@pytest.mark.parametrize("impl", BOTH)
async def test_a_stream_response_sends_its_chunks(impl: Any) -> None:
    @get("/")
    async def handler() -> impl.Stream:
        return impl.Stream(_sync_numbers(), media_type="text/plain")

    headers, body = await body_of(handler)
    assert body == b"012"
    assert headers["content-type"].startswith("text/plain")


# -- headers --------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", BOTH)
async def test_event_stream_headers_status_and_user_headers(impl: Any) -> None:
    @get("/")
    async def handler() -> impl.ServerSentEvent:
        return impl.ServerSentEvent(
            ["x"], headers={"X-Mine": "1", "Cache-Control": "no-store"}, status_code=200
        )

    headers, _ = await body_of(handler)
    assert headers["content-type"] == "text/event-stream; charset=utf-8"
    assert headers["cache-control"] == "no-store"  # a user's value wins
    assert headers["x-accel-buffering"] == "no"
    assert headers["connection"] == "keep-alive"  # HTTP/1.1
    assert headers["x-mine"] == "1"


@pytest.mark.parametrize("impl", BOTH)
def test_the_built_asgi_response_already_has_the_event_stream_headers(impl: Any) -> None:
    request = RequestFactory().get("/")
    sse = impl.ServerSentEvent(["a"], headers={"x-mine": "1"})
    headers = sse.to_asgi_response(**to_asgi_arguments(request)).encode_headers()
    for expected in [
        (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no"),
        (b"connection", b"keep-alive"),
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"x-mine", b"1"),
    ]:
        assert expected in headers


# -- pings ----------------------------------------------------------------------------------


def comments_and_events(body: bytes) -> tuple[list[str], list[str]]:
    decoder = EventDecoder()
    items = list(decoder.feed_with_comments(body))
    comments = [item.text for item in items if isinstance(item, DecodedComment)]
    data = [item.data for item in items if not isinstance(item, DecodedComment)]
    return comments, data


@pytest.mark.parametrize("impl", WITH_PINGS)
async def test_an_idle_stream_is_pinged_with_comments(impl: Any) -> None:
    async def slow() -> AsyncIterator[str]:
        await asyncio.sleep(0.35)
        yield "done"

    @get("/")
    async def handler() -> impl.ServerSentEvent:
        return impl.ServerSentEvent(slow(), ping_interval=0.1)

    _, body = await body_of(handler)
    comments, data = comments_and_events(body)
    assert 1 <= len(comments) <= 4
    assert set(comments) == {"ping"}
    assert data == ["done"]  # pings are not events
    assert b"event: ping" not in body


@pytest.mark.parametrize("impl", WITH_PINGS)
async def test_pings_never_break_events_that_flow(impl: Any) -> None:
    async def steady() -> AsyncIterator[str]:
        for i in range(20):
            await asyncio.sleep(0.02)
            yield str(i)

    @get("/")
    async def handler() -> impl.ServerSentEvent:
        return impl.ServerSentEvent(steady(), ping_interval=0.05)

    _, body = await body_of(handler)
    assert comments_and_events(body)[1] == [str(i) for i in range(20)]


@pytest.mark.parametrize("impl", WITH_PINGS)
async def test_a_short_stream_with_a_long_interval_is_not_pinged(impl: Any) -> None:
    @get("/")
    async def handler() -> impl.ServerSentEvent:
        return impl.ServerSentEvent(["a", "b"], ping_interval=99999)

    _, body = await body_of(handler)
    assert comments_and_events(body) == ([], ["a", "b"])


@pytest.mark.parametrize("value", [0, -1])
@pytest.mark.parametrize("impl", WITH_PINGS)
def test_a_ping_interval_that_is_not_positive_is_refused(impl: Any, value: float) -> None:
    with pytest.raises(ImproperlyConfiguredException, match="ping_interval must be a positive"):
        impl.ServerSentEvent(["a"], ping_interval=value)


@pytest.mark.parametrize("impl", WITH_ASGI_CLASS)
async def test_the_asgi_class_built_directly_sends_its_chunks(impl: Any) -> None:
    async def chunks() -> AsyncIterator[str]:
        yield "data: hello\r\n\r\n"
        yield "data: world\r\n\r\n"

    response = impl.ASGIStreamingSSEResponse(
        iterator=chunks(), ping_interval=0.1, media_type="text/event-stream", status_code=200
    )
    sent: list[bytes] = []

    async def send(message: Any) -> None:
        if message["type"] == "http.response.body":
            sent.append(message.get("body", b""))

    async def receive() -> Any:
        await asyncio.sleep(10)
        return {"type": "http.disconnect"}

    await response.send_body(send, receive)
    assert comments_and_events(b"".join(sent))[1] == ["hello", "world"]
