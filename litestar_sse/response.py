"""``Stream`` and ``ServerSentEvent``: the Litestar responses a handler returns."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias, Union

import msgspec
from litestar.enums import MediaType
from litestar.exceptions import ImproperlyConfiguredException
from litestar.response.streaming import Stream as _LitestarStream
from litestar.serialization import get_serializer
from litestar.utils.deprecation import warn_deprecation
from litestar.utils.helpers import get_enum_string_value

from litestar_sse.asgi import (
    ASGIStreamingResponse,
    ASGIStreamingSSEResponse,
    DisconnectHandler,
    _check_positive,
)
from litestar_sse.codec.encoder import DEFAULT_SEPARATOR, check_separator, encode_fields
from litestar_sse.message import make_item_encoder

if TYPE_CHECKING:
    from litestar.app import Litestar
    from litestar.background_tasks import BackgroundTask, BackgroundTasks
    from litestar.connection import Request
    from litestar.datastructures.cookie import Cookie
    from litestar.enums import OpenAPIMediaType
    from litestar.response.base import ASGIResponse
    from litestar.types import ResponseCookies, ResponseHeaders, TypeEncodersMap

__all__ = ("ServerSentEvent", "Stream", "StreamContent")

StreamContent: TypeAlias = Union[str, bytes, Iterable[Any], AsyncIterable[Any]]  # noqa: UP007
"""What a stream can be made of: one str/bytes chunk, or a sync or async iterable of items."""


def _check_content(content: Any) -> StreamContent:
    if isinstance(content, (str, bytes, Iterable, AsyncIterable)):
        return content
    raise ImproperlyConfiguredException(
        f"Invalid content of type {type(content).__name__} for a streaming response: expected "
        "str, bytes, a sync or async iterable/iterator/generator, or a callable returning one"
    )


class Stream(_LitestarStream):
    """A response that streams its content as a series of ``http.response.body`` events.

    Takes the arguments of :class:`litestar.response.Stream`, plus:

    Args:
        content: str or bytes (sent as one chunk), a sync or async iterable, iterator or
            generator of str/bytes chunks, or a callable returning one of these.
        send_timeout: Seconds one send may take before the client is considered gone.
        on_disconnect: Called (sync or async) if the client disconnects before the end.
        type_encoders: Extra JSON encoders, merged over the app's.
    """

    __slots__ = ("on_disconnect", "send_timeout")

    def __init__(
        self,
        content: StreamContent | Callable[[], StreamContent],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: ResponseCookies | None = None,
        encoding: str = "utf-8",
        headers: ResponseHeaders | None = None,
        media_type: MediaType | OpenAPIMediaType | str | None = None,
        status_code: int | None = None,
        send_timeout: float | None = None,
        on_disconnect: DisconnectHandler | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> None:
        if not callable(content) or isinstance(content, (Iterable, AsyncIterable)):
            _check_content(content)
        super().__init__(
            content,  # type: ignore[arg-type]
            background=background,
            cookies=cookies,
            encoding=encoding,
            headers=headers,
            media_type=media_type,
            status_code=status_code,
        )
        if type_encoders:
            self.response_type_encoders = {**self.response_type_encoders, **type_encoders}
        self.send_timeout = _check_positive(send_timeout, "send_timeout")
        self.on_disconnect = on_disconnect

    def _resolve_content(self) -> Iterable[Any] | AsyncIterable[Any]:
        content: Any = self.iterator
        if callable(content) and not isinstance(content, (Iterable, AsyncIterable)):
            content = content()
        content = _check_content(content)
        if isinstance(content, (str, bytes)):
            return (content,)
        return content  # type: ignore[no-any-return]

    def _asgi_kwargs(
        self,
        request: Request[Any, Any, Any],
        app: Litestar | None,
        background: BackgroundTask | BackgroundTasks | None,
        cookies: Iterable[Cookie] | None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None,
        headers: dict[str, str] | None,
        is_head_response: bool,
        media_type: MediaType | str | None,
        status_code: int | None,
    ) -> dict[str, Any]:
        if app is not None:
            warn_deprecation(
                version="2.1",
                deprecated_name="app",
                kind="parameter",
                removal_in="3.0.0",
                alternative="request.app",
            )
        return {
            "background": self.background or background,
            "cookies": self.cookies if cookies is None else itertools.chain(self.cookies, cookies),
            "encoded_headers": encoded_headers,
            "encoding": self.encoding,
            "headers": {**headers, **self.headers} if headers is not None else self.headers,
            "is_head_response": is_head_response,
            "iterator": self._resolve_content(),
            "media_type": get_enum_string_value(media_type or self.media_type or MediaType.JSON),
            "status_code": self.status_code or status_code,
            "send_timeout": self.send_timeout,
            "on_disconnect": self.on_disconnect,
            "logger": _request_logger(request),
        }

    def to_asgi_response(
        self,
        app: Litestar | None,
        request: Request[Any, Any, Any],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> ASGIResponse:
        """Build the :class:`~litestar_sse.ASGIStreamingResponse` that sends this stream."""
        kwargs = self._asgi_kwargs(
            request,
            app,
            background,
            cookies,
            encoded_headers,
            headers,
            is_head_response,
            media_type,
            status_code,
        )
        return ASGIStreamingResponse(**kwargs)


class ServerSentEvent(Stream):
    """A ``text/event-stream`` response: each item the content yields becomes one event.

    Takes the arguments of :class:`litestar.response.ServerSentEvent`, plus pings, a send
    timeout, a disconnect callback and a line separator. Field values are validated here, so a
    bad value fails when the response is created, not in the middle of the stream.

    Items may be ``int``, ``str``, ``bytes`` (UTF-8), a ``dict`` of message fields (``data``,
    ``event``, ``id``, ``retry``, ``comment``, ``sep``), a
    :class:`~litestar_sse.ServerSentEventMessage`, a :class:`~litestar_sse.RawEvent`, or any
    typed object (msgspec Struct, dataclass, pydantic model, list, ...) which is sent as JSON
    ``data`` using the app's ``type_encoders``.

    Args:
        content: str/bytes (one event), a sync or async iterable/iterator/generator of items,
            or a callable returning one of these.
        event_type: Event type applied to every plain item (not to messages and dicts).
        event_id: Event id applied to every plain item.
        retry_duration: Client reconnection time in milliseconds, applied to every plain item.
        comment_message: Comment applied to every plain item.
        ping_interval: Seconds without any write after which a ``: ping`` comment is sent.
        ping_message: The text of the ping comment.
        send_timeout: Seconds one send (pings included) may take before the client is cut.
        sep: Line separator: ``"\\r\\n"`` (default), ``"\\n"`` or ``"\\r"``.
        on_disconnect: Called (sync or async) if the client disconnects before the end.
        type_encoders: Extra JSON encoders for typed items, merged over the app's.

    Raises:
        ValueError: an invalid field value (CR/LF in ``event_type``, NUL in ``event_id``, a
            negative ``retry_duration``, a bad separator, ``ping_interval <= 0``, ...).
    """

    __slots__ = (
        "comment_message",
        "event_id",
        "event_type",
        "ping_interval",
        "ping_message",
        "retry_duration",
        "sep",
    )

    def __init__(
        self,
        content: StreamContent | Callable[[], StreamContent],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: ResponseCookies | None = None,
        encoding: str = "utf-8",
        headers: ResponseHeaders | None = None,
        event_type: str | None = None,
        event_id: int | str | None = None,
        retry_duration: int | None = None,
        comment_message: str | None = None,
        status_code: int | None = None,
        ping_interval: float | None = None,
        ping_message: str = "ping",
        send_timeout: float | None = None,
        sep: str = DEFAULT_SEPARATOR,
        on_disconnect: DisconnectHandler | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> None:
        super().__init__(
            content,
            background=background,
            cookies=cookies,
            encoding=encoding,
            headers=headers,
            media_type="text/event-stream",
            status_code=status_code,
            send_timeout=send_timeout,
            on_disconnect=on_disconnect,
            type_encoders=type_encoders,
        )
        # Validate every field now; encode_fields raises ValueError naming the bad one.
        encode_fields(
            event=event_type,
            id=event_id,
            retry=retry_duration,
            comment=comment_message,
            sep=check_separator(sep),
        )
        if not isinstance(ping_message, str):
            raise TypeError(f"ping_message must be a str, got {type(ping_message).__name__}")
        self.event_type = event_type
        self.event_id = event_id
        self.retry_duration = retry_duration
        self.comment_message = comment_message
        self.ping_interval = _check_positive(ping_interval, "ping_interval")
        self.ping_message = ping_message
        self.sep = sep
        self.headers.setdefault("Cache-Control", "no-cache")
        self.headers.setdefault("X-Accel-Buffering", "no")

    def to_asgi_response(
        self,
        app: Litestar | None,
        request: Request[Any, Any, Any],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> ASGIResponse:
        """Build the :class:`~litestar_sse.ASGIStreamingSSEResponse` that sends this stream."""
        kwargs = self._asgi_kwargs(
            request,
            app,
            background,
            cookies,
            encoded_headers,
            headers,
            is_head_response,
            "text/event-stream",
            status_code,
        )
        kwargs["media_type"] = "text/event-stream"
        encoders = {**(type_encoders or {}), **(self.response_type_encoders or {})}
        kwargs["item_encoder"] = make_item_encoder(
            event=self.event_type,
            id=self.event_id,
            retry=self.retry_duration,
            comment=self.comment_message,
            sep=self.sep,
            json_encode=_json_encoder(encoders),
        )
        return ASGIStreamingSSEResponse(
            ping_interval=self.ping_interval,
            ping_message=self.ping_message,
            sep=self.sep,
            **kwargs,
        )


def _json_encoder(type_encoders: Mapping[Any, Any]) -> Callable[[Any], bytes]:
    serializer = get_serializer(type_encoders or None)
    return msgspec.json.Encoder(enc_hook=serializer).encode


def _request_logger(request: Request[Any, Any, Any]) -> Any:
    try:
        return request.logger
    except Exception:  # no logging config on the app
        return None
