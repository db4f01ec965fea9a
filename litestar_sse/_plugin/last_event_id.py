"""The ``last_event_id`` dependency: where a reconnecting client says it left off.

A browser's ``EventSource`` sends the id of the last event it received in the
``Last-Event-ID`` header when it reconnects. It cannot send headers on its first connection,
so a page that already knows where to resume (from local storage, a server-rendered page, ...)
passes it as a query parameter instead: ``new EventSource("/events?lastEventId=42")``.
"""

from __future__ import annotations

from typing import Any, Final

from litestar.connection import Request

from litestar_sse._plugin.config import SSEConfig, get_app_sse
from litestar_sse.codec._encoder import event_id_problem

__all__ = (
    "last_event_id_sent",
    "parse_last_event_id",
    "provide_last_event_id",
    "read_last_event_id",
)

_DEFAULTS: Final = SSEConfig()


def parse_last_event_id(
    request: Request[Any, Any, Any],
    *,
    query_param: str | None = "lastEventId",
    max_length: int = 1024,
) -> str | None:
    """Return the last event id a client sent, or ``None``.

    The ``Last-Event-ID`` header wins; without it, the ``query_param`` query parameter is read.
    An empty value, a value longer than ``max_length`` characters, a header that is not valid
    UTF-8, or a value containing NUL, CR or LF (which no event id can hold) is treated as
    absent: the answer is ``None``, never an error, so a client with a garbled id starts over
    rather than being refused (a browser's ``EventSource`` would not retry after a 4xx).
    """
    return _read(request, query_param, max_length)[1]


def last_event_id_sent(request: Request[Any, Any, Any]) -> bool:
    """Whether the client sent a last event id at all, usable or not.

    True for a non-empty ``Last-Event-ID`` header, or, without the header, a non-empty query
    parameter (named as in the app's :class:`~litestar_sse.SSEConfig`). Together with
    :func:`provide_last_event_id` it tells "nothing sent" (a first connection) from "sent, but
    unusable" (``None`` from the provider, ``True`` here).
    """
    return read_last_event_id(request)[0]


def provide_last_event_id(request: Request[Any, Any, Any]) -> str | None:
    """Dependency provider of ``last_event_id: str | None``, registered by the plugin.

    Reads the app's :class:`~litestar_sse.SSEConfig` for the query parameter name and the
    maximum length (the defaults without the plugin); see :func:`parse_last_event_id`.
    """
    return read_last_event_id(request)[1]


def read_last_event_id(request: Request[Any, Any, Any]) -> tuple[bool, str | None]:
    """``(sent, id)`` with the app's settings: :func:`last_event_id_sent` and
    :func:`provide_last_event_id` in one reading of the request."""
    app_sse = get_app_sse(request)
    config = app_sse.config if app_sse is not None else _DEFAULTS
    return _read(request, config.last_event_id_query_param, config.max_last_event_id_length)


def _read(
    request: Request[Any, Any, Any], query_param: str | None, max_length: int
) -> tuple[bool, str | None]:
    """Whether the client sent a last event id at all, and the id if it is usable."""
    value: Any
    # From the raw headers and query string: a stream's request builds none of Litestar's
    # parsed views (they would live, and take memory, as long as the stream).
    scope = request.scope
    raw = next((v for name, v in scope["headers"] if name == b"last-event-id"), None)
    if raw is not None:  # the header wins, even when empty
        if not raw:
            return False, None
        try:
            value = raw.decode("utf-8")  # what browsers send
        except UnicodeError:
            return True, None
    elif query_param is not None and query_param.encode() in scope.get("query_string", b""):
        value = request.query_params.get(query_param)
        if not value:
            return False, None
    else:
        return False, None
    if not isinstance(value, str) or len(value) > max_length or event_id_problem(value):
        return True, None
    return True, value
