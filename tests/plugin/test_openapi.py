"""OpenAPI: event streams are documented as ``text/event-stream``, one event schema each."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest
from litestar import Litestar, get, post
from litestar.params import JSONBody
from litestar.response import ServerSentEvent as LitestarServerSentEvent
from litestar.response import Stream as LitestarStream
from openapi_spec_validator import validate

from litestar_sse import (
    ServerSentEvent,
    ServerSentEventMessage,
    SSEConfig,
    SSEPlugin,
    Stream,
    event_stream,
)


class Token(msgspec.Struct):
    text: str
    index: int


class Prompt(msgspec.Struct):
    text: str


@post("/chat", status_code=200)
@event_stream
async def chat(data: JSONBody[Prompt]) -> AsyncIterator[Token]:
    yield Token(data.text, 0)


@get("/mixed")
@event_stream
async def mixed() -> AsyncIterator[Token | ServerSentEventMessage]:
    yield Token("a", 0)


@get("/text", media_type="text/event-stream", sync_to_thread=False)
def text() -> Iterator[str]:
    yield "a"


@get("/numbers")
@event_stream
async def numbers() -> AsyncIterator[int]:
    yield 1


@get("/anything")
@event_stream
async def anything() -> AsyncIterator[Any]:
    yield 1


@get("/response", sync_to_thread=False)
def response() -> ServerSentEvent:
    return ServerSentEvent(["a"])


@get("/litestar-response", sync_to_thread=False)
def litestar_response() -> LitestarServerSentEvent:
    return LitestarServerSentEvent(["a"])


@get("/json", sync_to_thread=False)
def json_handler() -> Token:
    return Token("a", 0)


@get("/stream", sync_to_thread=False)
def stream() -> Stream:
    return Stream(["a"])


@get("/litestar-stream", sync_to_thread=False)
def litestar_stream() -> LitestarStream:
    return LitestarStream(["a"])


@get("/described-stream", sync_to_thread=False, response_description="Lines of text")
def described_stream() -> Stream:
    return Stream(["a"])


HANDLERS = [
    chat,
    mixed,
    text,
    numbers,
    anything,
    response,
    litestar_response,
    json_handler,
    stream,
    litestar_stream,
    described_stream,
]

GENERIC_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {"type": "string"},
        "event": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer", "minimum": 0},
    },
}


def schema_of(config: SSEConfig | None = None) -> dict[str, Any]:
    app = Litestar(HANDLERS, plugins=[SSEPlugin(config)])
    return app.openapi_schema.to_schema()


def success_content(doc: dict[str, Any], path: str, method: str = "get") -> dict[str, Any]:
    responses = doc["paths"][path][method]["responses"]
    return next(r["content"] for code, r in responses.items() if code.startswith("2"))


def without_description(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != "description"}


def test_document_is_valid_openapi_31() -> None:
    doc = schema_of()
    assert doc["openapi"] == "3.1.0"
    validate(doc)


def test_typed_generator_is_documented_as_json_data_of_its_item_schema() -> None:
    doc = schema_of()
    content = success_content(doc, "/chat", "post")
    assert list(content) == ["text/event-stream"]
    schema = content["text/event-stream"]["schema"]
    assert without_description(schema) == {
        **GENERIC_EVENT,
        "properties": {
            **GENERIC_EVENT["properties"],
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": "#/components/schemas/Token"},
            },
        },
    }
    assert "Server-Sent Event" in schema["description"]
    assert doc["components"]["schemas"]["Token"]["required"] == ["index", "text"]
    # the request body is documented as usual
    assert doc["paths"]["/chat"]["post"]["requestBody"]["content"]["application/json"]


def test_message_members_do_not_change_the_data_schema() -> None:
    doc = schema_of()
    data = success_content(doc, "/mixed")["text/event-stream"]["schema"]["properties"]["data"]
    assert data["contentSchema"] == {"$ref": "#/components/schemas/Token"}


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/text", {"type": "string"}),
        ("/anything", {"type": "string"}),
        (
            "/numbers",
            {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"type": "integer"},
            },
        ),
    ],
)
def test_data_schema_by_item_type(path: str, data: dict[str, Any]) -> None:
    schema = success_content(schema_of(), path)["text/event-stream"]["schema"]
    assert schema["properties"]["data"] == data


@pytest.mark.parametrize("path", ["/response", "/litestar-response"])
def test_server_sent_event_responses_are_event_streams_not_json(path: str) -> None:
    content = success_content(schema_of(), path)
    assert list(content) == ["text/event-stream"]
    assert without_description(content["text/event-stream"]["schema"]) == GENERIC_EVENT


@pytest.mark.parametrize(
    ("path", "description"),
    [
        ("/stream", "Stream Response"),
        ("/litestar-stream", "Stream Response"),
        ("/described-stream", "Lines of text"),
    ],
)
def test_a_stream_is_described_as_litestar_describes_its_own(path: str, description: str) -> None:
    responses = schema_of()["paths"][path]["get"]["responses"]
    assert responses["200"]["description"] == description


def test_other_endpoints_are_untouched() -> None:
    content = success_content(schema_of(), "/json")
    assert content == {"application/json": {"schema": {"$ref": "#/components/schemas/Token"}}}


def test_item_schema_mode_for_openapi_32() -> None:
    doc = schema_of(SSEConfig(openapi_item_schema=True))
    for path, method in [("/chat", "post"), ("/text", "get"), ("/response", "get")]:
        media = success_content(doc, path, method)["text/event-stream"]
        assert list(media) == ["itemSchema"]
    assert success_content(doc, "/chat", "post")["text/event-stream"]["itemSchema"]["properties"][
        "data"
    ]["contentSchema"] == {"$ref": "#/components/schemas/Token"}
    doc["openapi"] = "3.2.0"
    validate(doc)


def test_openapi_route_serves_the_document() -> None:
    from litestar.testing import TestClient

    with TestClient(Litestar(HANDLERS, plugins=[SSEPlugin()])) as client:
        response = client.get("/schema/openapi.json")
        assert response.status_code == 200
        assert (
            "text/event-stream"
            in response.json()["paths"]["/chat"]["post"]["responses"]["200"]["content"]
        )
