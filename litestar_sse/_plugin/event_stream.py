"""Which route handlers are event streams, and the settings a route gives its stream.

A handler is an event stream when it is marked with :func:`event_stream`, or when its route
says ``media_type="text/event-stream"``; either way its return annotation must be a stream
(``AsyncIterator[T]`` ...). A route may set the stream's settings over the app's
:class:`~litestar_sse.SSEConfig`: as arguments of :func:`event_stream`, or as the ``"sse"``
entry of the route's ``opt``.
"""

from __future__ import annotations

import collections.abc
import functools
import inspect
import logging
import typing
from collections.abc import Callable, Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any, Final, get_args, get_origin, overload

from litestar.exceptions import ImproperlyConfiguredException
from litestar.response import Response
from litestar.types import Empty, EmptyType

from litestar_sse._response import STREAM_DEFAULT_FIELDS, check_stream_defaults

if TYPE_CHECKING:
    from litestar.handlers.http_handlers import HTTPRouteHandler

    from litestar_sse._error_events import ErrorEvent
    from litestar_sse._response import StreamDefaults

__all__ = (
    "EVENT_STREAM",
    "ROUTE_SETTINGS",
    "RouteDefaults",
    "check_not_a_stray_generator",
    "event_stream",
    "is_event_stream_media_type",
    "mark_prepared",
    "route_settings",
    "stream_item_type",
    "stream_item_type_of",
)

EVENT_STREAM: Final = "text/event-stream"

ROUTE_SETTINGS: Final = STREAM_DEFAULT_FIELDS
"""The :class:`~litestar_sse.SSEConfig` values a route may set for its stream."""

_STREAM_ORIGINS: Final = frozenset(
    (
        collections.abc.AsyncIterator,
        collections.abc.AsyncIterable,
        collections.abc.AsyncGenerator,
        collections.abc.Iterator,
        collections.abc.Iterable,
        collections.abc.Generator,
    )
)

_NOT_A_STREAM: Final = object()

_MARKER: Final = "__litestar_sse_event_stream__"
_PREPARED: Final = "__litestar_sse_prepared__"  # set by SSEPlugin on the handlers it streams
_WRAPPED: Final = ("__wrapped__", "func", "ref")  # functools, partials, Litestar's AsyncCallable

_LOGGER: Final = logging.getLogger("litestar_sse")

_PLUGIN_FIX: Final = (
    "add SSEPlugin() to the app: Litestar(route_handlers=[...], plugins=[SSEPlugin()]) "
    "(from litestar_sse import SSEPlugin)"
)

F = typing.TypeVar("F", bound=Callable[..., Any])


@overload
def event_stream(fn: F, /) -> F: ...


@overload
def event_stream(
    *,
    ping_interval: float | EmptyType | None = Empty,
    ping_message: str | EmptyType = Empty,
    retry: int | EmptyType | None = Empty,
    send_timeout: float | EmptyType | None = Empty,
    sep: str | EmptyType = Empty,
    error_event: ErrorEvent | EmptyType | None = Empty,
    cleanup_timeout: float | EmptyType | None = Empty,
) -> Callable[[F], F]: ...


def event_stream(
    fn: Any = None,
    /,
    *,
    ping_interval: float | EmptyType | None = Empty,
    ping_message: str | EmptyType = Empty,
    retry: int | EmptyType | None = Empty,
    send_timeout: float | EmptyType | None = Empty,
    sep: str | EmptyType = Empty,
    error_event: ErrorEvent | EmptyType | None = Empty,
    cleanup_timeout: float | EmptyType | None = Empty,
) -> Any:
    """Mark a route handler function as an event stream; put it below the route decorator.

    Example:
        .. code-block:: python

            @get("/ticks")
            @event_stream
            async def ticks() -> AsyncIterator[int]:
                for i in range(3):
                    yield i


            @post("/v1/chat/completions")
            @event_stream(retry=None, ping_interval=5, error_event=openai_error())
            async def chat(data: ChatRequest) -> AsyncIterator[Chunk]: ...

    Equivalent to ``@get("/ticks", media_type="text/event-stream", sync_to_thread=False)``.
    A generator function (sync or async) is presented to Litestar as a coroutine function that
    returns the generator, so Litestar neither warns nor uses a thread to create it (a sync
    generator is still iterated off the event loop). Any other function is only marked.
    The function must be annotated as returning a stream (``AsyncIterator[T]`` ...). It
    requires :class:`~litestar_sse.SSEPlugin`: without it, a request to the route is answered
    with a 500 and an error naming the fix is logged on the ``litestar_sse`` logger (the
    decorator cannot know the app, so this is found at the first request, not at startup).

    Called with arguments, it sets this route's stream settings over the app's
    :class:`~litestar_sse.SSEConfig` (see there for each): ``ping_interval``,
    ``ping_message``, ``retry``, ``send_timeout``, ``cleanup_timeout``, ``sep``,
    ``error_event``. ``None`` turns a
    setting off for this route; an argument not given keeps the app's value.

    Raises:
        TypeError: applied to something other than a function (e.g. above the route
            decorator), or a setting of the wrong type.
        ValueError: an invalid setting (``ping_interval=0``, a bad separator...).
    """
    settings = route_settings(
        {
            "ping_interval": ping_interval,
            "ping_message": ping_message,
            "retry": retry,
            "send_timeout": send_timeout,
            "cleanup_timeout": cleanup_timeout,
            "sep": sep,
            "error_event": error_event,
        },
        skip_empty=True,
    )
    if fn is None:
        return functools.partial(_mark, settings=settings)
    return _mark(fn, settings=settings)


def _mark(fn: F, *, settings: Mapping[str, Any]) -> F:
    if not callable(fn) or not hasattr(fn, "__code__"):
        raise TypeError(
            "@event_stream decorates the handler function: put it below the route decorator"
        )
    if _is_generator_function(fn):

        @functools.wraps(fn)
        async def stream_handler(*args: Any, **kwargs: Any) -> Any:
            if not getattr(stream_handler, _PREPARED, False):
                _no_plugin(fn)
            return fn(*args, **kwargs)

        setattr(stream_handler, _MARKER, settings)
        return typing.cast("F", stream_handler)
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def returns_stream(*args: Any, **kwargs: Any) -> Any:
            if not getattr(returns_stream, _PREPARED, False):
                _no_plugin(fn)
            return await fn(*args, **kwargs)

        setattr(returns_stream, _MARKER, settings)
        return typing.cast("F", returns_stream)
    setattr(fn, _MARKER, settings)
    return fn


def _no_plugin(fn: Callable[..., Any]) -> typing.NoReturn:
    """Refuse to run an :func:`event_stream` handler that no :class:`SSEPlugin` prepared.

    Without the plugin Litestar would try to serialize the generator as JSON and answer with a
    500 saying ``Unsupported type: <class 'async_generator'>`` (logged only in debug mode).
    """
    name = getattr(fn, "__qualname__", repr(fn))
    message = f"@event_stream handler {name} is not served by SSEPlugin: {_PLUGIN_FIX}"
    _LOGGER.error(message)
    raise ImproperlyConfiguredException(message)


def mark_prepared(handler: HTTPRouteHandler) -> None:
    """Note that the plugin streams ``handler``: its :func:`event_stream` wrapper then runs.

    The note is on the function, for the life of the process: the same function in another
    app without the plugin then gets Litestar's own 500, not the error naming the plugin.
    """
    fn = _find(handler, lambda fn: getattr(fn, _MARKER, None) is not None)
    if fn is not None:
        setattr(fn, _PREPARED, True)


def _find(handler: HTTPRouteHandler, wanted: Callable[[Any], bool]) -> Any:
    """The handler's function, or one it wraps, that is ``wanted``; ``None`` if none is."""
    fn: Any = handler.fn
    for _ in range(4):  # through Litestar's own wrappers (sync_to_thread, partials)
        if wanted(fn):
            return fn
        fn = next((inner for name in _WRAPPED if (inner := getattr(fn, name, None))), None)
        if fn is None:
            return None
    return None


def check_not_a_stray_generator(handler: HTTPRouteHandler) -> None:
    """Refuse, at startup, a generator handler that is not an event stream.

    Litestar cannot answer with a generator unless something streams it: it would fail each
    request with a 500 (``Unsupported type: <class 'async_generator'>``). A generator function
    annotated as returning a stream, with neither :func:`event_stream` nor
    ``media_type="text/event-stream"`` nor a ``response_class`` of its own, is such a handler.

    Raises:
        ImproperlyConfiguredException: naming the handler and the fix.
    """
    if _find(handler, _is_generator_function) is None:
        return
    if handler.response_class not in (None, Response):  # Litestar 3's default is Response
        return
    annotation = handler.parsed_fn_signature.return_type.annotation
    if stream_item_type(annotation) is _NOT_A_STREAM:
        return
    raise ImproperlyConfiguredException(
        f"Route handler {handler} is a generator but not an event stream: mark it with "
        "@event_stream (below the route decorator) or give the route decorator "
        'media_type="text/event-stream"'
    )


def _is_generator_function(fn: Any) -> bool:
    return inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn)


def route_settings(values: Mapping[str, Any], *, skip_empty: bool = False) -> dict[str, Any]:
    """Check a route's stream settings, each by the rule of its :class:`~litestar_sse.SSEConfig`
    field; return them as a dict (without the ``Empty`` ones when ``skip_empty``).
    """
    unknown = set(values) - ROUTE_SETTINGS
    if unknown:
        raise ValueError(
            f"Unknown stream setting(s) {sorted(map(str, unknown))}; allowed: "
            f"{sorted(ROUTE_SETTINGS)}"
        )
    return check_stream_defaults(
        {k: v for k, v in values.items() if not (skip_empty and v is Empty)}
    )


class RouteDefaults:
    """A route's stream settings over the app's defaults (a :class:`StreamDefaults`)."""

    __slots__ = (
        "cleanup_timeout",
        "error_event",
        "ping_interval",
        "ping_message",
        "retry",
        "send_timeout",
        "sep",
    )

    def __init__(self, app: StreamDefaults, route: Mapping[str, Any]) -> None:
        self.ping_interval: float | None = route.get("ping_interval", app.ping_interval)
        self.ping_message: str = route.get("ping_message", app.ping_message)
        self.retry: int | None = route.get("retry", app.retry)
        self.send_timeout: float | None = route.get("send_timeout", app.send_timeout)
        self.cleanup_timeout: float | None = route.get("cleanup_timeout", app.cleanup_timeout)
        self.sep: str = route.get("sep", app.sep)
        self.error_event: ErrorEvent | None = route.get("error_event", app.error_event)


def _settings_of(handler: HTTPRouteHandler) -> dict[str, Any] | None:
    """The settings of an :func:`event_stream` mark (``None``: not marked)."""
    fn = _find(handler, lambda fn: getattr(fn, _MARKER, None) is not None)
    return None if fn is None else dict(getattr(fn, _MARKER))


def is_event_stream_media_type(media_type: Any) -> bool:
    """True if a route's ``media_type`` is ``text/event-stream`` (parameters ignored)."""
    value = media_type.value if isinstance(media_type, Enum) else media_type
    return isinstance(value, str) and value.split(";", 1)[0].strip().lower() == EVENT_STREAM


def stream_item_type(annotation: Any) -> Any:
    """Return ``T`` of a stream annotation (``AsyncIterator[T]`` ...), ``Any`` if bare.

    Returns a private sentinel (not a type) for annotations that are not streams; use
    :func:`stream_item_type_of` for the handler-level question.
    """
    origin = get_origin(annotation) or annotation
    try:
        if origin not in _STREAM_ORIGINS:
            return _NOT_A_STREAM
    except TypeError:  # unhashable annotation objects
        return _NOT_A_STREAM
    args = get_args(annotation)
    return args[0] if args else Any


def stream_item_type_of(handler: HTTPRouteHandler) -> tuple[bool, Any, dict[str, Any]]:
    """``(True, T, settings)`` for an event-stream generator handler, else ``(False, None, {})``.

    ``settings`` are the route's stream settings: the ``"sse"`` entry of its ``opt``, then the
    arguments of :func:`event_stream` over them.
    """
    marked = _settings_of(handler)
    if marked is None and not is_event_stream_media_type(handler.media_type):
        return False, None, {}
    item_type = stream_item_type(handler.parsed_fn_signature.return_type.annotation)
    if item_type is _NOT_A_STREAM:
        if marked is not None:
            raise ImproperlyConfiguredException(
                f"@event_stream handler {handler} must be annotated as returning a stream "
                "(AsyncIterator[T], AsyncIterable[T], AsyncGenerator[T, None], Iterator[T], "
                f"Iterable[T]), got {handler.parsed_fn_signature.return_type.annotation!r}"
            )
        return False, None, {}
    from_opt = (handler.opt or {}).get("sse") or {}
    if not isinstance(from_opt, Mapping):
        raise TypeError(f"opt['sse'] of {handler} must be a mapping of stream settings")
    try:
        settings = route_settings(from_opt)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"opt['sse'] of {handler}: {exc}") from exc
    return True, item_type, {**settings, **(marked or {})}
