"""MCP Streamable HTTP resumability on a :class:`~litestar_sse.broadcast.Broadcaster`.

:class:`BroadcastEventStore` implements the MCP python SDK's ``EventStore`` interface
(``mcp.server.streamable_http.EventStore``): every JSON-RPC message an MCP server sends on a
stream is published to a topic of that stream, and a client that reconnects with nothing but
``Last-Event-ID`` gets the messages it missed. Sessions are kept apart: each has its own
topics and a key that tags its event ids (:class:`SessionEventStore`), so no id, guessed or
reused, reads another session's messages. With the SDK's own server, serve its app through
:class:`MCPSessions`, which tells the store the session of each request and answers
resumptions on any worker.

Needs the MCP SDK: ``pip install 'litestar-sse[mcp]'``. Importing :mod:`litestar_sse` itself
never imports it.
"""

from litestar_sse.mcp._session_store import SessionEventStore, StreamSubscription, is_response
from litestar_sse.mcp._sessions import MCPSessions
from litestar_sse.mcp._store import BroadcastEventStore

__all__ = (
    "BroadcastEventStore",
    "MCPSessions",
    "SessionEventStore",
    "StreamSubscription",
    "is_response",
)
