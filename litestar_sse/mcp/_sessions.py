"""The MCP SDK's Streamable HTTP app, each request told its session, resumed on any worker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any, Final

from litestar_sse.codec import encode_event
from litestar_sse.mcp._current import current_session
from litestar_sse.mcp._sdk import (
    LAST_EVENT_ID_HEADER,
    MCP_SESSION_ID_HEADER,
    StreamableHTTPSessionManager,
    can_take_over,
    holds_session,
    in_flight,
    requestor,
    security_refusal,
    take_over_session,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    from litestar_sse.mcp._session_store import SessionEventStore, StreamSubscription
    from litestar_sse.mcp._store import BroadcastEventStore

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = ("MCPSessions",)

logger = logging.getLogger("litestar_sse.mcp")

SESSION_HEADER: Final = MCP_SESSION_ID_HEADER.lower().encode()
LAST_EVENT_HEADER: Final = LAST_EVENT_ID_HEADER.lower().encode()
PING_SECONDS: Final = 15.0
"""A comment line after this long without an event keeps proxies from closing the stream."""
SEND_TIMEOUT: Final = 30.0
"""A client that reads nothing for this long loses its resumed stream (it may resume again)."""
MAX_INITIALIZE_BYTES: Final = 64 * 1024
"""An ``initialize`` body kept for other workers (to take the session over) at most."""


class MCPSessions:
    """The MCP python SDK's Streamable HTTP server, with each session's streams kept apart in
    a :class:`~litestar_sse.mcp.BroadcastEventStore`, and every session served by any worker.

    Give the SDK the store, and serve this instead of the SDK's app::

        store = BroadcastEventStore(broadcaster)
        mcp.streamable_http_app(event_store=store)  # makes mcp.session_manager
        endpoint = MCPSessions(mcp.session_manager, store)  # an ASGI app
        # Litestar: @asgi("/mcp", is_mount=True) calling endpoint(scope, receive, send),
        # and lifespan=[lambda app: mcp.session_manager.run()]

    For each request, before the SDK sees it:

    * **Without** ``Mcp-Session-Id`` (an ``initialize`` that may open a session): a new
      session store is made for it, and registered (with the client's ``initialize``
      params) under the session id the SDK answers with, before that answer reaches the
      client.
    * **With** ``Mcp-Session-Id``: the session's store is looked up in the registry; an
      unknown or closed session is a ``404`` on every worker. A session opened by another
      worker is taken over by this worker's session manager (a transport with that id, the
      handshake already done), so that its requests are served here.
    * ``GET`` **with** ``Last-Event-ID``: answered here, not by the SDK, from the session's
      store: the messages after that id, then live ones until the stream's response,
      whichever worker runs the request (its messages come through the broadcaster). An id
      the session did not hand out is a ``404``, and costs no read.
    * A ``DELETE`` that ends a session closes it in the registry, for every worker.

    With the SDK's authentication, the credential that opened a session (its owner, as the
    SDK records it) is kept in the registry too: a worker taking the session over gives it
    the same owner, and a resumption by another credential is a ``404``, as the SDK answers.

    What stays with one worker: a request runs where it was sent (its stream resumes
    anywhere), and a server-to-client request (sampling, elicitation, roots) is answered to
    the worker that sent it only if the client's reply is routed there.

    Args:
        app: The SDK's ``StreamableHTTPSessionManager`` (``mcp.session_manager``), or any
            ASGI app in front of it (such as ``mcp.streamable_http_app()``, with its
            authentication); then pass the manager as ``manager``.
        store: The store given to the SDK as its ``event_store``.
        manager: The session manager, for sessions opened by other workers; by default
            ``app`` if it is one. Without it, those sessions get the SDK's ``404``.

    Raises:
        ValueError: the manager is stateless (it keeps no sessions and uses no event
            store), or does not use ``store``.
    """

    def __init__(
        self,
        app: ASGIApp | StreamableHTTPSessionManager,
        store: BroadcastEventStore,
        *,
        manager: StreamableHTTPSessionManager | None = None,
    ) -> None:
        if isinstance(app, StreamableHTTPSessionManager):
            manager = app if manager is None else manager
            app = app.handle_request
        if manager is not None:
            if manager.stateless:
                raise ValueError(
                    "the MCP session manager is stateless: it keeps no sessions and uses no "
                    "event store; use a stateful one (stateless_http=False) with MCPSessions"
                )
            if manager.event_store is not store:
                raise ValueError(
                    "the MCP session manager does not use this store: give the same store "
                    "as its event_store (streamable_http_app(event_store=store))"
                )
            if not can_take_over(manager):
                logger.warning(
                    "this MCP SDK's session manager is not one litestar_sse.mcp knows: "
                    "sessions opened by other workers will get 404 (route each "
                    "Mcp-Session-Id to one worker)"
                )
                manager = None
        self.app = app
        self.store = store
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        session_id = headers.get(SESSION_HEADER)
        if session_id is None:
            session = self.store.new_session()
            body = bytearray()
            receive = _recording(receive, body)
            send = self._registering(session, scope, body, send)
        else:
            found = await self.store.find_session(session_id)
            if found is None:
                await _error(send, 404, "Session not found")
                return
            session = found
            if scope["method"] == "GET" and LAST_EVENT_HEADER in headers:
                accept = headers.get(b"accept", "")
                if "text/event-stream" not in accept and "*/*" not in accept:
                    await _error(send, 406, "Not Acceptable: Client must accept text/event-stream")
                    return
                await self._resume(
                    session, session_id, headers[LAST_EVENT_HEADER], scope, receive, send
                )
                return
            if scope["method"] == "DELETE":
                send = self._closing(session_id, send)
        token = current_session.set(session)
        try:
            if session_id is not None:
                await self._hold(session_id, session)
            await self.app(scope, receive, send)
        finally:
            current_session.reset(token)

    async def _hold(self, session_id: str, session: SessionEventStore) -> None:
        """Make sure this worker's session manager serves ``session_id`` (in the context
        of the request, whose session store the session's message loop inherits)."""
        manager = self.manager
        if manager is None or session.initialize is None or holds_session(manager, session_id):
            return
        await take_over_session(manager, session_id, session.initialize, session.owner)

    def _registering(
        self, session: SessionEventStore, scope: Scope, body: bytearray, send: Send
    ) -> Send:
        async def registering_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                new_id = _headers(message).get(SESSION_HEADER)
                if new_id is not None:
                    session.initialize = _initialize_params(body)
                    # the SDK's authentication (inside the app) has set the user by now
                    session.owner = requestor(scope)
                    await self.store.register(new_id, session)
            await send(message)

        return registering_send

    def _closing(self, session_id: str, send: Send) -> Send:
        async def closing_send(message: Message) -> None:
            # Only the SDK's 200 (never its 404, which is also its answer to a credential
            # that is not the session's): the session is then held here, as taken over.
            if message["type"] == "http.response.start" and message["status"] == 200:
                await self.store.close_session(session_id)
            await send(message)

        return closing_send

    async def _resume(
        self,
        session: SessionEventStore,
        session_id: str,
        last_event_id: str,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        manager = self.manager
        if manager is not None:
            refusal = await security_refusal(manager, scope, receive)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        if requestor(scope) != session.owner:  # as the SDK answers another credential
            await _error(send, 404, "Session not found")
            return
        resumed = await session.resume(last_event_id)
        if resumed is None:
            await _error(send, 404, "Unknown Last-Event-ID for this session")
            return
        _, stream = resumed
        async with stream:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream"),
                        (b"cache-control", b"no-cache, no-transform"),
                        (SESSION_HEADER, session_id.encode()),
                    ],
                }
            )
            if manager is None:
                await _stream_until_done(stream, receive, send)
                return
            async with in_flight(manager, session_id):
                await _stream_until_done(stream, receive, send)


async def _stream_until_done(stream: StreamSubscription, receive: Receive, send: Send) -> None:
    """Write ``stream``'s messages as SSE events (a comment when idle) until it ends or the
    client goes; then end the body."""
    lock = asyncio.Lock()

    async def write(body: bytes) -> None:
        async with lock:
            await asyncio.wait_for(
                send({"type": "http.response.body", "body": body, "more_body": True}),
                SEND_TIMEOUT,
            )

    async def pump() -> None:
        async for message in stream:
            if message.data:  # not a priming event
                await write(encode_event(message.data, event="message", id=message.id))

    async def gone() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    pumping = asyncio.ensure_future(pump())
    tasks = {pumping, asyncio.ensure_future(gone())}
    try:
        while True:
            done, _ = await asyncio.wait(
                tasks, timeout=PING_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            if done:
                break
            await write(b": ping\r\n\r\n")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if pumping.done() and not pumping.cancelled() and pumping.exception() is not None:
        logger.warning("resumed MCP stream ended early", exc_info=pumping.exception())
    with contextlib.suppress(OSError, RuntimeError):  # the client may be gone
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _recording(receive: Receive, body: bytearray) -> Receive:
    """``receive``, keeping the first :data:`MAX_INITIALIZE_BYTES` of the body in ``body``
    (one byte more marks it cut)."""

    async def recording_receive() -> Message:
        message = await receive()
        if message["type"] == "http.request" and len(body) <= MAX_INITIALIZE_BYTES:
            body.extend(message.get("body", b"")[: MAX_INITIALIZE_BYTES + 1 - len(body)])
        return message

    return recording_receive


def _initialize_params(body: bytearray) -> dict[str, Any] | None:
    """The params of the ``initialize`` request in ``body``, if it is one (and whole)."""
    if len(body) > MAX_INITIALIZE_BYTES:
        return None
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("method") != "initialize":
        return None
    params = message.get("params")
    return params if isinstance(params, dict) else None


def _headers(scope: MutableMapping[str, Any]) -> dict[bytes, str]:
    """The headers of a scope or ``http.response.start`` message, names lower-cased (the
    first of repeated ones)."""
    out: dict[bytes, str] = {}
    for name, value in scope.get("headers", ()):
        out.setdefault(bytes(name).lower(), bytes(value).decode("latin-1"))
    return out


async def _error(send: Send, status: int, message: str) -> None:
    """A JSON-RPC error without a request id, as the SDK's transport answers."""
    body = json.dumps(
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": message}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
