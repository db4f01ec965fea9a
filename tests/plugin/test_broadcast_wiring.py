"""``SSEConfig(broadcaster=...)``: the dependency, the lifespan, the app's defaults, guards."""

from __future__ import annotations

import asyncio
import json
import threading
from itertools import islice
from typing import Any

import pytest
from litestar import Litestar, Request, get, post
from litestar.config.app import AppConfig
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.testing import TestClient

from litestar_sse import ServerSentEvent, ServerSentEventMessage, SSEConfig, SSEPlugin
from litestar_sse._plugin.config import STATE_KEY
from litestar_sse.broadcast import RESUMED_FROM_HEADER, Broadcaster, MemoryBackend
from litestar_sse.testing import sse_stream


class RecordingBackend(MemoryBackend):
    """A MemoryBackend that logs its lifecycle (with the app's open streams, once known)."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log
        self.app: Litestar | None = None

    def _note(self, what: str) -> None:
        if self.app is not None:
            what += f" (open streams: {len(self.app.state[STATE_KEY].registry)})"
        self.log.append(what)

    async def start(self) -> None:
        self._note("start")

    async def close(self) -> None:
        self._note("close")


@get("/events")
async def events(
    request: Request[Any, Any, Any],
    broadcaster: NamedDependency[Broadcaster],
    topic: FromQuery[list[str]],
) -> ServerSentEvent:
    return await broadcaster.subscribe(topic, connection=request)


@post("/publish/{topic:str}")
async def publish(
    topic: FromPath[str], data: JSONBody[dict[str, Any]], broadcaster: NamedDependency[Broadcaster]
) -> dict[str, str]:
    return {"id": await broadcaster.publish(topic, data, event="news")}


@get("/which")
async def which(broadcaster: NamedDependency[Any]) -> dict[str, str]:
    return {"type": type(broadcaster).__name__, "id": str(id(broadcaster))}


def make_app(broadcaster: Broadcaster, **kwargs: Any) -> Litestar:
    config = SSEConfig(ping_interval=None, broadcaster=broadcaster, **kwargs.pop("config", {}))
    return Litestar([events, publish, which], plugins=[SSEPlugin(config)], **kwargs)


def test_handlers_get_the_broadcaster_and_stream_what_is_published() -> None:
    broadcaster = Broadcaster()
    app = make_app(broadcaster)
    with TestClient(app) as client:
        assert client.get("/which").json()["id"] == str(id(broadcaster))
        with sse_stream(client, "GET", "/events?topic=news&topic=sport") as stream:
            assert stream.status_code == 200
            assert stream.headers[RESUMED_FROM_HEADER]
            assert broadcaster.stats().subscribers == {"news": 1, "sport": 1}
            first = client.post("/publish/news", json={"title": "one"}).json()["id"]
            client.post("/publish/weather", json={"title": "not subscribed"})
            second = client.post("/publish/sport", json={"title": "two"}).json()["id"]
            got = list(islice(stream, 2))
        assert [(e.event, e.id, json.loads(e.data)) for e in got] == [
            ("news", first, {"title": "one"}),
            ("news", second, {"title": "two"}),
        ]
        # Resuming through the app: the client gets what it missed, then live events.
        missed = client.post("/publish/news", json={"title": "missed"}).json()["id"]
        with sse_stream(client, "GET", "/events?topic=news", last_event_id=second) as stream:
            assert stream.headers[RESUMED_FROM_HEADER] == second
            (event,) = islice(stream, 1)
            assert (event.id, json.loads(event.data)) == (missed, {"title": "missed"})
    assert broadcaster.stats().subscribers == {}


def test_the_broadcaster_starts_before_serving_and_closes_after_the_streams_ended() -> None:
    log: list[str] = []
    backend = RecordingBackend(log)
    broadcaster = Broadcaster(backend)
    shutdown = ServerSentEventMessage(event="shutdown", data="bye")
    app = make_app(
        broadcaster,
        config={"shutdown_event": shutdown},
        on_startup=[lambda: log.append("startup hook")],
        on_shutdown=[lambda: log.append("shutdown hook")],
    )
    backend.app = app
    assert log == []  # nothing runs when the app is created
    client = TestClient(app)
    client.__enter__()
    assert log == ["start (open streams: 0)", "startup hook"]
    with sse_stream(client, "GET", "/events?topic=t") as stream:
        client.post("/publish/t", json={"n": 1})
        assert next(iter(stream)).event == "news"
        # The lifespan shutdown, with the stream open; read the stream meanwhile (the portal
        # stops once the shutdown is complete).
        exiting = threading.Thread(target=client.__exit__, args=(None, None, None))
        exiting.start()
        rest = list(stream)
        assert stream.ended
        exiting.join(10)
        assert not exiting.is_alive()
    # The stream got its graceful end (the shutdown event, not cut by the broadcaster) and
    # the broadcaster was closed once no stream was left.
    assert [event.event for event in rest] == ["shutdown"]
    # (Litestar runs on_shutdown hooks once every lifespan context has exited.)
    assert log == [
        "start (open streams: 0)",
        "startup hook",
        "close (open streams: 0)",
        "shutdown hook",
    ]
    # Closed for good until the app starts again: a late publish fails loudly.
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(broadcaster.publish("t", "after shutdown"))


def test_the_app_can_start_again() -> None:
    log: list[str] = []
    broadcaster = Broadcaster(RecordingBackend(log))
    app = make_app(broadcaster)
    for n in range(2):
        with (
            TestClient(app) as client,
            sse_stream(client, "GET", "/events?topic=t") as stream,
        ):
            client.post("/publish/t", json={"n": n})
            assert json.loads(next(iter(stream)).data) == {"n": n}
    assert log == ["start", "close"] * 2


def test_an_app_dependency_named_broadcaster_is_kept() -> None:
    log: list[str] = []
    broadcaster = Broadcaster(RecordingBackend(log))
    mine = Provide(lambda: "mine", sync_to_thread=False)
    app = make_app(broadcaster, dependencies={"broadcaster": mine})
    with TestClient(app) as client:
        assert client.get("/which").json()["type"] == "str"
    assert log == ["start", "close"]  # the configured broadcaster still runs with the app


def test_litestar_guards_protect_a_subscribe_route() -> None:
    def members_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if connection.headers.get("x-member") != "yes":
            raise NotAuthorizedException("members only")

    @get("/members", guards=[members_only])
    async def members(
        request: Request[Any, Any, Any], broadcaster: NamedDependency[Broadcaster]
    ) -> ServerSentEvent:
        return await broadcaster.subscribe("members", connection=request)

    broadcaster = Broadcaster()
    app = Litestar(
        [members, publish],
        plugins=[SSEPlugin(SSEConfig(ping_interval=None, broadcaster=broadcaster))],
    )
    with TestClient(app) as client:
        with sse_stream(client, "GET", "/members") as refused:
            assert refused.status_code == 401
            assert broadcaster.stats().subscribers == {}
        with sse_stream(client, "GET", "/members", headers={"X-Member": "yes"}) as stream:
            assert stream.status_code == 200
            client.post("/publish/members", json={"hello": "members"})
            assert json.loads(next(iter(stream)).data) == {"hello": "members"}


def test_the_broadcaster_takes_the_app_separator_unless_it_has_its_own() -> None:
    default = Broadcaster()
    app = make_app(default, config={"sep": "\n"})
    assert default.format.sep == "\n"
    own = Broadcaster(sep="\r")
    other = make_app(own, config={"sep": "\n"})
    assert own.format.sep == "\r"
    for application, sep in ((app, b"\n"), (other, b"\r")):
        with TestClient(application) as client, sse_stream(client, "GET", "/events?topic=t") as s:
            event_id = client.post("/publish/t", json={"n": 1}).json()["id"]
            next(iter(s))
            expected = b"event: news" + sep + b"id: " + event_id.encode() + sep
            assert bytes(s.body) == expected + b'data: {"n":1}' + sep + sep


class Euro:
    def __init__(self, cents: int) -> None:
        self.cents = cents


def test_the_broadcaster_takes_the_app_type_encoders() -> None:
    @post("/pay")
    async def pay(broadcaster: NamedDependency[Broadcaster]) -> None:
        await broadcaster.publish("t", {"price": Euro(250)})

    broadcaster = Broadcaster()
    app = Litestar(
        [events, pay],
        plugins=[SSEPlugin(SSEConfig(ping_interval=None, broadcaster=broadcaster))],
        type_encoders={Euro: lambda euro: f"{euro.cents / 100:.2f} EUR"},
    )
    with TestClient(app) as client, sse_stream(client, "GET", "/events?topic=t") as stream:
        client.post("/pay")
        assert json.loads(next(iter(stream)).data) == {"price": "2.50 EUR"}


def test_config_rejects_what_is_not_a_broadcaster() -> None:
    with pytest.raises(TypeError, match="Broadcaster"):
        SSEConfig(broadcaster="redis://localhost")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="an instance"):
        SSEConfig(broadcaster=Broadcaster)  # type: ignore[arg-type]  # the class, not one


def test_handler_annotations_may_name_broadcaster_without_a_configured_one() -> None:
    # The name resolves in every app the plugin serves, like ServerSentEvent's, also when the
    # app provides its own ``broadcaster`` dependency instead of SSEConfig(broadcaster=...).
    config = SSEPlugin().on_app_init(AppConfig())
    assert config.signature_namespace["Broadcaster"] is Broadcaster
