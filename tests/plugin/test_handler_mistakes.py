"""A newcomer's mistakes fail loudly, at the first moment they can be known, naming the fix.

Logs go to the ``litestar_sse`` logger, never the root logger, whatever the app's logging
config (Litestar 2's default config makes ``request.logger`` the root logger).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest
from litestar import Litestar, get, post
from litestar.exceptions import ImproperlyConfiguredException
from litestar.testing import TestClient

from litestar_sse import ServerSentEvent, SSEConfig, SSEPlugin, event_stream
from litestar_sse._error_events import openai_error
from litestar_sse._message import make_item_encoder
from tests.sse_wire import WITHOUT_APP_LOGGING, Ev, both

LOGGER = "litestar_sse"


class Records(logging.Handler):
    """The records of one logger, whatever the app's logging config does to the root logger
    (Litestar 2's default config replaces the root's handlers, pytest's caplog included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def errors(self) -> list[logging.LogRecord]:
        return [r for r in self.records if r.levelno >= logging.ERROR]


@pytest.fixture
def library_log() -> Iterator[Records]:
    """What is logged on the ``litestar_sse`` logger (and its children)."""
    logger = logging.getLogger(LOGGER)
    handler = Records()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


# -- @event_stream without SSEPlugin (issue 21, finding 4) --------------------------------------


def stream_handlers() -> list[Any]:
    """Fresh handlers: the plugin marks the functions it prepared, for the life of the process."""

    @get("/gen")
    @event_stream
    async def generator_handler() -> AsyncIterator[int]:
        yield 1

    @get("/fn")
    @event_stream
    async def returns_an_iterator() -> AsyncIterator[int]:
        async def numbers() -> AsyncIterator[int]:
            yield 1

        return numbers()  # type: ignore[return-value]

    return [generator_handler, returns_an_iterator]


@pytest.mark.parametrize("path", ["/gen", "/fn"])
def test_event_stream_without_the_plugin_names_the_fix(path: str, library_log: Records) -> None:
    # Nothing of ours runs at startup without the plugin: the first request says it, as a 500
    # (not Litestar's "Unsupported type: <class 'async_generator'>") and in the log, even
    # when the app is not in debug mode (Litestar then logs no exception itself).
    app = Litestar(stream_handlers())
    with TestClient(app) as client:
        response = client.get(path)
    assert response.status_code == 500
    (record,) = library_log.errors()
    assert record.name == LOGGER
    message = record.getMessage()
    assert "@event_stream handler" in message
    assert "plugins=[SSEPlugin()]" in message


def test_with_the_plugin_the_same_handlers_stream() -> None:
    app = Litestar(stream_handlers(), plugins=[SSEPlugin(SSEConfig(ping_interval=None))])
    with TestClient(app) as client:
        for path in ("/gen", "/fn"):
            assert both(client.get(path).content) == [Ev("1")]


def test_a_generator_handler_without_event_stream_is_refused_at_startup() -> None:
    async def ticks() -> AsyncIterator[int]:
        yield 1

    def sync_ticks() -> Iterator[int]:
        yield 1

    for fn in (ticks, sync_ticks):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Litestar's sync_to_thread warning
            handler = get("/ticks")(fn)
        with pytest.raises(ImproperlyConfiguredException, match="@event_stream") as info:
            Litestar([handler], plugins=[SSEPlugin()])
        assert 'media_type="text/event-stream"' in str(info.value)


def test_generator_handlers_with_a_response_class_of_their_own_are_left_alone() -> None:
    class Lines(ServerSentEvent):
        def __init__(self, content: Any, **kwargs: Any) -> None:
            super().__init__(content)

    @get("/", response_class=Lines, media_type="text/plain", sync_to_thread=False)
    async def lines() -> AsyncIterator[str]:
        yield "x"

    Litestar([lines], plugins=[SSEPlugin()])  # not refused


# -- a yield msgspec cannot encode (issue 21, finding 8) ----------------------------------------


class Thing:
    pass


def test_an_unencodable_item_says_type_encoders() -> None:
    with pytest.raises(TypeError, match=r"type [\w.]*Thing: .*type_encoders") as info:
        make_item_encoder()(Thing())
    assert "Litestar(type_encoders={Thing: ...})" in str(info.value)


def test_an_unencodable_publish_says_type_encoders() -> None:
    from litestar_sse.broadcast._events.format import make_data_encoder

    with pytest.raises(TypeError, match=r"Thing: register an encoder for it in type_encoders"):
        make_data_encoder()(Thing())


@pytest.mark.parametrize("app_logging", [True, False], ids=["default logging", "no logging"])
def test_an_unencodable_yield_is_logged_on_the_library_logger(
    app_logging: bool, library_log: Records
) -> None:
    @get("/")
    @event_stream
    async def handler() -> AsyncIterator[Any]:
        yield 1
        yield Thing()

    kwargs: dict[str, Any] = {} if app_logging else WITHOUT_APP_LOGGING
    app = Litestar([handler], plugins=[SSEPlugin(SSEConfig(ping_interval=None))], **kwargs)
    with TestClient(app) as client:
        assert both(client.get("/").content) == [Ev("1")]
    (record,) = library_log.errors()  # was on the root logger with Litestar 2's default config
    assert record.name == LOGGER
    message = record.getMessage()
    assert "the stream was ended" in message
    assert "Thing: register an encoder for it in type_encoders" in message


def test_with_type_encoders_the_same_yield_is_sent() -> None:
    @get("/")
    @event_stream
    async def handler() -> AsyncIterator[Any]:
        yield Thing()

    app = Litestar(
        [handler],
        plugins=[SSEPlugin(SSEConfig(ping_interval=None))],
        type_encoders={Thing: lambda _: "a thing"},
    )
    with TestClient(app) as client:
        assert both(client.get("/").content) == [Ev('"a thing"')]


def test_the_package_logs_nowhere_but_its_own_loggers() -> None:
    """No ``logging.warning(...)`` (root) and no unnamed ``getLogger()`` in the package."""
    import pathlib

    import litestar_sse

    root = pathlib.Path(litestar_sse.__file__).parent
    bad = ["logging.getLogger()", "request.logger", "app.logger", "app.get_logger("]
    bad += [f"logging.{level}(" for level in ("debug", "info", "warning", "error", "exception")]
    bad += ["logging.critical(", "logging.log("]
    offenders = [
        f"{path.name}: {call}"
        for path in root.rglob("*.py")
        for call in bad
        if call in path.read_text()
    ]
    assert offenders == []


# -- OpenAI chunk dicts yielded by an untyped handler (issue 21, finding 9) ---------------------

CHUNK = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 0,
    "model": "m",
    "choices": [{"index": 0, "delta": {"content": "Hello"}, "finish_reason": None}],
}


def chat_app(**settings: Any) -> Litestar:
    @post("/v1/chat/completions", status_code=200)
    @event_stream(**settings)
    async def chat() -> AsyncIterator[Any]:  # untyped: a dict is the fields of an event
        yield CHUNK

    return Litestar([chat], plugins=[SSEPlugin(SSEConfig(ping_interval=None))])


def ask(client: TestClient[Any]) -> str:
    sdk = openai.OpenAI(base_url=f"{client.base_url}/v1", api_key="k", http_client=client)
    stream = sdk.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    return "".join(chunk.choices[0].delta.content or "" for chunk in stream)


def test_openai_chunk_dicts_in_an_untyped_stream_name_the_typed_way(
    library_log: Records,
) -> None:
    with TestClient(chat_app()) as client:
        assert ask(client) == ""  # no error event configured: the body just ends (documented)
    (record,) = library_log.errors()
    assert record.name == LOGGER
    message = record.getMessage()
    assert "Unknown SSE message field(s) ['choices', 'created', 'model', 'object']" in message
    assert 'yield {"data": the_dict}' in message
    assert "AsyncIterator[dict[str, Any]]" in message


def test_with_an_error_event_the_openai_sdk_raises(library_log: Records) -> None:
    with (
        TestClient(chat_app(error_event=openai_error())) as client,
        pytest.raises(openai.APIError, match="The stream failed on the server"),
    ):
        ask(client)
    (record,) = library_log.errors()
    assert 'yield {"data": the_dict}' in record.getMessage()


def test_the_typed_way_streams_the_chunks_to_the_openai_sdk() -> None:
    @post("/v1/chat/completions", status_code=200)
    @event_stream
    async def chat() -> AsyncIterator[dict[str, Any]]:  # typed: a dict is data
        yield CHUNK

    app = Litestar([chat], plugins=[SSEPlugin(SSEConfig(ping_interval=None))])
    with TestClient(app) as client:
        assert ask(client) == "Hello"
