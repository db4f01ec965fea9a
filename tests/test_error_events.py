"""Error events: a producer that fails tells its client so, in the client's own terms (opt-in)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest
from litestar import Litestar, get
from litestar.testing import TestClient

from litestar_sse import ServerSentEvent, SSEConfig, SSEPlugin, event_stream
from litestar_sse._error_events import anthropic_error, openai_error
from litestar_sse.testing import sse_stream
from tests.sse_wire import WITHOUT_APP_LOGGING, Ev, both


async def fails_after_one() -> AsyncIterator[str]:
    yield "a"
    raise RuntimeError("secret: db password")


def fails_after_one_sync() -> Iterator[str]:
    yield "a"
    raise RuntimeError("secret: db password")


def body_of(response: ServerSentEvent, config: SSEConfig | None = None) -> bytes:
    @get("/", sync_to_thread=False)
    def handler() -> ServerSentEvent:
        return response

    plugins = [SSEPlugin(config)] if config is not None else []
    # Without the app's logging config, errors go to the litestar_sse logger (caplog sees it).
    with (
        TestClient(Litestar([handler], plugins=plugins, **WITHOUT_APP_LOGGING)) as client,
        sse_stream(client, "GET", "/") as stream,
    ):
        return stream.read()


@pytest.mark.parametrize("producer", [fails_after_one, fails_after_one_sync], ids=["async", "sync"])
def test_openai_error_is_the_last_event(producer: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, "litestar_sse"):
        body = body_of(ServerSentEvent(producer(), error_event=openai_error()))
    events = both(body)
    assert events[0] == Ev("a")
    assert msgspec.json.decode(events[-1].data) == {
        "error": {
            "message": "The stream failed on the server",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    assert len(events) == 2
    assert b"secret" not in body  # the exception's text stays in the server's log
    assert "secret: db password" in caplog.text  # logged as without an error event


def test_anthropic_error_from_the_app_config() -> None:
    body = body_of(ServerSentEvent(fails_after_one()), SSEConfig(error_event=anthropic_error()))
    last = both(body)[-1]
    assert last.event == "error"
    assert msgspec.json.decode(last.data) == {
        "type": "error",
        "error": {"type": "api_error", "message": "The stream failed on the server"},
    }


def test_without_an_error_event_the_body_just_ends() -> None:
    assert both(body_of(ServerSentEvent(fails_after_one()))) == [Ev("a")]


def test_the_response_wins_over_the_app_and_none_turns_it_off() -> None:
    config = SSEConfig(error_event=anthropic_error())
    assert both(body_of(ServerSentEvent(fails_after_one(), error_event=None), config)) == [Ev("a")]


def test_an_error_event_that_returns_none_or_raises_sends_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert both(body_of(ServerSentEvent(fails_after_one(), error_event=lambda exc: None))) == [
        Ev("a")
    ]

    def broken(exc: Exception) -> Any:
        raise ValueError("bug in the error event")

    with caplog.at_level(logging.ERROR, "litestar_sse"):
        assert both(body_of(ServerSentEvent(fails_after_one(), error_event=broken))) == [Ev("a")]
    assert "Exception raised by the on_error handler" in caplog.text


class Chunk(msgspec.Struct):
    text: str


def test_a_bad_item_of_a_typed_stream_gets_the_error_event_too() -> None:
    @get("/")
    @event_stream(error_event=lambda exc: {"event": "error", "data": type(exc).__name__})
    async def chunks() -> AsyncIterator[Chunk]:
        yield Chunk("a")
        yield {"text": 1}  # type: ignore[misc]  # does not convert to Chunk

    with (
        TestClient(Litestar([chunks], plugins=[SSEPlugin()])) as client,
        sse_stream(client, "GET", "/") as stream,
    ):
        events = both(stream.read())
    # The error event is not held to the stream's item type.
    assert events == [Ev('{"text":"a"}'), Ev("ValidationError", "error")]


def test_an_error_event_that_is_not_callable_is_refused() -> None:
    with pytest.raises(TypeError, match="error_event must be callable"):
        ServerSentEvent(["a"], error_event="openai")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="error_event must be callable"):
        SSEConfig(error_event=42)  # type: ignore[arg-type]
