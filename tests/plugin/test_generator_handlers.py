"""Generator handlers: a handler that yields, marked as an event stream, streams SSE."""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Generator,
    Iterable,
    Iterator,
)
from typing import Any, TypedDict

import anyio
import anyio.lowlevel
import msgspec
import pydantic
import pytest
from litestar import Litestar, Request, Response, delete, get, patch, post, put
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.exceptions import ImproperlyConfiguredException, NotAuthorizedException
from litestar.handlers import BaseRouteHandler
from litestar.params import JSONBody
from litestar.response import ServerSentEventMessage as LitestarMessage
from litestar.testing import TestClient

from litestar_sse import (
    RawEvent,
    ServerSentEvent,
    ServerSentEventMessage,
    SSEConfig,
    SSEPlugin,
    event_stream,
)
from litestar_sse.testing import sse_stream
from tests.backends import on_each_backend
from tests.sse_wire import WITHOUT_APP_LOGGING, Ev, both

anyio_backend = on_each_backend(__name__)  # asyncio and trio


class Token(msgspec.Struct):
    text: str
    index: int


class Prompt(msgspec.Struct):
    text: str


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Model(pydantic.BaseModel):
    name: str


class Pair(TypedDict):
    a: int


def serve(
    *handlers: Any, config: SSEConfig | None = None, **app_kwargs: Any
) -> TestClient[Litestar]:
    app = Litestar(
        list(handlers), plugins=[SSEPlugin(config or SSEConfig(ping_interval=None))], **app_kwargs
    )
    return TestClient(app)


def body_of(client: TestClient[Litestar], method: str, path: str, **kwargs: Any) -> bytes:
    # A client of its own per call: Litestar 3's TestClient cannot be entered twice.
    with TestClient(client.app) as fresh, sse_stream(fresh, method, path, **kwargs) as stream:
        assert stream.status_code in (200, 201), stream.read()
        assert stream.headers["content-type"] == "text/event-stream; charset=utf-8"
        return stream.read()


# -- what makes a handler an event stream ------------------------------------------------


@pytest.mark.parametrize("annotation", ["AsyncIterator", "AsyncIterable", "AsyncGenerator"])
def test_async_generator_with_media_type_marker(annotation: str) -> None:
    async def gen() -> Any:
        for i in range(3):
            yield i

    gen.__annotations__["return"] = {
        "AsyncIterator": AsyncIterator[int],
        "AsyncIterable": AsyncIterable[int],
        "AsyncGenerator": AsyncGenerator[int, None],
    }[annotation]
    handler = get("/", media_type="text/event-stream", sync_to_thread=False)(gen)
    assert both(body_of(serve(handler), "GET", "/")) == [Ev("0"), Ev("1"), Ev("2")]


@pytest.mark.parametrize("annotation", [Iterator[str], Iterable[str], Generator[str, None, None]])
def test_sync_generator_with_media_type_marker(annotation: Any) -> None:
    def gen() -> Any:
        yield "a"
        yield "b"

    gen.__annotations__["return"] = annotation
    handler = get("/", media_type="text/event-stream", sync_to_thread=False)(gen)
    assert both(body_of(serve(handler), "GET", "/")) == [Ev("a"), Ev("b")]


def test_event_stream_marker_needs_no_media_type_and_warns_nothing() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")

        @get("/")
        @event_stream
        async def ticks() -> AsyncIterator[int]:
            yield 1

        @get("/sync")
        @event_stream
        def sync_ticks() -> Iterator[int]:
            yield 2

    client = serve(ticks, sync_ticks)
    assert both(body_of(client, "GET", "/")) == [Ev("1")]
    assert both(body_of(client, "GET", "/sync")) == [Ev("2")]


def test_function_returning_an_iterator_is_a_stream_too() -> None:
    async def source() -> AsyncIterator[str]:
        yield "x"

    @get("/")
    @event_stream
    async def handler() -> AsyncIterator[str]:
        return source()

    @get("/list", media_type="text/event-stream", sync_to_thread=False)
    def from_list() -> Iterable[str]:
        return ["y", "z"]

    client = serve(handler, from_list)
    assert both(body_of(client, "GET", "/")) == [Ev("x")]
    assert both(body_of(client, "GET", "/list")) == [Ev("y"), Ev("z")]


def test_event_stream_marker_requires_a_stream_annotation() -> None:
    @get("/")
    @event_stream
    async def not_a_stream() -> int:
        return 1

    with pytest.raises(
        ImproperlyConfiguredException, match="must be annotated as returning a stream"
    ):
        Litestar([not_a_stream], plugins=[SSEPlugin()])


def test_event_stream_marker_goes_below_the_route_decorator() -> None:
    @get("/", sync_to_thread=False)
    def handler() -> Iterator[int]:
        yield 1

    with pytest.raises(TypeError, match="below the route decorator"):
        event_stream(handler)


def test_other_handlers_are_untouched() -> None:
    @get("/json", sync_to_thread=False)
    def as_json() -> list[int]:
        return [1, 2]

    @get("/iter", sync_to_thread=False)
    def iterable_as_json() -> Iterable[int]:
        return [1, 2]  # no SSE marker: Litestar's JSON, as before

    @get("/events")
    @event_stream
    async def events() -> AsyncIterator[int]:
        yield 1

    with serve(as_json, iterable_as_json, events) as client:
        assert client.get("/json").json() == [1, 2]
        response = client.get("/iter")
        assert response.headers["content-type"] == "application/json"
        assert response.json() == [1, 2]


def test_without_the_plugin_a_generator_handler_is_litestars_500_as_before() -> None:
    @get("/", media_type="text/event-stream", sync_to_thread=False)
    async def gen() -> AsyncIterator[int]:
        yield 1

    with TestClient(Litestar([gen])) as client:
        assert client.get("/").status_code == 500


def test_one_handler_in_apps_with_and_without_the_plugin() -> None:
    """Litestar's per-app handler copies share memoized state; each app still gets its own."""

    @get("/", media_type="text/event-stream", sync_to_thread=False)
    async def gen() -> AsyncIterator[int]:
        yield 1

    plain, with_plugin = Litestar([gen]), Litestar([gen], plugins=[SSEPlugin()])
    for _ in range(2):
        with TestClient(plain) as client:
            assert client.get("/").status_code == 500
        with TestClient(with_plugin) as client:
            assert client.get("/").text == "data: 1\r\n\r\n"


# -- methods, bodies and the rest of Litestar ------------------------------------------------


def test_post_streams_tokens_from_the_request_body() -> None:
    @post("/chat")
    @event_stream
    async def chat(data: JSONBody[Prompt]) -> AsyncIterator[Token]:
        for index, word in enumerate(data.text.split()):
            await anyio.lowlevel.checkpoint()
            yield Token(word, index)

    client = serve(chat)
    with client, sse_stream(client, "POST", "/chat", json={"text": "one two"}) as stream:
        assert stream.status_code == 201  # Litestar's default for POST; status_code=200 sets it
        assert [e.data for e in stream] == ['{"text":"one","index":0}', '{"text":"two","index":1}']


@pytest.mark.parametrize("decorator", [put, patch, delete])
def test_any_method(decorator: Any) -> None:
    @decorator("/", status_code=200)
    @event_stream
    async def handler() -> AsyncIterator[str]:
        yield "ok"

    method = decorator.__name__.upper()
    assert both(body_of(serve(handler), method, "/")) == [Ev("ok")]


def test_status_code_headers_cookies_and_after_request_apply() -> None:
    seen: list[type] = []

    async def after(response: Response[Any]) -> Response[Any]:
        seen.append(type(response))
        response.headers["x-after"] = "1"
        return response

    @get("/", status_code=202, response_headers={"x-route": "r"}, after_request=after)
    @event_stream
    async def handler() -> AsyncIterator[str]:
        yield "ok"

    client = serve(handler)
    with client, sse_stream(client, "GET", "/") as stream:
        assert stream.status_code == 202
        assert stream.headers["x-route"] == "r"
        assert stream.headers["x-after"] == "1"
        assert [e.data for e in stream] == ["ok"]
    assert issubclass(seen[0], ServerSentEvent)


def test_guards_and_dependencies() -> None:
    def only_with_token(
        connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        if connection.headers.get("x-token") != "secret":
            raise NotAuthorizedException()

    def provide_prefix() -> str:
        return "p-"

    @get(
        "/",
        guards=[only_with_token],
        dependencies={"prefix": Provide(provide_prefix, sync_to_thread=False)},
    )
    @event_stream
    async def handler(prefix: NamedDependency[str]) -> AsyncIterator[str]:
        yield prefix + "ok"

    with serve(handler) as client:
        assert client.get("/").status_code == 401
        response = client.get("/", headers={"x-token": "secret"})
        assert response.text == "data: p-ok\r\n\r\n"


def test_request_is_available_to_the_generator() -> None:
    @get("/")
    @event_stream
    async def handler(request: Request[Any, Any, Any]) -> AsyncIterator[str]:
        yield request.url.path

    assert both(body_of(serve(handler), "GET", "/")) == [Ev("/")]


# -- typed items ---------------------------------------------------------------------------


def test_struct_items_instances_and_dicts_are_validated() -> None:
    @get("/")
    @event_stream
    async def handler() -> AsyncIterator[Token]:
        yield Token("a", 0)
        yield {"text": "b", "index": 1}  # type: ignore[misc]  # converted to Token

    assert both(body_of(serve(handler), "GET", "/")) == [
        Ev('{"text":"a","index":0}'),
        Ev('{"text":"b","index":1}'),
    ]


def test_an_item_that_does_not_validate_ends_the_stream_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed = []

    @get("/")
    @event_stream
    async def handler() -> AsyncIterator[Token]:
        try:
            yield Token("a", 0)
            yield {"text": "b", "index": "not a number"}  # type: ignore[misc]
            yield Token("never", 2)
        finally:
            closed.append(True)

    with caplog.at_level(logging.ERROR, logger="litestar_sse"):
        client = serve(handler, **WITHOUT_APP_LOGGING)
        assert both(body_of(client, "GET", "/")) == [Ev('{"text":"a","index":0}')]
    assert closed == [True]
    assert "Expected `int`, got `str`" in caplog.text


def test_messages_pass_through_typed_streams() -> None:
    @get("/")
    @event_stream
    async def handler() -> AsyncIterator[
        Token | ServerSentEventMessage | RawEvent | LitestarMessage
    ]:
        yield ServerSentEventMessage(data=Token("a", 0), event="token", id="1")
        yield RawEvent("data: raw\r\n\r\n")
        yield Token("b", 1)
        yield LitestarMessage(data="from litestar", event="l")

    assert both(body_of(serve(handler), "GET", "/")) == [
        Ev('{"text":"a","index":0}', "token", "1"),
        Ev("raw", "message", "1"),
        Ev('{"text":"b","index":1}', "message", "1"),
        Ev("from litestar", "l", "1"),
    ]


def test_mapping_items_are_json_data_not_message_fields() -> None:
    @get("/typed")
    @event_stream
    async def typed() -> AsyncIterator[dict[str, int]]:
        yield {"data": 1, "event": 2}

    @get("/typeddict")
    @event_stream
    async def typeddict() -> AsyncIterator[Pair]:
        yield {"a": 1}

    @get("/untyped")
    @event_stream
    async def untyped() -> AsyncIterator[Any]:
        yield {
            "data": "x",
            "event": "e",
        }  # untyped: a dict of message fields, as in ServerSentEvent

    client = serve(typed, typeddict, untyped)
    assert both(body_of(client, "GET", "/typed")) == [Ev('{"data":1,"event":2}')]
    assert both(body_of(client, "GET", "/typeddict")) == [Ev('{"a":1}')]
    assert both(body_of(client, "GET", "/untyped")) == [Ev("x", "e")]


def test_dataclass_and_pydantic_items() -> None:
    @get("/point")
    @event_stream
    async def points() -> AsyncIterator[Point]:
        yield Point(1, 2)
        yield {"x": 3, "y": 4}  # type: ignore[misc]

    @get("/model")
    @event_stream
    async def models() -> AsyncIterator[Model]:
        yield Model(name="a")
        yield {"name": "b"}  # type: ignore[misc]

    client = serve(points, models)
    assert both(body_of(client, "GET", "/point")) == [Ev('{"x":1,"y":2}'), Ev('{"x":3,"y":4}')]
    assert both(body_of(client, "GET", "/model")) == [Ev('{"name":"a"}'), Ev('{"name":"b"}')]


def test_scalar_items() -> None:
    @get("/str")
    @event_stream
    async def strings() -> AsyncIterator[str]:
        yield "plain text\nover two lines"

    @get("/int")
    @event_stream
    async def ints() -> AsyncIterator[int]:
        yield 5

    client = serve(strings, ints)
    assert both(body_of(client, "GET", "/str")) == [Ev("plain text\nover two lines")]
    assert both(body_of(client, "GET", "/int")) == [Ev("5")]


class Money:
    def __init__(self, cents: int) -> None:
        self.cents = cents


def test_app_type_encoders_serialize_typed_items() -> None:
    @get("/")
    @event_stream
    async def handler() -> AsyncIterator[Money]:
        yield Money(150)

    client = serve(handler, type_encoders={Money: lambda m: f"{m.cents / 100:.2f}"})
    assert both(body_of(client, "GET", "/")) == [Ev('"1.50"')]
