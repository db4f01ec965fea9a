"""Stream and ServerSentEvent through a Litestar app, asserted on the bytes that reach the client.

Litestar's TestClient buffers whole responses, so only finite streams are tested here; timing,
disconnects and infinite streams are in test_asgi.py and tests/e2e.
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import httpx_sse
import msgspec
import pytest
from litestar import Litestar, get, route
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import Cookie
from litestar.exceptions import ImproperlyConfiguredException
from litestar.response import ServerSentEvent as LitestarServerSentEvent
from litestar.response import ServerSentEventMessage as LitestarMessage
from litestar.testing import TestClient
from litestar.types import ASGIApp, Receive, Scope, Send

from litestar_sse import RawEvent, ServerSentEvent, ServerSentEventMessage, Stream
from litestar_sse._compat import LITESTAR_3
from litestar_sse.asgi import ASGIStreamingSSEResponse
from tests.backends import on_each_backend
from tests.sse_wire import (
    SSE_CONTENT_TYPE,
    WITHOUT_APP_LOGGING,
    Ev,
    LogCapture,
    Recorder,
    both,
    http_scope,
)

anyio_backend = on_each_backend(__name__)  # asyncio and trio

SSE_HEADERS = {
    "content-type": SSE_CONTENT_TYPE,
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
    "connection": "keep-alive",
}


def serve(
    make: Callable[[], Any], returns: type = ServerSentEvent, **app_kwargs: Any
) -> tuple[Litestar, list[dict[str, Any]]]:
    """An app with GET/HEAD /, returning ``make()``, and the list of ASGI messages it sends."""
    sent: list[dict[str, Any]] = []

    def record(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            async def recording_send(message: Any) -> None:
                sent.append(dict(message))
                await send(message)

            await app(scope, receive, recording_send)

        return middleware

    def handler() -> Any:
        return make()

    # Annotated like real handlers: Litestar picks the response path from the annotation.
    handler.__annotations__["return"] = returns
    route_handler = route("/", http_method=["GET", "HEAD"], sync_to_thread=False)(handler)
    return Litestar([route_handler], middleware=[record], **app_kwargs), sent


def fetch(
    make: Callable[[], Any],
    logs: LogCapture | None = None,
    returns: type = ServerSentEvent,
    **app_kwargs: Any,
) -> tuple[Any, list[dict[str, Any]]]:
    """GET / and return the response and the ASGI messages the app sent.

    ``logs`` is attached to the root logger once the app has configured logging.
    """
    app, sent = serve(make, returns, **app_kwargs)
    with TestClient(app) as client:
        if logs is None:
            response = client.get("/")
        else:
            with logs:
                response = client.get("/")
    return response, sent


def sse_body(make: Callable[[], Any], **app_kwargs: Any) -> bytes:
    response, _ = fetch(make, **app_kwargs)
    assert response.status_code == 200
    assert response.headers["content-type"] == SSE_CONTENT_TYPE
    return bytes(response.content)


# -- content kinds ---------------------------------------------------------------------------


def _sync_gen() -> Iterator[Any]:
    yield "a"
    yield 2
    yield b"c"


async def _async_gen() -> AsyncIterator[Any]:
    yield "a"
    await anyio.lowlevel.checkpoint()
    yield 2
    yield b"c"


class _AsyncIterable:
    def __aiter__(self) -> AsyncIterator[Any]:
        return _async_gen()


class _SyncIterable:
    """Not a list/tuple: iterated in the worker thread."""

    def __iter__(self) -> Iterator[Any]:
        return _sync_gen()


THREE = b"data: a\r\n\r\ndata: 2\r\n\r\ndata: c\r\n\r\n"


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(lambda: ["a", 2, b"c"], id="list"),
        pytest.param(lambda: ("a", 2, b"c"), id="tuple"),
        pytest.param(lambda: iter(["a", 2, b"c"]), id="iterator"),
        pytest.param(_sync_gen, id="sync-generator"),
        pytest.param(_async_gen, id="async-generator"),
        pytest.param(_AsyncIterable, id="async-iterable"),
        pytest.param(_SyncIterable, id="sync-iterable"),
    ],
)
@pytest.mark.parametrize("as_callable", [False, True], ids=["object", "callable"])
def test_content_kinds(content: Callable[[], Any], as_callable: bool) -> None:
    body = sse_body(lambda: ServerSentEvent(content if as_callable else content()))
    assert body == THREE
    assert both(body) == [Ev("a"), Ev("2"), Ev("c")]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("hello", b"data: hello\r\n\r\n"),
        (b"hello", b"data: hello\r\n\r\n"),
        ("two\nlines", b"data: two\r\ndata: lines\r\n\r\n"),
        ("", b"data: \r\n\r\n"),
        (range(3), b"data: 0\r\n\r\ndata: 1\r\n\r\ndata: 2\r\n\r\n"),
    ],
)
def test_single_chunk_and_range_content(content: Any, expected: bytes) -> None:
    body = sse_body(lambda: ServerSentEvent(content))
    assert body == expected
    assert both(body)  # decodes to at least one event in both parsers


def test_callable_returning_str() -> None:
    assert sse_body(lambda: ServerSentEvent(lambda: "hi")) == b"data: hi\r\n\r\n"


def test_mixed_items_decoded_by_both_parsers_and_httpx_sse_client() -> None:
    @dataclasses.dataclass
    class Box:
        n: int

    def make() -> ServerSentEvent:
        return ServerSentEvent(
            [
                "multi\r\nline",
                {"data": {"k": 1}, "event": "obj", "id": "7"},
                ServerSentEventMessage(data="m", retry=100, comment="note"),
                Box(3),
                RawEvent("event: raw\r\ndata: r\r\n\r\n"),
                None,
            ]
        )

    expected = [
        Ev("multi\nline"),
        Ev('{"k":1}', "obj", "7"),
        Ev("m", id="7", retry=100),
        Ev('{"n":3}', id="7"),
        Ev("r", "raw", "7"),
        Ev("null", id="7"),
    ]
    assert both(sse_body(make)) == expected
    app, _ = serve(make)
    with TestClient(app) as client, httpx_sse.connect_sse(client, "GET", "/") as source:
        got = [Ev(e.data, e.event, e.id, e.retry) for e in source.iter_sse()]
    assert got == expected


# -- construction-time validation ----------------------------------------------------------


@pytest.mark.parametrize("content", [1, 1.5, object(), None, True])
@pytest.mark.parametrize("cls", [ServerSentEvent, Stream])
def test_invalid_content_is_refused_at_construction(cls: type[Stream], content: Any) -> None:
    # Litestar's ServerSentEvent raises ImproperlyConfiguredException, its Stream TypeError.
    for expected in (ImproperlyConfiguredException, TypeError):
        with pytest.raises(expected, match="Invalid content of type"):
            cls(content)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"event_type": "a\nb"}, "event"),
        ({"event_type": "a\rb"}, "event"),
        ({"event_id": "a\nb"}, "id"),
        ({"event_id": "a\x00b"}, "id"),
        ({"retry_duration": -1}, "retry"),
        ({"retry_duration": True}, "retry"),
        ({"sep": "\t"}, "sep"),
        ({"ping_interval": 0}, "ping_interval"),
        ({"ping_interval": -1}, "ping_interval"),
        ({"ping_interval": float("nan")}, "ping_interval"),
        ({"ping_interval": float("inf")}, "ping_interval"),
        ({"send_timeout": 0}, "send_timeout"),
        ({"send_timeout": -0.5}, "send_timeout"),
    ],
)
def test_invalid_values_are_refused_at_construction(kwargs: dict[str, Any], name: str) -> None:
    started = []

    def gen() -> Iterator[int]:
        started.append(True)
        yield 1

    with pytest.raises(ValueError, match=name):
        ServerSentEvent(gen(), **kwargs)
    assert started == []


@pytest.mark.parametrize("kwargs", [{"ping_interval": True}, {"send_timeout": "5"}])
def test_durations_of_the_wrong_type_are_a_type_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match=next(iter(kwargs))):
        ServerSentEvent([1], **kwargs)


def test_ping_message_must_be_str() -> None:
    with pytest.raises(TypeError):
        ServerSentEvent([1], ping_message=3)  # type: ignore[arg-type]


# -- headers -------------------------------------------------------------------------------


def test_headers_exactly() -> None:
    response, sent = fetch(lambda: ServerSentEvent([1]))
    assert sorted(response.headers.multi_items()) == sorted(SSE_HEADERS.items())
    assert [m["type"] for m in sent].count("http.response.start") == 1


@pytest.mark.parametrize("name", ["Cache-Control", "cache-control"])
def test_cache_control_can_be_overridden(name: str) -> None:
    response, _ = fetch(lambda: ServerSentEvent([1], headers={name: "no-store"}))
    assert response.headers.get_list("cache-control") == ["no-store"]
    assert response.headers.get_list("x-accel-buffering") == ["no"]


@pytest.mark.parametrize("name", ["X-Accel-Buffering", "x-accel-buffering"])
def test_x_accel_buffering_can_be_overridden(name: str) -> None:
    response, _ = fetch(lambda: ServerSentEvent([1], headers={name: "yes"}))
    assert response.headers.get_list("x-accel-buffering") == ["yes"]
    assert response.headers.get_list("cache-control") == ["no-cache"]


def test_user_connection_header_is_kept() -> None:
    response, _ = fetch(lambda: ServerSentEvent([1], headers={"Connection": "close"}))
    assert response.headers.get_list("connection") == ["close"]


def test_extra_user_headers_and_cookies_and_status() -> None:
    response, _ = fetch(
        lambda: ServerSentEvent(
            [1], headers={"X-Extra": "1"}, cookies=[Cookie(key="c", value="v")], status_code=201
        )
    )
    assert response.status_code == 201
    assert response.headers["x-extra"] == "1"
    assert response.cookies["c"] == "v"
    assert response.headers["content-type"] == SSE_CONTENT_TYPE


@pytest.mark.anyio
@pytest.mark.parametrize(("version", "keep_alive"), [("1.1", True), ("2", False), ("3", False)])
async def test_connection_header_only_on_http11(version: str, keep_alive: bool) -> None:
    @get("/", sync_to_thread=False)
    def handler() -> ServerSentEvent:
        return ServerSentEvent([1])

    send = Recorder()

    async def receive() -> Any:
        await anyio.sleep_forever()

    await Litestar([handler])(http_scope(http_version=version), receive, send)  # type: ignore[arg-type]
    headers = send.headers
    assert ("connection" in headers) is keep_alive
    if keep_alive:
        assert headers["connection"] == "keep-alive"
    assert headers["content-type"] == SSE_CONTENT_TYPE
    assert send.body == b"data: 1\r\n\r\n"


@pytest.mark.anyio
@pytest.mark.parametrize("value", [b"close", b"Close", b"TE, close"])
async def test_no_keep_alive_when_the_client_asks_to_close(value: bytes) -> None:
    # uvicorn answers such a request with "connection: close" itself: a keep-alive of ours
    # would make two contradicting Connection headers.
    response = ASGIStreamingSSEResponse(iterator=[1], item_encoder=lambda i: b"data: %d\n\n" % i)
    send = Recorder()

    async def receive() -> Any:
        await anyio.sleep_forever()

    scope = http_scope()
    scope["headers"] = [*scope["headers"], (b"connection", value)]
    await response(scope, receive, send)  # type: ignore[arg-type]
    assert "connection" not in send.headers
    assert send.body == b"data: 1\n\n"


@pytest.mark.anyio
async def test_asgi_response_h2_has_no_connection_header() -> None:
    response = ASGIStreamingSSEResponse(iterator=[1], item_encoder=lambda i: b"data: %d\n\n" % i)
    send = Recorder()

    async def receive() -> Any:
        await anyio.sleep_forever()

    await response(http_scope(http_version="2"), receive, send)  # type: ignore[arg-type]
    assert "connection" not in send.headers
    assert send.headers["cache-control"] == "no-cache"
    assert send.body == b"data: 1\n\n"


# -- type encoders -------------------------------------------------------------------------


class Money:
    def __init__(self, cents: int) -> None:
        self.cents = cents


def test_app_level_type_encoders() -> None:
    body = sse_body(
        lambda: ServerSentEvent([Money(5), {"data": Money(6)}]),
        type_encoders={Money: lambda m: f"{m.cents}c"},
    )
    assert both(body) == [Ev('"5c"'), Ev('"6c"')]


def test_response_level_type_encoders_override_app_level() -> None:
    body = sse_body(
        lambda: ServerSentEvent([Money(5)], type_encoders={Money: lambda m: {"cents": m.cents}}),
        type_encoders={Money: lambda m: "app"},
    )
    assert both(body) == [Ev('{"cents":5}')]


def test_standard_types_and_typed_objects() -> None:
    class Point(msgspec.Struct):
        x: int

    when = datetime.datetime(2024, 3, 4, 5, 6, 7, tzinfo=datetime.timezone.utc)
    body = sse_body(lambda: ServerSentEvent([when, uuid.UUID(int=3), Point(1), [True, None]]))
    assert both(body) == [
        Ev('"2024-03-04T05:06:07Z"'),
        Ev('"00000000-0000-0000-0000-000000000003"'),
        Ev('{"x":1}'),
        Ev("[true,null]"),
    ]


def test_pydantic_model_in_app() -> None:
    import pydantic

    class Model(pydantic.BaseModel):
        name: str
        when: datetime.date

    body = sse_body(lambda: ServerSentEvent([Model(name="m", when=datetime.date(2024, 1, 1))]))
    assert both(body) == [Ev('{"name":"m","when":"2024-01-01"}')]


# -- separators and response-level fields --------------------------------------------------


@pytest.mark.parametrize("sep", ["\n", "\r", "\r\n"])
def test_separators_are_byte_exact(sep: str) -> None:
    s = sep.encode()
    body = sse_body(
        lambda: ServerSentEvent(
            ["a\r\nb", 1, {"data": "d"}], event_type="e", event_id=9, retry_duration=5, sep=sep
        )
    )
    head = b"event: e" + s + b"id: 9" + s + b"retry: 5" + s
    assert body == (
        head + b"data: a" + s + b"data: b" + s + s
        + head + b"data: 1" + s + s
        + head + b"data: d" + s + s
    )  # fmt: skip
    assert both(body) == [Ev("a\nb", "e", "9", 5), Ev("1", "e", "9", 5), Ev("d", "e", "9", 5)]


def test_response_fields_are_defaults_for_every_event() -> None:
    body = sse_body(
        lambda: ServerSentEvent(
            [
                "plain",
                ServerSentEventMessage(data="msg"),
                {"data": "dict"},
                {"data": "own", "event": "mine", "id": "o"},
            ],
            event_type="t",
            event_id="i",
            retry_duration=10,
            comment_message="c",
        )
    )
    assert body.startswith(b": c\r\nevent: t\r\nid: i\r\nretry: 10\r\ndata: plain\r\n\r\n")
    assert both(body) == [
        Ev("plain", "t", "i", 10),
        Ev("msg", "t", "i", 10),
        Ev("dict", "t", "i", 10),
        Ev("own", "mine", "o", 10),
    ]
    assert body.count(b": c\r\n") == 4
    assert not body.startswith(b"\xef\xbb\xbf")


# -- HEAD ----------------------------------------------------------------------------------


def test_head_request_gets_headers_no_body_and_producer_never_runs() -> None:
    ran: list[str] = []

    async def gen() -> AsyncIterator[int]:
        ran.append("async")
        yield 1

    def sync_gen() -> Iterator[int]:
        ran.append("sync")
        yield 1

    for producer in (gen, sync_gen):
        app, sent = serve(lambda p=producer: ServerSentEvent(p()))  # type: ignore[misc]
        with TestClient(app) as client:
            response = client.head("/")
        assert response.status_code == 200
        assert response.headers["content-type"] == SSE_CONTENT_TYPE
        assert response.headers["cache-control"] == "no-cache"
        assert response.content == b""
        assert [m for m in sent if m["type"] == "http.response.body"] == [
            {"type": "http.response.body", "body": b"", "more_body": False}
        ]
    # give a (wrongly) started worker thread a moment to show itself
    assert ran == []


# -- producer errors -----------------------------------------------------------------------


@pytest.mark.parametrize("logging_config", ["default", "none"])
@pytest.mark.parametrize("kind", ["async", "sync", "encode"])
def test_producer_error_mid_stream(kind: str, logging_config: str) -> None:
    async def agen() -> AsyncIterator[Any]:
        yield "one"
        yield "two"
        raise RuntimeError("producer exploded")

    def sgen() -> Iterator[Any]:
        yield "one"
        yield "two"
        raise RuntimeError("producer exploded")

    def bad_item() -> Iterator[Any]:
        yield "one"
        yield "two"
        yield {"data": 1, "not_a_field": 2}  # ValueError when encoded
        yield "never"

    make = {"async": agen, "sync": sgen, "encode": bad_item}[kind]
    logs = LogCapture()
    app_kwargs = WITHOUT_APP_LOGGING if logging_config == "none" else {}
    response, sent = fetch(lambda: ServerSentEvent(make()), logs, **app_kwargs)
    assert response.status_code == 200
    assert both(response.content) == [Ev("one"), Ev("two")]
    assert [m["type"] for m in sent].count("http.response.start") == 1
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert sum(1 for m in sent if m["type"] == "http.response.body" and not m["more_body"]) == 1
    errors = logs.errors
    assert len(errors) == 1, logs.text
    assert errors[0].exc_info is not None
    expected = ValueError if kind == "encode" else RuntimeError
    assert isinstance(errors[0].exc_info[1], expected)
    assert errors[0].exc_info[2] is not None  # with its traceback
    if logging_config == "none" or LITESTAR_3:  # Litestar 3 apps have no logger of their own
        assert errors[0].name == "litestar_sse"


def test_producer_error_before_first_item() -> None:
    async def agen() -> AsyncIterator[Any]:
        raise RuntimeError("at once")
        yield  # pragma: no cover

    logs = LogCapture()
    response, sent = fetch(lambda: ServerSentEvent(agen()), logs)
    assert response.status_code == 200
    assert response.content == b""
    assert sent[-1]["more_body"] is False
    assert "at once" in str(logs.errors[0].exc_info[1])  # type: ignore[index]


# -- Stream --------------------------------------------------------------------------------


def test_stream_of_str_and_bytes_chunks() -> None:
    async def agen() -> AsyncIterator[str | bytes]:
        yield "caf\u00e9"
        yield b"|raw"

    response, sent = fetch(lambda: Stream(agen(), media_type="text/plain"), returns=Stream)
    assert response.content == "caf\u00e9|raw".encode()
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert [m["body"] for m in sent if m["type"] == "http.response.body"] == [
        "caf\u00e9".encode(),
        b"|raw",
        b"",
    ]
    assert "x-accel-buffering" not in response.headers


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(lambda: ["a", b"b"], id="list"),
        pytest.param(lambda: iter(["a", b"b"]), id="iterator"),
        pytest.param(lambda: "ab", id="str"),
        pytest.param(lambda: b"ab", id="bytes"),
    ],
)
def test_stream_content_kinds(content: Callable[[], Any]) -> None:
    response, _ = fetch(lambda: Stream(content(), media_type="text/plain"), returns=Stream)
    assert response.content == b"ab"


def test_stream_encoding_is_used_for_str_chunks() -> None:
    response, _ = fetch(
        lambda: Stream(["\u00e9"], media_type="text/plain", encoding="latin-1"), returns=Stream
    )
    assert response.content == b"\xe9"


def test_stream_rejects_non_text_items() -> None:
    logs = LogCapture()
    response, sent = fetch(
        lambda: Stream(iter(["ok", 5]), media_type="text/plain"), logs, returns=Stream
    )
    assert response.content == b"ok"
    assert sent[-1]["more_body"] is False
    (error,) = logs.errors
    assert "Stream items must be str or bytes" in str(error.exc_info[1])  # type: ignore[index]


# -- compatibility with Litestar's API -----------------------------------------------------


def _litestar_style_producer() -> Iterator[Any]:
    yield "plain"
    yield 3
    yield b"multi\nline"
    yield {"data": "from dict", "event": "d"}
    yield ServerSentEventMessage(data="ours", event="o")


def test_same_events_as_litestar_for_litestar_style_code() -> None:
    kwargs: dict[str, Any] = {
        "event_type": "tick",
        "event_id": 5,
        "retry_duration": 1000,
        "comment_message": "hello",
        "status_code": 200,
        "encoding": "utf-8",
        "headers": {"X-Custom": "1"},
    }
    ours_body = sse_body(lambda: ServerSentEvent(content=_litestar_style_producer(), **kwargs))

    def litestar_producer() -> Iterator[Any]:
        for item in _litestar_style_producer():
            if isinstance(item, ServerSentEventMessage):
                item = LitestarMessage(data=item.data, event=item.event)
            yield item

    app, _ = serve(
        lambda: LitestarServerSentEvent(content=litestar_producer(), **kwargs),
        returns=LitestarServerSentEvent,
    )
    with TestClient(app) as client:
        theirs_body = client.get("/").content
    # A client sees the same data, event type and id (the response's, on every event). The
    # retry field differs only where Litestar does not repeat it: the client's reconnection
    # time is 1000 ms throughout either way.
    assert [e[:3] for e in both(ours_body)] == [e[:3] for e in both(theirs_body)]
    assert [e.id for e in both(ours_body)] == ["5"] * 5
    assert {e.retry for e in both(ours_body)} == {1000}
    assert len(both(ours_body)) == 5


def test_litestar_message_objects_are_sent_as_messages() -> None:
    body = sse_body(
        lambda: ServerSentEvent(
            [LitestarMessage(data="x", event="e", id="1", retry=5, comment="c")]
        )
    )
    assert both(body) == [Ev("x", "e", "1", 5)]


def test_background_task_runs_after_stream() -> None:
    done: list[str] = []

    def make() -> ServerSentEvent:
        return ServerSentEvent(["a"], background=BackgroundTask(done.append, "background"))

    assert sse_body(make) == b"data: a\r\n\r\n"
    assert done == ["background"]


@pytest.mark.anyio
@pytest.mark.parametrize("ping_interval", [None, 30])
async def test_asgi_sse_response_with_litestar_keyword_arguments(
    ping_interval: float | None,
) -> None:
    async def items() -> AsyncIterator[bytes]:
        yield b"data: one\r\n\r\n"
        yield b"data: two\r\n\r\n"

    ran: list[bool] = []

    async def background() -> None:
        ran.append(True)

    response = ASGIStreamingSSEResponse(
        iterator=items(),
        background=BackgroundTask(background),
        content_length=None,
        cookies=[Cookie(key="k", value="v")],
        encoding="utf-8",
        headers={"x-a": "b"},
        is_head_response=False,
        media_type="text/event-stream",
        status_code=200,
        ping_interval=ping_interval,
    )
    assert response.ping_interval == ping_interval
    send = Recorder()

    async def receive() -> Any:
        await anyio.sleep_forever()

    await response(http_scope(), receive, send)  # type: ignore[arg-type]
    assert send.starts[0]["status"] == 200
    assert send.headers["x-a"] == "b"
    assert send.headers["content-type"] == SSE_CONTENT_TYPE
    assert send.headers["set-cookie"].startswith("k=v")
    assert both(send.chunks) == [Ev("one"), Ev("two")]
    assert send.ended
    assert ran == [True]


@pytest.mark.anyio
async def test_asgi_sse_response_with_sync_iterator_of_bytes_and_str() -> None:
    response = ASGIStreamingSSEResponse(iterator=iter([b"data: a\n\n", "data: b\n\n"]))
    send = Recorder()

    async def receive() -> Any:
        await anyio.sleep_forever()

    await response(http_scope(), receive, send)  # type: ignore[arg-type]
    assert both(send.body) == [Ev("a"), Ev("b")]
    assert send.ended
