"""Calls a whole ASGI app in-process, with a fake server that only counts bytes.

``receive`` models a client that sent a GET and then stays connected until the last body
chunk arrived: Litestar's streaming response only returns once ``receive`` reports
``http.disconnect`` after the final chunk, and Starlette's listens for it concurrently.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from benchmarks.apps import PATH, ASGIApp, Message

# Generous: the slowest peer needs ~40 µs per event; a hung app must not hang the run.
CALL_TIMEOUT = 120.0


@dataclasses.dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body_bytes: int
    # http.response.body messages, the final empty one included: tells who batches events.
    body_messages: int
    body: bytes  # empty unless captured


def get_scope(path: str, query_string: bytes = b"") -> dict[str, Any]:
    """The scope uvicorn+httptools builds for ``GET <path>?<query_string>`` (ASGI spec 2.3)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"accept", b"text/event-stream")],
        "state": {},
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query_string,
    }


def http_scope(n: int) -> dict[str, Any]:
    """The scope of ``GET /stream?n=<n>``."""
    return get_scope(PATH, b"n=%d" % n)


async def call(app: ASGIApp, n: int, capture: bool = False) -> Response:
    """Run one request to completion; raise if the app does not finish in time."""
    finished = asyncio.Event()
    requested = False
    status = 0
    headers: list[tuple[bytes, bytes]] = []
    count = 0
    messages = 0
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    # Two send functions so that the timed one does nothing but count.
    async def send_counting(message: Message) -> None:
        nonlocal count, messages, status, headers
        if message["type"] == "http.response.body":
            count += len(message.get("body", b""))
            messages += 1
            if not message.get("more_body", False):
                finished.set()
        elif message["type"] == "http.response.start":
            status = message["status"]
            headers = list(message.get("headers", []))

    async def send_capturing(message: Message) -> None:
        if message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))
        await send_counting(message)

    send = send_capturing if capture else send_counting
    await asyncio.wait_for(app(http_scope(n), receive, send), CALL_TIMEOUT)
    if not finished.is_set():
        raise RuntimeError("the app returned without sending its final body chunk")
    return Response(status, headers, count, messages, b"".join(chunks))


class Lifespan:
    """Runs the app's lifespan startup before the first request and shutdown after the last,
    as a server would (Litestar and Starlette set things up there)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._task: asyncio.Task[None] | None = None
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()

    async def _receive(self) -> Message:
        return await self._to_app.get()

    async def _send(self, message: Message) -> None:
        await self._from_app.put(message)

    async def _exchange(self, kind: str) -> None:
        await self._to_app.put({"type": f"lifespan.{kind}"})
        reply = await asyncio.wait_for(self._from_app.get(), 10.0)
        if reply["type"] != f"lifespan.{kind}.complete":
            raise RuntimeError(f"lifespan {kind} failed: {reply}")

    async def __aenter__(self) -> Lifespan:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        self._task = asyncio.ensure_future(self._app(scope, self._receive, self._send))
        await self._exchange("startup")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._exchange("shutdown")
        if self._task is not None:
            await asyncio.wait_for(self._task, 10.0)


def data_values(body: bytes) -> list[bytes]:
    """The data field of every event, in order (single-line data only)."""
    text = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    values: list[bytes] = []
    for block in text.split(b"\n\n"):
        for line in block.split(b"\n"):
            if line.startswith(b"data:"):
                value = line[5:]
                values.append(value[1:] if value.startswith(b" ") else value)
    return values
