"""Token streaming over POST, the way LLM APIs answer a prompt."""

import asyncio
from collections.abc import AsyncIterator

import msgspec
from litestar import Litestar, post
from litestar.params import JSONBody

from litestar_sse import ServerSentEventMessage, SSEPlugin, event_stream


class Prompt(msgspec.Struct):
    text: str


class Token(msgspec.Struct):
    text: str


async def generate(prompt: str) -> AsyncIterator[str]:
    """Stands in for the model: one token at a time."""
    for word in prompt.split():
        await asyncio.sleep(0)
        yield word


@post("/chat", status_code=200)  # Litestar answers a POST with 201 unless told otherwise
@event_stream
async def chat(data: JSONBody[Prompt]) -> AsyncIterator[Token | ServerSentEventMessage]:
    async for word in generate(data.text):
        yield Token(word)  # data: {"text":"..."}
    yield ServerSentEventMessage(data="[DONE]")  # the usual end marker, as plain text


app = Litestar([chat], plugins=[SSEPlugin()])
