"""Stream a (fake) language model's answer token by token, the way chat APIs do.

``POST /chat`` takes a JSON prompt and answers with one event per token, then a final
``data: [DONE]``. ``EventSource`` cannot send a POST, so the page reads the stream with
``fetch()``::

    .venv/bin/uvicorn examples.llm_tokens:app
    curl -N -X POST http://127.0.0.1:8000/chat -H 'content-type: application/json' \\
         -d '{"prompt": "Why stream tokens?"}'
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator

import msgspec
from litestar import Litestar, MediaType, get, post
from litestar.params import FromQuery, JSONBody

from litestar_sse import ServerSentEvent

logger = logging.getLogger(__name__)


class ChatRequest(msgspec.Struct):
    prompt: str
    max_tokens: int = 200


class Token(msgspec.Struct):
    index: int
    text: str


class Usage(msgspec.Struct):
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


def tokenize(text: str) -> list[str]:
    """Words with their leading space, a crude stand-in for a real tokenizer."""
    return re.findall(r"\s*\S+", text)


def fake_answer(prompt: str) -> str:
    topic = prompt.strip().rstrip("?.!") or "nothing in particular"
    return (
        f"You asked about {topic}. Streaming the answer as it is generated means the first "
        "words reach you in milliseconds instead of seconds, and the page can render them "
        "as they arrive. Each token is one event; the last event is [DONE]."
    )


async def generate(request: ChatRequest, delay: float) -> AsyncIterator[object]:
    tokens = tokenize(fake_answer(request.prompt))[: request.max_tokens]
    sent = 0
    try:
        for index, text in enumerate(tokens):
            await asyncio.sleep(delay)  # the model thinking
            yield Token(index, text)
            sent += 1
        finish = "length" if len(tokens) == request.max_tokens else "stop"
        yield {"event": "usage", "data": Usage(len(tokenize(request.prompt)), sent, finish)}
        yield "[DONE]"
    finally:
        # Runs on disconnect too: the place to stop the real model and account for usage.
        logger.info("generated %d of %d tokens", sent, len(tokens))


@post("/chat", status_code=200)
async def chat(data: JSONBody[ChatRequest], delay: FromQuery[float] = 0.05) -> ServerSentEvent:
    """Answer ``data.prompt`` as a stream of tokens (``?delay=0`` for no pause)."""
    return ServerSentEvent(generate(data, delay), send_timeout=30)


PAGE = """<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>litestar-sse: token streaming</title>
<link rel="icon" href="data:,">
<style>
  body { font: 16px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 42rem; }
  textarea { width: 100%; font: inherit; }
  #answer { white-space: pre-wrap; min-height: 6rem; padding: 1rem; background: #f6f8fa; }
  #usage { color: #57606a; font-size: 13px; }
</style>
<h1>Ask the fake model</h1>
<form id="ask">
  <textarea id="prompt" rows="3">Why stream tokens?</textarea>
  <button>Send</button> <button type="button" id="stop">Stop</button>
</form>
<p id="answer"></p>
<p id="usage"></p>
<script>
  // EventSource only does GET, so POST with fetch() and parse the stream here.
  let controller = null;
  document.getElementById("stop").onclick = () => controller && controller.abort();
  document.getElementById("ask").onsubmit = async (submit) => {
    submit.preventDefault();
    const answer = document.getElementById("answer");
    const usage = document.getElementById("usage");
    answer.textContent = ""; usage.textContent = "";
    controller = new AbortController();
    const response = await fetch("/chat", {
      method: "POST",
      headers: {"content-type": "application/json", "accept": "text/event-stream"},
      body: JSON.stringify({prompt: document.getElementById("prompt").value}),
      signal: controller.signal,
    });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read().catch(() => ({done: true}));
      if (done) break;
      buffer += value.replace(/\\r\\n?/g, "\\n");
      let end;
      while ((end = buffer.indexOf("\\n\\n")) >= 0) {
        const block = buffer.slice(0, end); buffer = buffer.slice(end + 2);
        let type = "message", data = [];
        for (const line of block.split("\\n")) {
          if (line.startsWith("event:")) type = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        const text = data.join("\\n");
        if (text === "[DONE]") return;
        if (type === "usage") {
          const u = JSON.parse(text);
          usage.textContent = `${u.completion_tokens} tokens, finish: ${u.finish_reason}`;
        } else {
          answer.textContent += JSON.parse(text).text;
        }
      }
    }
  };
</script>
</html>
"""


@get("/", media_type=MediaType.HTML)
async def index() -> str:
    return PAGE


app = Litestar([chat, index])
