"""Every name this package takes from the MCP python SDK, in one module.

All of them are public names of the SDK (``mcp`` 2.x): the ``EventStore`` interface and its
types, the JSON-RPC message types, and the Streamable HTTP transport's header names and
standalone stream id. ``tests/mcp/test_sdk_names.py`` checks each against the installed SDK,
so an SDK release that moves one fails there, by name.
"""

from __future__ import annotations

try:
    from mcp.server.streamable_http import (
        GET_STREAM_KEY,
        LAST_EVENT_ID_HEADER,
        MCP_SESSION_ID_HEADER,
        EventCallback,
        EventId,
        EventMessage,
        EventStore,
        StreamId,
    )
    from mcp.types import JSONRPCMessage, jsonrpc_message_adapter
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
    "jsonrpc_message_adapter",
)
