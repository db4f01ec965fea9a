"""An error on an event-stream route is answered as on any other route: JSON, said to be JSON.

Litestar builds an unhandled exception's response with the route's media type; on an event
stream that labelled a JSON body ``text/event-stream``. Each case compares the event-stream
route with a plain JSON route of the same app that raises the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest
from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import (
    HTTPException,
    LitestarException,
    NotAuthorizedException,
    NotFoundException,
)
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath, JSONBody
from litestar.testing import TestClient

from litestar_sse import ServerSentEvent, SSEConfig, SSEPlugin, event_stream
from litestar_sse._compat import ANSWERS_EVERY_EXCEPTION
from litestar_sse.broadcast import Broadcaster, MemoryBackend
from tests.sse_wire import WITHOUT_APP_LOGGING


class Prompt(msgspec.Struct):
    text: str


def deny(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if connection.headers.get("x-token") != "secret":
        raise NotAuthorizedException("no token")


def fail(kind: FromPath[str]) -> None:
    if kind == "missing":
        raise NotFoundException("no such room")
    if kind == "teapot":
        raise HTTPException(status_code=418, detail="short and stout", extra={"spout": 1})
    if kind == "bug":
        raise ValueError("a bug")


# One event-stream route and one JSON route per way of failing.


@get("/sse/guarded", guards=[deny])
@event_stream
async def sse_guarded() -> AsyncIterator[str]:
    yield "ok"


@get("/json/guarded", guards=[deny])
async def json_guarded() -> dict[str, str]:
    return {"ok": "yes"}


@post("/sse/prompt")
@event_stream
async def sse_prompt(data: JSONBody[Prompt]) -> AsyncIterator[str]:
    yield data.text


@post("/json/prompt")
async def json_prompt(data: JSONBody[Prompt]) -> dict[str, str]:
    return {"text": data.text}


@get("/sse/fail/{kind:str}", media_type="text/event-stream")
async def sse_fail(kind: FromPath[str]) -> ServerSentEvent:
    fail(kind)
    return ServerSentEvent(iter(["ok"]))


@get("/json/fail/{kind:str}")
async def json_fail(kind: FromPath[str]) -> dict[str, str]:
    fail(kind)
    return {"ok": "yes"}


HANDLERS = [sse_guarded, json_guarded, sse_prompt, json_prompt, sse_fail, json_fail]

CASES: list[tuple[str, str, dict[str, Any], int]] = [
    ("GET", "guarded", {}, 401),
    (
        "POST",
        "prompt",
        {"content": b'{"text": 1}', "headers": {"content-type": "application/json"}},
        400,
    ),
    (
        "POST",
        "prompt",
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
        400,
    ),
    ("GET", "fail/missing", {}, 404),
    ("GET", "fail/teapot", {}, 418),
    ("GET", "fail/bug", {}, 500),
]


def make_app(**kwargs: Any) -> Litestar:
    return Litestar(HANDLERS, plugins=[SSEPlugin()], **WITHOUT_APP_LOGGING, **kwargs)


def same_error(sse: Any, plain: Any) -> None:
    assert sse.status_code == plain.status_code
    assert sse.headers.get("content-type") == plain.headers.get("content-type")
    assert sse.content == plain.content.replace(b"/json/", b"/sse/")  # a 400 names its path


@pytest.mark.parametrize(("method", "path", "options", "status"), CASES)
def test_an_error_is_json_on_an_event_stream_route_too(
    method: str, path: str, options: dict[str, Any], status: int
) -> None:
    with TestClient(make_app()) as client:
        sse = client.request(method, f"/sse/{path}", **options)
        plain = client.request(method, f"/json/{path}", **options)
    assert sse.status_code == status
    same_error(sse, plain)
    if status == 500 and not ANSWERS_EVERY_EXCEPTION:
        return  # Litestar 3 lets an exception that is not an HTTP one reach the server
    assert sse.headers["content-type"] == "application/json"
    assert msgspec.json.decode(sse.content)["status_code"] == status


def test_the_streams_themselves_are_still_event_streams() -> None:
    with TestClient(make_app()) as client:
        guarded = client.get("/sse/guarded", headers={"x-token": "secret"})
        prompt = client.post("/sse/prompt", json={"text": "hi"})
        ok = client.get("/sse/fail/none")
    for response, data in ((guarded, "ok"), (prompt, "hi"), (ok, "ok")):
        assert response.status_code == (201 if response is prompt else 200)
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.text == f"data: {data}\r\n\r\n"


@pytest.mark.parametrize("accept", ["text/html", "application/json", "text/plain"])
def test_debug_mode_gives_the_debug_response_as_elsewhere(accept: str) -> None:
    with TestClient(make_app(debug=True)) as client:
        sse = client.get("/sse/fail/bug", headers={"accept": accept})
        plain = client.get("/json/fail/bug", headers={"accept": accept})
    assert sse.status_code == plain.status_code == 500
    assert not sse.headers["content-type"].startswith("text/event-stream")
    assert sse.headers.get("content-type") == plain.headers.get("content-type")


def teapot_handler(_: Request[Any, Any, Any], exc: Exception) -> Response[str]:
    return Response("teapot handled", status_code=418, media_type=MediaType.TEXT)


def any_handler(_: Request[Any, Any, Any], exc: Exception) -> Response[str]:
    return Response(f"app: {type(exc).__name__}", status_code=599, media_type=MediaType.TEXT)


@pytest.mark.parametrize(
    ("handlers", "path", "expected"),
    [
        # A narrower handler wins over the fallback, as over Litestar's default.
        ({NotFoundException: teapot_handler}, "fail/missing", (418, "teapot handled")),
        ({418: teapot_handler}, "fail/teapot", (418, "teapot handled")),
        # An app that handles everything keeps doing so: no fallback at all.
        ({Exception: any_handler}, "fail/missing", (599, "app: NotFoundException")),
        ({Exception: any_handler}, "guarded", (599, "app: NotAuthorizedException")),
        ({HTTPException: any_handler}, "guarded", (599, "app: NotAuthorizedException")),
        # A handler of a base class of HTTPException is not shadowed by the fallback.
        ({LitestarException: any_handler}, "guarded", (599, "app: NotAuthorizedException")),
        ({LitestarException: any_handler}, "fail/missing", (599, "app: NotFoundException")),
        # A 500 handler gets every exception that is not an HTTP one, and only those.
        ({500: any_handler}, "fail/bug", (599, "app: ValueError")),
        ({500: any_handler}, "guarded", None),  # Litestar's default, JSON as anywhere
    ],
)
def test_the_apps_own_exception_handlers_win(
    handlers: dict[Any, Callable[..., Any]], path: str, expected: tuple[int, str] | None
) -> None:
    with TestClient(make_app(exception_handlers=handlers)) as client:
        sse = client.get(f"/sse/{path}")
        plain = client.get(f"/json/{path}")
    if expected is not None:
        assert (sse.status_code, sse.text) == expected
    else:
        assert sse.headers["content-type"] == "application/json"
    same_error(sse, plain)


def test_a_handler_in_two_apps_is_changed_in_each_apps_copy_only() -> None:
    before = dict(sse_fail.exception_handlers or {})
    with (
        TestClient(make_app()) as first,
        TestClient(make_app(exception_handlers={Exception: any_handler})) as second,
    ):
        assert first.get("/sse/fail/missing").headers["content-type"] == "application/json"
        assert second.get("/sse/fail/missing").text == "app: NotFoundException"
    assert dict(sse_fail.exception_handlers or {}) == before


async def refuse(connection: ASGIConnection[Any, Any, Any, Any], topic: str) -> bool:
    return False


def test_a_refused_subscription_is_a_json_403() -> None:
    broadcaster = Broadcaster(MemoryBackend(), authorize=refuse)

    @get("/events", media_type="text/event-stream")
    async def events(request: Request[Any, Any, Any]) -> ServerSentEvent:
        return await broadcaster.subscribe(["room"], connection=request)

    app = Litestar([events], plugins=[SSEPlugin(SSEConfig(broadcaster=broadcaster))])
    with TestClient(app) as client:
        refused = client.get("/events")
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/json"
    assert msgspec.json.decode(refused.content)["status_code"] == 403
