"""Route-level stream settings: ``@event_stream(...)`` and ``opt={"sse": ...}`` over SSEConfig."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient

from litestar_sse import SSEConfig, SSEPlugin, event_stream
from litestar_sse._plugin.config import STATE_KEY
from litestar_sse.testing import sse_stream

APP = SSEConfig(retry=3000, ping_interval=None, sep="\r\n", send_timeout=7.0)


async def two(pause: float = 0.0) -> AsyncIterator[str]:
    yield "a"
    await asyncio.sleep(pause)
    yield "b"


def body_of(*handlers: Any, path: str = "/", config: SSEConfig = APP) -> bytes:
    with (
        TestClient(Litestar(list(handlers), plugins=[SSEPlugin(config)])) as client,
        sse_stream(client, "GET", path) as stream,
    ):
        return stream.read()


def test_the_app_values_apply_to_a_route_without_settings() -> None:
    @get("/")
    @event_stream
    async def plain() -> AsyncIterator[str]:
        return two()

    assert body_of(plain) == b"retry: 3000\r\ndata: a\r\n\r\ndata: b\r\n\r\n"


def test_none_turns_an_app_value_off_for_one_route() -> None:
    """An LLM route drops the app's retry (a field some SDK decoders stumble over)."""

    @get("/llm")
    @event_stream(retry=None)
    async def llm() -> AsyncIterator[str]:
        return two()

    @get("/other")
    @event_stream()
    async def other() -> AsyncIterator[str]:
        return two()

    assert body_of(llm, other, path="/llm") == b"data: a\r\n\r\ndata: b\r\n\r\n"
    assert body_of(llm, other, path="/other").startswith(b"retry: 3000\r\n")


def test_a_route_sets_its_own_values() -> None:
    @get("/")
    @event_stream(retry=10, sep="\n", ping_interval=0.02, ping_message="hb")
    async def route() -> AsyncIterator[str]:
        return two(pause=0.15)

    body = body_of(route)
    assert body.startswith(b"retry: 10\ndata: a\n\n: hb\n")  # the app does not ping
    assert body.endswith(b"data: b\n\n")


def test_opt_sets_them_too_and_event_stream_arguments_win() -> None:
    @get(
        "/",
        media_type="text/event-stream",
        sync_to_thread=False,
        opt={"sse": {"retry": None, "sep": "\n"}},
    )
    async def by_opt() -> AsyncIterator[str]:
        for item in "ab":
            yield item

    @get("/both", opt={"sse": {"retry": None, "sep": "\n"}})
    @event_stream(sep="\r")
    async def both() -> AsyncIterator[str]:
        return two()

    assert body_of(by_opt) == b"data: a\n\ndata: b\n\n"
    assert body_of(both, path="/both") == b"data: a\r\rdata: b\r\r"


def test_send_timeout_and_error_event_reach_the_stream() -> None:
    def error_event(exc: Exception) -> dict[str, Any]:
        return {"event": "failed", "data": type(exc).__name__}

    @get("/")
    @event_stream(send_timeout=None, error_event=error_event, cleanup_timeout=0.5)
    async def route() -> AsyncIterator[str]:
        yield "a"
        await asyncio.sleep(0.2)
        raise RuntimeError("boom")

    app = Litestar([route], plugins=[SSEPlugin(APP)])
    with TestClient(app) as client, sse_stream(client, "GET", "/") as stream:
        first = next(iter(stream))
        (open_stream,) = app.state[STATE_KEY].registry._streams
        assert open_stream.send_timeout is None  # the app's 7.0 is off for this route
        assert open_stream.cleanup_timeout == 0.5
        events = [first, *stream]
    assert [(e.event, e.data) for e in events] == [("message", "a"), ("failed", "RuntimeError")]


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"ping_interval": 0}, ValueError),
        ({"send_timeout": float("inf")}, ValueError),
        ({"cleanup_timeout": 0}, ValueError),
        ({"retry": -1}, ValueError),
        ({"sep": "\t"}, ValueError),
        ({"ping_message": 1}, TypeError),
        ({"error_event": "openai"}, TypeError),
    ],
)
def test_bad_settings_fail_at_decoration(settings: dict[str, Any], error: type) -> None:
    with pytest.raises(error):
        event_stream(**settings)


def test_bad_opt_settings_fail_when_the_app_is_built() -> None:
    @get("/", media_type="text/event-stream", sync_to_thread=False, opt={"sse": {"pings": 5}})
    async def route() -> AsyncIterator[str]:
        yield "a"

    with pytest.raises(ValueError, match=r"opt\['sse'\].*Unknown stream setting"):
        Litestar([route], plugins=[SSEPlugin()])
