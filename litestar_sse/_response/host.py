"""The hook an app offers its streams: app-wide defaults and a home for the ASGI response.

This layer defines the hook and never imports what fills it: :class:`~litestar_sse.SSEPlugin`
stores its implementation in ``app.state[STREAM_HOST_KEY]`` when the app is created.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

from litestar_sse._validation import check_seconds
from litestar_sse.codec._encoder import check_retry, check_separator

if TYPE_CHECKING:
    from litestar.connection import Request

    from litestar_sse._error_events import ErrorEvent
    from litestar_sse.asgi import ASGIStreamingSSEResponse

__all__ = (
    "STREAM_DEFAULT_FIELDS",
    "STREAM_HOST_KEY",
    "StreamDefaults",
    "StreamHost",
    "check_stream_defaults",
    "stream_host",
)

STREAM_HOST_KEY: Final = "_litestar_sse"
"""Key of the app's :class:`StreamHost` in ``app.state``."""

STREAM_DEFAULT_FIELDS: Final = frozenset(
    (
        "ping_interval",
        "ping_message",
        "retry",
        "send_timeout",
        "cleanup_timeout",
        "sep",
        "error_event",
    )
)
"""The fields of :class:`StreamDefaults`: what an app (and a route) may set for its streams."""


class StreamDefaults(Protocol):
    """App-wide values for what a :class:`~litestar_sse.ServerSentEvent` leaves unset."""

    ping_interval: float | None
    ping_message: str
    retry: int | None
    send_timeout: float | None
    cleanup_timeout: float | None
    sep: str
    error_event: ErrorEvent | None


class StreamHost(Protocol):
    """What an app offers every :class:`ServerSentEvent` it serves: defaults and a home.

    This layer defines the hook and never imports what fills it: :class:`~litestar_sse.SSEPlugin`
    stores its implementation in ``app.state[STREAM_HOST_KEY]`` when the app is created. Without
    it, a response uses its own defaults and an unmanaged ASGI response.
    """

    @property
    def config(self) -> StreamDefaults:
        """The app's defaults."""
        ...

    def merge_headers(self, headers: Mapping[str, Any]) -> dict[str, Any]:
        """``headers`` over the app's extra headers."""
        ...

    def open_stream(
        self, request: Request[Any, Any, Any], *, preamble: bytes, **kwargs: Any
    ) -> ASGIStreamingSSEResponse:
        """The ASGI response of one stream of the app, from the response's arguments."""
        ...


def stream_host(request: Request[Any, Any, Any]) -> StreamHost | None:
    """The :class:`StreamHost` of the request's app, ``None`` without one."""
    try:
        state = request.app.state
    except Exception:  # a request without an app (hand-made scopes in tests)
        return None
    host: StreamHost | None = state.get(STREAM_HOST_KEY)
    return host


def check_stream_defaults(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check the :class:`StreamDefaults` values given (any subset), one rule per field, for
    the app's :class:`~litestar_sse.SSEConfig` and a route's settings alike; return them
    with durations normalised (``None`` is off, ``0``, ``inf`` and ``NaN`` are refused)."""
    checked = dict(values)
    for name in ("ping_interval", "send_timeout", "cleanup_timeout"):
        if name in checked:
            checked[name] = check_seconds(checked[name], name)
    if "ping_message" in checked and not isinstance(checked["ping_message"], str):
        raise TypeError(f"ping_message must be a str, got {type(checked['ping_message']).__name__}")
    if checked.get("retry") is not None:
        check_retry(checked["retry"], "retry")
    if "sep" in checked:
        check_separator(checked["sep"])
    handler = checked.get("error_event")
    if handler is not None and not callable(handler):
        raise TypeError(f"error_event must be callable, got {type(handler).__name__}")
    return checked
