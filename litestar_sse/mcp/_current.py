"""The MCP session a request belongs to, as the SDK's transport cannot say it."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from litestar_sse.mcp._session_store import SessionEventStore

__all__ = ("current_session",)

current_session: ContextVar[SessionEventStore | None] = ContextVar(
    "litestar_sse_mcp_session", default=None
)
"""Set by :class:`~litestar_sse.mcp.MCPSessions` for each request it passes to the SDK, and
inherited by the tasks the SDK starts from it (the session's message loop is started from
the request that opens the session). :class:`~litestar_sse.mcp.BroadcastEventStore` reads it."""
