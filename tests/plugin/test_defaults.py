"""``SSEConfig``: app-wide defaults that every stream inherits unless it sets its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar, get
from litestar.testing import RequestFactory, TestClient

from litestar_sse import (
    RawEvent,
    ServerSentEvent,
    ServerSentEventMessage,
    SSEConfig,
    SSEPlugin,
    event_stream,
)
from litestar_sse.asgi import ASGIStreamingSSEResponse
from litestar_sse.testing import sse_stream


def fetch(response: ServerSentEvent, config: SSEConfig | None) -> tuple[dict[str, str], bytes]:
    """Headers and the whole body of ``response`` served by an app with (or without) the plugin."""

    @get("/", sync_to_thread=False)
    def handler() -> ServerSentEvent:
        return response

    plugins = [SSEPlugin(config)] if config is not None else []
    with (
        TestClient(Litestar([handler], plugins=plugins)) as client,
        sse_stream(client, "GET", "/") as stream,
    ):
        body = stream.read()
        return dict(stream.headers), body


async def slow(items: list[Any], pause: float) -> AsyncIterator[Any]:
    for item in items:
        await asyncio.sleep(pause)
        yield item


def test_config_defaults() -> None:
    config = SSEConfig()
    assert config.ping_interval == 15.0
    assert config.ping_message == "ping"
    assert config.retry is None
    assert config.sep == "\r\n"
    assert config.send_timeout == 30.0
    assert config.cleanup_timeout == 5.0
    assert config.max_connections is None
    assert config.max_lifetime == 3600.0
    assert config.max_connections_per_client is None
    assert config.shutdown_grace_period == 5.0
    assert config.last_event_id_query_param == "lastEventId"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"ping_interval": 0}, ValueError),
        ({"ping_interval": -1}, ValueError),
        ({"ping_interval": float("nan")}, ValueError),
        ({"ping_interval": True}, TypeError),
        ({"ping_interval": "15"}, TypeError),
        ({"ping_interval": float("inf")}, ValueError),
        ({"ping_message": 1}, TypeError),
        ({"retry": -1}, ValueError),
        ({"retry": 1.5}, ValueError),
        ({"sep": "\n\n"}, ValueError),
        ({"send_timeout": 0}, ValueError),
        ({"cleanup_timeout": 0}, ValueError),
        ({"cleanup_timeout": float("inf")}, ValueError),
        ({"cleanup_timeout": "5"}, TypeError),
        ({"headers": {"x": 1}}, TypeError),
        ({"max_connections": 0}, ValueError),
        ({"max_connections": 1.5}, TypeError),
        ({"retry_after": -1}, ValueError),
        ({"max_lifetime": -2}, ValueError),
        ({"max_connections_per_client": 0}, ValueError),
        ({"client_key": "address"}, TypeError),
        ({"shutdown_grace_period": -1}, ValueError),
        ({"shutdown_grace_period": None}, ValueError),
        ({"shutdown_event": "bye"}, TypeError),
        ({"lifetime_event": {"data": "x"}}, TypeError),
        ({"last_event_id_query_param": ""}, ValueError),
        ({"max_last_event_id_length": 0}, ValueError),
    ],
)
def test_invalid_config_is_refused_at_once(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        SSEConfig(**kwargs)


def test_zero_grace_period_is_allowed() -> None:
    assert SSEConfig(shutdown_grace_period=0).shutdown_grace_period == 0.0


def test_without_the_plugin_nothing_changes() -> None:
    headers, body = fetch(ServerSentEvent(["a"]), None)
    assert body == b"data: a\r\n\r\n"
    assert headers["cache-control"] == "no-cache"


def test_retry_is_sent_once_when_the_stream_opens() -> None:
    _, body = fetch(ServerSentEvent(["a", "b"]), SSEConfig(retry=2500))
    assert body == b"retry: 2500\r\ndata: a\r\n\r\ndata: b\r\n\r\n"


def test_explicit_retry_wins_and_is_per_event_as_before() -> None:
    _, body = fetch(ServerSentEvent(["a"], retry_duration=10), SSEConfig(retry=2500))
    assert body == b"retry: 10\r\ndata: a\r\n\r\n"
    _, body = fetch(ServerSentEvent(["a"], retry_duration=None), SSEConfig(retry=2500))
    assert body == b"data: a\r\n\r\n"


def test_separator_default_and_override() -> None:
    _, body = fetch(ServerSentEvent(["a"]), SSEConfig(sep="\n", retry=1))
    assert body == b"retry: 1\ndata: a\n\n"
    _, body = fetch(ServerSentEvent(["a"], sep="\r"), SSEConfig(sep="\n"))
    assert body == b"data: a\r\r"


def test_ping_interval_and_text_are_inherited() -> None:
    config = SSEConfig(ping_interval=0.02, ping_message="keepalive", sep="\n")
    _, body = fetch(ServerSentEvent(slow(["a"], 0.15)), config)
    assert body.startswith(b": keepalive\n")
    assert body.endswith(b"data: a\n\n")


def test_explicit_none_turns_pings_off() -> None:
    _, body = fetch(
        ServerSentEvent(slow(["a"], 0.1), ping_interval=None), SSEConfig(ping_interval=0.02)
    )
    assert body == b"data: a\r\n\r\n"


def test_explicit_ping_settings_win() -> None:
    response = ServerSentEvent(slow(["a"], 0.15), ping_interval=0.02, ping_message="mine")
    _, body = fetch(response, SSEConfig(ping_interval=100, ping_message="app"))
    assert b": mine\r\n" in body
    assert b"app" not in body


def test_send_timeout_is_inherited_unless_set() -> None:
    app = Litestar([], plugins=[SSEPlugin(SSEConfig(send_timeout=3.0, ping_interval=None))])
    request = RequestFactory(app=app).get("/")
    inherited = ServerSentEvent(["a"]).to_asgi_response(None, request)
    assert isinstance(inherited, ASGIStreamingSSEResponse)
    assert inherited.send_timeout == 3.0
    explicit = ServerSentEvent(["a"], send_timeout=None).to_asgi_response(None, request)
    assert isinstance(explicit, ASGIStreamingSSEResponse)
    assert explicit.send_timeout is None


def test_cleanup_timeout_is_inherited_unless_set() -> None:
    config = SSEConfig(cleanup_timeout=2.0, ping_interval=None)
    app = Litestar([], plugins=[SSEPlugin(config)])
    request = RequestFactory(app=app).get("/")
    inherited = ServerSentEvent(["a"]).to_asgi_response(None, request)
    assert isinstance(inherited, ASGIStreamingSSEResponse)
    assert inherited.cleanup_timeout == 2.0
    explicit = ServerSentEvent(["a"], cleanup_timeout=None).to_asgi_response(None, request)
    assert isinstance(explicit, ASGIStreamingSSEResponse)
    assert explicit.cleanup_timeout is None  # waits for ever, as asked
    without_plugin = ServerSentEvent(["a"]).to_asgi_response(None, RequestFactory().get("/"))
    assert isinstance(without_plugin, ASGIStreamingSSEResponse)
    assert without_plugin.cleanup_timeout == 5.0  # finite without the plugin too


def test_extra_headers_lose_to_the_response_and_route_but_beat_the_builtin_defaults() -> None:
    config = SSEConfig(headers={"X-App": "app", "X-Both": "app", "Cache-Control": "no-store"})
    headers, _ = fetch(ServerSentEvent(["a"], headers={"x-both": "response"}), config)
    assert headers["x-app"] == "app"
    assert headers["x-both"] == "response"
    assert headers["cache-control"] == "no-store"
    assert headers["x-accel-buffering"] == "no"

    @get("/", response_headers={"X-App": "route"}, sync_to_thread=False)
    def handler() -> ServerSentEvent:
        return ServerSentEvent(["a"])

    with TestClient(Litestar([handler], plugins=[SSEPlugin(config)])) as client:
        response = client.get("/")
        assert response.headers.get_list("x-app") == ["route"]


def test_generator_handlers_inherit_the_defaults_too() -> None:
    @get("/")
    @event_stream
    async def handler() -> AsyncIterator[str]:
        yield "a"

    config = SSEConfig(retry=100, sep="\n", headers={"X-App": "1"})
    with TestClient(Litestar([handler], plugins=[SSEPlugin(config)])) as client:
        response = client.get("/")
        assert response.text == "retry: 100\ndata: a\n\n"
        assert response.headers["x-app"] == "1"


def test_one_plugin_instance_serves_several_apps() -> None:
    plugin = SSEPlugin(SSEConfig(retry=7))

    @get("/", sync_to_thread=False)
    def handler() -> ServerSentEvent:
        return ServerSentEvent(["a"])

    first, second = Litestar([handler], plugins=[plugin]), Litestar([handler], plugins=[plugin])
    assert first.state["_litestar_sse"] is not second.state["_litestar_sse"]
    for app in (first, second):
        with TestClient(app) as client:
            assert client.get("/").text == "retry: 7\r\ndata: a\r\n\r\n"


def test_messages_keep_their_own_fields() -> None:
    config = SSEConfig(retry=5, sep="\n")
    items = [ServerSentEventMessage(data="m", retry=9), RawEvent("data: raw\n\n"), {"data": "d"}]
    _, body = fetch(ServerSentEvent(items), config)
    # The app's separator reaches the message too: it sets none of its own (issue 21).
    assert body == b"retry: 5\nretry: 9\ndata: m\n\ndata: raw\n\ndata: d\n\n"


def test_plugin_keeps_what_the_app_set() -> None:
    from litestar.di import Provide

    def mine() -> str:
        return "app's own"

    app = Litestar(
        [],
        plugins=[SSEPlugin()],
        dependencies={"last_event_id": Provide(mine, sync_to_thread=False)},
        signature_namespace={"ServerSentEvent": int},
    )
    assert app.dependencies["last_event_id"].dependency is mine
    assert app.signature_namespace["ServerSentEvent"] is int
