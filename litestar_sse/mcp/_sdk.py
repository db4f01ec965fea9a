"""Every use of the MCP python SDK, in one module.

The public names: the ``EventStore`` interface and its types, the JSON-RPC message types,
the Streamable HTTP transport's header names and standalone stream id.

The private ones, all in :func:`holds_session`, :func:`take_over_session` and
:func:`in_flight`: a session opened by another worker is taken over by this worker's
``StreamableHTTPSessionManager`` (``mcp`` 2.x keeps sessions in its ``_server_instances``,
their owners in ``_session_owners``, and runs them in its ``_task_group``, with its
``_lifespan_state``, ``_session_creation_lock`` and ``_discard_session``); a resumption
answered outside the SDK holds the session open as the SDK's own would (the transport's
``_requests_in_flight`` and ``_idle_timeout``). ``tests/mcp/test_mcp_sdk.py`` checks each
of them against the installed SDK, so a release that changes one fails there, by name; a
manager without them is never touched (:func:`can_take_over` is false, and such requests
get the SDK's own ``404``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, cast

import anyio
from anyio.abc import TaskStatus

try:
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, authorization_context
    from mcp.server.connection import Connection
    from mcp.server.runner import serve_connection
    from mcp.server.streamable_http import (
        GET_STREAM_KEY,
        LAST_EVENT_ID_HEADER,
        MCP_SESSION_ID_HEADER,
        EventCallback,
        EventId,
        EventMessage,
        EventStore,
        StreamableHTTPServerTransport,
        StreamId,
    )
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from mcp.server.transport_security import TransportSecurityMiddleware
    from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
    from mcp.types import InitializeRequestParams, JSONRPCMessage, jsonrpc_message_adapter
    from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION
    from starlette.requests import Request
    from starlette.types import ASGIApp
except ImportError as exc:  # pragma: no cover - exercised in a fresh interpreter
    raise ImportError(
        "litestar_sse.mcp needs the MCP python SDK: pip install 'litestar-sse[mcp]'"
    ) from exc

__all__ = (
    "GET_STREAM_KEY",
    "LAST_EVENT_ID_HEADER",
    "MCP_SESSION_ID_HEADER",
    "EventCallback",
    "EventId",
    "EventMessage",
    "EventStore",
    "JSONRPCMessage",
    "StreamId",
    "StreamableHTTPSessionManager",
    "can_take_over",
    "holds_session",
    "in_flight",
    "jsonrpc_message_adapter",
    "requestor",
    "security_refusal",
    "take_over_session",
)

logger = logging.getLogger("litestar_sse.mcp")

_MANAGER_INTERNALS = (
    "_server_instances",
    "_task_group",
    "_lifespan_state",
    "_session_creation_lock",
    "_discard_session",
    "_session_owners",
)
_TRANSPORT_INTERNALS = ("_requests_in_flight", "_idle_timeout")


def can_take_over(manager: Any) -> bool:
    """Whether ``manager`` is a stateful session manager of the shape this module knows."""
    return (
        isinstance(manager, StreamableHTTPSessionManager)
        and not manager.stateless
        and all(hasattr(manager, name) for name in _MANAGER_INTERNALS)
        and all(hasattr(StreamableHTTPServerTransport(None), name) for name in _TRANSPORT_INTERNALS)
    )


async def security_refusal(
    manager: StreamableHTTPSessionManager, scope: Any, receive: Any
) -> ASGIApp | None:
    """The SDK's answer to a request its transport security (``Host`` and ``Origin``
    checks against DNS rebinding) refuses, or ``None``; as the transport checks a ``GET``."""
    checks = TransportSecurityMiddleware(manager.security_settings)
    return await checks.validate_request(Request(scope, receive), is_post=False)


def requestor(scope: Any) -> dict[str, Any] | None:
    """Who makes the request, as the SDK compares it with the owner of a session: the
    credential the SDK's authentication put in ``scope["user"]``, or ``None``."""
    user = scope.get("user")
    return dict(authorization_context(user)) if isinstance(user, AuthenticatedUser) else None


@asynccontextmanager
async def in_flight(manager: StreamableHTTPSessionManager, session_id: str) -> AsyncIterator[None]:
    """Count a request answered outside the SDK as in flight for session ``session_id``
    (if this process serves it): the SDK does not end a session as idle while one is."""
    transport = manager._server_instances.get(session_id)
    idle_scope = None if transport is None else transport.idle_scope
    if transport is None or idle_scope is None or transport._idle_timeout is None:
        yield
        return
    transport._requests_in_flight += 1
    idle_scope.deadline = math.inf
    try:
        yield
    finally:
        transport._requests_in_flight -= 1
        if not transport._requests_in_flight:
            idle_scope.deadline = anyio.current_time() + transport._idle_timeout


def holds_session(manager: StreamableHTTPSessionManager, session_id: str) -> bool:
    """Whether this process's ``manager`` serves session ``session_id``."""
    return session_id in manager._server_instances


async def take_over_session(
    manager: StreamableHTTPSessionManager,
    session_id: str,
    initialize: Mapping[str, Any],
    owner: Mapping[str, Any] | None,
) -> bool:
    """Serve session ``session_id`` (opened on another worker by ``owner``, see
    :func:`requestor`, whose client sent the ``initialize`` params ``initialize``) in this
    process, as if it had been opened here: a transport with that id, owned by ``owner``,
    and the server's message loop on a connection that has already completed the
    handshake. Run from the request's context: the loop inherits it (and so the session's
    store).

    ``False`` when it cannot: the manager is not running, is at ``max_sessions``, or the
    params are not valid ``initialize`` params.
    """
    try:
        params = InitializeRequestParams.model_validate(initialize, by_name=False)
    except ValueError:
        return False
    version = params.protocol_version
    if version not in HANDSHAKE_PROTOCOL_VERSIONS:
        version = LATEST_HANDSHAKE_VERSION
    async with manager._session_creation_lock:
        if session_id in manager._server_instances:
            return True
        task_group = manager._task_group
        full = manager.max_sessions is not None and (
            len(manager._server_instances) >= manager.max_sessions
        )
        if task_group is None or full:
            return False
        transport = StreamableHTTPServerTransport(
            mcp_session_id=session_id,
            is_json_response_enabled=manager.json_response,
            event_store=manager.event_store,
            security_settings=manager.security_settings,
            retry_interval=manager.retry_interval,
            idle_timeout=manager.session_idle_timeout,
        )
        if owner is not None:
            manager._session_owners[session_id] = cast("Any", dict(owner))
        manager._server_instances[session_id] = transport
    try:
        await task_group.start(partial(_serve, manager, transport, params, version))
    except BaseException:
        await manager._discard_session(session_id, transport)
        raise
    return True


async def _serve(
    manager: StreamableHTTPSessionManager,
    transport: StreamableHTTPServerTransport,
    params: InitializeRequestParams,
    version: str,
    *,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """The session's message loop, as the manager runs one, on a connection born
    initialized; the session is discarded however it ends (idle, deleted, crashed)."""
    session_id = transport.mcp_session_id
    assert session_id is not None
    async with transport.connect() as (read_stream, write_stream):
        task_status.started()
        try:
            idle_scope = transport.idle_scope or anyio.CancelScope()
            with idle_scope:
                dispatcher: JSONRPCDispatcher[Any] = JSONRPCDispatcher(
                    read_stream, write_stream, inline_methods=frozenset({"initialize"})
                )
                connection = Connection.for_loop(
                    dispatcher, session_id=session_id, protocol_version_hint=version
                )
                connection.client_params = params
                connection.initialized.set()
                await serve_connection(
                    manager.app,
                    dispatcher,
                    connection=connection,
                    lifespan_state=manager._lifespan_state,
                )
        except Exception:
            logger.exception("MCP session %s, taken over from another worker, crashed", session_id)
        finally:
            await manager._discard_session(session_id, transport)
