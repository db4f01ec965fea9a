"""An Anthropic-compatible ``POST /v1/messages`` that streams a (fake) model's answer.

The official ``anthropic`` SDK talks to it unchanged::

    .venv/bin/uvicorn examples.anthropic_compatible:app

    from anthropic import Anthropic
    client = Anthropic(base_url="http://127.0.0.1:8000", api_key="unused")
    with client.messages.stream(
        model="fake", max_tokens=200, messages=[{"role": "user", "content": "Why stream?"}]
    ) as stream:
        for text in stream.text_stream:
            print(text, end="", flush=True)

The Messages API names its events (``message_start``, ``content_block_delta``, ...,
``message_stop``); each is a typed struct here, sent with its type as the event name and an
id. A failure of the model mid-answer reaches the client as Anthropic's ``event: error``,
which the SDK raises as ``anthropic.APIStatusError``. A prompt containing ``FAIL`` fails
after three tokens, to try it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
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
    anthropic_error,
    event_stream,
)

logger = logging.getLogger(__name__)

TOKEN_DELAY = float(os.environ.get("EXAMPLE_TOKEN_DELAY", "0.02"))
PING_INTERVAL = float(os.environ.get("EXAMPLE_PING_INTERVAL", "15"))


class Message(msgspec.Struct):
    role: str
    content: str | list[dict[str, object]]


class MessagesRequest(msgspec.Struct):
    model: str
    max_tokens: int
    messages: list[Message]
    stream: bool = False


class Usage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0


class MessageBody(msgspec.Struct):
    id: str
    model: str
    usage: Usage
    content: list[object] = msgspec.field(default_factory=list)
    type: str = "message"
    role: str = "assistant"
    stop_reason: str | None = None
    stop_sequence: str | None = None


class TextBlock(msgspec.Struct):
    text: str = ""
    type: str = "text"


class TextDelta(msgspec.Struct):
    text: str
    type: str = "text_delta"


class StopDelta(msgspec.Struct):
    stop_reason: Literal["end_turn", "max_tokens"]
    stop_sequence: str | None = None


# One struct per event type; ``type`` is both a JSON member and the SSE event name.
class MessageStart(msgspec.Struct, tag="message_start", tag_field="type"):
    message: MessageBody


class ContentBlockStart(msgspec.Struct, tag="content_block_start", tag_field="type"):
    index: int
    content_block: TextBlock


class ContentBlockDelta(msgspec.Struct, tag="content_block_delta", tag_field="type"):
    index: int
    delta: TextDelta


class ContentBlockStop(msgspec.Struct, tag="content_block_stop", tag_field="type"):
    index: int


class MessageDelta(msgspec.Struct, tag="message_delta", tag_field="type"):
    delta: StopDelta
    usage: Usage


class MessageStop(msgspec.Struct, tag="message_stop", tag_field="type"):
    pass


StreamEvent = (
    MessageStart
    | ContentBlockStart
    | ContentBlockDelta
    | ContentBlockStop
    | MessageDelta
    | MessageStop
)


def tokenize(text: str) -> list[str]:
    return re.findall(r"\s*\S+", text)


def fake_answer(prompt: str) -> str:
    topic = prompt.strip().rstrip("?.!") or "nothing in particular"
    return (
        f"You asked about {topic}. Named events let the client tell the start of a message, "
        "each piece of text and the end apart, without looking inside the data."
    )


def prompt_of(request: MessagesRequest) -> str:
    content = request.messages[-1].content if request.messages else ""
    if isinstance(content, str):
        return content
    return "".join(str(block.get("text", "")) for block in content)


async def answer(request: MessagesRequest) -> AsyncIterator[ServerSentEventMessage]:
    prompt = prompt_of(request)
    tokens = tokenize(fake_answer(prompt))[: request.max_tokens]
    message_id = f"msg_{uuid.uuid4().hex}"
    position = 0

    def event(body: StreamEvent) -> ServerSentEventMessage:
        nonlocal position
        position += 1
        name = msgspec.inspect.type_info(type(body)).tag  # type: ignore[attr-defined]
        return ServerSentEventMessage(data=body, event=name, id=f"{message_id}:{position}")

    sent = 0
    try:
        usage = Usage(input_tokens=len(tokenize(prompt)))
        yield event(MessageStart(MessageBody(message_id, request.model, usage)))
        yield event(ContentBlockStart(0, TextBlock()))
        for n, token in enumerate(tokens, 1):
            await asyncio.sleep(TOKEN_DELAY)
            if "FAIL" in prompt and n > 3:
                raise RuntimeError("the model ran out of GPU memory")
            yield event(ContentBlockDelta(0, TextDelta(token)))
            sent += 1
        yield event(ContentBlockStop(0))
        stop = "max_tokens" if len(tokens) == request.max_tokens else "end_turn"
        yield event(MessageDelta(StopDelta(stop), Usage(output_tokens=sent)))
        yield event(MessageStop())
    finally:
        logger.info("message %s: %d of %d tokens sent", message_id, sent, len(tokens))


@post("/v1/messages", status_code=200)
@event_stream(error_event=anthropic_error())
async def messages(data: JSONBody[MessagesRequest]) -> AsyncIterator[ServerSentEventMessage]:
    """Stream the answer as the Messages API's named events."""
    return answer(data)


app = Litestar(
    [messages],
    plugins=[SSEPlugin(SSEConfig(retry=3000, ping_interval=PING_INTERVAL, send_timeout=30))],
)
