"""A hand-written MCP server (Streamable HTTP transport) whose streams resume on any worker.

One tool, ``count``, streams a ``notifications/progress`` per step, then its result. Every
JSON-RPC message the server sends is stored in a :class:`~litestar_sse.mcp.BroadcastEventStore`
and goes out as one SSE event carrying the store's id, so a client whose connection drops
reconnects with ``GET /mcp`` and ``Last-Event-ID`` and gets the rest, whichever worker answers.
With ``REDIS_URL`` set, sessions, streams and history live in Redis::

    REDIS_URL=redis://127.0.0.1:6379/0 uvicorn examples.mcp_server:app --workers 2

The official MCP python SDK talks to it unchanged::

    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with streamable_http_client("http://127.0.0.1:8000/mcp") as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("count", {"to": 5}, progress_callback=show)

The tool runs in a task of its own, not in the request: a client that goes away does not stop
it, and what it sends meanwhile is waiting in the store for the client's return.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import AsyncIterator
from typing import Any, Final

from litestar import Litestar, Request, Response, delete, get, post
from litestar.exceptions import HTTPException
from mcp.types import jsonrpc_message_adapter

from litestar_sse import ServerSentEvent, ServerSentEventMessage, SSEConfig, SSEPlugin
from litestar_sse.broadcast import Broadcaster, MemoryBackend, Retention
from litestar_sse.broadcast.types import BroadcastBackend
from litestar_sse.mcp import BroadcastEventStore, SessionEventStore, StreamSubscription

SUPPORTED_VERSIONS: Final = ("2025-03-26", "2025-06-18", "2025-11-25")
SESSION_HEADER: Final = "Mcp-Session-Id"
RETRY_MS = int(os.environ.get("MCP_RETRY_MS", "1000"))
"""How long a client waits before it reconnects (sent in each stream's first event)."""
STEP_SECONDS = float(os.environ.get("MCP_STEP_SECONDS", "0.5"))

TOOLS: Final = [
    {
        "name": "count",
        "description": "Count to `to`, one progress notification per step, then say so.",
        "inputSchema": {
            "type": "object",
            "properties": {"to": {"type": "integer", "minimum": 1, "maximum": 100}},
            "required": ["to"],
        },
    }
]


def retention(topic: str) -> Retention:
    """A session lasts a day after it starts (its entry in the store's registry); a
    request's stream ten minutes after its last message. Neither piles up: idle topics are
    dropped whole."""
    if topic.startswith("mcp:session/"):
        return Retention(max_events=2, idle_ttl=24 * 3600)
    return Retention(max_events=1000, idle_ttl=600)


def make_backend() -> BroadcastBackend:
    url = os.environ.get("REDIS_URL")
    if not url:
        return MemoryBackend(retention=retention)
    from litestar_sse.broadcast import RedisStreamBackend

    prefix = os.environ.get("MCP_REDIS_PREFIX", "mcp-example:")
    return RedisStreamBackend(url, prefix=prefix, retention=retention)


broadcaster = Broadcaster(make_backend())
store = BroadcastEventStore(broadcaster, prefix="mcp:")
running: set[asyncio.Task[None]] = set()
"""The tools' tasks: kept referenced until they end (not cancelled with their request)."""


# -- errors and sessions ---------------------------------------------------------------------


def rpc_error(status: int, code: int, message: str, request_id: Any = None) -> Response[Any]:
    body = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
    return Response(body, status_code=status, media_type="application/json")


async def open_session() -> tuple[str, SessionEventStore]:
    """A new session and its store, known to every worker (the store's registry is in the
    broadcaster)."""
    session_id = secrets.token_urlsafe(24)
    return session_id, await store.open_session(session_id)


async def find_session(request: Request[Any, Any, Any]) -> tuple[str, SessionEventStore]:
    """The request's session id and its store, known to every worker; else 400 (missing)
    or 404 (unknown, or ended)."""
    session_id = request.headers.get(SESSION_HEADER)
    if not session_id:
        raise HTTPException(status_code=400, detail="Missing Mcp-Session-Id")
    session = await store.find_session(session_id)
    if session is None:
        raise HTTPException(status_code=404, detail="Unknown or terminated session")
    version = request.headers.get("mcp-protocol-version")
    if version is not None and version not in SUPPORTED_VERSIONS:
        raise HTTPException(status_code=400, detail=f"Unsupported protocol version {version}")
    return session_id, session


def accepts(request: Request[Any, Any, Any], *types: str) -> bool:
    accept = request.headers.get("accept", "")
    listed = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return "*/*" in listed or all(kind in listed for kind in types)


# -- what the server answers -----------------------------------------------------------------


async def answer(send: Any, request_id: Any, method: str, params: dict[str, Any]) -> None:
    """Run one request: ``send`` each notification, then the response (always one)."""

    async def reply(result: dict[str, Any]) -> None:
        await send({"jsonrpc": "2.0", "id": request_id, "result": result})

    async def fail(code: int, message: str) -> None:
        error = {"code": code, "message": message}
        await send({"jsonrpc": "2.0", "id": request_id, "error": error})

    if method == "initialize":
        wanted = params.get("protocolVersion")
        version = wanted if wanted in SUPPORTED_VERSIONS else SUPPORTED_VERSIONS[-1]
        capabilities = {"tools": {"listChanged": False}}
        info = {"name": "litestar-sse-example", "version": "1.0"}
        await reply({"protocolVersion": version, "capabilities": capabilities, "serverInfo": info})
    elif method == "ping":
        await reply({})
    elif method == "tools/list":
        await reply({"tools": TOOLS})
    elif method == "tools/call":
        arguments = params.get("arguments") or {}
        to = arguments.get("to")
        if params.get("name") != "count":
            await fail(-32602, f"Unknown tool: {params.get('name')!r}")
        elif isinstance(to, bool) or not isinstance(to, int) or not 1 <= to <= 100:
            await fail(-32602, "count needs an integer `to` from 1 to 100")
        else:
            token = (params.get("_meta") or {}).get("progressToken")
            for step in range(1, to + 1):
                await asyncio.sleep(STEP_SECONDS)
                if token is not None:
                    progress = {"progressToken": token, "progress": step, "total": to}
                    progress["message"] = f"step {step} of {to}"
                    await send(
                        {"jsonrpc": "2.0", "method": "notifications/progress", "params": progress}
                    )
            text = f"Counted to {to}."
            await reply({"content": [{"type": "text", "text": text}], "isError": False})
    else:
        await fail(-32601, f"Method not found: {method}")


async def run(stream: SessionEventStore, stream_id: str, message: dict[str, Any]) -> None:
    async def send(payload: dict[str, Any]) -> None:
        await stream.store_event(stream_id, jsonrpc_message_adapter.validate_python(payload))

    try:
        await answer(send, message["id"], message["method"], message.get("params") or {})
    except Exception:
        error = {"code": -32603, "message": "Internal error"}
        await send({"jsonrpc": "2.0", "id": message["id"], "error": error})
        raise


async def events(subscription: StreamSubscription) -> AsyncIterator[ServerSentEventMessage]:
    """Each stored message as one SSE event with its MCP event id; the priming event (empty
    data) also tells the client how long to wait before it reconnects."""
    async with subscription:
        async for item in subscription:
            retry = None if item.data else RETRY_MS
            yield ServerSentEventMessage(data=item.data, id=item.id, retry=retry)


# -- the endpoint ----------------------------------------------------------------------------


@post("/mcp", status_code=200)
async def mcp_post(request: Request[Any, Any, Any]) -> Response[Any]:
    if not accepts(request, "application/json", "text/event-stream"):
        return rpc_error(406, -32600, "Accept application/json and text/event-stream")
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return rpc_error(415, -32600, "Content-Type must be application/json")
    try:
        message = json.loads(await request.body())
    except ValueError:
        return rpc_error(400, -32700, "Parse error")
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        return rpc_error(400, -32600, "Invalid Request: one JSON-RPC message, not a batch")
    method = message.get("method")
    is_request = "id" in message and isinstance(method, str)
    if method == "initialize" and is_request:
        session_id, stream = await open_session()
    else:
        session_id, stream = await find_session(request)
    headers = {SESSION_HEADER: session_id}
    if not is_request:  # a notification, or the client's answer to a request of ours
        return Response(None, status_code=202, headers=headers)

    stream_id = json.dumps(message["id"])  # 1 and "1" are different requests
    # Follow the stream before anything is stored in it: every message arrives once.
    subscription = await stream.subscribe(stream_id)
    try:
        await stream.store_event(stream_id, None)  # priming: an id before any message
    except BaseException:
        subscription.close()
        raise
    task = asyncio.get_running_loop().create_task(run(stream, stream_id, message))
    running.add(task)
    task.add_done_callback(running.discard)
    return ServerSentEvent(events(subscription), headers=headers)


@get("/mcp")
async def mcp_get(request: Request[Any, Any, Any]) -> Response[Any]:
    """Resume a request's stream after ``Last-Event-ID``: what the client missed, then the
    stream live until the request's response. Only an id of this session opens a stream."""
    if not accepts(request, "text/event-stream"):
        return rpc_error(406, -32600, "Accept text/event-stream")
    session_id, stream = await find_session(request)
    headers = {SESSION_HEADER: session_id}
    last_event_id = request.headers.get("last-event-id")
    if not last_event_id:  # no standalone stream: this server sends nothing unprompted
        return Response(None, status_code=405, headers={**headers, "Allow": "POST, DELETE"})
    resumed = await stream.resume(last_event_id)
    if resumed is None:
        return rpc_error(404, -32600, "Unknown Last-Event-ID for this session")
    _, subscription = resumed
    return ServerSentEvent(events(subscription), headers=headers)


@delete("/mcp", status_code=200)
async def mcp_delete(request: Request[Any, Any, Any]) -> Response[Any]:
    session_id, _ = await find_session(request)
    await store.close_session(session_id)
    return Response(None, status_code=200)


app = Litestar(
    [mcp_post, mcp_get, mcp_delete],
    plugins=[SSEPlugin(SSEConfig(broadcaster=broadcaster, ping_interval=15))],
)
