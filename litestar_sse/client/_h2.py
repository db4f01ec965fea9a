"""Ending one HTTP/2 stream with ``RST_STREAM``: the one place that touches httpx/httpcore
private names.

Closing an httpx response that was not read to its end frees it on the client side only:
over HTTP/1.1 httpcore drops the connection (so the server sees the client leave), but over
HTTP/2 it keeps the shared connection and tells the server nothing, and the server's
producer runs on until the whole connection closes. Neither httpx nor httpcore has a public
way to reset one stream, so this module reaches the h2 state machine of the connection the
response came on (httpcore's ``HTTP2ConnectionByteStream``, with ``_connection``,
``_request`` and ``_stream_id``, found by unwrapping ``response.stream``),
resets the stream there and writes the frame through httpcore's own writer (which holds the
connection's write lock). Every step is checked: with another httpx or httpcore, or a
transport that is not httpcore's, it does nothing and returns ``False``, and closing the
response goes on as before. tests/client/test_h2.py checks it against a real HTTP/2 server.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

__all__ = ("areset_stream", "reset_stream")

logger = logging.getLogger("litestar_sse.client")

_CANCEL = 0x8  # RFC 9113 error code CANCEL: the stream is no longer needed


def _target(response: httpx.Response) -> tuple[Any, Any, Any, int] | None:
    if response.http_version != "HTTP/2":
        return None
    # httpx's BoundAsyncStream -> its transport's ResponseStream -> httpcore's PoolByteStream
    # -> HTTP2ConnectionByteStream: unwrapped one level at a time, whatever the nesting.
    inner: Any = response.stream
    for _ in range(6):
        if hasattr(inner, "_stream_id"):
            break
        inner = getattr(inner, "_httpcore_stream", None) or getattr(inner, "_stream", None)
    connection = getattr(inner, "_connection", None)
    request = getattr(inner, "_request", None)
    stream_id = getattr(inner, "_stream_id", None)
    state = getattr(connection, "_h2_state", None)
    if state is None or request is None or not isinstance(stream_id, int):
        return None
    # Whether httpcore let go of the response already (a cancelled read does) or not, the
    # stream stays open in the h2 state until one side ends or resets it.
    stream = getattr(state, "streams", {}).get(stream_id)
    if stream is None or getattr(stream, "closed", True):
        return None  # ended already (the server finished it): nothing to cancel
    return connection, request, state, stream_id


async def areset_stream(response: httpx.Response) -> bool:
    """Send ``RST_STREAM (CANCEL)`` for an HTTP/2 response that is still open.

    Returns:
        Whether the frame was written. ``False`` for HTTP/1.1, a stream that already ended,
        a connection already gone, or an httpx/httpcore whose internals differ.
    """
    target = _target(response)
    if target is None:
        return False
    connection, request, state, stream_id = target
    try:
        state.reset_stream(stream_id, error_code=_CANCEL)
        await connection._write_outgoing_data(request)
    except Exception as exc:  # the connection broke meanwhile: closing it tells the server
        logger.debug("RST_STREAM for stream %s not sent: %r", stream_id, exc)
        return False
    return True


def reset_stream(response: httpx.Response) -> bool:
    """The synchronous :func:`areset_stream`, for responses of an ``httpx.Client``."""
    target = _target(response)
    if target is None:
        return False
    connection, request, state, stream_id = target
    try:
        state.reset_stream(stream_id, error_code=_CANCEL)
        connection._write_outgoing_data(request)
    except Exception as exc:
        logger.debug("RST_STREAM for stream %s not sent: %r", stream_id, exc)
        return False
    return True
