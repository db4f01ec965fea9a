"""An OpenAI-compatible ``POST /v1/chat/completions`` that streams a (fake) model's answer.

The official ``openai`` SDK talks to it unchanged::

    .venv/bin/uvicorn examples.openai_compatible:app

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")
    for chunk in client.chat.completions.create(
        model="fake", messages=[{"role": "user", "content": "Why stream?"}], stream=True
    ):
        print(chunk.choices[0].delta.content or "", end="", flush=True)

Each token is a typed ``chat.completion.chunk`` with an id; the stream ends with OpenAI's
``data: [DONE]`` sentinel. The app pings idle streams and sends clients a reconnection time,
framed so that the SDK's decoder never sees an event without data. A failure of the model
mid-answer reaches the client as OpenAI's ``{"error": ...}`` event, which the SDK raises as
``openai.APIError`` instead of returning a truncated answer as if it were complete. A prompt
containing ``FAIL`` fails after three tokens, to try it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Literal

import msgspec
from litestar import Litestar, post
from litestar.params import JSONBody

from litestar_sse import (
    ServerSentEventMessage,
    SSEConfig,
    SSEPlugin,
    event_stream,
    openai_error,
)

logger = logging.getLogger(__name__)

# Seconds between tokens, and between pings of an idle stream (environment, for the tests).
TOKEN_DELAY = float(os.environ.get("EXAMPLE_TOKEN_DELAY", "0.02"))
PING_INTERVAL = float(os.environ.get("EXAMPLE_PING_INTERVAL", "15"))


class Message(msgspec.Struct):
    role: str
    content: str


class ChatRequest(msgspec.Struct):
    model: str
    messages: list[Message]
    stream: bool = False
    max_tokens: int | None = None


class Delta(msgspec.Struct, omit_defaults=True):
    role: str | None = None
    content: str | None = None


class Choice(msgspec.Struct):
    index: int
    delta: Delta
    finish_reason: Literal["stop", "length"] | None = None


class ChatCompletionChunk(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[Choice]
    object: str = "chat.completion.chunk"


class ModelFailure(RuntimeError):
    """The (fake) model broke down mid-answer."""


def tokenize(text: str) -> list[str]:
    """Words with their leading space, a crude stand-in for a real tokenizer."""
    return re.findall(r"\s*\S+", text)


def fake_answer(prompt: str) -> str:
    topic = prompt.strip().rstrip("?.!") or "nothing in particular"
    return (
        f"You asked about {topic}. Streaming sends each token as soon as the model makes it, "
        "so the first words arrive in milliseconds and the client renders them as they come."
    )


async def complete(request: ChatRequest) -> AsyncIterator[ServerSentEventMessage | str]:
    prompt = request.messages[-1].content if request.messages else ""
    tokens = tokenize(fake_answer(prompt))[: request.max_tokens]
    completion = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())

    def chunk(n: int, delta: Delta, finish: Literal["stop", "length"] | None = None) -> object:
        body = ChatCompletionChunk(completion, created, request.model, [Choice(0, delta, finish)])
        # An id per event: a client that reconnects can say where it was.
        return ServerSentEventMessage(data=body, id=f"{completion}:{n}")

    sent = 0
    try:
        yield chunk(0, Delta(role="assistant", content=""))
        for n, token in enumerate(tokens, 1):
            await asyncio.sleep(TOKEN_DELAY)  # the model thinking
            if "FAIL" in prompt and n > 3:
                raise ModelFailure("the model ran out of GPU memory")
            yield chunk(n, Delta(content=token))
            sent += 1
        finish = "length" if request.max_tokens == len(tokens) else "stop"
        yield chunk(len(tokens) + 1, Delta(), finish)
        yield "[DONE]"
    finally:
        # Runs when the client stops reading too: stop the real model here, count usage.
        logger.info("completion %s: %d of %d tokens sent", completion, sent, len(tokens))


@post("/v1/chat/completions", status_code=200)
@event_stream(error_event=openai_error())
async def chat_completions(
    data: JSONBody[ChatRequest],
) -> AsyncIterator[ServerSentEventMessage | str]:
    """Stream the answer to the last message as ``chat.completion.chunk`` events."""
    return complete(data)


app = Litestar(
    [chat_completions],
    plugins=[SSEPlugin(SSEConfig(retry=3000, ping_interval=PING_INTERVAL, send_timeout=30))],
)
