"""The ``last_event_id`` dependency: header first, then the query parameter, garbage is None."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar, get
from litestar.di import NamedDependency, Provide
from litestar.testing import RequestFactory, TestClient

from litestar_sse import SSEConfig, SSEPlugin, event_stream, provide_last_event_id


@get("/", sync_to_thread=False)
def echo(last_event_id: NamedDependency[str | None]) -> dict[str, Any]:
    return {"last_event_id": last_event_id}


def ask(*, config: SSEConfig | None = None, **kwargs: Any) -> Any:
    with TestClient(Litestar([echo], plugins=[SSEPlugin(config)])) as client:
        response = client.get("/", **kwargs)
        assert response.status_code == 200, response.text
        return response.json()["last_event_id"]


def test_header() -> None:
    assert ask(headers={"Last-Event-ID": "42"}) == "42"


def test_query_parameter_when_no_header() -> None:
    assert ask(params={"lastEventId": "7"}) == "7"


def test_header_wins_over_query() -> None:
    assert ask(headers={"Last-Event-ID": "42"}, params={"lastEventId": "7"}) == "42"


def test_absent_or_empty_is_none() -> None:
    assert ask() is None
    assert ask(headers={"Last-Event-ID": ""}) is None
    assert ask(params={"lastEventId": ""}) is None


def test_utf8_header_is_decoded() -> None:
    assert ask(headers={"Last-Event-ID": "é-😀".encode()}) == "é-😀"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"headers": {"Last-Event-ID": "x" * 1025}},
        {"params": {"lastEventId": "x" * 1025}},
        {"params": {"lastEventId": "a\x00b"}},
        {"params": {"lastEventId": "a\nb"}},
    ],
)
def test_garbage_is_none_never_an_error(kwargs: dict[str, Any]) -> None:
    assert ask(**kwargs) is None


@pytest.mark.anyio
@pytest.mark.parametrize("raw", [b"\xff\xfe", b"\xc3", b"ok\xed\xa0\x80"])
async def test_header_that_is_not_utf8_is_none(raw: bytes) -> None:
    # Test clients re-encode header values; a hand-made scope carries the raw bytes.
    app = Litestar([echo], plugins=[SSEPlugin()])
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test"), (b"last-event-id", raw)],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)  # type: ignore[arg-type]
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b'{"last_event_id":null}'


def test_at_the_length_limit_is_kept() -> None:
    assert ask(headers={"Last-Event-ID": "x" * 1024}) == "x" * 1024


def test_custom_query_parameter_and_length() -> None:
    config = SSEConfig(last_event_id_query_param="since", max_last_event_id_length=3)
    assert ask(config=config, params={"since": "abc"}) == "abc"
    assert ask(config=config, params={"lastEventId": "abc"}) is None
    assert ask(config=config, params={"since": "abcd"}) is None


def test_query_parameter_can_be_disabled() -> None:
    assert (
        ask(config=SSEConfig(last_event_id_query_param=None), params={"lastEventId": "7"}) is None
    )


def test_generator_handler_resumes_after_the_id() -> None:
    @get("/events")
    @event_stream
    async def events(last_event_id: NamedDependency[str | None]) -> AsyncIterator[int]:
        start = int(last_event_id or 0)
        for i in range(start + 1, start + 3):
            yield i

    with TestClient(Litestar([events], plugins=[SSEPlugin()])) as client:
        assert (
            client.get("/events", headers={"Last-Event-ID": "5"}).text
            == "data: 6\r\n\r\ndata: 7\r\n\r\n"
        )


def test_provider_works_without_the_plugin() -> None:
    @get(
        "/",
        dependencies={"last_event_id": Provide(provide_last_event_id, sync_to_thread=False)},
        sync_to_thread=False,
    )
    def handler(last_event_id: NamedDependency[str | None]) -> str:
        return str(last_event_id)

    with TestClient(Litestar([handler])) as client:
        assert client.get("/?lastEventId=3").text == "3"


def test_provider_reads_a_request_directly() -> None:
    request = RequestFactory().get("/", headers={"Last-Event-ID": "9"})
    assert provide_last_event_id(request) == "9"
