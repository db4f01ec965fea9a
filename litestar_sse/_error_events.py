"""Error events: what a client is told when the producer of its stream fails.

By default a failing producer is logged and the body just ends, which many clients read as a
stream that completed. LLM clients in particular then report a successful, truncated answer. An
*error event* factory, given as ``error_event`` (to :class:`~litestar_sse.ServerSentEvent`,
:func:`~litestar_sse.event_stream` or :class:`~litestar_sse.SSEConfig`), is called with the
exception after it is logged; the item it returns is encoded like any yielded item and sent as
the last event. ``None`` sends nothing.

Two factories build the error events the official SDKs understand. Neither puts the exception's
text on the wire by default: it may hold internals (paths, SQL, keys) a client must not see.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar_sse._message import ServerSentEventMessage

__all__ = ("ErrorEvent", "anthropic_error", "openai_error")

ErrorEvent = Callable[[Exception], Any]
"""Turns the producer's exception into the last event of the stream (any item a handler may
yield: a :class:`~litestar_sse.ServerSentEventMessage`, a dict of fields...) or ``None``."""

_DEFAULT_MESSAGE = "The stream failed on the server"


def openai_error(
    message: str = _DEFAULT_MESSAGE, *, type: str = "server_error", code: str | None = None
) -> ErrorEvent:
    """An error event as OpenAI's streaming API sends it: ``data: {"error": {...}}``.

    The ``openai`` SDK raises its ``APIError`` (with ``message`` and the ``error`` object as
    ``body``) when it reads it, instead of ending the iteration as if the stream completed.
    """
    error = {"message": message, "type": type, "param": None, "code": code}

    def event(exc: Exception) -> ServerSentEventMessage:
        return ServerSentEventMessage(data={"error": error})

    return event


def anthropic_error(message: str = _DEFAULT_MESSAGE, *, type: str = "api_error") -> ErrorEvent:
    """An error event as Anthropic's Messages API sends it: ``event: error`` with its JSON.

    The ``anthropic`` SDK raises its ``APIStatusError`` when it reads it.
    """
    body = {"type": "error", "error": {"type": type, "message": message}}

    def event(exc: Exception) -> ServerSentEventMessage:
        return ServerSentEventMessage(event="error", data=body)

    return event
