"""``Stream``: the Litestar response a handler returns to stream chunks of a body."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeAlias, Union

from litestar.enums import MediaType
from litestar.exceptions import ImproperlyConfiguredException
from litestar.response.streaming import Stream as _LitestarStream
from litestar.utils.deprecation import warn_deprecation
from litestar.utils.helpers import get_enum_string_value

from litestar_sse._compat import split_to_asgi_args
from litestar_sse._validation import check_seconds
from litestar_sse.asgi import ASGIStreamingResponse, DisconnectHandler
from litestar_sse.asgi._stream import DEFAULT_CLEANUP_TIMEOUT

if TYPE_CHECKING:
    from litestar.app import Litestar
    from litestar.background_tasks import BackgroundTask, BackgroundTasks
    from litestar.connection import Request
    from litestar.datastructures.cookie import Cookie
    from litestar.enums import OpenAPIMediaType
    from litestar.response.base import ASGIResponse
    from litestar.types import ResponseCookies, ResponseHeaders, TypeEncodersMap

__all__ = ("Stream", "StreamContent", "StreamContentError", "improperly_configured")


StreamContent: TypeAlias = Union[str, bytes, Iterable[Any], AsyncIterable[Any]]  # noqa: UP007
"""What a stream can be made of: one str/bytes chunk, or a sync or async iterable of items."""


class StreamContentError(ImproperlyConfiguredException, TypeError):
    """Content a stream cannot send: neither text nor an iterable, nor a callable returning one.

    Both Litestar's ``ImproperlyConfiguredException`` (what its ``ServerSentEvent`` raises) and
    a ``TypeError`` (what its ``Stream`` raises), so code catching either keeps working.
    """


def _check_content(content: Any) -> StreamContent:
    if isinstance(content, (str, bytes, Iterable, AsyncIterable)):
        return content
    raise StreamContentError(
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
        on_disconnect: Called (sync or async) if the client goes away before the end: a
            disconnect, a send timeout, or the server reporting the connection closed. Given
            the reason (``"disconnect"``, ``"send_timeout"``, or ``"overflow"`` for a slow
            broadcast subscriber) if it takes one argument.
        type_encoders: Extra JSON encoders, merged over the app's.
        cleanup_timeout: Seconds the producer's cleanup may take once the stream stopped (a
            generator's ``finally`` that awaits): past it, the cleanup is cancelled and a
            warning names the route; ``on_disconnect`` runs after it ends or is cut. ``None``
            waits for ever. 5 by default.
    """

    __slots__ = ("cleanup_timeout", "on_disconnect", "send_timeout")

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
        cleanup_timeout: float | None = DEFAULT_CLEANUP_TIMEOUT,
    ) -> None:
        if not callable(content) or isinstance(content, (Iterable, AsyncIterable)):
            _check_content(content)
        with improperly_configured():
            send_timeout = check_seconds(send_timeout, "send_timeout")
            cleanup_timeout = check_seconds(cleanup_timeout, "cleanup_timeout")
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
        self.send_timeout = send_timeout
        self.cleanup_timeout = cleanup_timeout
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
        app: Litestar | Request[Any, Any, Any] | None,
        request: Request[Any, Any, Any] | None,
        background: BackgroundTask | BackgroundTasks | None,
        cookies: Iterable[Cookie] | None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None,
        headers: dict[str, str] | None,
        is_head_response: bool,
        media_type: MediaType | str | None,
        status_code: int | None,
    ) -> tuple[Request[Any, Any, Any], dict[str, Any]]:
        if request is None:
            request, app = split_to_asgi_args(app, request), None
        if app is not None:
            warn_deprecation(
                version="2.1",
                deprecated_name="app",
                kind="parameter",
                removal_in="3.0.0",
                alternative="request.app",
            )
        return request, {
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
            "cleanup_timeout": self.cleanup_timeout,
            "on_disconnect": self.on_disconnect,
        }

    def to_asgi_response(
        self,
        app: Litestar | Request[Any, Any, Any] | None = None,
        request: Request[Any, Any, Any] | None = None,
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
        """Build the :class:`~litestar_sse.asgi.ASGIStreamingResponse` that sends this stream.

        Takes the installed Litestar's signature: ``(app, request, ...)`` on Litestar 2 (``app``
        deprecated), ``(request, ...)`` on Litestar 3.
        """
        _, kwargs = self._asgi_kwargs(
            app,
            request,
            background,
            cookies,
            encoded_headers,
            headers,
            is_head_response,
            media_type,
            status_code,
        )
        return ASGIStreamingResponse(**kwargs)


@contextlib.contextmanager
def improperly_configured() -> Iterator[None]:
    # Litestar's responses refuse bad arguments with ImproperlyConfiguredException, a
    # ValueError: code catching either keeps working.
    try:
        yield
    except ImproperlyConfiguredException:
        raise
    except ValueError as exc:
        raise ImproperlyConfiguredException(str(exc)) from exc
