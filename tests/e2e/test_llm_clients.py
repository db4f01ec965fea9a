"""The official openai and anthropic SDKs against the example apps, under a real uvicorn.

The apps have everything on that used to trip the SDKs' decoders: an app-wide ``retry``, an id
on every event, pings between tokens (the ping interval is shorter than the pause between
tokens), typed items. Every chunk must arrive and nothing may raise; a failure of the model
must reach the client as the SDK's own error type. Before client-safe framing, the openai SDK
raised ``JSONDecodeError`` on the lone ``retry`` block and on pings after an id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import anthropic
import httpx
import httpx_sse
import openai
import pytest

from examples import anthropic_compatible, openai_compatible
from tests.e2e.live_server import Server, live_server

# Pings every 20 ms, a token every 50 ms: a ping or two after each event's id.
TIMING = {"EXAMPLE_PING_INTERVAL": "0.02", "EXAMPLE_TOKEN_DELAY": "0.05"}
PROMPT = "Why stream tokens?"
MESSAGES = [{"role": "user", "content": PROMPT}]


def expected_text(module: object) -> str:
    return "".join(module.tokenize(module.fake_answer(PROMPT)))  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def openai_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with live_server(
        "examples.openai_compatible:app", tmp_path_factory.mktemp("openai"), env=TIMING
    ) as server:
        yield server


@pytest.fixture(scope="module")
def anthropic_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with live_server(
        "examples.anthropic_compatible:app", tmp_path_factory.mktemp("anthropic"), env=TIMING
    ) as server:
        yield server


def raw_body(server: Server, path: str, body: dict[str, object]) -> bytes:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        response = client.post(path, json=body)
        assert response.status_code == 200
        return response.content


def test_the_wire_has_what_used_to_break_the_decoders(openai_server: Server) -> None:
    """The conditions of the tests below hold: a retry field, ids, and pings after ids."""
    body = raw_body(openai_server, "/v1/chat/completions", {"model": "m", "messages": MESSAGES})
    assert body.startswith(b"retry: 3000\r\n")
    assert body.count(b"\r\nid: ") >= 10
    assert b"\r\n\r\n: ping\r\n" in body  # a ping right after an event with an id
    assert body.endswith(b"data: [DONE]\r\n\r\n")
    # No blank line ever follows another blank line or a lone field/comment block.
    blocks = body.split(b"\r\n\r\n")[:-1]
    assert all(b"data:" in block for block in blocks)


def test_openai_sync(openai_server: Server) -> None:
    client = openai.OpenAI(base_url=f"{openai_server.url}/v1", api_key="unused", max_retries=0)
    stream = client.chat.completions.create(model="fake", messages=MESSAGES, stream=True)
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text == expected_text(openai_compatible)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}


def test_openai_async(openai_server: Server) -> None:
    async def run() -> str:
        client = openai.AsyncOpenAI(
            base_url=f"{openai_server.url}/v1", api_key="unused", max_retries=0
        )
        stream = await client.chat.completions.create(model="fake", messages=MESSAGES, stream=True)
        parts = [chunk.choices[0].delta.content or "" async for chunk in stream]
        await client.close()
        return "".join(parts)

    assert asyncio.run(run()) == expected_text(openai_compatible)


def test_openai_sees_a_failure_as_its_api_error(openai_server: Server) -> None:
    client = openai.OpenAI(base_url=f"{openai_server.url}/v1", api_key="unused", max_retries=0)
    failing = [{"role": "user", "content": "FAIL please"}]
    received: list[str] = []

    def read_all() -> None:
        stream = client.chat.completions.create(model="fake", messages=failing, stream=True)
        received.extend(chunk.choices[0].delta.content or "" for chunk in stream)

    with pytest.raises(openai.APIError, match="The stream failed on the server") as caught:
        read_all()
    assert len(received) == 4  # the role chunk and three tokens, then the error
    assert caught.value.body == {
        "message": "The stream failed on the server",
        "type": "server_error",
        "param": None,
        "code": None,
    }

    async def run_async() -> None:
        aclient = openai.AsyncOpenAI(
            base_url=f"{openai_server.url}/v1", api_key="unused", max_retries=0
        )
        stream = await aclient.chat.completions.create(model="fake", messages=failing, stream=True)

        async def read_all_async() -> None:
            async for _ in stream:
                pass

        with pytest.raises(openai.APIError):
            await read_all_async()
        await aclient.close()

    asyncio.run(run_async())


def test_anthropic_sync(anthropic_server: Server) -> None:
    client = anthropic.Anthropic(base_url=anthropic_server.url, api_key="unused", max_retries=0)
    with client.messages.stream(model="fake", max_tokens=500, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == expected_text(anthropic_compatible)
    assert final.stop_reason == "end_turn"
    assert final.content[0].text == text  # type: ignore[union-attr]
    events = list(
        client.messages.create(model="fake", max_tokens=500, messages=MESSAGES, stream=True)
    )
    assert events[0].type == "message_start"
    assert events[-1].type == "message_stop"


def test_anthropic_async(anthropic_server: Server) -> None:
    async def run() -> str:
        client = anthropic.AsyncAnthropic(
            base_url=anthropic_server.url, api_key="unused", max_retries=0
        )
        async with client.messages.stream(
            model="fake", max_tokens=500, messages=MESSAGES
        ) as stream:
            text = "".join([part async for part in stream.text_stream])
        await client.close()
        return text

    assert asyncio.run(run()) == expected_text(anthropic_compatible)


def test_anthropic_sees_a_failure_as_its_status_error(anthropic_server: Server) -> None:
    client = anthropic.Anthropic(base_url=anthropic_server.url, api_key="unused", max_retries=0)
    failing = [{"role": "user", "content": "FAIL please"}]

    def read_all() -> None:
        with client.messages.stream(model="fake", max_tokens=500, messages=failing) as stream:
            for _ in stream.text_stream:
                pass

    with pytest.raises(anthropic.APIStatusError, match="The stream failed on the server"):
        read_all()

    async def read_all_async(aclient: anthropic.AsyncAnthropic) -> None:
        async with aclient.messages.stream(
            model="fake", max_tokens=500, messages=failing
        ) as stream:
            async for _ in stream.text_stream:
                pass

    async def run_async() -> None:
        aclient = anthropic.AsyncAnthropic(
            base_url=anthropic_server.url, api_key="unused", max_retries=0
        )
        with pytest.raises(anthropic.APIStatusError):
            await read_all_async(aclient)
        await aclient.close()

    asyncio.run(run_async())


@pytest.mark.parametrize("app", ["openai", "anthropic"])
def test_httpx_sse_sees_no_empty_event(
    app: str, openai_server: Server, anthropic_server: Server
) -> None:
    """httpx-sse's decoder, like the SDKs', dispatches on a blank line once an id was seen."""
    server, path = (
        (openai_server, "/v1/chat/completions")
        if app == "openai"
        else (anthropic_server, "/v1/messages")
    )
    body = {"model": "m", "max_tokens": 500, "messages": MESSAGES}
    with (
        httpx.Client(base_url=server.url, timeout=10) as client,
        httpx_sse.connect_sse(client, "POST", path, json=body) as source,
    ):
        events = list(source.iter_sse())
    assert len(events) > 10
    assert all(event.data for event in events)
    assert all(event.id for event in events)
