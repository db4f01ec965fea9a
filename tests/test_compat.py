"""Each touch point of ``litestar_sse._compat``, checked against the installed Litestar.

The suite runs on Litestar 2.23, 2.25 and 3.0 (``make test-litestar``). Every test here names
one thing the compat module relies on; when a Litestar release changes it, the failure says
which, before the rest of the suite fails in less obvious ways.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any

import litestar
import pytest
from litestar import Litestar, get
from litestar.handlers.http_handlers import HTTPRouteHandler
from litestar.response import Response
from litestar.response.streaming import ASGIStreamingResponse as LitestarASGIStreamingResponse
from litestar.testing import AsyncTestClient, RequestFactory, TestClient
from litestar.testing.transport import TestClientTransport
from litestar.utils import AsyncIteratorWrapper

from litestar_sse import ServerSentEvent, SSEConfig, SSEPlugin, event_stream
from litestar_sse._compat import (
    LITESTAR_3,
    async_client_portal,
    client_portal,
    client_scope,
    split_to_asgi_args,
    unwrap_started_send,
)
from litestar_sse.asgi import ASGIStreamingResponse, ASGIStreamingSSEResponse
from litestar_sse.testing import async_sse_stream, sse_stream
from tests.sse_wire import WITHOUT_APP_LOGGING, Ev, Recorder, both, http_scope

pytestmark = pytest.mark.anyio


def test_the_installed_litestar_is_a_supported_one() -> None:
    version = litestar.__version__
    assert (version.major, version.minor) >= (2, 23)
    assert version.major < 4
    assert (version.major >= 3) is LITESTAR_3


def test_litestars_message_class_lives_where_the_message_layer_looks_for_it() -> None:
    from litestar.response import ServerSentEventMessage as LitestarMessage

    from litestar_sse._message import LITESTAR_MESSAGE_MODULE, is_litestar_message

    assert LitestarMessage.__module__ == LITESTAR_MESSAGE_MODULE

    class Subclass(LitestarMessage):
        pass

    assert is_litestar_message(LitestarMessage)
    assert is_litestar_message(Subclass)  # a subclass too (the name alone missed it)


# -- ASGIResponse.__init__ -----------------------------------------------------------------


def test_litestar_streaming_init_still_wraps_sync_iterators_so_we_skip_it() -> None:
    # The reason build_asgi_response calls ASGIResponse.__init__ directly: Litestar's streaming
    # response moves every item of a sync iterator through a worker thread.
    response = LitestarASGIStreamingResponse(iterator=iter([b"a"]))
    assert isinstance(response.iterator, AsyncIteratorWrapper)


async def test_encoded_headers_reach_the_client_on_every_version() -> None:
    response = ASGIStreamingResponse(
        iterator=[b"x"],
        headers={"x-plain": "1"},
        encoded_headers=[(b"x-encoded", b"2")],
        media_type="text/plain",
    )
    send = Recorder()

    async def receive() -> Any:
        await asyncio.sleep(10)

    await response(http_scope(), receive, send)  # type: ignore[arg-type]
    assert send.headers["x-plain"] == "1"
    assert send.headers["x-encoded"] == "2"
    assert send.body == b"x"


def test_asgi_response_init_takes_exactly_what_build_asgi_response_passes() -> None:
    from litestar.response.base import ASGIResponse

    parameters = set(inspect.signature(ASGIResponse.__init__).parameters) - {"self"}
    passed = {
        "background",
        "body",
        "content_length",
        "cookies",
        "encoding",
        "headers",
        "is_head_response",
        "media_type",
        "status_code",
    }
    expected = passed if LITESTAR_3 else passed | {"encoded_headers"}
    assert parameters == expected


# -- Response.to_asgi_response -------------------------------------------------------------


def test_litestar_signature_of_to_asgi_response() -> None:
    names = list(inspect.signature(Response.to_asgi_response).parameters)
    assert names[:3] == (
        ["self", "request", "background"] if LITESTAR_3 else ["self", "app", "request"]
    )


@pytest.mark.parametrize("form", ["v2 positional", "v3 positional", "keyword", "v2 keywords"])
def test_to_asgi_response_takes_both_versions_call_forms(form: str) -> None:
    request = RequestFactory(app=Litestar([])).get("/")
    sse = ServerSentEvent(["a"])
    if form == "v2 positional":
        built = sse.to_asgi_response(None, request)
    elif form == "v3 positional":
        built = sse.to_asgi_response(request)
    elif form == "keyword":
        built = sse.to_asgi_response(request=request)
    else:
        built = sse.to_asgi_response(app=None, request=request)
    assert isinstance(built, ASGIStreamingSSEResponse)


def test_to_asgi_response_without_a_request_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="needs the request"):
        split_to_asgi_args(None, None)


# -- route handlers ------------------------------------------------------------------------


def test_the_private_handler_attributes_we_reset_exist() -> None:
    @get("/", sync_to_thread=False)
    def handler() -> str:
        return "x"

    app = Litestar([handler])
    registered = app.route_handler_method_map["/"]["GET"]
    assert isinstance(registered, HTTPRouteHandler)
    if LITESTAR_3:
        assert callable(registered._default_response_handler)  # Empty until registered
        assert callable(registered._response_type_handler)
        assert (
            "response_class" in inspect.signature(registered._create_response_handlers).parameters
        )
        assert isinstance(type(registered).response_class, property)
        assert type(registered).response_class.fset is None  # read-only: we set _response_class
    else:
        assert set(registered._response_handler_mapping) == {
            "default_handler",
            "response_type_handler",
        }
        assert hasattr(registered, "_resolved_response_class")


def test_one_generator_handler_streams_in_two_apps_and_stays_json_elsewhere() -> None:
    @get("/events")
    @event_stream
    async def events() -> AsyncIterator[int]:
        yield 1

    @get("/plain", sync_to_thread=False)
    def plain() -> list[int]:
        return [1]

    first = Litestar([events, plain], plugins=[SSEPlugin(SSEConfig(ping_interval=None))])
    second = Litestar([events, plain], plugins=[SSEPlugin(SSEConfig(ping_interval=None))])
    for app in (first, second):
        with TestClient(app) as client, sse_stream(client, "GET", "/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert both(stream.read()) == [Ev("1")]
        with TestClient(app) as client:
            assert client.get("/plain").json() == [1]


# -- test clients --------------------------------------------------------------------------


def test_the_sync_client_portal_runs_the_app_loop() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def remember_loop() -> None:
        loops.append(asyncio.get_running_loop())

    app = Litestar([], on_startup=[remember_loop])
    with TestClient(app) as client, client_portal(client) as portal:
        assert portal.call(asyncio.get_running_loop) is loops[0]


async def test_the_async_client_runs_the_app_where_async_client_portal_says() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def remember_loop() -> None:
        loops.append(asyncio.get_running_loop())

    app = Litestar([], on_startup=[remember_loop])
    async with AsyncTestClient(app) as client:
        with async_client_portal(client) as portal:
            if LITESTAR_3:
                assert portal is None
                assert loops[0] is asyncio.get_running_loop()
            else:
                assert portal is not None
                assert portal.call(asyncio.get_running_loop) is loops[0]


async def test_async_sse_stream_reads_an_endless_stream_on_either_loop() -> None:
    @get("/")
    async def endless() -> ServerSentEvent:
        async def numbers() -> AsyncIterator[int]:
            n = 0
            while True:
                n += 1
                yield n
                await asyncio.sleep(0.001)

        return ServerSentEvent(numbers())

    seen = []
    async with (
        AsyncTestClient(Litestar([endless])) as client,
        async_sse_stream(client, "GET", "/") as stream,
    ):
        async for event in stream:
            seen.append(event.data)
            if len(seen) == 3:
                break
    assert seen == ["1", "2", "3"]


def test_the_clients_transport_builds_the_scope() -> None:
    with TestClient(Litestar([])) as client:
        transport = client._transport
        assert isinstance(getattr(transport, "_async_transport", transport), TestClientTransport)
        scope = client_scope(client, client.build_request("GET", "/x?y=1"))
    assert (scope["path"], scope["query_string"]) == ("/x", b"y=1")


def test_a_stream_is_read_to_its_end_after_the_client_exited() -> None:
    # Litestar 3 stops the client's loop when the client exits; what the app sent before that
    # is still read (a test of the shutdown sequence reads the stream while the client exits).
    sent_all = threading.Event()

    async def three() -> AsyncIterator[str]:
        try:
            for text in ("a", "b", "c"):
                yield text
        finally:  # runs once "c" was handed to the server
            sent_all.set()

    @get("/")
    async def handler() -> ServerSentEvent:
        return ServerSentEvent(three())

    client = TestClient(Litestar([handler]))
    client.__enter__()
    with sse_stream(client, "GET", "/") as stream:
        assert next(iter(stream)).data == "a"
        assert sent_all.wait(5)
        client.__exit__(None, None, None)
        assert [event.data for event in stream] == ["b", "c"]


def test_litestars_default_answer_for_an_unhandled_exception_is_what_compat_says() -> None:
    # ANSWERS_EVERY_EXCEPTION: Litestar 2 builds a 500 response for any exception no handler
    # takes; Litestar 3 (outside debug mode) lets the ones that are not HTTP ones through.
    from litestar_sse._compat import ANSWERS_EVERY_EXCEPTION

    @get("/")
    async def boom() -> None:
        raise ValueError("boom")

    app = Litestar([boom], **WITHOUT_APP_LOGGING)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/")
    assert response.status_code == 500
    assert ("application/json" in response.headers.get("content-type", "")) is (
        ANSWERS_EVERY_EXCEPTION
    )


def test_route_exception_handlers_are_the_merged_layers_and_added_to_the_apps_copy() -> None:
    from litestar_sse._compat import add_route_exception_handler, route_exception_handlers

    def app_level(_: Any, exc: Exception) -> Any:
        raise AssertionError

    def route_level(_: Any, exc: Exception) -> Any:
        raise AssertionError

    @get("/", exception_handlers={KeyError: route_level})
    async def handler() -> None:
        return None

    app = Litestar([handler], exception_handlers={LookupError: app_level})
    registered = app.route_handler_method_map["/"]["GET"]
    resolved = route_exception_handlers(registered)
    assert resolved[KeyError] is route_level
    assert resolved[LookupError] is app_level
    add_route_exception_handler(registered, ValueError, route_level)
    assert route_exception_handlers(registered)[ValueError] is route_level
    assert ValueError not in (handler.exception_handlers or {})  # the decorated original


# -- the exception middleware's send wrapper ------------------------------------------------


def _callers() -> list[str]:
    """The names of the functions that called the fake server's send, innermost first."""
    frame = sys._getframe(2)
    names = []
    while frame is not None and len(names) < 12:
        names.append(frame.f_code.co_name)
        frame = frame.f_back  # type: ignore[assignment]
    return names


async def test_a_streams_sends_skip_litestars_wrappers_that_only_noted_the_start() -> None:
    wrapper_names = {"capture_response_started", "wrapped_send"}
    seen: list[tuple[str, list[str]]] = []
    body_wrapped: list[int] = []

    def user_middleware(app: Any) -> Any:
        async def middleware(scope: Any, receive: Any, send: Any) -> None:
            async def users_own(message: Any) -> None:
                if message["type"] == "http.response.body":
                    body_wrapped.append(1)
                await send(message)

            await app(scope, receive, users_own)

        return middleware

    @get("/", sync_to_thread=False)
    def handler() -> ServerSentEvent:
        return ServerSentEvent(["a", "b"])

    async def receive() -> Any:
        await asyncio.Event().wait()

    async def send(message: Any) -> None:
        seen.append((message["type"], _callers()))

    plain, users = Litestar([handler]), Litestar([handler], middleware=[user_middleware])
    for app in (plain, users):
        seen.clear()
        scope = {**http_scope(), "path": "/", "raw_path": b"/", "query_string": b""}
        await app(scope, receive, send)  # type: ignore[arg-type]
        start = next(callers for kind, callers in seen if kind == "http.response.start")
        assert wrapper_names & set(start)  # the wrapper was there, and noted the start
        bodies = [callers for kind, callers in seen if kind == "http.response.body"]
        assert len(bodies) == 3
        for callers in bodies:
            if app is plain:  # both of Litestar's wrappers skipped: sent from the stream
                assert not wrapper_names & set(callers[:2])
            else:
                # The route's wrapper above the user's is skipped; the app's wrapper below
                # it stays (the user's code runs, and then Litestar's as it is).
                assert callers[1] == "users_own"
                assert callers[2] not in wrapper_names
    assert len(body_wrapped) == 3  # a user's wrapper is never skipped


def test_only_a_wrapper_that_does_nothing_else_is_skipped() -> None:
    async def server_send(message: Any) -> None:
        pass

    async def other(message: Any) -> None:
        await server_send(message)

    assert unwrap_started_send(server_send) is server_send
    assert unwrap_started_send(other) is other
